/**
 * The HTTP client against a scripted HTTP server on 127.0.0.1: how each
 * kind of reply becomes a `ClientError`, the bearer token, long polls of
 * `wait`, and an event stream that breaks and is resumed from the last id.
 * (The same client against a real conductor is in Conductor.test.ts.)
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Either, Stream } from "effect"
import * as http from "node:http"
import type { ClientError } from "../src/ClientError.js"
import { OrchestraClient } from "../src/index.js"

interface Seen {
  readonly method: string
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void

/** A real HTTP server on a free port of 127.0.0.1, answering with `handler`; closed with the scope. */
const serve = (handler: Handler) =>
  Effect.acquireRelease(
    Effect.async<{ readonly url: string; readonly seen: Array<Seen>; readonly server: http.Server }>((resume) => {
      const seen: Array<Seen> = []
      const server = http.createServer((req, res) => {
        seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers })
        handler(req, res, seen.length)
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, seen, server }))
      })
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

const json = (res: http.ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json" })
  res.end(JSON.stringify(body))
}

const job = (id: number, state: string) => ({
  id,
  score: "echo",
  policy: "one-of",
  state,
  createdAt: 1000,
  targets: ["p1"],
  players: state === "PENDING" ? {} : { p1: { outcome: "OK", response: { message: "hi" }, key: "0", attempt: 1 } },
  attempts: [],
  request: { score: "echo", policy: { name: "one-of" } }
})

const event = (seq: number, type: string, extra: Record<string, unknown>) =>
  `id: b-${seq}\nevent: ${type}\ndata: ${JSON.stringify({ type, id: `b-${seq}`, at: 1000 + seq, ...extra })}\n\n`

const task = (type: string, player: string) => ({ job: 5, score: "echo", key: "0", attempt: 1, player, ...(type === "task.finished" ? { outcome: "OK" } : {}) })

