/**
 * Writes as rows (encoded through the core schemas before they are queued,
 * so a bad input fails its own call and nothing else) and database rows
 * back into core records (decoded through the core schemas).
 *
 * @since 0.1.0
 */
import { Errors, Job, JobState, Names, Outcome, Store } from "@orchestra/core"
import { Effect, Either, ParseResult, Schema } from "effect"
import * as Checks from "./checks.js"

const StoreError = Errors.StoreError
type StoreError = Errors.StoreError

/** One write, as queued for the writer. */
export type Write =
  | {
    readonly _tag: "Create"
    readonly key: string | null
    readonly score: string
    readonly policy: string
    readonly request: string
    readonly targets: ReadonlyArray<string>
    readonly targetsJson: string
    readonly targetLabels: string
    readonly createdAt: number
  }
  | {
    readonly _tag: "Dispatch"
    readonly job: number
    readonly key: string
    readonly attempt: number
    readonly player: string
    readonly at: number
  }
  | { readonly _tag: "Start"; readonly job: number; readonly key: string; readonly attempt: number; readonly at: number }
  | {
    readonly _tag: "End"
    readonly job: number
    readonly key: string
    readonly attempt: number
    readonly player: string
    readonly outcome: string
    readonly response: string
    readonly log: string | null
    readonly startedAt: number | null
    readonly finishedAt: number
  }
  | {
    readonly _tag: "Finish"
    readonly job: number
    readonly state: string
    readonly at: number
    readonly reason: string | null
  }
  | { readonly _tag: "Purge"; readonly before: number }
  | PipelineWrite

/** Writes of pipeline runs and schedules: rare, applied one by one in call order. */
export type PipelineWrite =
  | {
    readonly _tag: "CreateRun"
    readonly key: string | null
    readonly pipeline: string
    readonly file: string
    readonly document: string
    readonly params: string
    readonly createdAt: number
  }
  | { readonly _tag: "RunEvent"; readonly run: number; readonly event: string }
  | { readonly _tag: "FinishRun"; readonly run: number; readonly state: string; readonly at: number; readonly reason: string | null }
  | { readonly _tag: "PurgeRuns"; readonly before: number }
  | { readonly _tag: "SetSchedule"; readonly name: string; readonly at: number }

const pipelineTags: ReadonlySet<string> = new Set(["CreateRun", "RunEvent", "FinishRun", "PurgeRuns", "SetSchedule"])
export const isPipelineWrite = (w: Write): w is PipelineWrite => pipelineTags.has(w._tag)

export const operationOf = (w: Write): string => {
  switch (w._tag) {
    case "CreateRun":
      return "createPipelineRun"
    case "RunEvent":
      return "recordPipelineEvent"
    case "FinishRun":
      return "finishPipelineRun"
    case "PurgeRuns":
      return "purgePipelineRuns"
    case "SetSchedule":
      return "setScheduleState"
    case "Create":
      return "createJob"
    case "Dispatch":
      return "recordDispatch"
    case "Start":
      return "recordStart"
    case "End":
      return "recordEnd"
    case "Finish":
      return "finishJob"
    case "Purge":
      return "purge"
  }
}

const invalid = (operation: string) => (e: ParseResult.ParseError) =>
  new StoreError({ operation, message: `invalid input: ${ParseResult.TreeFormatter.formatErrorSync(e)}` })

/**
 * Check an input against its schema and give its encoded form: inputs the
 * fast checks accept (`checks.ts`: only what the schema accepts) are their
 * own encoded form, as these schemas have no transformations; any other
 * goes through the schema, which rejects it with the reason or encodes it.
 * A write is checked in its caller's fiber, so a bad one fails alone.
 */
const checked = <A, I>(schema: Schema.Schema<A, I>, operation: string, fast: (a: A) => boolean) => {
  const encode = Schema.encodeEither(schema)
  return (a: A): Either.Either<I, StoreError> =>
    fast(a) ? Either.right(a as unknown as I) : Either.mapLeft(encode(a), invalid(operation))
}

