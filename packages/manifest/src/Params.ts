/**
 * Parameter validation: a score's `parameters` JSON Schema compiled with ajv,
 * checking a request's params and listing every violation, with defaults
 * applied to a copy. Also the conversion of params to the `ORC_<key>`
 * environment variables of the `env` and `pipe` interfaces.
 *
 * Without a schema, params are a flat map as in the original Orchestra:
 * values may be strings, numbers or booleans (numbers and booleans are kept
 * as they are, and become strings only in the environment); nested objects,
 * arrays and null are refused.
 *
 * @since 0.1.0
 */
import { Either } from "effect"
import type { Catalog, Errors, Json } from "@orchestra/core"
import type { ValidateFunction } from "ajv"
import { locateCompileError, makeParamsAjv, translate } from "./internal/ajv.js"

type Issue = Errors.Issue

/** A compiled parameter schema. */
export interface ParamsValidator {
  /** The schema it was compiled from (`undefined`: the original's flat map). */
  readonly schema: Json.JsonObject | undefined
  /** The interface the params are for, when given to `compile`. */
  readonly interface: Catalog.Interface | undefined
  /**
   * Check `params`; on success the params with schema defaults applied (a
   * copy: the input is not changed), otherwise every violation, each with a
   * path like `params.threshold`.
   */
  readonly validate: (params: unknown) => Either.Either<Json.JsonObject, ReadonlyArray<Issue>>
}

export interface CompileOptions {
  /**
   * The score's interface. For `env` and `pipe`, parameter names must be
   * valid environment variable names and string values must not contain NUL.
   */
  readonly interface?: Catalog.Interface | undefined
}

/** A valid environment variable name: `[A-Za-z_][A-Za-z0-9_]*`. */
export const isEnvName = (name: string): boolean => /^[A-Za-z_][A-Za-z0-9_]*$/.test(name)

/** The prefix of the environment variables carrying params. */
export const ENV_PREFIX = "ORC_"

const ajv = makeParamsAjv()

const CACHE_LIMIT = 512
const cache = new Map<string, Either.Either<ParamsValidator, ReadonlyArray<Issue>>>()

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype

const joinPath = (root: string, segments: ReadonlyArray<string>): string =>
  [root, ...segments].join(".")

/** A schema problem located by segments below the schema root (for callers that map them to lines). */
export interface SchemaProblem {
  readonly segments: ReadonlyArray<string>
  readonly message: string
}

/**
 * Check that `schema` is a usable parameters schema (valid draft-07, known
 * keywords and formats, resolvable `$ref`s, `type: object` if a type is
 * given, env-compatible property names for `env`/`pipe`) and compile it.
 * The problems are located below the schema root.
 */
export const compileDetailed = (
  schema: Json.JsonObject,
  options?: CompileOptions
): Either.Either<ValidateFunction, ReadonlyArray<SchemaProblem>> => {
  const problems: Array<SchemaProblem> = []
  if (!isPlainObject(schema)) return Either.left([{ segments: [], message: "must be a JSON Schema object" }])
  if (!ajv.validateSchema(schema)) {
    problems.push(...translate(ajv.errors ?? [], "key"))
  }
  const type = schema["type"]
  if (type !== undefined && type !== "object") {
    problems.push({ segments: ["type"], message: `must be "object" (got ${JSON.stringify(type)})` })
  }
  const iface = options?.interface
  const properties = schema["properties"]
  if ((iface === "env" || iface === "pipe") && isPlainObject(properties)) {
    for (const name of Object.keys(properties)) {
      if (!isEnvName(name)) {
        problems.push({
          segments: ["properties", name],
          message: `parameter name ${JSON.stringify(name)} cannot be passed as an environment variable (interface ${iface}): use [A-Za-z_][A-Za-z0-9_]*`
        })
      }
    }
  }
  if (problems.length > 0) return Either.left(problems)
  try {
    const fn = ajv.compile(schema)
    // the closure keeps working; dropping ajv's own cache entry keeps memory bounded
    // when schemas are compiled again and again (catalog reloads, reported catalogs)
    ajv.removeSchema(schema)
    return Either.right(fn)
  } catch (e) {
    ajv.removeSchema(schema)
    const message = e instanceof Error ? e.message : String(e)
    return Either.left([{ segments: locateCompileError(schema, message), message: `invalid schema: ${message}` }])
  }
}

const validateFlat = (params: Record<string, unknown>): Array<Issue> => {
  const issues: Array<Issue> = []
  for (const [key, value] of Object.entries(params)) {
    if (!["string", "number", "boolean"].includes(typeof value) || (typeof value === "number" && !Number.isFinite(value))) {
      issues.push({
        path: joinPath("params", [key]),
        message: `must be a string, number or boolean (the score declares no parameters schema; got ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value === "object" ? "an object" : typeof value})`
      })
    }
  }
  return issues
}

const validateEnvNames = (params: Record<string, unknown>, iface: Catalog.Interface): Array<Issue> => {
  const issues: Array<Issue> = []
  for (const [key, value] of Object.entries(params)) {
    if (!isEnvName(key)) {
      issues.push({
        path: joinPath("params", [key]),
        message: `parameter name ${JSON.stringify(key)} cannot be passed as an environment variable (interface ${iface}): use [A-Za-z_][A-Za-z0-9_]*`
      })
    } else if (JSON.stringify(value)?.includes("\\u0000")) {
      issues.push({ path: joinPath("params", [key]), message: "must not contain a NUL character (interface " + iface + ")" })
    }
  }
  return issues
}

