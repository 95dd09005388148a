/**
 * How an audience command reaches the conductor: `--socket PATH` (the Unix
 * socket), or `--url URL` with `--token`/`--token-file` (the HTTP API); in
 * their absence `$ORCHESTRA_URL` (with `$ORCHESTRA_TOKEN`), else
 * `$ORCHESTRA_SOCKET`, else `/run/orchestra/conductor.sock`. Also how a
 * client's failure ends the command (its exit code).
 *
 * @since 0.1.0
 */
import { Options } from "@effect/cli"
import { ClientError, OrchestraClient } from "@orchestra/client"
import { Config, Effect, Option, Redacted } from "effect"
import * as fs from "node:fs"
import * as Exit from "./Exit.js"

/** The connection flags every audience command takes. */
export const options = {
  socket: Options.text("socket").pipe(
    Options.withDescription("Path of the conductor's audience socket (default: $ORCHESTRA_SOCKET, else /run/orchestra/conductor.sock)"),
    Options.optional
  ),
  url: Options.text("url").pipe(
    Options.withDescription("The conductor's HTTP API, e.g. http://127.0.0.1:7080, instead of the socket (default: $ORCHESTRA_URL)"),
    Options.optional
  ),
  token: Options.text("token").pipe(
    Options.withDescription("Bearer token for --url (default: $ORCHESTRA_TOKEN; prefer the variable or --token-file: flags show in ps)"),
    Options.optional
  ),
  tokenFile: Options.file("token-file", { exists: "yes" }).pipe(
    Options.withDescription("Read the bearer token for --url from this file"),
    Options.optional
  )
}

export type Flags = {
  readonly socket: Option.Option<string>
  readonly url: Option.Option<string>
  readonly token: Option.Option<string>
  readonly tokenFile: Option.Option<string>
}

/** Where a command connects, once flags and environment are read. */
export type Target =
  | { readonly _tag: "Socket"; readonly path: string }
  | { readonly _tag: "Http"; readonly url: string; readonly token: Redacted.Redacted<string> | undefined }

const env = (name: string) =>
  Config.option(Config.string(name)).pipe(
    Effect.map(Option.filter((s) => s.trim().length > 0)),
    Effect.orElseSucceed(() => Option.none<string>())
  )

const checkUrl = (url: string, code: number, from: string): Effect.Effect<string, Exit.ExitWith> => {
  let parsed: URL | undefined
  try {
    parsed = new URL(url)
  } catch {
    parsed = undefined
  }
  return parsed !== undefined && (parsed.protocol === "http:" || parsed.protocol === "https:")
    ? Effect.succeed(url)
    : Effect.fail(new Exit.ExitWith({ code, message: `${from} ${JSON.stringify(url)}: expected an http:// or https:// URL` }))
}

const tokenOf = (flags: Flags): Effect.Effect<Redacted.Redacted<string> | undefined, Exit.ExitWith> =>
  Effect.gen(function*() {
    if (Option.isSome(flags.token)) return Redacted.make(flags.token.value)
    if (Option.isSome(flags.tokenFile)) {
      const file = flags.tokenFile.value
      const text = yield* Effect.try({
        try: () => fs.readFileSync(file, "utf8").trim(),
        catch: (e) => new Exit.ExitWith({ code: Exit.codes.config, message: `--token-file ${file}: ${e instanceof Error ? e.message : String(e)}` })
      })
      if (text.length === 0) return yield* new Exit.ExitWith({ code: Exit.codes.config, message: `--token-file ${file}: the file is empty` })
      return Redacted.make(text)
    }
    const fromEnv = yield* env("ORCHESTRA_TOKEN")
    return Option.isSome(fromEnv) ? Redacted.make(fromEnv.value.trim()) : undefined
  })

/**
 * Flags first (`--url` and `--socket` together are a usage error), then
 * `$ORCHESTRA_URL`, then `$ORCHESTRA_SOCKET`, then the default socket. A
 * malformed URL is a usage error from a flag, a configuration error from
 * the environment.
 */
export const resolve = (flags: Flags): Effect.Effect<Target, Exit.ExitWith> =>
  Effect.gen(function*() {
    if (Option.isSome(flags.url) && Option.isSome(flags.socket)) {
      return yield* new Exit.ExitWith({ code: Exit.codes.usage, message: "give --url or --socket, not both" })
    }
    if (Option.isSome(flags.url)) {
      return { _tag: "Http", url: yield* checkUrl(flags.url.value, Exit.codes.usage, "--url"), token: yield* tokenOf(flags) } as const
    }
    if (Option.isSome(flags.socket)) return { _tag: "Socket", path: flags.socket.value } as const
    const url = yield* env("ORCHESTRA_URL")
    if (Option.isSome(url)) {
      return { _tag: "Http", url: yield* checkUrl(url.value.trim(), Exit.codes.config, "$ORCHESTRA_URL"), token: yield* tokenOf(flags) } as const
    }
    const socket = yield* env("ORCHESTRA_SOCKET")
    return { _tag: "Socket", path: Option.getOrElse(socket, () => OrchestraClient.defaultSocketPath) } as const
  })

/** The exit a client failure ends the command with: 77 for the token, 64 for an unknown job, 69 otherwise. */
/** A client failure's message, then each issue of a refused request on a line of its own. */
export const describe = (e: ClientError.ClientError): string =>
  e.issues === undefined || e.issues.length === 0
    ? e.message
    : `${e.message}\n${e.issues.map((i) => `  ${i.path.length > 0 ? `${i.path}: ` : ""}${i.message}`).join("\n")}`

export const failure = (e: ClientError.ClientError): Exit.ExitWith => {
  switch (e.reason) {
    case "unauthorized":
    case "forbidden":
      return new Exit.ExitWith({ code: Exit.codes.unauthorized, message: e.message })
    case "not-found":
      return new Exit.ExitWith({ code: Exit.codes.usage, message: e.message })
    case "refused":
      return new Exit.ExitWith({ code: Exit.codes.unavailable, message: `refused: ${describe(e)}` })
    default:
      return new Exit.ExitWith({ code: Exit.codes.unavailable, message: e.message })
  }
}

/** The client for these flags. */
export const client = (flags: Flags): Effect.Effect<OrchestraClient.Service, Exit.ExitWith> =>
  Effect.flatMap(resolve(flags), (target) =>
    target._tag === "Socket"
      ? Effect.succeed(OrchestraClient.makeSocket({ path: target.path }))
      : OrchestraClient.makeHttp({ url: target.url, token: target.token }).pipe(Effect.mapError(failure)))

/** Run `f` with the client for these flags; its failures become the command's exit. */
export const withClient = <A>(
  flags: Flags,
  f: (client: OrchestraClient.Service) => Effect.Effect<A, ClientError.ClientError | Exit.ExitWith>
): Effect.Effect<A, Exit.ExitWith> =>
  Effect.flatMap(client(flags), (c) => f(c).pipe(Effect.catchTag("ClientError", (e) => Effect.fail(failure(e)))))
