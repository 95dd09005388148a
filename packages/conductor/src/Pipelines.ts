/**
 * Pipeline runs in the conductor: a pipeline document is validated as a
 * whole against the catalog the players reported and the registered
 * policies (every issue listed with its line), stored with its params, and
 * driven by the pure `PipelineRun` state machine of `@orchestra/pipeline`:
 * its jobs go through the same intake as any job, and each fact — a job
 * submitted with its id, refused, finished — is appended to the run in the
 * store before the run acts on it.
 *
 * A restarted conductor replays every unfinished run from its facts and
 * carries on. A job that was submitted but whose id was not recorded yet is
 * submitted again with the run's idempotency key, which returns the job
 * that exists — so a finished job is never run twice.
 *
 * Each recorded fact is also published as an audience event
 * (`pipeline.started`, `pipeline.progressed`, `pipeline.finished`), and
 * `wait` holds a caller until a run finishes (long poll).
 *
 * @since 0.1.0
 */
import type { Events as ApiEvents, Views } from "@orchestra/api"
import type { Catalog, Names, PluginRegistry } from "@orchestra/core"
import { Errors, Store } from "@orchestra/core"
import { Pipeline, PipelineRun } from "@orchestra/pipeline"
import type { Scope } from "effect"
import { Clock, Deferred, FiberId, Duration, Effect, Either, FiberSet, Option, Queue } from "effect"
import type { AudienceService } from "./Audience.js"
import type { EngineService } from "./Engine.js"
import type { IntakeService } from "./Intake.js"
import * as Intake from "./Intake.js"

/** A pipeline run as the audience sees it (its jobs in topological order): the API's view. */
export type PipelineRunView = Views.PipelineRunDetail

export interface RunRequest {
  /** The document's text (YAML). */
  readonly document: string
  /** Its file name, for messages (`file:line`). */
  readonly file?: string | undefined
  readonly params?: unknown
  /** The same key returns the same run. */
  readonly key?: string | undefined
}

export interface PipelinesService {
  /** Validate, store and start a run. */
  readonly run: (request: RunRequest) => Effect.Effect<{ readonly id: number; readonly existing: boolean }, Errors.InvalidRequest | Errors.StoreError>
  readonly get: (id: number) => Effect.Effect<Option.Option<PipelineRunView>, Errors.StoreError>
  readonly list: (query: Store.PipelineRunQuery) => Effect.Effect<Store.PipelineRunPage, Errors.StoreError>
  /** Cancel a run: nothing more starts, its running jobs are cancelled. `false`: unknown or finished. */
  readonly cancel: (id: number, reason?: string) => Effect.Effect<boolean, Errors.StoreError>
  /** The run once it has finished, or as it is when `timeoutMs` passes first; none for an unknown id. */
  readonly wait: (id: number, timeoutMs: number) => Effect.Effect<Option.Option<PipelineRunView>, Errors.StoreError>
  /** How many unfinished runs were resumed at start-up. */
  readonly resumed: number
}

export interface Dependencies {
  readonly store: Store.StoreService
  readonly intake: IntakeService
  readonly engine: EngineService
  readonly audience: AudienceService
  readonly registry: () => PluginRegistry.Registry
  /** Where the runs' audience events go (none: not published). */
  readonly publish?: (event: ApiEvents.Body) => void
}

/** How long one wait for a job is held before it is asked again. */
const WAIT_SLICE_MS = 60_000

const viewOf = (record: Store.PipelineRunRecord, state: PipelineRun.State | undefined): PipelineRunView => ({
  id: record.id,
  pipeline: record.pipeline,
  file: record.file,
  state: record.state,
  createdAt: record.createdAt,
  ...(record.finishedAt === undefined ? {} : { finishedAt: record.finishedAt }),
  ...(record.reason === undefined ? {} : { reason: record.reason }),
  params: state?.params ?? record.params,
  jobs: state === undefined ? [] : state.pipeline.jobs.map((j): Views.PipelineJobView => {
    const e = state.jobs[j.name]
    return {
      name: j.name,
      status: e?.status ?? "waiting",
      ...(e?.id === undefined ? {} : { id: e.id }),
      ...(e?.result === undefined ? {} : { state: e.result.state }),
      ...(e?.reason === undefined ? {} : { reason: e.reason })
    }
  })
})

const replayed = (record: Store.PipelineRunRecord): Either.Either<PipelineRun.Step, string> =>
  Either.map(
    Either.mapLeft(Pipeline.parse(record.document, record.file), (e) => e.message),
    (pipeline) => PipelineRun.replay(pipeline, record.params, record.createdAt, { runId: String(record.id) }, record.events)
  )

