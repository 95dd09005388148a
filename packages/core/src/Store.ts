/**
 * The store: job records, task attempts and their outcomes, id allocation,
 * queries, recovery of unfinished jobs and retention. Implementations are
 * plugins (`store-memory`, `store-sqlite`, ...) and all pass the same
 * conformance suite.
 *
 * Writes are durable when their effect succeeds. Implementations are
 * expected to batch concurrent writes (group commit), so callers should
 * issue independent writes concurrently rather than one after another.
 *
 * The store also keeps pipeline runs (the document, the params and the
 * facts of the run in the order they happened, which the conductor replays
 * after a restart, as it replays a job's policy: docs/decisions/0002) and
 * the state of schedules (the latest fire time handled, per schedule).
 *
 * @since 0.1.0
 */
import type { Effect, Option, ParseResult, Scope } from "effect"
import { Context, Either, Schema } from "effect"
import type { StoreError } from "./Errors.js"
import type { Labels } from "./Job.js"
import { AttemptRecord, JobRecord, JobRequest, Response } from "./Job.js"
import { isJson, isJsonObject, JsonObject } from "./Json.js"
import { FinishedJobState, JobState } from "./JobState.js"
import { JobId as JobIdSchema, PlayerName, ScoreName } from "./Names.js"
import type { JobId, TaskRef } from "./Names.js"
import { Outcome } from "./Outcome.js"

/** A job to create. */
export interface NewJob {
  readonly request: JobRequest
  readonly targets: ReadonlyArray<PlayerName>
  /** Labels of the targets at submission, for policies that select by label. */
  readonly targetLabels?: Readonly<Record<string, Labels>>
  readonly createdAt: number
}

/** The result of creating a job. */
export interface Created {
  readonly id: JobId
  /** True when the idempotency key matched an existing job, which is returned instead. */
  readonly existing: boolean
}

/** An attempt of a task was handed to a player. */
export interface Dispatched {
  readonly ref: TaskRef
  readonly player: PlayerName
  readonly at: number
}

/** An attempt of a task ended. */
export interface Ended {
  readonly ref: TaskRef
  readonly player: PlayerName
  readonly outcome: Outcome
  readonly response: Response
  readonly log?: string
  readonly startedAt?: number
  readonly finishedAt: number
}

/** A page of jobs, newest first. */
export const JobQuery = Schema.Struct({
  state: Schema.optional(JobState),
  score: Schema.optional(ScoreName),
  player: Schema.optional(PlayerName),
  /** Created at or after (epoch ms). */
  since: Schema.optional(Schema.Number),
  /** Created before (epoch ms). */
  until: Schema.optional(Schema.Number),
  /** Only jobs with an id below this (paging cursor: the last id of the previous page). */
  before: Schema.optional(Schema.Int),
  limit: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 1000)), { default: () => 50 })
})
export type JobQuery = Schema.Schema.Encoded<typeof JobQuery>

export interface JobSummary {
  readonly id: JobId
  readonly score: string
  readonly policy: string
  readonly state: JobState
  readonly targets: ReadonlyArray<PlayerName>
  readonly createdAt: number
  readonly finishedAt?: number
}

export interface JobPage {
  readonly jobs: ReadonlyArray<JobSummary>
  /** Pass as `before` to get the next page; absent on the last page. */
  readonly next?: number
}

/** The store service. */
export interface StoreService {
  /**
   * Create a job with a new id, never used before (not even by a job that
   * was purged, nor after a crash). With an idempotency key already known,
   * returns that job instead.
   */
  readonly createJob: (job: NewJob) => Effect.Effect<Created, StoreError>
  /** Record that an attempt was handed to a player. Recording it twice is one record. */
  readonly recordDispatch: (dispatched: Dispatched) => Effect.Effect<void, StoreError>
  /** Record that a player started an attempt. */
  readonly recordStart: (ref: TaskRef, at: number) => Effect.Effect<void, StoreError>
  /**
   * Record how an attempt ended. The same attempt recorded twice is one
   * result: the first one wins, and the second returns `false`.
   */
  readonly recordEnd: (ended: Ended) => Effect.Effect<boolean, StoreError>
  /** Mark a job finished. Finishing a finished job changes nothing. */
  readonly finishJob: (id: JobId, state: FinishedJobState, at: number, reason?: string) => Effect.Effect<void, StoreError>
  readonly getJob: (id: JobId) => Effect.Effect<Option.Option<JobRecord>, StoreError>
  readonly listJobs: (query: JobQuery) => Effect.Effect<JobPage, StoreError>
  /** Every job still `PENDING`, oldest first, with its attempts: what a conductor resumes at start-up. */
  readonly unfinishedJobs: Effect.Effect<ReadonlyArray<JobRecord>, StoreError>
  /** Delete finished jobs that finished before `before`; returns how many. Ids stay used. */
  readonly purge: (before: number) => Effect.Effect<number, StoreError>

