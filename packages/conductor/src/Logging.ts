/**
 * The conductor's log lines: logfmt (`ts=… level=info msg="player connected"
 * player=web-1`) on stderr, one line per record, at the level chosen in the
 * configuration.
 *
 * @since 0.1.0
 */
import type { HashMap } from "effect"
import { Cause, Layer, Logger, LogLevel } from "effect"
import type { LogLevel as ConfigLogLevel } from "./ConductorConfig.js"

const bare = /^[A-Za-z0-9_.:/@+\-]+$/

/** Quote a logfmt value when it needs it. */
export const formatValue = (v: unknown): string => {
  const s = typeof v === "string" ? v : v instanceof Error ? v.message : typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)
  return s !== "" && bare.test(s) ? s : JSON.stringify(s)
}

const messageText = (message: unknown): string => {
  const parts = Array.isArray(message) ? message : [message]
  return parts.map((m) => (typeof m === "string" ? m : formatValue(m))).join(" ")
}

/** Format one record as a logfmt line (without the newline). */
export const formatLine = (options: {
  readonly date: Date
  readonly logLevel: LogLevel.LogLevel
  readonly message: unknown
  readonly annotations: HashMap.HashMap<string, unknown>
  readonly cause: Cause.Cause<unknown>
}): string => {
  let line = `ts=${options.date.toISOString()} level=${options.logLevel.label.toLowerCase()} msg=${JSON.stringify(messageText(options.message))}`
  for (const [k, v] of options.annotations) line += ` ${k}=${formatValue(v)}`
  if (!Cause.isEmpty(options.cause)) line += ` cause=${JSON.stringify(Cause.pretty(options.cause))}`
  return line
}

/** A logger writing logfmt lines to a sink (stderr by default). */
export const logfmt = (write: (line: string) => void = (line) => process.stderr.write(`${line}\n`)) =>
  Logger.make((options) => write(formatLine(options)))

/** The Effect log level of a config level. */
export const toLogLevel = (level: ConfigLogLevel): LogLevel.LogLevel => {
  switch (level) {
    case "trace":
      return LogLevel.Trace
    case "debug":
      return LogLevel.Debug
    case "info":
      return LogLevel.Info
    case "warn":
    case "warning":
      return LogLevel.Warning
    case "error":
      return LogLevel.Error
    case "fatal":
      return LogLevel.Fatal
    case "none":
      return LogLevel.None
  }
}

/** Replace the default logger with logfmt on stderr at `level`. */
export const layer = (level: ConfigLogLevel): Layer.Layer<never> =>
  Layer.merge(Logger.replace(Logger.defaultLogger, logfmt()), Logger.minimumLogLevel(toLogLevel(level)))
