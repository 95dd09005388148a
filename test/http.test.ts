/**
 * The conductor's HTTP audience API over real processes: a conductor with
 * its HTTP listener on 127.0.0.1 (port 0, read from its log) and two
 * players over mutual TLS running the sample scores. Every endpoint; bad
 * tokens (401), a token outside its limits (403), malformed bodies (400
 * naming the field), idempotent submission, a long-poll wait that returns
 * when the job ends (not at its timeout), an event stream resumed with
 * `Last-Event-ID` losing nothing, cancel killing a running `sleep`, and the
 * dashboard in headless Chromium following a job from PENDING to OK.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Browser from "../packages/dashboard/test/support/Browser.js"
import { OrchestraClient } from "../packages/client/src/index.js"
import { alive, pollUntil, processesWithEnv, runCli, sharedCluster, waitForLog } from "./support/Harness.js"

const ADMIN = "orc_admin-token-for-the-http-suite"
const LIMITED = "orc_limited-token-echo-on-viola"
const sha = (t: string) => `sha256:${crypto.createHash("sha256").update(t).digest("hex")}`

const shared = sharedCluster("http", (dir) => ({
  options: {
    players: [{ name: "viola", labels: { role: "web" } }, { name: "cello" }],
    conductorConfig: {
      http: {
        listen: { host: "127.0.0.1", port: 0 },
        tokens: [
          { name: "admin", hash: sha(ADMIN) },
          { name: "limited", hash: sha(LIMITED), scores: ["echo"], players: ["viola"] }
        ]
      },
      events: { keep: 10000 },
      // once a year (it does not fire during the tests): listed by GET /v1/schedules
      schedules: [writeYearly(dir)]
    }
  }
}))

function writeYearly(dir: string): string {
  const file = path.join(dir, "yearly.yaml")
  fs.writeFileSync(file, [
    "name: yearly-echo",
    'cron: "0 3 1 1 *"',
    "timezone: Australia/Sydney",
    "job: { score: echo, players: [viola], policy: all-of, params: { message: new year } }",
    "overlap: skip",
    "missed: skip",
    ""
  ].join("\n"))
  return file
}

let base = ""
const url = Effect.suspend(() => {
  if (base !== "") return Effect.succeed(base)
  const log = shared.cluster().conductor()?.log ?? ""
  return Effect.map(waitForLog(log, "HTTP API listening"), (line) => {
    const m = /http:\/\/127\.0\.0\.1:([0-9]+)/.exec(line)
    if (m === null) throw new Error(`no URL in ${line}`)
    base = `http://127.0.0.1:${m[1]}`
    return base
  })
})

interface Reply {
  readonly status: number
  readonly type: string
  readonly text: string
  readonly json: any
}

const call = (
  method: string,
  p: string,
  options: { readonly token?: string | null; readonly body?: unknown; readonly raw?: string; readonly headers?: Record<string, string> } = {}
): Effect.Effect<Reply, Error> =>
  Effect.flatMap(url, (u) =>
    Effect.tryPromise({
      try: async () => {
        const headers: Record<string, string> = { ...options.headers }
        const token = options.token === undefined ? ADMIN : options.token
        if (token !== null) headers["authorization"] = `Bearer ${token}`
        let body: string | undefined
        if (options.raw !== undefined) body = options.raw
        else if (options.body !== undefined) body = JSON.stringify(options.body)
        if (body !== undefined) headers["content-type"] = "application/json"
        const res = await fetch(`${u}${p}`, { method, headers, ...(body === undefined ? {} : { body }) })
        const text = await res.text()
        const type = res.headers.get("content-type") ?? ""
        let json: unknown
        try {
          json = JSON.parse(text)
        } catch {
          json = undefined
        }
        return { status: res.status, type, text, json }
      },
      catch: (e) => new Error(`${method} ${p}: ${String(e)}`)
    }))

const submitJob = (body: Record<string, unknown>, token?: string) =>
  Effect.map(call("POST", "/v1/jobs", { body, ...(token === undefined ? {} : { token }) }), (r) => {
    if (r.status !== 201) throw new Error(`submit: ${r.status} ${r.text}`)
    return r.json.id as number
  })

/** The pid of the score process running for job `id`, once it runs. */
const runningScore = (id: number) =>
  pollUntil("the sleep score to be running", Effect.sync(() => Option.fromNullable(processesWithEnv([`ORC_JOB_ID=${id}`])[0])), { timeout: 20_000 })

/** Until the process `pid` has gone. */
const scoreGone = (pid: number) =>
  pollUntil("the score process to be gone", Effect.sync(() => (alive(pid) ? Option.none() : Option.some(true))), { timeout: 15_000 })