  // ---- pipeline runs ----

  /**
   * Create a pipeline run with a new id, never used before (not even by a
   * run that was purged, nor after a crash). With a key already known,
   * returns that run instead.
   */
  readonly createPipelineRun: (run: NewPipelineRun) => Effect.Effect<CreatedPipelineRun, StoreError>
  /**
   * Append a fact to an unfinished run, after every fact recorded before it
   * (`getPipelineRun` returns them in this order). `false`, and nothing
   * recorded, when the run is unknown or finished.
   */
  readonly recordPipelineEvent: (id: PipelineRunId, event: PipelineEvent) => Effect.Effect<boolean, StoreError>
  /** Mark a run finished. Finishing a finished run changes nothing. */
  readonly finishPipelineRun: (
    id: PipelineRunId,
    state: FinishedJobState,
    at: number,
    reason?: string
  ) => Effect.Effect<void, StoreError>
  readonly getPipelineRun: (id: PipelineRunId) => Effect.Effect<Option.Option<PipelineRunRecord>, StoreError>
  /** A page of runs (without their events), newest first. */
  readonly listPipelineRuns: (query: PipelineRunQuery) => Effect.Effect<PipelineRunPage, StoreError>
  /** Every run still `PENDING`, oldest first, with its events: what a conductor resumes at start-up. */
  readonly unfinishedPipelineRuns: Effect.Effect<ReadonlyArray<PipelineRunRecord>, StoreError>
  /** Delete finished runs that finished before `before`; returns how many. Ids stay used. */
  readonly purgePipelineRuns: (before: number) => Effect.Effect<number, StoreError>

  // ---- schedules ----

  /** The latest fire time (epoch ms) recorded for a schedule, if any. */
  readonly getScheduleState: (schedule: string) => Effect.Effect<Option.Option<number>, StoreError>
  /** Record the latest fire time handled for a schedule (replacing the one recorded). */
  readonly setScheduleState: (schedule: string, at: number) => Effect.Effect<void, StoreError>

  // ---- batches (optional) ----
  //
  // The conductor issues writes by the hundred at once (every dispatch of a
  // turn of its dispatch loop, every result of a turn of its ingest loop).
  // A store may take them as one call each: the same as the single-write
  // method for each item, in order, committed together; each item gets its
  // own result, so a bad item fails alone and the call itself never fails.
  // A caller uses a batch method when the store has it, and the single-write
  // method otherwise.
  //
  // A store defines these as NON-ENUMERABLE properties (see
  // `withBatches`): a wrapper made by spreading a store
  // (`{ ...store, recordEnd: ... }`) then has no batch methods, and is
  // called once per write, so its own single-write methods are never
  // bypassed. A wrapper that wants batches defines them itself.

  /** `recordDispatch` of each item. */
  readonly recordDispatches?: (dispatched: ReadonlyArray<Dispatched>) => Effect.Effect<ReadonlyArray<Either.Either<void, StoreError>>>
  /** `recordStart` of each item. */
  readonly recordStarts?: (started: ReadonlyArray<Start>) => Effect.Effect<ReadonlyArray<Either.Either<void, StoreError>>>
  /** `recordEnd` of each item: `true` for a result recorded, `false` for one already recorded or of an unknown job. */
  readonly recordEnds?: (ended: ReadonlyArray<Ended>) => Effect.Effect<ReadonlyArray<Either.Either<boolean, StoreError>>>
  /** `finishJob` of each item. */
  readonly finishJobs?: (finished: ReadonlyArray<Finish>) => Effect.Effect<ReadonlyArray<Either.Either<void, StoreError>>>
}

/** An attempt a player started (an item of `recordStarts`). */
export interface Start {
  readonly ref: TaskRef
  readonly at: number
}

/** A job that finished (an item of `finishJobs`). */
export interface Finish {
  readonly id: JobId
  readonly state: FinishedJobState
  readonly at: number
  readonly reason?: string | undefined
}

