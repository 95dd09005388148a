/**
 * The store conformance suite: every store plugin (memory, SQLite,
 * PostgreSQL, a user's own) runs it unchanged from its own test file:
 *
 * ```ts
 * import { storeSuite } from "@orchestra/core/testing/StoreSuite"
 * storeSuite("sqlite", () => makeFreshStore())
 * ```
 *
 * `make` opens a new, empty store that lives as long as the given scope;
 * it is called once per test. The suite registers a `describe` with tests
 * of every rule of `StoreService`, and of the rules every store shares
 * beyond it:
 *
 * - writes naming an unknown job change nothing (`recordEnd` is `false`);
 * - `recordStart` of an attempt not recorded yet changes nothing;
 * - an attempt first seen through its result is created with the result's
 *   player; a later dispatch sets its player and `dispatchedAt`;
 * - `seq` increases in the order results were recorded (not necessarily
 *   dense);
 * - invalid input fails its own call with a `StoreError` and nothing else;
 * - batch methods, when a store has them, do what the single-write method
 *   does for each item, each item with its own result, and they are
 *   non-enumerable (a wrapper made by spreading the store has none);
 * - pipeline runs: ids never reused, a known key returns its run, the
 *   document and params round-trip exactly, events come back in the order
 *   recorded and are refused (`false`) for an unknown or finished run,
 *   the first finish wins, paging and filters, unfinished runs with their
 *   events, purge; schedule states per name, replaced by each `set`.
 *
 * @since 0.1.0
 */
import { describe, expect, it } from "@effect/vitest"
import type { Errors } from "@orchestra/core"
import { Job, JobState, Names, Store } from "@orchestra/core"
import type { Scope } from "effect"
import { Effect, Either, Option, Schema } from "effect"

export type MakeStore = () => Effect.Effect<Store.StoreService, Errors.StoreError, Scope.Scope>

type JobId = Names.JobId
type PlayerName = Names.PlayerName

const p = Names.playerName
const decodeRequest = Schema.decodeUnknownSync(Job.JobRequest)
const encodeRequest = Schema.encodeSync(Job.JobRequest)

const request = (fields: Record<string, unknown> = {}): Job.JobRequest =>
  decodeRequest({ score: "backup", policy: { name: "one-of" }, ...fields })

const newJob = (
  fields: Record<string, unknown> = {},
  targets: ReadonlyArray<string> = ["p1"],
  createdAt = 1000,
  targetLabels?: Record<string, Record<string, string>>
): Store.NewJob => ({
  request: request(fields),
  targets: targets.map(p),
  createdAt,
  ...(targetLabels === undefined ? {} : { targetLabels })
})

const ref = (job: JobId, key = "0", attempt = 1): Names.TaskRef => ({ job, key: Names.taskKey(key), attempt })

const ended = (
  r: Names.TaskRef,
  player: string,
  outcome: Store.Ended["outcome"],
  response: Job.Response = {},
  extra: { readonly log?: string; readonly startedAt?: number; readonly finishedAt?: number } = {}
): Store.Ended => ({ ref: r, player: p(player), outcome, response, finishedAt: 2000, ...extra })

const get = (store: Store.StoreService, id: JobId) =>
  Effect.flatMap(store.getJob(id), (o) => (Option.isSome(o) ? Effect.succeed(o.value) : Effect.dieMessage(`job ${id} not found`)))

/** Every page of a query, following `next` (bounded). */
const allPages = (store: Store.StoreService, query: Store.JobQuery) =>
  Effect.gen(function*() {
    const pages: Array<Store.JobPage> = []
    let before = query.before
    for (let i = 0; i < 1000; i++) {
      const page = yield* store.listJobs({ ...query, ...(before === undefined ? {} : { before }) })
      pages.push(page)
      if (page.next === undefined) return pages
      before = page.next
    }
    return yield* Effect.dieMessage("more than 1000 pages")
  })

const isIncreasing = (xs: ReadonlyArray<number>) => xs.every((x, i) => i === 0 || xs[i - 1]! < x)

const newRun = (fields: Partial<Store.NewPipelineRun> = {}): Store.NewPipelineRun => ({
  pipeline: "release",
  file: "pipelines/release.yaml",
  document: "name: release\n",
  params: { ref: "main" },
  createdAt: 5000,
  ...fields
})

const getRun = (store: Store.StoreService, id: Store.PipelineRunId) =>
  Effect.flatMap(store.getPipelineRun(id), (o) => (Option.isSome(o) ? Effect.succeed(o.value) : Effect.dieMessage(`run ${id} not found`)))

