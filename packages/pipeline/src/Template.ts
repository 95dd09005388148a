/**
 * Templates in pipeline job params: `${{ <reference> }}` inside strings.
 *
 * References:
 *
 * - `params.X` (and `params.X.Y` into an object param): the pipeline's own
 *   params, as given to the run (validated, defaults applied);
 * - `jobs.J.players.P.response.K`: the response of player `P` in job `J`
 *   (its latest finished attempt, whatever its outcome);
 * - `jobs.J.output.K`: the aggregate output of job `J` — the value of `K`
 *   reported by the players of `J` that ended `OK`: with `one-of` that is
 *   the one player that ran it; with any other policy every `OK` player must
 *   have reported the same value, else the reference is a run-time error
 *   naming the job, the key and the values;
 * - `jobs.J.state`: the finished state of job `J` (`OK`, `PARTIAL_FAIL`,
 *   `FAIL`, `CANCELLED`).
 *
 * A key `K` may go deeper into a JSON response (`response.K.sub`). Path
 * segments are `[A-Za-z0-9_-]+`, or quoted in brackets for other names:
 * `jobs.deploy.players["web1.example.com"].response.host`.
 *
 * A string that is exactly one template keeps the type of the value it
 * refers to (`"${{ params.count }}"` stays an integer). Templates inside a
 * longer string are interpolated: strings as they are, numbers and
 * booleans as text, `null` as `null`, objects and arrays as JSON. There is
 * no escape: a literal `${{` cannot appear in params.
 *
 * @since 0.1.0
 */
import { Either } from "effect"
import type { Json } from "@orchestra/core"

/** What a template refers to. */
export type Ref =
  | { readonly _tag: "Param"; readonly path: ReadonlyArray<string> }
  | { readonly _tag: "Output"; readonly job: string; readonly key: ReadonlyArray<string> }
  | { readonly _tag: "Response"; readonly job: string; readonly player: string; readonly key: ReadonlyArray<string> }
  | { readonly _tag: "State"; readonly job: string }

/** One `${{ … }}`: its reference and its text as written (between the braces, trimmed). */
export interface Expr {
  readonly ref: Ref
  readonly source: string
}

/** A params value with its templates parsed. Values without templates are `Literal`. */
export type Value =
  | { readonly _tag: "Literal"; readonly value: Json.Json }
  | { readonly _tag: "Whole"; readonly expr: Expr }
  | { readonly _tag: "Interpolated"; readonly parts: ReadonlyArray<string | Expr> }
  | { readonly _tag: "Object"; readonly entries: ReadonlyArray<readonly [string, Value]> }
  | { readonly _tag: "Array"; readonly items: ReadonlyArray<Value> }

/** A path below the params object: keys and array indexes. */
export type Path = ReadonlyArray<string | number>

/** A problem at a path below the params object. */
export interface Problem {
  readonly path: Path
  readonly message: string
}

const OPEN = "${{"
const CLOSE = "}}"

/** Whether a string contains a template opening. */
export const hasTemplate = (s: string): boolean => s.includes(OPEN)

const SEGMENT = /^[A-Za-z0-9_-]+/

/** Split `a.b["c.d"].e` into segments. */
const segmentsOf = (source: string): Either.Either<ReadonlyArray<string>, string> => {
  const out: Array<string> = []
  let rest = source
  let first = true
  while (rest.length > 0) {
    if (rest.startsWith("[")) {
      const quote = rest[1]
      if (quote !== "\"" && quote !== "'") return Either.left(`expected a quoted name after "[" in ${JSON.stringify(source)}`)
      const end = rest.indexOf(quote, 2)
      if (end < 0 || rest[end + 1] !== "]") return Either.left(`unclosed [${quote}…${quote}] in ${JSON.stringify(source)}`)
      const name = rest.slice(2, end)
      if (name.length === 0) return Either.left(`empty name in ${JSON.stringify(source)}`)
      out.push(name)
      rest = rest.slice(end + 2)
    } else {
      if (!first) {
        if (!rest.startsWith(".")) return Either.left(`unexpected ${JSON.stringify(rest[0])} in ${JSON.stringify(source)}`)
        rest = rest.slice(1)
        if (rest.startsWith("[")) return Either.left(`unexpected "." before "[" in ${JSON.stringify(source)}`)
      }
      const m = SEGMENT.exec(rest)
      if (m === null) {
        return Either.left(
          rest.length === 0
            ? `${JSON.stringify(source)} ends with "."`
            : `unexpected ${JSON.stringify(rest[0])} in ${JSON.stringify(source)} (names are letters, digits, "_" and "-"; quote others: ["name"])`
        )
      }
      out.push(m[0])
      rest = rest.slice(m[0].length)
    }
    first = false
  }
  return Either.right(out)
}

