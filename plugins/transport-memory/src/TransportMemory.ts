/**
 * The in-process transport: a hub where conductors serve under a name and
 * players connect to `memory://<name>` (or just `<name>`), for tests and
 * embedded use. It keeps the contract of the real transport — the claimed
 * name must be one of the player's identities, `admit` runs in a scope that
 * closes with the session, closing either side ends the other's stream —
 * and every message goes through Schema encode → JSON → decode, so data
 * that would not survive the wire fails here too (as a defect of `send`).
 *
 * Identities are the claimed name by default; a test can give a player
 * transport other identities with {@link Hub.player}. No heartbeats: both
 * sides live in one process.
 *
 * @since 0.1.0
 */
import { Errors, Protocol, Transport } from "@orchestra/core"
import { Inbox as CoreInbox } from "@orchestra/core"
import { Clock, Context, Deferred, Effect, Exit, FiberId, FiberSet, Layer, Schema, Scope } from "effect"

/** How long a session function may run on after its session closed, before it is interrupted. */
const SESSION_GRACE_MS = 2000

/** Pass a message through what the wire would do to it. */
const wire = <A, I>(schema: Schema.Schema<A, I>) => {
  const encode = Schema.encodeSync(schema)
  const decode = Schema.decodeUnknownSync(schema, { errors: "all" })
  return (message: A): A => decode(JSON.parse(JSON.stringify(encode(message))))
}
const wireFromPlayer = wire(Protocol.FromPlayer)
const wireToPlayer = wire(Protocol.ToPlayer)
const wireHello = wire(Protocol.Hello)

const realSleep = (ms: number): Effect.Effect<void> => Effect.sleep(ms).pipe(Effect.withClock(Clock.make()))

const noLog: Transport.TransportContext["log"] = () => {}

/** `memory://name` or `name`. */
export const nameOf = (address: string): string => (address.startsWith("memory://") ? address.slice("memory://".length) : address)

/** The two directions of one session. */
class Link {
  readonly toConductor = new CoreInbox.Inbox<Protocol.FromPlayer>()
  readonly toPlayer = new CoreInbox.Inbox<Protocol.ToPlayer>()
  readonly closedD = Deferred.unsafeMake<void>(FiberId.none)
  private closed_ = false

  get closed(): boolean {
    return this.closed_
  }

  sendToConductor(message: Protocol.FromPlayer): void {
    const m = wireFromPlayer(message)
    if (!this.closed_) this.toConductor.offer(m)
  }

  sendToPlayer(message: Protocol.ToPlayer): void {
    const m = wireToPlayer(message)
    if (!this.closed_) this.toPlayer.offer(m)
  }

  /** Close both directions; `reason` is told to the player as a last `Refused`. */
  close(reason?: string): void {
    if (this.closed_) return
    if (reason !== undefined) this.toPlayer.offer(new Protocol.Refused({ reason }))
    this.closed_ = true
    this.toConductor.end()
    this.toPlayer.end()
    Deferred.unsafeDone(this.closedD, Exit.void)
  }
}

interface Served {
  readonly name: string
  readonly admit: Transport.Admit
  readonly run: (effect: Effect.Effect<void>) => unknown
  readonly log: Transport.TransportContext["log"]
}

/** Where in-process conductors serve and players find them. */
export class Hub {
  private readonly served = new Map<string, Served>()

  /** Conductor names being served now. */
  get names(): ReadonlyArray<string> {
    return [...this.served.keys()].sort()
  }

  /** A conductor transport serving as `memory://<name>`. */
  conductor(name = "conductor", log: Transport.TransportContext["log"] = noLog): Transport.ConductorTransportService {
    const serve = (admit: Transport.Admit): Effect.Effect<{ readonly address: string }, Errors.TransportError, Scope.Scope> =>
      Effect.gen(this, function*() {
        if (this.served.has(name)) {
          return yield* new Errors.TransportError({ reason: "config", message: `memory://${name} is already being served` })
        }
        const run = yield* FiberSet.makeRuntime<never, void, never>()
        const entry: Served = { name, admit, run: (e) => run(e), log }
        this.served.set(name, entry)
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            if (this.served.get(name) === entry) this.served.delete(name)
          })
        )
        return { address: `memory://${name}` }
      })
    return { serve, reload: Effect.void }
  }

  /**
   * A player transport. `identities` says which names the player's
   * "credentials" carry (default: exactly the name it claims).
   */
  player(
    identities: (hello: Protocol.Hello) => ReadonlyArray<string> = (hello) => [hello.player]
  ): Transport.PlayerTransportService {
    const connect = (
      address: string,
      hello: Protocol.Hello
    ): Effect.Effect<Transport.ConductorSession, Errors.TransportError | Errors.SessionRefused, Scope.Scope> =>
      Effect.gen(this, function*() {
        const name = nameOf(address)
        const served = this.served.get(name)
        if (served === undefined) {
          return yield* new Errors.TransportError({
            reason: "connect",
            message: `no conductor is serving memory://${name} (serving: ${this.names.join(", ") || "none"})`
          })
        }
        const h = yield* Effect.try({
          try: () => wireHello(hello),
          catch: (e) => new Errors.TransportError({ reason: "protocol", message: `the Hello does not encode: ${String(e)}` })
        })
        const link = new Link()
        const result = yield* Deferred.make<Protocol.Welcome, Errors.SessionRefused>()
        served.run(conductorSide(served, link, h, [...identities(h)], result))
        yield* Effect.addFinalizer(() => Effect.sync(() => link.close()))
        const welcome = yield* Deferred.await(result).pipe(Effect.onError(() => Effect.sync(() => link.close())))
        return {
          address: `memory://${name}`,
          welcome,
          send: (message: Protocol.FromPlayer) => Effect.sync(() => link.sendToConductor(message)),
          incoming: link.toPlayer.stream,
          close: Effect.sync(() => link.close())
        }
      })
    return { connect }
  }
}

