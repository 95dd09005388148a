import { describe, expect, it } from "@effect/vitest"
import type { Job, Store } from "@orchestra/core"
import { Schedule } from "@orchestra/pipeline"
import { StoreSqlite } from "@orchestra/store-sqlite"
import { TransportMemory } from "@orchestra/transport-memory"
import { Chunk, Effect, Either, Exit, Option, Scope, TestClock } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type * as Schedules from "../src/Schedules.js"
import { Catalog } from "@orchestra/core"
import { defaultCatalog, FakePlayer, harness, p, s, waitFor } from "./support.js"

const T0 = Date.UTC(2026, 11, 6, 10, 0, 30) // 10:00:30 UTC
const MINUTE = 60_000
const at = (hh: number, mm: number) => Date.UTC(2026, 11, 6, hh, mm, 0)

const scheduleOf = (text: string, file = "/etc/orchestra/schedules/every-minute.yaml"): Schedule.Schedule =>
  Either.getOrThrowWith(Schedule.parse(text, file), (e) => new Error(e.message))

const everyMinute = (missed: "skip" | "run-once", overlap: "skip" | "queue" = "skip") =>
  scheduleOf(`name: tick
cron: "* * * * *"
job:
  score: noop
  players: [p1]
  policy: one-of
  params: { from: schedule }
  deadline: 10m
overlap: ${overlap}
missed: ${missed}
`)

/** Every job in the store, oldest first, with its request. */
const allJobs = (store: Store.StoreService) =>
  Effect.gen(function*() {
    const page = yield* store.listJobs({ limit: 1000 })
    const out: Array<Job.JobRecord> = []
    for (const s of [...page.jobs].reverse()) out.push(Option.getOrThrow(yield* store.getJob(s.id)))
    return out
  })

/** Wait until some fiber sleeps until exactly `t` (the scheduler waiting for its next fire time). */
const asleepUntil = (t: number) =>
  waitFor(`a sleep until ${new Date(t).toISOString()}`, Effect.map(TestClock.sleeps(), (s) => Chunk.some(s, (w) => w === t)))

const tempDb = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchestra-schedules-"))
  return { dir, file: path.join(dir, "orchestra.db") }
}

/** A score that declares its output `ok`, for pipelines to read. */
const probe = new Catalog.ScoreInfo({
  name: s("probe"),
  interface: "json",
  digest: "digest-probe",
  source: "manifest",
  outputs: { type: "object", properties: { ok: { type: "string" } } }
})

/**
 * A conductor with the schedules on an SQLite file and player p1 (answers
 * OK, or holds when `hold`). A fire time more than 10 s late is missed.
 */
const conductorOn = (file: string, schedules: ReadonlyArray<Schedules.Loaded>, hold = false) =>
  Effect.gen(function*() {
    const store = yield* StoreSqlite.make({ path: file, synchronous: "NORMAL" })
    const h = yield* harness({ allowlist: ["p1"], store, hub: new TransportMemory.Hub(), schedules: { schedules, graceMs: 10_000 } })
    const p1 = new FakePlayer(p("p1"), () => (hold ? "hold" : { outcome: "OK", response: { ok: "yes" } }), {
      catalog: [...defaultCatalog, probe]
    })
    yield* p1.connect(h.hub)
    return { h, p1 }
  })

