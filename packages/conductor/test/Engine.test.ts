import { describe, expect, it } from "@effect/vitest"
import type { Store } from "@orchestra/core"
import { Errors, Names, Protocol } from "@orchestra/core"
import { StoreMemory } from "@orchestra/store-memory"
import { Chunk, Clock, Effect, TestClock } from "effect"
import { statusOf } from "../src/AudienceSocket.js"
import { endedOf, FakePlayer, getJob, harness, p, realSleep, submit, waitFor, waitJob } from "./support.js"

describe("Engine", () => {
  it.scopedLive("one-of: a job runs on its player and ends OK with the response", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["p1"] })
      const p1 = new FakePlayer(p("p1"), () => ({ outcome: "OK", response: { answer: "42" } }))
      yield* p1.connect(h.hub)
      const id = yield* submit(h, { players: ["p1"], params: { x: "1" } })
      const job = yield* waitJob(h.store, id)
      expect(job.state).toBe("OK")
      expect(statusOf(job)).toEqual({ status: "OK", players: { p1: { status: "OK", response: { answer: "42" } } } })
      expect(p1.received.map((a) => a.params)).toEqual([{ x: "1" }])
      yield* waitFor("the result to be acked", Effect.sync(() => p1.acked.length === 1))
      expect(p1.outbox.size).toBe(0)
    }))

  for (const soft of ["UNK_SCORE", "HOST_ERROR"] as const) {
    it.scopedLive(`one-of: fails over to the next player when the first answers ${soft}`, () =>
      Effect.gen(function*() {
        const h = yield* harness({ allowlist: ["p1", "p2"] })
        const p1 = new FakePlayer(p("p1"), () => ({ outcome: soft }))
        const p2 = new FakePlayer(p("p2"), () => ({ outcome: "OK", response: { on: "p2" } }))
        yield* p1.connect(h.hub)
        yield* p2.connect(h.hub)
        const id = yield* submit(h, { players: ["p1", "p2"] })
        const job = yield* waitJob(h.store, id)
        expect(job.state).toBe("OK")
        expect(endedOf(job)).toEqual([`p1:0/1=${soft}`, "p2:0/2=OK"])
        expect(statusOf(job).players).toEqual({ p1: { status: soft, response: {} }, p2: { status: "OK", response: { on: "p2" } } })
      }))
  }

  it.scopedLive("one-of: fail-over waits for a busy player's slot", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["p1", "p2"] })
      const p1 = new FakePlayer(p("p1"), () => ({ outcome: "UNK_SCORE" }), { slots: 1 })
      const p2 = new FakePlayer(p("p2"), (a) => (a.score === "slow" ? "hold" : { outcome: "OK" }), { slots: 1 })
      yield* p1.connect(h.hub)
      yield* p2.connect(h.hub)
      const long = yield* submit(h, { score: "slow", players: ["p2"] })
      yield* waitFor("p2 to hold the long task", Effect.sync(() => p2.holding.length === 1))
      const id = yield* submit(h, { players: ["p1", "p2"] })
      yield* waitFor("p1 to refuse", Effect.sync(() => p1.received.length === 1))
      yield* Effect.sleep(50)
      // p2 is busy: the requeued task must wait for its slot
      expect(p2.received.length).toBe(1)
      expect((yield* getJob(h.store, id)).state).toBe("PENDING")
      const stats = yield* h.conductor.engine.stats
      expect(stats.queued).toBe(1)
      yield* p2.complete(p2.holding[0]!, "OK")
      const job = yield* waitJob(h.store, id)
      expect(job.state).toBe("OK")
      expect(endedOf(job)).toEqual(["p1:0/1=UNK_SCORE", "p2:0/2=OK"])
      expect((yield* waitJob(h.store, long)).state).toBe("OK")
    }))

  it.scopedLive("one-of: FAIL when every player refuses, naming them", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["p1", "p2"] })
      yield* new FakePlayer(p("p1"), () => ({ outcome: "UNK_SCORE" })).connect(h.hub)
      yield* new FakePlayer(p("p2"), () => ({ outcome: "HOST_ERROR" })).connect(h.hub)
      const job = yield* waitJob(h.store, yield* submit(h, { players: ["p1", "p2"] }))
      expect(job.state).toBe("FAIL")
      expect(job.reason).toContain("p1: UNK_SCORE")
      expect(job.reason).toContain("p2: HOST_ERROR")
    }))

  it.scopedLive("all-of: aggregates OK, PARTIAL_FAIL and FAIL with each player's data", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["a", "b", "c"] })
      const answer = (name: string) => (t: Protocol.Assignment) => {
        const wanted = (t.params as { readonly [k: string]: string })[name] ?? "OK"
        return { outcome: wanted as "OK" | "FAIL", response: { from: name } }
      }
      for (const n of ["a", "b", "c"]) yield* new FakePlayer(p(n), answer(n)).connect(h.hub)
      const ok = yield* submit(h, { players: ["a", "b", "c"], policy: "all-of" })
      const partial = yield* submit(h, { players: ["a", "b", "c"], policy: "all-of", params: { b: "FAIL" } })
      const fail = yield* submit(h, { players: ["a", "b"], policy: "all-of", params: { a: "FAIL", b: "FAIL" } })
      const okJob = yield* waitJob(h.store, ok)
      expect(statusOf(okJob)).toEqual({
        status: "OK",
        players: {
          a: { status: "OK", response: { from: "a" } },
          b: { status: "OK", response: { from: "b" } },
          c: { status: "OK", response: { from: "c" } }
        }
      })
      const partialJob = yield* waitJob(h.store, partial)
      expect(partialJob.state).toBe("PARTIAL_FAIL")
      expect(statusOf(partialJob).players["b"]).toEqual({ status: "FAIL", response: { from: "b" } })
      expect(statusOf(partialJob).players["a"]).toEqual({ status: "OK", response: { from: "a" } })
      const failJob = yield* waitJob(h.store, fail)
      expect(failJob.state).toBe("FAIL")
      expect(Object.keys(statusOf(failJob).players).sort()).toEqual(["a", "b"])
    }))

  it.scopedLive("all-of: a player listed twice runs once and keeps taking work afterwards", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["a", "b"] })
      const a = new FakePlayer(p("a"), () => ({ outcome: "OK" }), { slots: 1 })
      yield* a.connect(h.hub)
      yield* new FakePlayer(p("b")).connect(h.hub)
      const job = yield* waitJob(h.store, yield* submit(h, { players: ["a", "a", "b"], policy: "all-of" }))
      expect(job.state).toBe("OK")
      expect(job.targets).toEqual(["a", "a", "b"])
      expect(endedOf(job).filter((e) => e.startsWith("a:"))).toEqual(["a:a/1=OK"])
      for (let i = 0; i < 3; i++) {
        const next = yield* waitJob(h.store, yield* submit(h, { players: ["a", "a"], policy: "all-of" }))
        expect(next.state).toBe("OK")
      }
      expect(a.received.length).toBe(4)
      const stats = yield* h.conductor.engine.stats
      expect(stats).toMatchObject({ jobs: 0, queued: 0, openAttempts: 0 })
      expect(h.conductor.engine.player(p("a"))?.running).toBe(0)
    }))

  it.scopedLive("jobs for an offline player wait and complete after it connects, in batched messages", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["late"] })
      const ids: Array<Names.JobId> = []
      for (let i = 0; i < 10; i++) ids.push(yield* submit(h, { players: ["late"], params: { i: String(i) } }))
      yield* Effect.sleep(30)
      expect((yield* getJob(h.store, ids[0]!)).state).toBe("PENDING")
      expect((yield* h.conductor.engine.stats).queued).toBe(10)
      const late = new FakePlayer(p("late"), undefined, { slots: 10 })
      yield* late.connect(h.hub)
      for (const id of ids) expect((yield* waitJob(h.store, id)).state).toBe("OK")
      yield* waitFor("every ack", Effect.sync(() => late.acked.length === 10))
      // all ten in one Run, in submission order; the ten results (one Results message) acked in one Ack
      expect(late.runMessages).toBe(1)
      expect(late.received.map((a) => a.params)).toEqual(ids.map((_, i) => ({ i: String(i) })))
      expect(late.ackMessages).toBe(1)
    }))

  it.scopedLive("an attempt dispatched to a player that disconnects is re-sent when it reconnects", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["p1"] })
      // the player receives the Run but loses it (it crashed before starting it)
      const p1 = new FakePlayer(p("p1"), () => "hold")
      yield* p1.connect(h.hub)
      const id = yield* submit(h, { players: ["p1"] })
      yield* waitFor("p1 to receive the task", Effect.sync(() => p1.received.length === 1))
      yield* p1.disconnect()
      p1.held.clear()
      p1.executed.clear()
      p1.behavior = () => ({ outcome: "OK" })
      yield* waitFor("the engine to see p1 offline", Effect.sync(() => h.conductor.engine.player(p("p1"))?.online === false))
      yield* p1.connect(h.hub)
      const job = yield* waitJob(h.store, id)
      expect(job.state).toBe("OK")
      expect(p1.receivedIds()).toEqual([`${id}/0/1`, `${id}/0/1`])
    }))

  it.scopedLive("an attempt still running on reconnect (Hello.running) is not re-sent", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["p1"] })
      const p1 = new FakePlayer(p("p1"), () => "hold")
      yield* p1.connect(h.hub)
      const id = yield* submit(h, { players: ["p1"] })
      yield* waitFor("p1 to hold the task", Effect.sync(() => p1.holding.length === 1))
      yield* p1.disconnect()
      yield* waitFor("the engine to see p1 offline", Effect.sync(() => h.conductor.engine.player(p("p1"))?.online === false))
      yield* p1.connect(h.hub)
      yield* Effect.sleep(30)
      expect(p1.received.length).toBe(1)
      yield* p1.complete(p1.holding[0]!, "OK")
      expect((yield* waitJob(h.store, id)).state).toBe("OK")
    }))

  it.scopedLive("a duplicate result is recorded once and acknowledged every time", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["p1"] })
      const p1 = new FakePlayer(p("p1"), () => "hold")
      yield* p1.connect(h.hub)
      const id = yield* submit(h, { players: ["p1"] })
      yield* waitFor("p1 to hold the task", Effect.sync(() => p1.holding.length === 1))
      const ref = p1.held.get(p1.holding[0]!)!.ref
      const result = (outcome: "OK" | "FAIL", response: Record<string, string>): Protocol.TaskResult => ({
        ref,
        outcome,
        response,
        log: "",
        finishedAt: Date.now()
      })
      // the same result twice in one message, then once more later with different content
      yield* p1.send(new Protocol.Results({ results: [result("OK", { n: "1" }), result("OK", { n: "1" })] }))
      const job = yield* waitJob(h.store, id)
      yield* waitFor("two acks", Effect.sync(() => p1.acked.length === 2))
      yield* p1.send(new Protocol.Results({ results: [result("FAIL", { n: "2" })] }))
      yield* waitFor("a third ack", Effect.sync(() => p1.acked.length === 3))
      const after = yield* getJob(h.store, id)
      expect(job.state).toBe("OK")
      expect(after.state).toBe("OK")
      expect(after.attempts.length).toBe(1)
      expect(after.attempts[0]!.outcome).toBe("OK")
      expect(after.attempts[0]!.response).toEqual({ n: "1" })
      expect(p1.acked.map(Names.taskRefString)).toEqual([Names.taskRefString(ref), Names.taskRefString(ref), Names.taskRefString(ref)])
    }))

  it.scopedLive("a result for an attempt the conductor never dispatched is acked and not recorded", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["p1", "p2"] })
      const p1 = new FakePlayer(p("p1"), () => "hold")
      const p2 = new FakePlayer(p("p2"))
      yield* p1.connect(h.hub)
      yield* p2.connect(h.hub)
      const id = yield* submit(h, { players: ["p1"] })
      yield* waitFor("p1 to hold the task", Effect.sync(() => p1.holding.length === 1))
      const ref = p1.held.get(p1.holding[0]!)!.ref
      // p2 claims p1's attempt; and a made-up attempt
      yield* p2.send(new Protocol.Results({
        results: [
          { ref, outcome: "FAIL", response: {}, log: "", finishedAt: 1 },
          { ref: { job: Names.jobId(999), key: Names.taskKey("0"), attempt: 1 }, outcome: "OK", response: {}, log: "", finishedAt: 1 }
        ]
      }))
      yield* waitFor("p2's acks", Effect.sync(() => p2.acked.length === 2))
      expect((yield* getJob(h.store, id)).attempts[0]!.outcome).toBeUndefined()
      yield* p1.complete(ref, "OK")
      expect((yield* waitJob(h.store, id)).state).toBe("OK")
    }))

  it.scopedLive("never more unfinished attempts on a player than its slots", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["p1"] })
      const p1 = new FakePlayer(p("p1"), () => "hold", { slots: 3 })
      yield* p1.connect(h.hub)
      const ids: Array<Names.JobId> = []
      for (let i = 0; i < 10; i++) ids.push(yield* submit(h, { players: ["p1"] }))
      yield* waitFor("3 held", Effect.sync(() => p1.holding.length === 3))
      yield* Effect.sleep(30)
      expect(p1.holding.length).toBe(3)
      let done = 0
      for (let round = 0; round < 20 && done < 10; round++) {
        expect(p1.holding.length).toBeLessThanOrEqual(3)
        for (const held of [...p1.holding]) {
          yield* p1.complete(held, "OK")
          done++
        }
        yield* waitFor("more work or the end", Effect.sync(() => p1.holding.length > 0 || done === 10))
      }
      expect(done).toBe(10)
      for (const id of ids) expect((yield* waitJob(h.store, id)).state).toBe("OK")
    }))

  it.scopedLive("a cancelled job: queued tasks end at once, running ones are told to stop", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["a", "b"] })
      const a = new FakePlayer(p("a"), () => "hold", { slots: 1 })
      yield* a.connect(h.hub)
      const id = yield* submit(h, { players: ["a", "b"], policy: "all-of" })
      yield* waitFor("a to hold its task", Effect.sync(() => a.holding.length === 1))
      expect(yield* h.conductor.engine.cancel(id, "stop it")).toBe(true)
      const job = yield* waitJob(h.store, id)
      expect(job.state).toBe("CANCELLED")
      expect(job.reason).toBe("stop it")
      yield* waitFor("a to be told to cancel", Effect.sync(() => a.cancels.length === 1))
      yield* waitFor("the cancelled attempt to be recorded", Effect.map(getJob(h.store, id), (j) => j.attempts.some((x) => x.outcome === "CANCELLED")))
      yield* waitFor("the engine to forget the job", Effect.map(h.conductor.engine.stats, (s) => s.jobs === 0 && s.queued === 0))
      expect(yield* h.conductor.engine.cancel(id)).toBe(false)
    }))

  it.scopedLive("a player removed from the allowlist: session closed, its tasks end HOST_ERROR, one-of fails over", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["p1", "p2"] })
      const p1 = new FakePlayer(p("p1"), () => "hold", { slots: 1 })
      yield* p1.connect(h.hub)
      const running = yield* submit(h, { players: ["p1", "p2"] })
      yield* waitFor("p1 to hold", Effect.sync(() => p1.holding.length === 1))
      const queued = yield* submit(h, { players: ["p1"] })
      const both = yield* submit(h, { players: ["p1", "p2"], policy: "all-of" })
      const change = yield* h.conductor.engine.setAllowlist([p("p2")])
      expect(change).toEqual({ added: [], removed: ["p1"] })
      yield* waitFor("p1's session to close", Effect.sync(() => !p1.online))
      expect(p1.refused.join()).toContain("removed from the allowlist")
      const queuedJob = yield* waitJob(h.store, queued)
      expect(queuedJob.state).toBe("FAIL")
      expect(endedOf(queuedJob)).toEqual(["p1:0/1=HOST_ERROR"])
      const p2 = new FakePlayer(p("p2"))
      yield* p2.connect(h.hub)
      const failedOver = yield* waitJob(h.store, running)
      expect(failedOver.state).toBe("OK")
      expect(endedOf(failedOver)).toEqual(["p1:0/1=HOST_ERROR", "p2:0/2=OK"])
      const bothJob = yield* waitJob(h.store, both)
      expect(bothJob.state).toBe("PARTIAL_FAIL")
      expect(statusOf(bothJob).players["p1"]!.status).toBe("HOST_ERROR")
      // p1 can no longer connect; p1's late result would not count
      const again = yield* Effect.either(new FakePlayer(p("p1")).connect(h.hub))
      expect(again._tag).toBe("Left")
      expect(h.conductor.engine.isAllowed("p1")).toBe(false)
      // adding it back lets it in
      yield* h.conductor.engine.setAllowlist([p("p1"), p("p2")])
      const back = new FakePlayer(p("p1"))
      yield* back.connect(h.hub)
      expect((yield* waitJob(h.store, yield* submit(h, { players: ["p1"] }))).state).toBe("OK")
    }))

  it.scopedLive("admit refuses a player not on the allowlist and a second session for a connected name", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["p1"] })
      const stranger = yield* Effect.flip(new FakePlayer(p("stranger")).connect(h.hub))
      expect(stranger).toMatchObject({ _tag: "SessionRefused" })
      expect((stranger as { reason: string }).reason).toContain("not on the allowlist")
      const first = new FakePlayer(p("p1"), () => "hold")
      yield* first.connect(h.hub)
      const impostor = yield* Effect.flip(new FakePlayer(p("p1")).connect(h.hub))
      expect((impostor as { reason: string }).reason).toContain("already has a live session")
      // the first session is untouched and still works
      const id = yield* submit(h, { players: ["p1"] })
      yield* waitFor("the first session to get the task", Effect.sync(() => first.holding.length === 1))
      yield* first.complete(first.holding[0]!, "OK")
      expect((yield* waitJob(h.store, id)).state).toBe("OK")
      // once it is gone, the name may connect again
      yield* first.disconnect()
      yield* waitFor("p1 offline", Effect.sync(() => h.conductor.engine.player(p("p1"))?.online === false))
      yield* new FakePlayer(p("p1")).connect(h.hub)
    }))

  it.scopedLive("a player's labels and catalog are registered, and a catalog change is seen", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["p1"] })
      const p1 = new FakePlayer(p("p1"), undefined, { labels: { role: "web" }, slots: 7 })
      yield* p1.connect(h.hub)
      yield* waitFor("p1 online", Effect.sync(() => h.conductor.engine.player(p("p1"))?.online === true))
      const info = h.conductor.engine.player(p("p1"))!
      expect(info).toMatchObject({ online: true, slots: 7, labels: { role: "web" } })
      expect([...info.catalog!.keys()].sort()).toEqual(["noop", "slow"])
      yield* p1.send(new Protocol.CatalogChanged({ catalog: [] }))
      yield* waitFor("the new catalog", Effect.sync(() => h.conductor.engine.player(p("p1"))!.catalog!.size === 0))
    }))
})

