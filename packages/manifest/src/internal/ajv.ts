/**
 * Shared ajv set-up: the validator instances, a small set of formats (ajv
 * ships none), and the translation of ajv errors into readable issues.
 *
 * @internal
 */
import { Ajv } from "ajv"
import type { ErrorObject, Options } from "ajv"
import * as net from "node:net"

/** Formats known to parameter schemas; an unknown format is a schema error. */
const formats: Record<string, RegExp | ((s: string) => boolean)> = {
  date: /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/,
  time: /^([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(z|[+-]([01]\d|2[0-3]):?[0-5]\d)?$/i,
  "date-time": (s) =>
    /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[t\s]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(z|[+-]([01]\d|2[0-3]):?[0-5]\d)$/i.test(s) &&
    !Number.isNaN(Date.parse(s)),
  email: /^[^\s@]+@[^\s@]+\.[^\s@]+$/,
  hostname: /^(?=.{1,253}\.?$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[-0-9a-z]{0,61}[0-9a-z])?)*\.?$/i,
  ipv4: (s) => net.isIPv4(s),
  ipv6: (s) => net.isIPv6(s),
  uri: (s) => {
    if (!/^[a-z][a-z0-9+.-]*:/i.test(s)) return false
    try {
      new URL(s)
      return true
    } catch {
      return false
    }
  },
  uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
  regex: (s) => {
    try {
      new RegExp(s, "u")
      return true
    } catch {
      return false
    }
  }
}

const baseOptions: Options = {
  allErrors: true,
  verbose: true,
  strict: true,
  strictTypes: false,
  strictTuples: false,
  strictRequired: false,
  allowUnionTypes: true,
  logger: false,
  addUsedSchema: false,
  formats
}

/** An ajv instance for parameter schemas: applies defaults, refuses unknown keywords and formats. */
export const makeParamsAjv = (): Ajv => new Ajv({ ...baseOptions, useDefaults: true })

/** An ajv instance for the manifest format itself (no defaults applied). */
export const makeFormatAjv = (): Ajv => new Ajv({ ...baseOptions, strict: false })

/** Decode a JSON pointer (`/a/b~1c`) into segments. */
export const pointerSegments = (pointer: string): Array<string> =>
  pointer === "" ? [] : pointer.slice(1).split("/").map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))

const show = (v: unknown): string => {
  const s = JSON.stringify(v)
  if (s === undefined) return String(v)
  return s.length > 60 ? `${s.slice(0, 57)}...` : s
}

const isScalar = (v: unknown): boolean => v === null || ["string", "number", "boolean"].includes(typeof v)

/** One ajv error, translated: where (segments below the validated value) and what. */
export interface Located {
  readonly segments: ReadonlyArray<string>
  readonly message: string
}

/** The message of one error, without the value (`got …`). */
const describe = (e: ErrorObject, unknownWord: string): string => {
  switch (e.keyword) {
    case "required":
      return "is required"
    case "dependencies":
    case "dependentRequired":
      return `is required when ${show(e.params["property"])} is present`
    case "additionalProperties":
    case "unevaluatedProperties":
      return `unknown ${unknownWord} ${show(String(e.params["additionalProperty"] ?? e.params["unevaluatedProperty"]))}`
    case "enum":
      return `must be one of ${(e.params["allowedValues"] as ReadonlyArray<unknown>).map(show).join(", ")}`
    case "const":
      return `must be ${show(e.params["allowedValue"])}`
    case "pattern":
      return e.propertyName !== undefined
        ? `invalid name ${show(e.propertyName)}: must match pattern "${String(e.params["pattern"])}"`
        : `must match pattern "${String(e.params["pattern"])}"`
    case "not":
    case "false schema":
      return "is not allowed"
    default:
      return e.message ?? "is invalid"
  }
}

/** Where an error points: the property it names, for errors about a property. */
const segmentsOf = (e: ErrorObject): Array<string> => {
  const segments = pointerSegments(e.instancePath)
  switch (e.keyword) {
    case "required":
    case "dependencies":
    case "dependentRequired":
      return [...segments, String(e.params["missingProperty"])]
    case "additionalProperties":
    case "unevaluatedProperties":
      return [...segments, String(e.params["additionalProperty"] ?? e.params["unevaluatedProperty"])]
    case "pattern":
      return e.propertyName !== undefined ? [...segments, e.propertyName] : segments
    default:
      return segments
  }
}

