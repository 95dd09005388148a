/**
 * What the HTTP audience API takes and returns: the submit request, job
 * details and pages, players, the merged score catalog, health, and the
 * query parameters (durations, times, ids). Plain JSON shapes (no brands),
 * so any client can build them; the conductor checks a submission as
 * strictly as the Unix socket does (core's `JobRequest`, every issue named).
 *
 * Times are milliseconds since the epoch.
 *
 * @since 0.1.0
 */
import { JobState, Json, Outcome } from "@orchestra/core"
import { ParseResult, Schema } from "effect"
import { Timestamp } from "./Events.js"

export { Timestamp }

const StringMap = Schema.Record({ key: Schema.String, value: Schema.String })

/** A JSON value (core's `Json`, declared here so the API's types name it). */
export type JsonValue = null | boolean | number | string | ReadonlyArray<JsonValue> | { readonly [key: string]: JsonValue }
/** A JSON object. */
export type JsonObject = { readonly [key: string]: JsonValue }
export const JsonValue: Schema.Schema<JsonValue> = Json.Json.annotations({
  jsonSchema: {
    description: "any JSON value",
    anyOf: [{ type: "object" }, { type: "array" }, { type: "string" }, { type: "number" }, { type: "boolean" }, { type: "null" }]
  }
})
export const JsonObject: Schema.Schema<JsonObject> = Json.JsonObject.annotations({ jsonSchema: { type: "object" } })

/** A job as the audience submits it (`POST /v1/jobs`): core's `JobRequest`, in JSON. */
export const SubmitRequest = Schema.Struct({
  score: Schema.String.annotations({ description: "the score's name" }),
  players: Schema.optional(Schema.Array(Schema.String)).annotations({ description: "target players by name" }),
  selector: Schema.optional(StringMap).annotations({ description: "target every player whose labels include all of these" }),
  policy: Schema.Struct({
    name: Schema.String.annotations({ description: "a registered policy: one-of, all-of, stages, rolling, ..." }),
    options: Schema.optional(JsonValue)
  }),
  params: Schema.optional(JsonObject),
  deadline: Schema.optional(Schema.Number).annotations({ description: "epoch ms after which unfinished tasks end TIMEOUT" }),
  idempotencyKey: Schema.optional(Schema.String).annotations({
    description: "the same key returns the same job (`existing: true`) instead of creating another"
  }),
  retry: Schema.optional(Schema.Struct({
    max: Schema.Number,
    backoffMs: Schema.optional(Schema.Number),
    factor: Schema.optional(Schema.Number),
    maxBackoffMs: Schema.optional(Schema.Number)
  })),
  labels: Schema.optional(StringMap)
}).annotations({ identifier: "SubmitRequest" })
export type SubmitRequest = typeof SubmitRequest.Type

/** The reply to a submission (201). */
export const Submitted = Schema.Struct({
  id: Schema.Number,
  /** True when the idempotency key matched a job submitted before: that job's id. */
  existing: Schema.Boolean
}).annotations({ identifier: "Submitted" })
export type Submitted = typeof Submitted.Type

/** One dispatch of a task to a player, with its timings and how it ended. */
export const AttemptView = Schema.Struct({
  key: Schema.String,
  attempt: Schema.Number,
  player: Schema.String,
  dispatchedAt: Timestamp,
  startedAt: Schema.optional(Timestamp),
  finishedAt: Schema.optional(Timestamp),
  outcome: Schema.optional(Outcome.Outcome),
  response: Schema.optional(JsonObject),
  /** Length of the attempt's log (stderr); read it at `.../tasks/:key/attempts/:attempt/log`. */
  logBytes: Schema.Number
}).annotations({ identifier: "Attempt" })
export type AttemptView = typeof AttemptView.Type

/** A player's result in a job: its latest attempt that ended. */
export const PlayerResult = Schema.Struct({
  outcome: Outcome.Outcome,
  response: JsonObject,
  key: Schema.String,
  attempt: Schema.Number
}).annotations({ identifier: "PlayerResult" })

