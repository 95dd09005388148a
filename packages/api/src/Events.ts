/**
 * The audience events the conductor publishes — over Server-Sent Events
 * (`GET /v1/events`, `GET /v1/jobs/:id/events`) and the Unix socket's
 * `events` op — and their ids.
 *
 * Every event has an `id` and a `type`. Ids are `<boot>-<seq>`: `boot`
 * names one run of the conductor (base 36 of its start time in ms), `seq`
 * counts from 1 in that run. Within a run ids grow by one per event, so a
 * client that resumes from the last id it saw (`Last-Event-ID`) gets every
 * later event, none twice. The conductor keeps the latest events (100,000 by
 * default) in memory; resuming from an id it no longer has — older than what
 * it keeps, or from before a restart — first gives a `reset` event: events
 * were lost, re-read what you need (`GET /v1/jobs/:id`) and carry on.
 *
 * | type | when |
 * | --- | --- |
 * | `job.submitted` | a new job was stored (not for an idempotent resubmission) |
 * | `task.dispatched` | an attempt of a task was assigned to a player and recorded |
 * | `task.started` | the player started the score (recorded) |
 * | `task.finished` | the attempt's outcome was recorded |
 * | `job.finished` | the job's final state was recorded |
 * | `player.connected` / `player.disconnected` | a player's session began / ended |
 * | `pipeline.started` | a pipeline run was stored and started (not for an idempotent resubmission) |
 * | `pipeline.progressed` | a job of a run was submitted, refused, finished or skipped (recorded) |
 * | `pipeline.finished` | a run's final state was recorded |
 * | `reset` | events between the requested id and this one are not available |
 *
 * @since 0.1.0
 */
import { JobState, Outcome } from "@orchestra/core"
import { Schema } from "effect"

/** Milliseconds since the epoch. */
export const Timestamp = Schema.Number.annotations({ description: "milliseconds since the epoch" })

const Common = {
  /** `<boot>-<seq>`; see the module doc. */
  id: Schema.String,
  /** When it happened (ms since the epoch). */
  at: Timestamp
}

const TaskFields = {
  ...Common,
  job: Schema.Number,
  score: Schema.String,
  key: Schema.String,
  attempt: Schema.Number,
  player: Schema.String
}

export const JobSubmitted = Schema.Struct({
  type: Schema.Literal("job.submitted"),
  ...Common,
  job: Schema.Number,
  score: Schema.String,
  policy: Schema.String,
  targets: Schema.Array(Schema.String)
}).annotations({ identifier: "JobSubmittedEvent" })

export const JobFinished = Schema.Struct({
  type: Schema.Literal("job.finished"),
  ...Common,
  job: Schema.Number,
  score: Schema.String,
  targets: Schema.Array(Schema.String),
  state: JobState.FinishedJobState,
  reason: Schema.optional(Schema.String)
}).annotations({ identifier: "JobFinishedEvent" })

export const TaskDispatched = Schema.Struct({
  type: Schema.Literal("task.dispatched"),
  ...TaskFields
}).annotations({ identifier: "TaskDispatchedEvent" })

export const TaskStarted = Schema.Struct({
  type: Schema.Literal("task.started"),
  ...TaskFields
}).annotations({ identifier: "TaskStartedEvent" })

export const TaskFinished = Schema.Struct({
  type: Schema.Literal("task.finished"),
  ...TaskFields,
  outcome: Outcome.Outcome
}).annotations({ identifier: "TaskFinishedEvent" })

export const PlayerConnected = Schema.Struct({
  type: Schema.Literal("player.connected"),
  ...Common,
  player: Schema.String,
  slots: Schema.Number,
  address: Schema.optional(Schema.String)
}).annotations({ identifier: "PlayerConnectedEvent" })

export const PlayerDisconnected = Schema.Struct({
  type: Schema.Literal("player.disconnected"),
  ...Common,
  player: Schema.String
}).annotations({ identifier: "PlayerDisconnectedEvent" })

const PipelineFields = {
  ...Common,
  /** The run's id. */
  run: Schema.Number,
  /** The pipeline's name. */
  pipeline: Schema.String
}

export const PipelineStarted = Schema.Struct({
  type: Schema.Literal("pipeline.started"),
  ...PipelineFields,
  /** The names of its jobs, in topological order. */
  jobs: Schema.Array(Schema.String)
}).annotations({ identifier: "PipelineStartedEvent" })

export const PipelineProgressed = Schema.Struct({
  type: Schema.Literal("pipeline.progressed"),
  ...PipelineFields,
  /** The job of the run, by its name in the document. */
  name: Schema.String,
  status: Schema.Literal("waiting", "ready", "submitted", "finished", "skipped", "failed"),
  /** The job's id, once submitted. */
  jobId: Schema.optional(Schema.Number),
  /** Its final state, once finished. */
  state: Schema.optional(JobState.FinishedJobState),
  reason: Schema.optional(Schema.String)
}).annotations({ identifier: "PipelineProgressedEvent" })

export const PipelineFinished = Schema.Struct({
  type: Schema.Literal("pipeline.finished"),
  ...PipelineFields,
  state: JobState.FinishedJobState,
  reason: Schema.optional(Schema.String)
}).annotations({ identifier: "PipelineFinishedEvent" })

export const Reset = Schema.Struct({
  type: Schema.Literal("reset"),
  ...Common,
  /** Why events are missing: the id is older than what the conductor keeps, from another run, or unknown. */
  reason: Schema.String
}).annotations({ identifier: "ResetEvent" })

/** Any audience event. */
export const Event = Schema.Union(
  JobSubmitted,
  JobFinished,
  TaskDispatched,
  TaskStarted,
  TaskFinished,
  PlayerConnected,
  PlayerDisconnected,
  PipelineStarted,
  PipelineProgressed,
  PipelineFinished,
  Reset
).annotations({ identifier: "AudienceEvent" })
export type Event = typeof Event.Type

export type EventType = Event["type"]

/** Every event type, in the order of the table above. */
export const types: ReadonlyArray<EventType> = [
  "job.submitted",
  "task.dispatched",
  "task.started",
  "task.finished",
  "job.finished",
  "player.connected",
  "player.disconnected",
  "pipeline.started",
  "pipeline.progressed",
  "pipeline.finished",
  "reset"
]

/** An event before the log gives it an id. */
export type Body = Event extends infer E ? E extends Event ? Omit<E, "id"> : never : never

/** The job an event is about, if any. */
export const jobOf = (event: Event | Body): number | undefined => "job" in event ? event.job : undefined

// ---- ids -------------------------------------------------------------------

/** The parts of an event id. */
export interface EventId {
  readonly boot: string
  readonly seq: number
}

/** `<boot>-<seq>`. */
export const formatId = (boot: string, seq: number): string => `${boot}-${seq}`

/** Parse an event id; undefined when it is not one. */
export const parseId = (id: string): EventId | undefined => {
  const m = /^([0-9a-z]{1,16})-([0-9]{1,16})$/.exec(id.trim())
  if (m === null) return undefined
  const seq = Number(m[2])
  return Number.isSafeInteger(seq) ? { boot: m[1]!, seq } : undefined
}

/** The boot id of a run that started at `startedAt` (ms). */
export const bootId = (startedAt: number): string => Math.max(0, Math.floor(startedAt)).toString(36)