const NewJobInput = Schema.Struct({
  request: Job.JobRequest,
  targets: Schema.Array(Names.PlayerName),
  targetLabels: Schema.Record({ key: Schema.String, value: Job.Labels }),
  createdAt: Schema.Number
})
const encodeNewJob = checked(NewJobInput, "createJob", () => false)
const TargetsInput = NewJobInput.pick("targets", "targetLabels", "createdAt")
const encodeTargets = checked(
  TargetsInput,
  "createJob",
  (t) => Checks.isPlayerNames(t.targets) && Checks.isTargetLabels(t.targetLabels) && typeof t.createdAt === "number"
)

/**
 * The encoded JSON of a request. A `JobRequest` instance was checked when
 * it was made, and its schema has no transformations (a test holds this),
 * so its encoded form is its own JSON: this skips checking it again, which
 * is most of the cost of a create. Anything else goes through the schema.
 */
const requestJson = (job: Store.NewJob): Either.Either<{ readonly request: string; readonly rest: typeof TargetsInput.Encoded }, StoreError> => {
  const targets = { targets: job.targets, targetLabels: job.targetLabels ?? {}, createdAt: job.createdAt }
  return job.request instanceof Job.JobRequest ?
    Either.map(encodeTargets(targets), (rest) => ({ request: JSON.stringify(job.request), rest })) :
    Either.map(encodeNewJob({ ...targets, request: job.request }), ({ request, ...rest }) => ({ request: JSON.stringify(request), rest }))
}

export const createWrite = (job: Store.NewJob): Either.Either<Write, StoreError> =>
  Either.map(requestJson(job), ({ request, rest }) => ({
    _tag: "Create" as const,
    key: job.request.idempotencyKey ?? null,
    score: job.request.score,
    policy: job.request.policy.name,
    request,
    targets: rest.targets,
    targetsJson: JSON.stringify(rest.targets),
    targetLabels: JSON.stringify(rest.targetLabels),
    createdAt: rest.createdAt
  }))

const encodeDispatch = checked(
  Schema.Struct({ ref: Names.TaskRef, player: Names.PlayerName, at: Schema.Number }),
  "recordDispatch",
  (d) => Checks.isTaskRef(d.ref) && Checks.isPlayerName(d.player) && typeof d.at === "number"
)

export const dispatchWrite = (d: Store.Dispatched): Either.Either<Write, StoreError> =>
  Either.map(encodeDispatch(d), (e) => ({
    _tag: "Dispatch" as const,
    job: e.ref.job,
    key: e.ref.key,
    attempt: e.ref.attempt,
    player: e.player,
    at: e.at
  }))

const encodeStart = checked(
  Schema.Struct({ ref: Names.TaskRef, at: Schema.Number }),
  "recordStart",
  (s) => Checks.isTaskRef(s.ref) && typeof s.at === "number"
)

export const startWrite = (ref: Names.TaskRef, at: number): Either.Either<Write, StoreError> =>
  Either.map(encodeStart({ ref, at }), (e) => ({
    _tag: "Start" as const,
    job: e.ref.job,
    key: e.ref.key,
    attempt: e.ref.attempt,
    at: e.at
  }))

const encodeEnd = checked(
  Schema.Struct({
    ref: Names.TaskRef,
    player: Names.PlayerName,
    outcome: Outcome.Outcome,
    response: Job.Response,
    log: Schema.optional(Schema.String),
    startedAt: Schema.optional(Schema.Number),
    finishedAt: Schema.Number
  }),
  "recordEnd",
  (e) =>
    Checks.isTaskRef(e.ref) && Checks.isPlayerName(e.player) && Checks.isOutcome(e.outcome) && Checks.isJsonObject(e.response) &&
    Checks.isOptionalString(e.log) && Checks.isOptionalNumber(e.startedAt) && typeof e.finishedAt === "number"
)

export const endWrite = (ended: Store.Ended): Either.Either<Write, StoreError> =>
  Either.map(encodeEnd(ended), (e) => ({
    _tag: "End" as const,
    job: e.ref.job,
    key: e.ref.key,
    attempt: e.ref.attempt,
    player: e.player,
    outcome: e.outcome,
    response: JSON.stringify(e.response),
    log: e.log ?? null,
    startedAt: e.startedAt ?? null,
    finishedAt: e.finishedAt
  }))

