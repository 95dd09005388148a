/**
 * The conductor's configuration file (`conductor.yaml`), checked by Schema
 * with every problem reported as `file:line: field: message`; unknown keys
 * are errors, so nothing starts half-configured. Relative paths are
 * relative to the file's directory. See the package README for a complete,
 * commented example.
 *
 * @since 0.1.0
 */
import type { FileSystem } from "@effect/platform"
import type { Errors, Names } from "@orchestra/core"
import { Units, Yaml } from "@orchestra/manifest"
import { Effect, Either, ParseResult, Schema } from "effect"
import * as path from "node:path"
import * as Allowlist from "./Allowlist.js"
import * as Schedules from "./Schedules.js"
import * as Tokens from "./Tokens.js"

const NonEmpty = Schema.String.pipe(Schema.minLength(1))

/** A file mode: an octal string (`"0660"`) or a number written in octal digits (`660`). */
export const FileMode: Schema.Schema<number, string | number> = Schema.transformOrFail(
  Schema.Union(Schema.String, Schema.Number),
  Schema.Number,
  {
    strict: true,
    decode: (input, _, ast) => {
      const text = typeof input === "number" ? String(input) : input.trim().replace(/^0o/i, "")
      if (!/^[0-7]{1,4}$/.test(text)) {
        return ParseResult.fail(
          new ParseResult.Type(ast, input, `invalid file mode ${JSON.stringify(input)}: expected octal digits such as "0660"`)
        )
      }
      return ParseResult.succeed(parseInt(text, 8))
    },
    encode: (n) => ParseResult.succeed(`0${n.toString(8)}`)
  }
).annotations({ identifier: "FileMode" })

export const LogLevel = Schema.Literal("trace", "debug", "info", "warn", "warning", "error", "fatal", "none")
export type LogLevel = typeof LogLevel.Type

/** `store` block: the plugin, and its own keys (checked by the plugin). */
const StoreBlock = Schema.Struct(
  { plugin: Schema.optionalWith(NonEmpty, { default: () => "sqlite" }) },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
)

/** `transport`: a plugin spec, or a block with the plugin and its own keys. */
const TransportBlock = Schema.Union(
  NonEmpty,
  Schema.Struct({ plugin: NonEmpty }, Schema.Record({ key: Schema.String, value: Schema.Unknown }))
)

/** The file as written. */
export const File = Schema.Struct({
  /** The conductor's name: in `Welcome`, logs and status (default "conductor"). */
  name: Schema.optionalWith(NonEmpty, { default: () => "conductor" }),
  listen: Schema.optional(
    Schema.Struct({
      host: Schema.optionalWith(NonEmpty, { default: () => "0.0.0.0" }),
      port: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 65535)), { default: () => 7030 })
    })
  ),
  tls: Schema.optional(Schema.Struct({ ca: NonEmpty, cert: NonEmpty, key: NonEmpty, crl: Schema.optional(NonEmpty) })),
  /** The players allowlist file. */
  players: NonEmpty,
  audience: Schema.optional(
    Schema.Struct({
      socket: Schema.optional(
        Schema.Struct({
          path: NonEmpty,
          mode: Schema.optionalWith(FileMode, { default: () => 0o660 }),
          uid: Schema.optional(Schema.Int.pipe(Schema.nonNegative())),
          gid: Schema.optional(Schema.Int.pipe(Schema.nonNegative()))
        })
      )
    })
  ),
  /** The HTTP audience API (absent: none). */
  http: Schema.optional(
    Schema.Struct({
      listen: Schema.optionalWith(
        Schema.Struct({
          host: Schema.optionalWith(NonEmpty, { default: () => "127.0.0.1" }),
          port: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 65535)), { default: () => 7031 })
        }),
        { default: () => ({ host: "127.0.0.1", port: 7031 }) }
      ),
      /** Bearer tokens, hashed (`orchestra token new`). */
      tokens: Schema.optionalWith(Schema.Array(Tokens.TokenEntry), { default: () => [] })
    })
  ),
  /** The audience event log. */
  events: Schema.optional(
    Schema.Struct({
      /** Events kept for readers that resume (`Last-Event-ID`); default 100,000. */
      keep: Schema.optional(Schema.Int.pipe(Schema.between(1, 10_000_000)))
    })
  ),
  store: Schema.optionalWith(StoreBlock, { default: () => ({ plugin: "sqlite", path: "orchestra.db" }) }),
  transport: Schema.optionalWith(TransportBlock, { default: () => "tls" }),
  /** Extra plugins to load (package names or paths), e.g. a policy of your own. */
  plugins: Schema.optionalWith(Schema.Array(NonEmpty), { default: () => [] }),
  /** Schedule documents to fire: files, or directories of `*.yaml` files. */
  schedules: Schema.optionalWith(Schema.Array(NonEmpty), { default: () => [] }),
  /** Purge finished jobs older than this (e.g. `30d`); absent: keep them. */
  retention: Schema.optional(Units.DurationMs),
  heartbeat: Schema.optional(
    Schema.Struct({
      interval: Schema.optional(Units.DurationMs),
      timeout: Schema.optional(Units.DurationMs)
    })
  ),
  log: Schema.optionalWith(
    Schema.Struct({ level: Schema.optionalWith(LogLevel, { default: () => "info" as const }) }),
    { default: () => ({ level: "info" as const }) }
  )
})
export type File = typeof File.Type