/** Register the conformance tests of a store made by `make`. */
export const storeSuite = (name: string, make: MakeStore): void => {
  describe(`store conformance: ${name}`, () => {
    // ---- jobs and ids ------------------------------------------------------

    it.scopedLive("creates a job and reads it back as it was given", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const job = newJob({ params: { path: "/var" }, labels: { team: "ops" } }, ["p1", "p2"], 1234, {
          p1: { role: "web" },
          p2: { role: "db" }
        })
        const created = yield* store.createJob(job)
        expect(created.existing).toBe(false)
        expect(created.id).toBeGreaterThan(0)
        const record = yield* get(store, created.id)
        expect(record.id).toBe(created.id)
        expect(encodeRequest(record.request)).toEqual(encodeRequest(job.request))
        expect(record.targets).toEqual(["p1", "p2"])
        expect(record.targetLabels).toEqual({ p1: { role: "web" }, p2: { role: "db" } })
        expect(record.state).toBe("PENDING")
        expect(record.createdAt).toBe(1234)
        expect(record.finishedAt).toBeUndefined()
        expect(record.reason).toBeUndefined()
        expect(record.attempts).toEqual([])
      }))

    it.scopedLive("an unknown id is none", () =>
      Effect.gen(function*() {
        const store = yield* make()
        expect(Option.isNone(yield* store.getJob(Names.jobId(1)))).toBe(true)
        const { id } = yield* store.createJob(newJob())
        expect(Option.isNone(yield* store.getJob(Names.jobId(id + 1)))).toBe(true)
      }))

    it.scopedLive("ids increase strictly, in call order", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const ids: Array<number> = []
        for (let i = 0; i < 10; i++) ids.push((yield* store.createJob(newJob({}, ["p1"], 1000 + i))).id)
        expect(isIncreasing(ids)).toBe(true)
      }))

    it.scopedLive("ids are never reused, not after a purge of every job", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const ids: Array<JobId> = []
        for (let i = 0; i < 5; i++) ids.push((yield* store.createJob(newJob())).id)
        for (const id of ids) yield* store.finishJob(id, "OK", 100)
        expect(yield* store.purge(200)).toBe(5)
        for (const id of ids) expect(Option.isNone(yield* store.getJob(id))).toBe(true)
        const after = yield* store.createJob(newJob())
        expect(after.id).toBeGreaterThan(Math.max(...ids))
        // Again, purging the job with the highest id.
        yield* store.finishJob(after.id, "FAIL", 100)
        expect(yield* store.purge(200)).toBe(1)
        const again = yield* store.createJob(newJob())
        expect(again.id).toBeGreaterThan(after.id)
      }))

    // ---- idempotency ---------------------------------------------------------

    it.scopedLive("an idempotency key already known returns that job", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const first = yield* store.createJob(newJob({ idempotencyKey: "deploy-42", params: { v: 1 } }))
        const second = yield* store.createJob(newJob({ idempotencyKey: "deploy-42", params: { v: 2 } }, ["p9"]))
        expect(first.existing).toBe(false)
        expect(second).toEqual({ id: first.id, existing: true })
        const record = yield* get(store, first.id)
        expect(record.request.params).toEqual({ v: 1 })
        expect(record.targets).toEqual(["p1"])
        const other = yield* store.createJob(newJob({ idempotencyKey: "deploy-43" }))
        expect(other.existing).toBe(false)
        expect(other.id).toBeGreaterThan(first.id)
        // No key: always a new job.
        const a = yield* store.createJob(newJob())
        const b = yield* store.createJob(newJob())
        expect(b.id).toBeGreaterThan(a.id)
        expect([a.existing, b.existing]).toEqual([false, false])
        // The key still holds after the job finished.
        yield* store.finishJob(first.id, "OK", 3000)
        expect(yield* store.createJob(newJob({ idempotencyKey: "deploy-42" }))).toEqual({ id: first.id, existing: true })
      }))

    it.scopedLive("idempotency holds for hundreds of concurrent creates", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const keys = Array.from({ length: 30 }, (_, i) => `key-${i}`)
        const calls = Array.from({ length: 300 }, (_, i) => keys[i % keys.length]!)
        const results = yield* Effect.all(
          calls.map((key) => Effect.map(store.createJob(newJob({ idempotencyKey: key })), (c) => ({ key, ...c }))),
          { concurrency: "unbounded" }
        )
        const idsByKey = new Map<string, Set<number>>()
        const creators = new Map<string, number>()
        for (const r of results) {
          idsByKey.set(r.key, (idsByKey.get(r.key) ?? new Set()).add(r.id))
          if (!r.existing) creators.set(r.key, (creators.get(r.key) ?? 0) + 1)
        }
        for (const key of keys) {
          expect(idsByKey.get(key)?.size).toBe(1)
          expect(creators.get(key)).toBe(1)
        }
        expect(new Set(results.map((r) => r.id)).size).toBe(keys.length)
        const pages = yield* allPages(store, { limit: 1000 })
        expect(pages.flatMap((pg) => pg.jobs).length).toBe(keys.length)
        for (const key of keys) {
          const id = [...idsByKey.get(key)!][0]!
          expect((yield* get(store, Names.jobId(id))).request.idempotencyKey).toBe(key)
        }
      }))

    // ---- concurrency ---------------------------------------------------------

    it.scopedLive("hundreds of concurrent creates get distinct new ids, all readable", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const before = yield* store.createJob(newJob())
        const created = yield* Effect.all(
          Array.from({ length: 500 }, (_, i) => store.createJob(newJob({ params: { i } }, [`p${i % 7}`], 5000 + i))),
          { concurrency: "unbounded" }
        )
        const ids = created.map((c) => c.id)
        expect(new Set(ids).size).toBe(500)
        expect(created.every((c) => !c.existing)).toBe(true)
        expect(Math.min(...ids)).toBeGreaterThan(before.id)
        const records = yield* Effect.all(ids.map((id) => get(store, id)), { concurrency: 20 })
        records.forEach((r, i) => {
          expect(r.request.params).toEqual({ i })
          expect(r.targets).toEqual([`p${i % 7}`])
          expect(r.createdAt).toBe(5000 + i)
        })
      }))

    it.scopedLive("hundreds of concurrent dispatches and results, with duplicates, all correct", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const jobs = yield* Effect.all(
          Array.from({ length: 200 }, (_, i) => store.createJob(newJob({}, ["a", "b", "c"], i))),
          { concurrency: "unbounded" }
        )
        const tasks = jobs.flatMap(({ id }) => ["a", "b", "c"].map((player) => ({ r: ref(id, player), player })))
        yield* Effect.all(
          tasks.map((t) => store.recordDispatch({ ref: t.r, player: p(t.player), at: 10 })),
          { concurrency: "unbounded", discard: true }
        )
        // Every result twice, concurrently, with different outcomes: the first recorded wins.
        const results = yield* Effect.all(
          [...tasks, ...tasks].map((t, i) =>
            Effect.map(
              store.recordEnd(ended(t.r, t.player, i < tasks.length ? "OK" : "FAIL", { n: i })),
              (won) => ({ t, won, i })
            )
          ),
          { concurrency: "unbounded" }
        )
        expect(results.filter((r) => r.won).length).toBe(tasks.length)
        const winner = new Map<string, number>()
        for (const r of results) {
          if (r.won) {
            const key = `${r.t.r.job}/${r.t.player}`
            expect(winner.has(key)).toBe(false)
            winner.set(key, r.i)
          }
        }
        for (const { id } of jobs) {
          const record = yield* get(store, id)
          expect(record.attempts.map((a) => a.key).sort()).toEqual(["a", "b", "c"])
          for (const a of record.attempts) {
            const i = winner.get(`${id}/${a.player}`)!
            expect(a.response).toEqual({ n: i })
            expect(a.outcome).toBe(i < tasks.length ? "OK" : "FAIL")
            expect(a.dispatchedAt).toBe(10)
          }
          expect(new Set(record.attempts.map((a) => a.seq)).size).toBe(3)
        }
      }))

    it.scopedLive("hundreds of concurrent job lifecycles end consistent", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const lifecycle = (i: number) =>
          Effect.gen(function*() {
            const { id } = yield* store.createJob(newJob({ params: { i } }, [`p${i}`], i))
            const r = ref(id)
            yield* store.recordDispatch({ ref: r, player: p(`p${i}`), at: i + 1 })
            yield* store.recordStart(r, i + 2)
            const outcome = i % 3 === 0 ? "FAIL" : "OK"
            expect(yield* store.recordEnd(ended(r, `p${i}`, outcome, { i: String(i) }, { finishedAt: i + 3 }))).toBe(true)
            yield* store.finishJob(id, outcome === "OK" ? "OK" : "FAIL", i + 4)
            return { id, i, outcome }
          })
        const done = yield* Effect.all(Array.from({ length: 300 }, (_, i) => lifecycle(i)), { concurrency: "unbounded" })
        expect(new Set(done.map((d) => d.id)).size).toBe(300)
        for (const d of done) {
          const record = yield* get(store, d.id)
          expect(record.state).toBe(d.outcome)
          expect(record.finishedAt).toBe(d.i + 4)
          expect(record.attempts.length).toBe(1)
          const a = record.attempts[0]!
          expect([a.dispatchedAt, a.startedAt, a.finishedAt]).toEqual([d.i + 1, d.i + 2, d.i + 3])
          expect(a.outcome).toBe(d.outcome)
          expect(a.response).toEqual({ i: String(d.i) })
        }
        expect(yield* store.unfinishedJobs).toEqual([])
      }))

    // ---- attempts --------------------------------------------------------------

    it.scopedLive("records dispatch, start and end of an attempt", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const { id } = yield* store.createJob(newJob())
        const r = ref(id)
        yield* store.recordDispatch({ ref: r, player: p("p1"), at: 1100 })
        let record = yield* get(store, id)
        expect(record.attempts.length).toBe(1)
        expect(record.attempts[0]!.outcome).toBeUndefined()
        expect(record.attempts[0]!.startedAt).toBeUndefined()
        yield* store.recordStart(r, 1200)
        expect(
          yield* store.recordEnd(ended(r, "p1", "OK", { used: "42%" }, { log: "all good\n", startedAt: 1190, finishedAt: 1300 }))
        ).toBe(true)
        record = yield* get(store, id)
        const a = record.attempts[0]!
        expect(a.key).toBe("0")
        expect(a.attempt).toBe(1)
        expect(a.player).toBe("p1")
        expect(a.dispatchedAt).toBe(1100)
        expect(a.startedAt).toBe(1200)
        expect(a.finishedAt).toBe(1300)
        expect(a.outcome).toBe("OK")
        expect(a.response).toEqual({ used: "42%" })
        expect(a.log).toBe("all good\n")
        expect(typeof a.seq).toBe("number")
        expect(record.state).toBe("PENDING")
        const results = Job.playerResults(record)
        expect(results.get(p("p1"))).toMatchObject({ outcome: "OK", response: { used: "42%" }, attempt: 1, key: "0" })
      }))

    it.scopedLive("a dispatch recorded twice is one record, the first", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const { id } = yield* store.createJob(newJob({}, ["p1", "p2"]))
        yield* store.recordDispatch({ ref: ref(id), player: p("p1"), at: 10 })
        yield* store.recordDispatch({ ref: ref(id), player: p("p2"), at: 20 })
        yield* Effect.all(
          Array.from({ length: 20 }, () => store.recordDispatch({ ref: ref(id), player: p("p2"), at: 30 })),
          { concurrency: "unbounded" }
        )
        const record = yield* get(store, id)
        expect(record.attempts.length).toBe(1)
        expect(record.attempts[0]!.player).toBe("p1")
        expect(record.attempts[0]!.dispatchedAt).toBe(10)
      }))

    it.scopedLive("attempts come in dispatch order", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const { id } = yield* store.createJob(newJob({}, ["p1", "p2", "p3"]))
        const order: Array<[string, number, string]> = [["b", 1, "p1"], ["a", 1, "p2"], ["a", 2, "p3"], ["c", 1, "p1"], ["b", 2, "p2"]]
        for (const [key, attempt, player] of order) {
          yield* store.recordDispatch({ ref: ref(id, key, attempt), player: p(player), at: 100 })
        }
        // Results in another order do not reorder attempts.
        yield* store.recordEnd(ended(ref(id, "c", 1), "p1", "OK"))
        yield* store.recordEnd(ended(ref(id, "a", 1), "p2", "HOST_ERROR"))
        const record = yield* get(store, id)
        expect(record.attempts.map((a) => [a.key, a.attempt, a.player])).toEqual(order)
      }))

    it.scopedLive("the first result of an attempt wins; a second is refused and changes nothing", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const { id } = yield* store.createJob(newJob())
        const r = ref(id)
        yield* store.recordDispatch({ ref: r, player: p("p1"), at: 1 })
        expect(yield* store.recordEnd(ended(r, "p1", "OK", { a: "1" }, { log: "first", finishedAt: 5 }))).toBe(true)
        const before = yield* get(store, id)
        expect(yield* store.recordEnd(ended(r, "p1", "FAIL", { a: "2" }, { log: "second", finishedAt: 6, startedAt: 2 })))
          .toBe(false)
        const after = yield* get(store, id)
        expect(after.attempts).toEqual(before.attempts)
        expect(after.attempts[0]!.outcome).toBe("OK")
        expect(after.attempts[0]!.response).toEqual({ a: "1" })
        expect(after.attempts[0]!.log).toBe("first")
        expect(after.attempts[0]!.finishedAt).toBe(5)
      }))

    it.scopedLive("concurrent results of one attempt: exactly one wins, and it is the one stored", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const { id } = yield* store.createJob(newJob())
        const r = ref(id)
        yield* store.recordDispatch({ ref: r, player: p("p1"), at: 1 })
        const outcomes = ["OK", "FAIL", "TIMEOUT", "UNKNOWN_FAILURE"] as const
        const won = yield* Effect.all(
          Array.from({ length: 40 }, (_, i) =>
            Effect.map(store.recordEnd(ended(r, "p1", outcomes[i % 4]!, { i })), (w) => ({ w, i }))),
          { concurrency: "unbounded" }
        )
        const winners = won.filter((x) => x.w)
        expect(winners.length).toBe(1)
        const a = (yield* get(store, id)).attempts[0]!
        expect(a.response).toEqual({ i: winners[0]!.i })
        expect(a.outcome).toBe(outcomes[winners[0]!.i % 4])
      }))

    it.scopedLive("seq follows the order results were recorded, which playerResults uses", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const { id } = yield* store.createJob(newJob({}, ["p1", "p2"]))
        yield* store.recordDispatch({ ref: ref(id, "0", 1), player: p("p1"), at: 1 })
        yield* store.recordDispatch({ ref: ref(id, "0", 2), player: p("p1"), at: 2 })
        yield* store.recordDispatch({ ref: ref(id, "1", 1), player: p("p2"), at: 3 })
        // Recorded in the reverse of dispatch order.
        yield* store.recordEnd(ended(ref(id, "1", 1), "p2", "OK", { x: "p2" }))
        yield* store.recordEnd(ended(ref(id, "0", 2), "p1", "OK", { x: "second attempt" }))
        yield* store.recordEnd(ended(ref(id, "0", 1), "p1", "FAIL", { x: "first attempt, late" }))
        const record = yield* get(store, id)
        const seq = (key: string, attempt: number) =>
          record.attempts.find((a) => a.key === key && a.attempt === attempt)!.seq!
        expect(isIncreasing([seq("1", 1), seq("0", 2), seq("0", 1)])).toBe(true)
        // The latest recorded result of p1 is the late first attempt.
        expect(Job.playerResults(record).get(p("p1"))?.response).toEqual({ x: "first attempt, late" })
        expect(Job.playerResults(record).get(p("p2"))?.outcome).toBe("OK")
        // Results of another job recorded in between do not break the order.
        const other = yield* store.createJob(newJob())
        yield* store.recordEnd(ended(ref(other.id), "p1", "OK"))
        yield* store.recordDispatch({ ref: ref(id, "0", 3), player: p("p1"), at: 4 })
        yield* store.recordEnd(ended(ref(id, "0", 3), "p1", "OK", { x: "third" }))
        const again = yield* get(store, id)
        const seqs = again.attempts.map((a) => a.seq!)
        expect(Math.max(...seqs)).toBe(again.attempts.find((a) => a.attempt === 3)!.seq)
        expect(Job.playerResults(again).get(p("p1"))?.response).toEqual({ x: "third" })
      }))

    it.scopedLive("a result for an attempt never dispatched is recorded, and a late dispatch joins it", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const { id } = yield* store.createJob(newJob({}, ["p1", "p2"]))
        expect(yield* store.recordEnd(ended(ref(id, "k", 1), "p2", "OK", { ok: true }, { startedAt: 1500, finishedAt: 1600 })))
          .toBe(true)
        let record = yield* get(store, id)
        expect(record.attempts.length).toBe(1)
        const a = record.attempts[0]!
        expect([a.key, a.attempt, a.player, a.outcome]).toEqual(["k", 1, "p2", "OK"])
        expect(a.startedAt).toBe(1500)
        expect(a.finishedAt).toBe(1600)
        expect(typeof a.dispatchedAt).toBe("number")
        expect(yield* store.recordEnd(ended(ref(id, "k", 1), "p2", "FAIL"))).toBe(false)
        yield* store.recordDispatch({ ref: ref(id, "k", 1), player: p("p2"), at: 1400 })
        record = yield* get(store, id)
        expect(record.attempts.length).toBe(1)
        expect(record.attempts[0]!.dispatchedAt).toBe(1400)
        expect(record.attempts[0]!.outcome).toBe("OK")
        expect(record.attempts[0]!.response).toEqual({ ok: true })
      }))

    it.scopedLive("startedAt comes from the recorded start, else from the result", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const { id } = yield* store.createJob(newJob())
        yield* store.recordDispatch({ ref: ref(id, "a"), player: p("p1"), at: 1 })
        yield* store.recordEnd(ended(ref(id, "a"), "p1", "OK", {}, { startedAt: 7 }))
        yield* store.recordDispatch({ ref: ref(id, "b"), player: p("p1"), at: 1 })
        yield* store.recordStart(ref(id, "b"), 5)
        yield* store.recordStart(ref(id, "b"), 6)
        yield* store.recordEnd(ended(ref(id, "b"), "p1", "OK", {}, { startedAt: 8 }))
        yield* store.recordDispatch({ ref: ref(id, "c"), player: p("p1"), at: 1 })
        yield* store.recordEnd(ended(ref(id, "c"), "p1", "OK"))
        const [a, b, c] = (yield* get(store, id)).attempts
        expect(a!.startedAt).toBe(7)
        expect(b!.startedAt).toBe(5)
        expect(c!.startedAt).toBeUndefined()
      }))

    it.scopedLive("a start of an attempt not recorded changes nothing", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const { id } = yield* store.createJob(newJob())
        yield* store.recordStart(ref(id, "x", 1), 5)
        expect((yield* get(store, id)).attempts).toEqual([])
      }))

    it.scopedLive("writes about an unknown job change nothing", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const { id } = yield* store.createJob(newJob())
        const ghost = Names.jobId(id + 1000)
        yield* store.recordDispatch({ ref: ref(ghost), player: p("p1"), at: 1 })
        yield* store.recordStart(ref(ghost), 2)
        expect(yield* store.recordEnd(ended(ref(ghost), "p1", "OK"))).toBe(false)
        yield* store.finishJob(ghost, "OK", 3)
        expect(Option.isNone(yield* store.getJob(ghost))).toBe(true)
        const next = yield* store.createJob(newJob())
        expect((yield* get(store, next.id)).attempts).toEqual([])
        expect((yield* store.listJobs({})).jobs.map((j) => j.id)).toEqual([next.id, id])
      }))

    // ---- finishing -------------------------------------------------------------

    it.scopedLive("finishing a job is recorded once; finishing it again changes nothing", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const { id } = yield* store.createJob(newJob())
        yield* store.finishJob(id, "PARTIAL_FAIL", 3000, "1 of 2 players failed")
        yield* store.finishJob(id, "OK", 4000)
        yield* store.finishJob(id, "CANCELLED", 5000, "cancelled")
        const record = yield* get(store, id)
        expect(record.state).toBe("PARTIAL_FAIL")
        expect(record.finishedAt).toBe(3000)
        expect(record.reason).toBe("1 of 2 players failed")
        const plain = yield* store.createJob(newJob())
        yield* store.finishJob(plain.id, "OK", 3000)
        expect((yield* get(store, plain.id)).reason).toBeUndefined()
        const raced = yield* store.createJob(newJob())
        const states: ReadonlyArray<JobState.FinishedJobState> = ["OK", "FAIL", "CANCELLED", "PARTIAL_FAIL"]
        yield* Effect.all(states.map((s, i) => store.finishJob(raced.id, s, 100 + i, s)), { concurrency: "unbounded" })
        const r = yield* get(store, raced.id)
        expect(r.reason).toBe(r.state)
        expect(r.finishedAt).toBe(100 + states.indexOf(r.state as JobState.FinishedJobState))
      }))

    it.scopedLive("results that arrive after a job finished are still recorded", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const { id } = yield* store.createJob(newJob({}, ["p1", "p2"]))
        yield* store.recordDispatch({ ref: ref(id, "p1"), player: p("p1"), at: 1 })
        yield* store.recordDispatch({ ref: ref(id, "p2"), player: p("p2"), at: 1 })
        yield* store.recordEnd(ended(ref(id, "p1"), "p1", "OK"))
        yield* store.finishJob(id, "CANCELLED", 10, "deadline")
        expect(yield* store.recordEnd(ended(ref(id, "p2"), "p2", "CANCELLED"))).toBe(true)
        const record = yield* get(store, id)
        expect(record.state).toBe("CANCELLED")
        expect(record.attempts.map((a) => a.outcome)).toEqual(["OK", "CANCELLED"])
      }))

    // ---- queries ---------------------------------------------------------------

    it.scopedLive("listJobs: newest first, in pages that follow next", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const ids: Array<number> = []
        for (let i = 0; i < 25; i++) ids.push((yield* store.createJob(newJob({ policy: { name: `pol${i % 2}` } }, ["p1"], i))).id)
        const pages = yield* allPages(store, { limit: 10 })
        expect(pages.map((pg) => pg.jobs.length)).toEqual([10, 10, 5])
        expect(pages[2]!.next).toBeUndefined()
        expect(pages[0]!.next).toBe(pages[0]!.jobs[9]!.id)
        const listed = pages.flatMap((pg) => pg.jobs)
        expect(listed.map((j) => j.id)).toEqual([...ids].reverse())
        const newest = listed[0]!
        expect(newest).toEqual({ id: ids[24], score: "backup", policy: "pol0", state: "PENDING", targets: ["p1"], createdAt: 24 })
        // A page that ends exactly at the last job has no next.
        const exact = yield* store.listJobs({ limit: 25 })
        expect(exact.jobs.length).toBe(25)
        expect(exact.next).toBeUndefined()
        yield* store.finishJob(Names.jobId(ids[24]!), "OK", 99)
        expect((yield* store.listJobs({ limit: 1 })).jobs[0]!.finishedAt).toBe(99)
      }))

    it.scopedLive("listJobs: the default page is 50 jobs", () =>
      Effect.gen(function*() {
        const store = yield* make()
        yield* Effect.all(Array.from({ length: 55 }, (_, i) => store.createJob(newJob({}, ["p1"], i))), {
          concurrency: "unbounded"
        })
        const page = yield* store.listJobs({})
        expect(page.jobs.length).toBe(50)
        expect(page.next).toBeDefined()
        expect((yield* store.listJobs({ before: page.next! })).jobs.length).toBe(5)
      }))

    it.scopedLive("listJobs: filters by state, score, player and time, alone and together, across pages", () =>
      Effect.gen(function*() {
        const store = yield* make()
        type Made = { id: number; score: string; players: Array<string>; createdAt: number; state: JobState.JobState }
        const made: Array<Made> = []
        for (let i = 0; i < 90; i++) {
          const score = `score${i % 3}`
          const players = [`p${i % 4}`, ...(i % 5 === 0 ? ["everyone"] : [])]
          const { id } = yield* store.createJob(newJob({ score }, players, 10_000 + i * 10))
          const state: JobState.JobState = i % 4 === 0 ? "OK" : i % 4 === 1 ? "FAIL" : i % 7 === 0 ? "CANCELLED" : "PENDING"
          if (state !== "PENDING") yield* store.finishJob(id, state, 20_000 + i)
          made.push({ id, score, players, createdAt: 10_000 + i * 10, state })
        }
        const queries: ReadonlyArray<Store.JobQuery> = [
          { state: "PENDING" },
          { state: "OK" },
          { score: "score1" },
          { player: "p2" },
          { player: "everyone" },
          { since: 10_200 },
          { until: 10_300 },
          { since: 10_200, until: 10_600 },
          { state: "FAIL", score: "score2" },
          { state: "PENDING", player: "p3", since: 10_100 },
          { score: "score0", player: "everyone", until: 10_800 },
          { player: "nobody" },
          { state: "CANCELLED", score: "score0" }
        ]
        for (const q of queries) {
          const expected = made
            .filter((m) =>
              (q.state === undefined || m.state === q.state) &&
              (q.score === undefined || m.score === q.score) &&
              (q.player === undefined || m.players.includes(q.player)) &&
              (q.since === undefined || m.createdAt >= q.since) &&
              (q.until === undefined || m.createdAt < q.until)
            )
            .map((m) => m.id)
            .reverse()
          const pages = yield* allPages(store, { ...q, limit: 7 })
          const got = pages.flatMap((pg) => pg.jobs)
          expect({ q, ids: got.map((j) => j.id) }).toEqual({ q, ids: expected })
          expect(pages.length).toBe(Math.max(1, Math.ceil(expected.length / 7)))
          for (const j of got) {
            const m = made.find((x) => x.id === j.id)!
            expect(j.state).toBe(m.state)
            expect(j.score).toBe(m.score)
            expect(j.targets).toEqual(m.players)
          }
        }
        // `before` on its own.
        const mid = made[45]!.id
        const below = yield* allPages(store, { before: mid, limit: 1000 })
        expect(below.flatMap((pg) => pg.jobs).map((j) => j.id)).toEqual(made.filter((m) => m.id < mid).map((m) => m.id).reverse())
      }))

    it.scopedLive("listJobs refuses an invalid query", () =>
      Effect.gen(function*() {
        const store = yield* make()
        for (const bad of [{ limit: 0 }, { limit: 1001 }, { state: "DONE" }, { limit: 1.5 }] as ReadonlyArray<Store.JobQuery>) {
          const result = yield* Effect.either(store.listJobs(bad))
          expect(Either.isLeft(result)).toBe(true)
          if (Either.isLeft(result)) {
            expect(result.left._tag).toBe("StoreError")
            expect(result.left.operation).toBe("listJobs")
          }
        }
      }))

    it.scopedLive("unfinishedJobs: every pending job, oldest first, with its attempts", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const ids: Array<JobId> = []
        for (let i = 0; i < 8; i++) ids.push((yield* store.createJob(newJob({ params: { i } }, ["p1", "p2"], i))).id)
        for (const [n, id] of ids.entries()) {
          yield* store.recordDispatch({ ref: ref(id, "p1"), player: p("p1"), at: n })
          if (n % 2 === 0) yield* store.recordDispatch({ ref: ref(id, "p2"), player: p("p2"), at: n })
          if (n % 3 === 0) yield* store.recordEnd(ended(ref(id, "p1"), "p1", "OK", { n }))
        }
        yield* store.finishJob(ids[1]!, "OK", 50)
        yield* store.finishJob(ids[6]!, "CANCELLED", 50)
        const unfinished = yield* store.unfinishedJobs
        const expected = ids.filter((_, n) => n !== 1 && n !== 6)
        expect(unfinished.map((j) => j.id)).toEqual(expected)
        for (const j of unfinished) {
          const n = ids.indexOf(j.id)
          expect(j.state).toBe("PENDING")
          expect(j.request.params).toEqual({ i: n })
          expect(j.attempts.map((a) => a.key)).toEqual(n % 2 === 0 ? ["p1", "p2"] : ["p1"])
          expect(j.attempts[0]!.outcome).toBe(n % 3 === 0 ? "OK" : undefined)
          expect(j).toEqual(yield* get(store, j.id))
        }
      }))

    // ---- retention -------------------------------------------------------------

    it.scopedLive("purge deletes finished jobs that finished before the time, and nothing else", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const mk = (key?: string) => Effect.map(store.createJob(newJob(key === undefined ? {} : { idempotencyKey: key }, ["p1"], 1)), (c) => c.id)
        const pending = yield* mk()
        const at100 = yield* mk("purged-key")
        const at200 = yield* mk()
        const at300 = yield* mk()
        yield* store.recordDispatch({ ref: ref(at100), player: p("p1"), at: 50 })
        yield* store.recordEnd(ended(ref(at100), "p1", "OK"))
        yield* store.recordDispatch({ ref: ref(pending), player: p("p1"), at: 50 })
        yield* store.finishJob(at100, "OK", 100)
        yield* store.finishJob(at200, "FAIL", 200)
        yield* store.finishJob(at300, "CANCELLED", 300)
        expect(yield* store.purge(100)).toBe(0)
        expect(yield* store.purge(200)).toBe(1)
        expect(Option.isNone(yield* store.getJob(at100))).toBe(true)
        expect(Option.isSome(yield* store.getJob(at200))).toBe(true)
        expect(yield* store.purge(200)).toBe(0)
        expect(yield* store.purge(1_000_000)).toBe(2)
        const left = yield* store.listJobs({})
        expect(left.jobs.map((j) => j.id)).toEqual([pending])
        expect((yield* store.unfinishedJobs).map((j) => j.id)).toEqual([pending])
        expect((yield* get(store, pending)).attempts.length).toBe(1)
        // The purged job's attempts and key went with it; its id stays used.
        expect((yield* store.listJobs({ player: "p1" })).jobs.map((j) => j.id)).toEqual([pending])
        const reborn = yield* store.createJob(newJob({ idempotencyKey: "purged-key" }))
        expect(reborn.existing).toBe(false)
        expect(reborn.id).toBeGreaterThan(at300)
        expect((yield* get(store, reborn.id)).attempts).toEqual([])
      }))

    // ---- data ------------------------------------------------------------------

    it.scopedLive("params, labels and responses round-trip exactly: unicode, nesting, numbers", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const strings = [
          "",
          "plain",
          "héllo wörld",
          "日本語のテキスト",
          "עברית ومرحبا",
          "emoji 😀🎻🎼 👩‍👩‍👧‍👦 🇫🇷",
          "e\u0301 combining, zero\u200bwidth, bom\ufeff",
          "quotes \" ' ` and \\ backslash",
          "newline\nand\ttab\r\n",
          "'; DROP TABLE orchestra_jobs; --",
          "{\"looks\":\"like json\"}",
          "\u007f\u0001 controls",
          "𝄞 astral plane"
        ]
        const nested = (depth: number): Job.Response =>
          depth === 0 ? { leaf: strings } : { [`level${depth}`]: nested(depth - 1), list: [depth, [depth, { d: depth }]] }
        const params = {
          strings,
          numbers: [0, -1, 1.5, -2.25, 1e-7, 6.02e23, 1e300, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER],
          flags: [true, false, null],
          empty: { obj: {}, arr: [] },
          "key with spaces": 1,
          "ключ": "значение",
          "dotted.key": { "quoted\"key": "v" },
          "": "empty key",
          deep: nested(12)
        }
        const req = {
          params,
          players: ["p1", "p2"],
          selector: { "role": "web", "k8s.io/zone": "eu-1" },
          labels: { "owner": "ops 😀", "ticket": "OPS-1" },
          deadline: 1_900_000_000_000,
          retry: { max: 3, backoffMs: 250 },
          policy: { name: "rolling", options: { batch: "10%", nested: { maxFailures: 2 } } },
          idempotencyKey: "ключ-😀"
        }
        const job = newJob(req, ["p1", "p2"], 1700000000123, { p1: { role: "web 😀", "topology.k8s.io/zone": "ü-1" }, p2: {} })
        const { id } = yield* store.createJob(job)
        const response = { ...params, out: strings.join("|") }
        yield* store.recordDispatch({ ref: ref(id), player: p("p1"), at: 1 })
        yield* store.recordEnd(ended(ref(id), "p1", "OK", response, { log: strings.join("\n") }))
        const record = yield* get(store, id)
        expect(encodeRequest(record.request)).toEqual(encodeRequest(job.request))
        expect(record.request.params).toEqual(params)
        expect(record.targetLabels).toEqual({ p1: { role: "web 😀", "topology.k8s.io/zone": "ü-1" }, p2: {} })
        expect(record.createdAt).toBe(1700000000123)
        expect(record.attempts[0]!.response).toEqual(response)
        expect(record.attempts[0]!.log).toBe(strings.join("\n"))
        // The same through the other readers.
        expect((yield* store.unfinishedJobs)[0]!.request.params).toEqual(params)
        expect((yield* store.createJob(newJob({ idempotencyKey: "ключ-😀" }))).id).toBe(id)
      }))

    it.scopedLive("big logs, responses and params round-trip", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const line = "stderr line with ünïcødé and 😀 — "
        const log = Array.from({ length: 40_000 }, (_, i) => `${i}: ${line}`).join("\n")
        expect(log.length).toBeGreaterThan(1_500_000)
        const response: Record<string, string> = {}
        for (let i = 0; i < 5000; i++) response[`key_${i}`] = `value ${i} ${line}`
        const big = "x".repeat(200_000) + "😀"
        const { id } = yield* store.createJob(newJob({ params: { big, list: Array.from({ length: 10_000 }, (_, i) => i) } }))
        yield* store.recordDispatch({ ref: ref(id), player: p("p1"), at: 1 })
        // A few big results in the same batch as small ones.
        const others = yield* Effect.all(Array.from({ length: 20 }, () => store.createJob(newJob())), { concurrency: "unbounded" })
        const ends = yield* Effect.all(
          [
            store.recordEnd(ended(ref(id), "p1", "FAIL", response, { log })),
            ...others.map((o) => store.recordEnd(ended(ref(o.id), "p1", "OK", { small: "yes" }, { log: "tiny" })))
          ],
          { concurrency: "unbounded" }
        )
        expect(ends.every((x) => x)).toBe(true)
        const a = (yield* get(store, id)).attempts[0]!
        expect(a.log).toBe(log)
        expect(a.response).toEqual(response)
        expect((yield* get(store, id)).request.params).toEqual({ big, list: Array.from({ length: 10_000 }, (_, i) => i) })
        for (const o of others) expect((yield* get(store, o.id)).attempts[0]!.log).toBe("tiny")
      }))

    // ---- errors ----------------------------------------------------------------

    it.scopedLive("invalid input fails its own call with a StoreError, and only that call", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const bad: Store.NewJob = { ...newJob(), targets: ["not a player/name" as PlayerName] }
        const results = yield* Effect.all(
          [
            Effect.either(store.createJob(newJob())),
            Effect.either(store.createJob(bad)),
            Effect.either(store.createJob(newJob()))
          ],
          { concurrency: "unbounded" }
        )
        expect(results.map(Either.isRight)).toEqual([true, false, true])
        const failure = results[1]!
        if (Either.isLeft(failure)) {
          expect(failure.left._tag).toBe("StoreError")
          expect(failure.left.operation).toBe("createJob")
        }
        const { id } = yield* store.createJob(newJob())
        const badEnd = yield* Effect.either(
          store.recordEnd({ ...ended(ref(id), "p1", "OK"), outcome: "MAYBE" as Store.Ended["outcome"] })
        )
        expect(Either.isLeft(badEnd) && badEnd.left.operation).toBe("recordEnd")
        const badFinish = yield* Effect.either(store.finishJob(id, "PENDING" as JobState.FinishedJobState, 1))
        expect(Either.isLeft(badFinish) && badFinish.left.operation).toBe("finishJob")
        expect((yield* get(store, id)).state).toBe("PENDING")
        expect((yield* get(store, id)).attempts).toEqual([])
        expect((yield* store.listJobs({ limit: 1000 })).jobs.length).toBe(3)
      }))
    // ---- batches (optional) ------------------------------------------------------

    it.scopedLive("batch methods, if any, are non-enumerable: a spread wrapper has none and falls back to single writes", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const names = ["recordDispatches", "recordStarts", "recordEnds", "finishJobs"] as const
        const present = names.filter((n) => store[n] !== undefined)
        // all or none
        expect(present.length === 0 || present.length === names.length).toBe(true)
        for (const n of names) expect(Object.keys(store)).not.toContain(n)
        const wrapped: Store.StoreService = { ...store }
        for (const n of names) expect(wrapped[n]).toBeUndefined()
      }))

    it.scopedLive("batches record what the single writes record, each item with its own result", () =>
      Effect.gen(function*() {
        const store = yield* make()
        if (store.recordEnds === undefined || store.recordDispatches === undefined || store.recordStarts === undefined ||
          store.finishJobs === undefined) return
        const jobs = yield* Effect.all(Array.from({ length: 120 }, (_, i) => store.createJob(newJob({}, ["a", "b"], i))), {
          concurrency: "unbounded"
        })
        const ghost = (Math.max(...jobs.map((j) => j.id)) + 1000) as JobId
        // dispatches: every job's task on "a", one duplicate (first wins), one unknown job, one invalid
        const dispatched = yield* store.recordDispatches([
          ...jobs.map(({ id }) => ({ ref: ref(id), player: p("a"), at: 10 })),
          { ref: ref(jobs[0]!.id), player: p("b"), at: 99 },
          { ref: ref(ghost), player: p("a"), at: 10 },
          { ref: ref(jobs[1]!.id), player: "no/such player" as PlayerName, at: 10 }
        ])
        expect(dispatched.length).toBe(jobs.length + 3)
        expect(dispatched.slice(0, jobs.length + 2).every(Either.isRight)).toBe(true)
        const badDispatch = dispatched[jobs.length + 2]!
        expect(Either.isLeft(badDispatch) && badDispatch.left.operation).toBe("recordDispatch")
        const started = yield* store.recordStarts([
          ...jobs.map(({ id }) => ({ ref: ref(id), at: 20 })),
          { ref: ref(jobs[2]!.id, "0", 7), at: 20 }
        ])
        expect(started.every(Either.isRight)).toBe(true)
        // ends: each result twice in one batch (the first wins), an unknown job, an invalid outcome
        const ends = yield* store.recordEnds([
          ...jobs.map(({ id }, i) => ended(ref(id), "a", i % 2 === 0 ? "OK" : "FAIL", { i }, { finishedAt: 30 })),
          ...jobs.map(({ id }) => ended(ref(id), "a", "TIMEOUT", { late: true })),
          ended(ref(ghost), "a", "OK"),
          { ...ended(ref(jobs[3]!.id), "a", "OK"), outcome: "MAYBE" as Store.Ended["outcome"] }
        ])
        expect(ends.length).toBe(2 * jobs.length + 2)
        expect(ends.slice(0, jobs.length).map((e) => Either.isRight(e) && e.right)).toEqual(jobs.map(() => true))
        expect(ends.slice(jobs.length, 2 * jobs.length).map((e) => Either.isRight(e) && e.right)).toEqual(jobs.map(() => false))
        expect(ends[2 * jobs.length]).toEqual(Either.right(false))
        const badEnd = ends[2 * jobs.length + 1]!
        expect(Either.isLeft(badEnd) && badEnd.left.operation).toBe("recordEnd")
        // a later single-write of the same attempt loses too
        expect(yield* store.recordEnd(ended(ref(jobs[0]!.id), "a", "FAIL"))).toBe(false)
        const finished = yield* store.finishJobs([
          ...jobs.map(({ id }, i) => ({ id, state: (i % 2 === 0 ? "OK" : "FAIL") as JobState.FinishedJobState, at: 40 })),
          { id: jobs[0]!.id, state: "FAIL" as const, at: 41, reason: "too late" },
          { id: jobs[1]!.id, state: "PENDING" as JobState.FinishedJobState, at: 41 }
        ])
        expect(finished.slice(0, jobs.length + 1).every(Either.isRight)).toBe(true)
        const badFinish = finished[jobs.length + 1]!
        expect(Either.isLeft(badFinish) && badFinish.left.operation).toBe("finishJob")
        let lastSeq = -1
        for (const [i, { id }] of jobs.entries()) {
          const record = yield* get(store, id)
          expect(record.state).toBe(i % 2 === 0 ? "OK" : "FAIL")
          expect(record.finishedAt).toBe(40)
          expect(record.reason).toBeUndefined()
          expect(record.attempts.length).toBe(1)
          const a = record.attempts[0]!
          expect([a.player, a.dispatchedAt, a.startedAt, a.finishedAt]).toEqual(["a", 10, 20, 30])
          expect(a.outcome).toBe(i % 2 === 0 ? "OK" : "FAIL")
          expect(a.response).toEqual({ i })
          // seq follows the order of the batch
          expect(a.seq!).toBeGreaterThan(lastSeq)
          lastSeq = a.seq!
        }
        expect(yield* store.getJob(ghost)).toEqual(Option.none())
        expect(yield* store.unfinishedJobs).toEqual([])
      }))

    // ---- pipeline runs -----------------------------------------------------------

    it.scopedLive("pipeline runs: created with new ids, read back exactly as given", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const document = "name: release\njobs:\n  build: { score: build, players: [a], policy: one-of }\n# é ✓ ${{ x }}\n"
        const first = yield* store.createPipelineRun(newRun({ document, params: { ref: "main", n: 1.5, deep: { list: [1, "x", null] } } }))
        const second = yield* store.createPipelineRun(newRun({ pipeline: "other", createdAt: 6000 }))
        expect([first.existing, second.existing]).toEqual([false, false])
        expect(first.id).toBeGreaterThan(0)
        expect(second.id).toBeGreaterThan(first.id)
        const run = yield* getRun(store, first.id)
        expect(run.id).toBe(first.id)
        expect(run.key).toBeUndefined()
        expect(run.pipeline).toBe("release")
        expect(run.file).toBe("pipelines/release.yaml")
        expect(run.document).toBe(document)
        expect(run.params).toEqual({ ref: "main", n: 1.5, deep: { list: [1, "x", null] } })
        expect(run.state).toBe("PENDING")
        expect(run.createdAt).toBe(5000)
        expect(run.finishedAt).toBeUndefined()
        expect(run.reason).toBeUndefined()
        expect(run.events).toEqual([])
        expect(Option.isNone(yield* store.getPipelineRun(Store.pipelineRunId(second.id + 1)))).toBe(true)
        // runs and jobs are counted apart: a job does not take a run id
        yield* store.createJob(newJob())
        const third = yield* store.createPipelineRun(newRun())
        expect(third.id).toBe(second.id + 1)
      }))

    it.scopedLive("pipeline runs: a key already known returns that run; run ids are never reused after a purge", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const a = yield* store.createPipelineRun(newRun({ key: "nightly@1000", params: { v: 1 } }))
        const again = yield* store.createPipelineRun(newRun({ key: "nightly@1000", params: { v: 2 } }))
        expect(again).toEqual({ id: a.id, existing: true })
        expect((yield* getRun(store, a.id)).params).toEqual({ v: 1 })
        expect((yield* getRun(store, a.id)).key).toBe("nightly@1000")
        const b = yield* store.createPipelineRun(newRun({ key: "nightly@2000" }))
        expect(b.existing).toBe(false)
        expect(b.id).toBeGreaterThan(a.id)
        // concurrent creates of one key make one run
        const many = yield* Effect.all(
          Array.from({ length: 40 }, (_, i) => store.createPipelineRun(newRun({ key: `k${i % 4}` }))),
          { concurrency: "unbounded" }
        )
        for (let k = 0; k < 4; k++) {
          const ofKey = many.filter((_, i) => i % 4 === k)
          expect(new Set(ofKey.map((r) => r.id)).size).toBe(1)
          expect(ofKey.filter((r) => !r.existing).length).toBe(1)
        }
        // purge every run, the highest id included: ids go on increasing, keys are forgotten
        const all = [a.id, b.id, ...new Set(many.map((r) => r.id))]
        for (const id of all) yield* store.finishPipelineRun(id, "OK", 100)
        expect(yield* store.purgePipelineRuns(200)).toBe(all.length)
        for (const id of all) expect(Option.isNone(yield* store.getPipelineRun(id))).toBe(true)
        const after = yield* store.createPipelineRun(newRun({ key: "nightly@1000" }))
        expect(after.existing).toBe(false)
        expect(after.id).toBeGreaterThan(Math.max(...all))
      }))

    it.scopedLive("pipeline runs: events come back in the order recorded, exactly", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const { id } = yield* store.createPipelineRun(newRun())
        const other = yield* store.createPipelineRun(newRun())
        const events: Array<Store.PipelineEvent> = [
          { _tag: "Submitted", jobName: "build", id: Names.jobId(7), at: 10 },
          {
            _tag: "Finished",
            jobName: "build",
            result: {
              id: Names.jobId(7),
              state: "OK",
              players: {
                violin: { outcome: "OK", response: { version: "1.4.2", nested: { a: [1, 2, { b: "é" }] } } },
                viola: { outcome: "UNK_SCORE", response: {} }
              }
            },
            at: 20
          },
          { _tag: "Submitted", jobName: "canary", id: Names.jobId(9), at: 21 },
          { _tag: "SubmissionFailed", jobName: "rollout", reason: "invalid job request: params.version: must match", at: 22 },
          {
            _tag: "Finished",
            jobName: "canary",
            result: { id: Names.jobId(9), state: "FAIL", reason: "viola ended FAIL", players: { viola: { outcome: "FAIL", response: {} } } },
            at: 30
          },
          { _tag: "Cancelled", reason: "cancelled by the audience", at: 31 }
        ]
        for (const [i, e] of events.entries()) {
          expect(yield* store.recordPipelineEvent(id, e)).toBe(true)
          // interleaved with another run's events
          expect(yield* store.recordPipelineEvent(other.id, { _tag: "Submitted", jobName: `j${i}`, id: Names.jobId(100 + i), at: i })).toBe(true)
        }
        expect((yield* getRun(store, id)).events).toEqual(events)
        expect((yield* getRun(store, other.id)).events.map((e) => (e._tag === "Submitted" ? e.jobName : ""))).toEqual(
          events.map((_, i) => `j${i}`)
        )
        // many events in a row, issued concurrently: all kept, in the order the calls were made
        const more = Array.from({ length: 200 }, (_, i): Store.PipelineEvent => ({ _tag: "Cancelled", reason: `r${i}`, at: 100 + i }))
        const recorded = yield* Effect.all(more.map((e) => store.recordPipelineEvent(other.id, e)), { concurrency: "unbounded" })
        expect(recorded.every((r) => r)).toBe(true)
        const kept = (yield* getRun(store, other.id)).events.slice(events.length)
        expect(kept.length).toBe(200)
        expect(new Set(kept.map((e) => (e._tag === "Cancelled" ? e.reason : ""))).size).toBe(200)
      }))

    it.scopedLive("pipeline runs: events of an unknown or finished run are refused; the first finish wins", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const { id } = yield* store.createPipelineRun(newRun())
        const e: Store.PipelineEvent = { _tag: "Submitted", jobName: "build", id: Names.jobId(1), at: 1 }
        expect(yield* store.recordPipelineEvent(Store.pipelineRunId(id + 1000), e)).toBe(false)
        expect(yield* store.recordPipelineEvent(id, e)).toBe(true)
        yield* store.finishPipelineRun(id, "PARTIAL_FAIL", 50, "rollout ended PARTIAL_FAIL")
        yield* store.finishPipelineRun(id, "OK", 60)
        yield* store.finishPipelineRun(Store.pipelineRunId(id + 1000), "OK", 60)
        expect(yield* store.recordPipelineEvent(id, { _tag: "Cancelled", reason: "late", at: 70 })).toBe(false)
        const run = yield* getRun(store, id)
        expect([run.state, run.finishedAt, run.reason]).toEqual(["PARTIAL_FAIL", 50, "rollout ended PARTIAL_FAIL"])
        expect(run.events).toEqual([e])
        expect(Option.isNone(yield* store.getPipelineRun(Store.pipelineRunId(id + 1000)))).toBe(true)
      }))

    it.scopedLive("pipeline runs: listed newest first, filtered by state and pipeline, in pages", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const ids: Array<number> = []
        for (let i = 0; i < 7; i++) {
          const { id } = yield* store.createPipelineRun(newRun({ pipeline: i % 2 === 0 ? "release" : "nightly", createdAt: 1000 + i }))
          ids.push(id)
        }
        yield* store.finishPipelineRun(Store.pipelineRunId(ids[0]!), "OK", 2000)
        yield* store.finishPipelineRun(Store.pipelineRunId(ids[3]!), "FAIL", 2001, "build ended FAIL")
        const p1 = yield* store.listPipelineRuns({ limit: 3 })
        expect(p1.runs.map((r) => r.id)).toEqual([ids[6], ids[5], ids[4]])
        expect(p1.next).toBe(ids[4])
        const p2 = yield* store.listPipelineRuns({ limit: 3, before: p1.next! })
        expect(p2.runs.map((r) => r.id)).toEqual([ids[3], ids[2], ids[1]])
        const p3 = yield* store.listPipelineRuns({ limit: 3, before: p2.next! })
        expect(p3.runs.map((r) => r.id)).toEqual([ids[0]])
        expect(p3.next).toBeUndefined()
        expect(p2.runs[0]).toEqual({ id: ids[3], pipeline: "nightly", state: "FAIL", createdAt: 1003, finishedAt: 2001, reason: "build ended FAIL" })
        expect(p1.runs[0]).toEqual({ id: ids[6], pipeline: "release", state: "PENDING", createdAt: 1006 })
        expect((yield* store.listPipelineRuns({ state: "PENDING" })).runs.map((r) => r.id)).toEqual(
          [ids[6], ids[5], ids[4], ids[2], ids[1]]
        )
        expect((yield* store.listPipelineRuns({ pipeline: "release" })).runs.map((r) => r.id)).toEqual([ids[6], ids[4], ids[2], ids[0]])
        expect((yield* store.listPipelineRuns({ pipeline: "release", state: "OK" })).runs.map((r) => r.id)).toEqual([ids[0]])
        expect((yield* store.listPipelineRuns({})).runs.length).toBe(7)
        const bad = yield* Effect.either(store.listPipelineRuns({ limit: 0 }))
        expect(Either.isLeft(bad) && bad.left.operation).toBe("listPipelineRuns")
      }))

    it.scopedLive("pipeline runs: unfinished runs, oldest first, with their events; purge keeps unfinished and recent ones", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const a = yield* store.createPipelineRun(newRun())
        const b = yield* store.createPipelineRun(newRun())
        const c = yield* store.createPipelineRun(newRun())
        yield* store.recordPipelineEvent(a.id, { _tag: "Submitted", jobName: "build", id: Names.jobId(1), at: 1 })
        yield* store.recordPipelineEvent(c.id, { _tag: "Submitted", jobName: "build", id: Names.jobId(2), at: 2 })
        yield* store.recordPipelineEvent(a.id, { _tag: "SubmissionFailed", jobName: "x", reason: "no", at: 3 })
        yield* store.finishPipelineRun(b.id, "OK", 100)
        const open = yield* store.unfinishedPipelineRuns
        expect(open.map((r) => r.id)).toEqual([a.id, c.id])
        expect(open[0]!.events.map((e) => e._tag)).toEqual(["Submitted", "SubmissionFailed"])
        expect(open[1]!.events.length).toBe(1)
        yield* store.finishPipelineRun(c.id, "CANCELLED", 300)
        expect(yield* store.purgePipelineRuns(200)).toBe(1)
        expect(Option.isNone(yield* store.getPipelineRun(b.id))).toBe(true)
        expect((yield* getRun(store, c.id)).events.length).toBe(1)
        expect((yield* store.unfinishedPipelineRuns).map((r) => r.id)).toEqual([a.id])
        // purging runs leaves jobs alone, and purging jobs leaves runs alone
        const job = yield* store.createJob(newJob())
        yield* store.finishJob(job.id, "OK", 100)
        expect(yield* store.purgePipelineRuns(1000)).toBe(1)
        expect(Option.isSome(yield* store.getJob(job.id))).toBe(true)
        expect(yield* store.purge(1000)).toBe(1)
        expect(Option.isSome(yield* store.getPipelineRun(a.id))).toBe(true)
      }))

    it.scopedLive("pipeline runs: invalid input fails its own call with a StoreError", () =>
      Effect.gen(function*() {
        const store = yield* make()
        const results = yield* Effect.all(
          [
            Effect.either(store.createPipelineRun(newRun())),
            Effect.either(store.createPipelineRun({ ...newRun(), pipeline: "" })),
            Effect.either(store.createPipelineRun({ ...newRun(), params: [1, 2] as unknown as Store.NewPipelineRun["params"] })),
            Effect.either(store.createPipelineRun(newRun()))
          ],
          { concurrency: "unbounded" }
        )
        expect(results.map(Either.isRight)).toEqual([true, false, false, true])
        for (const r of results.slice(1, 3)) expect(Either.isLeft(r) && r.left.operation).toBe("createPipelineRun")
        const { id } = yield* store.createPipelineRun(newRun())
        const badEvent = yield* Effect.either(
          store.recordPipelineEvent(id, { _tag: "Exploded", at: 1 } as unknown as Store.PipelineEvent)
        )
        expect(Either.isLeft(badEvent) && badEvent.left.operation).toBe("recordPipelineEvent")
        const badFinish = yield* Effect.either(store.finishPipelineRun(id, "PENDING" as JobState.FinishedJobState, 1))
        expect(Either.isLeft(badFinish) && badFinish.left.operation).toBe("finishPipelineRun")
        const run = yield* getRun(store, id)
        expect([run.state, run.events]).toEqual(["PENDING", []])
        expect(Either.isLeft(yield* Effect.either(store.purgePipelineRuns(NaN)))).toBe(true)
      }))

    // ---- schedules -----------------------------------------------------------------

    it.scopedLive("schedule states: none until set, then the last value set, per schedule", () =>
      Effect.gen(function*() {
        const store = yield* make()
        expect(Option.isNone(yield* store.getScheduleState("nightly-release"))).toBe(true)
        yield* store.setScheduleState("nightly-release", 1_700_000_000_000)
        yield* store.setScheduleState("disk-usage", 42)
        expect(yield* store.getScheduleState("nightly-release")).toEqual(Option.some(1_700_000_000_000))
        yield* store.setScheduleState("nightly-release", 1_700_000_060_000)
        expect(yield* store.getScheduleState("nightly-release")).toEqual(Option.some(1_700_000_060_000))
        expect(yield* store.getScheduleState("disk-usage")).toEqual(Option.some(42))
        expect(Option.isNone(yield* store.getScheduleState("other"))).toBe(true)
        // concurrent sets: one of them is kept
        const times = Array.from({ length: 50 }, (_, i) => 1000 + i)
        yield* Effect.all(times.map((t) => store.setScheduleState("busy", t)), { concurrency: "unbounded" })
        const kept = yield* store.getScheduleState("busy")
        expect(Option.isSome(kept) && times.includes(kept.value)).toBe(true)
        const bad = yield* Effect.either(store.setScheduleState("", 1))
        expect(Either.isLeft(bad) && bad.left.operation).toBe("setScheduleState")
        const badTime = yield* Effect.either(store.setScheduleState("x", Number.NaN))
        expect(Either.isLeft(badTime) && badTime.left.operation).toBe("setScheduleState")
        expect(Option.isNone(yield* store.getScheduleState("x"))).toBe(true)
      }))

    it.scopedLive("an empty batch is an empty result", () =>
      Effect.gen(function*() {
        const store = yield* make()
        if (store.recordEnds === undefined || store.recordDispatches === undefined || store.recordStarts === undefined ||
          store.finishJobs === undefined) return
        expect(yield* store.recordDispatches([])).toEqual([])
        expect(yield* store.recordStarts([])).toEqual([])
        expect(yield* store.recordEnds([])).toEqual([])
        expect(yield* store.finishJobs([])).toEqual([])
      }))
  })
}