/** Read an event stream until `until` says stop (or `limit` ms pass); ids and types. */
const readEvents = (
  p: string,
  until: (e: { id: string; type: string; job?: number }) => boolean,
  options: { readonly lastEventId?: string; readonly limit?: number } = {}
): Effect.Effect<ReadonlyArray<{ id: string; type: string; job?: number }>, Error> =>
  Effect.flatMap(url, (u) =>
    Effect.tryPromise({
      try: async () => {
        const ac = new AbortController()
        const timer = setTimeout(() => ac.abort(), options.limit ?? 20_000)
        const headers: Record<string, string> = { authorization: `Bearer ${ADMIN}` }
        if (options.lastEventId !== undefined) headers["last-event-id"] = options.lastEventId
        const out: Array<{ id: string; type: string; job?: number }> = []
        try {
          const res = await fetch(`${u}${p}`, { headers, signal: ac.signal })
          if (res.status !== 200) throw new Error(`${p}: ${res.status} ${await res.text()}`)
          if (!(res.headers.get("content-type") ?? "").startsWith("text/event-stream")) throw new Error("not an event stream")
          const reader = res.body!.getReader()
          const decoder = new TextDecoder()
          let buf = ""
          for (;;) {
            const { done, value } = await reader.read()
            if (done) break
            buf += decoder.decode(value, { stream: true })
            let i: number
            while ((i = buf.indexOf("\n\n")) >= 0) {
              const block = buf.slice(0, i)
              buf = buf.slice(i + 2)
              const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n")
              if (data === "") continue
              const e = JSON.parse(data)
              out.push({ id: e.id, type: e.type, ...(typeof e.job === "number" ? { job: e.job } : {}) })
              if (until(e)) {
                ac.abort()
                return out
              }
            }
          }
        } catch (e) {
          if (!ac.signal.aborted) throw e
        } finally {
          clearTimeout(timer)
        }
        return out
      },
      catch: (e) => new Error(`events ${p}: ${String(e)}`)
    }))

describe("authentication and limits", () => {
  it.live("no token or a wrong one is 401; /healthz, /metrics and the OpenAPI document need none", () =>
    Effect.gen(function*() {
      const none = yield* call("GET", "/v1/jobs", { token: null })
      expect(none.status).toBe(401)
      expect(none.text).toContain("missing token")
      const wrong = yield* call("GET", "/v1/players", { token: "orc_not-ours" })
      expect(wrong.status).toBe(401)
      expect(wrong.text).toContain("invalid token")
      const wrongSubmit = yield* call("POST", "/v1/jobs", { token: "nope", body: { score: "echo", players: ["viola"], policy: { name: "all-of" } } })
      expect(wrongSubmit.status).toBe(401)
      const health = yield* call("GET", "/healthz", { token: null })
      expect(health.status).toBe(200)
      expect(health.json.name).toBe(shared.cluster().conductorName)
      expect(health.json.players).toEqual({ online: 2, allowlisted: 2 })
      const openapi = yield* call("GET", "/v1/openapi.json", { token: null })
      expect(openapi.status).toBe(200)
      expect(Object.keys(openapi.json.paths)).toContain("/v1/jobs/{id}/wait")
    }).pipe(shared.withLogs))

  it.live("a token limited to echo on viola gets 403 for another score or player, and can use what it may", () =>
    Effect.gen(function*() {
      const score = yield* call("POST", "/v1/jobs", { token: LIMITED, body: { score: "noop", players: ["viola"], policy: { name: "all-of" } } })
      expect(score.status).toBe(403)
      expect(score.text).toContain("noop")
      const player = yield* call("POST", "/v1/jobs", { token: LIMITED, body: { score: "echo", players: ["viola", "cello"], policy: { name: "all-of" }, params: { message: "x" } } })
      expect(player.status).toBe(403)
      expect(player.text).toContain("cello")
      const id = yield* submitJob({ score: "echo", players: ["viola"], policy: { name: "all-of" }, params: { message: "allowed" } }, LIMITED)
      const done = yield* call("GET", `/v1/jobs/${id}/wait?timeout=20s`, { token: LIMITED })
      expect(done.json.state).toBe("OK")
      // a job of a score it may not use is not shown to it
      const other = yield* submitJob({ score: "noop", players: ["cello"], policy: { name: "all-of" } })
      expect((yield* call("GET", `/v1/jobs/${other}`, { token: LIMITED })).status).toBe(403)
    }).pipe(shared.withLogs))
})

