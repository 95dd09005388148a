/**
 * `orchestra token new --name NAME [--score S]... [--player P]...`: a fresh
 * bearer token for the conductor's HTTP API, and the entry for the
 * conductor's config (`http.tokens`), which keeps only the token's SHA-256.
 * The token is printed once; store it where the audience reads it
 * (`ORCHESTRA_TOKEN`, `--token-file`).
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import { Tokens } from "@orchestra/conductor"
import { Console, Effect } from "effect"
import * as Exit from "./Exit.js"

export const tokenNew = Command.make(
  "new",
  {
    name: Options.text("name").pipe(Options.withDescription("Who or what holds the token (shown in logs and refusals)")),
    score: Options.text("score").pipe(Options.withDescription("Limit the token to this score (repeatable; none: any score)"), Options.repeated),
    player: Options.text("player").pipe(Options.withDescription("Limit the token to this player (repeatable; none: any player)"), Options.repeated),
    json: Options.boolean("json").pipe(Options.withDescription("Print JSON for scripts"))
  },
  (a) =>
    Effect.gen(function*() {
      if (a.name.trim() === "") return yield* new Exit.ExitWith({ code: Exit.codes.usage, message: "--name must not be empty" })
      const token = Tokens.generate()
      const entry = Tokens.entry({ name: a.name, token, scores: a.score, players: a.player })
      if (a.json) {
        yield* Console.log(JSON.stringify({ token, entry }))
        return
      }
      yield* Console.log(`token: ${token}`)
      yield* Console.log("")
      yield* Console.log("Add to the conductor's config (only the hash is kept), then restart it:")
      yield* Console.log("http:")
      yield* Console.log("  tokens:")
      yield* Console.log(`    - ${JSON.stringify(entry)}`)
    })
).pipe(Command.withDescription(
  "Make a bearer token for the HTTP API and its config entry (hashed). Example: orchestra token new --name deployer --score deploy --player web1"
))

export const token = Command.make("token").pipe(
  Command.withDescription("Bearer tokens of the conductor's HTTP API"),
  Command.withSubcommands([tokenNew])
)