/** Everything about one job. */
export const JobDetail = Schema.Struct({
  id: Schema.Number,
  score: Schema.String,
  policy: Schema.String,
  state: JobState.JobState,
  reason: Schema.optional(Schema.String),
  createdAt: Timestamp,
  finishedAt: Schema.optional(Timestamp),
  /** The players the job targets, resolved at submission. */
  targets: Schema.Array(Schema.String),
  /** Per player: the outcome and response of its latest finished attempt (absent: no result yet). */
  players: Schema.Record({ key: Schema.String, value: PlayerResult }),
  /** Every attempt, in dispatch order. */
  attempts: Schema.Array(AttemptView),
  /** The request as submitted (defaults filled in). */
  request: SubmitRequest
}).annotations({ identifier: "JobDetail" })
export type JobDetail = typeof JobDetail.Type

/** A job in a list. */
export const JobSummary = Schema.Struct({
  id: Schema.Number,
  score: Schema.String,
  policy: Schema.String,
  state: JobState.JobState,
  targets: Schema.Array(Schema.String),
  createdAt: Timestamp,
  finishedAt: Schema.optional(Timestamp)
}).annotations({ identifier: "JobSummary" })
export type JobSummary = typeof JobSummary.Type

/** A page of jobs, newest first; `next` is the `before` of the next page (absent on the last). */
export const JobPage = Schema.Struct({
  jobs: Schema.Array(JobSummary),
  next: Schema.optional(Schema.Number)
}).annotations({ identifier: "JobPage" })
export type JobPage = typeof JobPage.Type

// ---- query parameters ---------------------------------------------------------

/** A positive integer in a path or query (`17`). */
export const IntParam = (what: string, min = 1, max = Number.MAX_SAFE_INTEGER) =>
  Schema.NumberFromString.pipe(
    Schema.int({ message: () => `${what} must be an integer` }),
    Schema.between(min, max, { message: () => `${what} must be between ${min} and ${max}` })
  )

/** A time in a query: epoch milliseconds (`1767225600000`) or an ISO-8601 date (`2026-01-01T00:00:00Z`). */
export const TimeParam: Schema.Schema<number, string> = Schema.transformOrFail(Schema.String, Schema.Number, {
  strict: true,
  decode: (s, _, ast) => {
    const t = /^[0-9]{1,16}$/.test(s) ? Number(s) : Date.parse(s)
    return Number.isFinite(t)
      ? ParseResult.succeed(t)
      : ParseResult.fail(new ParseResult.Type(ast, s, `invalid time ${JSON.stringify(s)}: expected epoch milliseconds or an ISO-8601 date`))
  },
  encode: (n) => ParseResult.succeed(String(n))
}).annotations({ identifier: "Time", description: "epoch milliseconds or an ISO-8601 date" })

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** The longest long poll (`wait?timeout=`): 5 minutes. */
export const MAX_WAIT_MS = 300_000
/** The long poll when no timeout is given: 30 seconds. */
export const DEFAULT_WAIT_MS = 30_000

/** A duration in a query: `30s`, `500ms`, `2m`, or a number of seconds; at most 5 minutes. */
export const DurationParam: Schema.Schema<number, string> = Schema.transformOrFail(Schema.String, Schema.Number, {
  strict: true,
  decode: (s, _, ast) => {
    const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h)?\s*$/.exec(s)
    if (m === null) {
      return ParseResult.fail(new ParseResult.Type(ast, s, `invalid duration ${JSON.stringify(s)}: expected e.g. 30s, 500ms, 2m or a number of seconds`))
    }
    const ms = Math.round(Number(m[1]) * durationUnits[m[2] ?? "s"]!)
    return ms <= MAX_WAIT_MS
      ? ParseResult.succeed(ms)
      : ParseResult.fail(new ParseResult.Type(ast, s, `duration ${JSON.stringify(s)} is longer than the maximum, 5m`))
  },
  encode: (ms) => ParseResult.succeed(`${ms}ms`)
}).annotations({ identifier: "Duration", description: "e.g. 30s, 500ms, 2m, or a number of seconds (at most 5m)" })

