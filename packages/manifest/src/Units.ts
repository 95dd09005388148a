/**
 * Durations (`250ms`, `30s`, `5m`, `1h`, `1d`, or a number of seconds) and
 * byte sizes (`1MiB`, `64KiB`, `10MB`, `1000`) as written in manifests and
 * configuration files, with Schemas that decode them to milliseconds and
 * bytes.
 *
 * @since 0.1.0
 */
import { Either, ParseResult, Schema } from "effect"

/** The duration syntax, for JSON Schema `pattern`s and messages. */
export const DURATION_PATTERN = "^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)$"
/** The size syntax, for JSON Schema `pattern`s and messages. */
export const SIZE_PATTERN = "^[0-9]+(\\.[0-9]+)?\\s*(B|KB|MB|GB|KiB|MiB|GiB|k|K|M|G)?$"

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const sizeUnits: Record<string, number> = {
  "": 1,
  B: 1,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
  k: 1024,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3
}

/**
 * Parse a duration to milliseconds: a string with a unit (`ms`, `s`, `m`,
 * `h`, `d`) or a non-negative number of seconds.
 */
export const parseDuration = (input: string | number): Either.Either<number, string> => {
  if (typeof input === "number") {
    return Number.isFinite(input) && input >= 0
      ? Either.right(Math.round(input * 1000))
      : Either.left(`invalid duration ${input}: expected a non-negative number of seconds`)
  }
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)\s*$/.exec(input)
  if (m === null) {
    return Either.left(`invalid duration ${JSON.stringify(input)}: expected a number with a unit ms, s, m, h or d (e.g. 30s, 5m)`)
  }
  return Either.right(Math.round(Number(m[1]) * durationUnits[m[2]!]!))
}

/** Parse a byte size: a number of bytes, or a number with a unit (`B`, `KB`, `MB`, `GB`, `KiB`, `MiB`, `GiB`; `K`/`M`/`G` are binary). */
export const parseSize = (input: string | number): Either.Either<number, string> => {
  if (typeof input === "number") {
    return Number.isInteger(input) && input >= 0
      ? Either.right(input)
      : Either.left(`invalid size ${input}: expected a non-negative integer number of bytes`)
  }
  const m = /^\s*([0-9]+(?:\.[0-9]+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB|k|K|M|G)?\s*$/.exec(input)
  if (m === null) {
    return Either.left(`invalid size ${JSON.stringify(input)}: expected bytes, optionally with a unit B, KB, MB, GB, KiB, MiB, GiB (e.g. 1MiB)`)
  }
  return Either.right(Math.round(Number(m[1]) * sizeUnits[m[2] ?? ""]!))
}

/** Render milliseconds in the shortest exact unit (`1500ms`, `30s`, `5m`). */
export const formatDuration = (ms: number): string => {
  for (const [unit, factor] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
    if (ms !== 0 && ms % factor === 0) return `${ms / factor}${unit}`
  }
  return `${ms}ms`
}

/** Render bytes in the shortest exact binary unit (`1MiB`, `1500`). */
export const formatSize = (bytes: number): string => {
  for (const [unit, factor] of [["GiB", 1024 ** 3], ["MiB", 1024 ** 2], ["KiB", 1024]] as const) {
    if (bytes !== 0 && bytes % factor === 0) return `${bytes / factor}${unit}`
  }
  return `${bytes}`
}

/** A duration in a config file (`30s` or a number of seconds), decoded to milliseconds. */
export const DurationMs: Schema.Schema<number, string | number> = Schema.transformOrFail(
  Schema.Union(Schema.String, Schema.Number),
  Schema.Number,
  {
    strict: true,
    decode: (input, _, ast) =>
      Either.match(parseDuration(input), {
        onLeft: (msg) => ParseResult.fail(new ParseResult.Type(ast, input, msg)),
        onRight: (ms) => ParseResult.succeed(ms)
      }),
    encode: (ms) => ParseResult.succeed(formatDuration(ms))
  }
).annotations({ identifier: "Duration" })

/** A byte size in a config file (`1MiB` or a number of bytes), decoded to bytes. */
export const ByteSize: Schema.Schema<number, string | number> = Schema.transformOrFail(
  Schema.Union(Schema.String, Schema.Number),
  Schema.Number,
  {
    strict: true,
    decode: (input, _, ast) =>
      Either.match(parseSize(input), {
        onLeft: (msg) => ParseResult.fail(new ParseResult.Type(ast, input, msg)),
        onRight: (n) => ParseResult.succeed(n)
      }),
    encode: (n) => ParseResult.succeed(formatSize(n))
  }
).annotations({ identifier: "ByteSize" })
