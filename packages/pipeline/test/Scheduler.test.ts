/**
 * The scheduler on TestClock: a schedule every minute fires exactly ten
 * times in ten minutes; overlap skip and queue with runs longer than the
 * period; missed fire times skipped or run once across a simulated
 * restart (state kept in the in-memory ScheduleState); failures of `fire`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Clock, Effect, Either, Exit, Option, Scope, TestClock } from "effect"
import { Schedule, Scheduler, ScheduleState } from "../src/index.js"
import { yaml } from "./helpers.js"

const MIN = 60_000

const schedule = (cron: string, extra: ReadonlyArray<string> = []) =>
  Either.getOrThrow(Schedule.parse(yaml("name: s", `cron: "${cron}"`, "job: { score: noop, players: [violin], policy: one-of }", ...extra), "s.yaml"))

/** A run started at clock time `started` that lasts `length` ms. */
interface Run {
  readonly at: number
  readonly started: number
  readonly end: number
}

/**
 * A harness: `fire` records the fire time and the clock time, and its run
 * lasts `runMs`; `isRunning` compares with the clock. Events are recorded.
 */
const harness = (runMs = 0, failFirst = 0) => {
  const runs: Array<Run> = []
  const events: Array<Scheduler.SchedulerEvent> = []
  let failures = failFirst
  const options = (schedules: ReadonlyArray<Schedule.Schedule>, pollMs?: number): Scheduler.SchedulerOptions<Run, string> => ({
    schedules,
    fire: (_s, at) =>
      Effect.gen(function*() {
        if (failures > 0) {
          failures--
          return yield* Effect.fail("the conductor refused it")
        }
        const now = yield* Clock.currentTimeMillis
        const run = { at: at.getTime(), started: now, end: now + runMs }
        runs.push(run)
        return run
      }),
    isRunning: (run) => Effect.map(Clock.currentTimeMillis, (now) => now < run.end),
    onEvent: (e) => Effect.sync(() => void events.push(e)),
    pollMs
  })
  return { runs, events, options }
}

/** Start a scheduler in its own scope (a conductor process); close the scope to "stop" it. */
const startScheduler = <H, E>(state: ScheduleState.ScheduleStateService, options: Scheduler.SchedulerOptions<H, E>) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const service = yield* Scheduler.make(options).pipe(
      Effect.provideService(ScheduleState.ScheduleState, state),
      Scope.extend(scope)
    )
    return { scope, service }
  })

const tags = (events: ReadonlyArray<Scheduler.SchedulerEvent>) => events.map((e) => e._tag)

