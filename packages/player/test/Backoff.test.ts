/**
 * The session loop's reconnection schedule, on the TestClock: exponential
 * with jitter, capped, conductors tried in turn, reset after a healthy
 * session, refusals retried like failures.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { Errors, Names, Protocol, Transport } from "@orchestra/core"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Chunk, Clock, Duration, Effect, Stream, TestClock } from "effect"
import { Outbox, Player, ScoreCatalog } from "../src/index.js"
import * as Conductor from "./support/conductor.js"
import { cleanup, tempDir } from "./support/fixtures.js"

afterEach(cleanup)

interface Attempt {
  readonly at: number
  readonly address: string
}

/**
 * A transport whose n-th connect does what `plan(n)` says: fail, refuse, or
 * open a session that lasts `ms` (on the clock) and then ends.
 */
const scripted = (
  attempts: Array<Attempt>,
  plan: (n: number) => { readonly _tag: "fail" } | { readonly _tag: "refuse" } | { readonly _tag: "session"; readonly ms: number }
): Transport.PlayerTransportService => ({
  connect: (address) =>
    Effect.gen(function*() {
      const at = yield* Clock.currentTimeMillis
      const n = attempts.length
      attempts.push({ at, address })
      const step = plan(n)
      if (step._tag === "fail") return yield* new Errors.TransportError({ reason: "connect", message: "connection refused" })
      if (step._tag === "refuse") return yield* new Errors.SessionRefused({ reason: "not on the allowlist" })
      return {
        address,
        welcome: new Protocol.Welcome({ protocol: Protocol.PROTOCOL_VERSION, conductor: "c" }),
        send: () => Effect.void,
        incoming: Stream.fromEffect(Effect.sleep(Duration.millis(step.ms))).pipe(Stream.drain),
        close: Effect.void
      } satisfies Transport.ConductorSession
    })
})

/** A few milliseconds of real time, so that every fiber woken by the clock gets to run. */
const settle = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 5)))

/**
 * Let `ms` of simulated time pass, one pending sleep at a time: the clock is
 * set exactly to the next wake-up, and everything woken runs before the
 * clock moves on (so recorded times are exact whatever the machine's load).
 */
const advance = (ms: number) =>
  Effect.gen(function*() {
    const end = (yield* Clock.currentTimeMillis) + ms
    for (let i = 0; i < 10_000; i++) {
      yield* settle
      const pending = Chunk.toReadonlyArray(yield* TestClock.sleeps())
      const next = pending.length === 0 ? undefined : Math.min(...pending)
      if (next === undefined || next > end) {
        yield* TestClock.setTime(end)
        yield* settle
        return
      }
      yield* TestClock.setTime(next)
    }
  })

const gaps = (attempts: ReadonlyArray<Attempt>): Array<number> =>
  attempts.slice(1).map((a, i) => a.at - attempts[i]!.at)

describe("reconnection backoff (TestClock)", () => {
  it.scoped("exponential from the initial delay, with jitter, capped; refusals retried the same way", () =>
    Effect.gen(function*() {
      const attempts: Array<Attempt> = []
      const transport = scripted(attempts, (n) => (n % 3 === 2 ? { _tag: "refuse" } : { _tag: "fail" }))
      const t0 = yield* Clock.currentTimeMillis
      yield* Conductor.startPlayer({
        scores: tempDir("scores"),
        state: tempDir("state"),
        address: "unused",
        backoff: { initialMs: 500, maxMs: 5000 }
      }).pipe(Effect.provideService(Transport.PlayerTransport, transport))
      yield* advance(40_000)
      expect(attempts[0]!.at).toBe(t0)
      const g = gaps(attempts)
      expect(g.length).toBeGreaterThanOrEqual(8)
      // 500, 1000, 2000, 4000 (each ±20 %), then the 5000 cap
      const expected = [500, 1000, 2000, 4000]
      expected.forEach((e, i) => {
        expect(g[i]).toBeGreaterThanOrEqual(e * 0.8)
        expect(g[i]).toBeLessThanOrEqual(e * 1.2)
      })
      for (const later of g.slice(4)) expect(later).toBeCloseTo(5000, 6)
    }).pipe(Effect.provide(Conductor.quiet)))

  it.scoped("the conductors of the list are tried in turn", () =>
    Effect.gen(function*() {
      const attempts: Array<Attempt> = []
      const outbox = yield* Outbox.make({ dir: tempDir("state") })
      const catalog = yield* ScoreCatalog.make({ dir: tempDir("scores") }).pipe(Effect.provide(NodeFileSystem.layer))
      yield* Player.make({
        name: Names.playerName("p1"),
        conductors: ["a:1", "b:2", "c:3"],
        slots: 1,
        backoff: { initialMs: 100, maxMs: 100 }
      }).pipe(
        Effect.provideService(Transport.PlayerTransport, scripted(attempts, () => ({ _tag: "fail" }))),
        Effect.provideService(Outbox.Outbox, outbox),
        Effect.provideService(ScoreCatalog.ScoreCatalog, catalog)
      )
      yield* advance(1000)
      expect(attempts.slice(0, 7).map((a) => a.address)).toEqual(["a:1", "b:2", "c:3", "a:1", "b:2", "c:3", "a:1"])
    }).pipe(Effect.provide(Conductor.quiet)))

  it.scoped("a healthy session resets the backoff; a short one does not", () =>
    Effect.gen(function*() {
      const attempts: Array<Attempt> = []
      // 0-3 fail, 4 a 15 s session (healthy), 5-6 fail, 7 a 1 s session (not healthy), 8-9 fail
      const plan = (n: number) =>
        n === 4 ? { _tag: "session" as const, ms: 15_000 } : n === 7 ? { _tag: "session" as const, ms: 1000 } : { _tag: "fail" as const }
      yield* Conductor.startPlayer({
        scores: tempDir("scores"),
        state: tempDir("state"),
        address: "x:1",
        backoff: { initialMs: 1000, maxMs: 60_000 },
        healthyAfterMs: 10_000
      }).pipe(Effect.provideService(Transport.PlayerTransport, scripted(attempts, plan)))
      yield* advance(80_000)
      expect(attempts.length).toBeGreaterThanOrEqual(10)
      const g = gaps(attempts)
      const within = (x: number, e: number) => x >= e * 0.8 && x <= e * 1.2
      // before: 1, 2, 4, 8 s
      expect(within(g[0]!, 1000) && within(g[1]!, 2000) && within(g[2]!, 4000) && within(g[3]!, 8000)).toBe(true)
      // attempt 4 lasted 15 s, then the delay starts again from 1 s
      expect(within(g[4]! - 15_000, 1000)).toBe(true)
      expect(within(g[5]!, 2000)).toBe(true)
      expect(within(g[6]!, 4000)).toBe(true)
      // attempt 7 lasted only 1 s: no reset, the delay keeps growing (8 s)
      expect(within(g[7]! - 1000, 8000)).toBe(true)
    }).pipe(Effect.provide(Conductor.quiet)))
})
