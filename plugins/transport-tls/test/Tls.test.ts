/**
 * TLS-specific behaviour over real sockets on 127.0.0.1: certificate
 * checks both ways (names, other CAs, no certificate, revocation with
 * reload), heartbeats, hello timeouts, size limits, backpressure and write
 * batching, and configuration errors.
 */
import { describe, expect, it } from "@effect/vitest"
import { Errors, Protocol, Transport } from "@orchestra/core"
import { hello, results, run } from "@orchestra/core/testing/TransportSuite"
import { Chunk, Deferred, Effect, Fiber, Ref, Stream } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import * as tls from "node:tls"
import transportTlsDefault, { Certs, Frame, TransportTls } from "../src/index.js"
import { fixture, quietContext, rawConnect, recordingContext, tempDir } from "./fixture.js"

const shared = fixture(["p1", "p2", "g"])

const conductorConfig = (extra: Record<string, unknown> = {}) => ({
  listen: { host: "127.0.0.1", port: 0 },
  tls: { ca: "ca.pem", cert: "conductor.pem", key: "conductor-key.pem", crl: "crl.pem" },
  ...extra
})

const serve = (dir: string, admit: Transport.Admit, extra: Record<string, unknown> = {}) =>
  Effect.gen(function*() {
    const ctx = recordingContext(dir)
    const service = yield* TransportTls.makeConductor(conductorConfig(extra), ctx)
    const { address } = yield* service.serve(admit)
    return { address, port: Number(address.split(":").pop()), ctx, service }
  })

const playerOf = (dir: string, name: string, extra: Record<string, unknown> = {}) =>
  TransportTls.makePlayer(
    { tls: { ca: "ca.pem", cert: `${name}.pem`, key: `${name}-key.pem` }, conductorName: "conductor", ...extra },
    quietContext(dir)
  )

const rawOptions = (dir: string, name: string | undefined, port: number): tls.ConnectionOptions => ({
  host: "127.0.0.1",
  port,
  servername: "conductor",
  ca: fs.readFileSync(path.join(dir, "ca.pem")),
  ...(name !== undefined
    ? { cert: fs.readFileSync(path.join(dir, `${name}.pem`)), key: fs.readFileSync(path.join(dir, `${name}-key.pem`)) }
    : {})
})

const acker = (session: Transport.PlayerSession) =>
  Stream.runForEach(session.incoming, (m) =>
    m._tag === "Results" ? session.send(new Protocol.Ack({ refs: m.results.map((r) => r.ref) })) : Effect.void)

const admitAll = (f: (s: Transport.PlayerSession) => Effect.Effect<void>): Transport.Admit => () => Effect.succeed(f)

const within = <A, E, R>(what: string, ms = 10_000) => (self: Effect.Effect<A, E, R>) =>
  self.pipe(Effect.timeoutFail({ duration: ms, onTimeout: () => new Error(`timed out after ${ms} ms: ${what}`) }))

const roundTrip = (s: Transport.ConductorSession, i: number) =>
  Effect.gen(function*() {
    const fiber = yield* s.incoming.pipe(
      Stream.filter((m) => m._tag === "Ack" && m.refs[0]!.job === i),
      Stream.take(1),
      Stream.runCollect,
      Effect.fork
    )
    yield* s.send(results(i))
    return Chunk.size(yield* Fiber.join(fiber).pipe(within(`Ack ${i}`, 5000)))
  })

/** Wait (bounded) until a condition holds. */
const eventually = (what: string, cond: () => boolean, ms = 5000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    while (!cond()) {
      if (Date.now() > deadline) return yield* Effect.fail(new Error(`timed out after ${ms} ms waiting for ${what}`))
      yield* Effect.sleep("20 millis")
    }
  })

const promise = <A>(f: () => Promise<A>) => Effect.promise(f)

