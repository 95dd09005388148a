/**
 * The player's configuration file (`player.yaml`): YAML checked by Schema,
 * every problem reported with its file, line and field, unknown keys
 * included. Relative paths are relative to the directory of the file. The
 * daemon never starts half-configured: `load` either returns a complete,
 * resolved config or fails with every issue.
 *
 * @since 0.1.0
 */
import type { FileSystem } from "@effect/platform"
import { Errors, Job, Names } from "@orchestra/core"
import { Units, Yaml } from "@orchestra/manifest"
import { Effect, Either, LogLevel, Schema } from "effect"
import * as path from "node:path"

const Path = Schema.String.pipe(Schema.minLength(1, { message: () => "must not be empty" }))

const Duration = Units.DurationMs

/** The file as written. */
export const PlayerConfigFile = Schema.Struct({
  /** The player's name; must match its certificate. */
  name: Names.PlayerName,
  /** Conductors to connect to, tried in turn (`host:port` for the tls transport). */
  conductors: Schema.NonEmptyArray(Schema.String.pipe(Schema.minLength(1))),
  /**
   * Transport plugin: a built-in name (`tls`, `memory`), a package name or a
   * path — or a block `{ plugin: <that>, ...options }` whose other keys are
   * given to the plugin as they are.
   */
  transport: Schema.optionalWith(
    Schema.Union(
      Schema.String.pipe(Schema.minLength(1)),
      Schema.Struct(
        { plugin: Schema.String.pipe(Schema.minLength(1)) },
        Schema.Record({ key: Schema.String, value: Schema.Unknown })
      )
    ),
    { default: () => "tls" }
  ),
  /** Certificates for mutual TLS. */
  tls: Schema.optional(Schema.Struct({ ca: Path, cert: Path, key: Path })),
  /** Name the conductor's certificate must carry (default: the host of its address). */
  conductorName: Schema.optional(Schema.String.pipe(Schema.minLength(1))),
  /** Transport keep-alive. */
  heartbeat: Schema.optional(Schema.Struct({ interval: Schema.optional(Duration), timeout: Schema.optional(Duration) })),
  /** The score directory: executables, YAML manifests, legacy `.conf` files. */
  scores: Path,
  /** More directories of manifests (for scores whose manifest does not sit beside the executable). */
  manifests: Schema.optionalWith(Schema.Array(Path), { default: () => [] }),
  /** How many tasks run at once; more assignments wait in a local FIFO queue. */
  slots: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 10_000)), { default: () => 4 }),
  /** Directory of the outbox journal. */
  state: Path,
  /** Labels reported to the conductor (`role: web`). */
  labels: Schema.optionalWith(Job.Labels, { default: () => ({}) }),
  /** Time between SIGTERM and SIGKILL when a score is stopped. */
  killGrace: Schema.optionalWith(Duration, { default: () => 5000 }),
  /** Unacknowledged results are sent again after this long. */
  resendInterval: Schema.optionalWith(Duration, { default: () => 30_000 }),
  /** Reconnection backoff: exponential from `initial`, with jitter, capped at `max`. */
  backoff: Schema.optionalWith(
    Schema.Struct({
      initial: Schema.optionalWith(Duration, { default: () => 500 }),
      max: Schema.optionalWith(Duration, { default: () => 30_000 })
    }),
    { default: () => ({ initial: 500, max: 30_000 }) }
  ),
  /** Whether a watchdog process bounds orphaned scores when the player dies. */
  watchdog: Schema.optionalWith(Schema.Boolean, { default: () => true }),
  log: Schema.optionalWith(
    Schema.Struct({
      level: Schema.optionalWith(Schema.Literal("trace", "debug", "info", "warning", "error", "none"), {
        default: () => "info" as const
      })
    }),
    { default: () => ({ level: "info" as const }) }
  )
})
export type PlayerConfigFile = typeof PlayerConfigFile.Type

export type LogLevelName = PlayerConfigFile["log"]["level"]

/** The configuration, checked and with every path absolute. */
export interface PlayerConfig {
  /** The file it was read from (absolute), or a description. */
  readonly file: string
  /** Directory relative paths were resolved against. */
  readonly baseDir: string
  readonly name: Names.PlayerName
  readonly conductors: ReadonlyArray<string>
  readonly transport: string
  /** What the transport plugin is given: `tls`, `conductorName`, `heartbeat` when set, and the options of a `transport` block. */
  readonly transportConfig: Readonly<Record<string, unknown>>
  readonly scores: string
  readonly manifests: ReadonlyArray<string>
  readonly slots: number
  readonly state: string
  readonly labels: Job.Labels
  readonly killGraceMs: number
  readonly resendIntervalMs: number
  readonly backoff: { readonly initialMs: number; readonly maxMs: number }
  readonly watchdog: boolean
  readonly logLevel: LogLevel.LogLevel
}