/** `GET /v1/jobs` filters and paging. */
export const ListParams = Schema.Struct({
  state: Schema.optional(JobState.JobState),
  score: Schema.optional(Schema.String),
  player: Schema.optional(Schema.String),
  /** Created at or after. */
  since: Schema.optional(TimeParam),
  /** Created before. */
  until: Schema.optional(TimeParam),
  /** Only jobs with a smaller id: the `next` of the previous page. */
  before: Schema.optional(IntParam("before")),
  /** Page size, 1 to 1000 (default 50). */
  limit: Schema.optional(IntParam("limit", 1, 1000))
})
export type ListParams = typeof ListParams.Type

export const WaitParams = Schema.Struct({
  /** How long to hold the request when the job does not finish (default 30s, at most 5m). */
  timeout: Schema.optional(DurationParam)
})

export const CancelParams = Schema.Struct({
  /** Recorded as the job's reason. */
  reason: Schema.optional(Schema.String)
})

export const EventsParams = Schema.Struct({
  /** Resume after this event id (as the `Last-Event-ID` header; the header wins). */
  lastEventId: Schema.optional(Schema.String),
  /** Only these event types, comma-separated (`job.finished,task.finished`); `reset` always comes through. */
  types: Schema.optional(Schema.String)
})

export const EventsHeaders = Schema.Struct({
  "last-event-id": Schema.optional(Schema.String)
})

// ---- players and scores -----------------------------------------------------

/** One player as the conductor knows it. */
export const PlayerView = Schema.Struct({
  name: Schema.String,
  online: Schema.Boolean,
  /** On the players allowlist (a removed player shows until its session ends). */
  allowlisted: Schema.Boolean,
  /** Slots from its last `Hello` (0 before it ever connected). */
  slots: Schema.Number,
  /** Attempts assigned to it and not ended. */
  running: Schema.Number,
  /** Free slots (online players only; 0 when offline). */
  idle: Schema.Number,
  labels: StringMap,
  /** Its session's network address, while online. */
  address: Schema.optional(Schema.String),
  /** Now while online; when its last session ended otherwise; absent if never seen since the conductor started. */
  lastSeen: Schema.optional(Timestamp),
  /** The scores it reported (absent until it reports a catalog). */
  scores: Schema.optional(Schema.Array(Schema.String))
}).annotations({ identifier: "Player" })
export type PlayerView = typeof PlayerView.Type

export const PlayersView = Schema.Struct({
  players: Schema.Array(PlayerView),
  summary: Schema.Struct({
    /** Players known (allowlisted or connected). */
    total: Schema.Number,
    online: Schema.Number,
    /** Online players running at least one attempt. */
    busy: Schema.Number,
    /** Online players running nothing. */
    idle: Schema.Number,
    /** Slots of the online players: in all, in use, free. */
    slots: Schema.Number,
    running: Schema.Number,
    free: Schema.Number
  })
}).annotations({ identifier: "Players" })
export type PlayersView = typeof PlayersView.Type

/** One version of a score, as some players reported it. */
export const ScoreVariant = Schema.Struct({
  digest: Schema.String,
  interface: Schema.Literal("env", "pipe", "json"),
  source: Schema.String,
  players: Schema.Array(Schema.String)
}).annotations({ identifier: "ScoreVariant" })

