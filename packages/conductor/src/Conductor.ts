/**
 * A conductor assembled from its parts: an engine over a store and a
 * policy registry, the jobs the store left unfinished resumed, player
 * sessions served by a transport, the audience socket and retention. Used
 * by `ConductorLive` (config, plugins, signals) and directly by tests and
 * embedders.
 *
 * @since 0.1.0
 */
import type { Errors, Names, PluginRegistry, Store, Transport } from "@orchestra/core"
import type { Scope } from "effect"
import { Effect } from "effect"
import * as AudienceSocket from "./AudienceSocket.js"
import * as Engine from "./Engine.js"
import * as Intake from "./Intake.js"
import { StatusCache } from "./internal/StatusCache.js"
import * as Retention from "./Retention.js"

export interface Options {
  readonly name?: string
  readonly store: Store.StoreService
  /** Where policies are found (by name). */
  readonly registry: PluginRegistry.Registry
  readonly allowlist: Iterable<Names.PlayerName>
  readonly transport: Transport.ConductorTransportService
  readonly audienceSocket?: AudienceSocket.Options
  readonly retentionMs?: number
  readonly retentionIntervalMs?: number
  readonly engine?: Omit<Engine.EngineOptions, "store" | "policies" | "allowlist" | "name">
}

export interface Conductor {
  readonly engine: Engine.EngineService
  readonly intake: Intake.IntakeService
  readonly store: Store.StoreService
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
): Effect.Effect<Conductor, Errors.StoreError | Errors.TransportError | AudienceSocket.AudienceSocketError, Scope.Scope> =>
  Effect.gen(function*() {
    const engine = yield* Engine.make({
      ...options.engine,
      name: options.name ?? "conductor",
      store: options.store,
      policies: options.registry.policies,
      allowlist: options.allowlist
    })
    const resumed = yield* engine.recover
    const intake = Intake.make({ store: options.store, engine, registry: () => options.registry })
    const { address } = yield* options.transport.serve(engine.admit)
    // Replies to status polls of finished jobs; a purge empties it.
    const statusCache = new StatusCache()
    let socketPath: string | undefined
    if (options.audienceSocket !== undefined) {
      socketPath = (yield* AudienceSocket.serve(options.audienceSocket, { intake, engine, store: options.store, statusCache })).path
    }
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
      Effect.annotateLogs({ name: options.name ?? "conductor", address, resumed, ...(socketPath === undefined ? {} : { socket: socketPath }) })
    )
    return { engine, intake, store: options.store, address, socketPath, resumed }
  })
