/**
 * Jobs as the audience asks for them and as the store keeps them.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { JobState } from "./JobState.js"
import { Json, JsonObject } from "./Json.js"
import { Attempt, JobId, PlayerName, ScoreName, TaskKey } from "./Names.js"
import { Outcome } from "./Outcome.js"

/** The response a score reports: a string map (`env`/`pipe`) or a JSON object (`json`). */
export const Response = JsonObject
export type Response = typeof Response.Type

/** Labels: short key/value strings, on players (`role: web`) and jobs. A bad key is an error, never dropped. */
export const Labels = Schema.Record({ key: Schema.String, value: Schema.String.pipe(Schema.maxLength(256)) }).pipe(
  Schema.filter((labels) => {
    const bad = Object.keys(labels).filter((k) => !/^[A-Za-z0-9_.\-/]{1,63}$/.test(k))
    return bad.length === 0 ||
      `label keys must be 1-63 characters of letters, digits, "_", ".", "-" or "/" (got ${bad.map((k) => JSON.stringify(k)).join(", ")})`
  })
)
export type Labels = typeof Labels.Type

/** Which policy schedules a job, and its options (checked by the policy's own schema). */
export const PolicyRef = Schema.Struct({
  name: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(256)),
  options: Schema.optionalWith(Json, { default: () => ({}) })
})
export type PolicyRef = typeof PolicyRef.Type

/** Opt-in retries of hard failures, with exponential backoff. */
export const RetryPolicy = Schema.Struct({
  max: Schema.Int.pipe(Schema.between(0, 100)),
  backoffMs: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 3_600_000)), { default: () => 1000 }),
  factor: Schema.optionalWith(Schema.Number.pipe(Schema.between(1, 10)), { default: () => 2 }),
  maxBackoffMs: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 86_400_000)), { default: () => 300_000 })
})
export type RetryPolicy = typeof RetryPolicy.Type

/** A job as the audience submits it. */
export class JobRequest extends Schema.Class<JobRequest>("JobRequest")({
  score: ScoreName,
  /** Target players by name. */
  players: Schema.optionalWith(Schema.Array(PlayerName).pipe(Schema.maxItems(100_000)), { default: () => [] }),
  /** Target players by labels: every player whose labels include all of these. */
  selector: Schema.optional(Labels),
  policy: PolicyRef,
  params: Schema.optionalWith(JsonObject, { default: () => ({}) }),
  /** Epoch milliseconds after which tasks not yet finished end as `TIMEOUT`. */
  deadline: Schema.optional(Schema.Int.pipe(Schema.positive())),
  /** The same key returns the same job instead of creating another. */
  idempotencyKey: Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(256))),
  retry: Schema.optional(RetryPolicy),
  labels: Schema.optionalWith(Labels, { default: () => ({}) })
}) {}

/** One dispatch of one task to one player, and how it ended. */
export class AttemptRecord extends Schema.Class<AttemptRecord>("AttemptRecord")({
  key: TaskKey,
  attempt: Attempt,
  player: PlayerName,
  dispatchedAt: Schema.Number,
  startedAt: Schema.optional(Schema.Number),
  finishedAt: Schema.optional(Schema.Number),
  outcome: Schema.optional(Outcome),
  response: Schema.optional(Response),
  log: Schema.optional(Schema.String),
  /** Order in which outcomes were recorded across the job (replay order). */
  seq: Schema.optional(Schema.Int)
}) {}

/** A job as the store keeps it. */
export class JobRecord extends Schema.Class<JobRecord>("JobRecord")({
  id: JobId,
  request: JobRequest,
  /** The players the job targets, resolved at submission (names and selector). */
  targets: Schema.Array(PlayerName),
  /** Labels of the targets at submission. */
  targetLabels: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Labels }), { default: () => ({}) }),
  state: JobState,
  createdAt: Schema.Number,
  finishedAt: Schema.optional(Schema.Number),
  /** Why the job ended the way it did, when there is more to say than its state. */
  reason: Schema.optional(Schema.String),
  /** Every attempt, in dispatch order. */
  attempts: Schema.Array(AttemptRecord)
}) {}

/** The outcome of a player in a job: its latest attempt that has ended. */
export interface PlayerResult {
  readonly outcome: Outcome
  /** Order the result was recorded in, across the job. */
  readonly seq: number
  readonly response: Response
  readonly attempt: number
  readonly key: TaskKey
}

/**
 * Per-player results of a job, as the original's status showed them: for
 * each player, its latest finished attempt. Players with no result yet are
 * absent.
 */
export const playerResults = (job: JobRecord): ReadonlyMap<PlayerName, PlayerResult> => {
  const out = new Map<PlayerName, PlayerResult & { readonly seq: number }>()
  for (const a of job.attempts) {
    if (a.outcome === undefined) continue
    const seq = a.seq ?? 0
    const prev = out.get(a.player)
    if (prev === undefined || prev.seq <= seq) {
      out.set(a.player, { outcome: a.outcome, response: a.response ?? {}, attempt: a.attempt, key: a.key, seq })
    }
  }
  return out
}
