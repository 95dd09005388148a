/**
 * Crash test: a child process (test/crash-child.mjs, on the built store)
 * writes jobs and results as fast as it can and prints every write once it
 * is committed; it is killed with SIGKILL at a random moment after a random
 * number of acknowledgements, several rounds on the same database. After
 * each kill the database must open, pass `PRAGMA integrity_check`, hold
 * every acknowledged write, hold no second result of any attempt, and hand
 * out only ids above every id handed out before.
 *
 * Needs the build (`npx tsc -b`): the child imports `@orchestra/store-sqlite`.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Job, Names } from "@orchestra/core"
import { Effect, Option, Schema } from "effect"
import type { ChildProcess } from "node:child_process"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { StoreSqlite } from "../src/index.js"

const childScript = fileURLToPath(new URL("./crash-child.mjs", import.meta.url))
const builtIndex = fileURLToPath(new URL("../dist/index.js", import.meta.url))

const ROUNDS = 5
const ROUND_TIMEOUT_MS = 40_000

const children = new Set<ChildProcess>()
const dirs: Array<string> = []

afterEach(() => {
  for (const child of children) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, "SIGKILL")
      } catch {
        // already gone
      }
    }
  }
  children.clear()
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
})

interface Round {
  readonly lines: ReadonlyArray<string>
  readonly killedAfter: number
}

/** Run the child until it has acknowledged `killAfter` writes, wait `delayMs`, kill -9 it, and return what it printed. */
const runRound = (file: string, round: number, killAfter: number, delayMs: number): Promise<Round> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [childScript, file, String(round)], { stdio: ["ignore", "pipe", "pipe"] })
    children.add(child)
    const lines: Array<string> = []
    let pending = ""
    let stderr = ""
    let acks = 0
    let killing = false
    const kill = () => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, "SIGKILL")
    }
    const timer = setTimeout(() => {
      kill()
      reject(new Error(`round ${round}: no ${killAfter} acknowledgements within ${ROUND_TIMEOUT_MS} ms (got ${acks}); stderr: ${stderr}`))
    }, ROUND_TIMEOUT_MS)
    child.stdout.setEncoding("utf8")
    child.stdout.on("data", (chunk: string) => {
      pending += chunk
      const parts = pending.split("\n")
      pending = parts.pop() ?? ""
      for (const line of parts) {
        lines.push(line)
        if (line !== "READY") acks++
      }
      if (!killing && acks >= killAfter) {
        killing = true
        setTimeout(kill, delayMs)
      }
    })
    child.stderr.setEncoding("utf8")
    child.stderr.on("data", (chunk: string) => {
      stderr += chunk
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      children.delete(child)
      if (signal !== "SIGKILL") {
        reject(new Error(`round ${round}: the child ended by itself (code ${code}); stderr: ${stderr}`))
      } else {
        resolve({ lines, killedAfter: acks })
      }
    })
  })

interface Acknowledged {
  readonly created: Set<number>
  readonly ended: Map<number, string>
  readonly finished: Map<number, string>
}

const openClient = (file: string) =>
  SqliteClient.make({ filename: file }).pipe(Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make))

/** Low-level checks on the file: integrity, unique results, the highest id. */
const inspect = (file: string) =>
  Effect.scoped(Effect.gen(function*() {
    const sql = yield* openClient(file)
    const integrity = yield* sql<{ readonly integrity_check: string }>`PRAGMA integrity_check`
    const duplicates = yield* sql`SELECT job_id, task_key, attempt, COUNT(*) AS n FROM orchestra_results
      GROUP BY job_id, task_key, attempt HAVING COUNT(*) > 1`
    const cancelled = yield* sql`SELECT job_id FROM orchestra_results WHERE outcome = 'CANCELLED'`
    const orphans = yield* sql`SELECT r.job_id FROM orchestra_results r LEFT JOIN orchestra_attempts a
      ON a.job_id = r.job_id AND a.task_key = r.task_key AND a.attempt = r.attempt WHERE a.job_id IS NULL`
    return {
      integrity: integrity.map((r) => r.integrity_check),
      duplicates: duplicates.length,
      cancelled: cancelled.length,
      orphans: orphans.length
    }
  }))

