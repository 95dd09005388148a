/**
 * One run of a pipeline, as a pure state machine: no I/O, no clock but the
 * times passed in. The conductor applies its actions (submit a job, cancel
 * a job), tells it what happened (a job was submitted with an id, its
 * submission was refused, it finished), and persists those facts; after a
 * restart it rebuilds the state by replaying them ({@link replay}), exactly
 * as a job's policy state is rebuilt (docs/decisions/0002), and submits
 * only what {@link outstanding} says — never a job that was submitted
 * before. Each submitted request carries the idempotency key
 * `pipeline/<runId>/<job>`, so even a submission the conductor made but did
 * not get to record before a crash returns the same job when made again.
 *
 * How a job goes:
 *
 * - `waiting` until every job it needs has finished (or was skipped);
 * - then `skipped` when a need was skipped or ended in a state not listed
 *   in the job's `when` (default `[OK]`) — the reason says which;
 * - or `ready`: its params are resolved (templates read the run's params
 *   and the results of finished jobs) and a {@link SubmitJob} is issued;
 * - `submitted` once the conductor reports the job's id;
 * - `finished` when the job ends, with its state and per-player results.
 *
 * A template that cannot be resolved (a key missing from a response,
 * players of a job disagreeing on an output) or a submission the conductor
 * refuses makes the job `failed`: the run stops — nothing more is
 * submitted, the jobs running are let finish — and ends `FAIL` with that
 * reason; jobs never started are `skipped`. {@link cancel} stops the run
 * the same way, cancelling the jobs running, and it ends `CANCELLED`.
 *
 * The run's state, once every job is finished or skipped:
 *
 * - `OK` when every job that ran ended `OK` (jobs skipped only because
 *   their `when` did not ask for `OK`, such as failure handlers, do not
 *   count);
 * - `FAIL` when a job ended `FAIL` or `CANCELLED`, or a job meant to run on
 *   success (its `when` includes `OK`) was skipped — the pipeline did not
 *   get through;
 * - `PARTIAL_FAIL` otherwise: every job meant to run did, some ended
 *   `PARTIAL_FAIL`.
 *
 * @since 0.1.0
 */
import type { Names, Outcome } from "@orchestra/core"
import { Job, JobState, Json } from "@orchestra/core"
import { Params } from "@orchestra/manifest"
import { Either } from "effect"
import * as T from "./internal/jsonTypes.js"
import * as Spec from "./internal/spec.js"
import type * as Pipeline from "./Pipeline.js"
import { pipelineError } from "./Pipeline.js"
import type { PipelineError } from "./Pipeline.js"
import * as Template from "./Template.js"

/** How one player's task of a job ended: its latest finished attempt. */
export interface PlayerResult {
  readonly outcome: Outcome.Outcome
  readonly response: Job.Response
}

/** How a job ended, as the pipeline sees it. */
export interface JobResult {
  readonly id: Names.JobId
  readonly state: JobState.FinishedJobState
  readonly reason?: string | undefined
  readonly players: Readonly<Record<string, PlayerResult>>
}

export type JobStatus = "waiting" | "ready" | "submitted" | "finished" | "skipped" | "failed"

/** Where one job of the run is. Every field is always present (`undefined` when not applicable). */
export interface JobEntry {
  readonly status: JobStatus
  /** The job's id, once the conductor reported it. */
  readonly id: Names.JobId | undefined
  /** The request, params resolved, once the job was ready. */
  readonly request: Job.JobRequest | undefined
  readonly readyAt: number | undefined
  readonly result: JobResult | undefined
  readonly finishedAt: number | undefined
  /** Why it was skipped or failed, or the job's own reason. */
  readonly reason: string | undefined
}

/** How the run ended. */
export interface Finished {
  readonly state: JobState.FinishedJobState
  readonly reason: string | undefined
  readonly at: number
}