const encodeFinish = checked(
  Schema.Struct({
    id: Names.JobId,
    state: JobState.FinishedJobState,
    at: Schema.Number,
    reason: Schema.optional(Schema.String)
  }),
  "finishJob",
  (f) => Checks.isJobIdValue(f.id) && Checks.isFinishedState(f.state) && typeof f.at === "number" && Checks.isOptionalString(f.reason)
)

export const finishWrite = (
  id: Names.JobId,
  state: JobState.FinishedJobState,
  at: number,
  reason: string | undefined
): Either.Either<Write, StoreError> =>
  Either.map(encodeFinish({ id, state, at, reason }), (e) => ({
    _tag: "Finish" as const,
    job: e.id,
    state: e.state,
    at: e.at,
    reason: e.reason ?? null
  }))

export const purgeWrite = (before: number): Either.Either<Write, StoreError> =>
  Number.isNaN(before)
    ? Either.left(new StoreError({ operation: "purge", message: "invalid input: `before` is NaN" }))
    : Either.right({ _tag: "Purge" as const, before })

const encodeNewRun = Schema.encodeEither(Store.NewPipelineRun)
const encodeRunEvent = Schema.encodeEither(Schema.Struct({ id: Store.PipelineRunId, event: Store.PipelineEvent }))
const encodeFinishRun = Schema.encodeEither(
  Schema.Struct({ id: Store.PipelineRunId, state: JobState.FinishedJobState, at: Schema.Number, reason: Schema.optional(Schema.String) })
)
const encodeSchedule = Schema.encodeEither(Schema.Struct({ name: Store.ScheduleName, at: Schema.Number.pipe(Schema.finite()) }))

export const createRunWrite = (run: Store.NewPipelineRun): Either.Either<Write, StoreError> =>
  Either.map(Either.mapLeft(encodeNewRun(run), invalid("createPipelineRun")), (e) => ({
    _tag: "CreateRun" as const,
    key: e.key ?? null,
    pipeline: e.pipeline,
    file: e.file,
    document: e.document,
    params: JSON.stringify(e.params),
    createdAt: e.createdAt
  }))

export const runEventWrite = (id: Store.PipelineRunId, event: Store.PipelineEvent): Either.Either<Write, StoreError> =>
  Either.map(Either.mapLeft(encodeRunEvent({ id, event }), invalid("recordPipelineEvent")), (e) => ({
    _tag: "RunEvent" as const,
    run: e.id,
    event: JSON.stringify(e.event)
  }))

export const finishRunWrite = (
  id: Store.PipelineRunId,
  state: JobState.FinishedJobState,
  at: number,
  reason: string | undefined
): Either.Either<Write, StoreError> =>
  Either.map(Either.mapLeft(encodeFinishRun({ id, state, at, reason }), invalid("finishPipelineRun")), (e) => ({
    _tag: "FinishRun" as const,
    run: e.id,
    state: e.state,
    at: e.at,
    reason: e.reason ?? null
  }))

export const purgeRunsWrite = (before: number): Either.Either<Write, StoreError> =>
  Number.isNaN(before)
    ? Either.left(new StoreError({ operation: "purgePipelineRuns", message: "invalid input: `before` is NaN" }))
    : Either.right({ _tag: "PurgeRuns" as const, before })

export const scheduleWrite = (name: string, at: number): Either.Either<Write, StoreError> =>
  Either.map(Either.mapLeft(encodeSchedule({ name, at }), invalid("setScheduleState")), (e) => ({
    _tag: "SetSchedule" as const,
    name: e.name,
    at: e.at
  }))

// ---- reading -------------------------------------------------------------

/** A job row as selected. */
export interface JobRow {
  readonly id: unknown
  readonly request: unknown
  readonly targets: unknown
  readonly target_labels: unknown
  readonly state: unknown
  readonly created_at: unknown
  readonly finished_at: unknown
  readonly reason: unknown
}

export const JOB_COLUMNS = "id, request, targets, target_labels, state, created_at, finished_at, reason"

/** An attempt row joined with its result, as selected. */
export interface AttemptRow {
  readonly job_id: unknown
  readonly task_key: unknown
  readonly attempt: unknown
  readonly player: unknown
  readonly dispatched_at: unknown
  readonly a_started: unknown
  readonly r_started: unknown
  readonly finished_at: unknown
  readonly outcome: unknown
  readonly response: unknown
  readonly log: unknown
  readonly seq: unknown
}

