/**
 * The in-memory store: everything in maps, gone with the process. For
 * tests and embedded use. It keeps the same rules as the SQL stores and
 * passes the same conformance suite: records are kept encoded (JSON text of
 * the core schemas) and decoded on read, so callers never share objects
 * with the store.
 *
 * Rules beyond the `StoreService` docs (the same as the SQL store's):
 * - writes naming a job that does not exist change nothing (`recordEnd`
 *   returns `false`);
 * - `recordStart` of an attempt not recorded yet changes nothing;
 * - an attempt first seen through its result is created then, with the
 *   result's player, and reports `dispatchedAt` = its start (or end) time
 *   until its dispatch is recorded;
 * - `seq` increases in the order results were recorded (one counter for
 *   the whole store);
 * - a purged job's idempotency key is forgotten with it;
 * - pipeline runs follow the same rules: ids never reused, a key already
 *   known returns its run, events are kept encoded and appended only to an
 *   unfinished run, a purged run's key is forgotten with it.
 *
 * @since 0.1.0
 */
import { Errors, Job, JobState, Names, Outcome, Store } from "@orchestra/core"
import { Effect, Either, Layer, Option, ParseResult, Schema } from "effect"
import * as Checks from "./internal/checks.js"

const StoreError = Errors.StoreError
type StoreError = Errors.StoreError

interface Result {
  readonly outcome: string
  readonly response: string
  readonly log: string | undefined
  readonly startedAt: number | undefined
  readonly finishedAt: number
  readonly seq: number
}

interface Attempt {
  readonly key: string
  readonly attempt: number
  player: string
  dispatchedAt: number | undefined
  startedAt: number | undefined
  result: Result | undefined
}

interface StoredJob {
  readonly id: number
  readonly key: string | undefined
  readonly score: string
  readonly policy: string
  readonly request: string
  readonly targets: ReadonlyArray<string>
  readonly targetSet: ReadonlySet<string>
  readonly targetLabels: string
  readonly createdAt: number
  state: string
  finishedAt: number | undefined
  reason: string | undefined
  /** In the order attempts were first recorded. */
  readonly attempts: Map<string, Attempt>
}

const invalid = (operation: string) => (e: ParseResult.ParseError) =>
  new StoreError({ operation, message: `invalid input: ${ParseResult.TreeFormatter.formatErrorSync(e)}` })

const NewJobInput = Schema.Struct({
  request: Job.JobRequest,
  targets: Schema.Array(Names.PlayerName),
  targetLabels: Schema.Record({ key: Schema.String, value: Job.Labels }),
  createdAt: Schema.Number
})

/**
 * Check an input against its schema and give its encoded form: inputs the
 * fast checks accept are their own encoded form (the schemas below have no
 * transformations); any other goes through the schema, which rejects it
 * with the reason or encodes it.
 */
const checked = <A, I>(schema: Schema.Schema<A, I>, operation: string, fast: (a: A) => boolean) => {
  const encode = Schema.encodeEither(schema)
  return (a: A): Either.Either<I, StoreError> =>
    fast(a) ? Either.right(a as unknown as I) : Either.mapLeft(encode(a), invalid(operation))
}

/**
 * A `JobRequest` instance was checked when it was made and its schema has no
 * transformations, so its encoded form is itself (the SQL store relies on
 * the same, and a test holds it).
 */
const encodeNewJob = checked(NewJobInput, "createJob", (j) =>
  j.request instanceof Job.JobRequest && Checks.isPlayerNames(j.targets) && Checks.isTargetLabels(j.targetLabels) &&
  typeof j.createdAt === "number")
const encodeDispatch = checked(
  Schema.Struct({ ref: Names.TaskRef, player: Names.PlayerName, at: Schema.Number }),
  "recordDispatch",
  (d) => Checks.isTaskRef(d.ref) && Checks.isPlayerName(d.player) && typeof d.at === "number"
)
const encodeStart = checked(
  Schema.Struct({ ref: Names.TaskRef, at: Schema.Number }),
  "recordStart",
  (s) => Checks.isTaskRef(s.ref) && typeof s.at === "number"
)
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
const encodeNewRun = checked(Store.NewPipelineRun, "createPipelineRun", () => false)
const encodeEvent = checked(
  Schema.Struct({ id: Store.PipelineRunId, event: Store.PipelineEvent }),
  "recordPipelineEvent",
  () => false
)
const encodeFinishRun = checked(
  Schema.Struct({ id: Store.PipelineRunId, state: JobState.FinishedJobState, at: Schema.Number, reason: Schema.optional(Schema.String) }),
  "finishPipelineRun",
  (f) => Checks.isJobIdValue(f.id) && Checks.isFinishedState(f.state) && typeof f.at === "number" && Checks.isOptionalString(f.reason)
)
const encodeSchedule = checked(
  Schema.Struct({ name: Store.ScheduleName, at: Schema.Number.pipe(Schema.finite()) }),
  "setScheduleState",
  () => false
)
const decodeRunQuery = Schema.decodeUnknown(Store.PipelineRunQuery)