/** Why the run stopped starting jobs. */
export interface Stopping {
  readonly cause: "failed" | "cancelled"
  readonly reason: string
  readonly at: number
}

/** The state of a run. Plain data: equal inputs give deeply equal states. */
export interface State {
  readonly pipeline: Pipeline.Pipeline
  /** The run's id, as the conductor allocated it (carried in labels and idempotency keys). */
  readonly runId: string | undefined
  /** The run's params, validated, defaults applied. */
  readonly params: Json.JsonObject
  readonly startedAt: number
  readonly jobs: Readonly<Record<string, JobEntry>>
  readonly stopping: Stopping | undefined
  readonly finished: Finished | undefined
}

/** Submit a job (the conductor then reports {@link jobSubmitted} or {@link submissionFailed}). */
export interface SubmitJob {
  readonly _tag: "SubmitJob"
  readonly jobName: string
  readonly request: Job.JobRequest
}

/** Cancel a job of the run. */
export interface CancelJob {
  readonly _tag: "CancelJob"
  readonly jobName: string
  readonly id: Names.JobId
}

export type Action = SubmitJob | CancelJob

/** The result of one step. */
export interface Step {
  readonly state: State
  readonly actions: ReadonlyArray<Action>
  /** Set on the step that finished the run. */
  readonly finished?: Finished
}

export interface StartOptions {
  /**
   * The run's id (at most 128 characters: it goes into a label and the
   * idempotency keys). Without one, submitted jobs carry no idempotency key
   * (tests, plans).
   */
  readonly runId?: string | undefined
}

/** Facts the conductor records and replays, in the order they happened. */
export type Event =
  | { readonly _tag: "Submitted"; readonly jobName: string; readonly id: Names.JobId; readonly at: number }
  | { readonly _tag: "SubmissionFailed"; readonly jobName: string; readonly reason: string; readonly at: number }
  | { readonly _tag: "Finished"; readonly jobName: string; readonly result: JobResult; readonly at: number }
  | { readonly _tag: "Cancelled"; readonly reason: string; readonly at: number }

// ---------------------------------------------------------------------------

const entry = (fields: Partial<JobEntry> & { readonly status: JobStatus }): JobEntry => ({
  status: fields.status,
  id: fields.id,
  request: fields.request,
  readyAt: fields.readyAt,
  result: fields.result,
  finishedAt: fields.finishedAt,
  reason: fields.reason
})

const isTerminal = (s: JobStatus): boolean => s === "finished" || s === "skipped" || s === "failed"
const isLive = (s: JobStatus): boolean => s === "ready" || s === "submitted"

/**
 * Check a run's params against the pipeline's params schema (string values
 * of integer, number and boolean params converted, defaults applied).
 * Without a schema, params must be an object.
 */
export const checkParams = (pipeline: Pipeline.Pipeline, params: unknown): Either.Either<Json.JsonObject, PipelineError> => {
  const where = (p: string) => `${pipeline.file}: ${p}`
  if (pipeline.params === undefined) {
    return Json.isJsonObject(params)
      ? Either.right(params)
      : Either.left(pipelineError(pipeline.file, [{ path: where("params"), message: "must be a JSON object" }]))
  }
  return Either.mapLeft(
    Params.validate(pipeline.params, params),
    (issues) => pipelineError(pipeline.file, issues.map((i) => ({ path: where(i.path), message: i.message })))
  )
}

/** Start a run: the jobs that need nothing are submitted. Invalid params finish it `FAIL` at once. */
export const start = (pipeline: Pipeline.Pipeline, params: unknown, now: number, options?: StartOptions): Step => {
  const jobs: Record<string, JobEntry> = {}
  for (const j of pipeline.jobs) jobs[j.name] = entry({ status: "waiting" })
  const checked = checkParams(pipeline, params)
  const state: State = {
    pipeline,
    runId: options?.runId,
    params: Either.isRight(checked) ? checked.right : {},
    startedAt: now,
    jobs,
    stopping: Either.isLeft(checked)
      ? { cause: "failed", reason: `invalid params: ${checked.left.issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`, at: now }
      : undefined,
    finished: undefined
  }
  return settle(state, [], now)
}