const build = (
  schema: Json.JsonObject | undefined,
  options: CompileOptions | undefined
): Either.Either<ParamsValidator, ReadonlyArray<Issue>> => {
  const iface = options?.interface
  let fn: ValidateFunction | undefined
  if (schema !== undefined) {
    const compiled = compileDetailed(schema, options)
    if (Either.isLeft(compiled)) {
      return Either.left(compiled.left.map((p) => ({ path: joinPath("parameters", p.segments), message: p.message })))
    }
    fn = compiled.right
  }
  const validate = (params: unknown): Either.Either<Json.JsonObject, ReadonlyArray<Issue>> => {
    if (!isPlainObject(params)) {
      return Either.left([{ path: "params", message: `must be an object (got ${params === null ? "null" : Array.isArray(params) ? "an array" : typeof params})` }])
    }
    let copy: Record<string, unknown>
    try {
      copy = structuredClone(params)
    } catch {
      return Either.left([{ path: "params", message: "must be JSON data" }])
    }
    const issues: Array<Issue> = []
    if (schema !== undefined) coerceStrings(schema, copy)
    if (fn !== undefined) {
      if (!fn(copy)) {
        for (const l of translate(fn.errors ?? [], "parameter")) {
          issues.push({ path: joinPath("params", l.segments), message: l.message })
        }
      }
    } else {
      issues.push(...validateFlat(copy))
    }
    if (iface === "env" || iface === "pipe") {
      const named = new Set(issues.map((i) => i.path))
      for (const i of validateEnvNames(copy, iface)) if (!named.has(i.path)) issues.push(i)
    }
    return issues.length > 0 ? Either.left(issues) : Either.right(copy as Json.JsonObject)
  }
  return Either.right({ schema, interface: iface, validate })
}

const scalarTypes = (property: unknown): ReadonlyArray<string> => {
  if (!isPlainObject(property)) return []
  const t = property["type"]
  return typeof t === "string" ? [t] : Array.isArray(t) ? t.filter((x): x is string => typeof x === "string") : []
}

/**
 * The original Orchestra's clients (and `--param key=value`) send every
 * parameter as a string. A top-level string whose property is declared
 * `integer`, `number` or `boolean` (and not `string`) is converted when it
 * is exactly such a value (`"95"`, `"-1.5"`, `"true"`); anything else is
 * left for the schema to refuse. Nothing else is ever converted.
 */
const coerceStrings = (schema: Json.JsonObject, params: Record<string, unknown>): void => {
  const properties = schema["properties"]
  if (!isPlainObject(properties)) return
  for (const [key, value] of Object.entries(params)) {
    if (typeof value !== "string") continue
    const types = scalarTypes(properties[key])
    if (types.length === 0 || types.includes("string")) continue
    if (types.includes("boolean") && (value === "true" || value === "false")) params[key] = value === "true"
    else if (types.includes("integer") && /^-?(0|[1-9]\d*)$/.test(value)) params[key] = Number(value)
    else if (types.includes("number") && /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(value)) params[key] = Number(value)
  }
}

/**
 * Compile a parameters schema (`undefined`: the original's flat string map).
 * A schema that is not a valid, compilable JSON Schema gives every problem,
 * each with a path like `parameters.properties.threshold.type`. Compiled
 * validators are cached by schema and interface.
 */
export const compile = (
  schema: Json.JsonObject | undefined,
  options?: CompileOptions
): Either.Either<ParamsValidator, ReadonlyArray<Issue>> => {
  const key = `${options?.interface ?? ""}\u0000${schema === undefined ? "" : JSON.stringify(schema)}`
  const hit = cache.get(key)
  if (hit !== undefined) {
    // refresh recency
    cache.delete(key)
    cache.set(key, hit)
    return hit
  }
  const built = build(schema, options)
  cache.set(key, built)
  if (cache.size > CACHE_LIMIT) {
    const oldest = cache.keys().next()
    if (oldest.done !== true) cache.delete(oldest.value)
  }
  return built
}

/** Compile and validate in one step (compile problems are returned as issues too). */
export const validate = (
  schema: Json.JsonObject | undefined,
  params: unknown,
  options?: CompileOptions
): Either.Either<Json.JsonObject, ReadonlyArray<Issue>> => Either.flatMap(compile(schema, options), (v) => v.validate(params))

/**
 * The environment variables carrying `params` for the `env` and `pipe`
 * interfaces: `ORC_<key>`; strings as they are, numbers and booleans
 * stringified, null as the empty string, arrays and objects as JSON. A key
 * that is not a valid variable name, or a value containing NUL, is an issue.
 */
export const toEnvironment = (params: Json.JsonObject): Either.Either<Record<string, string>, ReadonlyArray<Issue>> => {
  const env: Record<string, string> = {}
  const issues: Array<Issue> = []
  for (const [key, value] of Object.entries(params)) {
    if (!isEnvName(key)) {
      issues.push({ path: joinPath("params", [key]), message: `parameter name ${JSON.stringify(key)} is not a valid environment variable name` })
      continue
    }
    const text =
      typeof value === "string"
        ? value
        : typeof value === "number" || typeof value === "boolean"
          ? String(value)
          : value === null
            ? ""
            : JSON.stringify(value)
    if (text.includes("\u0000")) {
      issues.push({ path: joinPath("params", [key]), message: "must not contain a NUL character" })
      continue
    }
    env[`${ENV_PREFIX}${key}`] = text
  }
  return issues.length > 0 ? Either.left(issues) : Either.right(env)
}
