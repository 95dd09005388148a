/**
 * Test support: in-process conductors on the memory transport and a fake
 * player whose every answer the test decides.
 */
import type { Job, PluginRegistry, Store, Transport } from "@orchestra/core"
import { Catalog, Names, Outcome, PluginRegistry as Registry, Protocol } from "@orchestra/core"
import { policyAllOf } from "@orchestra/policy-all-of"
import { policyOneOf } from "@orchestra/policy-one-of"
import { StoreMemory } from "@orchestra/store-memory"
import { TransportMemory } from "@orchestra/transport-memory"
import type { Scope } from "effect"
import { Clock, Effect, Either, Exit, Option, Stream } from "effect"
import { Scope as ScopeModule } from "effect"
import { expect } from "vitest"
import * as Conductor from "../src/Conductor.js"

export const p = Names.playerName
export const s = Names.scoreName

export const score = (name: string, parameters?: Job.Response, digest = `digest-${name}`): Catalog.ScoreInfo =>
  new Catalog.ScoreInfo({
    name: Names.scoreName(name),
    interface: "json",
    digest,
    source: "manifest",
    ...(parameters === undefined ? {} : { parameters })
  })

export const defaultCatalog: ReadonlyArray<Catalog.ScoreInfo> = [score("noop"), score("slow")]

export type Answer = { readonly outcome: Outcome.Outcome; readonly response?: Job.Response; readonly log?: string } | "hold"
export type Behavior = (task: Protocol.Assignment, player: FakePlayer) => Answer

/**
 * A player that answers each assignment as `behavior` says, dedups
 * attempts, keeps results until acknowledged and sends them again on
 * reconnect, and reports held attempts in its `Hello.running`.
 */
export class FakePlayer {
  readonly received: Array<Protocol.Assignment> = []
  readonly acked: Array<Names.TaskRef> = []
  readonly cancels: Array<Names.TaskRef> = []
  readonly refused: Array<string> = []
  readonly held = new Map<string, Protocol.Assignment>()
  readonly outbox = new Map<string, Protocol.TaskResult>()
  readonly executed = new Set<string>()
  /** How many Run and Ack messages arrived (to see batching). */
  runMessages = 0
  ackMessages = 0
  session: Transport.ConductorSession | undefined
  private scope: ScopeModule.CloseableScope | undefined

  constructor(
    readonly name: Names.PlayerName,
    public behavior: Behavior = () => ({ outcome: "OK" }),
    readonly options: {
      readonly slots?: number
      readonly catalog?: ReadonlyArray<Catalog.ScoreInfo>
      readonly labels?: Job.Labels
      /** Send `Started` for each task it takes. */
      readonly reportStarted?: boolean
    } = {}
  ) {}

  hello(): Protocol.Hello {
    return new Protocol.Hello({
      protocol: Protocol.PROTOCOL_VERSION,
      player: this.name,
      slots: this.options.slots ?? 4,
      labels: this.options.labels ?? {},
      catalog: [...(this.options.catalog ?? defaultCatalog)],
      running: [...this.held.values()].map((a) => a.ref)
    })
  }

  get online(): boolean {
    return this.session !== undefined
  }

  /** Connect (over a memory hub or any player transport); the session lasts until `disconnect` (or the conductor closes it). */
  connect(
    via: TransportMemory.Hub | Transport.PlayerTransportService,
    address = "memory://conductor"
  ): Effect.Effect<void, unknown> {
    const self = this
    const transport = via instanceof TransportMemory.Hub ? via.player() : via
    return Effect.gen(function*() {
      const scope = yield* ScopeModule.make()
      const session = yield* transport.connect(address, self.hello()).pipe(
        ScopeModule.extend(scope),
        Effect.onError(() => ScopeModule.close(scope, Exit.void))
      )
      self.scope = scope
      self.session = session
      yield* session.incoming.pipe(
        Stream.runForEach((m) => self.onMessage(m)),
        Effect.ensuring(Effect.sync(() => {
          if (self.session === session) self.session = undefined
        })),
        Effect.forkIn(scope)
      )
      if (self.outbox.size > 0) yield* session.send(new Protocol.Results({ results: [...self.outbox.values()] }))
    })
  }

  disconnect(): Effect.Effect<void> {
    const scope = this.scope
    this.scope = undefined
    this.session = undefined
    return scope === undefined ? Effect.void : ScopeModule.close(scope, Exit.void)
  }

  send(message: Protocol.FromPlayer): Effect.Effect<void> {
    return this.session === undefined ? Effect.void : this.session.send(message)
  }

  /** Finish a held attempt. */
  complete(ref: Names.TaskRef | string, outcome: Outcome.Outcome, response: Job.Response = {}): Effect.Effect<void> {
    const id = typeof ref === "string" ? ref : Names.taskRefString(ref)
    const a = this.held.get(id)
    if (a === undefined) return Effect.die(new Error(`${this.name} holds no attempt ${id}`))
    this.held.delete(id)
    return this.report([this.result(a.ref, outcome, response)])
  }

  /** Held attempts' ids, in the order received. */
  get holding(): ReadonlyArray<string> {
    return [...this.held.keys()]
  }

  receivedIds(): ReadonlyArray<string> {
    return this.received.map((a) => Names.taskRefString(a.ref))
  }

  private result(ref: Names.TaskRef, outcome: Outcome.Outcome, response: Job.Response, log = ""): Protocol.TaskResult {
    return { ref, outcome, response, log, finishedAt: Date.now() }
  }

  private report(results: ReadonlyArray<Protocol.TaskResult>): Effect.Effect<void> {
    for (const r of results) this.outbox.set(Names.taskRefString(r.ref), r)
    return results.length === 0 ? Effect.void : this.send(new Protocol.Results({ results }))
  }

