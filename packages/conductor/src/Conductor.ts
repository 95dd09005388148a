/**
 * A conductor assembled from its parts: an engine over a store and a
 * policy registry, the jobs the store left unfinished resumed, player
 * sessions served by a transport, the event log and the audience operations
 * over it, the audience socket, the HTTP API and retention. Used
 * by `ConductorLive` (config, plugins, signals) and directly by tests and
 * embedders.
 *
 * @since 0.1.0
 */
import type { Errors, Names, PluginRegistry, Store, Transport } from "@orchestra/core"
import type { Scope } from "effect"
import { Effect } from "effect"
import * as Audience from "./Audience.js"
import * as AudienceSocket from "./AudienceSocket.js"
import * as Engine from "./Engine.js"
import * as Events from "./Events.js"
import * as HttpServer from "./HttpServer.js"
import * as Intake from "./Intake.js"
import { Metrics } from "./Metrics.js"
import * as Pipelines from "./Pipelines.js"
import { StatusCache } from "./internal/StatusCache.js"
import * as Retention from "./Retention.js"
import * as Schedules from "./Schedules.js"

export interface Options {
  readonly name?: string
  readonly store: Store.StoreService
  /** Where policies are found (by name). */
  readonly registry: PluginRegistry.Registry
  readonly allowlist: Iterable<Names.PlayerName>
  readonly transport: Transport.ConductorTransportService
  readonly audienceSocket?: AudienceSocket.Options
  /** The HTTP API (absent: none). */
  readonly http?: HttpServer.Options
  /** The event log (how many events are kept for readers that resume). */
  readonly events?: Events.Options
  /** Schedules to fire (absent: none). */
  readonly schedules?: Schedules.Options
  readonly retentionMs?: number
  readonly retentionIntervalMs?: number
  readonly engine?: Omit<Engine.EngineOptions, "store" | "policies" | "allowlist" | "name">
}

export interface Conductor {
  readonly engine: Engine.EngineService
  readonly intake: Intake.IntakeService
  readonly store: Store.StoreService
  /** Every audience event of this run, and the latest ones kept. */
  readonly events: Events.EventLog
  /** The audience operations (what the socket's extension ops and the HTTP API call). */
  readonly audience: Audience.AudienceService
  /** Pipeline runs: started, read, cancelled; resumed at start-up. */
  readonly pipelines: Pipelines.PipelinesService
  /** The schedules being fired, and where each stands. */
  readonly schedules: Schedules.SchedulesService
  readonly metrics: Metrics
  /** Where the HTTP API listens, when one was asked for. */
  readonly http: HttpServer.Address | undefined
  /** Where players connect. */
  readonly address: string
  /** The audience socket, when one was asked for. */
  readonly socketPath: string | undefined
  /** How many unfinished jobs were resumed at start-up. */
  readonly resumed: number
}

/** Start a conductor; it runs until the scope closes. */
export const make = (
  options: Options
): Effect.Effect<
  Conductor,
  Errors.StoreError | Errors.TransportError | AudienceSocket.AudienceSocketError | HttpServer.HttpServerError,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const events = Events.make(options.events)
    const metrics = new Metrics(events.startedAt)
    metrics.attach(events)
    const engine = yield* Engine.make({
      ...options.engine,
      name: options.name ?? "conductor",
      store: options.store,
      policies: options.registry.policies,
      allowlist: options.allowlist,
      events: (e) => {
        events.publish(e)
      }
    })
    const resumed = yield* engine.recover
    const intake = Intake.make({ store: options.store, engine, registry: () => options.registry })
    const audience = Audience.make({ name: options.name ?? "conductor", store: options.store, engine, intake, events })
    const pipelines = yield* Pipelines.make({
      store: options.store,
      intake,
      engine,
      audience,
      registry: () => options.registry,
      publish: (e) => {
        events.publish(e)
      }
    })
    const schedules = yield* Schedules.make(options.schedules ?? { schedules: [] }, { store: options.store, intake, pipelines })
    const { address } = yield* options.transport.serve(engine.admit)
    // Replies to status polls of finished jobs; a purge empties it.
    const statusCache = new StatusCache()
    let socketPath: string | undefined
    if (options.audienceSocket !== undefined) {
      socketPath = (yield* AudienceSocket.serve(options.audienceSocket, { intake, engine, store: options.store, statusCache, audience, pipelines, schedules })).path
    }
    const http = options.http === undefined ? undefined : yield* HttpServer.serve(options.http, { audience, engine, metrics, pipelines, schedules })
    if (options.retentionMs !== undefined) {
      const purging: Store.StoreService = {
        ...options.store,
        purge: (before) => Effect.ensuring(options.store.purge(before), Effect.sync(() => statusCache.clear()))
      }
      yield* Effect.forkScoped(
        Retention.run(purging, {
          retentionMs: options.retentionMs,
          ...(options.retentionIntervalMs === undefined ? {} : { intervalMs: options.retentionIntervalMs })
        })
      )
    }
    yield* Effect.logInfo("conductor started").pipe(
      Effect.annotateLogs({
        name: options.name ?? "conductor",
        address,
        resumed,
        ...(socketPath === undefined ? {} : { socket: socketPath }),
        ...(http === undefined ? {} : { http: http.url })
      })
    )
    return { engine, intake, store: options.store, events, audience, pipelines, schedules, metrics, http, address, socketPath, resumed }
  })