/** A score merged over every player that reported it. */
export const ScoreView = Schema.Struct({
  name: Schema.String,
  /** From the variant most players have. */
  interface: Schema.Literal("env", "pipe", "json"),
  description: Schema.optional(Schema.String),
  /** JSON Schema of the parameters. */
  parameters: Schema.optional(JsonObject),
  /** JSON Schema of the response. */
  outputs: Schema.optional(JsonObject),
  idempotent: Schema.Boolean,
  /** Every player that has it. */
  players: Schema.Array(Schema.String),
  /** True when players have different versions (digests) of it: see `variants`. */
  differs: Schema.Boolean,
  /** Each version and the players that have it, most players first. */
  variants: Schema.Array(ScoreVariant)
}).annotations({ identifier: "Score" })
export type ScoreView = typeof ScoreView.Type

export const ScoresView = Schema.Struct({
  scores: Schema.Array(ScoreView)
}).annotations({ identifier: "Scores" })
export type ScoresView = typeof ScoresView.Type

/** `GET /healthz`. */
export const Health = Schema.Struct({
  status: Schema.Literal("ok"),
  name: Schema.String,
  startedAt: Timestamp,
  players: Schema.Struct({ online: Schema.Number, allowlisted: Schema.Number }),
  /** Tasks waiting for a player. */
  queued: Schema.Number,
  /** The newest event id (resume point for a client starting now). */
  lastEventId: Schema.String
}).annotations({ identifier: "Health" })
export type Health = typeof Health.Type

// ---- pipeline runs ------------------------------------------------------------

/** A pipeline run as the audience starts it (`POST /v1/pipelines`). */
export const PipelineRunRequest = Schema.Struct({
  document: Schema.String.pipe(Schema.minLength(1, { message: () => "document must be the pipeline's YAML text" })).annotations({
    description: "the pipeline document (YAML text); validated as a whole against the players' catalogs before anything runs"
  }),
  file: Schema.optional(Schema.String).annotations({ description: "its file name, for messages (file:line); default pipeline.yaml" }),
  params: Schema.optional(JsonObject).annotations({ description: "the pipeline's params, checked against its `params` schema" }),
  idempotencyKey: Schema.optional(Schema.String).annotations({
    description: "the same key returns the same run (`existing: true`) instead of starting another"
  })
}).annotations({ identifier: "PipelineRunRequest" })
export type PipelineRunRequest = typeof PipelineRunRequest.Type

/** Where one job of a pipeline run is. */
export const PipelineJobStatus = Schema.Literal("waiting", "ready", "submitted", "finished", "skipped", "failed")
export type PipelineJobStatus = typeof PipelineJobStatus.Type

/** One job of a pipeline run. */
export const PipelineJobView = Schema.Struct({
  /** Its name in the document. */
  name: Schema.String,
  status: PipelineJobStatus,
  /** The job's id once it was submitted. */
  id: Schema.optional(Schema.Number),
  /** Its final state once it finished. */
  state: Schema.optional(JobState.JobState),
  /** Why it was skipped or refused. */
  reason: Schema.optional(Schema.String)
}).annotations({ identifier: "PipelineJobView" })
export type PipelineJobView = typeof PipelineJobView.Type

/** A pipeline run in detail: its jobs in topological order. */
export const PipelineRunDetail = Schema.Struct({
  id: Schema.Number,
  pipeline: Schema.String,
  file: Schema.String,
  state: JobState.JobState,
  createdAt: Timestamp,
  finishedAt: Schema.optional(Timestamp),
  reason: Schema.optional(Schema.String),
  params: JsonValue,
  jobs: Schema.Array(PipelineJobView)
}).annotations({ identifier: "PipelineRunDetail" })
export type PipelineRunDetail = typeof PipelineRunDetail.Type

/** A pipeline run in a list. */
export const PipelineRunSummary = Schema.Struct({
  id: Schema.Number,
  pipeline: Schema.String,
  state: JobState.JobState,
  createdAt: Timestamp,
  finishedAt: Schema.optional(Timestamp),
  reason: Schema.optional(Schema.String)
}).annotations({ identifier: "PipelineRunSummary" })
export type PipelineRunSummary = typeof PipelineRunSummary.Type