const FORMS =
  "params.<name>, jobs.<job>.output.<key>, jobs.<job>.players.<player>.response.<key> or jobs.<job>.state"

/** Parse the text between `${{` and `}}`. */
export const parseExpr = (text: string): Either.Either<Expr, string> => {
  const source = text.trim()
  if (source.length === 0) return Either.left(`empty template: expected ${FORMS}`)
  return Either.flatMap(segmentsOf(source), (segs): Either.Either<Expr, string> => {
    const [root, ...rest] = segs
    if (root === "params") {
      if (rest.length === 0) return Either.left(`"${source}": name a param (params.<name>)`)
      return Either.right({ source, ref: { _tag: "Param", path: rest } })
    }
    if (root === "jobs") {
      const [job, accessor, ...more] = rest
      if (job === undefined) return Either.left(`"${source}": name a job (jobs.<job>.…)`)
      switch (accessor) {
        case "state":
          if (more.length > 0) return Either.left(`"${source}": jobs.<job>.state has no keys`)
          return Either.right({ source, ref: { _tag: "State", job } })
        case "output":
          if (more.length === 0) return Either.left(`"${source}": name a key (jobs.${job}.output.<key>)`)
          return Either.right({ source, ref: { _tag: "Output", job, key: more } })
        case "players": {
          const [player, response, ...key] = more
          if (player === undefined || response !== "response" || key.length === 0) {
            return Either.left(`"${source}": expected jobs.${job}.players.<player>.response.<key>`)
          }
          return Either.right({ source, ref: { _tag: "Response", job, player, key } })
        }
        default:
          return Either.left(
            `"${source}": expected jobs.${job}.output.<key>, jobs.${job}.players.<player>.response.<key> or jobs.${job}.state`
          )
      }
    }
    return Either.left(`"${source}": unknown reference (expected ${FORMS})`)
  })
}

/** Parse one string: a literal, one whole template, or an interpolation. */
export const parseString = (s: string): Either.Either<Value, string> => {
  if (!hasTemplate(s)) return Either.right({ _tag: "Literal", value: s })
  const parts: Array<string | Expr> = []
  let i = 0
  while (i < s.length) {
    const open = s.indexOf(OPEN, i)
    if (open < 0) {
      parts.push(s.slice(i))
      break
    }
    if (open > i) parts.push(s.slice(i, open))
    const close = s.indexOf(CLOSE, open + OPEN.length)
    if (close < 0) return Either.left(`unclosed "${OPEN}" (expected "${CLOSE}")`)
    const expr = parseExpr(s.slice(open + OPEN.length, close))
    if (Either.isLeft(expr)) return Either.left(expr.left)
    parts.push(expr.right)
    i = close + CLOSE.length
  }
  const only = parts[0]
  if (parts.length === 1 && only !== undefined && typeof only !== "string") return Either.right({ _tag: "Whole", expr: only })
  return Either.right({ _tag: "Interpolated", parts })
}