  private onMessage(m: Protocol.ToPlayer): Effect.Effect<void> {
    switch (m._tag) {
      case "Run": {
        this.runMessages++
        const results: Array<Protocol.TaskResult> = []
        const started: Array<{ ref: Names.TaskRef; at: number }> = []
        for (const a of m.tasks) {
          this.received.push(a)
          const id = Names.taskRefString(a.ref)
          if (this.executed.has(id) || this.held.has(id)) continue
          this.executed.add(id)
          if (this.options.reportStarted === true) started.push({ ref: a.ref, at: Date.now() })
          const answer = this.behavior(a, this)
          if (answer === "hold") this.held.set(id, a)
          else results.push(this.result(a.ref, answer.outcome, answer.response ?? {}, answer.log))
        }
        const start = started.length > 0 ? this.send(new Protocol.Started({ tasks: started })) : Effect.void
        return Effect.zipRight(start, this.report(results))
      }
      case "Ack":
        this.ackMessages++
        for (const r of m.refs) {
          this.acked.push(r)
          this.outbox.delete(Names.taskRefString(r))
        }
        return Effect.void
      case "Cancel": {
        const results: Array<Protocol.TaskResult> = []
        for (const r of m.refs) {
          this.cancels.push(r)
          const id = Names.taskRefString(r)
          if (this.held.delete(id)) results.push(this.result(r, "CANCELLED", {}))
        }
        return this.report(results)
      }
      case "Refused":
        this.refused.push(m.reason)
        return Effect.void
      case "Welcome":
        return Effect.void
    }
  }
}

/** Sleep on the real clock (tests run with TestClock in `it.effect`). */
export const realSleep = (ms: number) => Effect.sleep(ms).pipe(Effect.withClock(Clock.make()))

/** Poll until `check` holds; fails the test with `what` after `timeoutMs` (real time). */
export const waitFor = <E, R>(
  what: string,
  check: Effect.Effect<boolean, E, R>,
  timeoutMs = 10_000
): Effect.Effect<void, E, R> =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    for (let i = 0; ; i++) {
      if (yield* check) return
      if (Date.now() > deadline) {
        expect.fail(`timed out after ${timeoutMs} ms waiting for: ${what}`)
      }
      yield* realSleep(i < 20 ? 1 : 10)
    }
  })

/** The job, once finished. */
export const waitJob = (store: Store.StoreService, id: Names.JobId, timeoutMs = 10_000) =>
  Effect.gen(function*() {
    let job: Job.JobRecord | undefined
    yield* waitFor(
      `job ${id} to finish`,
      Effect.map(store.getJob(id), (o) => {
        job = Option.getOrUndefined(o)
        return job !== undefined && job.state !== "PENDING"
      }),
      timeoutMs
    )
    return job!
  })

export const getJob = (store: Store.StoreService, id: Names.JobId) =>
  Effect.map(store.getJob(id), (o) => Option.getOrThrow(o))

export const registry = (...extra: ReadonlyArray<PluginRegistry.Plugin>): PluginRegistry.Registry =>
  Either.getOrThrow(Registry.Registry.make([policyOneOf(), policyAllOf(), ...extra]))

export interface Harness {
  readonly hub: TransportMemory.Hub
  readonly store: Store.StoreService
  readonly conductor: Conductor.Conductor
}

/** A conductor on a fresh memory hub (served as `memory://conductor`) and, by default, a memory store. */
export const harness = (options: {
  readonly allowlist: ReadonlyArray<string>
  readonly store?: Store.StoreService
  readonly hub?: TransportMemory.Hub
  readonly registry?: PluginRegistry.Registry
  readonly audienceSocket?: Conductor.Options["audienceSocket"]
  readonly http?: Conductor.Options["http"]
  readonly events?: Conductor.Options["events"]
  readonly schedules?: Conductor.Options["schedules"]
}): Effect.Effect<Harness, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const hub = options.hub ?? new TransportMemory.Hub()
    const store = options.store ?? (yield* StoreMemory.make)
    const conductor = yield* Conductor.make({
      store,
      registry: options.registry ?? registry(),
      allowlist: options.allowlist.map(p),
      transport: hub.conductor("conductor"),
      ...(options.audienceSocket === undefined ? {} : { audienceSocket: options.audienceSocket }),
      ...(options.http === undefined ? {} : { http: options.http }),
      ...(options.events === undefined ? {} : { events: options.events }),
      ...(options.schedules === undefined ? {} : { schedules: options.schedules }),
      engine: { storeRetryMs: 50 }
    })
    return { hub, store, conductor }
  })

/** Submit a job through intake, failing the test on a refusal. */
export const submit = (
  h: Harness,
  request: {
    readonly score?: string
    readonly players: ReadonlyArray<string>
    readonly policy?: string
    readonly options?: unknown
    readonly params?: Job.Response
    readonly retry?: Job.RetryPolicy
    readonly deadline?: number
  }
) =>
  h.conductor.intake.submitUnknown({
    score: request.score ?? "noop",
    players: request.players,
    policy: request.options === undefined ? { name: request.policy ?? "one-of" } : { name: request.policy ?? "one-of", options: request.options },
    ...(request.params === undefined ? {} : { params: request.params }),
    ...(request.retry === undefined ? {} : { retry: request.retry }),
    ...(request.deadline === undefined ? {} : { deadline: request.deadline })
  }).pipe(Effect.map((a) => a.id))

/** Ended attempts of a job as `player:key/attempt=OUTCOME`, in seq order. */
export const endedOf = (job: Job.JobRecord): ReadonlyArray<string> =>
  job.attempts
    .filter((a) => a.outcome !== undefined)
    .sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0))
    .map((a) => `${a.player}:${a.key}/${a.attempt}=${a.outcome}`)

export { Outcome }
