/**
 * @orchestra/player — the player daemon: its configuration, score catalog,
 * execution of scores (env, pipe, json), the durable outbox of results,
 * the session with the conductor, and the wiring of the binary.
 *
 * @since 0.1.0
 */
export * as Execution from "./Execution.js"
export * as NodePluginLoader from "./NodePluginLoader.js"
export * as Outbox from "./Outbox.js"
export * as Player from "./Player.js"
export * as PlayerConfig from "./PlayerConfig.js"
export * as PlayerLive from "./PlayerLive.js"
export * as ScoreCatalog from "./ScoreCatalog.js"
