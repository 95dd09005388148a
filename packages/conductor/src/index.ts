/**
 * @orchestra/conductor — the conductor daemon: configuration, intake,
 * the dispatch engine, player sessions, recovery, the audience Unix socket,
 * retention, and the wiring of the `orchestra conductor` binary
 * (`ConductorLive`).
 *
 * @since 0.1.0
 */
export * as Allowlist from "./Allowlist.js"
export * as AudienceSocket from "./AudienceSocket.js"
export * as Conductor from "./Conductor.js"
export * as ConductorConfig from "./ConductorConfig.js"
export * as ConductorLive from "./ConductorLive.js"
export * as DispatchQueue from "./DispatchQueue.js"
export * as Engine from "./Engine.js"
export * as Intake from "./Intake.js"
export * as Logging from "./Logging.js"
export * as PlayerRegistry from "./PlayerRegistry.js"
export * as PluginLoader from "./PluginLoader.js"
export * as Retention from "./Retention.js"