const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/

/** Whether `s` is `host:port` with a port in 1..65535. */
export const isHostPort = (s: string): boolean => {
  const m = HOST_PORT.exec(s)
  if (m === null) return false
  const port = Number(m[2])
  return port >= 1 && port <= 65535
}

export const logLevelOf = (name: LogLevelName): LogLevel.LogLevel => {
  switch (name) {
    case "trace":
      return LogLevel.Trace
    case "debug":
      return LogLevel.Debug
    case "info":
      return LogLevel.Info
    case "warning":
      return LogLevel.Warning
    case "error":
      return LogLevel.Error
    case "none":
      return LogLevel.None
  }
}

const pluginOf = (c: PlayerConfigFile): string => (typeof c.transport === "string" ? c.transport : c.transport.plugin)

/** Checks across fields, located in the document. */
const crossCheck = (doc: Yaml.YamlDocument, c: PlayerConfigFile): Array<Errors.Issue> => {
  const issues: Array<Errors.Issue> = []
  if (pluginOf(c) === "tls") {
    if (c.tls === undefined) {
      issues.push(Yaml.issueAt(doc, ["tls"], "is required with the tls transport (ca, cert, key)"))
    }
    c.conductors.forEach((addr, i) => {
      if (!isHostPort(addr)) {
        issues.push(Yaml.issueAt(doc, ["conductors", i], `must be host:port with a port in 1..65535 (got ${JSON.stringify(addr)})`))
      }
    })
  }
  if (c.heartbeat?.interval !== undefined && c.heartbeat.timeout !== undefined && c.heartbeat.timeout <= c.heartbeat.interval) {
    issues.push(Yaml.issueAt(doc, ["heartbeat", "timeout"], "must be longer than heartbeat.interval"))
  }
  if (c.backoff.max < c.backoff.initial) {
    issues.push(Yaml.issueAt(doc, ["backoff", "max"], "must not be shorter than backoff.initial"))
  }
  if (c.killGrace <= 0) issues.push(Yaml.issueAt(doc, ["killGrace"], "must be longer than 0"))
  if (c.resendInterval <= 0) issues.push(Yaml.issueAt(doc, ["resendInterval"], "must be longer than 0"))
  return issues
}

const optionsOf = (block: { readonly plugin: string; readonly [k: string]: unknown }): Record<string, unknown> => {
  const { plugin: _plugin, ...rest } = block
  return rest
}

/** Resolve paths and assemble what the transport plugin gets. */
export const resolve = (c: PlayerConfigFile, file: string): PlayerConfig => {
  const baseDir = path.dirname(path.resolve(file))
  const abs = (p: string) => path.resolve(baseDir, p)
  const heartbeat = c.heartbeat === undefined
    ? undefined
    : {
      ...(c.heartbeat.interval === undefined ? {} : { intervalMs: c.heartbeat.interval }),
      ...(c.heartbeat.timeout === undefined ? {} : { timeoutMs: c.heartbeat.timeout })
    }
  const transportConfig: Record<string, unknown> = {
    ...(c.tls === undefined ? {} : { tls: { ca: abs(c.tls.ca), cert: abs(c.tls.cert), key: abs(c.tls.key) } }),
    ...(c.conductorName === undefined ? {} : { conductorName: c.conductorName }),
    ...(heartbeat === undefined ? {} : { heartbeat }),
    ...(typeof c.transport === "string" ? {} : optionsOf(c.transport))
  }
  return {
    file: path.resolve(file),
    baseDir,
    name: c.name,
    conductors: c.conductors,
    transport: pluginOf(c),
    transportConfig,
    scores: abs(c.scores),
    manifests: c.manifests.map(abs),
    slots: c.slots,
    state: abs(c.state),
    labels: c.labels,
    killGraceMs: c.killGrace,
    resendIntervalMs: c.resendInterval,
    backoff: { initialMs: c.backoff.initial, maxMs: c.backoff.max },
    watchdog: c.watchdog,
    logLevel: logLevelOf(c.log.level)
  }
}

/** Check a config text; `file` names it in issues and anchors relative paths. */
export const decode = (text: string, file: string): Either.Either<PlayerConfig, Errors.ConfigError> =>
  Either.flatMap(Either.mapLeft(Yaml.parse(text, file), Yaml.yamlErrorToConfigError), (doc) =>
    Either.flatMap(Yaml.decodeDocument(PlayerConfigFile, doc), (c) => {
      const issues = crossCheck(doc, c)
      return issues.length > 0 ? Either.left(Yaml.configError(file, issues)) : Either.right(resolve(c, file))
    }))

/** Read and check a config file. */
export const load = (file: string): Effect.Effect<PlayerConfig, Errors.ConfigError, FileSystem.FileSystem> =>
  Effect.flatMap(Yaml.readText(file), (text) => decode(text, file))
