/**
 * `orchestra conductor` and `orchestra player`: the two daemons, each wired
 * in its own package (`ConductorLive`, `PlayerLive`).
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import { ConductorLive } from "@orchestra/conductor"
import { PlayerLive } from "@orchestra/player"
import { Effect } from "effect"
import * as Exit from "./Exit.js"

const configOption = Options.file("config", { exists: "yes" }).pipe(
  Options.withAlias("c"),
  Options.withDescription("The YAML configuration file")
)

/** A daemon that could not start: print why, exit 78 for configuration problems, 69 otherwise. */
const startFailure = (e: { readonly _tag: string; readonly message: string }) =>
  new Exit.ExitWith({
    code: e._tag === "ConfigError" || e._tag === "UnknownPlugin" || e._tag === "PluginLoadError" ? Exit.codes.config : Exit.codes.unavailable,
    message: e.message
  })

export const conductor = Command.make("conductor", { config: configOption }, (a) =>
  ConductorLive.run(a.config).pipe(Effect.mapError(startFailure))).pipe(
    Command.withDescription(
      "Run the conductor daemon until SIGTERM/SIGINT; SIGHUP reloads the players allowlist and the CRL. Example: orchestra conductor --config samples/conductor.yaml"
    )
  )

export const player = Command.make("player", { config: configOption }, (a) =>
  PlayerLive.run(a.config).pipe(Effect.mapError(startFailure))).pipe(
    Command.withDescription(
      "Run the player daemon until SIGTERM/SIGINT; SIGHUP reloads the score catalog. Example: orchestra player --config samples/player.yaml"
    )
  )