describe("submission", () => {
  it.live("malformed bodies are 400 naming the field, and create nothing", () =>
    Effect.gen(function*() {
      const before = (yield* call("GET", "/v1/jobs?limit=1")).json.jobs[0]?.id ?? 0
      const notJson = yield* call("POST", "/v1/jobs", { raw: "{\"score\": " })
      expect(notJson.status).toBe(400)
      expect(notJson.text).toContain("body")
      const players = yield* call("POST", "/v1/jobs", { body: { score: "echo", players: "viola", policy: { name: "all-of" } } })
      expect(players.status).toBe(400)
      expect(players.json.issues.map((i: { path: string }) => i.path).join(" ")).toContain("players")
      const policy = yield* call("POST", "/v1/jobs", { body: { score: "echo", players: ["viola"] } })
      expect(policy.status).toBe(400)
      expect(policy.text).toContain("policy")
      const params = yield* call("POST", "/v1/jobs", { body: { score: "sleep", players: ["viola"], policy: { name: "all-of" }, params: { seconds: "soon" } } })
      expect(params.status).toBe(400)
      expect(params.text).toContain("seconds")
      const unknownScore = yield* call("POST", "/v1/jobs", { body: { score: "no-such-score", players: ["viola"], policy: { name: "one-of" } } })
      expect(unknownScore.status).toBe(400)
      expect(unknownScore.text).toContain("no-such-score")
      const after = (yield* call("GET", "/v1/jobs?limit=1")).json.jobs[0]?.id ?? 0
      expect(after).toBe(before)
    }).pipe(shared.withLogs))

  it.live("the same idempotency key returns the same job", () =>
    Effect.gen(function*() {
      const body = { score: "echo", players: ["viola", "cello"], policy: { name: "all-of" }, params: { message: "once" }, idempotencyKey: `k-${Date.now()}` }
      const first = yield* call("POST", "/v1/jobs", { body })
      const second = yield* call("POST", "/v1/jobs", { body })
      expect(first.status).toBe(201)
      expect(first.json.existing).toBe(false)
      expect(second.json).toEqual({ id: first.json.id, existing: true })
      const job = (yield* call("GET", `/v1/jobs/${first.json.id}/wait?timeout=20s`)).json
      expect(job.state).toBe("OK")
      expect(job.players.viola.response).toEqual({ message: "once", length: "4" })
      expect(job.attempts.map((a: { player: string }) => a.player).sort()).toEqual(["cello", "viola"])
      for (const a of job.attempts) expect(a.finishedAt).toBeGreaterThanOrEqual(a.dispatchedAt)
    }).pipe(shared.withLogs))
})

describe("reading jobs", () => {
  it.live("wait long-polls and returns when the job ends, not at its timeout; a short timeout returns it PENDING", () =>
    Effect.gen(function*() {
      const id = yield* submitJob({ score: "sleep", players: ["viola"], policy: { name: "one-of" }, params: { seconds: 1 } })
      const early = yield* call("GET", `/v1/jobs/${id}/wait?timeout=200ms`)
      expect(early.status).toBe(200)
      expect(early.json.state).toBe("PENDING")
      const started = Date.now()
      const done = yield* call("GET", `/v1/jobs/${id}/wait?timeout=25s`)
      const took = Date.now() - started
      expect(done.json.state).toBe("OK")
      expect(took).toBeLessThan(10_000)
      const missing = yield* call("GET", "/v1/jobs/999999/wait?timeout=100ms")
      expect(missing.status).toBe(404)
    }).pipe(shared.withLogs))

  it.live("lists and filters jobs with paging; players, scores, a task's log and metrics", () =>
    Effect.gen(function*() {
      const failed = yield* submitJob({ score: "fail", players: ["cello"], policy: { name: "all-of" }, params: {} })
      yield* call("GET", `/v1/jobs/${failed}/wait?timeout=20s`)
      const page1 = (yield* call("GET", "/v1/jobs?limit=2")).json
      expect(page1.jobs.length).toBe(2)
      expect(page1.jobs[0].id).toBeGreaterThan(page1.jobs[1].id)
      const page2 = (yield* call("GET", `/v1/jobs?limit=2&before=${page1.next}`)).json
      expect(page2.jobs[0].id).toBeLessThan(page1.jobs[1].id)
      const fails = (yield* call("GET", "/v1/jobs?state=FAIL")).json.jobs
      expect(fails.map((j: { id: number }) => j.id)).toContain(failed)
      for (const j of fails) expect(j.state).toBe("FAIL")
      const bad = yield* call("GET", "/v1/jobs?state=SOMETIMES")
      expect(bad.status).toBe(400)

      const players = (yield* call("GET", "/v1/players")).json
      const viola = players.players.find((p: { name: string }) => p.name === "viola")
      expect(viola.online).toBe(true)
      expect(viola.labels).toEqual({ role: "web" })
      expect(players.summary.online).toBe(2)
      const scores = (yield* call("GET", "/v1/scores")).json.scores
      const sleep = scores.find((s: { name: string }) => s.name === "sleep")
      expect(sleep.players.sort()).toEqual(["cello", "viola"])
      expect(JSON.stringify(sleep)).toContain("seconds")

      const job = (yield* call("GET", `/v1/jobs/${failed}`)).json
      const attempt = job.attempts[0]
      const log = yield* call("GET", `/v1/jobs/${failed}/tasks/${encodeURIComponent(attempt.key)}/attempts/${attempt.attempt}/log`)
      expect(log.status).toBe(200)
      expect(log.text.length).toBe(attempt.logBytes)
      const noLog = yield* call("GET", `/v1/jobs/${failed}/tasks/${encodeURIComponent(attempt.key)}/attempts/99/log`)
      expect(noLog.status).toBe(404)

      const metrics = yield* call("GET", "/metrics", { token: null })
      expect(metrics.type).toContain("text/plain")
      expect(metrics.text).toMatch(/^orchestra_players_connected 2$/m)
      expect(metrics.text).toMatch(/^orchestra_jobs_finished_total\{state="FAIL"\} [1-9]/m)
      expect(metrics.text).toMatch(/^orchestra_jobs\{state="PENDING"\} [0-9]+$/m)
      expect(metrics.text).toContain("orchestra_dispatch_latency_seconds_bucket")
    }).pipe(shared.withLogs))
})

