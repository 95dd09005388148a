/**
 * The player binary, wired in one place: config → transport plugin (by
 * name: `tls` by default, `memory`, or a package / path loaded through
 * core's `PluginRegistry` and the Node plugin loader) → outbox → score
 * catalog → player (workers + session loop), with SIGHUP reloading the
 * catalog and logs in logfmt on stderr at the configured level.
 *
 * `orchestra player --config player.yaml` runs {@link run}.
 *
 * @since 0.1.0
 */
import type { FileSystem } from "@effect/platform"
import { NodeFileSystem } from "@effect/platform-node"
import type { Errors, Transport } from "@orchestra/core"
import { PluginRegistry, Transport as T } from "@orchestra/core"
import type { ScoreDirectory } from "@orchestra/manifest"
import { transportMemory } from "@orchestra/transport-memory"
import { transportTls } from "@orchestra/transport-tls"
import type { Scope } from "effect"
import { Effect, Either, FiberRef, HashSet, Layer, Logger, LogLevel, Runtime } from "effect"
import * as NodePluginLoader from "./NodePluginLoader.js"
import * as Outbox from "./Outbox.js"
import * as Player from "./Player.js"
import * as PlayerConfig from "./PlayerConfig.js"
import * as ScoreCatalog from "./ScoreCatalog.js"

/** Why the player could not start. */
export type StartError =
  | Errors.ConfigError
  | Errors.UnknownPlugin
  | Errors.PluginLoadError
  | Errors.TransportError
  | Outbox.OutboxError
  | ScoreDirectory.ScanError

/** The transport plugins built into the player binary. */
export const builtinPlugins = (): ReadonlyArray<Transport.TransportPlugin> => [transportTls(), transportMemory()]

/** One logfmt line per event, on stderr. */
export const stderrLogger: Logger.Logger<unknown, void> = Logger.withConsoleError(Logger.logfmtLogger)

/**
 * Logs as logfmt lines on stderr, from `level` up — and only there: any
 * other logger installed by the runtime (a pretty console logger) is
 * replaced.
 */
export const loggerLayer = (level: LogLevel.LogLevel): Layer.Layer<never> =>
  Layer.merge(
    Layer.locallyScoped(FiberRef.currentLoggers, HashSet.make<Array<Logger.Logger<unknown, unknown>>>(stderrLogger)),
    Logger.minimumLogLevel(level)
  )

/** A `TransportContext` whose log goes to the Effect logger of the current runtime. */
const transportContext = (baseDir: string): Effect.Effect<Transport.TransportContext> =>
  Effect.map(Effect.runtime<never>(), (runtime) => ({
    baseDir,
    log: (level, message, fields) => {
      const log = level === "error" ? Effect.logError(message) : level === "warn" ? Effect.logWarning(message) : Effect.logInfo(message)
      Runtime.runFork(runtime)(fields === undefined ? log : Effect.annotateLogs(log, { ...fields }))
    }
  }))

/** Resolve the configured transport plugin and build its player side. */
export const makeTransport = (
  config: PlayerConfig.PlayerConfig,
  plugins: ReadonlyArray<Transport.TransportPlugin> = builtinPlugins()
): Effect.Effect<
  Transport.PlayerTransportService,
  Errors.UnknownPlugin | Errors.PluginLoadError | Errors.TransportError,
  Scope.Scope | PluginRegistry.PluginLoader
> =>
  Effect.gen(function*() {
    const registry = yield* Either.match(PluginRegistry.Registry.make(plugins), {
      onLeft: Effect.fail,
      onRight: Effect.succeed
    })
    const { plugin } = yield* PluginRegistry.resolve(registry, "transport", config.transport, config.baseDir)
    const context = yield* transportContext(config.baseDir)
    return yield* plugin.player(config.transportConfig, context)
  })

/** Player options from a config. */
export const playerOptions = (config: PlayerConfig.PlayerConfig): Player.Options => ({
  name: config.name,
  conductors: config.conductors,
  slots: config.slots,
  labels: config.labels,
  killGraceMs: config.killGraceMs,
  resendIntervalMs: config.resendIntervalMs,
  backoff: config.backoff,
  watchdog: config.watchdog
})

/**
 * Start a player from a checked config in the current scope. `transport`
 * replaces the configured plugin (embedded use and tests).
 */
export const start = (
  config: PlayerConfig.PlayerConfig,
  overrides: { readonly transport?: Transport.PlayerTransportService | undefined } = {}
): Effect.Effect<Player.PlayerService, StartError, Scope.Scope | FileSystem.FileSystem | PluginRegistry.PluginLoader> =>
  Effect.gen(function*() {
    const transport = overrides.transport ?? (yield* makeTransport(config))
    const outbox = yield* Outbox.make({ dir: config.state })
    const catalog = yield* ScoreCatalog.make({ dir: config.scores, manifestDirs: config.manifests })
    return yield* Player.make(playerOptions(config)).pipe(
      Effect.provideService(T.PlayerTransport, transport),
      Effect.provideService(Outbox.Outbox, outbox),
      Effect.provideService(ScoreCatalog.ScoreCatalog, catalog)
    )
  }).pipe(Effect.annotateLogs({ player: config.name }))

/** Run `effect` each time the process receives `signal`, until the scope closes. */
export const onSignal = (signal: NodeJS.Signals, effect: Effect.Effect<void>): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const runtime = yield* Effect.runtime<never>()
    const handler = () => {
      Runtime.runFork(runtime)(effect)
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => process.on(signal, handler)),
      () => Effect.sync(() => process.off(signal, handler))
    )
  })

/**
 * The player daemon: load `configPath`, start, reload the score catalog on
 * SIGHUP, and run until interrupted. Fails only if it cannot start.
 */
export const run = (configPath: string): Effect.Effect<never, StartError> =>
  Effect.gen(function*() {
    const config = yield* PlayerConfig.load(configPath)
    return yield* Effect.scoped(
      Effect.gen(function*() {
        const player = yield* start(config)
        yield* onSignal("SIGHUP", Effect.zipRight(Effect.logInfo("SIGHUP: reloading the score catalog"), player.reload))
        yield* Effect.logInfo("player started").pipe(
          Effect.annotateLogs({
            player: config.name,
            slots: config.slots,
            conductors: config.conductors.join(","),
            transport: config.transport,
            scores: config.scores,
            state: config.state
          })
        )
        return yield* Effect.never
      })
    ).pipe(Effect.provide(loggerLayer(config.logLevel)))
  }).pipe(
    Effect.provide(Layer.mergeAll(NodeFileSystem.layer, NodePluginLoader.layer, loggerLayer(LogLevel.Info)))
  )