/** The batch methods of a store. */
export interface Batches {
  readonly recordDispatches: NonNullable<StoreService["recordDispatches"]>
  readonly recordStarts: NonNullable<StoreService["recordStarts"]>
  readonly recordEnds: NonNullable<StoreService["recordEnds"]>
  readonly finishJobs: NonNullable<StoreService["finishJobs"]>
}

/**
 * A store with batch methods, defined as non-enumerable properties of the
 * same object (so that spreading it leaves them out; see `StoreService`).
 */
export const withBatches = (service: StoreService, batches: Batches): StoreService => {
  for (const [name, value] of Object.entries(batches)) {
    Object.defineProperty(service, name, { value, enumerable: false, writable: false, configurable: false })
  }
  return service
}

export class Store extends Context.Tag("@orchestra/core/Store")<Store, StoreService>() {}

// ---- pipeline runs and schedules ------------------------------------------------

/** A pipeline run's id: a positive integer, never reused. */
export const PipelineRunId = Schema.Int.pipe(Schema.positive(), Schema.brand("PipelineRunId"))
export type PipelineRunId = typeof PipelineRunId.Type

const decodeRunId = Schema.decodeUnknownSync(PipelineRunId)
/** A `PipelineRunId` from a number (throws if it is not a positive integer). */
export const pipelineRunId = (n: number): PipelineRunId => decodeRunId(n)

/** How one player's task of a pipeline's job ended: its latest finished attempt. */
export const PipelinePlayerResult = Schema.Struct({ outcome: Outcome, response: Response })

/** How a job of a pipeline ended, as the pipeline sees it (`PipelineRun.JobResult`). */
export const PipelineJobResult = Schema.Struct({
  id: JobIdSchema,
  state: FinishedJobState,
  reason: Schema.optional(Schema.String),
  players: Schema.Record({ key: Schema.String, value: PipelinePlayerResult })
})
export type PipelineJobResult = typeof PipelineJobResult.Type

/**
 * A fact of a pipeline run, as the conductor records it and replays it
 * (`PipelineRun.Event` of `@orchestra/pipeline`): a job was submitted and
 * got an id, its submission was refused, it finished, the run was
 * cancelled. `at` is when the conductor fed it to the run.
 */
export const PipelineEvent = Schema.Union(
  Schema.TaggedStruct("Submitted", { jobName: Schema.String, id: JobIdSchema, at: Schema.Number }),
  Schema.TaggedStruct("SubmissionFailed", { jobName: Schema.String, reason: Schema.String, at: Schema.Number }),
  Schema.TaggedStruct("Finished", { jobName: Schema.String, result: PipelineJobResult, at: Schema.Number }),
  Schema.TaggedStruct("Cancelled", { reason: Schema.String, at: Schema.Number })
)
export type PipelineEvent = typeof PipelineEvent.Type

const Key = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(256))

/** A pipeline run to create. */
export const NewPipelineRun = Schema.Struct({
  /** The pipeline's name (its document's `name`). */
  pipeline: Key,
  /** The document's file name, as given (for messages: `file:line`). */
  file: Schema.String,
  /** The document's text, as submitted: what the run replays after a restart. */
  document: Schema.String,
  /** The run's params, as given. */
  params: JsonObject,
  createdAt: Schema.Number,
  /** The same key returns the same run instead of creating another (a schedule's fire time). */
  key: Schema.optional(Key)
})
export type NewPipelineRun = typeof NewPipelineRun.Type

/** The result of creating a pipeline run. */
export interface CreatedPipelineRun {
  readonly id: PipelineRunId
  /** True when the key matched an existing run, which is returned instead. */
  readonly existing: boolean
}

/** A pipeline run as the store keeps it. */
export class PipelineRunRecord extends Schema.Class<PipelineRunRecord>("PipelineRunRecord")({
  id: PipelineRunId,
  key: Schema.optional(Key),
  pipeline: Schema.String,
  file: Schema.String,
  document: Schema.String,
  params: JsonObject,
  state: JobState,
  createdAt: Schema.Number,
  finishedAt: Schema.optional(Schema.Number),
  reason: Schema.optional(Schema.String),
  /** Every fact recorded, in the order recorded. */
  events: Schema.Array(PipelineEvent)
}) {}

/** A page of pipeline runs, newest first. */
export const PipelineRunQuery = Schema.Struct({
  state: Schema.optional(JobState),
  pipeline: Schema.optional(Schema.String),
  /** Only runs with an id below this (paging cursor: the last id of the previous page). */
  before: Schema.optional(Schema.Int),
  limit: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 1000)), { default: () => 50 })
})
export type PipelineRunQuery = Schema.Schema.Encoded<typeof PipelineRunQuery>