export const ATTEMPT_SELECT = `SELECT a.job_id AS job_id, a.task_key AS task_key, a.attempt AS attempt, a.player AS player,
  a.dispatched_at AS dispatched_at, a.started_at AS a_started, r.started_at AS r_started, r.finished_at AS finished_at,
  r.outcome AS outcome, r.response AS response, r.log AS log, r.seq AS seq
  FROM orchestra_attempts a
  LEFT JOIN orchestra_results r ON r.job_id = a.job_id AND r.task_key = a.task_key AND r.attempt = a.attempt`

/**
 * One job and its attempts in one statement (one snapshot, no transaction):
 * a row per attempt, in dispatch order, the job's columns (`j_*`) on each;
 * a job without attempts is one row whose attempt columns are NULL.
 */
export const JOB_WITH_ATTEMPTS_SELECT = `SELECT j.id AS j_id, j.request AS j_request, j.targets AS j_targets,
  j.target_labels AS j_target_labels, j.state AS j_state, j.created_at AS j_created_at, j.finished_at AS j_finished_at,
  j.reason AS j_reason,
  a.job_id AS job_id, a.task_key AS task_key, a.attempt AS attempt, a.player AS player,
  a.dispatched_at AS dispatched_at, a.started_at AS a_started, r.started_at AS r_started, r.finished_at AS finished_at,
  r.outcome AS outcome, r.response AS response, r.log AS log, r.seq AS seq
  FROM orchestra_jobs j
  LEFT JOIN orchestra_attempts a ON a.job_id = j.id
  LEFT JOIN orchestra_results r ON r.job_id = a.job_id AND r.task_key = a.task_key AND r.attempt = a.attempt`

/** A row of {@link JOB_WITH_ATTEMPTS_SELECT}. */
export interface JobWithAttemptRow extends AttemptRow {
  readonly j_id: unknown
  readonly j_request: unknown
  readonly j_targets: unknown
  readonly j_target_labels: unknown
  readonly j_state: unknown
  readonly j_created_at: unknown
  readonly j_finished_at: unknown
  readonly j_reason: unknown
}

/** The job row of a {@link JOB_WITH_ATTEMPTS_SELECT} row. */
export const jobRowOf = (r: JobWithAttemptRow): JobRow => ({
  id: r.j_id,
  request: r.j_request,
  targets: r.j_targets,
  target_labels: r.j_target_labels,
  state: r.j_state,
  created_at: r.j_created_at,
  finished_at: r.j_finished_at,
  reason: r.j_reason
})

/** A number column (PostgreSQL returns BIGINT as a string); SQL NULL is absent. */
export const num = (u: unknown): number | undefined =>
  u === null || u === undefined ? undefined : typeof u === "number" ? u : Number(u)

/** A JSON column: text from SQLite, already parsed from PostgreSQL's JSONB. */
export const json = (u: unknown): unknown => (typeof u === "string" ? JSON.parse(u) : u)

const str = (u: unknown): string | undefined => (u === null || u === undefined ? undefined : String(u))

/** The core decoder: fast for records of the usual shape, the schema otherwise. */
const decodeRecord = Store.decodeRecord

const attemptEncoded = (r: AttemptRow) => {
  const startedAt = num(r.a_started) ?? num(r.r_started)
  const finishedAt = num(r.finished_at)
  return {
    key: r.task_key,
    attempt: num(r.attempt),
    player: r.player,
    // An attempt first seen through its result was never recorded as dispatched: it dates from when it started or ended.
    dispatchedAt: num(r.dispatched_at) ?? startedAt ?? finishedAt ?? 0,
    ...(startedAt === undefined ? {} : { startedAt }),
    ...(r.outcome === null || r.outcome === undefined ?
      {} :
      {
        finishedAt,
        outcome: r.outcome,
        response: json(r.response),
        ...(r.log === null || r.log === undefined ? {} : { log: str(r.log) }),
        seq: num(r.seq)
      })
  }
}