describe("OrchestraClient over HTTP", () => {
  it.scoped("sends the bearer token and decodes a submission and a job", () =>
    Effect.gen(function*() {
      const s = yield* serve((req, res) => {
        if (req.method === "POST") {
          let body = ""
          req.on("data", (c) => (body += c))
          req.on("end", () => json(res, 201, { id: 5, existing: JSON.parse(body).idempotencyKey === "k" }))
        } else json(res, 200, job(5, "OK"))
      })
      const client = yield* OrchestraClient.makeHttp({ url: `${s.url}/`, token: "s3cret" })
      const submitted = yield* client.submit({ score: "echo", players: ["p1"], policy: { name: "one-of" }, idempotencyKey: "k" })
      expect(submitted).toEqual({ id: 5, existing: true })
      const detail = yield* client.get(5)
      expect(detail.players["p1"]?.response).toEqual({ message: "hi" })
      expect(s.seen.map((r) => `${r.method} ${r.url}`)).toEqual(["POST /v1/jobs", "GET /v1/jobs/5"])
      expect(s.seen.every((r) => r.headers.authorization === "Bearer s3cret")).toBe(true)
    }))

  it.scoped("each refusal has its reason: unauthorized, forbidden, refused with issues, not-found", () =>
    Effect.gen(function*() {
      const s = yield* serve((req, res) => {
        const url = req.url ?? ""
        if (req.headers.authorization !== "Bearer good") return json(res, 401, { _tag: "Unauthorized", message: "no such token" })
        if (url.startsWith("/v1/jobs/1")) return json(res, 404, { _tag: "JobNotFound", id: 1 })
        if (url.startsWith("/v1/jobs/2/cancel")) return json(res, 409, { _tag: "JobFinished", id: 2, state: "OK" })
        if (url.startsWith("/v1/jobs/4")) return json(res, 403, { _tag: "Forbidden", message: "not for you", token: "t", scores: ["x"], players: [] })
        if (url.startsWith("/v1/scores")) return json(res, 403, { _tag: "Forbidden", message: "not for you", token: "t", scores: ["x"], players: [] })
        if (url.startsWith("/v1/jobs?")) return json(res, 503, { _tag: "StoreError", operation: "list", message: "disk full" })
        if (url.startsWith("/v1/players")) return json(res, 503, { message: "behind a proxy" })
        return json(res, 400, {
          _tag: "InvalidRequest",
          message: "invalid job request",
          issues: [{ path: "params.threshold", message: "must be <= 100" }, { path: "players", message: "unknown player x" }]
        })
      })
      const reason = <A>(e: Effect.Effect<A, ClientError>) =>
        Effect.map(Effect.either(e), (r) => (Either.isLeft(r) ? r.left : undefined))
      const bad = yield* OrchestraClient.makeHttp({ url: s.url, token: "bad" })
      const good = yield* OrchestraClient.makeHttp({ url: s.url, token: "good" })
      const none = yield* OrchestraClient.makeHttp({ url: s.url })
      expect((yield* reason(bad.get(3)))?.reason).toBe("unauthorized")
      expect((yield* reason(none.players()))?.reason).toBe("unauthorized")
      expect(s.seen.at(-1)?.headers.authorization).toBeUndefined()
      const refused = yield* reason(good.submit({ score: "echo", players: ["x"], policy: { name: "one-of" } }))
      expect(refused?.reason).toBe("refused")
      expect(refused?.issues).toEqual([{ path: "params.threshold", message: "must be <= 100" }, { path: "players", message: "unknown player x" }])
      expect((yield* reason(good.get(1)))?.reason).toBe("not-found")
      expect((yield* reason(good.get(1)))?.message).toBe("job 1 not found")
      const finished = yield* reason(good.cancel(2))
      expect(finished?.reason).toBe("refused")
      expect(finished?.message).toContain("already finished")
      expect((yield* reason(good.get(4)))?.reason).toBe("forbidden")
      expect((yield* reason(good.get(4)))?.message).toBe("not for you")
      // an endpoint that does not declare 403: still forbidden, by its status
      expect((yield* reason(good.scores()))?.reason).toBe("forbidden")
      const store = yield* reason(good.list({ state: "FAIL" }))
      expect(store?.reason).toBe("refused")
      expect(store?.message).toContain("disk full")
      expect((yield* reason(good.players()))?.reason).toBe("connect")
    }))

  it.scoped("no server, garbage, a foreign server, or a bad URL: connect and protocol errors", () =>
    Effect.gen(function*() {
      const s = yield* serve((req, res) => {
        if ((req.url ?? "").startsWith("/v1/jobs/1")) {
          res.writeHead(200, { "content-type": "application/json" })
          res.end("{not json")
        } else {
          res.writeHead(404, { "content-type": "text/html" })
          res.end("<h1>nope</h1>")
        }
      })
      const client = yield* OrchestraClient.makeHttp({ url: s.url, token: "t" })
      const garbage = yield* Effect.either(client.get(1))
      expect(Either.isLeft(garbage) && garbage.left.reason).toBe("protocol")
      const foreign = yield* Effect.either(client.get(2))
      expect(Either.isLeft(foreign) && foreign.left.reason).toBe("protocol")
      // a port nobody listens on: the server's port after it is closed
      const closed = yield* Effect.scoped(serve((_, res) => res.end()))
      const nobody = yield* OrchestraClient.makeHttp({ url: closed.url })
      const refused = yield* Effect.either(nobody.get(1))
      expect(Either.isLeft(refused) && refused.left.reason).toBe("connect")
      expect(Either.isLeft(refused) && refused.left.message).toContain(closed.url)
      const notUrl = yield* Effect.either(OrchestraClient.makeHttp({ url: "ftp://x" }))
      expect(Either.isLeft(notUrl) && notUrl.left.reason).toBe("connect")
    }))

  it.scopedLive("wait long-polls until the job finishes", () =>
    Effect.gen(function*() {
      const s = yield* serve((_req, res, n) => json(res, 200, job(5, n < 3 ? "PENDING" : "FAIL")))
      const client = yield* OrchestraClient.makeHttp({ url: s.url })
      const done = yield* client.wait(5)
      expect(done.state).toBe("FAIL")
      expect(s.seen.map((r) => r.url.replace(/timeout=\d+ms/, "timeout=T"))).toEqual([
        "/v1/jobs/5/wait?timeout=T",
        "/v1/jobs/5/wait?timeout=T",
        "/v1/jobs/5/wait?timeout=T"
      ])
      expect(s.seen[0]?.url).toBe("/v1/jobs/5/wait?timeout=300000ms")
    }))

  it.scopedLive("wait with a timeout returns the job still pending, asking for no more than is left", () =>
    Effect.gen(function*() {
      const s = yield* serve((_req, res) => setTimeout(() => json(res, 200, job(5, "PENDING")), 20))
      const client = yield* OrchestraClient.makeHttp({ url: s.url })
      const pending = yield* client.wait(5, Duration.millis(150))
      expect(pending.state).toBe("PENDING")
      const asked = s.seen.map((r) => /timeout=(\d+)ms/.exec(r.url)?.[1]).filter((t) => t !== undefined).map(Number)
      expect(asked.length).toBeGreaterThanOrEqual(1)
      expect(asked[0]).toBeLessThanOrEqual(150)
      expect(asked.every((t, i) => i === 0 || t < asked[i - 1]!)).toBe(true)
    }))

  it.scopedLive("an event stream that breaks is resumed with Last-Event-ID, and ends after job.finished", () =>
    Effect.gen(function*() {
      let streams = 0
      const s = yield* serve((req, res) => {
        // between connections the client asks whether the job has finished meanwhile: not yet
        if (req.url === "/v1/jobs/5") return json(res, 200, job(5, "PENDING"))
        res.writeHead(200, { "content-type": "text/event-stream" })
        if (++streams === 1) {
          // two events, a comment, then the connection drops
          res.write(event(1, "task.dispatched", task("task.dispatched", "p1")))
          res.write(": keep-alive\n\n")
          res.write(event(2, "task.started", task("task.started", "p1")))
          setTimeout(() => res.destroy(), 30)
        } else {
          res.write(event(3, "task.finished", task("task.finished", "p1")))
          res.write(event(4, "job.finished", { job: 5, score: "echo", targets: ["p1"], state: "OK" }))
          // the conductor ends a job's stream after job.finished; this one would go on: the client stops reading
        }
      })
      const client = yield* OrchestraClient.makeHttp({ url: s.url, token: "t" })
      const events = yield* client.events(5).pipe(Stream.runCollect, Effect.timeout(Duration.seconds(20)))
      expect(Chunk.toReadonlyArray(events).map((e) => `${e.id} ${e.type}`)).toEqual([
        "b-1 task.dispatched",
        "b-2 task.started",
        "b-3 task.finished",
        "b-4 job.finished"
      ])
      expect(s.seen.map((r) => r.url)).toEqual(["/v1/jobs/5/events", "/v1/jobs/5", "/v1/jobs/5/events"])
      expect(s.seen[0]?.headers["last-event-id"]).toBeUndefined()
      expect(s.seen[2]?.headers["last-event-id"]).toBe("b-2")
      expect(s.seen[2]?.headers.authorization).toBe("Bearer t")
    }))

  it.scoped("events of everything: from an id, with a type filter; a refused stream fails at once", () =>
    Effect.gen(function*() {
      const s = yield* serve((req, res) => {
        if (req.headers.authorization !== "Bearer t") return json(res, 401, { _tag: "Unauthorized", message: "no token" })
        res.writeHead(200, { "content-type": "text/event-stream" })
        res.write(event(8, "player.connected", { player: "p1", slots: 4 }))
        res.write(event(9, "player.disconnected", { player: "p1" }))
      })
      const client = yield* OrchestraClient.makeHttp({ url: s.url, token: "t" })
      const two = yield* client.events("all", { lastEventId: "b-7", types: ["player.connected", "player.disconnected"] }).pipe(
        Stream.take(2),
        Stream.runCollect
      )
      expect(Chunk.toReadonlyArray(two).map((e) => e.type)).toEqual(["player.connected", "player.disconnected"])
      expect(s.seen[0]?.url).toBe("/v1/events?types=player.connected%2Cplayer.disconnected")
      expect(s.seen[0]?.headers["last-event-id"]).toBe("b-7")
      const anonymous = yield* OrchestraClient.makeHttp({ url: s.url })
      const refused = yield* Effect.either(Stream.runCollect(anonymous.events("all")))
      expect(Either.isLeft(refused) && refused.left.reason).toBe("unauthorized")
    }))
})