describe("certificates", () => {
  it.scopedLive("a player whose certificate is for another name is refused, and the refusal is logged", () =>
    Effect.gen(function*() {
      const dir = yield* shared
      const admitted = yield* Ref.make(0)
      const c = yield* serve(dir, () => Ref.update(admitted, (n) => n + 1).pipe(Effect.as(acker)))
      const p2 = yield* playerOf(dir, "p2")
      const e = yield* p2.connect(c.address, hello("p1")).pipe(Effect.flip, within("connect"))
      expect(e._tag).toBe("SessionRefused")
      expect((e as Errors.SessionRefused).reason).toBe("the certificate presented carries \"p2\", not \"p1\"")
      expect(yield* Ref.get(admitted)).toBe(0)
      yield* eventually("the log line", () => c.ctx.lines.some((l) => l.level === "warn" && l.message.includes("refused player \"p1\"")))
    }))

  it.scopedLive("a certificate from another CA fails the handshake", () =>
    Effect.gen(function*() {
      const dir = yield* shared
      const other = tempDir("other-ca")
      yield* Certs.init({ dir: other, conductor: "conductor", players: ["p1"] })
      const admitted = yield* Ref.make(0)
      const c = yield* serve(dir, () => Ref.update(admitted, (n) => n + 1).pipe(Effect.as(acker)))
      const impostor = yield* TransportTls.makePlayer(
        { tls: { ca: path.join(dir, "ca.pem"), cert: path.join(other, "p1.pem"), key: path.join(other, "p1-key.pem") }, conductorName: "conductor" },
        quietContext(dir)
      )
      const e = yield* impostor.connect(c.address, hello("p1")).pipe(Effect.flip, within("connect"))
      expect(e._tag).toBe("TransportError")
      expect(["tls", "closed"]).toContain((e as Errors.TransportError).reason)
      expect(yield* Ref.get(admitted)).toBe(0)
      yield* eventually("the log line", () =>
        c.ctx.lines.some((l) => l.message.includes("TLS handshake") && l.message.includes("client certificate refused")))
    }))

  it.scopedLive("a client without a certificate is refused", () =>
    Effect.gen(function*() {
      const dir = yield* shared
      const admitted = yield* Ref.make(0)
      const c = yield* serve(dir, () => Ref.update(admitted, (n) => n + 1).pipe(Effect.as(acker)))
      const outcome = yield* promise(() =>
        rawConnect(rawOptions(dir, undefined, c.port)).then(
          async (raw) => {
            raw.socket.write(Frame.fromPlayer.encode(hello("p1")))
            await raw.closed
            return raw.frames().length
          },
          () => -1
        )
      )
      // Either the handshake fails outright, or the connection closes without a single frame.
      expect(outcome <= 0).toBe(true)
      expect(yield* Ref.get(admitted)).toBe(0)
      yield* eventually("the log line", () =>
        c.ctx.lines.some((l) => l.message.includes("TLS handshake") && l.message.includes("did not return a certificate")))
    }))

  it.scopedLive("a revoked certificate is refused after revoke + reload, and its open session is ended; other players are unaffected", () =>
    Effect.gen(function*() {
      const dir = tempDir("revoke")
      yield* Certs.init({ dir, conductor: "conductor", players: ["rv", "ok"] })
      const c = yield* serve(dir, admitAll(acker))
      const rv = yield* playerOf(dir, "rv")
      const open = yield* rv.connect(c.address, hello("rv")).pipe(within("connect"))
      expect(yield* roundTrip(open, 1)).toBe(1)
      yield* Certs.revoke({ dir, name: "rv" })
      // Not applied until reload.
      const before = yield* rv.connect(c.address, hello("rv")).pipe(within("connect before reload"))
      yield* before.close
      yield* c.service.reload
      const e = yield* rv.connect(c.address, hello("rv")).pipe(Effect.flip, within("connect after reload"))
      expect(e._tag).toBe("TransportError")
      yield* eventually("the log line", () => c.ctx.lines.some((l) => l.message.includes("CERT_REVOKED")))
      // The session opened before the revocation is ended, telling the player why.
      const last = yield* open.incoming.pipe(Stream.runCollect, within("the revoked session ends"))
      const refusal = Chunk.toReadonlyArray(last).find((m) => m._tag === "Refused")
      expect(refusal?._tag === "Refused" && refusal.reason).toContain("revoked")
      yield* eventually("the log line", () => c.ctx.lines.some((l) => l.message.includes("its certificate was revoked")))
      // Another player still gets in.
      const okPlayer = yield* playerOf(dir, "ok")
      const s = yield* okPlayer.connect(c.address, hello("ok")).pipe(within("connect ok"))
      expect(yield* roundTrip(s, 3)).toBe(1)
    }))

  it.scopedLive("reload with a broken CRL fails naming the file, and keeps serving with what it had", () =>
    Effect.gen(function*() {
      const dir = tempDir("badcrl")
      yield* Certs.init({ dir, conductor: "conductor", players: ["p1"] })
      const c = yield* serve(dir, admitAll(acker))
      fs.writeFileSync(path.join(dir, "crl.pem"), "-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n")
      const e = yield* c.service.reload.pipe(Effect.flip)
      expect(e.reason).toBe("config")
      expect(e.message).toContain(path.join(dir, "crl.pem"))
      const p1 = yield* playerOf(dir, "p1")
      const s = yield* p1.connect(c.address, hello("p1")).pipe(within("connect"))
      expect(yield* roundTrip(s, 1)).toBe(1)
    }))

  it.scopedLive("the player refuses a conductor whose certificate lacks the expected name, or comes from another CA", () =>
    Effect.gen(function*() {
      const dir = yield* shared
      const admitted = yield* Ref.make(0)
      const c = yield* serve(dir, () => Ref.update(admitted, (n) => n + 1).pipe(Effect.as(acker)))
      const wrongName = yield* playerOf(dir, "p1", { conductorName: "another-conductor" })
      const e1 = yield* wrongName.connect(c.address, hello("p1")).pipe(Effect.flip, within("connect"))
      expect(e1._tag).toBe("TransportError")
      expect((e1 as Errors.TransportError).reason).toBe("tls")
      expect((e1 as Errors.TransportError).message).toContain("another-conductor")
      // Default expected name: the host part; 127.0.0.1 is in the conductor's certificate.
      const byHost = yield* TransportTls.makePlayer({ tls: { ca: "ca.pem", cert: "p1.pem", key: "p1-key.pem" } }, quietContext(dir))
      const ok = yield* byHost.connect(c.address, hello("p1")).pipe(within("connect by host"))
      expect(ok.welcome.conductor).toBe("conductor")
      yield* ok.close
      const other = tempDir("other-ca-2")
      yield* Certs.init({ dir: other, conductor: "x", players: [] })
      const trustsOther = yield* TransportTls.makePlayer(
        { tls: { ca: path.join(other, "ca.pem"), cert: "p1.pem", key: "p1-key.pem" }, conductorName: "conductor" },
        quietContext(dir)
      )
      const e2 = yield* trustsOther.connect(c.address, hello("p1")).pipe(Effect.flip, within("connect"))
      expect(e2._tag).toBe("TransportError")
      expect((e2 as Errors.TransportError).reason).toBe("tls")
      expect(yield* Ref.get(admitted)).toBe(1)
    }))

  it.scopedLive("a client claiming a connected player's name with another certificate is refused; the first session keeps working", () =>
    Effect.gen(function*() {
      const dir = yield* shared
      const names = new Set<string>()
      const admit: Transport.Admit = (hl) =>
        Effect.gen(function*() {
          if (names.has(hl.player)) return yield* new Errors.SessionRefused({ reason: "already connected" })
          names.add(hl.player)
          yield* Effect.addFinalizer(() => Effect.sync(() => names.delete(hl.player)))
          return acker
        })
      const c = yield* serve(dir, admit)
      const p1 = yield* playerOf(dir, "p1")
      const s1 = yield* p1.connect(c.address, hello("p1")).pipe(within("connect"))
      expect(yield* roundTrip(s1, 1)).toBe(1)
      const p2 = yield* playerOf(dir, "p2")
      const e = yield* p2.connect(c.address, hello("p1")).pipe(Effect.flip, within("connect"))
      expect(e._tag).toBe("SessionRefused")
      expect((e as Errors.SessionRefused).reason).toContain("not \"p1\"")
      // A raw client doing the same, then sending more, changes nothing either.
      const raw = yield* promise(() => rawConnect(rawOptions(dir, "p2", c.port)))
      raw.socket.write(Buffer.concat([Frame.fromPlayer.encode(hello("p1")), Frame.fromPlayer.encode(results(5))]))
      yield* promise(() => raw.closed).pipe(within("raw close", 5000))
      expect(raw.frames().map((f) => f._tag)).toEqual(["Refused"])
      for (let i = 2; i <= 20; i++) expect(yield* roundTrip(s1, i)).toBe(1)
      expect([...names]).toEqual(["p1"])
    }))
})