describe("Schedules in the conductor (TestClock)", () => {
  it.scoped("a job every minute: one job per minute, keyed and labelled by its fire time, with the deadline counted from it", () =>
    Effect.gen(function*() {
      const db = tempDb()
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(db.dir, { recursive: true, force: true })))
      yield* TestClock.setTime(T0)
      const { h } = yield* conductorOn(db.file, [{ schedule: everyMinute("skip") }])
      for (let m = 1; m <= 3; m++) {
        yield* asleepUntil(at(10, m))
        expect((yield* allJobs(h.store)).length).toBe(m - 1)
        yield* TestClock.adjust(m === 1 ? 30_000 : MINUTE)
        yield* waitFor(`the job of 10:0${m}`, Effect.map(allJobs(h.store), (jobs) => jobs.length === m && jobs[m - 1]!.state === "OK"))
      }
      const jobs = yield* allJobs(h.store)
      expect(jobs.map((j) => j.request.idempotencyKey)).toEqual([1, 2, 3].map((m) => `schedule/tick/${new Date(at(10, m)).toISOString()}`))
      expect(jobs.map((j) => j.request.deadline)).toEqual([1, 2, 3].map((m) => at(10, m) + 10 * MINUTE))
      for (const j of jobs) {
        expect(j.request.labels["orchestra/schedule"]).toBe("tick")
        expect(j.request.params).toEqual({ from: "schedule" })
      }
      const [view] = yield* h.conductor.schedules.list
      expect(view).toMatchObject({
        name: "tick",
        cron: "* * * * *",
        timezone: "UTC",
        runs: "job noop",
        lastFired: new Date(at(10, 3)).toISOString(),
        next: new Date(at(10, 4)).toISOString(),
        lastRun: { kind: "job", id: jobs[2]!.id }
      })
    }))

  it.scoped("missed: skip — runs missed while the conductor was down are not made up; the next minute fires as usual", () =>
    Effect.gen(function*() {
      const db = tempDb()
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(db.dir, { recursive: true, force: true })))
      yield* TestClock.setTime(T0)
      const first = yield* Scope.make()
      const one = yield* conductorOn(db.file, [{ schedule: everyMinute("skip") }]).pipe(Scope.extend(first))
      yield* asleepUntil(at(10, 1))
      yield* TestClock.adjust(30_000)
      yield* waitFor("the 10:01 job", Effect.map(allJobs(one.h.store), (jobs) => jobs.length === 1 && jobs[0]!.state === "OK"))
      yield* Scope.close(first, Exit.void)

      // down from 10:01 to 10:07:30: 10:02 … 10:07 are missed
      yield* TestClock.adjust(6 * MINUTE + 30_000)
      const two = yield* conductorOn(db.file, [{ schedule: everyMinute("skip") }])
      yield* asleepUntil(at(10, 8))
      expect((yield* allJobs(two.h.store)).length).toBe(1)
      yield* TestClock.adjust(30_000)
      yield* waitFor("the 10:08 job", Effect.map(allJobs(two.h.store), (jobs) => jobs.length === 2 && jobs[1]!.state === "OK"))
      const jobs = yield* allJobs(two.h.store)
      expect(jobs[1]!.request.idempotencyKey).toBe(`schedule/tick/${new Date(at(10, 8)).toISOString()}`)
    }))

  it.scoped("missed: run-once — one run at start-up for every missed minute, then one per minute", () =>
    Effect.gen(function*() {
      const db = tempDb()
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(db.dir, { recursive: true, force: true })))
      yield* TestClock.setTime(T0)
      const first = yield* Scope.make()
      const one = yield* conductorOn(db.file, [{ schedule: everyMinute("run-once") }]).pipe(Scope.extend(first))
      yield* asleepUntil(at(10, 1))
      yield* TestClock.adjust(30_000)
      yield* waitFor("the 10:01 job", Effect.map(allJobs(one.h.store), (jobs) => jobs.length === 1 && jobs[0]!.state === "OK"))
      yield* Scope.close(first, Exit.void)

      yield* TestClock.adjust(6 * MINUTE + 30_000) // down until 10:07:30
      const two = yield* conductorOn(db.file, [{ schedule: everyMinute("run-once") }])
      yield* waitFor("the make-up job", Effect.map(allJobs(two.h.store), (jobs) => jobs.length === 2 && jobs[1]!.state === "OK"))
      yield* asleepUntil(at(10, 8))
      // one run for 10:02 … 10:07, keyed by the latest missed time
      const madeUp = (yield* allJobs(two.h.store))[1]!
      expect(madeUp.request.idempotencyKey).toBe(`schedule/tick/${new Date(at(10, 7)).toISOString()}`)
      expect((yield* allJobs(two.h.store)).length).toBe(2)
      yield* TestClock.adjust(30_000)
      yield* waitFor("the 10:08 job", Effect.map(allJobs(two.h.store), (jobs) => jobs.length === 3))
      expect((yield* allJobs(two.h.store))[2]!.request.idempotencyKey).toBe(`schedule/tick/${new Date(at(10, 8)).toISOString()}`)
    }))

  it.scoped("overlap: skip — a minute that comes while the previous job still runs starts nothing", () =>
    Effect.gen(function*() {
      const db = tempDb()
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(db.dir, { recursive: true, force: true })))
      yield* TestClock.setTime(T0)
      const { h, p1 } = yield* conductorOn(db.file, [{ schedule: everyMinute("skip", "skip") }], true)
      yield* asleepUntil(at(10, 1))
      yield* TestClock.adjust(30_000)
      yield* waitFor("p1 to hold the 10:01 task", Effect.sync(() => p1.holding.length === 1))
      yield* asleepUntil(at(10, 2))
      yield* TestClock.adjust(MINUTE)
      yield* asleepUntil(at(10, 3))
      expect((yield* allJobs(h.store)).length).toBe(1)
      yield* p1.complete(p1.holding[0]!, "OK")
      yield* waitFor("the 10:01 job to finish", Effect.map(allJobs(h.store), (jobs) => jobs[0]!.state === "OK"))
      yield* TestClock.adjust(MINUTE)
      yield* waitFor("the 10:03 job", Effect.map(allJobs(h.store), (jobs) => jobs.length === 2))
      expect((yield* allJobs(h.store))[1]!.request.idempotencyKey).toBe(`schedule/tick/${new Date(at(10, 3)).toISOString()}`)
    }))

  it.scoped("overlap: queue — the minute waits for the previous job, then starts", () =>
    Effect.gen(function*() {
      const db = tempDb()
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(db.dir, { recursive: true, force: true })))
      yield* TestClock.setTime(T0)
      const { h, p1 } = yield* conductorOn(db.file, [{ schedule: everyMinute("skip", "queue") }], true)
      yield* asleepUntil(at(10, 1))
      yield* TestClock.adjust(30_000)
      yield* waitFor("p1 to hold the 10:01 task", Effect.sync(() => p1.holding.length === 1))
      yield* asleepUntil(at(10, 2))
      yield* TestClock.adjust(MINUTE)
      // queued: it checks every 5 s whether the previous run ended
      yield* asleepUntil(at(10, 2) + 5_000)
      expect((yield* allJobs(h.store)).length).toBe(1)
      expect((yield* h.conductor.schedules.list)[0]!.queued).toBe(new Date(at(10, 2)).toISOString())
      yield* p1.complete(p1.holding[0]!, "OK")
      yield* waitFor("the 10:01 job to finish", Effect.map(allJobs(h.store), (jobs) => jobs[0]!.state === "OK"))
      yield* TestClock.adjust(5_000)
      yield* waitFor("the queued 10:02 job", Effect.map(allJobs(h.store), (jobs) => jobs.length === 2))
      expect((yield* allJobs(h.store))[1]!.request.idempotencyKey).toBe(`schedule/tick/${new Date(at(10, 2)).toISOString()}`)
    }))

  it.scoped("a pipeline schedule starts a stored run keyed by its fire time, which runs the pipeline's jobs", () =>
    Effect.gen(function*() {
      const db = tempDb()
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(db.dir, { recursive: true, force: true })))
      yield* TestClock.setTime(T0)
      const pipeline = `name: twice
params:
  type: object
  properties: { tag: { type: string } }
jobs:
  first: { score: probe, players: [p1], policy: one-of, params: { tag: "\${{ params.tag }}" } }
  second: { needs: [first], score: noop, players: [p1], policy: one-of, params: { after: "\${{ jobs.first.players.p1.response.ok }}" } }
`
      const schedule = scheduleOf(`name: nightly
cron: "* * * * *"
pipeline: twice.yaml
params: { tag: nightly }
`)
      const { h } = yield* conductorOn(db.file, [{ schedule, pipeline: { document: pipeline, file: "twice.yaml" } }])
      yield* asleepUntil(at(10, 1))
      yield* TestClock.adjust(30_000)
      yield* waitFor("the run to finish", Effect.map(h.store.listPipelineRuns({}), (page) => page.runs.length === 1 && page.runs[0]!.state === "OK"))
      const summary = (yield* h.store.listPipelineRuns({})).runs[0]!
      const run = Option.getOrThrow(yield* h.store.getPipelineRun(summary.id))
      expect(run.key).toBe(`schedule/nightly/${new Date(at(10, 1)).toISOString()}`)
      const jobs = yield* allJobs(h.store)
      expect(jobs.map((j) => j.request.params)).toEqual([{ tag: "nightly" }, { after: "yes" }])
      expect((yield* h.conductor.schedules.list)[0]).toMatchObject({ runs: "pipeline twice.yaml", lastRun: { kind: "pipeline", id: run.id } })
    }))

  it.scoped("a fire the conductor refuses is reported on the schedule, and the next minute tries again", () =>
    Effect.gen(function*() {
      const db = tempDb()
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(db.dir, { recursive: true, force: true })))
      yield* TestClock.setTime(T0)
      // noop declares no outputs: the second job's reference is a type error, found when the run is started
      const pipeline = `name: broken
jobs:
  first: { score: noop, players: [p1], policy: one-of }
  second: { needs: [first], score: noop, players: [p1], policy: one-of, params: { x: "\${{ jobs.first.output.nosuch }}" } }
`
      const schedule = scheduleOf(`name: broken
cron: "* * * * *"
pipeline: broken.yaml
`)
      const { h } = yield* conductorOn(db.file, [{ schedule, pipeline: { document: pipeline, file: "broken.yaml" } }])
      for (const m of [1, 2]) {
        yield* asleepUntil(at(10, m))
        yield* TestClock.adjust(m === 1 ? 30_000 : MINUTE)
        yield* waitFor(`the failure at 10:0${m}`, Effect.map(h.conductor.schedules.list, (l) => l[0]!.lastError?.at === new Date(at(10, m)).toISOString()))
      }
      const [view] = yield* h.conductor.schedules.list
      expect(view!.lastError!.error).toMatch(/^invalid pipeline: broken\.yaml:4: jobs\.second\.params\.x: .*declares no output/)
      expect(view!.lastFired).toBeUndefined()
      expect((yield* h.store.listPipelineRuns({})).runs).toEqual([])
      expect(yield* allJobs(h.store)).toEqual([])
    }))
})