/** A page of pipeline runs, newest first; `next` is the `before` of the next page (absent on the last). */
export const PipelineRunPage = Schema.Struct({
  runs: Schema.Array(PipelineRunSummary),
  next: Schema.optional(Schema.Number)
}).annotations({ identifier: "PipelineRunPage" })
export type PipelineRunPage = typeof PipelineRunPage.Type

/** `GET /v1/pipelines` filters and paging. */
export const PipelineListParams = Schema.Struct({
  state: Schema.optional(JobState.JobState),
  /** The pipeline's name (its document's `name`). */
  pipeline: Schema.optional(Schema.String),
  /** Only runs with a smaller id: the `next` of the previous page. */
  before: Schema.optional(IntParam("before")),
  /** Page size, 1 to 1000 (default 50). */
  limit: Schema.optional(IntParam("limit", 1, 1000))
})
export type PipelineListParams = typeof PipelineListParams.Type

// ---- dry runs -----------------------------------------------------------------

/** One task of a planned batch: its key, the player it would go to first, and who else could take it. */
export const PlannedTask = Schema.Struct({
  key: Schema.String,
  player: Schema.String,
  candidates: Schema.Array(Schema.String)
}).annotations({ identifier: "PlannedTask" })

/**
 * A job's dry run (`POST /v1/jobs/plan`): the checks of a submission, then
 * the job's own policy asked for its batches with every player assumed to
 * succeed. Nothing is stored or run.
 */
export const JobPlan = Schema.Struct({
  score: Schema.String,
  policy: Schema.Struct({ name: Schema.String, options: Schema.optional(JsonValue) }),
  /** Named players, then selector matches, as the job would target them. */
  targets: Schema.Array(Schema.String),
  targetLabels: Schema.optionalWith(Schema.Record({ key: Schema.String, value: StringMap }), { default: () => ({}) }),
  /** The validated params, defaults applied. */
  params: JsonObject,
  /** Targets that have not reported their catalog: they check the score and params themselves. */
  unchecked: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  /** Targets not online now: their tasks would wait for them. */
  offline: Schema.optionalWith(Schema.Array(Schema.String), { default: () => [] }),
  plan: Schema.Struct({
    policy: Schema.String,
    batches: Schema.Array(Schema.Array(PlannedTask)),
    /** Set when the policy would end the job without running everything. */
    finished: Schema.optional(Schema.Struct({ state: JobState.FinishedJobState, reason: Schema.optional(Schema.String) })),
    /** The plan stopped at its bound on batches. */
    truncated: Schema.Boolean
  })
}).annotations({ identifier: "JobPlan" })
export type JobPlan = typeof JobPlan.Type

// ---- schedules ----------------------------------------------------------------

/** One schedule the conductor runs, and where it stands. Times are ISO 8601. */
export const ScheduleView = Schema.Struct({
  name: Schema.String,
  description: Schema.optional(Schema.String),
  file: Schema.String,
  cron: Schema.String,
  timezone: Schema.String,
  /** What it runs: `job <score>` or `pipeline <name>`. */
  runs: Schema.String,
  overlap: Schema.Literal("skip", "queue"),
  missed: Schema.Literal("skip", "run-once"),
  next: Schema.optional(Schema.String),
  lastHandled: Schema.optional(Schema.String),
  lastFired: Schema.optional(Schema.String),
  queued: Schema.optional(Schema.String),
  lastRun: Schema.optional(Schema.Struct({ kind: Schema.Literal("job", "pipeline"), id: Schema.Number })),
  lastError: Schema.optional(Schema.Struct({ at: Schema.String, error: Schema.String }))
}).annotations({ identifier: "ScheduleView" })
export type ScheduleView = typeof ScheduleView.Type

export const SchedulesView = Schema.Struct({ schedules: Schema.Array(ScheduleView) }).annotations({ identifier: "SchedulesView" })
export type SchedulesView = typeof SchedulesView.Type
