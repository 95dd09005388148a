/**
 * The page in real headless Chromium against a scripted stand-in of the
 * conductor's HTTP API (the shapes of `@orchestra/api`, on 127.0.0.1): the
 * token dialog and the bearer header, the token on the event stream, live
 * updates from pushed events without reload, resuming with Last-Event-ID
 * after the stream drops, a `reset` re-reading everything, a job's detail
 * with its log, and the submit form with the server's issues listed.
 * The real conductor is in `cluster.test.ts`.
 */
import { HttpApp } from "@effect/platform"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, expect, it } from "vitest"
import { Dashboard } from "../src/index.js"
import * as Browser from "./support/Browser.js"

const TOKEN = "s3cret-token"

interface Stub {
  readonly url: string
  /** Every request: method, path with query, authorization header, last-event-id header. */
  readonly requests: Array<{ method: string; url: string; auth: string | undefined; lastEventId: string | undefined }>
  readonly state: {
    players: Array<Record<string, unknown>>
    jobs: Map<number, Record<string, unknown>>
    queued: number
    submitted: Array<unknown>
  }
  /** Publish an event to every open stream (and keep it for resumes). */
  readonly push: (event: Record<string, unknown>) => string
  /** Drop every open stream (the browser reconnects by itself). */
  readonly dropStreams: () => void
  readonly openStreams: () => number
  readonly close: () => Promise<void>
}

