/**
 * kill -9 of the conductor: with 200 jobs queued on players with few slots
 * (twice: once while jobs are still being submitted, once while the queue
 * drains), every accepted job completes with a complete players map, no
 * attempt has two results, ids are strictly increasing and never reused;
 * and a task re-dispatched after a restart (still running, or finished
 * while the conductor was down) never leaves its one-slot player stuck; a
 * job for a player that was never online survives the crash too.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import {
  alive,
  databaseFile,
  openDatabase,
  outcomes,
  players,
  pollUntil,
  processesWithEnv,
  request,
  sharedCluster,
  statusOf,
  submit,
  waitJob,
  writeScoreDir
} from "./support/Harness.js"
import type { Cluster } from "./support/Harness.js"
import * as Scores from "./support/Scores.js"

let ticks = ""

const shared = sharedCluster("conductor-crash", (dir) => {
  ticks = path.join(dir, "ticks.log")
  fs.writeFileSync(ticks, "")
  const scores = writeScoreDir(path.join(dir, "scores"), { tick: Scores.tick(ticks) }, { samples: false })
  return {
    options: {
      players: [
        { name: "p1", scores, slots: 1 },
        { name: "p2", scores, slots: 1 },
        { name: "solo", scores, slots: 1 },
        { name: "late", scores, slots: 1 }
      ]
    },
    start: ["p1", "p2", "solo"]
  }
})
const c = shared.cluster

/** Task ids (`job/key/attempt`) the score has run, with how often. */
const ranTasks = (): Map<string, number> => {
  const counts = new Map<string, number>()
  for (const line of fs.readFileSync(ticks, "utf8").split("\n")) {
    if (line.length > 0) counts.set(line, (counts.get(line) ?? 0) + 1)
  }
  return counts
}

/** Queue with an idempotency key (not in the client's typed request): the job id. */
const queueKeyed = (cluster: Cluster, body: Record<string, unknown>) =>
  Effect.flatMap(request(cluster.socket, { op: "queue", ...body }), (reply) =>
    Array.isArray(reply) && reply[0] === "OK" && typeof reply[1] === "number"
      ? Effect.succeed(reply[1])
      : Effect.fail(new Error(`queue refused: ${JSON.stringify(reply)}`)))

const crash = Effect.gen(function*() {
  yield* c().stopConductor("SIGKILL")
  yield* c().startConductor
})

/** Make sure the conductor runs (a test that failed half-way may have left it stopped). */
const ensureConductor = Effect.suspend(() => (c().conductor()?.isRunning() === true ? Effect.void : Effect.asVoid(c().startConductor)))

/** Wait until the score process of a task runs on its player (not merely assigned by the conductor). */
const scoreRunning = (task: string) =>
  pollUntil(
    `the score process of task ${task}`,
    Effect.sync(() => (processesWithEnv([`ORC_TASK_ID=${task}`]).filter(alive).length > 0 ? Option.some(true) : Option.none())),
    { interval: 25 }
  )

const runningOn = (name: string, n: number) =>
  pollUntil(
    `${name} to run ${n} task(s)`,
    Effect.map(players(c()), (ps) => (ps[name]?.running === n && ps[name]?.online === true ? Option.some(true) : Option.none()))
  )

