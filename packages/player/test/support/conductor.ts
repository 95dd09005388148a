/**
 * A fake conductor for tests, on any ConductorTransport (memory or tls): it
 * hands each admitted session to the test, which drives Run / Ack / Cancel
 * and reads what the player sends. It can refuse sessions on demand.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { Errors, Names, Protocol, Transport } from "@orchestra/core"
import type { Scope } from "effect"
import { Deferred, Duration, Effect, Layer, Logger, LogLevel, Queue, Ref, Stream } from "effect"
import { Outbox, Player, ScoreCatalog } from "../../src/index.js"

export interface FakeSession {
  readonly hello: Protocol.Hello
  readonly send: (message: Protocol.ToPlayer) => Effect.Effect<void>
  readonly messages: Queue.Queue<Protocol.FromPlayer>
  readonly close: (reason: string) => Effect.Effect<void>
  /** Completes when the player's side of the session ended. */
  readonly ended: Deferred.Deferred<void>
}

export interface FakeConductor {
  readonly address: string
  readonly sessions: Queue.Queue<FakeSession>
  /** While set, sessions are refused with this reason. */
  readonly refuse: Ref.Ref<string | undefined>
  /** How many sessions were refused. */
  readonly refused: Ref.Ref<number>
}

export const make: Effect.Effect<FakeConductor, Errors.TransportError, Scope.Scope | Transport.ConductorTransport> =
  Effect.gen(function*() {
    const transport = yield* Transport.ConductorTransport
    const sessions = yield* Queue.unbounded<FakeSession>()
    const refuse = yield* Ref.make<string | undefined>(undefined)
    const refused = yield* Ref.make(0)
    const { address } = yield* transport.serve((hello) =>
      Effect.gen(function*() {
        const reason = yield* Ref.get(refuse)
        if (reason !== undefined) {
          yield* Ref.update(refused, (n) => n + 1)
          return yield* new Errors.SessionRefused({ reason })
        }
        return (session: Transport.PlayerSession) =>
          Effect.gen(function*() {
            const messages = yield* Queue.unbounded<Protocol.FromPlayer>()
            const ended = yield* Deferred.make<void>()
            yield* Queue.offer(sessions, { hello, send: session.send, messages, close: session.close, ended })
            yield* Stream.runForEach(session.incoming, (m) => Queue.offer(messages, m))
            yield* Deferred.succeed(ended, undefined)
          })
      })
    )
    return { address, sessions, refuse, refused }
  })

/** The next session, within `ms`. */
export const nextSession = (c: FakeConductor, ms = 10_000) =>
  Queue.take(c.sessions).pipe(Effect.timeoutFail({ duration: Duration.millis(ms), onTimeout: () => new Error("no session") }))

/** The next message matching `pred` (others are dropped), within `ms`. */
export const nextMessage = <A extends Protocol.FromPlayer>(
  s: FakeSession,
  pred: (m: Protocol.FromPlayer) => m is A,
  ms = 10_000
): Effect.Effect<A, Error> =>
  Effect.gen(function*() {
    for (;;) {
      const m = yield* Queue.take(s.messages)
      if (pred(m)) return m
    }
  }).pipe(Effect.timeoutFail({ duration: Duration.millis(ms), onTimeout: () => new Error("no such message") }))

export const isResults = (m: Protocol.FromPlayer): m is Protocol.Results => m._tag === "Results"
export const isStarted = (m: Protocol.FromPlayer): m is Protocol.Started => m._tag === "Started"
export const isCatalogChanged = (m: Protocol.FromPlayer): m is Protocol.CatalogChanged => m._tag === "CatalogChanged"

/**
 * Collect results until every ref in `refs` has one, within `ms`; with
 * `ack`, acknowledge each `Results` message as it comes. Returns every
 * result received, in order (duplicates included).
 */