interface StoredRun {
  readonly id: number
  readonly key: string | undefined
  readonly pipeline: string
  readonly file: string
  readonly document: string
  readonly params: string
  readonly createdAt: number
  state: string
  finishedAt: number | undefined
  reason: string | undefined
  /** Encoded events (JSON text), in the order recorded. */
  readonly events: Array<string>
}

/** The core decoder: fast for records of the usual shape, the schema otherwise. */
const decodeRecord = Store.decodeRecord
const decodeQuery = Schema.decodeUnknown(Store.JobQuery)

const refKey = (key: string, attempt: number) => `${key}\u0000${attempt}`

/** Make an empty in-memory store. */
export const make: Effect.Effect<Store.StoreService> = Effect.sync(() => {
  const jobs = new Map<number, StoredJob>()
  const byKey = new Map<string, number>()
  let lastId = 0
  let lastSeq = 0
  const runs = new Map<number, StoredRun>()
  const runsByKey = new Map<string, number>()
  let lastRunId = 0
  const schedules = new Map<string, number>()

  const toRun = (operation: string, r: StoredRun): Effect.Effect<Store.PipelineRunRecord, StoreError> =>
    Effect.mapError(
      Store.decodePipelineRun({
        id: r.id,
        ...(r.key === undefined ? {} : { key: r.key }),
        pipeline: r.pipeline,
        file: r.file,
        document: r.document,
        params: JSON.parse(r.params),
        state: r.state,
        createdAt: r.createdAt,
        ...(r.finishedAt === undefined ? {} : { finishedAt: r.finishedAt }),
        ...(r.reason === undefined ? {} : { reason: r.reason }),
        events: r.events.map((e) => JSON.parse(e))
      }),
      (e) => new StoreError({ operation, message: `pipeline run ${r.id} is unreadable: ${ParseResult.TreeFormatter.formatErrorSync(e)}` })
    )

  const toRecord = (operation: string, j: StoredJob): Effect.Effect<Job.JobRecord, StoreError> =>
    Effect.mapError(
      decodeRecord({
        id: j.id,
        request: JSON.parse(j.request),
        targets: j.targets,
        targetLabels: JSON.parse(j.targetLabels),
        state: j.state,
        createdAt: j.createdAt,
        ...(j.finishedAt === undefined ? {} : { finishedAt: j.finishedAt }),
        ...(j.reason === undefined ? {} : { reason: j.reason }),
        attempts: [...j.attempts.values()].map((a) => {
          const startedAt = a.startedAt ?? a.result?.startedAt
          const r = a.result
          return {
            key: a.key,
            attempt: a.attempt,
            player: a.player,
            dispatchedAt: a.dispatchedAt ?? startedAt ?? r?.finishedAt ?? 0,
            ...(startedAt === undefined ? {} : { startedAt }),
            ...(r === undefined ? {} : {
              finishedAt: r.finishedAt,
              outcome: r.outcome,
              response: JSON.parse(r.response),
              ...(r.log === undefined ? {} : { log: r.log }),
              seq: r.seq
            })
          }
        })
      }),
      (e) => new StoreError({ operation, message: `job ${j.id} is unreadable: ${ParseResult.TreeFormatter.formatErrorSync(e)}` })
    )

  type Encoded<F> = F extends (a: never) => Either.Either<infer I, StoreError> ? I : never

  const dispatch = (e: Encoded<typeof encodeDispatch>): void => {
    const j = jobs.get(e.ref.job)
    if (j === undefined) return
    const k = refKey(e.ref.key, e.ref.attempt)
    const a = j.attempts.get(k)
    if (a === undefined) {
      j.attempts.set(k, {
        key: e.ref.key,
        attempt: e.ref.attempt,
        player: e.player,
        dispatchedAt: e.at,
        startedAt: undefined,
        result: undefined
      })
    } else if (a.dispatchedAt === undefined) {
      a.player = e.player
      a.dispatchedAt = e.at
    }
  }

  const start = (e: Encoded<typeof encodeStart>): void => {
    const a = jobs.get(e.ref.job)?.attempts.get(refKey(e.ref.key, e.ref.attempt))
    if (a !== undefined && a.startedAt === undefined) a.startedAt = e.at
  }

  const end = (e: Encoded<typeof encodeEnd>): boolean => {
    const j = jobs.get(e.ref.job)
    if (j === undefined) return false
    const k = refKey(e.ref.key, e.ref.attempt)
    let a = j.attempts.get(k)
    if (a === undefined) {
      a = {
        key: e.ref.key,
        attempt: e.ref.attempt,
        player: e.player,
        dispatchedAt: undefined,
        startedAt: e.startedAt,
        result: undefined
      }
      j.attempts.set(k, a)
    }
    if (a.result !== undefined) return false
    a.result = {
      outcome: e.outcome,
      response: JSON.stringify(e.response),
      log: e.log,
      startedAt: e.startedAt,
      finishedAt: e.finishedAt,
      seq: ++lastSeq
    }
    return true
  }

  const finish = (e: Encoded<typeof encodeFinish>): void => {
    const j = jobs.get(e.id)
    if (j === undefined || j.state !== "PENDING") return
    j.state = e.state
    j.finishedAt = e.at
    j.reason = e.reason
  }

  const service: Store.StoreService = {
    createJob: (job) =>
      Effect.map(
        encodeNewJob({ ...job, targetLabels: job.targetLabels ?? {} }),
        (e): Store.Created => {
          const key = job.request.idempotencyKey
          const known = key === undefined ? undefined : byKey.get(key)
          if (known !== undefined) return { id: known as Names.JobId, existing: true }
          const id = ++lastId
          jobs.set(id, {
            id,
            key,
            score: job.request.score,
            policy: job.request.policy.name,
            request: JSON.stringify(e.request),
            targets: [...e.targets],
            targetSet: new Set(e.targets),
            targetLabels: JSON.stringify(e.targetLabels),
            createdAt: e.createdAt,
            state: "PENDING",
            finishedAt: undefined,
            reason: undefined,
            attempts: new Map()
          })
          if (key !== undefined) byKey.set(key, id)
          return { id: id as Names.JobId, existing: false }
        }
      ),

    recordDispatch: (d) => Effect.suspend(() => Either.map(encodeDispatch(d), dispatch)),
    recordStart: (ref, at) => Effect.suspend(() => Either.map(encodeStart({ ref, at }), start)),
    recordEnd: (ended) => Effect.suspend(() => Either.map(encodeEnd(ended), end)),
    finishJob: (id, state, at, reason) => Effect.suspend(() => Either.map(encodeFinish({ id, state, at, reason }), finish)),

    getJob: (id) =>
      Effect.suspend(() => {
        const j = jobs.get(id)
        return j === undefined ? Effect.succeed(Option.none()) : Effect.map(toRecord("getJob", j), Option.some)
      }),

    listJobs: (query) =>
      Effect.gen(function*() {
        const q = yield* Effect.mapError(decodeQuery(query), (e) =>
          new StoreError({ operation: "listJobs", message: `invalid query: ${ParseResult.TreeFormatter.formatErrorSync(e)}` }))
        const ids = [...jobs.keys()]
        const page: Array<Store.JobSummary> = []
        let next: number | undefined
        for (let i = ids.length - 1; i >= 0; i--) {
          const j = jobs.get(ids[i]!)!
          if (q.before !== undefined && j.id >= q.before) continue
          if (q.state !== undefined && j.state !== q.state) continue
          if (q.score !== undefined && j.score !== q.score) continue
          if (q.player !== undefined && !j.targetSet.has(q.player)) continue
          if (q.since !== undefined && j.createdAt < q.since) continue
          if (q.until !== undefined && j.createdAt >= q.until) continue
          if (page.length === q.limit) {
            next = page[page.length - 1]!.id
            break
          }
          page.push({
            id: j.id as Names.JobId,
            score: j.score,
            policy: j.policy,
            state: j.state as JobState.JobState,
            targets: j.targets as ReadonlyArray<Names.PlayerName>,
            createdAt: j.createdAt,
            ...(j.finishedAt === undefined ? {} : { finishedAt: j.finishedAt })
          })
        }
        return next === undefined ? { jobs: page } : { jobs: page, next }
      }),

    unfinishedJobs: Effect.suspend(() =>
      Effect.forEach([...jobs.values()].filter((j) => j.state === "PENDING"), (j) => toRecord("unfinishedJobs", j))
    ),

    createPipelineRun: (run) =>
      Effect.suspend(() =>
        Either.map(encodeNewRun(run), (e): Store.CreatedPipelineRun => {
          const known = e.key === undefined ? undefined : runsByKey.get(e.key)
          if (known !== undefined) return { id: known as Store.PipelineRunId, existing: true }
          const id = ++lastRunId
          runs.set(id, {
            id,
            key: e.key,
            pipeline: e.pipeline,
            file: e.file,
            document: e.document,
            params: JSON.stringify(e.params),
            createdAt: e.createdAt,
            state: "PENDING",
            finishedAt: undefined,
            reason: undefined,
            events: []
          })
          if (e.key !== undefined) runsByKey.set(e.key, id)
          return { id: id as Store.PipelineRunId, existing: false }
        })
      ),

    recordPipelineEvent: (id, event) =>
      Effect.suspend(() =>
        Either.map(encodeEvent({ id, event }), (e) => {
          const r = runs.get(e.id)
          if (r === undefined || r.state !== "PENDING") return false
          r.events.push(JSON.stringify(e.event))
          return true
        })
      ),

    finishPipelineRun: (id, state, at, reason) =>
      Effect.suspend(() =>
        Either.map(encodeFinishRun({ id, state, at, reason }), (e) => {
          const r = runs.get(e.id)
          if (r === undefined || r.state !== "PENDING") return
          r.state = e.state
          r.finishedAt = e.at
          r.reason = e.reason
        })
      ),

    getPipelineRun: (id) =>
      Effect.suspend(() => {
        const r = runs.get(id)
        return r === undefined ? Effect.succeed(Option.none()) : Effect.map(toRun("getPipelineRun", r), Option.some)
      }),

    listPipelineRuns: (query) =>
      Effect.gen(function*() {
        const q = yield* Effect.mapError(decodeRunQuery(query), (e) =>
          new StoreError({ operation: "listPipelineRuns", message: `invalid query: ${ParseResult.TreeFormatter.formatErrorSync(e)}` }))
        const ids = [...runs.keys()]
        const page: Array<Store.PipelineRunSummary> = []
        let next: number | undefined
        for (let i = ids.length - 1; i >= 0; i--) {
          const r = runs.get(ids[i]!)!
          if (q.before !== undefined && r.id >= q.before) continue
          if (q.state !== undefined && r.state !== q.state) continue
          if (q.pipeline !== undefined && r.pipeline !== q.pipeline) continue
          if (page.length === q.limit) {
            next = page[page.length - 1]!.id
            break
          }
          page.push({
            id: r.id as Store.PipelineRunId,
            pipeline: r.pipeline,
            state: r.state as JobState.JobState,
            createdAt: r.createdAt,
            ...(r.finishedAt === undefined ? {} : { finishedAt: r.finishedAt }),
            ...(r.reason === undefined ? {} : { reason: r.reason })
          })
        }
        return next === undefined ? { runs: page } : { runs: page, next }
      }),

    unfinishedPipelineRuns: Effect.suspend(() =>
      Effect.forEach([...runs.values()].filter((r) => r.state === "PENDING"), (r) => toRun("unfinishedPipelineRuns", r))
    ),

    purgePipelineRuns: (before) =>
      Effect.suspend(() => {
        if (Number.isNaN(before)) {
          return Effect.fail(new StoreError({ operation: "purgePipelineRuns", message: "invalid input: `before` is NaN" }))
        }
        let n = 0
        for (const r of [...runs.values()]) {
          if (r.state !== "PENDING" && r.finishedAt !== undefined && r.finishedAt < before) {
            runs.delete(r.id)
            if (r.key !== undefined && runsByKey.get(r.key) === r.id) runsByKey.delete(r.key)
            n++
          }
        }
        return Effect.succeed(n)
      }),

    getScheduleState: (name) => Effect.sync(() => Option.fromNullable(schedules.get(name))),

    setScheduleState: (name, at) =>
      Effect.suspend(() =>
        Either.map(encodeSchedule({ name, at }), (e) => {
          schedules.set(e.name, e.at)
        })
      ),

    purge: (before) =>
      Effect.sync(() => {
        let n = 0
        for (const j of [...jobs.values()]) {
          if (j.state !== "PENDING" && j.finishedAt !== undefined && j.finishedAt < before) {
            jobs.delete(j.id)
            if (j.key !== undefined && byKey.get(j.key) === j.id) byKey.delete(j.key)
            n++
          }
        }
        return n
      })
  }
  return Store.withBatches(service, {
    recordDispatches: (ds) => Effect.sync(() => ds.map((d) => Either.map(encodeDispatch(d), dispatch))),
    recordStarts: (ss) => Effect.sync(() => ss.map((x) => Either.map(encodeStart(x), start))),
    recordEnds: (es) => Effect.sync(() => es.map((x) => Either.map(encodeEnd(x), end))),
    finishJobs: (fs) =>
      Effect.sync(() => fs.map((f) => Either.map(encodeFinish({ id: f.id, state: f.state, at: f.at, reason: f.reason }), finish)))
  })
})

/** The store as the core `Store` service: a fresh, empty store per layer build. */
export const layer: Layer.Layer<Store.Store> = Layer.effect(Store.Store, make)

/** The plugin: `store: { plugin: memory }`. It takes no options. */
export const storeMemory = (): Store.StorePlugin => ({
  kind: "store",
  name: "memory",
  description: "In-memory job records, lost when the process ends (tests, embedded use)",
  make: (config) =>
    config === undefined || config === null ||
      (typeof config === "object" && !Array.isArray(config) && Object.keys(config).length === 0) ?
      make :
      Effect.fail(new StoreError({ operation: "open", message: "the memory store takes no options" }))
})
