/**
 * Jobs end to end on one cluster of real processes: one-of and all-of
 * aggregates with per-player data, complete pipe and json responses,
 * fail-over on soft outcomes (also onto a busy player), a job for a player
 * that is not started yet, a player listed twice, invalid parameters —
 * refused at submission, and refused by a player that gets them anyway —
 * and complete `pipe` output every time: a score printing 2,000 lines and
 * exiting at once, run 200 times end to end.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Option } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import {
  databaseFile,
  openDatabase,
  outcomes,
  players,
  pollUntil,
  refused,
  sharedCluster,
  statusOf,
  submit,
  waitJob,
  writeScoreDir
} from "./support/Harness.js"
import * as Scores from "./support/Scores.js"

let markers = ""

const shared = sharedCluster("jobs", (dir) => {
  markers = path.join(dir, "markers")
  fs.mkdirSync(markers)
  const good = writeScoreDir(path.join(dir, "scores-good"), {
    check: Scores.check(false),
    where: Scores.where("/tmp"),
    whoami: Scores.whoami(),
    "many-keys": Scores.manyKeys,
    "big-json": Scores.bigJson,
    mark: Scores.mark(markers),
    lines: Scores.lines
  })
  // cello: no disk-usage, a `check` that fails, a `where` whose workdir does not
  // exist, a `whoami` that must run as a user that does not exist
  const odd = writeScoreDir(path.join(dir, "scores-odd"), {
    check: Scores.check(true),
    where: Scores.where("/nonexistent/orchestra-e2e"),
    whoami: Scores.whoami("orchestra-e2e-no-such-user"),
    "many-keys": Scores.manyKeys,
    "big-json": Scores.bigJson,
    lines: Scores.lines
  }, { without: ["disk-usage"] })
  return {
    options: {
      players: [
        { name: "viola", scores: good },
        { name: "cello", scores: odd },
        { name: "harp", scores: good },
        { name: "bass", scores: good, slots: 1 },
        { name: "late-a", scores: good },
        { name: "late-b", scores: good }
      ]
    },
    start: ["viola", "cello", "harp", "bass"]
  }
})
const c = shared.cluster

describe("aggregates and per-player data", () => {
  it.live("all-of OK: every player ran the score and reported its own response", () =>
    Effect.gen(function*() {
      const message = "hello = world, with spaces"
      const id = yield* submit(c(), { score: "echo", players: ["viola", "cello", "harp"], scope: "all", params: { message } })
      const s = yield* waitJob(c(), id)
      expect(s.status).toBe("OK")
      expect(s.players).toEqual({
        viola: { status: "OK", response: { message, length: String(message.length) } },
        cello: { status: "OK", response: { message, length: String(message.length) } },
        harp: { status: "OK", response: { message, length: String(message.length) } }
      })
    }).pipe(shared.withLogs))

  it.live("all-of PARTIAL_FAIL: the player whose `check` fails is FAIL with what it printed, the others OK", () =>
    Effect.gen(function*() {
      const id = yield* submit(c(), { score: "check", players: ["viola", "cello", "harp"], scope: "all", params: {} })
      const s = yield* waitJob(c(), id)
      expect(s.status).toBe("PARTIAL_FAIL")
      expect(s.players).toEqual({
        viola: { status: "OK", response: { result: "good", player: "viola" } },
        cello: { status: "FAIL", response: { result: "bad", player: "cello" } },
        harp: { status: "OK", response: { result: "good", player: "harp" } }
      })
    }).pipe(shared.withLogs))

  it.live("all-of FAIL when every task fails; one-of FAIL on a hard failure (no fail-over)", () =>
    Effect.gen(function*() {
      const all = yield* submit(c(), { score: "fail", players: ["viola", "harp"], scope: "all", params: { code: 3 } })
      const one = yield* submit(c(), { score: "fail", players: ["viola", "harp"], scope: "one", params: { code: 4 } })
      const a = yield* waitJob(c(), all)
      const o = yield* waitJob(c(), one)
      expect(a.status).toBe("FAIL")
      expect(outcomes(a)).toEqual({ viola: "FAIL", harp: "FAIL" })
      expect(o.status).toBe("FAIL")
      // a hard outcome is final: exactly one player tried
      expect(Object.values(outcomes(o))).toEqual(["FAIL"])
    }).pipe(shared.withLogs))

  it.live("one-of OK over the json interface: the response is the score's JSON object", () =>
    Effect.gen(function*() {
      const id = yield* submit(c(), { score: "deploy", players: ["harp", "viola"], scope: "one", params: { version: "2.0.1" } })
      const s = yield* waitJob(c(), id)
      expect(s.status).toBe("OK")
      const entries = Object.entries(s.players)
      expect(entries).toHaveLength(1)
      const [player, result] = entries[0]!
      expect(["harp", "viola"]).toContain(player)
      expect(result).toEqual({ status: "OK", response: { deployed: "2.0.1", host: os.hostname(), task: `${id}/0/1` } })
    }).pipe(shared.withLogs))

  it.live("pipe and json responses arrive complete (500 pipe keys with '=' in values; a 2,000-item JSON document)", () =>
    Effect.gen(function*() {
      const pipe = yield* submit(c(), { score: "many-keys", players: ["viola", "cello", "harp"], scope: "all", params: { count: 500 } })
      const extra = { deep: { list: [1, 2.5, "x", null, true, { k: "v" }] } }
      const json = yield* submit(c(), { score: "big-json", players: ["viola", "cello"], scope: "all", params: { n: 2000, extra } })
      const p = yield* waitJob(c(), pipe)
      const j = yield* waitJob(c(), json)
      expect(p.status).toBe("OK")
      const expectedKeys = Scores.manyKeysResponse(500)
      for (const name of ["viola", "cello", "harp"]) {
        expect(p.players[name]?.status).toBe("OK")
        expect(p.players[name]?.response).toEqual(expectedKeys)
      }
      expect(j.status).toBe("OK")
      const expectedJson = Scores.bigJsonResponse({ n: 2000, extra })
      expect(j.players["viola"]?.response).toEqual(expectedJson)
      expect(j.players["cello"]?.response).toEqual(expectedJson)
    }).pipe(shared.withLogs))
})

describe("fail-over on soft outcomes", () => {
  it.live("one-of: the first player lacks the score (UNK_SCORE), the next one runs it", () =>
    Effect.gen(function*() {
      const id = yield* submit(c(), { score: "disk-usage", players: ["cello", "viola"], scope: "one", params: { path: "/" } })
      const s = yield* waitJob(c(), id)
      expect(s.status).toBe("OK")
      expect(outcomes(s)).toEqual({ cello: "UNK_SCORE", viola: "OK" })
      expect(s.players["cello"]?.response["error"]).toBe("unknown score \"disk-usage\"")
      expect(s.players["viola"]?.response["path"]).toBe("/")
      expect(s.players["viola"]?.response["used_percent"]).toMatch(/^[0-9]+$/)
    }).pipe(shared.withLogs))

  it.live("one-of: the first player cannot start it (HOST_ERROR: missing workdir; unknown user), the next one runs it", () =>
    Effect.gen(function*() {
      const workdir = yield* submit(c(), { score: "where", players: ["cello", "harp"], scope: "one", params: {} })
      const user = yield* submit(c(), { score: "whoami", players: ["cello", "harp"], scope: "one", params: {} })
      const w = yield* waitJob(c(), workdir)
      const u = yield* waitJob(c(), user)
      expect(w.status).toBe("OK")
      expect(outcomes(w)).toEqual({ cello: "HOST_ERROR", harp: "OK" })
      expect(w.players["harp"]?.response).toEqual({ pwd: "/tmp" })
      expect(u.status).toBe("OK")
      expect(outcomes(u)).toEqual({ cello: "HOST_ERROR", harp: "OK" })
      expect(u.players["harp"]?.response).toEqual({ uid: String(process.getuid?.() ?? 0) })
    }).pipe(shared.withLogs))

  it.live("a failed-over task waits for the busy player's only slot, then completes", () =>
    Effect.gen(function*() {
      // bass has one slot: occupy it for 4 s
      const busy = yield* submit(c(), { score: "sleep", players: ["bass"], scope: "all", params: { seconds: 4 } })
      yield* pollUntil(
        "bass to be running the sleep",
        Effect.map(players(c()), (ps) => (ps["bass"]?.running === 1 ? Option.some(true) : Option.none()))
      )
      const unk = yield* submit(c(), { score: "disk-usage", players: ["cello", "bass"], scope: "one", params: { path: "/tmp" } })
      const host = yield* submit(c(), { score: "where", players: ["cello", "bass"], scope: "one", params: {} })
      // both were refused by cello and now wait for bass, which is still busy
      const waiting = yield* pollUntil(
        "both fail-overs to be refused by cello while bass is busy",
        Effect.gen(function*() {
          const a = yield* statusOf(c(), unk)
          const b = yield* statusOf(c(), host)
          const s = yield* statusOf(c(), busy)
          return a.players["cello"]?.status === "UNK_SCORE" && b.players["cello"]?.status === "HOST_ERROR"
            ? Option.some({ a, b, busy: s })
            : Option.none()
        })
      )
      expect(waiting.busy.status).toBe("PENDING")
      expect(waiting.a.status).toBe("PENDING")
      expect(waiting.a.players["bass"]).toBeUndefined()
      expect(waiting.b.status).toBe("PENDING")
      expect(waiting.b.players["bass"]).toBeUndefined()
      const done = yield* waitJob(c(), busy)
      expect(done.status).toBe("OK")
      const a = yield* waitJob(c(), unk)
      const b = yield* waitJob(c(), host)
      expect(outcomes(a)).toEqual({ cello: "UNK_SCORE", bass: "OK" })
      expect(a.status).toBe("OK")
      expect(outcomes(b)).toEqual({ cello: "HOST_ERROR", bass: "OK" })
      expect(b.status).toBe("OK")
      expect(b.players["bass"]?.response).toEqual({ pwd: "/tmp" })
    }).pipe(shared.withLogs))
})

describe("offline players and duplicates", () => {
  it.live("a job for a player that is not started yet waits, and completes once it starts", () =>
    Effect.gen(function*() {
      const one = yield* submit(c(), { score: "echo", players: ["late-a"], scope: "one", params: { message: "later" } })
      const all = yield* submit(c(), { score: "echo", players: ["viola", "late-a"], scope: "all", params: { message: "both" } })
      // viola answers at once; the job stays PENDING for late-a
      yield* pollUntil(
        "viola's part of the all-of job",
        Effect.map(statusOf(c(), all), (s) => (s.players["viola"] !== undefined ? Option.some(s) : Option.none()))
      )
      yield* Effect.sleep(Duration.seconds(1))
      const before = yield* statusOf(c(), all)
      expect(before.status).toBe("PENDING")
      expect(before.players["late-a"]).toBeUndefined()
      expect((yield* statusOf(c(), one)).status).toBe("PENDING")
      yield* c().startPlayer("late-a")
      const o = yield* waitJob(c(), one)
      const a = yield* waitJob(c(), all)
      expect(o).toEqual({ status: "OK", players: { "late-a": { status: "OK", response: { message: "later", length: "5" } } } })
      expect(a.status).toBe("OK")
      expect(outcomes(a)).toEqual({ viola: "OK", "late-a": "OK" })
    }).pipe(shared.withLogs))

  it.live("a player listed twice runs the job once and keeps taking work (one slot)", () =>
    Effect.gen(function*() {
      const all = yield* submit(c(), { score: "echo", players: ["bass", "bass"], scope: "all", params: { message: "twice" } })
      const one = yield* submit(c(), { score: "echo", players: ["bass", "bass"], scope: "one", params: { message: "twice" } })
      const a = yield* waitJob(c(), all)
      const o = yield* waitJob(c(), one)
      expect(a).toEqual({ status: "OK", players: { bass: { status: "OK", response: { message: "twice", length: "5" } } } })
      expect(o).toEqual({ status: "OK", players: { bass: { status: "OK", response: { message: "twice", length: "5" } } } })
      // its only slot was given back: more work runs, one after the other
      const more = yield* Effect.forEach([1, 2, 3, 4], (i) =>
        submit(c(), { score: "echo", players: ["bass"], scope: i % 2 === 0 ? "all" : "one", params: { message: `m${i}` } }))
      for (const [i, id] of more.entries()) {
        const s = yield* waitJob(c(), id, Duration.seconds(30))
        expect(s.status).toBe("OK")
        expect(s.players["bass"]?.response["message"]).toBe(`m${i + 1}`)
      }
      const ps = yield* pollUntil(
        "bass to show no running task",
        Effect.map(players(c()), (p) => (p["bass"]?.running === 0 ? Option.some(p) : Option.none()))
      )
      expect(ps["bass"]?.online).toBe(true)
    }).pipe(shared.withLogs))
})

describe("invalid parameters", () => {
  it.live("are refused at submission with every violation named, and nothing is stored", () =>
    Effect.gen(function*() {
      const db = openDatabase(databaseFile(c()))
      const countJobs = () => Number(db.prepare("SELECT COUNT(*) AS n FROM orchestra_jobs").get()?.["n"])
      const before = countJobs()
      try {
        const reason = yield* refused(c(), {
          score: "disk-usage",
          players: ["viola", "harp"],
          scope: "all",
          params: { path: "relative/path", threshold: 150, colour: "red" }
        })
        expect(reason).toContain("params.path")
        expect(reason).toContain("^/")
        expect(reason).toContain("params.threshold")
        expect(reason).toContain("100")
        expect(reason).toContain("params.colour")
        const missing = yield* refused(c(), { score: "mark", players: ["viola"], scope: "one", params: { label: "UPPER" } })
        expect(missing).toMatch(/count/)
        expect(missing).toMatch(/params\.label/)
        expect(countJobs()).toBe(before)
      } finally {
        db.close()
      }
    }).pipe(shared.withLogs))

  it.live("a player that receives them anyway (the conductor had no catalog to check) never spawns the score: INVALID_PARAMS with the violations", () =>
    Effect.gen(function*() {
      // late-b has never connected: the conductor cannot check, so it accepts
      const bad = yield* submit(c(), { score: "mark", players: ["late-b"], scope: "one", params: { count: "many", label: "UPPER", bogus: 1 } })
      const good = yield* submit(c(), { score: "mark", players: ["late-b"], scope: "one", params: { count: 2, label: "ok" } })
      yield* c().startPlayer("late-b")
      const b = yield* waitJob(c(), bad)
      const g = yield* waitJob(c(), good)
      expect(b.status).toBe("FAIL")
      expect(outcomes(b)).toEqual({ "late-b": "INVALID_PARAMS" })
      const response = b.players["late-b"]!.response
      expect(response["error"]).toBe("invalid params")
      const violations = response["violations"] as ReadonlyArray<string>
      expect(Array.isArray(violations)).toBe(true)
      const text = violations.join("\n")
      expect(text).toMatch(/params\.count/)
      expect(text).toMatch(/params\.label/)
      expect(text).toMatch(/bogus/)
      // the score never ran for the bad job; it did for the good one (the marker works)
      expect(fs.existsSync(path.join(markers, `ran-${bad}`))).toBe(false)
      expect(g.status).toBe("OK")
      expect(g.players["late-b"]?.response).toEqual({ count: "2" })
      expect(fs.existsSync(path.join(markers, `ran-${good}`))).toBe(true)
      expect(fs.readdirSync(markers).sort()).toEqual([`ran-${good}`])
      // and now that late-b reported its catalog, the conductor refuses such params itself
      const reason = yield* refused(c(), { score: "mark", players: ["late-b"], scope: "one", params: { count: 0 } })
      expect(reason).toMatch(/params\.count/)
    }).pipe(shared.withLogs))
})

describe("pipe output", () => {
  const RUNS = 200
  const LINES = 2000
  const pool = ["viola", "cello", "harp", "bass"]

  it.live(`${RUNS} runs of a score printing ${LINES} lines and exiting at once: every response is complete`, () =>
    Effect.gen(function*() {
      const incomplete: Array<string> = []
      const ran = new Map<string, number>()
      yield* Effect.forEach(
        Array.from({ length: RUNS }, (_, i) => i),
        (i) =>
          Effect.gen(function*() {
            // rotate the preference so that every player gets work
            const order = [...pool.slice(i % pool.length), ...pool.slice(0, i % pool.length)]
            const id = yield* submit(c(), { score: "lines", players: order, scope: "one", params: { count: LINES } })
            const s = yield* waitJob(c(), id, Duration.seconds(90))
            const entries = Object.entries(s.players)
            if (s.status !== "OK" || entries.length !== 1) {
              incomplete.push(`job ${id}: ${s.status} ${JSON.stringify(outcomes(s))}`)
              return
            }
            const [player, result] = entries[0]!
            ran.set(player, (ran.get(player) ?? 0) + 1)
            const r = result.response
            const keys = Object.keys(r)
            let bad = keys.length !== LINES
            for (let k = 0; k < LINES && !bad; k++) if (r[`key${k}`] !== `value${k}`) bad = true
            if (bad) {
              const missing = Array.from({ length: LINES }, (_, k) => `key${k}`).filter((k) => !(k in r))
              incomplete.push(`job ${id} on ${player}: ${keys.length} keys, missing ${missing.slice(0, 5).join(",")}${missing.length > 5 ? "…" : ""}`)
            }
          }),
        { concurrency: 16, discard: true }
      )
      expect(incomplete, incomplete.join("\n")).toEqual([])
      expect([...ran.values()].reduce((a, b) => a + b, 0)).toBe(RUNS)
      expect([...ran.keys()].sort()).toEqual([...pool].sort())
    }).pipe(shared.withLogs))
})
