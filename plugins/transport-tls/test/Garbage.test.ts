/**
 * 10,000 garbage and oversized frames from raw TLS clients holding valid
 * certificates, in batches of 50 connections, while a real player keeps
 * exchanging messages with the conductor the whole time. Every bad
 * connection must be closed with a `Refused` saying why; the real session
 * must never miss an answer; the conductor must keep serving.
 *
 * The raw clients run in a worker thread (plain node:tls, TLS session
 * resumption) so their handshakes do not compete with the conductor for
 * the same thread. `ORCHESTRA_GARBAGE_FRAMES` overrides the count.
 */
import { describe, expect, it } from "@effect/vitest"
import { Protocol, Transport } from "@orchestra/core"
import { hello, results } from "@orchestra/core/testing/TransportSuite"
import { Chunk, Effect, Fiber, Ref, Stream } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Worker } from "node:worker_threads"
import { Frame, TransportTls } from "../src/index.js"
import { fixture, quietContext, recordingContext } from "./fixture.js"

const TOTAL = Number(process.env["ORCHESTRA_GARBAGE_FRAMES"] ?? 10_000)
const BATCH = 50
const MAX_FRAME = 64 * 1024

/** The raw clients (CommonJS, evaluated in the worker). */
const workerSource = String.raw`
const { parentPort, workerData } = require("node:worker_threads")
const tls = require("node:tls")
const crypto = require("node:crypto")
const w = workerData
const context = tls.createSecureContext({ ca: w.ca, cert: w.cert, key: w.key })
const header = (n) => { const h = Buffer.alloc(4); h.writeUInt32BE(n >>> 0); return h }
const frame = (b) => Buffer.concat([header(b.length), b])
const hello = Buffer.from(w.helloFrame), results = Buffer.from(w.resultsFrame), welcome = Buffer.from(w.welcomeFrame)
const kinds = [
  ["length 2^32-1", () => header(0xffffffff), "exceeds the maximum"],
  ["length max+1", () => Buffer.concat([header(w.maxFrameBytes + 1), crypto.randomBytes(64)]), "exceeds the maximum"],
  ["invalid UTF-8", () => frame(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), "not valid UTF-8"],
  ["not JSON", () => frame(Buffer.from('{"_tag": Hello')), "not JSON"],
  ["empty payload", () => frame(Buffer.alloc(0)), "not JSON"],
  ["random bytes", () => frame(crypto.randomBytes(24)), "bad frame"],
  ["schema violation", () => frame(Buffer.from(JSON.stringify({ _tag: "Hello", protocol: 2, player: "g", slots: 0, catalog: [] }))), "schema"],
  ["JSON array", () => frame(Buffer.from("[1,2,3]")), "schema"],
  ["Welcome sent by a player", () => welcome, "schema"],
  ["Results before Hello", () => results, "expected Hello as the first message, got Results"],
  ["second Hello", () => Buffer.concat([hello, hello]), "a second Hello"],
  ["oversized after admission", () => Buffer.concat([hello, header(0xfffffff0)]), "exceeds the maximum"]
]
let session
const connectOnce = (data) => new Promise((resolve) => {
  const chunks = []
  let reused = false
  const socket = tls.connect({ host: "127.0.0.1", port: w.port, servername: "conductor", secureContext: context, ...(session ? { session } : {}) })
  const timer = setTimeout(() => socket.destroy(), 20000)
  socket.on("session", (s) => { session = s })
  socket.on("secureConnect", () => { reused = socket.isSessionReused(); socket.write(data) })
  socket.on("data", (d) => chunks.push(d))
  socket.on("error", () => {})
  socket.on("close", () => { clearTimeout(timer); resolve({ data: Buffer.concat(chunks), reused }) })
})
const parse = (data) => {
  const out = []
  let at = 0
  while (at + 4 <= data.length) {
    const n = data.readUInt32BE(at)
    if (at + 4 + n > data.length) break
    try { out.push(JSON.parse(data.subarray(at + 4, at + 4 + n).toString("utf8"))) } catch { out.push({}) }
    at += 4 + n
  }
  return out
}
;(async () => {
  const byKind = {}
  const mismatches = []
  let reused = 0, done = 0
  for (let start = 0; start < w.total; start += w.batch) {
    const n = Math.min(w.batch, w.total - start)
    await Promise.all(Array.from({ length: n }, async (_, j) => {
      const [name, make, expected] = kinds[(start + j) % kinds.length]
      const r = await connectOnce(make())
      if (r.reused) reused++
      const frames = parse(r.data).filter((f) => f._tag !== "Ping" && f._tag !== "Pong")
      const last = frames[frames.length - 1]
      const ok = last !== undefined && last._tag === "Refused" && typeof last.reason === "string" && last.reason.includes(expected)
      byKind[name] = byKind[name] || { ok: 0, bad: 0 }
      byKind[name][ok ? "ok" : "bad"]++
      if (!ok && mismatches.length < 5) mismatches.push({ name, frames })
    }))
    done += n
    parentPort.postMessage({ progress: done })
  }
  parentPort.postMessage({ result: { byKind, mismatches, reused } })
})()
`

interface WorkerResult {
  readonly byKind: Record<string, { ok: number; bad: number }>
  readonly mismatches: ReadonlyArray<unknown>
  readonly reused: number
}