describe("Engine with TestClock", () => {
  const sleeping = Effect.map(TestClock.sleeps(), (s) => Chunk.size(s) > 0)

  it.scoped("retries a retryable failure after an exponential backoff, without telling the policy", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["p1"] })
      let n = 0
      const p1 = new FakePlayer(p("p1"), () => (++n < 3 ? { outcome: "FAIL" } : { outcome: "OK" }))
      yield* p1.connect(h.hub)
      const id = yield* submit(h, { players: ["p1"], retry: { max: 2, backoffMs: 1000, factor: 2, maxBackoffMs: 60_000 } })
      yield* waitFor("the first failure to be recorded", Effect.map(getJob(h.store, id), (j) => j.attempts.some((a) => a.outcome === "FAIL")))
      yield* waitFor("the backoff timer", sleeping)
      yield* TestClock.adjust(999)
      yield* realSleep(20)
      expect(p1.received.length).toBe(1)
      yield* TestClock.adjust(1)
      yield* waitFor("attempt 2", Effect.sync(() => p1.received.length === 2))
      yield* waitFor("the second backoff timer", Effect.map(getJob(h.store, id), (j) => j.attempts.filter((a) => a.outcome === "FAIL").length === 2))
      yield* waitFor("the backoff timer", sleeping)
      yield* TestClock.adjust(1999)
      yield* realSleep(20)
      expect(p1.received.length).toBe(2)
      yield* TestClock.adjust(1)
      const job = yield* waitJob(h.store, id)
      expect(job.state).toBe("OK")
      expect(endedOf(job)).toEqual(["p1:0/1=FAIL", "p1:0/2=FAIL", "p1:0/3=OK"])
      expect(p1.receivedIds()).toEqual([`${id}/0/1`, `${id}/0/2`, `${id}/0/3`])
    }))

  it.scoped("gives up after the last retry and the policy sees the failure", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["p1"] })
      const p1 = new FakePlayer(p("p1"), () => ({ outcome: "FAIL" }))
      yield* p1.connect(h.hub)
      const id = yield* submit(h, { players: ["p1"], retry: { max: 1, backoffMs: 10, factor: 2, maxBackoffMs: 60_000 } })
      yield* waitFor("the backoff timer", sleeping)
      yield* TestClock.adjust(10)
      const job = yield* waitJob(h.store, id)
      expect(job.state).toBe("FAIL")
      expect(endedOf(job)).toEqual(["p1:0/1=FAIL", "p1:0/2=FAIL"])
    }))

  it.scoped("does not retry a non-retryable outcome", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["p1"] })
      yield* new FakePlayer(p("p1"), () => ({ outcome: "INVALID_PARAMS" })).connect(h.hub)
      const id = yield* submit(h, { players: ["p1"], retry: { max: 3, backoffMs: 10, factor: 2, maxBackoffMs: 60_000 } })
      const job = yield* waitJob(h.store, id)
      expect(endedOf(job)).toEqual(["p1:0/1=INVALID_PARAMS"])
    }))

  it.scoped("the deadline ends running and queued tasks TIMEOUT; running ones get a Cancel", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["a", "b"] })
      const a = new FakePlayer(p("a"), () => "hold")
      yield* a.connect(h.hub)
      const start = yield* Clock.currentTimeMillis
      const id = yield* submit(h, { players: ["a", "b"], policy: "all-of", deadline: start + 5000 })
      yield* waitFor("a to hold", Effect.sync(() => a.holding.length === 1))
      yield* a.send(new Protocol.Started({ tasks: [{ ref: a.held.get(a.holding[0]!)!.ref, at: 123 }] }))
      yield* waitFor("the start to be recorded", Effect.map(getJob(h.store, id), (j) => j.attempts[0]?.startedAt === 123))
      expect(a.received[0]!.deadline).toBe(start + 5000)
      yield* waitFor("the deadline timer", sleeping)
      yield* TestClock.adjust(4999)
      yield* realSleep(20)
      expect((yield* getJob(h.store, id)).state).toBe("PENDING")
      yield* TestClock.adjust(1)
      const job = yield* waitJob(h.store, id)
      expect(job.state).toBe("FAIL")
      expect([...endedOf(job)].sort()).toEqual(["a:a/1=TIMEOUT", "b:b/1=TIMEOUT"])
      yield* waitFor("a to be told to cancel", Effect.sync(() => a.cancels.length === 1))
      // a's CANCELLED answer comes after the TIMEOUT was recorded: acked, not recorded
      yield* waitFor("the CANCELLED result to be acked", Effect.sync(() => a.acked.length === 1))
      expect([...endedOf(yield* getJob(h.store, id))].sort()).toEqual(["a:a/1=TIMEOUT", "b:b/1=TIMEOUT"])
    }))

  it.scoped("intake refuses a deadline in the past", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["a"] })
      yield* TestClock.adjust(10_000)
      const e = yield* Effect.flip(submit(h, { players: ["a"], deadline: 5000 }))
      expect(e._tag).toBe("InvalidRequest")
      expect(e.message).toContain("deadline")
    }))
})

