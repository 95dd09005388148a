/**
 * What is particular to the in-process transport: data that would not
 * survive the wire is caught, identities can be set per player transport,
 * the layer and the plugin form (process-wide hub), and addresses.
 */
import { describe, expect, it } from "@effect/vitest"
import { Errors, Names, Protocol, Transport } from "@orchestra/core"
import { hello, results } from "@orchestra/core/testing/TransportSuite"
import { Cause, Chunk, Deferred, Effect, Exit, Stream } from "effect"
import transportMemoryDefault, { MemoryHub, TransportMemory, layer } from "../src/index.js"

const ref = { job: Names.jobId(1), key: Names.taskKey("0"), attempt: 1 }

const drain = (s: Transport.PlayerSession) => Stream.runDrain(s.incoming)

describe("transport-memory", () => {
  it.scopedLive("messages go through Schema and JSON: what would not survive the wire is a defect of send", () =>
    Effect.gen(function*() {
      const hub = new TransportMemory.Hub()
      const received = yield* Deferred.make<Protocol.FromPlayer>()
      const { address } = yield* hub.conductor("c").serve(() =>
        Effect.succeed((s) => Stream.runForEach(s.incoming, (m) => Deferred.succeed(received, m)))
      )
      const s = yield* hub.player().connect(address, hello("p1"))
      // A bigint inside a JSON response cannot be encoded.
      const bad = new Protocol.Results({
        results: [{ ref, outcome: "OK", response: { n: 1 }, log: "", finishedAt: 1 }]
      })
      const poisoned = { ...bad, results: [{ ...bad.results[0]!, response: { n: 10n as unknown as number } }] } as unknown as Protocol.Results
      const exit = yield* Effect.exit(s.send(poisoned))
      expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
      // NaN becomes null in JSON, which the schema then refuses.
      const nan = { ...bad, results: [{ ...bad.results[0]!, finishedAt: Number.NaN }] } as unknown as Protocol.Results
      const exit2 = yield* Effect.exit(s.send(nan))
      expect(Exit.isFailure(exit2) && Cause.isDie(exit2.cause)).toBe(true)
      // What arrives is a decoded copy, not the object sent.
      const good = results(5)
      yield* s.send(good)
      const got = yield* Deferred.await(received)
      expect(got).toEqual(good)
      expect(got).not.toBe(good)
    }))

  it.scopedLive("identities can differ from the claimed name, per player transport", () =>
    Effect.gen(function*() {
      const hub = new TransportMemory.Hub()
      const peers: Array<Transport.Peer> = []
      const { address } = yield* hub.conductor().serve((_h, peer) => Effect.sync(() => peers.push(peer)).pipe(Effect.as(drain)))
      const multi = hub.player(() => ["web-1", "web-1.example.org"])
      const s = yield* multi.connect(address, hello("web-1.example.org"))
      expect(s.welcome.conductor).toBe("conductor")
      expect(peers[0]!.identities).toEqual(["web-1", "web-1.example.org"])
      const e = yield* multi.connect(address, hello("db-1")).pipe(Effect.flip)
      expect(e._tag).toBe("SessionRefused")
      expect((e as Errors.SessionRefused).reason).toContain("\"db-1\"")
    }))

  it.scopedLive("addresses: memory://name and name; one server per name; unknown names list who serves", () =>
    Effect.gen(function*() {
      const hub = new TransportMemory.Hub()
      const { address } = yield* hub.conductor("main").serve(() => Effect.succeed(drain))
      expect(address).toBe("memory://main")
      const a = yield* hub.player().connect("main", hello("p1"))
      const b = yield* hub.player().connect("memory://main", hello("p2"))
      expect([a.address, b.address]).toEqual(["memory://main", "memory://main"])
      const twice = yield* hub.conductor("main").serve(() => Effect.succeed(drain)).pipe(Effect.flip)
      expect(twice.reason).toBe("config")
      const unknown = yield* hub.player().connect("memory://other", hello("p1")).pipe(Effect.flip)
      expect(unknown._tag).toBe("TransportError")
      expect((unknown as Errors.TransportError).message).toContain("serving: main")
    }))

  it.scopedLive("the layer provides both sides and the hub", () =>
    Effect.gen(function*() {
      const conductor = yield* Transport.ConductorTransport
      const player = yield* Transport.PlayerTransport
      const hub = yield* MemoryHub
      const { address } = yield* conductor.serve(() =>
        Effect.succeed((s: Transport.PlayerSession) =>
          Stream.runForEach(s.incoming, (m) =>
            m._tag === "Results" ? s.send(new Protocol.Ack({ refs: m.results.map((r) => r.ref) })) : Effect.void)
        )
      )
      expect(hub.names).toEqual(["orchestra"])
      const s = yield* player.connect(address, hello("p1"))
      yield* s.send(results(3))
      const got = yield* s.incoming.pipe(Stream.take(1), Stream.runCollect)
      expect(Chunk.toReadonlyArray(got).map((m) => m._tag)).toEqual(["Ack"])
    }).pipe(Effect.provide(layer({ conductorName: "orchestra" }))))

  it.scopedLive("the plugin form shares one process-wide hub, and checks its config", () =>
    Effect.gen(function*() {
      const plugin = transportMemoryDefault()
      expect(Transport.isTransportPlugin(plugin)).toBe(true)
      expect(plugin.name).toBe("memory")
      const ctx = { baseDir: ".", log: () => {} }
      const conductor = yield* plugin.conductor({ name: "embedded" }, ctx)
      const player = yield* plugin.player({}, ctx)
      const { address } = yield* conductor.serve(() => Effect.succeed(drain))
      const s = yield* player.connect(address, hello("p1"))
      expect(s.welcome.conductor).toBe("embedded")
      expect(TransportMemory.globalHub.names).toContain("embedded")
      const bad = yield* plugin.conductor({ name: "" , extra: true }, ctx).pipe(Effect.flip)
      expect(bad.reason).toBe("config")
      expect(bad.message).toContain("extra")
    }))
})