describe("liveness", () => {
  const fast = { heartbeat: { intervalMs: 100, timeoutMs: 400 } }

  it.scopedLive("a player that sends Hello then goes silent is dropped within the heartbeat timeout; its admit scope closes", () =>
    Effect.gen(function*() {
      const dir = yield* shared
      const finalized = yield* Deferred.make<number>()
      const c = yield* serve(dir, () =>
        Effect.gen(function*() {
          yield* Effect.addFinalizer(() => Deferred.succeed(finalized, Date.now()))
          return (s: Transport.PlayerSession) => Stream.runDrain(s.incoming)
        }), fast)
      const raw = yield* promise(() => rawConnect(rawOptions(dir, "p1", c.port)))
      raw.socket.write(Frame.fromPlayer.encode(hello("p1")))
      yield* eventually("the Welcome", () => raw.frames().some((f) => f._tag === "Welcome"), 5000)
      const welcomedAt = Date.now()
      yield* promise(() => raw.closed).pipe(within("the conductor to drop the silent player", 5000))
      const closedAfter = Date.now() - welcomedAt
      const finalizedAt = yield* Deferred.await(finalized).pipe(within("the admit finalizer", 5000))
      // It was pinged meanwhile, and dropped after ~400 ms (bounded generously for a busy machine).
      expect(raw.frames().some((f) => f._tag === "Ping")).toBe(true)
      expect(closedAfter).toBeGreaterThanOrEqual(300)
      expect(closedAfter).toBeLessThan(3000)
      expect(finalizedAt - welcomedAt).toBeLessThan(3000)
      expect(c.ctx.lines.some((l) => l.level === "warn" && l.message.includes("no frame from the peer") && l.message.includes("timeout 400 ms"))).toBe(true)
    }))

  it.scopedLive("the player notices a conductor that stops responding, and its stream ends", () =>
    Effect.gen(function*() {
      const dir = yield* shared
      // A fake conductor: answers the Hello with a Welcome, then neither reads nor writes.
      const sockets: Array<tls.TLSSocket> = []
      const server = tls.createServer({
        ca: fs.readFileSync(path.join(dir, "ca.pem")),
        cert: fs.readFileSync(path.join(dir, "conductor.pem")),
        key: fs.readFileSync(path.join(dir, "conductor-key.pem")),
        requestCert: true,
        rejectUnauthorized: true
      }, (socket) => {
        sockets.push(socket)
        socket.on("error", () => {})
        socket.once("data", () => {
          socket.write(Frame.toPlayer.encode(new Protocol.Welcome({ protocol: 1, conductor: "fake" })))
          socket.pause()
        })
      })
      yield* Effect.acquireRelease(
        promise(() => new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))),
        () => Effect.sync(() => {
          for (const s of sockets) s.destroy()
          server.close()
        })
      )
      const port = (server.address() as net.AddressInfo).port
      const lines: Array<string> = []
      const player = yield* TransportTls.makePlayer(
        { tls: { ca: "ca.pem", cert: "p1.pem", key: "p1-key.pem" }, conductorName: "conductor", ...fast },
        { baseDir: dir, log: (_l, m) => void lines.push(m) }
      )
      const s = yield* player.connect(`127.0.0.1:${port}`, hello("p1")).pipe(within("connect"))
      expect(s.welcome.conductor).toBe("fake")
      const started = Date.now()
      const got = yield* Stream.runCollect(s.incoming).pipe(within("the stream to end", 5000))
      expect(Chunk.size(got)).toBe(0)
      expect(Date.now() - started).toBeLessThan(3000)
      expect(lines.some((m) => m.includes("no frame from the peer"))).toBe(true)
    }))

  it.scopedLive("an idle session between live peers stays open across many heartbeat timeouts", () =>
    Effect.gen(function*() {
      const dir = yield* shared
      const c = yield* serve(dir, admitAll(acker), fast)
      const p1 = yield* playerOf(dir, "p1", fast)
      const s = yield* p1.connect(c.address, hello("p1")).pipe(within("connect"))
      yield* Effect.sleep("1500 millis")
      expect(yield* roundTrip(s, 1)).toBe(1)
      expect(c.ctx.lines.filter((l) => l.level !== "info")).toEqual([])
      const stats = TransportTls.connectionStats(s)
      expect(stats !== undefined && stats.framesRead > 0).toBe(true)
    }))

  it.scopedLive("a connection that sends no Hello is closed after helloTimeoutMs, and told why", () =>
    Effect.gen(function*() {
      const dir = yield* shared
      const admitted = yield* Ref.make(0)
      const c = yield* serve(dir, () => Ref.update(admitted, (n) => n + 1).pipe(Effect.as(acker)), { helloTimeoutMs: 300 })
      const raw = yield* promise(() => rawConnect(rawOptions(dir, "p1", c.port)))
      yield* promise(() => raw.closed).pipe(within("the close", 5000))
      const last = raw.frames().at(-1)
      expect(last?._tag).toBe("Refused")
      expect(last?.reason).toBe("no Hello within 300 ms")
      expect(yield* Ref.get(admitted)).toBe(0)
    }))
})

