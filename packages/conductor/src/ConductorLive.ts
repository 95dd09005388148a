/**
 * The one place the conductor binary is wired: config file → plugin
 * registry (the built-in plugins, then the user's own from `plugins:` and
 * from module specs in `store`/`transport`, imported by the Node loader
 * relative to the config file) → store → transport → engine (resuming
 * unfinished jobs) → audience socket → HTTP API → retention; logging at the configured
 * level; SIGHUP re-reads the players allowlist and the transport's CRL.
 * `run` serves until interrupted.
 *
 * @since 0.1.0
 */
import type { FileSystem } from "@effect/platform"
import type { Errors, Store, Transport } from "@orchestra/core"
import { PluginRegistry } from "@orchestra/core"
import { policyAllOf } from "@orchestra/policy-all-of"
import { policyOneOf } from "@orchestra/policy-one-of"
import { policyRolling } from "@orchestra/policy-rolling"
import { policyStages } from "@orchestra/policy-stages"
import { storeMemory } from "@orchestra/store-memory"
import { storeSqlite } from "@orchestra/store-sqlite"
import { transportMemory } from "@orchestra/transport-memory"
import { transportTls } from "@orchestra/transport-tls"
import type { Scope } from "effect"
import { Effect, Either, FiberSet, Runtime } from "effect"
import * as Allowlist from "./Allowlist.js"
import type * as AudienceSocket from "./AudienceSocket.js"
import type * as HttpServer from "./HttpServer.js"
import * as Conductor from "./Conductor.js"
import * as ConductorConfig from "./ConductorConfig.js"
import * as Logging from "./Logging.js"
import * as PluginLoader from "./PluginLoader.js"

/** The plugins every conductor has, registered under their short names. */
export const builtinPlugins = (): ReadonlyArray<PluginRegistry.Plugin> => [
  policyOneOf(),
  policyAllOf(),
  policyStages(),
  policyRolling(),
  storeMemory(),
  storeSqlite(),
  transportTls(),
  transportMemory()
]

export type StartError =
  | Errors.ConfigError
  | Errors.UnknownPlugin
  | Errors.PluginLoadError
  | Errors.StoreError
  | Errors.TransportError
  | AudienceSocket.AudienceSocketError
  | HttpServer.HttpServerError

export interface StartOptions {
  /** Change the configuration after it is read (command-line overrides). */
  readonly configure?: (config: ConductorConfig.ConductorConfig) => ConductorConfig.ConductorConfig
  /** Listen for SIGHUP (default true). */
  readonly signals?: boolean
}

export interface Running {
  readonly config: ConductorConfig.ConductorConfig
  readonly conductor: Conductor.Conductor
  readonly registry: PluginRegistry.Registry
  /** What SIGHUP does: re-read the allowlist and the transport's CRL. */
  readonly reload: Effect.Effect<void>
}

/** Build the registry: built-ins, then each `plugins:` entry. */
export const buildRegistry = (
  config: ConductorConfig.ConductorConfig
): Effect.Effect<PluginRegistry.Registry, Errors.PluginLoadError, PluginRegistry.PluginLoader> =>
  Effect.gen(function*() {
    let registry = yield* PluginRegistry.Registry.make(builtinPlugins())
    const loader = yield* PluginRegistry.PluginLoader
    for (const spec of config.plugins) {
      const exported = yield* loader.load(spec, config.baseDir)
      const plugins = yield* PluginRegistry.pluginsOf(spec, exported)
      registry = yield* registry.add(plugins, spec)
    }
    return registry
  })

/** Start a conductor from a loaded configuration; it runs until the scope closes. */
export const startWith = (
  loaded: ConductorConfig.ConductorConfig,
  options: StartOptions = {}
): Effect.Effect<Running, StartError, Scope.Scope | PluginRegistry.PluginLoader> =>
  Effect.gen(function*() {
    const config = options.configure === undefined ? loaded : options.configure(loaded)
    let registry = yield* buildRegistry(config)
    const storePick = yield* PluginRegistry.resolve(registry, "store", config.store.plugin, config.baseDir)
    registry = storePick.registry
    const transportPick = yield* PluginRegistry.resolve(registry, "transport", config.transport.plugin, config.baseDir)
    registry = transportPick.registry

    const runtime = yield* Effect.runtime<never>()
    const log: Transport.TransportContext["log"] = (level, message, fields) => {
      const eff = level === "error" ? Effect.logError(message) : level === "warn" ? Effect.logWarning(message) : Effect.logInfo(message)
      Runtime.runSync(runtime)(Effect.annotateLogs(eff, { component: "transport", ...fields }))
    }

    const store: Store.StoreService = yield* storePick.plugin.make(config.store.config, { baseDir: config.baseDir })
    const transport = yield* transportPick.plugin.conductor(config.transport.config, { baseDir: config.baseDir, log })
    const conductor = yield* Conductor.make({
      name: config.name,
      store,
      registry,
      allowlist: config.allowlist,
      transport,
      ...(config.audienceSocket === undefined ? {} : { audienceSocket: config.audienceSocket }),
      ...(config.schedules.length === 0 ? {} : { schedules: { schedules: config.schedules } }),
      ...(config.retentionMs === undefined ? {} : { retentionMs: config.retentionMs }),
      ...(config.http === undefined ? {} : { http: config.http }),
      ...(config.eventsKept === undefined ? {} : { events: { capacity: config.eventsKept } })
    })

    const reload = Effect.gen(function*() {
      yield* Effect.logInfo("reloading the players allowlist and the transport's revocation list")
      const names = yield* Effect.either(Allowlist.load(config.playersFile))
      if (Either.isLeft(names)) {
        yield* Effect.logError("the players allowlist was not reloaded: the previous one stays in force").pipe(
          Effect.annotateLogs({ error: names.left.message })
        )
      } else {
        const change = yield* conductor.engine.setAllowlist(names.right)
        yield* Effect.logInfo("players allowlist reloaded").pipe(
          Effect.annotateLogs({ players: names.right.length, added: change.added.length, removed: change.removed.length })
        )
      }
      yield* transport.reload.pipe(
        Effect.catchAll((e) => Effect.logError("the transport was not reloaded").pipe(Effect.annotateLogs({ error: e.message })))
      )
    })

    if (options.signals !== false) {
      const fork = yield* FiberSet.makeRuntime<never, void, never>()
      const onHup = () => {
        fork(reload)
      }
      yield* Effect.acquireRelease(
        Effect.sync(() => process.on("SIGHUP", onHup)),
        () => Effect.sync(() => process.off("SIGHUP", onHup))
      )
    }
    return { config, conductor, registry, reload }
  })

/** Read `file` and start the conductor it describes, logging at its level. */
export const start = (
  file: string,
  options: StartOptions = {}
): Effect.Effect<Running, StartError, Scope.Scope | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const loaded = yield* ConductorConfig.load(file)
    const config = options.configure === undefined ? loaded : options.configure(loaded)
    return yield* startWith(config, { ...options, configure: undefined }).pipe(
      Effect.provide(PluginLoader.layer),
      Effect.provide(Logging.layer(config.logLevel))
    )
  })

/** Run the conductor of `file` until interrupted (SIGINT/SIGTERM via the runtime). */
export const run = (file: string, options: StartOptions = {}): Effect.Effect<never, StartError, FileSystem.FileSystem> =>
  Effect.scoped(
    Effect.gen(function*() {
      const running = yield* start(file, options)
      return yield* Effect.never.pipe(Effect.provide(Logging.layer(running.config.logLevel)))
    })
  )