describe("conductor crash", () => {
  it.live("a task still running when the conductor is killed is not run again, and its one-slot player keeps taking work; jobs for a player never online survive too", () =>
    Effect.gen(function*() {
      yield* ensureConductor
      const a = yield* submit(c(), { score: "tick", players: ["solo"], scope: "all", params: { seconds: 3 } })
      // and two jobs waiting for "late", which has never been online
      const lateAll = yield* submit(c(), { score: "tick", players: ["p1", "late"], scope: "all", params: {} })
      const lateOne = yield* submit(c(), { score: "tick", players: ["late"], scope: "one", params: {} })
      yield* scoreRunning(`${a}/solo/1`)
      yield* pollUntil(
        "p1's part of the all-of job",
        Effect.map(statusOf(c(), lateAll), (s) => (s.players["p1"] !== undefined ? Option.some(true) : Option.none()))
      )
      yield* crash
      const s = yield* waitJob(c(), a, Duration.seconds(30))
      expect(s).toEqual({ status: "OK", players: { solo: { status: "OK", response: { job: String(a) } } } })
      expect(ranTasks().get(`${a}/solo/1`)).toBe(1)
      const more = yield* Effect.forEach([1, 2, 3], () => submit(c(), { score: "tick", players: ["solo"], scope: "one", params: {} }))
      for (const id of more) expect((yield* waitJob(c(), id, Duration.seconds(30))).status).toBe("OK")
      yield* runningOn("solo", 0)

      expect((yield* statusOf(c(), lateOne)).status).toBe("PENDING")
      yield* c().startPlayer("late")
      const la = yield* waitJob(c(), lateAll, Duration.seconds(30))
      const lo = yield* waitJob(c(), lateOne, Duration.seconds(30))
      expect(la.status).toBe("OK")
      expect(outcomes(la)).toEqual({ p1: "OK", late: "OK" })
      expect(lo).toEqual({ status: "OK", players: { late: { status: "OK", response: { job: String(lateOne) } } } })
    }).pipe(shared.withLogs))

  it.live("a task that finished while the conductor was down is recorded once, and its one-slot player keeps taking work", () =>
    Effect.gen(function*() {
      yield* ensureConductor
      const d = yield* submit(c(), { score: "tick", players: ["solo"], scope: "all", params: { seconds: 2 } })
      yield* scoreRunning(`${d}/solo/1`)
      yield* c().stopConductor("SIGKILL")
      // the score ends while no conductor listens: its result waits in the player's outbox
      yield* pollUntil(
        `task ${d} to finish on solo`,
        Effect.sync(() => (ranTasks().has(`${d}/solo/1`) ? Option.some(true) : Option.none())),
        { timeout: 15_000 }
      )
      yield* c().startConductor
      const s = yield* waitJob(c(), d, Duration.seconds(30))
      expect(s).toEqual({ status: "OK", players: { solo: { status: "OK", response: { job: String(d) } } } })
      const more = yield* Effect.forEach([1, 2, 3], () => submit(c(), { score: "tick", players: ["solo"], scope: "all", params: {} }))
      for (const id of more) expect((yield* waitJob(c(), id, Duration.seconds(30))).status).toBe("OK")
      expect(ranTasks().get(`${d}/solo/1`)).toBe(1)
      yield* runningOn("solo", 0)
      const db = openDatabase(databaseFile(c()))
      try {
        const rows = db.prepare("SELECT attempt, outcome FROM orchestra_results WHERE job_id = ?").all(d)
        expect(rows).toEqual([{ attempt: 1, outcome: "OK" }])
      } finally {
        db.close()
      }
    }).pipe(shared.withLogs))

  it.live("200 queued jobs survive two kill -9 of the conductor: each completes once, ids increase and are never reused", () =>
    Effect.gen(function*() {
      yield* ensureConductor
      const JOBS = 200
      const accepted: Array<{ readonly i: number; readonly id: number; readonly all: boolean }> = []
      let refusedOnce = 0
      const submitter = yield* Effect.fork(
        Effect.forEach(
          Array.from({ length: JOBS }, (_, i) => i),
          (i) =>
            Effect.gen(function*() {
              const all = i % 4 === 3
              const body = {
                score: "tick",
                players: i % 2 === 0 ? ["p1", "p2"] : ["p2", "p1"],
                scope: all ? "all" : "one",
                params: { seconds: 0.02 },
                idempotencyKey: `crash-${i}`
              }
              // a client retries while the conductor is down; the key makes that safe
              for (let attempt = 0; attempt < 600; attempt++) {
                const r = yield* Effect.either(queueKeyed(c(), body))
                if (r._tag === "Right") {
                  accepted.push({ i, id: r.right, all })
                  return
                }
                refusedOnce++
                yield* Effect.sleep(Duration.millis(50))
              }
              return yield* Effect.fail(new Error(`job ${i} was never accepted`))
            }),
          { discard: true }
        )
      )
      // first crash: in the middle of the submissions
      yield* pollUntil("100 accepted jobs", Effect.sync(() => (accepted.length >= 100 ? Option.some(true) : Option.none())))
      yield* crash
      yield* Fiber.join(submitter)
      expect(accepted).toHaveLength(JOBS)
      // second crash: while the queue drains (250 tasks on two one-slot players)
      const tasks = accepted.reduce((n, a) => n + (a.all ? 2 : 1), 0)
      const before = ranTasks().size
      expect(before, "the queue should still be long").toBeLessThan(tasks - 20)
      yield* crash

      const finals = yield* Effect.forEach(accepted, (a) => Effect.map(waitJob(c(), a.id, Duration.seconds(90)), (s) => ({ ...a, s })))
      const wrong: Array<string> = []
      for (const f of finals) {
        const o = outcomes(f.s)
        const ok = f.s.status === "OK" &&
          (f.all
            ? JSON.stringify(o) === JSON.stringify({ p1: "OK", p2: "OK" }) || JSON.stringify(o) === JSON.stringify({ p2: "OK", p1: "OK" })
            : Object.keys(o).length === 1 && Object.values(o)[0] === "OK") &&
          Object.values(f.s.players).every((r) => r.response["job"] === String(f.id))
        if (!ok) wrong.push(`job ${f.id} (${f.all ? "all" : "one"}): ${JSON.stringify(f.s)}`)
      }
      expect(wrong, wrong.join("\n")).toEqual([])

      // ids: strictly increasing in submission order, and the same key gave the same job
      const byOrder = [...accepted].sort((x, y) => x.i - y.i)
      for (let k = 1; k < byOrder.length; k++) expect(byOrder[k]!.id).toBeGreaterThan(byOrder[k - 1]!.id)
      expect(new Set(accepted.map((a) => a.id)).size).toBe(JOBS)

      const db = openDatabase(databaseFile(c()))
      let maxBefore = 0
      try {
        const dupResults = db.prepare(
          "SELECT job_id, task_key, attempt, COUNT(*) AS n FROM orchestra_results GROUP BY job_id, task_key, attempt HAVING n > 1"
        ).all()
        expect(dupResults).toEqual([])
        const dupAttempts = db.prepare(
          "SELECT job_id, task_key, attempt, COUNT(*) AS n FROM orchestra_attempts GROUP BY job_id, task_key, attempt HAVING n > 1"
        ).all()
        expect(dupAttempts).toEqual([])
        // no task of these all-OK jobs has a second result (another attempt)
        const twice = db.prepare(
          "SELECT job_id, task_key, COUNT(*) AS n FROM orchestra_results WHERE job_id >= ? GROUP BY job_id, task_key HAVING n > 1"
        ).all(byOrder[0]!.id)
        expect(twice).toEqual([])
        // every result belongs to a recorded attempt
        const orphanResults = db.prepare(
          "SELECT r.job_id, r.task_key, r.attempt FROM orchestra_results r LEFT JOIN orchestra_attempts a ON a.job_id = r.job_id AND a.task_key = r.task_key AND a.attempt = r.attempt WHERE a.job_id IS NULL"
        ).all()
        expect(orphanResults).toEqual([])
        // the keyed jobs are exactly the accepted ones: a retried submission made no second job
        const keyed = db.prepare("SELECT id, idempotency_key AS k, state FROM orchestra_jobs WHERE idempotency_key LIKE 'crash-%' ORDER BY id").all()
        expect(keyed.map((r) => Number(r["id"]))).toEqual(byOrder.map((a) => a.id))
        expect(keyed.every((r) => r["state"] === "OK")).toBe(true)
        maxBefore = Number(db.prepare("SELECT MAX(id) AS m FROM orchestra_jobs").get()?.["m"])
      } finally {
        db.close()
      }
      // every task ran (at least once; execution is at-least-once across crashes)
      const ran = ranTasks()
      const missing: Array<string> = []
      for (const a of accepted) {
        const keys = a.all ? ["p1", "p2"] : ["0"]
        for (const k of keys) if (![...ran.keys()].some((t) => t.startsWith(`${a.id}/${k}/`))) missing.push(`${a.id}/${k}`)
      }
      expect(missing).toEqual([])
      const reRun = [...ran.entries()].filter(([, n]) => n > 1)
      console.log(`conductor crash: ${refusedOnce} submissions retried while the conductor was down; ${before} of ${tasks} tasks had run before the second crash; ${reRun.length} task attempt(s) executed more than once`)

      // after the restarts: new ids are greater than every earlier one, and the players take work
      const after = yield* Effect.forEach(Array.from({ length: 10 }, (_, i) => i), (i) =>
        submit(c(), { score: "tick", players: i % 2 === 0 ? ["p1"] : ["p2", "p1"], scope: i % 3 === 0 ? "all" : "one", params: {} }))
      for (let k = 0; k < after.length; k++) {
        expect(after[k]!).toBeGreaterThan(maxBefore)
        if (k > 0) expect(after[k]!).toBeGreaterThan(after[k - 1]!)
      }
      for (const id of after) expect((yield* waitJob(c(), id, Duration.seconds(30))).status).toBe("OK")
      yield* runningOn("p1", 0)
      yield* runningOn("p2", 0)
    }).pipe(shared.withLogs))
})