const conductorSide = (
  served: Served,
  link: Link,
  hello: Protocol.Hello,
  identities: ReadonlyArray<string>,
  result: Deferred.Deferred<Protocol.Welcome, Errors.SessionRefused>
): Effect.Effect<void> => {
  const address = `memory:${hello.player}`
  const refuse = (reason: string) =>
    Effect.gen(function*() {
      served.log("warn", `refused player "${hello.player}" from ${address}: ${reason}`, { address, player: hello.player, reason })
      yield* Deferred.fail(result, new Errors.SessionRefused({ reason }))
      link.close()
    })
  return Effect.gen(function*() {
    const peer: Transport.Peer = { address, identities }
    if (!identities.includes(hello.player)) {
      return yield* refuse(`the credentials presented carry ${identities.map((n) => `"${n}"`).join(", ") || "no name"}, not "${hello.player}"`)
    }
    const admitted = yield* Effect.either(served.admit(hello, peer))
    if (admitted._tag === "Left") return yield* refuse(admitted.left.reason)
    if (link.closed) return
    yield* Deferred.succeed(result, new Protocol.Welcome({ protocol: Protocol.PROTOCOL_VERSION, conductor: served.name }))
    const session: Transport.PlayerSession = {
      player: hello.player,
      hello,
      peer,
      send: (message) => Effect.sync(() => link.sendToPlayer(message)),
      incoming: link.toConductor.stream,
      close: (reason) => Effect.sync(() => link.close(reason))
    }
    served.log("info", `player "${hello.player}" connected`, { player: hello.player, address })
    const ran = admitted.right(session).pipe(
      Effect.catchAllCause((cause) =>
        Effect.sync(() => served.log("error", `the session of player "${hello.player}" failed: ${String(cause)}`, { player: hello.player }))
      )
    )
    yield* Effect.raceFirst(ran, Deferred.await(link.closedD).pipe(Effect.zipRight(realSleep(SESSION_GRACE_MS))))
    link.close()
  }).pipe(
    Effect.scoped,
    Effect.ensuring(
      Effect.gen(function*() {
        yield* Deferred.fail(result, new Errors.SessionRefused({ reason: "the conductor stopped serving" }))
        link.close("the conductor is shutting down")
      })
    )
  )
}

/** The hub of a layer, for tests that need players with other identities. */
export class MemoryHub extends Context.Tag("@orchestra/transport-memory/MemoryHub")<MemoryHub, Hub>() {}

export interface LayerOptions {
  /** The conductor's name; players connect to `memory://<name>`. Default `conductor`. */
  readonly conductorName?: string
  readonly log?: Transport.TransportContext["log"]
}

/** A fresh hub providing both the conductor and the player transport (and the hub itself). */
export const layer = (
  options: LayerOptions = {}
): Layer.Layer<Transport.ConductorTransport | Transport.PlayerTransport | MemoryHub> => {
  const make = Effect.sync(() => new Hub())
  return Layer.effectContext(
    Effect.map(make, (hub) =>
      Context.make(MemoryHub, hub).pipe(
        Context.add(Transport.ConductorTransport, hub.conductor(options.conductorName, options.log)),
        Context.add(Transport.PlayerTransport, hub.player())
      ))
  )
}

/** The hub shared by everything in this process that uses the plugin form. */
export const globalHub: Hub = new Hub()

const ConductorConfig = Schema.Struct({
  name: Schema.optionalWith(Schema.String.pipe(Schema.minLength(1)), { default: () => "conductor" })
})
const PlayerConfig = Schema.Struct({})

const decodeConfig = <A, I>(schema: Schema.Schema<A, I>, what: string) => (input: unknown) =>
  Schema.decodeUnknown(schema, { errors: "all", onExcessProperty: "error" })(input ?? {}).pipe(
    Effect.mapError((e) => new Errors.TransportError({ reason: "config", message: `invalid memory transport (${what}) config: ${e.message}` }))
  )

/** The in-process transport plugin (`transport: { plugin: memory }`), on the process-wide hub. */
export const transportMemory = (): Transport.TransportPlugin => ({
  kind: "transport",
  name: "memory",
  description: "In-process players (tests, embedded use): every message still goes through Schema and JSON",
  conductor: (config, ctx) =>
    Effect.map(decodeConfig(ConductorConfig, "conductor")(config), (c) => globalHub.conductor(c.name, ctx.log)),
  player: (config) => Effect.map(decodeConfig(PlayerConfig, "player")(config), () => globalHub.player())
})
