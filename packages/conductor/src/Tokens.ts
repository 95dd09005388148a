/**
 * Bearer tokens of the HTTP audience API. The conductor's config keeps only
 * their SHA-256 hashes (`sha256:<hex>`), with optional limits on the scores
 * and players each token may use:
 *
 * ```yaml
 * http:
 *   tokens:
 *     - { name: ops, hash: "sha256:9f86d0…" }
 *     - { name: deployer, hash: "sha256:…", scores: [deploy], players: [web1, web2] }
 * ```
 *
 * A presented token is hashed and looked up; the plain token is never
 * stored. `orchestra token new` makes a token and its config entry.
 *
 * @since 0.1.0
 */
import type { Security } from "@orchestra/api"
import { Schema } from "effect"
import * as crypto from "node:crypto"

const NonEmpty = Schema.String.pipe(Schema.minLength(1))

/** One token in the config. */
export const TokenEntry = Schema.Struct({
  /** Who or what holds it (shown in logs and 403s). */
  name: NonEmpty,
  /** `sha256:` and the hex SHA-256 of the token. */
  hash: Schema.String.pipe(
    Schema.pattern(/^sha256:[0-9a-f]{64}$/, { message: () => "must be \"sha256:\" followed by 64 lowercase hex digits (see `orchestra token new`)" })
  ),
  /** The scores it may use (absent: any). */
  scores: Schema.optional(Schema.Array(NonEmpty)),
  /** The players it may use (absent: any). */
  players: Schema.optional(Schema.Array(NonEmpty))
})
export type TokenEntry = typeof TokenEntry.Type

/** The config form of a token's hash. */
export const hash = (token: string): string => `sha256:${crypto.createHash("sha256").update(token, "utf8").digest("hex")}`

/** A fresh random token: `orc_` and 32 random bytes in base64url. */
export const generate = (): string => `orc_${crypto.randomBytes(32).toString("base64url")}`

/** The config entry of a token. */
export const entry = (options: {
  readonly name: string
  readonly token: string
  readonly scores?: ReadonlyArray<string> | undefined
  readonly players?: ReadonlyArray<string> | undefined
}): TokenEntry => ({
  name: options.name,
  hash: hash(options.token),
  ...(options.scores === undefined || options.scores.length === 0 ? {} : { scores: options.scores }),
  ...(options.players === undefined || options.players.length === 0 ? {} : { players: options.players })
})

/** The tokens a conductor accepts. */
export class TokenSet {
  private readonly byHash = new Map<string, Security.PrincipalService>()

  constructor(entries: ReadonlyArray<TokenEntry>) {
    for (const e of entries) {
      this.byHash.set(e.hash.slice("sha256:".length), {
        name: e.name,
        ...(e.scores === undefined ? {} : { scores: e.scores }),
        ...(e.players === undefined ? {} : { players: e.players })
      })
    }
  }

  get size(): number {
    return this.byHash.size
  }

  /** The token's principal, or undefined when it is not one of ours. */
  verify(token: string): Security.PrincipalService | undefined {
    if (token.length === 0 || token.length > 4096) return undefined
    // Looked up by the hash of what was presented: timing reveals nothing about the tokens.
    return this.byHash.get(crypto.createHash("sha256").update(token, "utf8").digest("hex"))
  }
}