describe("Scheduler", () => {
  it.effect("a job every minute for 10 minutes of TestClock time fires exactly 10 times", () =>
    Effect.gen(function*() {
      const state = yield* ScheduleState.makeMemory()
      const h = harness()
      const { scope, service } = yield* startScheduler(state, h.options([schedule("* * * * *")]))
      yield* TestClock.adjust("10 minutes")
      expect(h.runs.map((r) => r.at)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((m) => m * MIN))
      expect(h.runs.map((r) => r.started)).toEqual(h.runs.map((r) => r.at))
      expect(tags(h.events)).toEqual(Array(10).fill("Fired"))
      expect((yield* state.snapshot).get("s")).toEqual(new Date(10 * MIN))
      const status = yield* service.status
      expect(status).toEqual([{ name: "s", next: new Date(11 * MIN), lastHandled: new Date(10 * MIN), lastFired: new Date(10 * MIN), queued: undefined }])
      yield* Scope.close(scope, Exit.void)
      // stopped: no more fires
      yield* TestClock.adjust("5 minutes")
      expect(h.runs.length).toBe(10)
    }))

  it.effect("overlap skip: a fire time while the previous run goes on is skipped", () =>
    Effect.gen(function*() {
      const state = yield* ScheduleState.makeMemory()
      const h = harness(150_000) // runs last 2.5 minutes
      const { scope } = yield* startScheduler(state, h.options([schedule("* * * * *", ["overlap: skip"])]))
      yield* TestClock.adjust("10 minutes")
      expect(h.runs.map((r) => r.at / MIN)).toEqual([1, 4, 7, 10])
      const skipped = h.events.flatMap((e) => (e._tag === "SkippedOverlap" ? [e.at.getTime() / MIN] : []))
      expect(skipped).toEqual([2, 3, 5, 6, 8, 9])
      // skipped times are handled too: recorded
      expect((yield* state.snapshot).get("s")).toEqual(new Date(10 * MIN))
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("overlap queue: a fire time waits for the previous run; those that come meanwhile join it", () =>
    Effect.gen(function*() {
      const state = yield* ScheduleState.makeMemory()
      const h = harness(150_000)
      const { scope, service } = yield* startScheduler(state, h.options([schedule("* * * * *", ["overlap: queue"])], 5_000))
      yield* TestClock.adjust("10 minutes")
      // runs never overlap: each starts when the previous one ends
      expect(h.runs.map((r) => [r.at / MIN, r.started / 1000])).toEqual([[1, 60], [3, 210], [5, 360], [8, 510]])
      for (let i = 1; i < h.runs.length; i++) expect(h.runs[i]!.started).toBeGreaterThanOrEqual(h.runs[i - 1]!.end)
      const fired = h.events.flatMap((e) => (e._tag === "Fired" ? [e.folded] : []))
      expect(fired).toEqual([0, 1, 1, 2])
      expect(h.events.some((e) => e._tag === "SkippedOverlap")).toBe(false)
      // every fire time is accounted for: 1 + 2 + 2 + 3 fired, 9 and 10 queued
      expect((yield* service.status)[0]?.queued).toEqual(new Date(10 * MIN))
      // a queued time is recorded only once it fires
      expect((yield* state.snapshot).get("s")).toEqual(new Date(8 * MIN))
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("missed: skip — fire times passed while stopped are skipped after the restart, then it goes on", () =>
    Effect.gen(function*() {
      const state = yield* ScheduleState.makeMemory()
      const h = harness()
      const every10 = schedule("*/10 * * * *", ["missed: skip"])
      const first = yield* startScheduler(state, h.options([every10]))
      yield* TestClock.adjust("25 minutes")
      expect(h.runs.map((r) => r.at / MIN)).toEqual([10, 20])
      yield* Scope.close(first.scope, Exit.void) // the conductor goes down
      yield* TestClock.adjust("50 minutes") // now 75: 30, 40, 50, 60, 70 pass unseen
      expect(h.runs.length).toBe(2)
      const second = yield* startScheduler(state, h.options([every10]))
      yield* TestClock.adjust("10 minutes")
      expect(h.runs.map((r) => r.at / MIN)).toEqual([10, 20, 80])
      const missed = h.events.find((e) => e._tag === "Missed")
      expect(missed).toEqual({
        _tag: "Missed",
        schedule: "s",
        policy: "skip",
        times: [30, 40, 50, 60, 70].map((m) => new Date(m * MIN)),
        count: 5
      })
      yield* Scope.close(second.scope, Exit.void)
    }))

  it.effect("missed: run-once — one run at start-up for every time missed", () =>
    Effect.gen(function*() {
      const state = yield* ScheduleState.makeMemory()
      const h = harness()
      const every10 = schedule("*/10 * * * *", ["missed: run-once"])
      const first = yield* startScheduler(state, h.options([every10]))
      yield* TestClock.adjust("25 minutes")
      yield* Scope.close(first.scope, Exit.void)
      yield* TestClock.adjust("50 minutes")
      const second = yield* startScheduler(state, h.options([every10]))
      yield* TestClock.adjust("0 millis")
      // at start-up (clock 75): one run, for fire time 70, standing for 30..60 too
      expect(h.runs.map((r) => [r.at / MIN, r.started / MIN])).toEqual([[10, 10], [20, 20], [70, 75]])
      expect(h.events.filter((e) => e._tag === "Fired").at(-1)).toMatchObject({ folded: 4 })
      yield* TestClock.adjust("10 minutes")
      expect(h.runs.map((r) => r.at / MIN)).toEqual([10, 20, 70, 80])
      yield* Scope.close(second.scope, Exit.void)
    }))

  it.effect("a restart between fire times neither repeats nor loses one", () =>
    Effect.gen(function*() {
      const state = yield* ScheduleState.makeMemory()
      const h = harness()
      const s = schedule("* * * * *", ["missed: run-once"])
      const first = yield* startScheduler(state, h.options([s]))
      yield* TestClock.adjust("90 seconds")
      yield* Scope.close(first.scope, Exit.void)
      const second = yield* startScheduler(state, h.options([s]))
      yield* TestClock.adjust("90 seconds")
      expect(h.runs.map((r) => r.at / MIN)).toEqual([1, 2, 3])
      expect(h.events.some((e) => e._tag === "Missed")).toBe(false)
      yield* Scope.close(second.scope, Exit.void)
    }))

  it.effect("first seen: fire times count from then; a failing fire is reported and the schedule goes on", () =>
    Effect.gen(function*() {
      yield* TestClock.adjust("450 seconds")
      const state = yield* ScheduleState.makeMemory()
      const h = harness(0, 1)
      const { scope } = yield* startScheduler(state, h.options([schedule("* * * * *", ["missed: run-once"])]))
      // nothing before the scheduler first saw the schedule, even with run-once
      expect(Option.getOrThrow(yield* state.get("s"))).toEqual(new Date(7.5 * MIN))
      yield* TestClock.adjust("2 minutes")
      expect(h.events.map((e) => [e._tag, "at" in e ? e.at.getTime() / MIN : undefined])).toEqual([["FireFailed", 8], ["Fired", 9]])
      expect(h.events[0]).toMatchObject({ error: "the conductor refused it" })
      expect(h.runs.map((r) => r.at / MIN)).toEqual([9])
      yield* Scope.close(scope, Exit.void)
    }))

  it.effect("schedules in a time zone fire at their wall-clock times", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(Date.parse("2024-03-30T12:00:00Z"))
      const state = yield* ScheduleState.makeMemory()
      const h = harness()
      const nightly = schedule("30 2 * * *", ["timezone: Europe/Berlin"])
      const { scope } = yield* startScheduler(state, h.options([nightly]))
      yield* TestClock.adjust("3 days")
      // 02:30 CET, then 03:30 CEST (02:30 does not exist on the 31st), then 02:30 CEST
      expect(h.runs.map((r) => new Date(r.at).toISOString())).toEqual([
        "2024-03-31T01:30:00.000Z",
        "2024-04-01T00:30:00.000Z",
        "2024-04-02T00:30:00.000Z"
      ])
      yield* Scope.close(scope, Exit.void)
    }))
})