describe("events", () => {
  it.live("a job's stream from its start ends with job.finished; the all-jobs stream resumed with Last-Event-ID loses nothing", () =>
    Effect.gen(function*() {
      const from = (yield* call("GET", "/healthz", { token: null })).json.lastEventId as string
      const id = yield* submitJob({ score: "echo", players: ["viola", "cello"], policy: { name: "all-of" }, params: { message: "ev" } })
      const own = yield* readEvents(`/v1/jobs/${id}/events`, () => false)
      expect(own[0]?.type).toBe("job.submitted")
      expect(own.at(-1)?.type).toBe("job.finished")
      expect(own.filter((e) => e.type === "task.finished").length).toBe(2)

      // the whole log since `from`, then the same read in two halves with a resume between
      const isEnd = (e: { type: string; job?: number }) => e.type === "job.finished" && e.job === id
      const whole = yield* readEvents("/v1/events", isEnd, { lastEventId: from })
      const firstHalf = yield* readEvents("/v1/events", (e) => e.type === "task.dispatched", { lastEventId: from })
      const rest = yield* readEvents("/v1/events", isEnd, { lastEventId: firstHalf.at(-1)!.id })
      expect([...firstHalf, ...rest].map((e) => e.id)).toEqual(whole.map((e) => e.id))
      expect(whole.filter((e) => e.job === id).map((e) => e.type)).toEqual(own.map((e) => e.type))
    }).pipe(shared.withLogs))
})

describe("cancel", () => {
  it.live("cancelling a job kills its running sleep; the outcome is CANCELLED", () =>
    Effect.gen(function*() {
      const id = yield* submitJob({ score: "sleep", players: ["cello"], policy: { name: "all-of" }, params: { seconds: 120 } })
      const pid = yield* runningScore(id)
      const r = yield* call("POST", `/v1/jobs/${id}/cancel?reason=${encodeURIComponent("changed my mind")}`)
      expect(r.status).toBe(200)
      const job = (yield* call("GET", `/v1/jobs/${id}/wait?timeout=20s`)).json
      expect(job.state).toBe("CANCELLED")
      // the player reports how the killed attempt ended; it is recorded as CANCELLED
      const ended = yield* pollUntil(
        "the cancelled attempt's outcome",
        Effect.map(call("GET", `/v1/jobs/${id}`), (r) => Option.fromNullable(r.json.players?.cello)),
        { timeout: 15_000, describe: () => "" }
      )
      expect(ended.outcome).toBe("CANCELLED")
      yield* scoreGone(pid)
      const again = yield* call("POST", `/v1/jobs/${id}/cancel`)
      expect(again.status).toBe(409)
    }).pipe(shared.withLogs))
})