export interface PipelineRunSummary {
  readonly id: PipelineRunId
  readonly pipeline: string
  readonly state: JobState
  readonly createdAt: number
  readonly finishedAt?: number
  readonly reason?: string
}

export interface PipelineRunPage {
  readonly runs: ReadonlyArray<PipelineRunSummary>
  /** Pass as `before` to get the next page; absent on the last page. */
  readonly next?: number
}

/** A schedule name as the store keeps it. */
export const ScheduleName = Key

/** Decode a stored pipeline run (its encoded form: JSON of these schemas). */
export const decodePipelineRun = Schema.decodeUnknownEither(PipelineRunRecord)

/** What a store plugin provides: a factory of store layers from its own config. */
export interface StorePlugin {
  readonly kind: "store"
  readonly name: string
  readonly description: string
  /**
   * Build the store from its config block (already parsed YAML; paths are
   * resolved against `baseDir`). The store lives as long as the scope.
   */
  readonly make: (config: unknown, context: { readonly baseDir: string }) => Effect.Effect<StoreService, StoreError, Scope.Scope>
}

export const isStorePlugin = (u: unknown): u is StorePlugin =>
  typeof u === "object" && u !== null && (u as { kind?: unknown }).kind === "store" &&
  typeof (u as { name?: unknown }).name === "string" && typeof (u as { make?: unknown }).make === "function"

export { JobRecord, JobRequest }

// ---- decoding stored records ---------------------------------------------------

const trusted = { disableValidation: true } as const
const decodeRecordSchema = Schema.decodeUnknownEither(JobRecord)

/** `Schema.is` of a name schema, remembering names that passed (the same few come back all the time). */
const memoIs = (is: (u: unknown) => boolean, max = 4096): (u: unknown) => boolean => {
  const ok = new Set<string>()
  return (u) => {
    if (typeof u !== "string") return false
    if (ok.has(u)) return true
    if (!is(u)) return false
    if (ok.size >= max) ok.clear()
    ok.add(u)
    return true
  }
}
const isPlayerName = memoIs(Schema.is(PlayerName))
const isScoreName = memoIs(Schema.is(ScoreName))
const jobStates: ReadonlySet<unknown> = new Set(JobState.literals)

type Fields = Record<string, unknown>
const isFields = (u: unknown): u is Fields => {
  if (typeof u !== "object" || u === null || Array.isArray(u)) return false
  const proto = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}
const isInt = (u: unknown): u is number => typeof u === "number" && Number.isSafeInteger(u)
const isIntIn = (u: unknown, min: number, max: number): u is number => isInt(u) && u >= min && u <= max
const isNumberIn = (u: unknown, min: number, max: number): u is number => typeof u === "number" && u >= min && u <= max
const isStringOf = (u: unknown, min: number, max: number): u is string => typeof u === "string" && u.length >= min && u.length <= max
const LABEL_KEY = /^[A-Za-z0-9_.\-/]{1,63}$/
const isLabels = (u: unknown): u is Labels => {
  if (!isFields(u)) return false
  for (const k in u) {
    const v = u[k]
    if (typeof v !== "string" || v.length > 256 || !LABEL_KEY.test(k)) return false
  }
  return true
}
const names = (u: unknown, max: number): Array<PlayerName> | undefined => {
  if (!Array.isArray(u) || u.length > max) return undefined
  for (const p of u) if (!isPlayerName(p)) return undefined
  return [...u] as Array<PlayerName>
}