/** The conductor submitted a job of the run and got its id. */
export const jobSubmitted = (state: State, jobName: string, id: Names.JobId, _now?: number): Step => {
  const e = state.jobs[jobName]
  if (e === undefined || e.id !== undefined || state.finished !== undefined) return { state, actions: [] }
  if (e.status === "waiting") {
    // A submission replayed before the finishes that made the job ready.
    return { state: { ...state, jobs: { ...state.jobs, [jobName]: { ...e, id } } }, actions: [] }
  }
  if (e.status !== "ready") return { state, actions: [] }
  const next: State = { ...state, jobs: { ...state.jobs, [jobName]: { ...e, status: "submitted", id } } }
  const actions: Array<Action> = state.stopping?.cause === "cancelled" ? [{ _tag: "CancelJob", jobName, id }] : []
  return { state: next, actions }
}

/** The conductor could not submit a job (refused, invalid params): the run stops and ends `FAIL`. */
export const submissionFailed = (state: State, jobName: string, reason: string, now: number): Step => {
  const e = state.jobs[jobName]
  if (e === undefined || e.status !== "ready" || state.finished !== undefined) return { state, actions: [] }
  const why = `job "${jobName}" could not be submitted: ${reason}`
  const next: State = {
    ...state,
    jobs: { ...state.jobs, [jobName]: { ...e, status: "failed", reason: why } },
    stopping: state.stopping ?? { cause: "failed", reason: why, at: now }
  }
  return settle(next, [], now)
}

/** A job of the run finished. A result for a job not live, or with another id, changes nothing. */
export const jobFinished = (state: State, jobName: string, result: JobResult, now: number): Step => {
  const e = state.jobs[jobName]
  if (e === undefined || !isLive(e.status) || state.finished !== undefined) return { state, actions: [] }
  if (e.id !== undefined && e.id !== result.id) return { state, actions: [] }
  const done = entry({
    status: "finished",
    id: result.id,
    request: e.request,
    readyAt: e.readyAt,
    result,
    finishedAt: now,
    reason: result.reason
  })
  return settle({ ...state, jobs: { ...state.jobs, [jobName]: done } }, [], now)
}

/** Cancel the run: nothing more starts, the jobs running are cancelled, it ends `CANCELLED`. */
export const cancel = (state: State, reason: string, now: number): Step => {
  if (state.finished !== undefined || state.stopping?.cause === "cancelled") return { state, actions: [] }
  const why = state.stopping === undefined ? reason : `${reason} (after: ${state.stopping.reason})`
  const next: State = { ...state, stopping: { cause: "cancelled", reason: why, at: now } }
  const actions: Array<Action> = []
  for (const j of state.pipeline.jobs) {
    const e = state.jobs[j.name]
    if (e?.status === "submitted" && e.id !== undefined) actions.push({ _tag: "CancelJob", jobName: j.name, id: e.id })
  }
  return settle(next, actions, now)
}

/** Apply one recorded fact. */
export const apply = (state: State, event: Event): Step => {
  switch (event._tag) {
    case "Submitted":
      return jobSubmitted(state, event.jobName, event.id, event.at)
    case "SubmissionFailed":
      return submissionFailed(state, event.jobName, event.reason, event.at)
    case "Finished":
      return jobFinished(state, event.jobName, event.result, event.at)
    case "Cancelled":
      return cancel(state, event.reason, event.at)
  }
}

/**
 * What the conductor still owes a run: a {@link SubmitJob} for every job
 * ready but with no id recorded, and (for a cancelled run) a
 * {@link CancelJob} for every job still running. After a restart, these
 * are the only actions to take.
 */
