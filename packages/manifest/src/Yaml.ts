/**
 * YAML with source positions: the loader behind every Orchestra
 * configuration file (conductor, player, pipelines) and score manifest.
 *
 * `parse` reads one YAML 1.2 document (core schema, js-yaml) and remembers
 * where every node starts, so that an error about `environment.timeout` can
 * say `player.yaml:12`. `decode` adds an Effect Schema decode that reports
 * every issue, unknown keys included, as `file:line: field: message`.
 *
 * @since 0.1.0
 */
import { FileSystem } from "@effect/platform"
import { Effect, Either, ParseResult, Schema } from "effect"
import { Errors } from "@orchestra/core"
import * as JsYaml from "js-yaml"

/** A YAML text that is not well-formed (syntax error, duplicate key, several documents…). */
export class YamlError extends Schema.TaggedError<YamlError>()("YamlError", {
  file: Schema.String,
  /** 1-based line. */
  line: Schema.Number,
  /** 1-based column. */
  column: Schema.Number,
  /** What is wrong, without the position. */
  reason: Schema.String
}) {
  override get message(): string {
    return `${this.file}:${this.line}:${this.column}: ${this.reason}`
  }
}

/** A path into a YAML value: mapping keys and sequence indexes. */
export type Path = ReadonlyArray<string | number>

/** A 1-based line and column. */
export interface Position {
  readonly line: number
  readonly column: number
}

/** A parsed YAML document with the source positions of its nodes. */
export interface YamlDocument {
  /** The file name given to `parse`, used in messages. */
  readonly file: string
  /** The value (plain objects, arrays, strings, numbers, booleans, null; an empty document is `null`). */
  readonly value: unknown
  /**
   * The 1-based line of the node at `path` — for a mapping entry the line of
   * its key — or of its nearest existing ancestor. `undefined` only for an
   * empty document.
   */
  readonly lineOf: (path: Path) => number | undefined
  /** Like `lineOf`, with the column. */
  readonly positionOf: (path: Path) => Position | undefined
  /** Whether a node exists exactly at `path`. */
  readonly has: (path: Path) => boolean
}

/** Aliases allowed per document: enough for hand-written configs, too few for an alias bomb. */
const MAX_ALIASES = 100
/** Nesting depth allowed. */
const MAX_DEPTH = 64

const pathKey = (path: Path): string => path.map((p) => String(p).replace(/\\/g, "\\\\").replace(/\./g, "\\.")).join(".")

/** Offsets of line starts, to turn a source offset into line and column. */
const lineStarts = (text: string): Array<number> => {
  const starts = [0]
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) === 10) starts.push(i + 1)
  }
  return starts
}

const positionAt = (starts: ReadonlyArray<number>, offset: number): Position => {
  let lo = 0
  let hi = starts.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if ((starts[mid] ?? 0) <= offset) lo = mid
    else hi = mid - 1
  }
  return { line: lo + 1, column: offset - (starts[lo] ?? 0) + 1 }
}

const eventOffset = (e: JsYaml.Event): number => {
  switch (e.type) {
    case JsYaml.EVENT_ID.SCALAR:
      // the anchor or tag, when present, comes first on the line
      return minPositive(e.anchorStart, e.tagStart, e.valueStart)
    case JsYaml.EVENT_ID.MAPPING:
    case JsYaml.EVENT_ID.SEQUENCE:
      return minPositive(e.anchorStart, e.tagStart, e.start)
    case JsYaml.EVENT_ID.ALIAS:
      // anchorStart points after the `*`
      return Math.max(0, e.anchorStart - 1)
    default:
      return -1
  }
}

const minPositive = (...xs: ReadonlyArray<number>): number => {
  let m = -1
  for (const x of xs) if (x >= 0 && (m < 0 || x < m)) m = x
  return m
}

/**
 * Walk the event stream of one document and record the offset of every node
 * by path. A mapping entry is recorded at its key's offset.
 */
