/**
 * @orchestra/core — the domain model of Orchestra (scores, players, jobs,
 * tasks, outcomes), its typed errors, the wire protocol, and the interfaces
 * of the three plugin kinds: Policy, Transport and Store. Imports no plugin
 * and no Node API.
 *
 * @since 0.1.0
 */
export * as Catalog from "./Catalog.js"
export * as Errors from "./Errors.js"
export * as Inbox from "./Inbox.js"
export * as Job from "./Job.js"
export * as JobState from "./JobState.js"
export * as Json from "./Json.js"
export * as Names from "./Names.js"
export * as Outcome from "./Outcome.js"
export * as PluginRegistry from "./PluginRegistry.js"
export * as Policy from "./Policy.js"
export * as PolicyRun from "./PolicyRun.js"
export * as Protocol from "./Protocol.js"
export * as Simulation from "./Simulation.js"
export * as Store from "./Store.js"
export * as Transport from "./Transport.js"
