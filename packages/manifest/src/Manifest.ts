/**
 * The score manifest: how a player runs one score (interface, parameter
 * schema, environment). Loaded from `<score>.yaml` — checked against the
 * published format `manifests/score-manifest.schema.json` with every issue
 * located at `file:line: field` — or from the original Orchestra's
 * `<score>.conf`, or absent (interface `env`, any flat params).
 *
 * @since 0.1.0
 */
import type { FileSystem } from "@effect/platform"
import { Effect, Either, ParseResult, Schema } from "effect"
import { Catalog, Errors, Json, Names } from "@orchestra/core"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { ErrorObject, ValidateFunction } from "ajv"
import { makeFormatAjv, translate } from "./internal/ajv.js"
import * as Params from "./Params.js"
import * as Units from "./Units.js"
import * as Yaml from "./Yaml.js"

/** PATH given to a score when its manifest does not set one. */
export const DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
/** Bound on captured output when the manifest does not set one: 1 MiB. */
export const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024

/** Where a score's manifest came from. */
export const Source = Schema.Literal("manifest", "legacy-conf", "none")
export type Source = typeof Source.Type

/** The environment a score runs in. */
export class ScoreEnvironment extends Schema.Class<ScoreEnvironment>("ScoreEnvironment")({
  /** PATH of the score's process. */
  path: Schema.optionalWith(Schema.String, { default: () => DEFAULT_PATH }),
  /** Working directory; absent: the player's. */
  workdir: Schema.optional(Schema.String),
  /** User name or uid to run as; absent: the player's user. */
  user: Schema.optional(Schema.String),
  /** Extra environment variables. */
  variables: Schema.optionalWith(Schema.Record({ key: Schema.String, value: Schema.String }), { default: () => ({}) }),
  /** Kill the score after this many milliseconds; absent: no limit from the manifest. */
  timeoutMs: Schema.optional(Schema.Number),
  /** Bound on captured stdout and stderr, in bytes. */
  maxOutputBytes: Schema.optionalWith(Schema.Number, { default: () => DEFAULT_MAX_OUTPUT_BYTES })
}) {}

/** A score's manifest, decoded (defaults applied, durations and sizes in ms and bytes). */
export class ScoreManifest extends Schema.Class<ScoreManifest>("ScoreManifest")({
  name: Names.ScoreName,
  description: Schema.optional(Schema.String),
  interface: Catalog.Interface,
  /** JSON Schema of the params object; absent: a flat map of strings, numbers and booleans. */
  parameters: Schema.optional(Json.JsonObject),
  /** JSON Schema of the response. */
  outputs: Schema.optional(Json.JsonObject),
  /** Whether re-running after a player crash is safe. */
  idempotent: Schema.optionalWith(Schema.Boolean, { default: () => false }),
  environment: Schema.optionalWith(ScoreEnvironment, { default: () => new ScoreEnvironment({}) })
}) {}

/** A manifest (YAML or legacy `.conf`) that is wrong; every issue names file, line and field. */
export class ManifestError extends Schema.TaggedError<ManifestError>()("ManifestError", {
  file: Schema.String,
  message: Schema.String,
  issues: Schema.Array(Errors.Issue)
}) {}

const manifestError = (file: string, issues: ReadonlyArray<Errors.Issue>): ManifestError =>
  new ManifestError({
    file,
    message:
      issues.length === 1
        ? `invalid manifest: ${Yaml.formatIssues(issues)}`
        : `invalid manifest (${issues.length} issues):\n${Yaml.formatIssues(issues)}`,
    issues: [...issues]
  })

/** The manifest of a score that has none: interface `env`, no parameter schema, default environment. */
export const none = (name: Names.ScoreName): ScoreManifest => new ScoreManifest({ name, interface: "env" })

/** The score name a manifest file is for: its base name without `.yaml`, `.yml` or `.conf`. */
export const scoreNameOf = (file: string): string => path.basename(file).replace(/\.(ya?ml|conf)$/, "")

/** What a player reports about a score. */
export const toScoreInfo = (
  manifest: ScoreManifest,
  meta: { readonly digest: string; readonly source: Source }
): Catalog.ScoreInfo =>
  new Catalog.ScoreInfo({
    name: manifest.name,
    interface: manifest.interface,
    description: manifest.description,
    parameters: manifest.parameters,
    outputs: manifest.outputs,
    idempotent: manifest.idempotent,
    digest: meta.digest,
    source: meta.source
  })

// ---------------------------------------------------------------------------
// the published format

/** Where the published manifest format is read from (first existing). */
export const formatSchemaLocations: ReadonlyArray<string> = [
  // the repository's manifests/ directory, from src/ or dist/
  fileURLToPath(new URL("../../../manifests/score-manifest.schema.json", import.meta.url)),
  // a copy next to the package (made when packing it)
  fileURLToPath(new URL("../score-manifest.schema.json", import.meta.url))
]

let formatValidator: Either.Either<ValidateFunction, string> | undefined

