/**
 * Conformance suite of transports: what the conductor and the players rely
 * on, whatever carries the messages. A transport's test calls
 * `transportSuite(name, setup)` with a scoped `setup` giving a conductor
 * transport and player transports whose credentials carry a given name.
 *
 * Runs with the live clock: transports measure real time.
 *
 * @since 0.1.0
 */
import { describe, expect, it } from "@effect/vitest"
import { Errors, Names, Protocol } from "@orchestra/core"
import type { Transport } from "@orchestra/core"
import { Chunk, Deferred, Effect, Either, Exit, Fiber, Ref, Schedule, Scope, Stream } from "effect"

export interface TransportHarness {
  /** A conductor transport, not serving yet. */
  readonly conductor: Transport.ConductorTransportService
  /** A player transport whose credentials carry `name` (and only what the transport adds). */
  readonly player: (name: string) => Effect.Effect<Transport.PlayerTransportService, unknown, Scope.Scope>
  /** An address where no conductor listens. */
  readonly unreachable: string
}

export interface TransportSuiteOptions {
  /** Messages each way in the ordering test (default 2000). */
  readonly messages?: number
  /** Per-test timeout in ms (default 30 000). */
  readonly timeout?: number
}

// ---- messages -------------------------------------------------------------------

export const hello = (name: string, slots = 2): Protocol.Hello =>
  new Protocol.Hello({
    protocol: Protocol.PROTOCOL_VERSION,
    player: Names.playerName(name),
    slots,
    labels: { role: "test" },
    catalog: [],
    running: []
  })

const ref = (i: number) => ({ job: Names.jobId(i), key: Names.taskKey("0"), attempt: 1 })

export const results = (i: number): Protocol.Results =>
  new Protocol.Results({
    results: [{ ref: ref(i), outcome: "OK", response: { i: String(i) }, log: "", finishedAt: i }]
  })

export const run = (i: number): Protocol.Run =>
  new Protocol.Run({ tasks: [{ ref: ref(i), score: Names.scoreName("echo"), params: { n: i } }] })

const started = (i: number): Protocol.Started => new Protocol.Started({ tasks: [{ ref: ref(i), at: i }] })

const jobOf = (m: Protocol.FromPlayer | Protocol.ToPlayer): number => {
  switch (m._tag) {
    case "Results":
      return m.results[0]!.ref.job
    case "Started":
      return m.tasks[0]!.ref.job
    case "Run":
      return m.tasks[0]!.ref.job
    case "Ack":
      return m.refs[0]!.job
    default:
      return -1
  }
}

/** A session function answering each `Results` with an `Ack` of its refs. */
const acker = (session: Transport.PlayerSession): Effect.Effect<void> =>
  Stream.runForEach(session.incoming, (m) =>
    m._tag === "Results" ? session.send(new Protocol.Ack({ refs: m.results.map((r) => r.ref) })) : Effect.void)

const admitAll = (f: (session: Transport.PlayerSession) => Effect.Effect<void>): Transport.Admit => () => Effect.succeed(f)

const within = <A, E, R>(what: string, ms = 10_000) => (self: Effect.Effect<A, E, R>) =>
  self.pipe(Effect.timeoutFail({ duration: ms, onTimeout: () => new Error(`timed out after ${ms} ms: ${what}`) }))

/** One exchange: send a Results, wait for its Ack. */
const roundTrip = (s: Transport.ConductorSession, i: number) =>
  Effect.gen(function*() {
    const acked = yield* s.incoming.pipe(
      Stream.filter((m) => m._tag === "Ack" && jobOf(m) === i),
      Stream.take(1),
      Stream.runCollect,
      Effect.fork
    )
    yield* s.send(results(i))
    const got = yield* Fiber.join(acked).pipe(within(`the Ack of job ${i}`, 5000))
    return Chunk.size(got)
  })

// ---- the suite ------------------------------------------------------------------

