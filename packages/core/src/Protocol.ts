/**
 * The messages conductor and players exchange, whatever the transport.
 * Every message received is checked against these schemas; heartbeats are
 * the transport's own business and never appear here.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { Catalog } from "./Catalog.js"
import { JsonObject } from "./Json.js"
import { Labels, Response } from "./Job.js"
import { PlayerName, ScoreName, TaskRef } from "./Names.js"
import { Outcome } from "./Outcome.js"

export const PROTOCOL_VERSION = 1

// ---- player → conductor -------------------------------------------------

/** The first message of a session: who the player is and what it can run. */
export class Hello extends Schema.TaggedClass<Hello>()("Hello", {
  protocol: Schema.Literal(PROTOCOL_VERSION),
  player: PlayerName,
  /** How many tasks it runs at once. */
  slots: Schema.Int.pipe(Schema.between(1, 10_000)),
  labels: Schema.optionalWith(Labels, { default: () => ({}) }),
  catalog: Catalog,
  /** Attempts it is running now (after a reconnect), so they are not dispatched again. */
  running: Schema.optionalWith(Schema.Array(TaskRef), { default: () => [] })
}) {}

/** The catalog changed (after a reload). */
export class CatalogChanged extends Schema.TaggedClass<CatalogChanged>()("CatalogChanged", {
  catalog: Catalog
}) {}

/** Attempts that started running. */
export class Started extends Schema.TaggedClass<Started>()("Started", {
  tasks: Schema.Array(Schema.Struct({ ref: TaskRef, at: Schema.Number }))
}) {}

export const TaskResult = Schema.Struct({
  ref: TaskRef,
  outcome: Outcome,
  response: Response,
  /** stderr and non-protocol stdout, capped. */
  log: Schema.optionalWith(Schema.String, { default: () => "" }),
  startedAt: Schema.optional(Schema.Number),
  finishedAt: Schema.Number
})
export type TaskResult = typeof TaskResult.Type

/** Attempts that ended; re-sent until acknowledged. */
export class Results extends Schema.TaggedClass<Results>()("Results", {
  results: Schema.Array(TaskResult)
}) {}

export const FromPlayer = Schema.Union(Hello, CatalogChanged, Started, Results)
export type FromPlayer = typeof FromPlayer.Type

// ---- conductor → player -------------------------------------------------

/** The session is accepted. */
export class Welcome extends Schema.TaggedClass<Welcome>()("Welcome", {
  protocol: Schema.Literal(PROTOCOL_VERSION),
  conductor: Schema.String
}) {}

export const Assignment = Schema.Struct({
  ref: TaskRef,
  score: ScoreName,
  params: JsonObject,
  /** Epoch ms after which the task must not start, and is stopped if running. */
  deadline: Schema.optional(Schema.Number)
})
export type Assignment = typeof Assignment.Type

/** Run these attempts. An attempt the player already ran or runs is not run again. */
export class Run extends Schema.TaggedClass<Run>()("Run", {
  tasks: Schema.Array(Assignment)
}) {}

/** These results are durably recorded; the player may forget them. */
export class Ack extends Schema.TaggedClass<Ack>()("Ack", {
  refs: Schema.Array(TaskRef)
}) {}

/** Stop these attempts; each ends with outcome `CANCELLED`. */
export class Cancel extends Schema.TaggedClass<Cancel>()("Cancel", {
  refs: Schema.Array(TaskRef)
}) {}

/** The session is refused or ended, and why. */
export class Refused extends Schema.TaggedClass<Refused>()("Refused", {
  reason: Schema.String
}) {}

export const ToPlayer = Schema.Union(Welcome, Run, Ack, Cancel, Refused)
export type ToPlayer = typeof ToPlayer.Type

export { Catalog, Labels, Outcome, PlayerName, ScoreName }
