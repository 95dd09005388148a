import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Either, Option } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { UnixSocket } from "../src/index.js"

/** A real Unix-socket server that answers each request with `reply(request)`, as the conductor does. */
const serve = (reply: (request: unknown) => string | undefined) =>
  Effect.acquireRelease(
    Effect.async<{ readonly path: string; readonly requests: Array<unknown> }>((resume) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchestra-client-"))
      const socketPath = path.join(dir, "s.sock")
      const requests: Array<unknown> = []
      const server = net.createServer((conn) => {
        const chunks: Array<Buffer> = []
        conn.on("data", (c) => chunks.push(c))
        conn.on("end", () => {
          const request = JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown
          requests.push(request)
          const r = reply(request)
          if (r === undefined) conn.destroy()
          else conn.end(r)
        })
      })
      server.listen(socketPath, () => resume(Effect.succeed(Object.assign(server, { path: socketPath, requests, dir }))))
    }),
    (s) => Effect.sync(() => {
      ;(s as unknown as net.Server).close()
      fs.rmSync(path.dirname(s.path), { recursive: true, force: true })
    })
  )

describe("UnixSocket client", () => {
  it.scoped("queue sends the original's JSON and returns the id", () =>
    Effect.gen(function*() {
      const s = yield* serve(() => "[\"OK\",17]\n")
      const id = yield* UnixSocket.queue(s.path, { score: "echo", players: ["p1"], scope: "one", params: { message: "hi" } })
      expect(id).toBe(17)
      expect(s.requests).toEqual([{ op: "queue", score: "echo", players: ["p1"], scope: "one", params: { message: "hi" } }])
    }))

  it.scoped("a refusal is a ClientError carrying the conductor's reason", () =>
    Effect.gen(function*() {
      const s = yield* serve(() => "[\"Error\",\"Missing Score\"]\n")
      const r = yield* Effect.either(UnixSocket.queue(s.path, { score: "", players: ["p1"], scope: "one" }))
      expect(Either.isLeft(r) && r.left.reason).toBe("refused")
      expect(Either.isLeft(r) && r.left.message).toBe("Missing Score")
    }))

  it.scoped("status decodes players and answers none for an unknown id", () =>
    Effect.gen(function*() {
      const s = yield* serve((req) =>
        (req as { id: number }).id === 1
          ? JSON.stringify(["OK", { status: "PARTIAL_FAIL", players: { a: { status: "OK", response: { k: "v" } }, b: { status: "FAIL", response: {} } } }]) + "\n"
          : "[\"Error\",null]\n"
      )
      const known = yield* UnixSocket.status(s.path, 1)
      expect(Option.getOrThrow(known).status).toBe("PARTIAL_FAIL")
      expect(Option.getOrThrow(known).players["a"]).toEqual({ status: "OK", response: { k: "v" } })
      expect(Option.isNone(yield* UnixSocket.status(s.path, 2))).toBe(true)
    }))

  it.scopedLive("wait polls until the job is no longer pending, reporting each change once", () =>
    Effect.gen(function*() {
      let calls = 0
      const s = yield* serve(() => {
        calls++
        const status = calls < 3 ? "PENDING" : "OK"
        return JSON.stringify(["OK", { status, players: calls < 2 ? {} : { a: { status: "OK", response: {} } } }]) + "\n"
      })
      const seen: Array<string> = []
      const final = yield* UnixSocket.wait(s.path, 5, {
        interval: Duration.millis(5),
        onProgress: (st) => Effect.sync(() => seen.push(`${st.status}:${Object.keys(st.players).join(",")}`))
      })
      expect(final.status).toBe("OK")
      expect(seen).toEqual(["PENDING:", "PENDING:a", "OK:a"])
    }))

  it.scopedLive("wait gives up at its timeout", () =>
    Effect.gen(function*() {
      const s = yield* serve(() => JSON.stringify(["OK", { status: "PENDING", players: {} }]) + "\n")
      const r = yield* Effect.either(UnixSocket.wait(s.path, 5, { interval: Duration.millis(10), timeout: Duration.millis(100) }))
      expect(Either.isLeft(r) && r.left.reason).toBe("timeout")
    }))

  it.scoped("a reply that is not JSON, or no reply at all, is a protocol error", () =>
    Effect.gen(function*() {
      const garbage = yield* serve(() => "not json\n")
      const r1 = yield* Effect.either(UnixSocket.status(garbage.path, 1))
      expect(Either.isLeft(r1) && r1.left.reason).toBe("protocol")
      const silent = yield* serve(() => undefined)
      const r2 = yield* Effect.either(UnixSocket.status(silent.path, 1))
      expect(Either.isLeft(r2) && r2.left.message).toContain("without a reply")
      const wrongShape = yield* serve(() => JSON.stringify(["OK", { status: "DONE" }]) + "\n")
      const r3 = yield* Effect.either(UnixSocket.status(wrongShape.path, 1))
      expect(Either.isLeft(r3) && r3.left.reason).toBe("protocol")
    }))

  it.effect("no socket: a connect error that says so", () =>
    Effect.gen(function*() {
      const r = yield* Effect.either(UnixSocket.status(path.join(os.tmpdir(), "orchestra-no-such.sock"), 1))
      expect(Either.isLeft(r) && r.left.reason).toBe("connect")
      expect(Either.isLeft(r) && r.left.message).toContain("is the conductor running")
    }))

  it.scoped("players decodes the players extension", () =>
    Effect.gen(function*() {
      const s = yield* serve(() =>
        JSON.stringify(["OK", { p1: { online: true, allowlisted: true, slots: 4, running: 1, labels: { role: "web" }, scores: ["echo"] } }]) + "\n"
      )
      const ps = yield* UnixSocket.players(s.path)
      expect(ps["p1"]?.scores).toEqual(["echo"])
      expect(s.requests).toEqual([{ op: "players" }])
    }))
})
