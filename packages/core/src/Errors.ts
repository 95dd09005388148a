/**
 * Typed errors shared across Orchestra. Errors that cross a wire or are
 * stored are `Schema.TaggedError`s.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/** One thing wrong with an input, and where. */
export const Issue = Schema.Struct({
  /** Where, as a path (`params.threshold`) or `file:line` when known. */
  path: Schema.String,
  message: Schema.String
})
export type Issue = typeof Issue.Type

/** A request (job, query, command) that was refused; lists every issue. */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()("InvalidRequest", {
  message: Schema.String,
  issues: Schema.Array(Issue)
}) {}

/** A job id the store does not know. */
export class JobNotFound extends Schema.TaggedError<JobNotFound>()("JobNotFound", {
  id: Schema.Number
}) {
  override get message() {
    return `job ${this.id} not found`
  }
}

/** A store operation that failed. */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  operation: Schema.String,
  message: Schema.String
}) {}

/** A plugin name that resolves to nothing; lists the known names. */
export class UnknownPlugin extends Schema.TaggedError<UnknownPlugin>()("UnknownPlugin", {
  kind: Schema.Literal("policy", "store", "transport"),
  name: Schema.String,
  known: Schema.Array(Schema.String)
}) {
  override get message() {
    return `unknown ${this.kind} plugin "${this.name}" (known: ${this.known.join(", ") || "none"})`
  }
}

/** A user plugin that could not be loaded, or is not a plugin. */
export class PluginLoadError extends Schema.TaggedError<PluginLoadError>()("PluginLoadError", {
  spec: Schema.String,
  message: Schema.String
}) {}

/** A policy that threw, returned an invalid decision or got bad options; fails only its job. */
export class PolicyError extends Schema.TaggedError<PolicyError>()("PolicyError", {
  policy: Schema.String,
  reason: Schema.Literal("options", "threw", "invalid-decision"),
  message: Schema.String
}) {}

/** The conductor refused a player's session (name, certificate, allowlist, duplicate). */
export class SessionRefused extends Schema.TaggedError<SessionRefused>()("SessionRefused", {
  reason: Schema.String
}) {}

/** A transport-level failure (connect, TLS, framing, heartbeat). */
export class TransportError extends Schema.TaggedError<TransportError>()("TransportError", {
  reason: Schema.Literal("connect", "tls", "frame", "protocol", "heartbeat", "closed", "config"),
  message: Schema.String
}) {}

/** A configuration file or value that is wrong; names file, line and field when known. */
export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", {
  file: Schema.optional(Schema.String),
  message: Schema.String,
  issues: Schema.Array(Issue)
}) {}