/** The compiled manifest format, read once. */
const format = (): Either.Either<ValidateFunction, string> => {
  if (formatValidator !== undefined) return formatValidator
  const found = formatSchemaLocations.find((p) => fs.existsSync(p))
  if (found === undefined) {
    formatValidator = Either.left(`the manifest format schema is missing (looked in ${formatSchemaLocations.join(", ")})`)
    return formatValidator
  }
  try {
    formatValidator = Either.right(makeFormatAjv().compile(JSON.parse(fs.readFileSync(found, "utf8"))))
  } catch (e) {
    formatValidator = Either.left(`the manifest format schema ${found} is unusable: ${e instanceof Error ? e.message : String(e)}`)
  }
  return formatValidator
}

/** The published JSON Schema of the manifest format. */
export const formatSchema = (): Either.Either<Json.JsonObject, string> =>
  Either.map(format(), (v) => v.schema as Json.JsonObject)

// ---------------------------------------------------------------------------
// YAML manifests

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v)

const decodeScoreName = Schema.decodeUnknownEither(Names.ScoreName)

/** Why `value` is not a valid score name, or `undefined` when it is one. */
export const scoreNameProblem = (value: unknown): string | undefined =>
  Either.match(decodeScoreName(value), {
    onLeft: (e) => ParseResult.ArrayFormatter.formatErrorSync(e)[0]?.message ?? "invalid score name",
    onRight: () => undefined
  })

export interface ParseOptions {
  /** The score this manifest is for; default: the file's base name without extension. */
  readonly scoreName?: string | undefined
}

/**
 * Parse a YAML manifest (an empty one means every default). Every problem — YAML syntax, unknown keys, wrong
 * values, a parameters or outputs schema that does not compile, a `name`
 * other than the score's — is an issue `<file>:<line>: <field>`.
 */
export const parse = (text: string, file: string, options?: ParseOptions): Either.Either<ScoreManifest, ManifestError> => {
  const scoreName = options?.scoreName ?? scoreNameOf(file)
  const parsed = Yaml.parse(text, file)
  if (Either.isLeft(parsed)) {
    const e = parsed.left
    return Either.left(manifestError(file, [{ path: `${file}:${e.line}`, message: `YAML syntax: ${e.reason} (column ${e.column})` }]))
  }
  const doc = parsed.right
  const checker = format()
  if (Either.isLeft(checker)) return Either.left(manifestError(file, [{ path: file, message: checker.left }]))

  const located: Array<{ segments: ReadonlyArray<string | number>; message: string }> = []
  // an empty manifest (blank, or only comments) means every default
  const value = doc.value === null ? {} : doc.value
  const validateFormat = checker.right
  if (!validateFormat(value)) {
    const special = new Set(["name", "environment\u0000timeout", "environment\u0000maxOutputBytes"])
    for (const l of translate((validateFormat.errors ?? []) as ReadonlyArray<ErrorObject>, "key")) {
      if (special.has(l.segments.join("\u0000"))) continue
      // parameter and outputs schemas are checked below, when they are objects
      const root = l.segments[0]
      if ((root === "parameters" || root === "outputs") && l.segments.length > 1 && isPlainObject((value as Record<string, unknown>)[root])) continue
      located.push(l)
    }
  }

  const m: Record<string, unknown> = isPlainObject(value) ? value : {}
  // name: a valid score name, equal to the file's
  const name = m["name"]
  if (name !== undefined) {
    const problem = scoreNameProblem(name)
    if (problem !== undefined) located.push({ segments: ["name"], message: problem })
    else if (name !== scoreName) {
      located.push({ segments: ["name"], message: `${JSON.stringify(name)} does not match the score's file name ${JSON.stringify(scoreName)}` })
    }
  }
  const nameOk = scoreNameProblem(scoreName)
  if (nameOk !== undefined) located.push({ segments: [], message: `the file name does not give a valid score name: ${nameOk}` })

  // durations and sizes
  const env: Record<string, unknown> = isPlainObject(m["environment"]) ? m["environment"] : {}
  let timeoutMs: number | undefined
  let maxOutputBytes: number | undefined
  const rawTimeout = env["timeout"]
  if (rawTimeout !== undefined) {
    const r = typeof rawTimeout === "string" || typeof rawTimeout === "number"
      ? Units.parseDuration(rawTimeout)
      : Either.left(`invalid duration: expected a string like 30s or a number of seconds`)
    if (Either.isLeft(r)) located.push({ segments: ["environment", "timeout"], message: r.left })
    else timeoutMs = r.right
  }
  const rawSize = env["maxOutputBytes"]
  if (rawSize !== undefined) {
    const r = typeof rawSize === "string" || typeof rawSize === "number"
      ? Units.parseSize(rawSize)
      : Either.left(`invalid size: expected a string like 1MiB or a number of bytes`)
    if (Either.isLeft(r)) located.push({ segments: ["environment", "maxOutputBytes"], message: r.left })
    else maxOutputBytes = r.right
  }

  const iface = (Catalog.Interface.literals as ReadonlyArray<unknown>).includes(m["interface"])
    ? (m["interface"] as Catalog.Interface)
    : m["interface"] === undefined
      ? "env"
      : undefined

  // the parameters and outputs schemas must compile (unless already reported as broken)
  const under = (root: string) => located.some((l) => l.segments[0] === root)
  for (const root of ["parameters", "outputs"] as const) {
    const schema = m[root]
    if (schema === undefined || under(root) || !isPlainObject(schema)) continue
    const compiled = Params.compileDetailed(schema as Json.JsonObject, { interface: root === "parameters" ? iface : undefined })
    if (Either.isLeft(compiled)) {
      for (const p of compiled.left) located.push({ segments: [root, ...p.segments], message: p.message })
    }
  }

  if (located.length > 0) {
    const issues = located
      .map((l, order) => ({ order, line: doc.lineOf(l.segments) ?? 0, issue: Yaml.issueAt(doc, l.segments, l.message) }))
      .sort((a, b) => a.line - b.line || a.order - b.order)
      .map((x) => x.issue)
    return Either.left(manifestError(file, issues))
  }

  const variables = isPlainObject(env["variables"]) ? (env["variables"] as Record<string, string>) : undefined
  return Either.right(
    new ScoreManifest({
      name: Names.scoreName(scoreName),
      description: m["description"] as string | undefined,
      interface: iface ?? "env",
      parameters: m["parameters"] as Json.JsonObject | undefined,
      outputs: m["outputs"] as Json.JsonObject | undefined,
      idempotent: (m["idempotent"] as boolean | undefined) ?? false,
      environment: new ScoreEnvironment({
        path: (env["path"] as string | undefined) ?? DEFAULT_PATH,
        workdir: env["workdir"] as string | undefined,
        user: env["user"] as string | undefined,
        variables: variables ?? {},
        timeoutMs,
        maxOutputBytes: maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES
      })
    })
  )
}

