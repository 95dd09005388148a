/**
 * The scheduling policies with real players over mutual TLS, jobs queued on
 * the audience socket: ordered stages (build on one-of → canary on one
 * player → rolling over four), a failing stage skipping the rest, rolling
 * aborting past `maxFailures` (the remaining players never start), the
 * sample quorum policy loaded from its path, targeting by labels, and a
 * user's plugin that throws — which fails only its own job.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { databaseFile, openDatabase, outcomes, sharedCluster, submit, waitJob, writeScoreDir } from "./support/Harness.js"

const require = createRequire(import.meta.url)
const repo = path.resolve(__dirname, "..")
const quorum = path.join(repo, "samples", "policies", "dist", "quorum.js")
const canary = path.join(repo, "samples", "policies", "dist", "canary.js")
let attempts = ""

const shared = sharedCluster("policies", (dir) => {
  // A user's policy that throws when a task ends (and one that throws at start).
  const thrower = path.join(dir, "thrower.mjs")
  const core = pathToFileURL(require.resolve("@orchestra/core")).href
  const effect = pathToFileURL(require.resolve("effect")).href
  fs.writeFileSync(thrower, `import { Names, Policy } from ${JSON.stringify(core)}
import { Schema } from ${JSON.stringify(effect)}
export default () => [
  Policy.make({
    name: "throws-on-outcome",
    description: "throws when its task ends",
    options: Schema.Struct({}),
    start: ({ players }) => ({ state: {}, actions: [{ _tag: "Run", key: Names.taskKey("0"), players }] }),
    onTaskEnded: () => { throw new Error("kaboom in onTaskEnded") }
  }),
  Policy.make({
    name: "throws-at-start",
    description: "throws at once",
    options: Schema.Struct({}),
    start: () => { throw new TypeError("cannot start") },
    onTaskEnded: (state) => ({ state, actions: [] })
  })
]
`)
  // A score that fails until the attempt it is told to succeed on, noting what it was told.
  attempts = path.join(dir, "attempts.txt")
  fs.writeFileSync(attempts, "")
  const scores = writeScoreDir(path.join(dir, "scores"), {
    flaky: {
      script: `#!/bin/sh\necho "$ORC_JOB_ID $ORC_PLAYER $ORC_TASK_ID $ORC_ATTEMPT" >> ${attempts}\n[ "$ORC_ATTEMPT" -ge "$ORC_ok_on" ] || { echo "attempt $ORC_ATTEMPT fails" >&2; exit 1; }\n`,
      manifest: "interface: env\nparameters:\n  type: object\n  required: [ok_on]\n  properties:\n    ok_on: { type: integer, minimum: 1 }\n"
    }
  })
  return {
    options: {
      players: [
        { name: "p1", labels: { role: "build", dc: "syd1" }, scores },
        { name: "p2", labels: { role: "web", dc: "syd1" }, scores },
        { name: "p3", labels: { role: "web", dc: "syd1" }, scores },
        { name: "p4", labels: { role: "web", dc: "mel1" }, scores }
      ],
      conductorConfig: { plugins: [quorum, canary, thrower] }
    }
  }
})
const c = shared.cluster
const all = ["p1", "p2", "p3", "p4"]

describe("stages", () => {
  it.live("build on one-of, canary on one player, rolling over four: every stage runs in order and the job is OK", () =>
    Effect.gen(function*() {
      const id = yield* submit(c(), {
        score: "echo",
        players: all,
        policy: "stages",
        options: {
          stages: [
            { name: "build", players: ["p1"], policy: { name: "one-of" } },
            { name: "canary", players: ["p2"], policy: { name: "all-of" } },
            { name: "rollout", players: all, policy: { name: "rolling", options: { batch: 2 } } }
          ]
        },
        params: { message: "v1" }
      })
      const s = yield* waitJob(c(), id)
      expect(s.status).toBe("OK")
      expect(outcomes(s)).toEqual({ p1: "OK", p2: "OK", p3: "OK", p4: "OK" })
    }).pipe(shared.withLogs))

  it.live("a stage that fails skips the stages after it: their players never run, and the job says so", () =>
    Effect.gen(function*() {
      const id = yield* submit(c(), {
        score: "fail",
        players: all,
        policy: "stages",
        options: {
          stages: [
            { name: "canary", players: ["p2"], policy: { name: "all-of" } },
            { name: "rollout", players: ["p3", "p4"], policy: { name: "all-of" } }
          ]
        },
        params: {}
      })
      const s = yield* waitJob(c(), id)
      expect(s.status).toBe("FAIL")
      expect(outcomes(s)).toEqual({ p2: "FAIL" })
    }).pipe(shared.withLogs))
})

describe("rolling", () => {
  it.live("aborts once failures pass maxFailures: the remaining players never start", () =>
    Effect.gen(function*() {
      const id = yield* submit(c(), { score: "fail", players: all, policy: "rolling", options: { batch: 1, maxFailures: 1 }, params: {} })
      const s = yield* waitJob(c(), id)
      expect(s.status).toBe("FAIL")
      // batch 1 fails (1 ≤ maxFailures), batch 2 fails (2 > 1): abort; p3, p4 never ran
      expect(outcomes(s)).toEqual({ p1: "FAIL", p2: "FAIL" })
    }).pipe(shared.withLogs))

  it.live("batches of 50% over the players a selector matches, OK", () =>
    Effect.gen(function*() {
      const id = yield* submit(c(), { score: "echo", players: [], selector: { role: "web" }, policy: "rolling", options: { batch: "50%" }, params: { message: "web" } })
      const s = yield* waitJob(c(), id)
      expect(s.status).toBe("OK")
      expect(outcomes(s)).toEqual({ p2: "OK", p3: "OK", p4: "OK" })
    }).pipe(shared.withLogs))
})

describe("a user's policies loaded by path", () => {
  it.live("the sample quorum policy: OK once k of n ended OK", () =>
    Effect.gen(function*() {
      const id = yield* submit(c(), { score: "echo", players: all, policy: "quorum", options: { k: 2 }, params: { message: "q" } })
      const s = yield* waitJob(c(), id)
      expect(s.status).toBe("OK")
      const ok = Object.values(outcomes(s)).filter((o) => o === "OK").length
      expect(ok).toBeGreaterThanOrEqual(2)
      for (const o of Object.values(outcomes(s))) expect(["OK", "CANCELLED"]).toContain(o)
    }).pipe(shared.withLogs))

  it.live("quorum FAILs once k can no longer be reached", () =>
    Effect.gen(function*() {
      const id = yield* submit(c(), { score: "fail", players: all, policy: "quorum", options: { k: 3 }, params: {} })
      const s = yield* waitJob(c(), id)
      expect(s.status).toBe("FAIL")
    }).pipe(shared.withLogs))

  it.live("a plugin that throws fails only its own job, with the reason; the conductor goes on", () =>
    Effect.gen(function*() {
      const onOutcome = yield* submit(c(), { score: "echo", players: ["p1"], policy: "throws-on-outcome", params: { message: "x" } })
      const atStart = yield* submit(c(), { score: "echo", players: ["p1"], policy: "throws-at-start", params: { message: "x" } })
      const a = yield* waitJob(c(), onOutcome)
      const b = yield* waitJob(c(), atStart)
      expect(a.status).toBe("FAIL")
      expect(b.status).toBe("FAIL")
      const after = yield* submit(c(), { score: "echo", players: ["p1", "p2"], scope: "all", params: { message: "still here" } })
      expect((yield* waitJob(c(), after)).status).toBe("OK")
      expect(c().conductor()?.isRunning()).toBe(true)
      // each job's recorded reason names the policy and what it threw
      const db = openDatabase(databaseFile(c()))
      try {
        const reason = (id: number) => String(db.prepare("SELECT reason FROM orchestra_jobs WHERE id = ?").get(id)?.["reason"])
        expect(reason(onOutcome)).toContain(`policy "throws-on-outcome" threw on an outcome of task 0: kaboom in onTaskEnded`)
        expect(reason(atStart)).toMatch(/^policy "throws-at-start" threw at start: .*cannot start/)
      } finally {
        db.close()
      }
    }).pipe(shared.withLogs))
})

describe("the sample canary policy, loaded by path", () => {
  it.live("the canary first; once it is OK, the rest (rolling)", () =>
    Effect.gen(function*() {
      const id = yield* submit(c(), { score: "echo", players: all, policy: "canary", options: { canary: "p3", then: "rolling" }, params: { message: "c" } })
      const s = yield* waitJob(c(), id)
      expect(s.status).toBe("OK")
      expect(outcomes(s)).toEqual({ p1: "OK", p2: "OK", p3: "OK", p4: "OK" })
      // p3 ended before any of the others started (the store keeps each attempt's times)
      const db = openDatabase(databaseFile(c()))
      try {
        const rows = db.prepare(
          `SELECT a.player, a.dispatched_at, r.finished_at FROM orchestra_attempts a
           JOIN orchestra_results r ON r.job_id = a.job_id AND r.task_key = a.task_key AND r.attempt = a.attempt
           WHERE a.job_id = ?`
        ).all(id)
        expect(rows.length).toBe(4)
        const canaryEnd = Number(rows.find((r) => r["player"] === "p3")!["finished_at"])
        for (const r of rows.filter((r) => r["player"] !== "p3")) expect(Number(r["dispatched_at"])).toBeGreaterThanOrEqual(canaryEnd)
      } finally {
        db.close()
      }
    }).pipe(shared.withLogs))

  it.live("a canary that fails: FAIL, and the rest never run", () =>
    Effect.gen(function*() {
      const id = yield* submit(c(), { score: "fail", players: all, policy: "canary", options: { canary: 1 }, params: { code: 2 } })
      const s = yield* waitJob(c(), id)
      expect(s.status).toBe("FAIL")
      expect(outcomes(s)).toEqual({ p1: "FAIL" })
    }).pipe(shared.withLogs))
})

describe("retries and deadlines", () => {
  const seen = (id: number) =>
    fs.readFileSync(attempts, "utf8").split("\n").filter((l) => l.startsWith(`${id} `)).map((l) => l.split(" ").slice(1).join(" "))

  it.live("a failing score is retried with backoff until it succeeds; it sees its task id and the attempt number", () =>
    Effect.gen(function*() {
      const id = yield* submit(c(), { score: "flaky", players: ["p2"], scope: "one", params: { ok_on: 3 }, retry: { max: 3, backoffMs: 100 } })
      const s = yield* waitJob(c(), id)
      expect(s.status).toBe("OK")
      const lines = seen(id)
      expect(lines.length).toBe(3)
      // ORC_TASK_ID is <job>/<key>/<attempt>: the same task, attempt after attempt
      const taskIds = lines.map((l) => l.split(" ")[1]!)
      expect(new Set(taskIds.map((t) => t.replace(/\/\d+$/, ""))).size).toBe(1)
      expect(taskIds[0]!.startsWith(`${id}/`)).toBe(true)
      expect(lines.map((l) => l.split(" ")[2])).toEqual(["1", "2", "3"])
      expect(taskIds.map((t) => t.split("/").at(-1))).toEqual(["1", "2", "3"])
      expect(lines.every((l) => l.startsWith("p2 "))).toBe(true)
    }).pipe(shared.withLogs))

  it.live("retries run out: the job FAILs after max + 1 attempts", () =>
    Effect.gen(function*() {
      const id = yield* submit(c(), { score: "flaky", players: ["p1"], scope: "one", params: { ok_on: 9 }, retry: { max: 1, backoffMs: 50 } })
      const s = yield* waitJob(c(), id)
      expect(s.status).toBe("FAIL")
      expect(seen(id).map((l) => l.split(" ")[2])).toEqual(["1", "2"])
    }).pipe(shared.withLogs))

  it.live("without retries a failure is final", () =>
    Effect.gen(function*() {
      const id = yield* submit(c(), { score: "flaky", players: ["p1"], scope: "one", params: { ok_on: 2 } })
      expect((yield* waitJob(c(), id)).status).toBe("FAIL")
      expect(seen(id).length).toBe(1)
    }).pipe(shared.withLogs))

  it.live("a job deadline stops the running scores: TIMEOUT, long before they would have ended", () =>
    Effect.gen(function*() {
      const started = Date.now()
      const id = yield* submit(c(), { score: "sleep", players: ["p3", "p4"], scope: "all", params: { seconds: 30 }, deadline: Date.now() + 2_000 })
      const s = yield* waitJob(c(), id)
      expect(Date.now() - started).toBeLessThan(20_000)
      expect(s.status).toBe("FAIL")
      expect(outcomes(s)).toEqual({ p3: "TIMEOUT", p4: "TIMEOUT" })
    }).pipe(shared.withLogs))
})