export const outstanding = (state: State): ReadonlyArray<Action> => {
  if (state.finished !== undefined) return []
  const out: Array<Action> = []
  for (const j of state.pipeline.jobs) {
    const e = state.jobs[j.name]
    if (e === undefined) continue
    if (e.status === "ready" && e.request !== undefined) out.push({ _tag: "SubmitJob", jobName: j.name, request: e.request })
    if (e.status === "submitted" && e.id !== undefined && state.stopping?.cause === "cancelled") {
      out.push({ _tag: "CancelJob", jobName: j.name, id: e.id })
    }
  }
  return out
}

/**
 * Rebuild a run from what was recorded: {@link start} with the run's
 * start time and id, then every event in the order recorded. The returned
 * actions are {@link outstanding}: what is left to do.
 */
export const replay = (
  pipeline: Pipeline.Pipeline,
  params: unknown,
  startedAt: number,
  options: StartOptions,
  events: Iterable<Event>
): Step => {
  let state = start(pipeline, params, startedAt, options).state
  for (const event of events) state = apply(state, event).state
  return state.finished === undefined
    ? { state, actions: outstanding(state) }
    : { state, actions: [], finished: state.finished }
}

/** A finished job record as a {@link JobResult}; `undefined` while it is still `PENDING`. */
export const resultOf = (record: Job.JobRecord): JobResult | undefined => {
  if (!JobState.isFinished(record.state)) return undefined
  const players: Record<string, PlayerResult> = {}
  for (const [name, r] of Job.playerResults(record)) players[name] = { outcome: r.outcome, response: r.response }
  return { id: record.id, state: record.state, reason: record.reason, players }
}

/** The run's state: `PENDING` until it finished. */
export const stateOf = (state: State): JobState.JobState => state.finished?.state ?? "PENDING"

// ---------------------------------------------------------------------------

const listStates = (states: ReadonlyArray<string>): string =>
  states.length <= 1 ? (states[0] ?? "") : `${states.slice(0, -1).join(", ")} or ${states[states.length - 1]}`

/** Why a job whose needs all ended should not run, if it should not. */
const skipReason = (job: Pipeline.PipelineJob, jobs: Readonly<Record<string, JobEntry>>): string | undefined => {
  const bad: Array<string> = []
  for (const n of job.needs) {
    const e = jobs[n]!
    if (e.status === "skipped") bad.push(`${n} was skipped`)
    else if (e.status === "failed") bad.push(`${n} could not be submitted`)
    else if (e.result !== undefined && !job.when.includes(e.result.state)) bad.push(`${n} ended ${e.result.state}`)
  }
  return bad.length === 0 ? undefined : `not run: ${bad.join(", ")} (it runs when its needs end ${listStates(job.when)})`
}