describe("pipeline runs", () => {
  const document = (key: string) =>
    [
      `name: relay-${key}`,
      "jobs:",
      "  first:",
      "    score: echo",
      "    players: [viola]",
      "    policy: all-of",
      `    params: { message: "hi ${key}" }`,
      "  second:",
      "    needs: [first]",
      "    score: echo",
      "    players: [cello]",
      "    policy: all-of",
      "    params: { message: \"${{ jobs.first.players.viola.response.message }}\" }",
      ""
    ].join("\n")

  it.live("a run started over HTTP: idempotent, waited for, its jobs' ids and states, the response flowing, listed, and its events", () =>
    Effect.gen(function*() {
      const key = `p-${Date.now()}`
      const from = (yield* call("GET", "/healthz", { token: null })).json.lastEventId as string
      const body = { document: document(key), file: "relay.yaml", idempotencyKey: key }
      const first = yield* call("POST", "/v1/pipelines", { body })
      expect(first.status).toBe(201)
      expect(first.json.existing).toBe(false)
      const again = yield* call("POST", "/v1/pipelines", { body })
      expect(again.json).toEqual({ id: first.json.id, existing: true })
      const run = (yield* call("GET", `/v1/pipelines/${first.json.id}/wait?timeout=30s`)).json
      expect(run.state).toBe("OK")
      expect(run.pipeline).toBe(`relay-${key}`)
      expect(run.file).toBe("relay.yaml")
      expect(run.jobs.map((j: { name: string; status: string; state: string }) => [j.name, j.status, j.state])).toEqual([
        ["first", "finished", "OK"],
        ["second", "finished", "OK"]
      ])
      const second = (yield* call("GET", `/v1/jobs/${run.jobs[1].id}`)).json
      expect(second.players.cello.response).toEqual({ message: `hi ${key}`, length: String(`hi ${key}`.length) })
      expect(run.jobs[1].id).toBeGreaterThan(run.jobs[0].id)

      const listed = (yield* call("GET", `/v1/pipelines?pipeline=relay-${key}`)).json
      expect(listed.runs.map((r: { id: number; state: string }) => [r.id, r.state])).toEqual([[first.json.id, "OK"]])
      const oks = (yield* call("GET", "/v1/pipelines?state=OK&limit=1")).json
      expect(oks.runs.length).toBe(1)

      const events = yield* readEvents("/v1/events", (e) => e.type === "pipeline.finished", { lastEventId: from })
      const types = events.filter((e) => e.type.startsWith("pipeline.")).map((e) => e.type)
      expect(types[0]).toBe("pipeline.started")
      expect(types.at(-1)).toBe("pipeline.finished")
      expect(types.filter((t) => t === "pipeline.progressed").length).toBeGreaterThanOrEqual(4)

      const cancel = yield* call("POST", `/v1/pipelines/${first.json.id}/cancel`)
      expect(cancel.status).toBe(409)
      expect(cancel.text).toContain("OK")
    }).pipe(shared.withLogs))

  it.live("a bad document, body or token is refused with what is wrong and where, and starts nothing", () =>
    Effect.gen(function*() {
      const before = (yield* call("GET", "/v1/pipelines?limit=1")).json.runs[0]?.id ?? 0
      const typo = document("bad").replace("players.viola.response.message", "output.nope")
      const wrong = yield* call("POST", "/v1/pipelines", { body: { document: typo, file: "bad.yaml" } })
      expect(wrong.status).toBe(400)
      expect(wrong.text).toContain("nope")
      expect(wrong.text).toMatch(/bad\.yaml:13/)
      const missing = yield* call("POST", "/v1/pipelines", { body: { file: "x.yaml" } })
      expect(missing.status).toBe(400)
      expect(missing.json.issues.map((i: { path: string }) => i.path)).toContain("document")
      const extra = yield* call("POST", "/v1/pipelines", { body: { document: document("x"), colour: "blue" } })
      expect(extra.status).toBe(400)
      expect(extra.text).toContain("colour")
      const notJson = yield* call("POST", "/v1/pipelines", { raw: "{\"document\": " })
      expect(notJson.status).toBe(400)
      const limited = yield* call("POST", "/v1/pipelines", { token: LIMITED, body: { document: document("limited") } })
      expect(limited.status).toBe(403)
      expect(limited.text).toContain("without limits")
      expect((yield* call("GET", "/v1/pipelines", { token: LIMITED })).status).toBe(403)
      const unknown = yield* call("GET", "/v1/pipelines/999999")
      expect(unknown.status).toBe(404)
      expect(unknown.text).toContain("999999")
      expect((yield* call("GET", "/v1/pipelines/999999/wait?timeout=100ms")).status).toBe(404)
      const after = (yield* call("GET", "/v1/pipelines?limit=1")).json.runs[0]?.id ?? 0
      expect(after).toBe(before)
    }).pipe(shared.withLogs))

  it.live("cancelling a running run stops its sleep and ends it CANCELLED; what needed it never starts", () =>
    Effect.gen(function*() {
      const doc = [
        `name: slow-${Date.now()}`,
        "jobs:",
        "  nap:",
        "    score: sleep",
        "    players: [cello]",
        "    policy: all-of",
        "    params: { seconds: 120 }",
        "  after:",
        "    needs: [nap]",
        "    score: noop",
        "    players: [viola]",
        "    policy: all-of",
        ""
      ].join("\n")
      const started = yield* call("POST", "/v1/pipelines", { body: { document: doc } })
      expect(started.status).toBe(201)
      const id = started.json.id as number
      const napJob = yield* pollUntil(
        "the nap job to be submitted",
        Effect.map(call("GET", `/v1/pipelines/${id}`), (r) => Option.fromNullable(r.json.jobs?.[0]?.id as number | undefined)),
        { timeout: 20_000 }
      )
      const pid = yield* runningScore(napJob)
      const cancelled = yield* call("POST", `/v1/pipelines/${id}/cancel?reason=${encodeURIComponent("not today")}`)
      expect(cancelled.status).toBe(200)
      const run = (yield* call("GET", `/v1/pipelines/${id}/wait?timeout=20s`)).json
      expect(run.state).toBe("CANCELLED")
      expect(run.jobs[1].id).toBeUndefined()
      expect((yield* call("GET", `/v1/jobs/${napJob}/wait?timeout=20s`)).json.state).toBe("CANCELLED")
      yield* scoreGone(pid)
    }).pipe(shared.withLogs))
})