export const collectResults = (
  s: FakeSession,
  refs: ReadonlyArray<Names.TaskRef>,
  options: { readonly ack?: boolean; readonly ms?: number } = {}
): Effect.Effect<{ readonly byRef: Map<string, Protocol.TaskResult>; readonly all: Array<Protocol.TaskResult> }, Error> =>
  Effect.gen(function*() {
    const want = new Set(refs.map(Names.taskRefString))
    const byRef = new Map<string, Protocol.TaskResult>()
    const all: Array<Protocol.TaskResult> = []
    while ([...want].some((k) => !byRef.has(k))) {
      const m = yield* Queue.take(s.messages)
      if (m._tag !== "Results") continue
      for (const r of m.results) {
        all.push(r)
        const k = Names.taskRefString(r.ref)
        if (!byRef.has(k)) byRef.set(k, r)
      }
      if (options.ack === true) yield* s.send(new Protocol.Ack({ refs: m.results.map((r) => r.ref) }))
    }
    return { byRef, all }
  }).pipe(
    Effect.timeoutFail({ duration: Duration.millis(options.ms ?? 15_000), onTimeout: () => new Error("results did not all arrive") })
  )

/** Logs only errors, to keep test output short. */
export const quiet = Logger.minimumLogLevel(LogLevel.Error)

export interface PlayerOptions {
  readonly scores: string
  readonly state: string
  readonly address: string
  readonly name?: string
  readonly slots?: number
  readonly killGraceMs?: number
  readonly resendIntervalMs?: number
  readonly healthyAfterMs?: number
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number }
  readonly watchdog?: boolean
  readonly maxResultsPerMessage?: number
  readonly maxMessageBytes?: number
}

/** Start a player (outbox, catalog, player) in the current scope, on the PlayerTransport in context. */
export const startPlayer = (o: PlayerOptions) =>
  Effect.gen(function*() {
    const outbox = yield* Outbox.make({ dir: o.state })
    const catalog = yield* ScoreCatalog.make({ dir: o.scores })
    const player = yield* Player.make({
      name: Names.playerName(o.name ?? "p1"),
      conductors: [o.address],
      slots: o.slots ?? 4,
      labels: { role: "test" },
      killGraceMs: o.killGraceMs ?? 500,
      resendIntervalMs: o.resendIntervalMs ?? 30_000,
      healthyAfterMs: o.healthyAfterMs ?? 10_000,
      backoff: o.backoff ?? { initialMs: 20, maxMs: 200 },
      watchdog: o.watchdog ?? false,
      maxResultsPerMessage: o.maxResultsPerMessage,
      maxMessageBytes: o.maxMessageBytes
    }).pipe(
      Effect.provideService(Outbox.Outbox, outbox),
      Effect.provideService(ScoreCatalog.ScoreCatalog, catalog)
    )
    return { player, outbox, catalog }
  }).pipe(Effect.provide(NodeFileSystem.layer))

export const fileSystem = Layer.merge(NodeFileSystem.layer, quiet)

/**
 * A direct in-process PlayerTransport (no wire simulation: messages are
 * passed as they are), for tests whose subject is not the transport — the
 * memory transport round-trips every message through Schema and JSON,
 * which costs ~100 ms for a 5,000-key response.
 */
export const direct = Effect.gen(function*() {
  const sessions = yield* Queue.unbounded<FakeSession>()
  const transport: Transport.PlayerTransportService = {
    connect: (address, hello) =>
      Effect.gen(function*() {
        const messages = yield* Queue.unbounded<Protocol.FromPlayer>()
        const toPlayer = yield* Queue.unbounded<Protocol.ToPlayer>()
        const ended = yield* Deferred.make<void>()
        const close = Effect.zipRight(Queue.shutdown(toPlayer), Deferred.succeed(ended, undefined))
        yield* Effect.addFinalizer(() => close)
        yield* Queue.offer(sessions, {
          hello,
          send: (m) => Effect.asVoid(Queue.offer(toPlayer, m)),
          messages,
          close: () => close,
          ended
        })
        return {
          address,
          welcome: new Protocol.Welcome({ protocol: Protocol.PROTOCOL_VERSION, conductor: "direct" }),
          send: (m: Protocol.FromPlayer) => Effect.asVoid(Queue.offer(messages, m)),
          incoming: Stream.fromQueue(toPlayer),
          close
        }
      })
  }
  return { transport, sessions }
})
