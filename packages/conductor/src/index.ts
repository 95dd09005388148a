/**
 * @orchestra/conductor — the conductor daemon: configuration, intake,
 * the dispatch engine, player sessions, recovery, the audience event log
 * and operations, the audience Unix socket, the HTTP API (with tokens and
 * metrics), retention, and the wiring of the `orchestra conductor` binary
 * (`ConductorLive`).
 *
 * @since 0.1.0
 */
export * as Allowlist from "./Allowlist.js"
export * as Audience from "./Audience.js"
export * as AudienceSocket from "./AudienceSocket.js"
export * as Conductor from "./Conductor.js"
export * as ConductorConfig from "./ConductorConfig.js"
export * as ConductorLive from "./ConductorLive.js"
export * as DispatchQueue from "./DispatchQueue.js"
export * as Engine from "./Engine.js"
export * as Events from "./Events.js"
export * as HttpServer from "./HttpServer.js"
export * as Intake from "./Intake.js"
export * as Logging from "./Logging.js"
export * as Metrics from "./Metrics.js"
export * as PlayerRegistry from "./PlayerRegistry.js"
export * as PluginLoader from "./PluginLoader.js"
export * as Retention from "./Retention.js"
export * as Tokens from "./Tokens.js"
export * as Pipelines from "./Pipelines.js"