describe("frames and flow", () => {
  it.scopedLive("an oversized message closes that session only, both ways", () =>
    Effect.gen(function*() {
      const dir = yield* shared
      const finalized = yield* Ref.make<Array<string>>([])
      const sessions = new Map<string, Transport.PlayerSession>()
      const c = yield* serve(dir, (hl) =>
        Effect.gen(function*() {
          yield* Effect.addFinalizer(() => Ref.update(finalized, (a) => [...a, hl.player]))
          return (s: Transport.PlayerSession) => Effect.sync(() => sessions.set(hl.player, s)).pipe(Effect.zipRight(acker(s)))
        }), { maxFrameBytes: 4096 })
      const p1 = yield* playerOf(dir, "p1")
      const p2 = yield* playerOf(dir, "p2", { maxFrameBytes: 4096 })
      const s1 = yield* p1.connect(c.address, hello("p1")).pipe(within("connect p1"))
      const s2 = yield* p2.connect(c.address, hello("p2")).pipe(within("connect p2"))
      const g = yield* playerOf(dir, "g")
      const bystander = yield* g.connect(c.address, hello("g")).pipe(within("connect g"))
      // p1 sends more than the conductor accepts.
      const big = new Protocol.Results({
        results: [{ ref: results(1).results[0]!.ref, outcome: "OK", response: {}, log: "x".repeat(10_000), finishedAt: 1 }]
      })
      yield* s1.send(big)
      const rest1 = Chunk.toReadonlyArray(yield* Stream.runCollect(s1.incoming).pipe(within("p1's stream to end")))
      expect(rest1.length).toBe(1)
      expect(rest1[0]!._tag).toBe("Refused")
      expect((rest1[0] as Protocol.Refused).reason).toContain("exceeds the maximum of 4096")
      // The conductor sends more than p2 accepts.
      yield* eventually("p2's session", () => sessions.has("p2"))
      yield* sessions.get("p2")!.send(new Protocol.Run({ tasks: [{ ...run(1).tasks[0]!, params: { blob: "y".repeat(10_000) } }] }))
      yield* Stream.runDrain(s2.incoming).pipe(within("p2's stream to end"))
      yield* eventually("both finalizers", () => Effect.runSync(Ref.get(finalized)).length === 2)
      expect([...(yield* Ref.get(finalized))].sort()).toEqual(["p1", "p2"])
      expect(yield* roundTrip(bystander, 7)).toBe(1)
      expect(c.ctx.lines.some((l) => l.message.includes("exceeds the maximum of 4096"))).toBe(true)
    }))

  it.scopedLive("a player that does not read for a while gets all 20,000 messages in order (backpressure)", () =>
    Effect.gen(function*() {
      const dir = yield* shared
      const N = 20_000
      const c = yield* serve(dir, admitAll((s) =>
        Effect.gen(function*() {
          for (let i = 1; i <= N; i++) yield* s.send(run(i))
          yield* Stream.runDrain(s.incoming)
        })
      ))
      const p1 = yield* playerOf(dir, "p1")
      const s = yield* p1.connect(c.address, hello("p1")).pipe(within("connect"))
      yield* Effect.sleep("500 millis")
      const got = Chunk.toReadonlyArray(yield* s.incoming.pipe(Stream.take(N), Stream.runCollect, within("all messages", 30_000)))
      let inOrder = got.length === N
      for (let i = 0; inOrder && i < N; i++) inOrder = got[i]!._tag === "Run" && (got[i] as Protocol.Run).tasks[0]!.ref.job === i + 1
      expect(inOrder).toBe(true)
    }), 60_000)

  it.scopedLive("a sender waits while its peer does not read (bounded memory), then everything arrives in order", () =>
    Effect.gen(function*() {
      const dir = yield* shared
      const N = 2500
      const blob = "z".repeat(20_000)
      const sent = yield* Ref.make(0)
      const c = yield* serve(dir, admitAll((s) =>
        Effect.gen(function*() {
          for (let i = 1; i <= N; i++) {
            yield* s.send(new Protocol.Run({ tasks: [{ ...run(i).tasks[0]!, params: { blob } }] }))
            yield* Ref.set(sent, i)
          }
          yield* Stream.runDrain(s.incoming)
        })
      ))
      const p1 = yield* playerOf(dir, "p1")
      const s = yield* p1.connect(c.address, hello("p1")).pipe(within("connect"))
      yield* Effect.sleep("1500 millis")
      // 50 MB are offered; the conductor must be held back well before that (about 8 MiB queued,
      // 4 MiB in the player's inbox, plus the kernel's socket buffers).
      const early = yield* Ref.get(sent)
      expect(early).toBeGreaterThan(0)
      expect(early).toBeLessThan(N)
      const got = Chunk.toReadonlyArray(yield* s.incoming.pipe(Stream.take(N), Stream.runCollect, within("all messages", 60_000)))
      expect(got.map((m) => (m as Protocol.Run).tasks[0]!.ref.job)).toEqual(Array.from({ length: N }, (_, i) => i + 1))
      expect(yield* Ref.get(sent)).toBe(N)
    }), 90_000)

  it.scopedLive("under load, several frames go out per socket write", () =>
    Effect.gen(function*() {
      const dir = yield* shared
      const sessionD = yield* Deferred.make<Transport.PlayerSession>()
      const c = yield* serve(dir, admitAll((s) => Deferred.succeed(sessionD, s).pipe(Effect.zipRight(acker(s)))))
      const p1 = yield* playerOf(dir, "p1")
      const s = yield* p1.connect(c.address, hello("p1")).pipe(within("connect"))
      const acks = yield* s.incoming.pipe(Stream.take(2000), Stream.runCollect, Effect.fork)
      for (let i = 1; i <= 2000; i++) yield* s.send(results(i))
      expect(Chunk.size(yield* Fiber.join(acks).pipe(within("acks", 20_000)))).toBe(2000)
      const mine = TransportTls.connectionStats(s)!
      const theirs = TransportTls.connectionStats(yield* Deferred.await(sessionD))!
      expect(mine.framesWritten).toBeGreaterThanOrEqual(2001)
      expect(mine.writes * 4).toBeLessThan(mine.framesWritten)
      expect(theirs.framesWritten).toBeGreaterThanOrEqual(2001)
      expect(theirs.writes).toBeLessThan(theirs.framesWritten)
    }))
})

