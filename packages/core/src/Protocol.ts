/**
 * The messages conductor and players exchange, whatever the transport.
 * Every message received is checked against these schemas; heartbeats are
 * the transport's own business and never appear here.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { Catalog } from "./Catalog.js"
import { isJsonObject, JsonObject } from "./Json.js"
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

// ---- fast decoding of the busiest messages ----------------------------------

/**
 * Decoders of the messages that flow for every task — `Started`, `Results`
 * (player → conductor), `Run`, `Ack` (conductor → player) — that check
 * exactly what their schemas check, field by field, and build the same
 * value (a class instance holding fresh objects with only the schema's
 * keys, defaults applied). They return `undefined` for anything they do not
 * accept, and the caller then decodes with the schema, which gives the
 * error (or accepts an unusual but valid message). A transport uses them to
 * skip the schema machinery on the common path; every message is still
 * checked.
 *
 * Keep them next to the schemas above: a field added to one of these
 * messages must be added here too (a message with the new field would
 * otherwise always take the slower schema path, never a wrong one, as long
 * as its checks stay at least as strict).
 */
export const fastDecoders: {
  readonly Started: (u: unknown) => Started | undefined
  readonly Results: (u: unknown) => Results | undefined
  readonly Run: (u: unknown) => Run | undefined
  readonly Ack: (u: unknown) => Ack | undefined
} = (() => {
  const trusted = { disableValidation: true } as const
  const isJobId = (u: unknown): u is number => typeof u === "number" && Number.isSafeInteger(u) && u > 0
  const ref = (u: unknown): TaskRef | undefined => {
    if (typeof u !== "object" || u === null) return undefined
    const { job, key, attempt } = u as { readonly job?: unknown; readonly key?: unknown; readonly attempt?: unknown }
    if (!isJobId(job) || typeof key !== "string" || key.length < 1 || key.length > 256) return undefined
    if (typeof attempt !== "number" || !Number.isSafeInteger(attempt) || attempt < 1) return undefined
    return { job, key, attempt } as TaskRef
  }
  const outcomes: ReadonlySet<unknown> = new Set(Outcome.literals)
  const isScoreName = Schema.is(ScoreName)
  const scoreNames = new Set<string>()
  const scoreName = (u: unknown): boolean => {
    if (typeof u !== "string") return false
    if (scoreNames.has(u)) return true
    if (!isScoreName(u)) return false
    if (scoreNames.size >= 4096) scoreNames.clear()
    scoreNames.add(u)
    return true
  }
  const items = <A>(u: unknown, key: string, item: (x: unknown) => A | undefined): Array<A> | undefined => {
    if (typeof u !== "object" || u === null) return undefined
    const xs = (u as Record<string, unknown>)[key]
    if (!Array.isArray(xs)) return undefined
    const out = new Array<A>(xs.length)
    for (let i = 0; i < xs.length; i++) {
      const x = item(xs[i])
      if (x === undefined) return undefined
      out[i] = x
    }
    return out
  }
  const field = (u: unknown, key: string): unknown => (u as Record<string, unknown>)[key]
  const isObject = (u: unknown): u is object => typeof u === "object" && u !== null

  const started = (x: unknown) => {
    if (!isObject(x)) return undefined
    const r = ref(field(x, "ref"))
    const at = field(x, "at")
    return r === undefined || typeof at !== "number" ? undefined : { ref: r, at }
  }
  const result = (x: unknown): TaskResult | undefined => {
    if (!isObject(x)) return undefined
    const r = ref(field(x, "ref"))
    const outcome = field(x, "outcome")
    const response = field(x, "response")
    const log = field(x, "log")
    const startedAt = field(x, "startedAt")
    const finishedAt = field(x, "finishedAt")
    if (r === undefined || !outcomes.has(outcome) || !isJsonObject(response)) return undefined
    if ((log !== undefined && typeof log !== "string") || typeof finishedAt !== "number") return undefined
    if (startedAt !== undefined && typeof startedAt !== "number") return undefined
    const base = { ref: r, outcome: outcome as Outcome, response, log: log ?? "" }
    return startedAt === undefined ? { ...base, finishedAt } : { ...base, startedAt, finishedAt }
  }
  const assignment = (x: unknown): Assignment | undefined => {
    if (!isObject(x)) return undefined
    const r = ref(field(x, "ref"))
    const score = field(x, "score")
    const params = field(x, "params")
    const deadline = field(x, "deadline")
    if (r === undefined || !scoreName(score) || !isJsonObject(params)) return undefined
    if (deadline !== undefined && typeof deadline !== "number") return undefined
    const base = { ref: r, score: score as ScoreName, params }
    return deadline === undefined ? base : { ...base, deadline }
  }
  const tagged = (u: unknown, tag: string): boolean => isObject(u) && field(u, "_tag") === tag

  return {
    Started: (u) => {
      if (!tagged(u, "Started")) return undefined
      const tasks = items(u, "tasks", started)
      return tasks === undefined ? undefined : new Started({ tasks }, trusted)
    },
    Results: (u) => {
      if (!tagged(u, "Results")) return undefined
      const results = items(u, "results", result)
      return results === undefined ? undefined : new Results({ results }, trusted)
    },
    Run: (u) => {
      if (!tagged(u, "Run")) return undefined
      const tasks = items(u, "tasks", assignment)
      return tasks === undefined ? undefined : new Run({ tasks }, trusted)
    },
    Ack: (u) => {
      if (!tagged(u, "Ack")) return undefined
      const refs = items(u, "refs", ref)
      return refs === undefined ? undefined : new Ack({ refs }, trusted)
    }
  }
})()