const indexPositions = (source: string, events: ReadonlyArray<JsYaml.Event>, from: number): Map<string, number> => {
  const offsets = new Map<string, number>()
  type Frame =
    | { kind: "map"; path: Array<string | number>; pendingKey: string | null | undefined; expectKey: boolean }
    | { kind: "seq"; path: Array<string | number>; index: number }
  const stack: Array<Frame> = []
  // skip nodes inside a complex (non-scalar) key
  let complexKeyDepth = 0

  const place = (e: JsYaml.Event): Array<string | number> | undefined => {
    const top = stack[stack.length - 1]
    if (top === undefined) {
      offsets.set("", eventOffset(e))
      return []
    }
    if (top.kind === "seq") {
      const path = [...top.path, top.index]
      top.index++
      offsets.set(pathKey(path), eventOffset(e))
      return path
    }
    if (top.expectKey) {
      top.expectKey = false
      if (e.type === JsYaml.EVENT_ID.SCALAR) {
        const key = JsYaml.getScalarValue(source, e)
        top.pendingKey = key
        const path = [...top.path, key]
        const k = pathKey(path)
        if (!offsets.has(k)) offsets.set(k, eventOffset(e))
      } else {
        top.pendingKey = null
      }
      return undefined
    }
    top.expectKey = true
    const key = top.pendingKey
    top.pendingKey = undefined
    if (key === null || key === undefined) return undefined
    const path = [...top.path, key]
    const k = pathKey(path)
    if (!offsets.has(k)) offsets.set(k, eventOffset(e))
    return path
  }

  for (let i = from; i < events.length; i++) {
    const e = events[i]!
    if (e.type === JsYaml.EVENT_ID.DOCUMENT) break
    if (complexKeyDepth > 0) {
      if (e.type === JsYaml.EVENT_ID.MAPPING || e.type === JsYaml.EVENT_ID.SEQUENCE) complexKeyDepth++
      else if (e.type === JsYaml.EVENT_ID.POP) complexKeyDepth--
      continue
    }
    switch (e.type) {
      case JsYaml.EVENT_ID.SCALAR:
      case JsYaml.EVENT_ID.ALIAS:
        place(e)
        break
      case JsYaml.EVENT_ID.MAPPING:
      case JsYaml.EVENT_ID.SEQUENCE: {
        const top = stack[stack.length - 1]
        const isKey = top !== undefined && top.kind === "map" && top.expectKey
        const path = place(e)
        if (isKey || path === undefined) {
          complexKeyDepth = 1
          break
        }
        stack.push(
          e.type === JsYaml.EVENT_ID.MAPPING
            ? { kind: "map", path, pendingKey: undefined, expectKey: true }
            : { kind: "seq", path, index: 0 }
        )
        break
      }
      case JsYaml.EVENT_ID.POP:
        if (stack.length === 0) return offsets // end of the document
        stack.pop()
        break
    }
  }
  return offsets
}

const fromException = (file: string, e: unknown): YamlError => {
  if (e instanceof JsYaml.YAMLException) {
    return new YamlError({
      file,
      line: (e.mark?.line ?? 0) + 1,
      column: (e.mark?.column ?? 0) + 1,
      reason: e.reason
    })
  }
  return new YamlError({ file, line: 1, column: 1, reason: e instanceof Error ? e.message : String(e) })
}

/**
 * Parse one YAML document (YAML 1.2 core schema: `yes` is a string, `<<` is
 * an ordinary key). An empty text is the value `null`. Several documents,
 * syntax errors, duplicate keys and unknown aliases are `YamlError`s.
 */