const startStub = async (): Promise<Stub> => {
  const dashboard = HttpApp.toWebHandler(Dashboard.router)
  const now = Date.now()
  const state: Stub["state"] = {
    players: [
      { name: "alpha", online: true, allowlisted: true, slots: 4, running: 0, idle: 4, labels: { role: "web" }, address: "127.0.0.1:40001", lastSeen: now, scores: ["sleep", "echo"] },
      { name: "beta", online: false, allowlisted: true, slots: 2, running: 0, idle: 0, labels: {}, lastSeen: now - 125_000, scores: ["sleep"] }
    ],
    jobs: new Map(),
    queued: 0,
    submitted: []
  }
  state.jobs.set(1, {
    id: 1,
    score: "echo",
    policy: "all-of",
    state: "OK",
    targets: ["alpha"],
    createdAt: now - 60_000,
    finishedAt: now - 59_000,
    request: { score: "echo", players: ["alpha"], policy: { name: "all-of" }, params: { message: "hi" } },
    players: { alpha: { outcome: "OK", response: { message: "hi" }, key: "alpha", attempt: 1 } },
    attempts: [{ key: "alpha", attempt: 1, player: "alpha", dispatchedAt: now - 60_000, startedAt: now - 59_900, finishedAt: now - 59_000, outcome: "OK", response: { message: "hi" }, logBytes: 18 }]
  })
  const log: Array<{ seq: number; text: string }> = []
  let seq = 0
  const streams = new Set<http.ServerResponse>()
  const requests: Stub["requests"] = []

  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" })
    res.end(JSON.stringify(body))
  }
  const summary = (j: Record<string, unknown>) => ({
    id: j["id"],
    score: j["score"],
    policy: j["policy"],
    state: j["state"],
    targets: j["targets"],
    createdAt: j["createdAt"],
    ...(j["finishedAt"] === undefined ? {} : { finishedAt: j["finishedAt"] })
  })

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1")
    const auth = req.headers.authorization
    const lastEventId = req.headers["last-event-id"] as string | undefined
    requests.push({ method: req.method ?? "GET", url: url.pathname + url.search, auth, lastEventId })
    const authorized = auth === `Bearer ${TOKEN}` || url.searchParams.get("access_token") === TOKEN
    const body: Array<Buffer> = []
    req.on("data", (c: Buffer) => body.push(c))
    req.on("end", () => {
      const p = url.pathname
      if (!p.startsWith("/v1/") && p !== "/healthz") {
        void dashboard(new Request(`http://127.0.0.1${req.url}`, { headers: req.headers as Record<string, string> })).then(async (r) => {
          res.writeHead(r.status, Object.fromEntries(r.headers))
          res.end(Buffer.from(await r.arrayBuffer()))
        })
        return
      }
      if (p === "/healthz") {
        return json(res, 200, { status: "ok", name: "stub-conductor", startedAt: now, players: { online: 1, allowlisted: 2 }, queued: state.queued, lastEventId: `b-${seq}` })
      }
      if (!authorized) return json(res, 401, { _tag: "Unauthorized", message: "missing or invalid bearer token" })
      if (p === "/v1/players") {
        const online = state.players.filter((x) => x["online"] === true)
        return json(res, 200, {
          players: state.players,
          summary: { total: state.players.length, online: online.length, busy: 0, idle: online.length, slots: 4, running: online.reduce((n, x) => n + Number(x["running"]), 0), free: 4 }
        })
      }
      if (p === "/v1/scores") {
        return json(res, 200, { scores: [{ name: "sleep", interface: "env", description: "Wait", idempotent: true, players: ["alpha", "beta"], differs: false, variants: [] }] })
      }
      if (p === "/v1/jobs" && req.method === "POST") {
        const request = JSON.parse(Buffer.concat(body).toString("utf8")) as Record<string, unknown>
        state.submitted.push(request)
        if (request["score"] === "nope") {
          return json(res, 400, { _tag: "InvalidRequest", message: "invalid job request", issues: [{ path: "score", message: "no player has a score named nope" }] })
        }
        const id = Math.max(0, ...state.jobs.keys()) + 1
        const job = { id, score: request["score"], policy: (request["policy"] as { name: string }).name, state: "PENDING", targets: request["players"], createdAt: Date.now(), request, players: {}, attempts: [] }
        state.jobs.set(id, job)
        return json(res, 201, { id, existing: false })
      }
      if (p === "/v1/jobs") {
        const want = url.searchParams.get("state")
        const jobs = [...state.jobs.values()].filter((j) => want === null || j["state"] === want).sort((a, b) => Number(b["id"]) - Number(a["id"]))
        return json(res, 200, { jobs: jobs.map(summary) })
      }
      const logMatch = /^\/v1\/jobs\/([0-9]+)\/tasks\/([^/]+)\/attempts\/([0-9]+)\/log$/.exec(p)
      if (logMatch !== null) {
        res.writeHead(200, { "content-type": "text/plain; charset=utf-8" })
        return res.end(`log of ${decodeURIComponent(logMatch[2]!)} #${logMatch[3]}\n`)
      }
      const jobMatch = /^\/v1\/jobs\/([0-9]+)$/.exec(p)
      if (jobMatch !== null) {
        const job = state.jobs.get(Number(jobMatch[1]))
        return job === undefined ? json(res, 404, { _tag: "JobNotFound", id: Number(jobMatch[1]) }) : json(res, 200, job)
      }
      if (p === "/v1/events") {
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
        res.write(": hello\n\n")
        const from = lastEventId ?? url.searchParams.get("lastEventId") ?? undefined
        const after = from === undefined ? seq : Number(from.split("-")[1] ?? seq)
        for (const e of log) if (e.seq > after) res.write(e.text)
        streams.add(res)
        res.on("close", () => streams.delete(res))
        return
      }
      json(res, 404, { message: "not found" })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    state,
    push: (event) => {
      seq++
      const id = `b-${seq}`
      const text = `id: ${id}\nevent: ${String(event["type"])}\ndata: ${JSON.stringify({ ...event, id, at: Date.now() })}\n\n`
      log.push({ seq, text })
      for (const s of streams) s.write(text)
      return id
    },
    dropStreams: () => {
      for (const s of streams) s.destroy()
      streams.clear()
    },
    openStreams: () => streams.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of streams) s.destroy()
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

Browser.describeWithChromium("the dashboard page (stand-in API)", () => {
  let stub: Stub
  let browser: Browser.Chromium

  beforeAll(async () => {
    stub = await startStub()
    browser = await Browser.launch()
  })
  afterAll(async () => {
    await browser?.close()
    await stub?.close()
  })

  it("asks for the token, refuses a wrong one, then sends the right one as bearer and on the stream", async () => {
    const { page } = browser
    await page.goto(`${stub.url}/`)
    const dialog = page.locator("#login")
    await expect.poll(() => dialog.isVisible()).toBe(true)
    await page.fill("#login-token", "wrong")
    await page.click("#login-form button[type=submit]")
    await expect.poll(() => page.locator("#login-error").textContent()).toContain("refused this token")
    await page.fill("#login-token", TOKEN)
    await page.click("#login-form button[type=submit]")
    await expect.poll(() => dialog.isVisible()).toBe(false)
    await expect.poll(() => page.locator("#live").textContent()).toBe("live")
    expect(await page.evaluate(() => (globalThis as unknown as { sessionStorage: { getItem: (k: string) => string | null } }).sessionStorage.getItem("orchestra.token"))).toBe(TOKEN)
    expect(stub.requests.some((r) => r.url === "/v1/players" && r.auth === `Bearer ${TOKEN}`)).toBe(true)
    const stream = stub.requests.filter((r) => r.url.startsWith("/v1/events"))
    expect(stream.length).toBeGreaterThan(0)
    expect(new URL(stream.at(-1)!.url, stub.url).searchParams.get("access_token")).toBe(TOKEN)
    expect(await page.locator("#conductor").textContent()).toBe("stub-conductor")
  })

  it("shows players, the queue and recent jobs", async () => {
    const { page } = browser
    await expect.poll(() => page.locator('#players tr[data-player="alpha"] .badge').textContent()).toBe("online")
    expect(await page.locator('#players tr[data-player="beta"] .badge').textContent()).toBe("offline")
    expect(await page.locator('#players tr[data-player="beta"] td').nth(5).textContent()).toMatch(/^2m \d+s ago$/)
    expect(await page.locator('#players tr[data-player="alpha"] .label').textContent()).toBe("role=web")
    expect(await page.locator('#jobs tr[data-job="1"] .badge').textContent()).toBe("OK")
    expect(await page.locator("#players-online").textContent()).toBe("1 / 2")
    expect(await page.locator("#queue-pending").textContent()).toBe("0")
  })

  it("follows pushed events without reloading", async () => {
    const { page } = browser
    await page.evaluate(() => {
      ;(globalThis as unknown as { marker: number }).marker = 42
    })
    const createdAt = Date.now()
    stub.state.jobs.set(2, {
      id: 2, score: "sleep", policy: "one-of", state: "PENDING", targets: ["alpha", "beta"], createdAt,
      request: { score: "sleep", policy: { name: "one-of" }, params: { seconds: 2 } }, players: {}, attempts: []
    })
    stub.push({ type: "job.submitted", job: 2, score: "sleep", policy: "one-of", targets: ["alpha", "beta"] })
    await expect.poll(() => page.locator('#jobs tr[data-job="2"] .badge').textContent()).toBe("PENDING")
    await expect.poll(() => page.locator("#queue-pending").textContent()).toBe("1")
    stub.state.jobs.set(2, { ...stub.state.jobs.get(2), state: "OK", finishedAt: Date.now() })
    stub.push({ type: "job.finished", job: 2, score: "sleep", targets: ["alpha", "beta"], state: "OK" })
    await expect.poll(() => page.locator('#jobs tr[data-job="2"] .badge').textContent()).toBe("OK")
    stub.state.players[0] = { ...stub.state.players[0], online: false, lastSeen: Date.now() }
    stub.push({ type: "player.disconnected", player: "alpha" })
    await expect.poll(() => page.locator('#players tr[data-player="alpha"] .badge').textContent()).toBe("offline")
    expect(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker)).toBe(42)
  })

  it("resumes after the stream drops with the last event id, and misses nothing", async () => {
    const { page } = browser
    const before = stub.requests.filter((r) => r.url.startsWith("/v1/events")).length
    const lastSeen = stub.push({ type: "player.connected", player: "alpha", slots: 4 })
    stub.state.players[0] = { ...stub.state.players[0], online: true, lastSeen: Date.now() }
    await expect.poll(() => page.locator('#players tr[data-player="alpha"] .badge').textContent()).toBe("online")
    stub.dropStreams()
    // While the browser is away: a job finishes. It must come back through the resume.
    stub.state.jobs.set(3, {
      id: 3, score: "echo", policy: "all-of", state: "FAIL", targets: ["alpha"], createdAt: Date.now(), finishedAt: Date.now(),
      request: { score: "echo", policy: { name: "all-of" } }, players: {}, attempts: []
    })
    stub.push({ type: "job.submitted", job: 3, score: "echo", policy: "all-of", targets: ["alpha"] })
    stub.push({ type: "job.finished", job: 3, score: "echo", targets: ["alpha"], state: "FAIL" })
    await expect.poll(() => page.locator('#jobs tr[data-job="3"] .badge').textContent(), { timeout: 15_000 }).toBe("FAIL")
    const resumed = stub.requests.filter((r) => r.url.startsWith("/v1/events")).slice(before)
    expect(resumed.length).toBeGreaterThan(0)
    expect(resumed[0]!.lastEventId).toBe(lastSeen)
  })

  it("re-reads everything on a reset event", async () => {
    const { page } = browser
    const jobsReads = stub.requests.filter((r) => r.url.startsWith("/v1/jobs?limit")).length
    stub.state.jobs.set(9, {
      id: 9, score: "echo", policy: "all-of", state: "CANCELLED", targets: ["beta"], createdAt: Date.now(), finishedAt: Date.now(),
      request: { score: "echo", policy: { name: "all-of" } }, players: {}, attempts: []
    })
    stub.push({ type: "reset", reason: "the conductor restarted" })
    await expect.poll(() => page.locator('#jobs tr[data-job="9"] .badge').textContent()).toBe("CANCELLED")
    expect(stub.requests.filter((r) => r.url.startsWith("/v1/jobs?limit")).length).toBeGreaterThan(jobsReads)
  })

  it("opens a job: per-player outcome, response, timings and the attempt's log", async () => {
    const { page } = browser
    await page.click('#jobs tr[data-job="1"]')
    await expect.poll(() => page.locator("#job-title").textContent()).toBe("Job 1")
    const row = page.locator('#tasks tr[data-player="alpha"]')
    await expect.poll(() => row.locator(".badge").textContent()).toBe("OK")
    expect(await row.locator("pre.json").textContent()).toContain('"message": "hi"')
    expect(await row.locator("td").nth(5).textContent()).toBe("900 ms")
    await row.getByRole("button", { name: /^log/ }).click()
    await expect.poll(() => page.locator("#log-text").textContent()).toBe("log of alpha #1\n")
  })

  it("submits a job, lists the server's issues, and opens the new job", async () => {
    const { page } = browser
    await page.fill("#submit-score", "nope")
    await page.fill("#submit-params", "[1]")
    await page.click("#submit-button")
    await expect.poll(() => page.locator("#submit-errors").textContent()).toBe("params must be a JSON object")
    await page.fill("#submit-params", '{"seconds": 2}')
    await page.click("#submit-button")
    await expect.poll(() => page.locator("#submit-errors").textContent()).toBe("score: no player has a score named nope")
    await page.fill("#submit-score", "sleep")
    await page.click('#players tr[data-player="alpha"] button')
    await page.selectOption("#submit-policy", "one-of")
    await page.click("#submit-button")
    await expect.poll(() => page.locator("#submit-result").textContent()).toMatch(/^submitted job \d+$/)
    expect(stub.state.submitted.at(-1)).toEqual({ score: "sleep", players: ["alpha"], policy: { name: "one-of" }, params: { seconds: 2 } })
    const id = Number((await page.locator("#submit-result").textContent())!.split(" ").at(-1))
    await expect.poll(() => page.locator("#job-title").textContent()).toBe(`Job ${id}`)
    await expect.poll(() => page.locator('#tasks tr[data-player="alpha"] .badge').textContent()).toBe("WAITING")
    expect(browser.console.filter((l) => l.startsWith("pageerror"))).toEqual([])
  })
})