/** A plugin named in the config, with the keys passed to it. */
export interface PluginBlock {
  readonly plugin: string
  readonly config: Readonly<Record<string, unknown>>
}

/** The configuration, resolved: paths absolute, the allowlist read. */
export interface ConductorConfig {
  /** The config file, absolute. */
  readonly file: string
  /** Its directory: what relative paths and plugin paths are relative to. */
  readonly baseDir: string
  readonly name: string
  readonly playersFile: string
  readonly allowlist: ReadonlyArray<Names.PlayerName>
  readonly audienceSocket:
    | { readonly path: string; readonly mode: number; readonly uid?: number; readonly gid?: number }
    | undefined
  readonly store: PluginBlock
  /** The transport plugin, and its config block (`listen`, `tls`, `name`, `heartbeat` and its own keys). */
  readonly transport: PluginBlock
  readonly plugins: ReadonlyArray<string>
  /** The `schedules:` entries, absolute. */
  readonly scheduleFiles: ReadonlyArray<string>
  /** The schedules they hold, loaded and checked. */
  readonly schedules: ReadonlyArray<Schedules.Loaded>
  readonly retentionMs: number | undefined
  readonly logLevel: LogLevel
  /** The HTTP API: where it listens and the tokens it accepts (absent: no HTTP API). */
  readonly http?: {
    readonly host: string
    readonly port: number
    readonly tokens: ReadonlyArray<Tokens.TokenEntry>
  } | undefined
  /** How many audience events are kept for readers that resume (absent: the default, 100,000). */
  readonly eventsKept?: number | undefined
}

const resolveFrom = (baseDir: string, p: string): string => path.resolve(baseDir, p)

/** Turn a decoded file into the resolved configuration (without reading the allowlist). */
export const resolve = (decoded: File, file: string): Omit<ConductorConfig, "allowlist" | "schedules"> => {
  const absolute = path.resolve(file)
  const baseDir = path.dirname(absolute)
  const { plugin: storePlugin, ...storeConfig } = decoded.store
  const transportPlugin = typeof decoded.transport === "string" ? decoded.transport : decoded.transport.plugin
  const transportOwn: Record<string, unknown> = typeof decoded.transport === "string"
    ? {}
    : Object.fromEntries(Object.entries(decoded.transport).filter(([k]) => k !== "plugin"))
  const transportConfig: Record<string, unknown> = { name: decoded.name }
  if (decoded.listen !== undefined) transportConfig["listen"] = decoded.listen
  if (decoded.tls !== undefined) {
    transportConfig["tls"] = {
      ca: resolveFrom(baseDir, decoded.tls.ca),
      cert: resolveFrom(baseDir, decoded.tls.cert),
      key: resolveFrom(baseDir, decoded.tls.key),
      ...(decoded.tls.crl === undefined ? {} : { crl: resolveFrom(baseDir, decoded.tls.crl) })
    }
  }
  if (decoded.heartbeat !== undefined) {
    transportConfig["heartbeat"] = {
      ...(decoded.heartbeat.interval === undefined ? {} : { intervalMs: decoded.heartbeat.interval }),
      ...(decoded.heartbeat.timeout === undefined ? {} : { timeoutMs: decoded.heartbeat.timeout })
    }
  }
  const socket = decoded.audience?.socket
  return {
    file: absolute,
    baseDir,
    name: decoded.name,
    playersFile: resolveFrom(baseDir, decoded.players),
    audienceSocket: socket === undefined
      ? undefined
      : {
        path: resolveFrom(baseDir, socket.path),
        mode: socket.mode,
        ...(socket.uid === undefined ? {} : { uid: socket.uid }),
        ...(socket.gid === undefined ? {} : { gid: socket.gid })
      },
    store: { plugin: storePlugin, config: storeConfig },
    transport: { plugin: transportPlugin, config: { ...transportConfig, ...transportOwn } },
    plugins: decoded.plugins,
    scheduleFiles: decoded.schedules.map((p) => resolveFrom(baseDir, p)),
    retentionMs: decoded.retention,
    logLevel: decoded.log.level,
    http: decoded.http === undefined
      ? undefined
      : { host: decoded.http.listen.host, port: decoded.http.listen.port, tokens: decoded.http.tokens },
    eventsKept: decoded.events?.keep
  }
}

/** Decode the text of a config file; `file` names it in errors and anchors relative paths. */
export const decode = (text: string, file: string): Either.Either<Omit<ConductorConfig, "allowlist" | "schedules">, Errors.ConfigError> =>
  Either.map(Yaml.decode(File, text, file), (d) => resolve(d, file))

/** Read a config file, the allowlist and the schedules it names. */
export const load = (file: string): Effect.Effect<ConductorConfig, Errors.ConfigError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const text = yield* Yaml.readText(file)
    const config = yield* decode(text, file)
    const allowlist = yield* Allowlist.load(config.playersFile)
    const schedules = yield* Schedules.load(config.scheduleFiles, config.file)
    return { ...config, allowlist, schedules }
  })