// ---------------------------------------------------------------------------
// legacy .conf

/**
 * Parse an original Orchestra `<score>.conf`: lines `interface=pipe`,
 * `interface = pipe` or `interface pipe`; `#` comments (whole-line, or after
 * whitespace) and blank lines are ignored. The only key is `interface`
 * (`env`, `pipe`; `json` is accepted too); an unknown key, a missing value or
 * a repeated key is an error naming its line. The result has no parameter
 * schema (params: a flat map, as the original) and the default environment.
 */
export const parseLegacyConf = (text: string, file: string, options?: ParseOptions): Either.Either<ScoreManifest, ManifestError> => {
  const scoreName = options?.scoreName ?? scoreNameOf(file)
  const issues: Array<Errors.Issue> = []
  let iface: Catalog.Interface | undefined
  let ifaceLine = 0
  text.split(/\r?\n/).forEach((raw, n) => {
    const line = n + 1
    const content = raw.replace(/(^|\s)#.*$/, "").trim()
    if (content === "") return
    const kv = /^([^=\s]+)\s*(?:=|\s)\s*(.*)$/.exec(content) ?? /^([^=\s]+)()$/.exec(content)
    const key = kv?.[1] ?? content
    const val = (kv?.[2] ?? "").trim()
    if (key !== "interface") {
      issues.push({ path: `${file}:${line}: ${key}`, message: `unknown key ${JSON.stringify(key)} (a legacy .conf knows only "interface")` })
      return
    }
    if (iface !== undefined || ifaceLine !== 0) {
      issues.push({ path: `${file}:${line}: interface`, message: `repeated key "interface" (first on line ${ifaceLine})` })
      return
    }
    ifaceLine = line
    if (val === "") {
      issues.push({ path: `${file}:${line}: interface`, message: `missing value: expected "env" or "pipe"` })
    } else if ((Catalog.Interface.literals as ReadonlyArray<string>).includes(val)) {
      iface = val as Catalog.Interface
    } else {
      issues.push({ path: `${file}:${line}: interface`, message: `must be one of "env", "pipe", "json" (got ${JSON.stringify(val)})` })
    }
  })
  const nameOk = scoreNameProblem(scoreName)
  if (nameOk !== undefined) issues.push({ path: file, message: `the file name does not give a valid score name: ${nameOk}` })
  if (issues.length > 0) return Either.left(manifestError(file, issues))
  return Either.right(new ScoreManifest({ name: Names.scoreName(scoreName), interface: iface ?? "env" }))
}

// ---------------------------------------------------------------------------
// files

/** Parse a manifest's text by its file name: `.conf` is legacy, anything else YAML. */
export const parseFile = (text: string, file: string, options?: ParseOptions): Either.Either<ScoreManifest, ManifestError> =>
  file.endsWith(".conf") ? parseLegacyConf(text, file, options) : parse(text, file, options)

/** Read and parse a manifest file (`.yaml`/`.yml`, or a legacy `.conf`). */
export const load = (file: string, options?: ParseOptions): Effect.Effect<ScoreManifest, ManifestError, FileSystem.FileSystem> =>
  Yaml.readText(file).pipe(
    Effect.mapError((e) => manifestError(file, e.issues)),
    Effect.flatMap((text) => parseFile(text, file, options))
  )