describe("dry runs and schedules over HTTP", () => {
  it.live("POST /v1/jobs/plan shows the batches and stores nothing; it is refused as a submission would be", () =>
    Effect.gen(function*() {
      const before = (yield* call("GET", "/v1/jobs?limit=1")).json.jobs[0]?.id ?? 0
      const planned = yield* call("POST", "/v1/jobs/plan", {
        body: { score: "echo", players: ["viola", "cello"], policy: { name: "rolling", options: { batch: 1 } }, params: { message: "dry" } }
      })
      expect(planned.status, planned.text).toBe(200)
      expect(planned.json.targets).toEqual(["viola", "cello"])
      expect(planned.json.plan.batches.map((b: ReadonlyArray<{ player: string }>) => b.map((t) => t.player))).toEqual([["viola"], ["cello"]])
      expect(planned.json.params).toEqual({ message: "dry" })
      const bad = yield* call("POST", "/v1/jobs/plan", { body: { score: "sleep", players: ["viola"], policy: { name: "all-of" }, params: { seconds: "soon" } } })
      expect(bad.status).toBe(400)
      expect(bad.text).toContain("seconds")
      const limited = yield* call("POST", "/v1/jobs/plan", { token: LIMITED, body: { score: "echo", players: ["cello"], policy: { name: "all-of" }, params: { message: "x" } } })
      expect(limited.status).toBe(403)
      expect(limited.text).toContain("cello")
      const after = (yield* call("GET", "/v1/jobs?limit=1")).json.jobs[0]?.id ?? 0
      expect(after).toBe(before)
    }).pipe(shared.withLogs))

  it.live("GET /v1/schedules lists the conductor's schedules with their next fire time; the CLI reads them and plans over --url", () =>
    Effect.gen(function*() {
      const r = yield* call("GET", "/v1/schedules")
      expect(r.status).toBe(200)
      expect(r.json.schedules.map((s: { name: string; runs: string; timezone: string }) => [s.name, s.runs, s.timezone])).toEqual([
        ["yearly-echo", "job echo", "Australia/Sydney"]
      ])
      const next = new Date(r.json.schedules[0].next as string)
      expect(next.getTime()).toBeGreaterThan(Date.now())
      expect(next.getTime() - Date.now()).toBeLessThanOrEqual(366 * 24 * 3600 * 1000)
      expect((yield* call("GET", "/v1/schedules", { token: LIMITED })).status).toBe(403)

      const u = yield* url
      const env = { ORCHESTRA_TOKEN: ADMIN }
      const listed = yield* runCli(["schedules", "list", "--url", u], { env })
      expect(listed.code, listed.stderr).toBe(0)
      expect(listed.stdout).toContain('yearly-echo: job echo at "0 3 1 1 *" (Australia/Sydney)')
      const plan = yield* runCli(["submit", "echo", "--player", "viola", "--player", "cello", "--policy", "one-of", "--param", "message=hi", "--plan", "--url", u], { env })
      expect(plan.code, plan.stderr).toBe(0)
      expect(plan.stdout).toContain("nothing was submitted")
      const refused = yield* runCli(["submit", "noop", "--player", "viola", "--policy", "all-of", "--plan", "--url", u], { env: { ORCHESTRA_TOKEN: LIMITED } })
      expect(refused.code).toBe(77)
    }).pipe(shared.withLogs), 60_000)
})

