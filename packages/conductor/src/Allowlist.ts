/**
 * The players allowlist file: one player name per line; `#` starts a
 * comment (at the start of a line or after whitespace); blank lines are
 * ignored; a name listed twice counts once. An invalid name is an error
 * naming its file and line.
 *
 * @since 0.1.0
 */
import type { Names } from "@orchestra/core"
import { Errors, Names as NamesModule } from "@orchestra/core"
import { Effect, Either, ParseResult, Schema } from "effect"
import * as fs from "node:fs"

const decodeName = Schema.decodeUnknownEither(NamesModule.PlayerName)

/** Parse the text of an allowlist file; `file` names it in errors. */
export const parse = (text: string, file: string): Either.Either<ReadonlyArray<Names.PlayerName>, Errors.ConfigError> => {
  const names: Array<Names.PlayerName> = []
  const seen = new Set<string>()
  const issues: Array<Errors.Issue> = []
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/(^|\s)#.*$/, "").trim()
    if (line === "") return
    const decoded = decodeName(line)
    if (Either.isLeft(decoded)) {
      issues.push({
        path: `${file}:${i + 1}`,
        message: `invalid player name ${JSON.stringify(line)}: ${ParseResult.TreeFormatter.formatErrorSync(decoded.left).split("\n").pop()?.trim() ?? "invalid"}`
      })
      return
    }
    if (!seen.has(decoded.right)) {
      seen.add(decoded.right)
      names.push(decoded.right)
    }
  })
  if (issues.length > 0) {
    return Either.left(
      new Errors.ConfigError({
        file,
        message: `invalid players allowlist ${file}: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
        issues
      })
    )
  }
  return Either.right(names)
}

/** Read and parse an allowlist file. */
export const load = (file: string): Effect.Effect<ReadonlyArray<Names.PlayerName>, Errors.ConfigError> =>
  Effect.try({
    try: () => fs.readFileSync(file, "utf8"),
    catch: (e) =>
      new Errors.ConfigError({
        file,
        message: `cannot read the players allowlist ${file}: ${e instanceof Error ? e.message : String(e)}`,
        issues: [{ path: file, message: `cannot read: ${e instanceof Error ? e.message : String(e)}` }]
      })
  }).pipe(Effect.flatMap((text) => parse(text, file)))