/** Start what can start, then finish the run if nothing is left. */
const settle = (state: State, actions: Array<Action>, now: number): Step => {
  if (state.finished !== undefined) return { state, actions }
  const jobs: Record<string, JobEntry> = { ...state.jobs }
  let stopping = state.stopping
  if (stopping === undefined) {
    const runnable: Array<{ readonly job: Pipeline.PipelineJob; readonly request: Job.JobRequest }> = []
    const failures: Array<{ readonly job: Pipeline.PipelineJob; readonly reason: string }> = []
    // Topological order: a job skipped here is seen by its dependents in the same pass.
    for (const job of state.pipeline.jobs) {
      const e = jobs[job.name]!
      if (e.status !== "waiting") continue
      if (!job.needs.every((n) => isTerminal(jobs[n]!.status))) continue
      const skip = skipReason(job, jobs)
      if (skip !== undefined) {
        jobs[job.name] = entry({ status: "skipped", id: e.id, reason: skip })
        continue
      }
      const built = buildRequest(state, jobs, job, now)
      if (built._tag === "Left") failures.push({ job, reason: built.reason })
      else runnable.push({ job, request: built.request })
    }
    if (failures.length > 0) {
      // Nothing of this pass starts: the run stops here.
      for (const f of failures) jobs[f.job.name] = entry({ status: "failed", reason: f.reason })
      stopping = {
        cause: "failed",
        reason: failures.map((f) => `job "${f.job.name}" could not be submitted: ${f.reason}`).join("; "),
        at: now
      }
    } else {
      for (const { job, request } of runnable) {
        const e = jobs[job.name]!
        jobs[job.name] = entry({ status: e.id === undefined ? "ready" : "submitted", id: e.id, request, readyAt: now })
        if (e.id === undefined) actions.push({ _tag: "SubmitJob", jobName: job.name, request })
      }
    }
  }
  const live = state.pipeline.jobs.some((j) => isLive(jobs[j.name]!.status))
  let finished: Finished | undefined
  if (stopping !== undefined) {
    if (!live) {
      for (const j of state.pipeline.jobs) {
        if (jobs[j.name]!.status === "waiting") jobs[j.name] = entry({ status: "skipped", reason: `not run: ${stopping.reason}` })
      }
      finished = { state: stopping.cause === "cancelled" ? "CANCELLED" : "FAIL", reason: stopping.reason, at: now }
    }
  } else if (state.pipeline.jobs.every((j) => isTerminal(jobs[j.name]!.status))) {
    finished = aggregate(state.pipeline, jobs, now)
  }
  const next: State = { ...state, jobs, stopping, finished }
  return finished === undefined ? { state: next, actions } : { state: next, actions, finished }
}

const REASON_LIMIT = 300
const short = (s: string): string => (s.length > REASON_LIMIT ? `${s.slice(0, REASON_LIMIT - 1)}…` : s)

/** The state of a run whose jobs all finished or were skipped (see the module's doc). */
const aggregate = (pipeline: Pipeline.Pipeline, jobs: Readonly<Record<string, JobEntry>>, now: number): Finished => {
  let fail = false
  let partial = false
  const notes: Array<string> = []
  for (const j of pipeline.jobs) {
    const e = jobs[j.name]!
    if (e.status === "finished" && e.result !== undefined) {
      const s = e.result.state
      if (s === "OK") continue
      if (s === "PARTIAL_FAIL") partial = true
      else fail = true
      notes.push(`${j.name} ended ${s}${e.result.reason === undefined ? "" : ` (${short(e.result.reason)})`}`)
    } else if (e.status === "skipped") {
      if (j.when.includes("OK")) fail = true
      notes.push(`${j.name} ${e.reason?.replace(/^not run: /, "skipped: ") ?? "skipped"}`)
    } else if (e.status === "failed") {
      fail = true
      notes.push(`${j.name} failed: ${e.reason ?? ""}`)
    }
  }
  const state: JobState.FinishedJobState = fail ? "FAIL" : partial ? "PARTIAL_FAIL" : "OK"
  return { state, reason: notes.length === 0 ? undefined : notes.join("; "), at: now }
}

const getPath = (value: Json.Json | undefined, path: ReadonlyArray<string>): { readonly found: boolean; readonly value: Json.Json } => {
  let v: Json.Json | undefined = value
  for (const seg of path) {
    if (Array.isArray(v) && /^(0|[1-9]\d*)$/.test(seg)) v = (v as ReadonlyArray<Json.Json>)[Number(seg)]
    else if (T.isObject(v) && Object.prototype.hasOwnProperty.call(v, seg)) v = (v as Json.JsonObject)[seg]
    else return { found: false, value: null }
    if (v === undefined) return { found: false, value: null }
  }
  return v === undefined ? { found: false, value: null } : { found: true, value: v }
}

const show = (v: Json.Json): string => {
  const s = JSON.stringify(v)
  return s.length > 60 ? `${s.slice(0, 57)}...` : s
}