const parentPath = (schemaPath: string): string => schemaPath.slice(0, schemaPath.lastIndexOf("/"))

/**
 * Turn ajv errors into located messages. Wrappers whose causes are listed
 * anyway (`propertyNames`, `if`) are dropped; the branches of a failed
 * `oneOf`/`anyOf` (the errors ajv reports just before it, including those
 * reached through a `$ref`) are folded into one message.
 *
 * `unknownWord` names what an additional property is (`parameter`, `key`).
 */
export const translate = (errors: ReadonlyArray<ErrorObject>, unknownWord: string): Array<Located> => {
  const branchOf = new Map<number, number>() // error index -> index of the oneOf/anyOf it belongs to
  errors.forEach((e, n) => {
    if (e.keyword !== "oneOf" && e.keyword !== "anyOf") return
    const parent = parentPath(e.schemaPath)
    for (let m = n - 1; m >= 0; m--) {
      const b = errors[m]!
      if (branchOf.has(m)) continue
      const below = b.instancePath === e.instancePath || b.instancePath.startsWith(`${e.instancePath}/`)
      const sibling = b.schemaPath.startsWith(`${parent}/`) && !b.schemaPath.startsWith(`${e.schemaPath}/`)
      if (!below || sibling) break
      branchOf.set(m, n)
    }
  })
  const out: Array<Located> = []
  const seen = new Set<string>()
  errors.forEach((e, n) => {
    if (branchOf.has(n)) return
    if (e.keyword === "propertyNames" || e.keyword === "if") return
    const got = isScalar(e.data) && e.propertyName === undefined && !["required", "additionalProperties", "propertyNames", "dependencies", "dependentRequired"].includes(e.keyword)
      ? ` (got ${show(e.data)})`
      : ""
    let message: string
    if ((e.keyword === "oneOf" || e.keyword === "anyOf") && e.params["passingSchemas"] == null) {
      const own = errors.filter((_, m) => branchOf.get(m) === n && errors[m]!.instancePath === e.instancePath)
      // a branch of the right type failing for a finer reason says more than "must be <other type>"
      const specific = own.filter((b) => b.keyword !== "type")
      const branches = (specific.length > 0 ? specific : own).map((b) => describe(b, unknownWord))
      const unique = [...new Set(branches)]
      message = unique.length > 0 ? unique.join(", or ") : describe(e, unknownWord)
    } else {
      message = describe(e, unknownWord)
    }
    const located = { segments: segmentsOf(e), message: `${message}${got}` }
    const key = `${located.segments.join("\u0000")}\u0001${located.message}`
    if (seen.has(key)) return
    seen.add(key)
    out.push(located)
  })
  return out
}

/**
 * Find where in `schema` an ajv compile error points: an unknown keyword, a
 * `#/json/pointer` in the message, or an unresolvable `$ref`.
 */
export const locateCompileError = (schema: unknown, message: string): Array<string> => {
  const at = /at path "#([^"]*)"/.exec(message)
  if (at !== null) return pointerSegments(at[1]!)
  const keyword = /unknown keyword: "([^"]+)"/.exec(message)
  if (keyword !== null) return findKey(schema, (k) => k === keyword[1]) ?? []
  const ref = /can't resolve reference (\S+)/.exec(message)
  if (ref !== null) return findKey(schema, (k, v) => k === "$ref" && v === ref[1]) ?? []
  return []
}

const findKey = (
  node: unknown,
  match: (key: string, value: unknown) => boolean,
  path: Array<string> = [],
  depth = 0
): Array<string> | undefined => {
  if (depth > 64 || typeof node !== "object" || node === null) return undefined
  const entries = Array.isArray(node) ? node.map((v, i) => [String(i), v] as const) : Object.entries(node)
  for (const [k, v] of entries) {
    if (!Array.isArray(node) && match(k, v)) return [...path, k]
  }
  for (const [k, v] of entries) {
    const found = findKey(v, match, [...path, k], depth + 1)
    if (found !== undefined) return found
  }
  return undefined
}