const request = Schema.decodeUnknownSync(Job.JobRequest)({ score: "after-crash", policy: { name: "one-of" } })

describe("crash (kill -9) of a process writing to the store", () => {
  it("keeps every acknowledged write, stays intact, never reuses an id nor records a result twice", async () => {
    if (!fs.existsSync(builtIndex)) throw new Error(`build the package first (npx tsc -b): ${builtIndex} is missing`)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchestra-crash-"))
    dirs.push(dir)
    const file = path.join(dir, "state", "orchestra.db")
    fs.mkdirSync(path.dirname(file))
    const acked: Acknowledged = { created: new Set(), ended: new Map(), finished: new Map() }
    let highest = 0
    const plan: Array<string> = []

    for (let round = 1; round <= ROUNDS; round++) {
      const killAfter = 20 + Math.floor(Math.random() * 600)
      const delayMs = Math.floor(Math.random() * 25)
      plan.push(`round ${round}: kill after ${killAfter} acks + ${delayMs} ms`)
      const { lines } = await runRound(file, round, killAfter, delayMs)
      expect(lines[0], plan.join("; ")).toBe("READY")

      const roundIds: Array<number> = []
      for (const line of lines.slice(1)) {
        const [tag, idText, value] = line.split(" ")
        const id = Number(idText)
        switch (tag) {
          case "C":
            expect(acked.created.has(id), `id ${id} handed out twice (${plan.join("; ")})`).toBe(false)
            acked.created.add(id)
            roundIds.push(id)
            break
          case "E":
            acked.ended.set(id, value!)
            break
          case "D":
            expect(value, `a duplicate result of job ${id} was recorded`).toBe("false")
            break
          case "F":
            acked.finished.set(id, value!)
            break
          default:
            throw new Error(`unexpected line from the child: ${JSON.stringify(line)}`)
        }
      }
      // Every id of this round is above every id handed out before it, by the child or by this test.
      expect(Math.min(...roundIds), plan.join("; ")).toBeGreaterThan(highest)
      highest = Math.max(highest, ...roundIds)

      const file_ = await Effect.runPromise(inspect(file))
      expect(file_.integrity).toEqual(["ok"])
      expect(file_.duplicates).toBe(0)
      expect(file_.cancelled).toBe(0)
      expect(file_.orphans).toBe(0)

      // Reopen through the store: every acknowledged write is there, and a new id is above all.
      const fresh = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const store = yield* StoreSqlite.make({ path: file })
        const missing: Array<string> = []
        for (const id of acked.created) {
          const job = yield* store.getJob(Names.jobId(id))
          if (Option.isNone(job)) {
            missing.push(`job ${id}`)
            continue
          }
          const want = acked.ended.get(id)
          if (want !== undefined) {
            const results = job.value.attempts.filter((a) => a.outcome !== undefined)
            if (results.length !== 1 || results[0]!.outcome !== want) missing.push(`result ${want} of job ${id}`)
            else if (results[0]!.response?.id !== String(id) || results[0]!.log !== `log of ${id}`) {
              missing.push(`response of job ${id}`)
            }
          }
          const state = acked.finished.get(id)
          if (state !== undefined && job.value.state !== state) missing.push(`state ${state} of job ${id}`)
        }
        const created = yield* store.createJob({ request, targets: [Names.playerName("p0")], createdAt: Date.now() })
        return { missing, id: created.id }
      })))
      expect(fresh.missing, plan.join("; ")).toEqual([])
      expect(fresh.id).toBeGreaterThan(highest)
      highest = fresh.id
    }
    // Enough happened for the test to mean something.
    expect(acked.created.size).toBeGreaterThan(ROUNDS * 5)
    expect(acked.ended.size).toBeGreaterThan(0)
    expect(acked.finished.size).toBeGreaterThan(0)
  }, 240_000)
})