describe("configuration", () => {
  it.scopedLive("missing, unreadable or invalid files are TransportErrors naming the file", () =>
    Effect.gen(function*() {
      const dir = yield* shared
      const ctx = quietContext(dir)
      const missing = yield* TransportTls.makeConductor(conductorConfig({ tls: { ca: "nope.pem", cert: "conductor.pem", key: "conductor-key.pem" } }), ctx).pipe(Effect.flip)
      expect(missing.reason).toBe("config")
      expect(missing.message).toContain(path.join(dir, "nope.pem"))
      const junk = tempDir("junk")
      fs.writeFileSync(path.join(junk, "cert.pem"), "hello")
      const notPem = yield* TransportTls.makePlayer({ tls: { ca: path.join(dir, "ca.pem"), cert: path.join(junk, "cert.pem"), key: path.join(dir, "p1-key.pem") } }, ctx).pipe(Effect.flip)
      expect(notPem.message).toContain(path.join(junk, "cert.pem"))
      const mismatch = yield* TransportTls.makePlayer({ tls: { ca: "ca.pem", cert: "p1.pem", key: "p2-key.pem" } }, ctx).pipe(Effect.flip)
      expect(mismatch.message).toContain("does not belong")
      const keyAsCa = yield* TransportTls.makePlayer({ tls: { ca: "p1-key.pem", cert: "p1.pem", key: "p1-key.pem" } }, ctx).pipe(Effect.flip)
      expect(keyAsCa.message).toContain("p1-key.pem")
    }))

  it.scopedLive("config blocks are checked by schema, with every issue", () =>
    Effect.gen(function*() {
      const dir = yield* shared
      const ctx = quietContext(dir)
      const e = yield* TransportTls.makeConductor(
        { listen: { port: 70000 }, tls: { ca: "ca.pem" }, heartbeat: { intervalMs: 500, timeoutMs: 100 }, colour: "blue" },
        ctx
      ).pipe(Effect.flip)
      expect(e.reason).toBe("config")
      for (const word of ["port", "cert", "key", "colour"]) expect(e.message).toContain(word)
      const hb = yield* TransportTls.makePlayer(
        { tls: { ca: "ca.pem", cert: "p1.pem", key: "p1-key.pem" }, heartbeat: { intervalMs: 500, timeoutMs: 100 } },
        ctx
      ).pipe(Effect.flip)
      expect(hb.message).toContain("must be greater than heartbeat.intervalMs")
      const badAddress = yield* TransportTls.makePlayer({ tls: { ca: "ca.pem", cert: "p1.pem", key: "p1-key.pem" } }, ctx).pipe(
        Effect.flatMap((p) => p.connect("no-port-here", hello("p1"))),
        Effect.flip
      )
      expect(badAddress._tag).toBe("TransportError")
    }))

  it.scopedLive("a port already in use is a TransportError; the plugin is a transport plugin named tls", () =>
    Effect.gen(function*() {
      const dir = yield* shared
      const first = yield* serve(dir, admitAll(acker))
      const second = yield* TransportTls.makeConductor(conductorConfig({ listen: { host: "127.0.0.1", port: first.port } }), quietContext(dir))
      const e = yield* second.serve(admitAll(acker)).pipe(Effect.flip)
      expect(e.reason).toBe("connect")
      expect(e.message).toContain("cannot listen")
      const plugin = transportTlsDefault()
      expect(Transport.isTransportPlugin(plugin)).toBe(true)
      expect(plugin.name).toBe("tls")
      const viaPlugin = yield* plugin.conductor(conductorConfig(), quietContext(dir))
      const served = yield* viaPlugin.serve(admitAll(acker))
      const p = yield* plugin.player({ tls: { ca: "ca.pem", cert: "p1.pem", key: "p1-key.pem" }, conductorName: "conductor" }, quietContext(dir))
      const s = yield* p.connect(`tls://${served.address}`, hello("p1")).pipe(within("connect"))
      expect(yield* roundTrip(s, 1)).toBe(1)
    }))
})
