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
 * - a purged job's idempotency key is forgotten with it.
 *
 * @since 0.1.0
 */
import { Errors, Job, JobState, Names, Outcome, Store } from "@orchestra/core"
import { Effect, Layer, Option, ParseResult, Schema } from "effect"

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

const encodeNewJob = Schema.encode(Schema.Struct({
  request: Job.JobRequest,
  targets: Schema.Array(Names.PlayerName),
  targetLabels: Schema.Record({ key: Schema.String, value: Job.Labels }),
  createdAt: Schema.Number
}))
const encodeDispatch = Schema.encode(Schema.Struct({ ref: Names.TaskRef, player: Names.PlayerName, at: Schema.Number }))
const encodeStart = Schema.encode(Schema.Struct({ ref: Names.TaskRef, at: Schema.Number }))
const encodeEnd = Schema.encode(Schema.Struct({
  ref: Names.TaskRef,
  player: Names.PlayerName,
  outcome: Outcome.Outcome,
  response: Job.Response,
  log: Schema.optional(Schema.String),
  startedAt: Schema.optional(Schema.Number),
  finishedAt: Schema.Number
}))
const encodeFinish = Schema.encode(Schema.Struct({
  id: Names.JobId,
  state: JobState.FinishedJobState,
  at: Schema.Number,
  reason: Schema.optional(Schema.String)
}))
const decodeRecord = Schema.decodeUnknown(Job.JobRecord)
const decodeQuery = Schema.decodeUnknown(Store.JobQuery)

const refKey = (key: string, attempt: number) => `${key}\u0000${attempt}`

/** Make an empty in-memory store. */
export const make: Effect.Effect<Store.StoreService> = Effect.sync(() => {
  const jobs = new Map<number, StoredJob>()
  const byKey = new Map<string, number>()
  let lastId = 0
  let lastSeq = 0

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

  const service: Store.StoreService = {
    createJob: (job) =>
      Effect.map(
        Effect.mapError(encodeNewJob({ ...job, targetLabels: job.targetLabels ?? {} }), invalid("createJob")),
        (e): Store.Created => {
          const key = job.request.idempotencyKey
          const known = key === undefined ? undefined : byKey.get(key)
          if (known !== undefined) return { id: Names.jobId(known), existing: true }
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
          return { id: Names.jobId(id), existing: false }
        }
      ),

    recordDispatch: (d) =>
      Effect.map(Effect.mapError(encodeDispatch(d), invalid("recordDispatch")), (e) => {
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
      }),

    recordStart: (ref, at) =>
      Effect.map(Effect.mapError(encodeStart({ ref, at }), invalid("recordStart")), (e) => {
        const a = jobs.get(e.ref.job)?.attempts.get(refKey(e.ref.key, e.ref.attempt))
        if (a !== undefined && a.startedAt === undefined) a.startedAt = e.at
      }),

    recordEnd: (ended) =>
      Effect.map(Effect.mapError(encodeEnd(ended), invalid("recordEnd")), (e) => {
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
      }),

    finishJob: (id, state, at, reason) =>
      Effect.map(Effect.mapError(encodeFinish({ id, state, at, reason }), invalid("finishJob")), (e) => {
        const j = jobs.get(e.id)
        if (j === undefined || j.state !== "PENDING") return
        j.state = e.state
        j.finishedAt = e.at
        j.reason = e.reason
      }),

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
            id: Names.jobId(j.id),
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
  return service
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