describe("pipeline runs from the client library and the command line", () => {
  const relay = (name: string) =>
    [
      `name: ${name}`,
      "jobs:",
      `  first: { score: echo, players: [viola], policy: all-of, params: { message: "from ${name}" } }`,
      "  second:",
      "    needs: [first]",
      "    score: echo",
      "    players: [cello]",
      "    policy: all-of",
      "    params: { message: \"${{ jobs.first.output.message }}!\" }",
      ""
    ].join("\n")

  it.live("the client runs, waits for, lists and refuses runs the same over HTTP and over the socket", () =>
    Effect.gen(function*() {
      const u = yield* url
      const clients = [yield* OrchestraClient.makeHttp({ url: u, token: ADMIN }), OrchestraClient.makeSocket({ path: shared.cluster().socket })]
      for (const client of clients) {
        const name = `lib-${client.transport}-${Date.now()}`
        const created = yield* client.pipelines.run({ document: relay(name), file: `${name}.yaml`, idempotencyKey: name })
        expect(created.existing).toBe(false)
        expect((yield* client.pipelines.run({ document: relay(name), idempotencyKey: name })).id).toBe(created.id)
        const run = yield* client.pipelines.wait(created.id, "30 seconds")
        expect(run.state).toBe("OK")
        const second = yield* client.get(run.jobs[1]!.id!)
        expect(second.players["cello"]?.response).toEqual({ message: `from ${name}!`, length: String(`from ${name}!`.length) })
        expect((yield* client.pipelines.list({ pipeline: name })).runs.map((r) => r.id)).toEqual([created.id])
        const finished = yield* Effect.flip(client.pipelines.cancel(created.id))
        expect(finished.reason).toBe("refused")
        const unknown = yield* Effect.flip(client.pipelines.get(999_999))
        expect(unknown.reason).toBe("not-found")
        const bad = yield* Effect.flip(client.pipelines.run({ document: relay(name).replace("output.message", "output.missing"), file: "bad.yaml" }))
        expect(bad.reason).toBe("refused")
        expect(bad.message).toMatch(/bad\.yaml:9: .*missing/)
      }
      const limited = yield* OrchestraClient.makeHttp({ url: u, token: LIMITED })
      expect((yield* Effect.flip(limited.pipelines.list())).reason).toBe("forbidden")
    }).pipe(shared.withLogs))

  it.live("orchestra pipeline run|status|list|cancel --url: exit codes 0, 64 (unknown run), 69 (finished), 77 (token with limits), 78 (bad document)", () =>
    Effect.gen(function*() {
      const u = yield* url
      const dir = fs.mkdtempSync(path.join(shared.cluster().dir, "cli-"))
      const name = `cli-${Date.now()}`
      const file = path.join(dir, "relay.yaml")
      fs.writeFileSync(file, relay(name))
      const env = { ORCHESTRA_TOKEN: ADMIN }
      const ran = yield* runCli(["pipeline", "run", file, "--wait", "--url", u], { env })
      expect(ran.code, ran.stderr).toBe(0)
      expect(ran.stdout).toMatch(new RegExp(`pipeline run (\\d+) \\(${name}\\): OK`))
      expect(ran.stderr).toMatch(/second finished OK/)
      const id = Number(/pipeline run (\d+)/.exec(ran.stdout)![1])
      const status = yield* runCli(["pipeline", "status", String(id), "--json", "--url", u], { env })
      expect(JSON.parse(status.stdout).jobs.map((j: { state: string }) => j.state)).toEqual(["OK", "OK"])
      const listed = yield* runCli(["pipeline", "list", "--pipeline", name, "--url", u], { env })
      expect(listed.stdout).toMatch(new RegExp(`^\\s*${id}\\s+OK\\s+${name}`, "m"))
      expect((yield* runCli(["pipeline", "status", "999999", "--url", u], { env })).code).toBe(64)
      const again = yield* runCli(["pipeline", "cancel", String(id), "--url", u], { env })
      expect(again.code).toBe(69)
      expect(again.stderr).toContain("already finished")
      const limited = yield* runCli(["pipeline", "run", file, "--url", u], { env: { ORCHESTRA_TOKEN: LIMITED } })
      expect(limited.code).toBe(77)
      fs.writeFileSync(file, relay(name).replace("output.message", "output.missing"))
      const bad = yield* runCli(["pipeline", "run", file, "--url", u], { env })
      expect(bad.code).toBe(78)
      expect(bad.stderr).toMatch(/relay\.yaml:9: .*missing/)
    }).pipe(shared.withLogs), 60_000)
})

