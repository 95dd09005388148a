import { describe, expect, it } from "@effect/vitest"
import type { Job } from "@orchestra/core"
import { Names, Protocol } from "@orchestra/core"
import { StoreSqlite } from "@orchestra/store-sqlite"
import { TransportMemory } from "@orchestra/transport-memory"
import { Effect, Exit, Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { endedOf, FakePlayer, getJob, harness, p, submit, waitFor, waitJob } from "./support.js"

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "orchestra-conductor-recovery-"))

/** Every (key, attempt) of a job recorded once, and at most one ended attempt per (key, attempt). */
const noDuplicates = (job: Job.JobRecord) => {
  const seen = new Set<string>()
  for (const a of job.attempts) {
    const k = `${a.key}/${a.attempt}`
    expect(seen.has(k), `job ${job.id} attempt ${k} recorded twice`).toBe(false)
    seen.add(k)
  }
}

describe("Recovery", () => {
  it.scopedLive("a restarted conductor on the same SQLite file finishes every job, records nothing twice, reuses no id", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
      const config = { path: path.join(dir, "orchestra.db"), synchronous: "NORMAL" as const }

      // ---- the first conductor -------------------------------------------------
      const first = yield* Scope.make()
      const store1 = yield* StoreSqlite.make(config).pipe(Scope.extend(first))
      const h1 = yield* harness({ allowlist: ["p1", "p2"], store: store1, hub: new TransportMemory.Hub() }).pipe(Scope.extend(first))
      // p1 answers the early jobs at once and holds the others; p2 stays away
      const p1 = new FakePlayer(
        p("p1"),
        (a) => ((a.params as { readonly phase?: string }).phase === "early" ? { outcome: "OK", response: { early: "yes" } } : "hold"),
        { slots: 2 }
      )
      yield* p1.connect(h1.hub)
      const early: Array<Names.JobId> = []
      for (let i = 0; i < 10; i++) early.push(yield* submit(h1, { players: ["p1", "p2"], params: { phase: "early" } }))
      for (const id of early) expect((yield* waitJob(h1.store, id)).state).toBe("OK")
      yield* waitFor("the early results to be acked", Effect.sync(() => p1.acked.length === 10))
      const late: Array<Names.JobId> = []
      for (let i = 0; i < 200; i++) late.push(yield* submit(h1, { players: ["p1", "p2"], params: { i: String(i) } }))
      const allOf: Array<Names.JobId> = []
      for (let i = 0; i < 5; i++) allOf.push(yield* submit(h1, { players: ["p1", "p2"], policy: "all-of" }))
      yield* waitFor("p1 to hold two attempts", Effect.sync(() => p1.holding.length === 2))
      const stats = yield* h1.conductor.engine.stats
      // 198 one-of tasks, and the 5 all-of tasks for each of p1 and p2
      expect(stats.queued).toBe(208)
      const heldAcrossRestart = [...p1.holding]
      const oldMax = Math.max(...early, ...late, ...allOf)
      yield* p1.disconnect()
      yield* Scope.close(first, Exit.void)

      // ---- the second conductor on the same file ----------------------------------
      const store2 = yield* StoreSqlite.make(config)
      const h2 = yield* harness({ allowlist: ["p1", "p2"], store: store2, hub: new TransportMemory.Hub() })
      expect(h2.conductor.resumed).toBe(205)
      // p1 comes back still running its two attempts, then answers everything at once
      p1.behavior = () => ({ outcome: "OK" })
      yield* p1.connect(h2.hub)
      const p2 = new FakePlayer(p("p2"))
      yield* p2.connect(h2.hub)
      // a retransmission of a result recorded before the restart: acked, not recorded again
      const ackedBefore = p1.acked.length
      const old = yield* getJob(h2.store, early[0]!)
      const oldRef = { job: early[0]!, key: Names.taskKey("0"), attempt: old.attempts[0]!.attempt }
      yield* p1.send(new Protocol.Results({ results: [{ ref: oldRef, outcome: "FAIL", response: {}, log: "", finishedAt: 1 }] }))
      yield* waitFor("the retransmission to be acked", Effect.sync(() => p1.acked.slice(ackedBefore).some((r) => Names.taskRefString(r) === Names.taskRefString(oldRef))))
      expect(endedOf(yield* getJob(h2.store, early[0]!))).toEqual(["p1:0/1=OK"])
      // the held attempts were not sent again
      yield* Effect.sleep(20)
      for (const id of heldAcrossRestart) expect(p1.receivedIds().filter((r) => r === id).length).toBe(1)
      for (const id of heldAcrossRestart) yield* p1.complete(id, "OK", { held: "across" })

      for (const id of [...late, ...allOf]) {
        const job = yield* waitJob(h2.store, id, 30_000)
        expect(job.state).toBe("OK")
        noDuplicates(job)
      }
      for (const id of late) {
        const job = yield* getJob(h2.store, id)
        expect(endedOf(job).filter((e) => e.endsWith("=OK")).length).toBe(1)
      }
      for (const ref of heldAcrossRestart) {
        const [job] = ref.split("/")
        const rec = yield* getJob(h2.store, Names.jobId(Number(job)))
        expect(rec.attempts.find((a) => `${job}/${a.key}/${a.attempt}` === ref)?.response).toEqual({ held: "across" })
      }
      const fresh = yield* submit(h2, { players: ["p2"] })
      expect(fresh).toBeGreaterThan(oldMax)
      expect((yield* waitJob(h2.store, fresh)).state).toBe("OK")
      expect(yield* h2.conductor.engine.stats).toMatchObject({ jobs: 0, queued: 0, openAttempts: 0 })
    }), 60_000)

  it.scopedLive("replay follows the recorded order: a one-of job that failed over resumes on the next player", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
      const config = { path: path.join(dir, "orchestra.db"), synchronous: "NORMAL" as const }
      const first = yield* Scope.make()
      const store1 = yield* StoreSqlite.make(config).pipe(Scope.extend(first))
      const h1 = yield* harness({ allowlist: ["a", "b", "c"], store: store1, hub: new TransportMemory.Hub() }).pipe(Scope.extend(first))
      const a = new FakePlayer(p("a"), () => ({ outcome: "UNK_SCORE" }))
      yield* a.connect(h1.hub)
      const id = yield* submit(h1, { players: ["a", "b", "c"] })
      yield* waitFor("a's refusal to be recorded", Effect.map(getJob(h1.store, id), (j) => endedOf(j).length === 1))
      yield* a.disconnect()
      yield* Scope.close(first, Exit.void)

      const store2 = yield* StoreSqlite.make(config)
      const h2 = yield* harness({ allowlist: ["a", "b", "c"], store: store2, hub: new TransportMemory.Hub() })
      expect(h2.conductor.resumed).toBe(1)
      // a comes back first: the policy already disqualified it, so it gets nothing
      const a2 = new FakePlayer(p("a"))
      yield* a2.connect(h2.hub)
      const c = new FakePlayer(p("c"))
      yield* c.connect(h2.hub)
      const job = yield* waitJob(h2.store, id)
      expect(job.state).toBe("OK")
      expect(endedOf(job)).toEqual(["a:0/1=UNK_SCORE", "c:0/2=OK"])
      expect(a2.received.length).toBe(0)
    }))

  it.scopedLive("a job whose policy finished but whose finish was not recorded is finished at start-up", () =>
    Effect.gen(function*() {
      const dir = tempDir()
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
      const config = { path: path.join(dir, "orchestra.db"), synchronous: "NORMAL" as const }
      // write the history directly: a job whose only task ended OK, still PENDING
      const first = yield* Scope.make()
      const store1 = yield* StoreSqlite.make(config).pipe(Scope.extend(first))
      const { id } = yield* store1.createJob({
        request: new (yield* Effect.succeed((yield* Effect.promise(() => import("@orchestra/core"))).Job.JobRequest))({
          score: Names.scoreName("noop"),
          players: [p("a")],
          policy: { name: "one-of", options: {} },
          params: {},
          labels: {}
        }),
        targets: [p("a")],
        createdAt: 1
      })
      const ref = { job: id, key: Names.taskKey("0"), attempt: 1 }
      yield* store1.recordDispatch({ ref, player: p("a"), at: 2 })
      yield* store1.recordEnd({ ref, player: p("a"), outcome: "OK", response: {}, finishedAt: 3 })
      yield* Scope.close(first, Exit.void)

      const store2 = yield* StoreSqlite.make(config)
      const h2 = yield* harness({ allowlist: ["a"], store: store2, hub: new TransportMemory.Hub() })
      expect(h2.conductor.resumed).toBe(1)
      const job = yield* waitJob(h2.store, id)
      expect(job.state).toBe("OK")
      expect(endedOf(job)).toEqual(["a:0/1=OK"])
    }))
})