/** A stored `JobRequest` (its encoded form), decoded as the schema would; undefined when the checks do not pass. */
const fastRequest = (u: unknown): JobRequest | undefined => {
  if (!isFields(u) || !isScoreName(u["score"])) return undefined
  const players = u["players"] === undefined ? [] : names(u["players"], 100_000)
  if (players === undefined) return undefined
  const policy = u["policy"]
  if (!isFields(policy) || !isStringOf(policy["name"], 1, 256)) return undefined
  const options = policy["options"] === undefined ? {} : policy["options"]
  if (!isJson(options)) return undefined
  const params = u["params"] === undefined ? {} : u["params"]
  if (!isJsonObject(params)) return undefined
  const labels = u["labels"] === undefined ? {} : u["labels"]
  if (!isLabels(labels)) return undefined
  const out: Fields = { score: u["score"], players, policy: { name: policy["name"], options }, params, labels }
  const selector = u["selector"]
  if (selector !== undefined) {
    if (!isLabels(selector)) return undefined
    out["selector"] = selector
  }
  const deadline = u["deadline"]
  if (deadline !== undefined) {
    if (!isInt(deadline) || deadline <= 0) return undefined
    out["deadline"] = deadline
  }
  const key = u["idempotencyKey"]
  if (key !== undefined) {
    if (!isStringOf(key, 1, 256)) return undefined
    out["idempotencyKey"] = key
  }
  const retry = u["retry"]
  if (retry !== undefined) {
    if (!isFields(retry) || !isIntIn(retry["max"], 0, 100)) return undefined
    const backoffMs = retry["backoffMs"] ?? 1000
    const factor = retry["factor"] ?? 2
    const maxBackoffMs = retry["maxBackoffMs"] ?? 300_000
    if (!isIntIn(backoffMs, 0, 3_600_000) || !isNumberIn(factor, 1, 10) || !isIntIn(maxBackoffMs, 0, 86_400_000)) return undefined
    out["retry"] = { max: retry["max"], backoffMs, factor, maxBackoffMs }
  }
  return new JobRequest(out as unknown as JobRequest, trusted)
}

const outcomes: ReadonlySet<unknown> = new Set(Outcome.literals)

const fastAttempt = (u: unknown): AttemptRecord | undefined => {
  if (!isFields(u)) return undefined
  const { key, attempt, player, dispatchedAt, startedAt, finishedAt, outcome, response, log, seq } = u
  if (!isStringOf(key, 1, 256) || !isInt(attempt) || attempt < 1 || !isPlayerName(player) || typeof dispatchedAt !== "number") return undefined
  const out: Fields = { key, attempt, player, dispatchedAt }
  if (startedAt !== undefined) {
    if (typeof startedAt !== "number") return undefined
    out["startedAt"] = startedAt
  }
  if (finishedAt !== undefined) {
    if (typeof finishedAt !== "number") return undefined
    out["finishedAt"] = finishedAt
  }
  if (outcome !== undefined) {
    if (!outcomes.has(outcome)) return undefined
    out["outcome"] = outcome
  }
  if (response !== undefined) {
    if (!isJsonObject(response)) return undefined
    out["response"] = response
  }
  if (log !== undefined) {
    if (typeof log !== "string") return undefined
    out["log"] = log
  }
  if (seq !== undefined) {
    if (!isInt(seq)) return undefined
    out["seq"] = seq
  }
  return new AttemptRecord(out as unknown as AttemptRecord, trusted)
}

/** A stored record, decoded as the `JobRecord` schema would; undefined when the checks do not pass. */
const fastRecord = (u: unknown): JobRecord | undefined => {
  if (!isFields(u)) return undefined
  const { id, request, targets, targetLabels, state, createdAt, finishedAt, reason, attempts } = u
  if (!isInt(id) || id <= 0 || !jobStates.has(state) || typeof createdAt !== "number") return undefined
  const req = fastRequest(request)
  if (req === undefined) return undefined
  const ts = names(targets, Number.MAX_SAFE_INTEGER)
  if (ts === undefined) return undefined
  const labels = targetLabels === undefined ? {} : targetLabels
  if (!isFields(labels)) return undefined
  for (const k in labels) if (!isLabels(labels[k])) return undefined
  if (!Array.isArray(attempts)) return undefined
  const as = new Array<AttemptRecord>(attempts.length)
  for (let i = 0; i < attempts.length; i++) {
    const a = fastAttempt(attempts[i])
    if (a === undefined) return undefined
    as[i] = a
  }
  const out: Fields = { id, request: req, targets: ts, targetLabels: labels, state, createdAt, attempts: as }
  if (finishedAt !== undefined) {
    if (typeof finishedAt !== "number") return undefined
    out["finishedAt"] = finishedAt
  }
  if (reason !== undefined) {
    if (typeof reason !== "string") return undefined
    out["reason"] = reason
  }
  return new JobRecord(out as unknown as JobRecord, trusted)
}

/**
 * Decode a job record in its encoded form (as a store keeps it: JSON of the
 * core schemas) into a `JobRecord`, checking it against the schema. Every
 * store decodes each record it returns, and does it for every status poll;
 * records of the usual shape are checked field by field here — the same
 * rules, a fraction of the cost — and anything else (an unusual field, a
 * value that fails a check) goes through the schema, which reports why.
 */
export const decodeRecord = (u: unknown): Either.Either<JobRecord, ParseResult.ParseError> => {
  const fast = fastRecord(u)
  return fast === undefined ? decodeRecordSchema(u) : Either.right(fast)
}