export const parse = (text: string, file: string): Either.Either<YamlDocument, YamlError> => {
  let events: Array<JsYaml.Event>
  let values: Array<unknown>
  try {
    events = JsYaml.parseEvents(text, { filename: file, maxDepth: MAX_DEPTH })
    values = JsYaml.constructFromEvents(events, {
      source: text,
      filename: file,
      schema: JsYaml.CORE_SCHEMA,
      maxAliases: MAX_ALIASES
    })
  } catch (e) {
    return Either.left(fromException(file, e))
  }
  const starts = lineStarts(text)
  const docStarts: Array<number> = []
  events.forEach((e, i) => {
    if (e.type === JsYaml.EVENT_ID.DOCUMENT) docStarts.push(i)
  })
  if (values.length > 1 || docStarts.length > 1) {
    const second = docStarts[1] ?? 0
    let offset = -1
    for (let i = second; i < events.length && offset < 0; i++) offset = eventOffset(events[i]!)
    const at = offset >= 0 ? positionAt(starts, offset) : { line: 1, column: 1 }
    return Either.left(
      new YamlError({ file, ...at, reason: `expected a single YAML document, found ${Math.max(values.length, docStarts.length)}` })
    )
  }
  const offsets = docStarts.length === 0 ? new Map<string, number>() : indexPositions(text, events, (docStarts[0] ?? 0) + 1)
  const value = values.length === 0 ? null : values[0]

  const positionOf = (path: Path): Position | undefined => {
    for (let n = path.length; n >= 0; n--) {
      const offset = offsets.get(pathKey(path.slice(0, n)))
      if (offset !== undefined && offset >= 0) return positionAt(starts, offset)
    }
    return undefined
  }
  return Either.right({
    file,
    value: value === undefined ? null : value,
    positionOf,
    lineOf: (path) => positionOf(path)?.line,
    has: (path) => offsets.has(pathKey(path))
  })
}

/** Render a path as `a.b.0.c` (the form used in issues). Empty path: `""`. */
export const dottedPath = (path: Path): string => path.map(String).join(".")

/**
 * An issue located in a YAML document: `path` becomes `<file>:<line>: <dotted.path>`
 * (or `<file>:<line>` for the root).
 */
export const issueAt = (doc: YamlDocument, path: Path, message: string): Errors.Issue => {
  const line = doc.lineOf(path)
  const where = line === undefined ? doc.file : `${doc.file}:${line}`
  const field = dottedPath(path)
  return { path: field === "" ? where : `${where}: ${field}`, message }
}

/** Render issues one per line as `path: message`. */
export const formatIssues = (issues: ReadonlyArray<Errors.Issue>): string =>
  issues.map((i) => `${i.path}: ${i.message}`).join("\n")

/** A `ConfigError` for `file` listing every issue in its message. */
export const configError = (file: string, issues: ReadonlyArray<Errors.Issue>): Errors.ConfigError =>
  new Errors.ConfigError({
    file,
    message:
      issues.length === 1
        ? `invalid configuration: ${formatIssues(issues)}`
        : `invalid configuration (${issues.length} issues):\n${formatIssues(issues)}`,
    issues: [...issues]
  })

/** A `YamlError` as a `ConfigError` with one issue at `file:line`. */
export const yamlErrorToConfigError = (e: YamlError): Errors.ConfigError =>
  configError(e.file, [{ path: `${e.file}:${e.line}`, message: `YAML syntax: ${e.reason} (column ${e.column})` }])

const formatIssueMessage = (issue: ParseResult.ArrayFormatterIssue): string => {
  if (issue._tag === "Unexpected") {
    const key = issue.path[issue.path.length - 1]
    return key === undefined ? issue.message : `unknown key ${JSON.stringify(String(key))}`
  }
  if (issue._tag === "Missing") return "is required"
  return issue.message
}

/**
 * Turn a Schema parse error on a YAML document into located issues. Unknown
 * keys are reported as `unknown key "k"` at the key's own line.
 */
export const issuesOf = (doc: YamlDocument, error: ParseResult.ParseError): Array<Errors.Issue> => {
  const located = dropOptionalNoise(mergeAlternatives(ParseResult.ArrayFormatter.formatErrorSync(error))).map((i, order) => {
    const path = i.path.map((p) => (typeof p === "symbol" ? String(p) : p))
    return { order, line: doc.lineOf(path) ?? 0, issue: issueAt(doc, path, formatIssueMessage(i)) }
  })
  located.sort((a, b) => a.line - b.line || a.order - b.order)
  return located.map((l) => l.issue)
}

/**
 * An optional field with a bad value fails both as "not undefined" and with
 * the real reason; keep only the real reason.
 */