/** A job row and its attempt rows (in order) as a core `JobRecord`. */
export const toRecord = (
  operation: string,
  job: JobRow,
  attempts: ReadonlyArray<AttemptRow>
): Effect.Effect<Job.JobRecord, StoreError> =>
  Effect.try({
    try: () => ({
      id: num(job.id),
      request: json(job.request),
      targets: json(job.targets),
      targetLabels: json(job.target_labels),
      state: job.state,
      createdAt: num(job.created_at),
      ...(job.finished_at === null || job.finished_at === undefined ? {} : { finishedAt: num(job.finished_at) }),
      ...(job.reason === null || job.reason === undefined ? {} : { reason: str(job.reason) }),
      attempts: attempts.map(attemptEncoded)
    }),
    catch: (e) => new StoreError({ operation, message: `job ${String(job.id)} is unreadable: ${String(e)}` })
  }).pipe(
    Effect.flatMap((encoded) =>
      Effect.mapError(decodeRecord(encoded), (e) =>
        new StoreError({
          operation,
          message: `job ${String(job.id)} is unreadable: ${ParseResult.TreeFormatter.formatErrorSync(e)}`
        }))
    )
  )

const Summary = Schema.Struct({
  id: Names.JobId,
  score: Schema.String,
  policy: Schema.String,
  state: JobState.JobState,
  targets: Schema.Array(Names.PlayerName),
  createdAt: Schema.Number,
  finishedAt: Schema.optional(Schema.Number)
})
const decodeSummary = Schema.decodeUnknown(Summary)

export interface SummaryRow {
  readonly id: unknown
  readonly score: unknown
  readonly policy: unknown
  readonly state: unknown
  readonly targets: unknown
  readonly created_at: unknown
  readonly finished_at: unknown
}

export const toSummary = (row: SummaryRow): Effect.Effect<Store.JobSummary, StoreError> =>
  Effect.try({
    try: () => ({
      id: num(row.id),
      score: row.score,
      policy: row.policy,
      state: row.state,
      targets: json(row.targets),
      createdAt: num(row.created_at),
      ...(row.finished_at === null || row.finished_at === undefined ? {} : { finishedAt: num(row.finished_at) })
    }),
    catch: (e) => new StoreError({ operation: "listJobs", message: `job ${String(row.id)} is unreadable: ${String(e)}` })
  }).pipe(
    Effect.flatMap((encoded) =>
      Effect.mapError(decodeSummary(encoded), (e) =>
        new StoreError({
          operation: "listJobs",
          message: `job ${String(row.id)} is unreadable: ${ParseResult.TreeFormatter.formatErrorSync(e)}`
        }))
    )
  )

// ---- pipeline runs ---------------------------------------------------------------

/** A pipeline run row as selected. */
export interface RunRow {
  readonly id: unknown
  readonly idempotency_key: unknown
  readonly pipeline: unknown
  readonly file: unknown
  readonly document: unknown
  readonly params: unknown
  readonly state: unknown
  readonly created_at: unknown
  readonly finished_at: unknown
  readonly reason: unknown
}

export const RUN_COLUMNS = "id, idempotency_key, pipeline, file, document, params, state, created_at, finished_at, reason"

/** A run row and its event rows (JSON, in order) as a core `PipelineRunRecord`. */
export const toRun = (
  operation: string,
  row: RunRow,
  events: ReadonlyArray<unknown>
): Effect.Effect<Store.PipelineRunRecord, StoreError> =>
  Effect.try({
    try: () => ({
      id: num(row.id),
      ...(row.idempotency_key === null || row.idempotency_key === undefined ? {} : { key: str(row.idempotency_key) }),
      pipeline: str(row.pipeline),
      file: str(row.file),
      document: str(row.document),
      params: json(row.params),
      state: row.state,
      createdAt: num(row.created_at),
      ...(row.finished_at === null || row.finished_at === undefined ? {} : { finishedAt: num(row.finished_at) }),
      ...(row.reason === null || row.reason === undefined ? {} : { reason: str(row.reason) }),
      events: events.map(json)
    }),
    catch: (e) => new StoreError({ operation, message: `pipeline run ${String(row.id)} is unreadable: ${String(e)}` })
  }).pipe(
    Effect.flatMap((encoded) =>
      Effect.mapError(Store.decodePipelineRun(encoded), (e) =>
        new StoreError({
          operation,
          message: `pipeline run ${String(row.id)} is unreadable: ${ParseResult.TreeFormatter.formatErrorSync(e)}`
        }))
    )
  )