Browser.describeWithChromium("the dashboard served by the conductor", () => {
  it.live("shows a job submitted through the API go from PENDING to OK without reload (screenshot kept)", () =>
    Effect.gen(function*() {
      const u = yield* url
      const browser = yield* Effect.promise(() => Browser.launch())
      yield* Effect.addFinalizer(() => Effect.promise(() => browser.close()))
      const { page } = browser
      const artifacts = path.resolve(__dirname, "..", "test-artifacts", "dashboard")
      fs.mkdirSync(artifacts, { recursive: true })
      yield* Effect.promise(async () => {
        await page.goto(`${u}/`)
        await expect.poll(() => page.locator("#login").isVisible()).toBe(true)
        await page.fill("#login-token", ADMIN)
        await page.click("#login-form button[type=submit]")
        await expect.poll(() => page.locator("#live").textContent(), { timeout: 15_000 }).toBe("live")
        await page.evaluate(() => ((globalThis as unknown as { marker: number }).marker = 7))
      })
      const id = yield* submitJob({ score: "sleep", players: ["viola"], policy: { name: "one-of" }, params: { seconds: 2 } })
      yield* Effect.promise(async () => {
        const badge = page.locator(`#jobs tr[data-job="${id}"] .badge`)
        await expect.poll(() => badge.textContent(), { timeout: 10_000 }).toBe("PENDING")
        await page.screenshot({ path: path.join(artifacts, "pending.png") })
        await expect.poll(() => badge.textContent(), { timeout: 20_000 }).toBe("OK")
        await page.screenshot({ path: path.join(artifacts, "ok.png"), fullPage: true })
        expect(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker)).toBe(7)
      })
      expect(fs.statSync(path.join(artifacts, "ok.png")).size).toBeGreaterThan(1000)
    }).pipe(Effect.scoped, shared.withLogs), 60_000)

  it.live("shows a pipeline run started through the API go from PENDING to OK with its jobs; a token with limits is told why it sees none", () =>
    Effect.gen(function*() {
      const u = yield* url
      const browser = yield* Effect.promise(() => Browser.launch())
      yield* Effect.addFinalizer(() => Effect.promise(() => browser.close()))
      const { page } = browser
      const artifacts = path.resolve(__dirname, "..", "test-artifacts", "dashboard")
      fs.mkdirSync(artifacts, { recursive: true })
      const login = (token: string) =>
        Effect.promise(async () => {
          await page.goto(`${u}/`)
          await expect.poll(() => page.locator("#login").isVisible()).toBe(true)
          await page.fill("#login-token", token)
          await page.click("#login-form button[type=submit]")
          await expect.poll(() => page.locator("#live").textContent(), { timeout: 15_000 }).toBe("live")
        })
      yield* login(ADMIN)
      const name = `shown-${Date.now()}`
      const document = [
        `name: ${name}`,
        "jobs:",
        "  nap: { score: sleep, players: [viola], policy: all-of, params: { seconds: 2 } }",
        "  after: { needs: [nap], score: echo, players: [cello], policy: all-of, params: { message: done } }",
        ""
      ].join("\n")
      const created = yield* call("POST", "/v1/pipelines", { body: { document } })
      expect(created.status).toBe(201)
      const id = created.json.id as number
      yield* Effect.promise(async () => {
        const row = page.locator(`#pipelines tr[data-run="${id}"]`)
        await expect.poll(() => row.locator(".badge").textContent(), { timeout: 10_000 }).toBe("PENDING")
        expect(await row.textContent()).toContain(name)
        await row.click()
        await expect.poll(() => page.locator("#run-jobs tr[data-name=nap] .badge").textContent(), { timeout: 10_000 }).toBe("SUBMITTED")
        await expect.poll(() => page.locator("#run-jobs tr[data-name=after] .badge").textContent()).toBe("WAITING")
        await page.screenshot({ path: path.join(artifacts, "pipeline-pending.png"), fullPage: true })
        await expect.poll(() => row.locator(".badge").textContent(), { timeout: 20_000 }).toBe("OK")
        await expect.poll(() => page.locator("#run-jobs tr[data-name=after] .badge").textContent(), { timeout: 10_000 }).toBe("OK")
        expect(await row.locator("td").nth(2).textContent()).toBe("2/2")
        // the job's button opens the job itself
        await page.locator("#run-jobs tr[data-name=after] button").click()
        await expect.poll(() => page.locator("#job-title").textContent()).toMatch(/^Job [0-9]+$/)
        await page.screenshot({ path: path.join(artifacts, "pipeline-ok.png"), fullPage: true })
      })
      const run = (yield* call("GET", `/v1/pipelines/${id}`)).json
      const shownJob = yield* Effect.promise(() => page.locator("#job-title").textContent())
      expect(shownJob).toBe(`Job ${run.jobs[1].id}`)

      yield* Effect.promise(() => page.evaluate("sessionStorage.clear()"))
      yield* login(LIMITED)
      yield* Effect.promise(async () => {
        await expect.poll(() => page.locator("#pipelines-note").textContent(), { timeout: 10_000 }).toContain("without score or player limits")
        expect(await page.locator(`#pipelines tr[data-run="${id}"]`).count()).toBe(0)
      })
    }).pipe(Effect.scoped, shared.withLogs), 90_000)
})