const dropOptionalNoise = (
  issues: ReadonlyArray<ParseResult.ArrayFormatterIssue>
): Array<ParseResult.ArrayFormatterIssue> => {
  const keys = issues.map((i) => dottedPath(i.path.map(String)))
  return issues.filter((issue, n) => {
    if (issue._tag !== "Type" || !issue.message.startsWith("Expected undefined, actual ")) return true
    const k = keys[n]!
    return !keys.some((other, m) => m !== n && (other === k || other.startsWith(k === "" ? "" : `${k}.`)))
  })
}

const EXPECTED = /^Expected (.*), actual (.*)$/s

/**
 * A union of literals fails with one issue per member (`Expected "a", actual
 * "z"`, `Expected "b", actual "z"`); merge those into `Expected "a" | "b", actual "z"`.
 */
const mergeAlternatives = (
  issues: ReadonlyArray<ParseResult.ArrayFormatterIssue>
): Array<ParseResult.ArrayFormatterIssue> => {
  const out: Array<ParseResult.ArrayFormatterIssue> = []
  for (const issue of issues) {
    const prev = out[out.length - 1]
    const m = EXPECTED.exec(issue.message)
    const pm = prev === undefined ? null : EXPECTED.exec(prev.message)
    if (
      prev !== undefined && m !== null && pm !== null && issue._tag === "Type" && prev._tag === "Type" &&
      pm[2] === m[2] && dottedPath(prev.path.map(String)) === dottedPath(issue.path.map(String))
    ) {
      out[out.length - 1] = { ...prev, message: `Expected ${pm[1]} | ${m[1]}, actual ${m[2]}` }
    } else {
      out.push(issue)
    }
  }
  // an optional field's "| undefined" alternative says nothing useful
  return out.map((i) => {
    const m = EXPECTED.exec(i.message)
    if (m === null || !m[1]!.includes(" | ")) return i
    const alternatives = m[1]!.split(" | ").filter((a) => a !== "undefined")
    return { ...i, message: `Expected ${alternatives.join(" | ")}, actual ${m[2]}` }
  })
}

/** Decode an already parsed document with `schema` (all errors, unknown keys are errors). */
export const decodeDocument = <A, I>(
  schema: Schema.Schema<A, I>,
  doc: YamlDocument
): Either.Either<A, Errors.ConfigError> =>
  Schema.decodeUnknownEither(schema, { errors: "all", onExcessProperty: "error" })(doc.value).pipe(
    Either.mapLeft((e) => configError(doc.file, issuesOf(doc, e)))
  )

/**
 * Parse `text` as YAML and decode it with `schema`. Every problem — a syntax
 * error, a wrong type, a missing field, an unknown key — is an issue
 * `{ path: "<file>:<line>: <field>", message }` of one `ConfigError`.
 */
export const decode = <A, I>(
  schema: Schema.Schema<A, I>,
  text: string,
  file: string
): Either.Either<A, Errors.ConfigError> =>
  Either.flatMap(Either.mapLeft(parse(text, file), yamlErrorToConfigError), (doc) => decodeDocument(schema, doc))

/** Read a file as UTF-8 text; a missing or unreadable file is a `ConfigError` naming it. */
export const readText = (path: string): Effect.Effect<string, Errors.ConfigError, FileSystem.FileSystem> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.readFileString(path, "utf8")).pipe(
    Effect.mapError((e) => {
      const reason =
        e._tag === "SystemError" && e.reason === "NotFound"
          ? "file not found"
          : e._tag === "SystemError" && e.reason === "PermissionDenied"
            ? "permission denied"
            : e.message
      return configError(path, [{ path, message: `cannot read: ${reason}` }])
    })
  )

/** Read `path` and decode it with `schema` (see `decode`). */
export const loadFile = <A, I>(
  schema: Schema.Schema<A, I>,
  path: string
): Effect.Effect<A, Errors.ConfigError, FileSystem.FileSystem> =>
  Effect.flatMap(readText(path), (text) => decode(schema, text, path))