/** Parse every string of a params value; problems are located below it. */
export const parse = (value: Json.Json): { readonly value: Value; readonly problems: ReadonlyArray<Problem> } => {
  const problems: Array<Problem> = []
  const go = (v: Json.Json, path: Array<string | number>): Value => {
    if (typeof v === "string") {
      const parsed = parseString(v)
      if (Either.isLeft(parsed)) {
        problems.push({ path: [...path], message: parsed.left })
        return { _tag: "Literal", value: v }
      }
      return parsed.right
    }
    if (Array.isArray(v)) {
      const items = (v as ReadonlyArray<Json.Json>).map((x, i) => go(x, [...path, i]))
      return items.every((x) => x._tag === "Literal") ? { _tag: "Literal", value: v } : { _tag: "Array", items }
    }
    if (typeof v === "object" && v !== null) {
      const entries = Object.entries(v as Json.JsonObject).map(([k, x]) => [k, go(x, [...path, k])] as const)
      return entries.every(([, x]) => x._tag === "Literal") ? { _tag: "Literal", value: v } : { _tag: "Object", entries }
    }
    return { _tag: "Literal", value: v }
  }
  const parsed = go(value, [])
  return { value: parsed, problems }
}

/** One template occurrence in a value. */
export interface Occurrence {
  readonly path: Path
  readonly expr: Expr
  /** True when the template is the whole string (it keeps its type); false inside a longer string. */
  readonly whole: boolean
}

/** Every template in a value, in document order. */
export const occurrences = (value: Value): ReadonlyArray<Occurrence> => {
  const out: Array<Occurrence> = []
  const go = (v: Value, path: Array<string | number>) => {
    switch (v._tag) {
      case "Literal":
        return
      case "Whole":
        out.push({ path: [...path], expr: v.expr, whole: true })
        return
      case "Interpolated":
        for (const p of v.parts) if (typeof p !== "string") out.push({ path: [...path], expr: p, whole: false })
        return
      case "Object":
        for (const [k, x] of v.entries) go(x, [...path, k])
        return
      case "Array":
        v.items.forEach((x, i) => go(x, [...path, i]))
        return
    }
  }
  go(value, [])
  return out
}

/** The value with every template replaced by `replace(occurrence)`, interpolations by a string. */
export const substitute = (value: Value, replace: (expr: Expr, path: Path) => Json.Json): Json.Json => {
  const go = (v: Value, path: Array<string | number>): Json.Json => {
    switch (v._tag) {
      case "Literal":
        return v.value
      case "Whole":
        return replace(v.expr, path)
      case "Interpolated":
        return v.parts.map((p) => (typeof p === "string" ? p : interpolate(replace(p, path)))).join("")
      case "Object": {
        const out: Record<string, Json.Json> = {}
        for (const [k, x] of v.entries) out[k] = go(x, [...path, k])
        return out
      }
      case "Array":
        return v.items.map((x, i) => go(x, [...path, i]))
    }
  }
  return go(value, [])
}

/** How a value reads inside a longer string: strings as they are, others as JSON. */
export const interpolate = (v: Json.Json): string => (typeof v === "string" ? v : JSON.stringify(v))

/**
 * Resolve every template with `lookup`; the first that fails gives the
 * problem (its path and message, the message prefixed with the template).
 */
export const resolve = (
  value: Value,
  lookup: (ref: Ref) => Either.Either<Json.Json, string>
): Either.Either<Json.Json, Problem> => {
  let failed: Problem | undefined
  const out = substitute(value, (expr, path) => {
    if (failed !== undefined) return null
    const r = lookup(expr.ref)
    if (Either.isLeft(r)) {
      failed = { path, message: `\${{ ${expr.source} }}: ${r.left}` }
      return null
    }
    return r.right
  })
  return failed === undefined ? Either.right(out) : Either.left(failed)
}

/** A reference as text (`jobs.build.output.version`), names quoted where needed. */
export const render = (ref: Ref): string => {
  const seg = (s: string) => (/^[A-Za-z0-9_-]+$/.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`)
  const path = (xs: ReadonlyArray<string>) => xs.map(seg).join("")
  switch (ref._tag) {
    case "Param":
      return `params${path(ref.path)}`
    case "State":
      return `jobs${seg(ref.job)}.state`
    case "Output":
      return `jobs${seg(ref.job)}.output${path(ref.key)}`
    case "Response":
      return `jobs${seg(ref.job)}.players${seg(ref.player)}.response${path(ref.key)}`
  }
}

/** The job a reference reads from, if any. */
export const jobOf = (ref: Ref): string | undefined => (ref._tag === "Param" ? undefined : ref.job)