/**
 * The value of `jobs.J.output.K` for a finished job: the value of `K`
 * reported by every player that ended `OK` (one player for `one-of`), when
 * they all reported the same one.
 */
export const output = (jobName: string, result: JobResult, key: ReadonlyArray<string>): Either.Either<Json.Json, string> => {
  const k = key.join(".")
  const ok = Object.entries(result.players).filter(([, r]) => r.outcome === "OK")
  if (ok.length === 0) return Either.left(`no player of job "${jobName}" (job ${result.id}, ${result.state}) ended OK, so it has no output "${k}"`)
  const values: Array<readonly [string, Json.Json]> = []
  for (const [player, r] of ok) {
    const got = getPath(r.response, key)
    if (!got.found) return Either.left(`player ${player} ended OK in job "${jobName}" (job ${result.id}) but its response has no "${k}"`)
    values.push([player, got.value])
  }
  const distinct = new Set(values.map(([, v]) => T.canonical(v)))
  if (distinct.size > 1) {
    const shown = values.slice(0, 10).map(([p, v]) => `${p}: ${show(v)}`).join(", ")
    return Either.left(
      `the players of job "${jobName}" (job ${result.id}) that ended OK reported different values of "${k}" (${shown}${values.length > 10 ? ", …" : ""}): ` +
        `name one with jobs.${jobName}.players.<player>.response.${k}`
    )
  }
  return Either.right(values[0]![1])
}

const lookup = (state: State, jobs: Readonly<Record<string, JobEntry>>) => (ref: Template.Ref): Either.Either<Json.Json, string> => {
  if (ref._tag === "Param") {
    const got = getPath(state.params, ref.path)
    return got.found ? Either.right(got.value) : Either.left(`the run's params have no "${ref.path.join(".")}"`)
  }
  const e = jobs[ref.job]
  if (e === undefined || e.result === undefined) return Either.left(`job "${ref.job}" has not finished`)
  const result = e.result
  switch (ref._tag) {
    case "State":
      return Either.right(result.state)
    case "Output":
      return output(ref.job, result, ref.key)
    case "Response": {
      const r = result.players[ref.player]
      if (r === undefined) return Either.left(`player ${ref.player} has no result in job "${ref.job}" (job ${result.id})`)
      const got = getPath(r.response, ref.key)
      return got.found
        ? Either.right(got.value)
        : Either.left(`the response of player ${ref.player} in job "${ref.job}" (job ${result.id}) has no "${ref.key.join(".")}"`)
    }
  }
}

const buildRequest = (
  state: State,
  jobs: Readonly<Record<string, JobEntry>>,
  job: Pipeline.PipelineJob,
  now: number
): { readonly _tag: "Right"; readonly request: Job.JobRequest } | { readonly _tag: "Left"; readonly reason: string } => {
  const resolved = Template.resolve(job.params, lookup(state, jobs))
  if (Either.isLeft(resolved)) {
    const p = resolved.left.path.map(String).join(".")
    return { _tag: "Left", reason: `params${p === "" ? "" : `.${p}`}: ${resolved.left.message}` }
  }
  const labels: Record<string, string> = {
    ...job.labels,
    [Spec.LABEL_PIPELINE]: state.pipeline.name,
    [Spec.LABEL_PIPELINE_JOB]: job.name
  }
  if (state.runId !== undefined) labels[Spec.LABEL_PIPELINE_RUN] = state.runId
  const built = Spec.makeRequest({
    score: job.score,
    players: job.players,
    selector: job.selector,
    policy: job.policy,
    params: resolved.right,
    deadline: job.deadlineMs === undefined ? undefined : now + job.deadlineMs,
    idempotencyKey: state.runId === undefined ? undefined : `pipeline/${state.runId}/${job.name}`,
    retry: job.retry,
    labels
  })
  return built._tag === "Right" ? built : { _tag: "Left", reason: built.reason }
}