const runWorker = (data: Record<string, unknown>, progress: (n: number) => void) =>
  Effect.async<WorkerResult, Error>((resume) => {
    const worker = new Worker(workerSource, { eval: true, workerData: data })
    worker.on("message", (m: { progress?: number; result?: WorkerResult }) => {
      if (m.progress !== undefined) progress(m.progress)
      if (m.result !== undefined) resume(Effect.succeed(m.result))
    })
    worker.on("error", (e) => resume(Effect.fail(e)))
    return Effect.promise(() => worker.terminate())
  })

const acker = (session: Transport.PlayerSession) =>
  Stream.runForEach(session.incoming, (m) =>
    m._tag === "Results" ? session.send(new Protocol.Ack({ refs: m.results.map((r) => r.ref) })) : Effect.void)

const roundTrip = (s: Transport.ConductorSession, i: number) =>
  Effect.gen(function*() {
    const fiber = yield* s.incoming.pipe(
      Stream.filter((m) => m._tag === "Ack" && m.refs[0]!.job === i),
      Stream.take(1),
      Stream.runCollect,
      Effect.fork
    )
    yield* s.send(results(i))
    const got = yield* Fiber.join(fiber).pipe(
      Effect.timeoutFail({ duration: 15_000, onTimeout: () => new Error(`no Ack for job ${i} within 15 s`) })
    )
    if (Chunk.size(got) !== 1) return yield* Effect.fail(new Error(`the session ended before the Ack of job ${i}`))
  })

describe("garbage", () => {
  it.scopedLive(`${TOTAL} garbage and oversized frames close only their own connections while a real session keeps working`, () =>
    Effect.gen(function*() {
      const dir = yield* fixture(["p1", "g", "late"])
      const ctx = recordingContext(dir)
      const conductor = yield* TransportTls.makeConductor(
        {
          listen: { host: "127.0.0.1", port: 0 },
          tls: { ca: "ca.pem", cert: "conductor.pem", key: "conductor-key.pem", crl: "crl.pem" },
          maxFrameBytes: MAX_FRAME
        },
        ctx
      )
      const admitted = yield* Ref.make(0)
      const { address } = yield* conductor.serve(() => Ref.update(admitted, (n) => n + 1).pipe(Effect.as(acker)))
      const port = Number(address.split(":").pop())
      const player = yield* TransportTls.makePlayer(
        { tls: { ca: "ca.pem", cert: "p1.pem", key: "p1-key.pem" }, conductorName: "conductor" },
        quietContext(dir)
      )
      const real = yield* player.connect(address, hello("p1"))

      // The real player exchanges messages the whole time; any missed answer fails the test.
      const exchanged = yield* Ref.make(0)
      let stop = false
      const chatter = yield* Effect.fork(Effect.gen(function*() {
        let i = 1
        while (!stop) {
          yield* roundTrip(real, i++)
          yield* Ref.update(exchanged, (n) => n + 1)
          // Steady, not flat out: the point is that answers keep coming, not to starve the conductor.
          yield* Effect.sleep("10 millis")
        }
      }))
      const progress: Array<number> = []
      const read = (f: string) => fs.readFileSync(path.join(dir, f))
      const result = yield* runWorker({
        port,
        ca: read("ca.pem"),
        cert: read("g.pem"),
        key: read("g-key.pem"),
        total: TOTAL,
        batch: BATCH,
        maxFrameBytes: MAX_FRAME,
        helloFrame: Frame.fromPlayer.encode(hello("g")),
        resultsFrame: Frame.fromPlayer.encode(results(1)),
        welcomeFrame: Frame.toPlayer.encode(new Protocol.Welcome({ protocol: 1, conductor: "me" }))
      }, (n) => {
        progress.push(n)
      })
      const duringGarbage = yield* Ref.get(exchanged)
      stop = true
      yield* Fiber.join(chatter)

      expect(result.mismatches).toEqual([])
      const total = Object.values(result.byKind).reduce((a, k) => a + k.ok + k.bad, 0)
      const ok = Object.values(result.byKind).reduce((a, k) => a + k.ok, 0)
      expect(total).toBe(TOTAL)
      expect(ok).toBe(TOTAL)
      expect(Object.keys(result.byKind).length).toBe(12)
      expect(progress.length).toBe(Math.ceil(TOTAL / BATCH))
      // The real session answered throughout, and still does; a new player still gets in.
      expect(duringGarbage).toBeGreaterThan(0)
      yield* roundTrip(real, 1_000_000)
      const late = yield* TransportTls.makePlayer(
        { tls: { ca: "ca.pem", cert: "late.pem", key: "late-key.pem" }, conductorName: "conductor" },
        quietContext(dir)
      )
      const lateSession = yield* late.connect(address, hello("late"))
      yield* roundTrip(lateSession, 2_000_000)
      // Each bad connection was logged with its reason.
      const closedLines = ctx.lines.filter((l) => l.level === "warn" && l.message.includes("closed:"))
      expect(closedLines.length).toBeGreaterThanOrEqual(TOTAL)
      // Two of the twelve kinds send a valid Hello first and get admitted before misbehaving.
      const admittedCount = yield* Ref.get(admitted)
      expect(admittedCount).toBeGreaterThanOrEqual(2 + Math.floor(TOTAL / 12) * 2)
      console.log(
        `garbage: ${TOTAL} connections (${result.reused} resumed TLS sessions), ${duringGarbage} round trips of the real session meanwhile`
      )
    }), 600_000)
})