export const transportSuite = (
  name: string,
  setup: Effect.Effect<TransportHarness, unknown, Scope.Scope>,
  options: TransportSuiteOptions = {}
): void => {
  const N = options.messages ?? 2000
  const timeout = options.timeout ?? 30_000

  describe(`transport conformance: ${name}`, () => {
    it.scopedLive("hello and welcome: the conductor sees the Hello and the peer, the player the Welcome", () =>
      Effect.gen(function*() {
        const h = yield* setup
        const seen = yield* Deferred.make<{ hello: Protocol.Hello; peer: Transport.Peer; session: Transport.PlayerSession }>()
        const { address } = yield* h.conductor.serve((hl, peer) =>
          Effect.succeed((session) =>
            Deferred.succeed(seen, { hello: hl, peer, session }).pipe(Effect.zipRight(Stream.runDrain(session.incoming)))
          )
        )
        expect(typeof address).toBe("string")
        const player = yield* h.player("p1")
        const s = yield* player.connect(address, hello("p1", 3)).pipe(within("connect"))
        expect(s.welcome._tag).toBe("Welcome")
        expect(s.welcome.protocol).toBe(Protocol.PROTOCOL_VERSION)
        const got = yield* Deferred.await(seen).pipe(within("the session"))
        expect(got.hello.player).toBe("p1")
        expect(got.hello.slots).toBe(3)
        expect(got.hello.labels).toEqual({ role: "test" })
        expect(got.peer.identities).toContain("p1")
        expect(got.session.player).toBe("p1")
        expect(got.session.hello.player).toBe("p1")
      }), timeout)

    it.scopedLive(`messages both ways arrive in order (${N} each way, conductor sending before the player reads)`, () =>
      Effect.gen(function*() {
        const h = yield* setup
        const received = yield* Ref.make<Array<number>>([])
        const { address } = yield* h.conductor.serve(admitAll((session) =>
          Effect.gen(function*() {
            // Sent right away: they must arrive after the Welcome, in order.
            for (let i = 1; i <= N; i++) yield* session.send(run(i))
            yield* Stream.runForEach(session.incoming, (m) =>
              Effect.gen(function*() {
                yield* Ref.update(received, (a) => (a.push(jobOf(m)), a))
                if (m._tag === "Results") yield* session.send(new Protocol.Ack({ refs: m.results.map((r) => r.ref) }))
              }))
          })
        ))
        const player = yield* h.player("p1")
        const s = yield* player.connect(address, hello("p1")).pipe(within("connect"))
        const collector = yield* s.incoming.pipe(Stream.take(2 * N), Stream.runCollect, Effect.fork)
        for (let i = 1; i <= N; i++) yield* s.send(results(i))
        const got = Chunk.toReadonlyArray(yield* Fiber.join(collector).pipe(within("all messages", 20_000)))
        const runs = got.filter((m) => m._tag === "Run").map(jobOf)
        const acks = got.filter((m) => m._tag === "Ack").map(jobOf)
        const expected = Array.from({ length: N }, (_, i) => i + 1)
        expect(runs).toEqual(expected)
        expect(acks).toEqual(expected)
        expect(yield* Ref.get(received)).toEqual(expected)
      }), timeout)

    it.scopedLive("an admit refusal reaches the player as SessionRefused with the reason", () =>
      Effect.gen(function*() {
        const h = yield* setup
        const { address } = yield* h.conductor.serve((hl) =>
          Effect.fail(new Errors.SessionRefused({ reason: `player ${hl.player} is not on the allowlist` }))
        )
        const player = yield* h.player("p9")
        const error = yield* player.connect(address, hello("p9")).pipe(Effect.flip, within("connect"))
        expect(error._tag).toBe("SessionRefused")
        expect((error as Errors.SessionRefused).reason).toBe("player p9 is not on the allowlist")
      }), timeout)

    it.scopedLive("a player claiming a name its credentials do not carry is refused before admit", () =>
      Effect.gen(function*() {
        const h = yield* setup
        const admitted = yield* Ref.make(0)
        const { address } = yield* h.conductor.serve(() =>
          Ref.update(admitted, (n) => n + 1).pipe(Effect.as((session: Transport.PlayerSession) => Stream.runDrain(session.incoming)))
        )
        const p2 = yield* h.player("p2")
        const error = yield* p2.connect(address, hello("p1")).pipe(Effect.flip, within("connect"))
        expect(error._tag).toBe("SessionRefused")
        expect((error as Errors.SessionRefused).reason).toContain("p1")
        expect(yield* Ref.get(admitted)).toBe(0)
        // The same transport may still claim its own name.
        const ok = yield* p2.connect(address, hello("p2")).pipe(within("connect"))
        expect(ok.welcome._tag).toBe("Welcome")
        expect(yield* Ref.get(admitted)).toBe(1)
      }), timeout)

    it.scopedLive("the admit scope's finalizers run when the session ends (player close, player scope, conductor close)", () =>
      Effect.gen(function*() {
        const h = yield* setup
        const finalized = yield* Ref.make<Array<string>>([])
        const signals = new Map<string, Deferred.Deferred<void>>()
        for (const n of ["a", "b", "c"]) signals.set(n, yield* Deferred.make<void>())
        const { address } = yield* h.conductor.serve((hl) =>
          Effect.gen(function*() {
            yield* Effect.addFinalizer(() =>
              Ref.update(finalized, (a) => [...a, hl.player]).pipe(Effect.zipRight(Deferred.succeed(signals.get(hl.player)!, undefined)))
            )
            return (session: Transport.PlayerSession) =>
              hl.player === "c"
                ? session.send(run(1)).pipe(Effect.zipRight(session.close("done with you")))
                : Stream.runDrain(session.incoming)
          })
        )
        // a: the player closes the session.
        const pa = yield* h.player("a")
        const sa = yield* pa.connect(address, hello("a")).pipe(within("connect a"))
        expect(yield* Ref.get(finalized)).not.toContain("a")
        yield* sa.close
        yield* Deferred.await(signals.get("a")!).pipe(within("finalizer of a", 5000))
        // b: the player's scope closes.
        const pb = yield* h.player("b")
        const scope = yield* Scope.make()
        yield* pb.connect(address, hello("b")).pipe(Scope.extend(scope), within("connect b"))
        yield* Scope.close(scope, Exit.void)
        yield* Deferred.await(signals.get("b")!).pipe(within("finalizer of b", 5000))
        // c: the conductor's session function closes the session.
        const pc = yield* h.player("c")
        const sc = yield* pc.connect(address, hello("c")).pipe(within("connect c"))
        yield* Deferred.await(signals.get("c")!).pipe(within("finalizer of c", 5000))
        const rest = yield* Stream.runCollect(sc.incoming).pipe(within("c's stream to end", 5000))
        expect(Chunk.toReadonlyArray(rest).map((m) => m._tag)).toEqual(["Run", "Refused"])
        expect(yield* Ref.get(finalized)).toEqual(["a", "b", "c"])
      }), timeout)

    it.scopedLive("closing the conductor side ends the player's stream, with the reason as the last message", () =>
      Effect.gen(function*() {
        const h = yield* setup
        const { address } = yield* h.conductor.serve(admitAll((session) =>
          Effect.gen(function*() {
            for (let i = 1; i <= 5; i++) yield* session.send(run(i))
            yield* session.close("maintenance")
            yield* session.send(run(99))
            yield* Effect.never
          })
        ))
        const player = yield* h.player("p1")
        const s = yield* player.connect(address, hello("p1")).pipe(within("connect"))
        const got = Chunk.toReadonlyArray(yield* Stream.runCollect(s.incoming).pipe(within("the stream to end")))
        expect(got.map(jobOf).slice(0, 5)).toEqual([1, 2, 3, 4, 5])
        expect(got.length).toBe(6)
        const last = got[5]!
        expect(last._tag).toBe("Refused")
        expect((last as Protocol.Refused).reason).toBe("maintenance")
      }), timeout)

    it.scopedLive("closing the player side ends the conductor's stream, after everything sent before", () =>
      Effect.gen(function*() {
        const h = yield* setup
        const collected = yield* Deferred.make<ReadonlyArray<Protocol.FromPlayer>>()
        const { address } = yield* h.conductor.serve(admitAll((session) =>
          Stream.runCollect(session.incoming).pipe(
            Effect.flatMap((c) => Deferred.succeed(collected, Chunk.toReadonlyArray(c)))
          )
        ))
        const player = yield* h.player("p1")
        const s = yield* player.connect(address, hello("p1")).pipe(within("connect"))
        for (let i = 1; i <= 50; i++) yield* s.send(started(i))
        yield* s.close
        const got = yield* Deferred.await(collected).pipe(within("the conductor's stream to end"))
        expect(got.map(jobOf)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1))
        // The player's own stream ends too.
        const mine = yield* Stream.runCollect(s.incoming).pipe(within("the player's stream to end"))
        expect(Chunk.size(mine)).toBe(0)
      }), timeout)

    it.scopedLive("a second session with a connected name is refused (admit tracks names); the first keeps working", () =>
      Effect.gen(function*() {
        const h = yield* setup
        const connected = yield* Ref.make(new Set<string>())
        const admit: Transport.Admit = (hl) =>
          Effect.gen(function*() {
            const taken = yield* Ref.modify(connected, (s) => s.has(hl.player) ? [true, s] : [false, new Set([...s, hl.player])])
            if (taken) return yield* new Errors.SessionRefused({ reason: `player ${hl.player} is already connected` })
            yield* Effect.addFinalizer(() =>
              Ref.update(connected, (s) => {
                const n = new Set(s)
                n.delete(hl.player)
                return n
              })
            )
            return acker
          })
        const { address } = yield* h.conductor.serve(admit)
        const first = yield* h.player("p1")
        const s1 = yield* first.connect(address, hello("p1")).pipe(within("connect 1"))
        expect(yield* roundTrip(s1, 1)).toBe(1)
        const second = yield* h.player("p1")
        const error = yield* second.connect(address, hello("p1")).pipe(Effect.flip, within("connect 2"))
        expect(error._tag).toBe("SessionRefused")
        expect((error as Errors.SessionRefused).reason).toBe("player p1 is already connected")
        expect(yield* roundTrip(s1, 2)).toBe(1)
        // Once the first session ends, the name is free again.
        yield* s1.close
        const s3 = yield* second.connect(address, hello("p1")).pipe(
          Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.intersect(Schedule.recurs(100)))),
          within("connect 3")
        )
        expect(yield* roundTrip(s3, 3)).toBe(1)
      }), timeout)

    it.scopedLive("sends after close are harmless on both sides", () =>
      Effect.gen(function*() {
        const h = yield* setup
        const sessionD = yield* Deferred.make<Transport.PlayerSession>()
        const ended = yield* Deferred.make<void>()
        const { address } = yield* h.conductor.serve(admitAll((session) =>
          Deferred.succeed(sessionD, session).pipe(
            Effect.zipRight(Stream.runDrain(session.incoming)),
            Effect.zipRight(Deferred.succeed(ended, undefined))
          )
        ))
        const player = yield* h.player("p1")
        const s = yield* player.connect(address, hello("p1")).pipe(within("connect"))
        const conductorSide = yield* Deferred.await(sessionD).pipe(within("the session"))
        yield* s.close
        yield* s.close
        for (let i = 0; i < 100; i++) yield* s.send(results(i + 1))
        yield* Deferred.await(ended).pipe(within("the conductor's stream to end"))
        for (let i = 0; i < 100; i++) yield* conductorSide.send(run(i + 1))
        yield* conductorSide.close("again")
        const exit = yield* Effect.exit(s.send(results(1)))
        expect(Exit.isSuccess(exit)).toBe(true)
        expect(Chunk.size(yield* Stream.runCollect(s.incoming).pipe(within("the stream")))).toBe(0)
      }), timeout)

    it.scopedLive("several players at once each get their own messages", () =>
      Effect.gen(function*() {
        const h = yield* setup
        const { address } = yield* h.conductor.serve(admitAll((session) =>
          Stream.runForEach(session.incoming, (m) =>
            m._tag === "Results"
              ? session.send(new Protocol.Ack({ refs: m.results.map((r) => ({ ...r.ref, key: Names.taskKey(session.player) })) }))
              : Effect.void)
        ))
        const names = ["w1", "w2", "w3", "w4", "w5"]
        const outcomes = yield* Effect.forEach(names, (n, idx) =>
          Effect.gen(function*() {
            const player = yield* h.player(n)
            const s = yield* player.connect(address, hello(n)).pipe(within(`connect ${n}`))
            const collector = yield* s.incoming.pipe(Stream.take(100), Stream.runCollect, Effect.fork)
            for (let i = 1; i <= 100; i++) yield* s.send(results(idx * 1000 + i))
            const got = Chunk.toReadonlyArray(yield* Fiber.join(collector).pipe(within(`acks of ${n}`)))
            return got.every((m) => m._tag === "Ack" && m.refs[0]!.key === n) &&
              got.map(jobOf).join(",") === Array.from({ length: 100 }, (_, i) => idx * 1000 + i + 1).join(",")
          }), { concurrency: "unbounded" })
        expect(outcomes).toEqual(names.map(() => true))
      }), timeout)

    it.scopedLive("when the conductor stops serving, open sessions end (the player is told) and new connects fail", () =>
      Effect.gen(function*() {
        const h = yield* setup
        const finalized = yield* Deferred.make<void>()
        const serveScope = yield* Scope.make()
        const { address } = yield* h.conductor.serve(() =>
          Effect.addFinalizer(() => Deferred.succeed(finalized, undefined)).pipe(Effect.as(acker))
        ).pipe(Scope.extend(serveScope))
        const player = yield* h.player("p1")
        const s = yield* player.connect(address, hello("p1")).pipe(within("connect"))
        expect(yield* roundTrip(s, 1)).toBe(1)
        yield* Scope.close(serveScope, Exit.void).pipe(within("the conductor to stop"))
        const rest = Chunk.toReadonlyArray(yield* Stream.runCollect(s.incoming).pipe(within("the player's stream to end")))
        expect(rest.every((m) => m._tag === "Refused")).toBe(true)
        yield* Deferred.await(finalized).pipe(within("the admit finalizer"))
        const again = yield* player.connect(address, hello("p1")).pipe(Effect.flip, within("connect again"))
        expect(again._tag).toBe("TransportError")
      }), timeout)

    it.scopedLive("connecting where no conductor is serving fails with a TransportError", () =>
      Effect.gen(function*() {
        const h = yield* setup
        const player = yield* h.player("p1")
        const result = yield* player.connect(h.unreachable, hello("p1")).pipe(Effect.either, within("connect"))
        expect(Either.isLeft(result)).toBe(true)
        if (Either.isLeft(result)) expect(result.left._tag).toBe("TransportError")
      }), timeout)
  })
}
