/**
 * The little type reasoning pipelines need over JSON Schemas: which JSON
 * types a (sub)schema admits, walking `properties`/`items` down a path, and
 * whether a produced type fits an accepted one.
 *
 * @internal
 */
import type { Json } from "@orchestra/core"

export type JsonType = "string" | "number" | "integer" | "boolean" | "object" | "array" | "null"

/** The JSON types a value may have; `undefined` when a schema does not say (anything goes). */
export type Types = ReadonlySet<JsonType> | undefined

const ALL_TYPES: ReadonlyArray<JsonType> = ["string", "number", "integer", "boolean", "object", "array", "null"]

export const isObject = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

/** The JSON type of a value (`integer` for a whole number). */
export const typeOfValue = (v: unknown): JsonType => {
  if (v === null) return "null"
  if (Array.isArray(v)) return "array"
  switch (typeof v) {
    case "string":
      return "string"
    case "boolean":
      return "boolean"
    case "number":
      return Number.isInteger(v) ? "integer" : "number"
    default:
      return "object"
  }
}

const union = (sets: ReadonlyArray<Types>): Types => {
  const out = new Set<JsonType>()
  for (const s of sets) {
    if (s === undefined) return undefined
    for (const t of s) out.add(t)
  }
  return out
}

/**
 * The types a schema admits, from `type`, else `const`/`enum`, else the
 * branches of `anyOf`/`oneOf` (when every branch says). `undefined`: the
 * schema does not constrain the type (or says it in a way not followed
 * here, such as `$ref`).
 */
export const typesOf = (schema: unknown, depth = 0): Types => {
  if (depth > 32 || !isObject(schema)) return undefined
  const type = schema["type"]
  if (typeof type === "string" && (ALL_TYPES as ReadonlyArray<string>).includes(type)) return new Set([type as JsonType])
  if (Array.isArray(type)) {
    const ts = type.filter((t): t is JsonType => typeof t === "string" && (ALL_TYPES as ReadonlyArray<string>).includes(t))
    return ts.length > 0 ? new Set(ts) : undefined
  }
  if ("const" in schema) return new Set([typeOfValue(schema["const"])])
  const en = schema["enum"]
  if (Array.isArray(en) && en.length > 0) return new Set(en.map(typeOfValue))
  for (const k of ["anyOf", "oneOf"]) {
    const branches = schema[k]
    if (Array.isArray(branches) && branches.length > 0) return union(branches.map((b) => typesOf(b, depth + 1)))
  }
  return undefined
}

/** Whether every type produced is accepted (an `integer` is a `number`; unknown on either side fits). */
export const fits = (produced: Types, accepted: Types): boolean => {
  if (produced === undefined || accepted === undefined) return true
  for (const t of produced) {
    if (accepted.has(t)) continue
    if (t === "integer" && accepted.has("number")) continue
    return false
  }
  return true
}

/** "a string", "an integer or a number", "any value". */
export const describeTypes = (types: Types): string => {
  if (types === undefined) return "any value"
  const words = [...types].map((t) => (t === "integer" || t === "array" || t === "object" ? `an ${t}` : t === "null" ? "null" : `a ${t}`))
  return words.length <= 1 ? (words[0] ?? "nothing") : `${words.slice(0, -1).join(", ")} or ${words[words.length - 1]}`
}

/** A value of one of these types, to stand for a template's value while checking the rest of the params. */
export const representative = (types: Types): Json.Json => {
  const first = types === undefined ? "string" : [...types][0] ?? "string"
  switch (first) {
    case "string":
      return ""
    case "number":
    case "integer":
      return 0
    case "boolean":
      return false
    case "null":
      return null
    case "array":
      return []
    case "object":
      return {}
  }
}

/** Where walking a schema down a path got to. */
export type Walk =
  | { readonly _tag: "Found"; readonly schema: unknown }
  /** The schema does not say what is there (no `properties`, a `$ref`, ...). */
  | { readonly _tag: "Unknown" }
  /** `segment` at `index` is not among the declared `properties`. */
  | { readonly _tag: "Missing"; readonly index: number; readonly declared: ReadonlyArray<string> }
  /** The value at `index` is declared with types that have no keys. */
  | { readonly _tag: "NotObject"; readonly index: number; readonly types: Types }

/**
 * Walk a schema down `path` (object keys through `properties`, array
 * indexes through `items`). For the first `strictUpTo` segments, a key not
 * in `properties` is `Missing` (it must be declared); below, only when the
 * object also says `additionalProperties: false`.
 */
export const walk = (schema: unknown, path: ReadonlyArray<string | number>, strictUpTo: number): Walk => {
  let node: unknown = schema
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!
    const strict = i < strictUpTo
    if (!isObject(node)) return { _tag: "Unknown" }
    const types = typesOf(node)
    if (typeof seg === "number" || /^(0|[1-9]\d*)$/.test(seg)) {
      const items = node["items"]
      if (isObject(items)) {
        node = items
        continue
      }
      if (typeof seg === "number") return { _tag: "Unknown" }
    }
    if (types !== undefined && !types.has("object")) return { _tag: "NotObject", index: i, types }
    const props = node["properties"]
    if (isObject(props) && Object.prototype.hasOwnProperty.call(props, seg)) {
      node = props[String(seg)]
      continue
    }
    if (isObject(props) && (strict || node["additionalProperties"] === false)) {
      return { _tag: "Missing", index: i, declared: Object.keys(props) }
    }
    if (!isObject(props) && strict) return { _tag: "Missing", index: i, declared: [] }
    const additional = node["additionalProperties"]
    if (isObject(additional)) {
      node = additional
      continue
    }
    return { _tag: "Unknown" }
  }
  return { _tag: "Found", schema: node }
}

/** JSON with object keys sorted, to compare values. */
export const canonical = (v: unknown): string => {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`
  if (isObject(v)) {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(",")}}`
  }
  return JSON.stringify(v) ?? "null"
}
