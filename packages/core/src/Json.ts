/**
 * JSON values, as carried in parameters and responses.
 *
 * The schemas are declared with a plain recursive check rather than a
 * recursive `Schema.Union`: they sit on the hot path of every protocol
 * message, and the check is a hundred times faster.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }
export type JsonObject = { readonly [key: string]: Json }

/** Nesting deeper than this is refused (no stack overflow on hostile input). */
export const MAX_DEPTH = 64

const isPlainObject = (u: object): boolean => {
  const proto = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}

const check = (u: unknown, depth: number): boolean => {
  switch (typeof u) {
    case "string":
    case "boolean":
      return true
    case "number":
      return Number.isFinite(u)
    case "object": {
      if (u === null) return true
      if (depth >= MAX_DEPTH) return false
      if (Array.isArray(u)) {
        for (let i = 0; i < u.length; i++) if (!check(u[i], depth + 1)) return false
        return true
      }
      if (!isPlainObject(u)) return false
      for (const k in u) {
        if (!check((u as Record<string, unknown>)[k], depth + 1)) return false
      }
      return true
    }
    default:
      return false
  }
}

/** Whether a value is JSON: finite numbers, plain objects and arrays, at most {@link MAX_DEPTH} deep. */
export const isJson = (u: unknown): u is Json => check(u, 0)

/** Whether a value is a JSON object. */
export const isJsonObject = (u: unknown): u is JsonObject =>
  typeof u === "object" && u !== null && !Array.isArray(u) && check(u, 0)

export const Json: Schema.Schema<Json> = Schema.declare(isJson, {
  identifier: "Json",
  description: "a JSON value",
  jsonSchema: {},
  arbitrary: () => (fc) => fc.jsonValue({ maxDepth: 3 }) as unknown as import("effect").FastCheck.Arbitrary<Json>
})

export const JsonObject: Schema.Schema<JsonObject> = Schema.declare(isJsonObject, {
  identifier: "JsonObject",
  description: "a JSON object",
  jsonSchema: { type: "object" },
  arbitrary: () => (fc) =>
    fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 }) as unknown as import("effect").FastCheck.Arbitrary<JsonObject>
})