/** Start the pipeline service: unfinished runs are resumed; runs go on until the scope closes. */
export const make = (deps: Dependencies): Effect.Effect<PipelinesService, Errors.StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const { store } = deps
    const fibers = yield* FiberSet.make()
    /** Each live run's inbox of facts to apply (cancellations from the audience). */
    const inboxes = new Map<number, Queue.Queue<PipelineRun.Event>>()
    /** Each live run's end, for `wait`; dropped when the run's fiber ends. */
    const ends = new Map<number, Deferred.Deferred<void>>()

    const catalogLookup = (score: string): Catalog.ScoreInfo | undefined => {
      for (const p of deps.engine.players()) {
        const info = p.catalog?.get(score)
        if (info !== undefined) return info
      }
      return undefined
    }

    /** Wait until job `id` finished; its result as the pipeline sees it. */
    const resultOf = (id: Names.JobId): Effect.Effect<PipelineRun.JobResult, Errors.StoreError> =>
      Effect.gen(function*() {
        for (;;) {
          yield* deps.audience.wait(id, WAIT_SLICE_MS).pipe(
            Effect.catchAll((e) => (e._tag === "StoreError" ? Effect.fail(e) : Effect.void))
          )
          const record = yield* store.getJob(id)
          if (Option.isNone(record)) {
            return { id, state: "FAIL", reason: `job ${id} is gone from the store`, players: {} } satisfies PipelineRun.JobResult
          }
          const result = PipelineRun.resultOf(record.value)
          if (result !== undefined) return result
        }
      })

    const publish = deps.publish ?? (() => {})
    /** What changed for each job between two states of a run: one `pipeline.progressed` each. */
    const publishProgress = (id: number, before: PipelineRun.State, after: PipelineRun.State, at: number) => {
      for (const j of after.pipeline.jobs) {
        const was = before.jobs[j.name]
        const now = after.jobs[j.name]
        if (now === undefined || (was?.status === now.status && was?.id === now.id)) continue
        publish({
          type: "pipeline.progressed",
          at,
          run: id,
          pipeline: after.pipeline.name,
          name: j.name,
          status: now.status,
          ...(now.id === undefined ? {} : { jobId: now.id }),
          ...(now.result === undefined ? {} : { state: now.result.state }),
          ...(now.reason === undefined ? {} : { reason: now.reason })
        })
      }
    }

    const drive = (id: Store.PipelineRunId, first: PipelineRun.Step, done: Deferred.Deferred<void>) =>
      Effect.gen(function*() {
        const inbox = yield* Queue.unbounded<PipelineRun.Event>()
        inboxes.set(id, inbox)
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            inboxes.delete(id)
            ends.delete(id)
          })
        )
        const waiters = yield* FiberSet.make()
        const watch = (jobName: string, job: Names.JobId) =>
          FiberSet.run(
            waiters,
            Effect.flatMap(resultOf(job), (result) =>
              Effect.flatMap(Clock.currentTimeMillis, (at) => inbox.offer({ _tag: "Finished", jobName, result, at })))
          )
        let state = first.state
        let actions = first.actions
        // After a restart: the jobs already submitted are waited for again.
        for (const j of state.pipeline.jobs) {
          const e = state.jobs[j.name]
          if (e?.status === "submitted" && e.id !== undefined) yield* watch(j.name, e.id)
        }
        /** Record a fact, then let the run act on it. */
        const feed = (event: PipelineRun.Event) =>
          Effect.gen(function*() {
            const recorded = yield* store.recordPipelineEvent(id, event as Store.PipelineEvent)
            if (!recorded) return false
            const step = PipelineRun.apply(state, event)
            publishProgress(id, state, step.state, event.at)
            state = step.state
            actions = [...actions, ...step.actions]
            return true
          })
        while (state.finished === undefined) {
          const todo = actions
          actions = []
          for (const action of todo) {
            const at = yield* Clock.currentTimeMillis
            if (action._tag === "SubmitJob") {
              const accepted = yield* Effect.either(deps.intake.submit(action.request))
              if (Either.isRight(accepted)) {
                yield* feed({ _tag: "Submitted", jobName: action.jobName, id: accepted.right.id, at })
                yield* watch(action.jobName, accepted.right.id)
              } else if (accepted.left._tag === "StoreError") {
                return yield* accepted.left
              } else {
                yield* feed({ _tag: "SubmissionFailed", jobName: action.jobName, reason: accepted.left.message, at })
              }
            } else {
              yield* deps.audience.cancel(action.id, `pipeline run ${id} cancelled`).pipe(Effect.ignore)
            }
          }
          if (state.finished !== undefined || actions.length > 0) continue
          yield* feed(yield* Queue.take(inbox))
        }
        const end = state.finished
        yield* store.finishPipelineRun(id, end.state, end.at, end.reason)
        publish({
          type: "pipeline.finished",
          at: end.at,
          run: id,
          pipeline: state.pipeline.name,
          state: end.state,
          ...(end.reason === undefined ? {} : { reason: end.reason })
        })
        yield* Deferred.succeed(done, undefined)
        yield* Effect.logInfo("pipeline run finished").pipe(
          Effect.annotateLogs({ run: id, pipeline: state.pipeline.name, state: end.state, ...(end.reason === undefined ? {} : { reason: end.reason }) })
        )
      }).pipe(
        Effect.scoped,
        Effect.catchAll((e) => Effect.logError("pipeline run stopped").pipe(Effect.annotateLogs({ run: id, error: e.message })))
      )

    /** Drive a run in its own fiber; its end is in `ends` before the fiber starts, so a `wait` right after `run` finds it. */
    const start = (id: Store.PipelineRunId, step: PipelineRun.Step) => {
      const done = Deferred.unsafeMake<void>(FiberId.none)
      ends.set(id, done)
      return FiberSet.run(fibers, drive(id, step, done)).pipe(Effect.asVoid)
    }

    const launch = (record: Store.PipelineRunRecord) =>
      Either.match(replayed(record), {
        onLeft: (why) =>
          Effect.flatMap(Clock.currentTimeMillis, (at) => store.finishPipelineRun(record.id, "FAIL", at, `the stored document no longer parses: ${why}`)),
        onRight: (step) => start(record.id, step)
      })

    const unfinished = yield* store.unfinishedPipelineRuns
    for (const record of unfinished) yield* launch(record)
    if (unfinished.length > 0) yield* Effect.logInfo("pipeline runs resumed").pipe(Effect.annotateLogs({ runs: unfinished.length }))

    const run: PipelinesService["run"] = (request) =>
      Effect.gen(function*() {
        const file = request.file ?? "pipeline.yaml"
        const checked = Pipeline.validate(request.document, file, {
          catalog: catalogLookup,
          catalogIncomplete: deps.engine.players().some((p) => p.allowlisted && p.catalog === undefined),
          policies: deps.registry().policies
        })
        if (Either.isLeft(checked)) return yield* Intake.invalid(checked.left.issues, "pipeline")
        const params = PipelineRun.checkParams(checked.right, request.params ?? {})
        if (Either.isLeft(params)) return yield* Intake.invalid(params.left.issues, "pipeline params")
        const createdAt = yield* Clock.currentTimeMillis
        const created = yield* store.createPipelineRun({
          pipeline: checked.right.name,
          file,
          document: request.document,
          params: params.right,
          createdAt,
          ...(request.key === undefined ? {} : { key: request.key })
        })
        if (!created.existing) {
          const step = PipelineRun.start(checked.right, params.right, createdAt, { runId: String(created.id) })
          publish({ type: "pipeline.started", at: createdAt, run: created.id, pipeline: checked.right.name, jobs: checked.right.jobs.map((j) => j.name) })
          publishProgress(created.id, { ...step.state, jobs: {} }, step.state, createdAt)
          yield* start(created.id, step)
          yield* Effect.logInfo("pipeline run started").pipe(Effect.annotateLogs({ run: created.id, pipeline: checked.right.name }))
        }
        return { id: created.id, existing: created.existing }
      })

    const get: PipelinesService["get"] = (id) =>
      Effect.map(
        Number.isSafeInteger(id) && id > 0 ? store.getPipelineRun(Store.pipelineRunId(id)) : Effect.succeed(Option.none()),
        Option.map((record) => viewOf(record, Option.getOrUndefined(Either.getRight(replayed(record)))?.state))
      )

    const cancel: PipelinesService["cancel"] = (id, reason) =>
      Effect.gen(function*() {
        const inbox = inboxes.get(id)
        if (inbox === undefined) return false
        yield* inbox.offer({ _tag: "Cancelled", reason: reason ?? "cancelled", at: yield* Clock.currentTimeMillis })
        return true
      })

    const wait: PipelinesService["wait"] = (id, timeoutMs) =>
      Effect.gen(function*() {
        const end = ends.get(id)
        if (end !== undefined) yield* Deferred.await(end).pipe(Effect.timeoutOption(Duration.millis(Math.max(0, timeoutMs))))
        return yield* get(id)
      })

    return { run, get, list: store.listPipelineRuns, cancel, wait, resumed: unfinished.length }
  })