describe("Engine with a failing store", () => {
  const flaky = (store: Store.StoreService, failures: { dispatch: number; end: number; finish: number }): Store.StoreService => ({
    ...store,
    recordDispatch: (d) =>
      failures.dispatch-- > 0 ? Effect.fail(new Errors.StoreError({ operation: "recordDispatch", message: "disk full" })) : store.recordDispatch(d),
    recordEnd: (e) => (failures.end-- > 0 ? Effect.fail(new Errors.StoreError({ operation: "recordEnd", message: "disk full" })) : store.recordEnd(e)),
    finishJob: (id, state, at, reason) =>
      failures.finish-- > 0 ? Effect.fail(new Errors.StoreError({ operation: "finishJob", message: "disk full" })) : store.finishJob(id, state, at, reason)
  })

  it.scopedLive("a dispatch or finish that fails to record is retried; a result that fails is not acked and is taken when sent again", () =>
    Effect.gen(function*() {
      const memory = yield* StoreMemory.make
      const failures = { dispatch: 1, end: 1, finish: 1 }
      const h = yield* harness({ allowlist: ["p1"], store: flaky(memory, failures) })
      const p1 = new FakePlayer(p("p1"))
      yield* p1.connect(h.hub)
      const id = yield* submit(h, { players: ["p1"] })
      // the dispatch failed once, then went through after the retry delay
      yield* waitFor("the task to reach p1", Effect.sync(() => p1.received.length === 1))
      expect(failures.dispatch).toBeLessThan(0)
      // the result failed to record: no ack, still in the player's outbox
      yield* waitFor("the failed end", Effect.sync(() => failures.end === 0))
      yield* Effect.sleep(30)
      expect(p1.acked.length).toBe(0)
      expect((yield* getJob(h.store, id)).state).toBe("PENDING")
      // the player reconnects and sends it again: recorded and acked now
      yield* p1.disconnect()
      yield* waitFor("p1 offline", Effect.sync(() => h.conductor.engine.player(p("p1"))?.online === false))
      yield* p1.connect(h.hub)
      yield* waitFor("the ack", Effect.sync(() => p1.acked.length === 1))
      const job = yield* waitJob(h.store, id)
      expect(job.state).toBe("OK")
      expect(failures.finish).toBeLessThan(0)
      expect(endedOf(job)).toEqual(["p1:0/1=OK"])
      // re-sent on reconnect (its result was not recorded yet); the player ran it once
      expect(p1.receivedIds()).toEqual([`${id}/0/1`, `${id}/0/1`])
      expect(p1.executed.size).toBe(1)
    }))
})
