import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import type { Json } from "@orchestra/core"
import { Params } from "../src/index.js"

const right = <A, E>(r: Either.Either<A, E>): A => {
  if (Either.isLeft(r)) throw new Error(`expected success, got ${JSON.stringify(r.left)}`)
  return r.right
}
const left = <A, E>(r: Either.Either<A, E>): E => {
  if (Either.isRight(r)) throw new Error(`expected failure, got ${JSON.stringify(r.right)}`)
  return r.left
}

const diskUsage: Json.JsonObject = {
  type: "object",
  required: ["path"],
  additionalProperties: false,
  properties: {
    path: { type: "string", pattern: "^/" },
    threshold: { type: "integer", minimum: 1, maximum: 100, default: 90 },
    mode: { enum: ["fast", "safe"] },
    when: { type: "string", format: "date" },
    id: { oneOf: [{ type: "string" }, { type: "integer" }] },
    tags: { type: "array", items: { type: "string" } },
    nested: {
      type: "object",
      additionalProperties: false,
      properties: { depth: { type: "integer", default: 3 } }
    }
  }
}

describe("Params.compile / validate", () => {
  it("applies defaults to a copy and leaves the input alone", () => {
    const v = right(Params.compile(diskUsage, { interface: "pipe" }))
    const input = { path: "/var", nested: {} }
    const out = right(v.validate(input))
    expect(out).toEqual({ path: "/var", threshold: 90, nested: { depth: 3 } })
    expect(input).toEqual({ path: "/var", nested: {} })
    expect(v.schema).toBe(diskUsage)
    expect(v.interface).toBe("pipe")
  })

  it("lists every violation with a readable message", () => {
    const v = right(Params.compile(diskUsage))
    const issues = left(
      v.validate({ threshold: 150, foo: 1, bar: "x", mode: "turbo", when: "2024-13-01", id: 1.5, tags: ["a", 2], nested: { depth: "deep" } })
    )
    const byPath = Object.fromEntries(issues.map((i) => [i.path, i.message]))
    expect(byPath).toEqual({
      "params.path": "is required",
      "params.foo": 'unknown parameter "foo"',
      "params.bar": 'unknown parameter "bar"',
      "params.threshold": "must be <= 100 (got 150)",
      "params.mode": 'must be one of "fast", "safe" (got "turbo")',
      "params.when": 'must match format "date" (got "2024-13-01")',
      "params.id": "must be string, or must be integer (got 1.5)",
      "params.tags.1": "must be string (got 2)",
      "params.nested.depth": 'must be integer (got "deep")'
    })
    expect(issues).toHaveLength(9)
  })

  it("reports minimum, pattern and type violations", () => {
    const v = right(Params.compile(diskUsage))
    expect(left(v.validate({ path: "relative", threshold: 0 }))).toEqual([
      { path: "params.path", message: 'must match pattern "^/" (got "relative")' },
      { path: "params.threshold", message: "must be >= 1 (got 0)" }
    ])
    expect(left(v.validate({ path: 3 }))).toEqual([{ path: "params.path", message: "must be string (got 3)" }])
  })

  it("refuses params that are not an object", () => {
    const v = right(Params.compile(diskUsage))
    expect(left(v.validate([1]))).toEqual([{ path: "params", message: "must be an object (got an array)" }])
    expect(left(v.validate(null))[0]!.message).toMatch(/got null/)
    expect(left(v.validate("x"))[0]!.message).toMatch(/got string/)
    const flat = right(Params.compile(undefined))
    expect(left(flat.validate(undefined))[0]!.path).toBe("params")
  })

  it("without a schema: a flat map of strings, numbers and booleans", () => {
    const v = right(Params.compile(undefined))
    expect(right(v.validate({ a: "x", b: 2, c: true }))).toEqual({ a: "x", b: 2, c: true })
    const issues = left(v.validate({ a: "x", d: { x: 1 }, e: [1], f: null }))
    expect(issues.map((i) => i.path)).toEqual(["params.d", "params.e", "params.f"])
    expect(issues[0]!.message).toMatch(/string, number or boolean .*got an object/)
    expect(issues[1]!.message).toMatch(/got an array/)
    expect(issues[2]!.message).toMatch(/got null/)
    expect(right(v.validate({}))).toEqual({})
  })

  it("env and pipe interfaces need environment-variable names and no NUL", () => {
    const flat = right(Params.compile(undefined, { interface: "env" }))
    const issues = left(flat.validate({ good_1: "x", "bad-name": "y", "9lives": "z", nul: "a\u0000b" }))
    expect(issues.map((i) => i.path)).toEqual(["params.bad-name", "params.9lives", "params.nul"])
    expect(issues[0]!.message).toMatch(/cannot be passed as an environment variable \(interface env\)/)
    expect(issues[2]!.message).toMatch(/NUL/)
    // json takes any key
    const json = right(Params.compile(undefined, { interface: "json" }))
    expect(right(json.validate({ "bad-name": "y" }))).toEqual({ "bad-name": "y" })
    // with a schema allowing any key, the name check still applies for pipe
    const open = right(Params.compile({ type: "object" }, { interface: "pipe" }))
    expect(left(open.validate({ "a.b": 1 })).map((i) => i.path)).toEqual(["params.a.b"])
  })

  it("a schema declaring a non-env property name does not compile for env/pipe", () => {
    const schema = { type: "object", properties: { "dashed-name": { type: "string" } } }
    const issues = left(Params.compile(schema, { interface: "env" }))
    expect(issues).toHaveLength(1)
    expect(issues[0]!.path).toBe("parameters.properties.dashed-name")
    expect(Either.isRight(Params.compile(schema, { interface: "json" }))).toBe(true)
  })

  it("refuses broken schemas with located problems", () => {
    const bad = left(Params.compile({ type: "array", properties: { x: { type: "strin" } } }))
    expect(bad.map((i) => i.path)).toEqual(["parameters.properties.x.type", "parameters.type"])
    expect(bad[0]!.message).toMatch(/must be one of "array", .* \(got "strin"\)/)
    expect(bad[1]!.message).toBe('must be "object" (got "array")')

    const keyword = left(Params.compile({ type: "object", properties: { n: { type: "integer", minimun: 1 } } }))
    expect(keyword).toEqual([
      { path: "parameters.properties.n.minimun", message: 'invalid schema: strict mode: unknown keyword: "minimun"' }
    ])
    const format = left(Params.compile({ properties: { e: { type: "string", format: "no-such-format" } } }))
    expect(format[0]!.path).toBe("parameters.properties.e")
    expect(format[0]!.message).toMatch(/unknown format "no-such-format"/)
    const ref = left(Params.compile({ properties: { e: { $ref: "#/definitions/missing" } } }))
    expect(ref[0]!.path).toBe("parameters.properties.e.$ref")
    const remote = left(Params.compile({ properties: { e: { $ref: "http://example.com/s.json" } } }))
    expect(remote[0]!.message).toMatch(/resolve reference/)
  })

  it("knows common formats", () => {
    const v = right(
      Params.compile({
        type: "object",
        properties: {
          d: { type: "string", format: "date-time" },
          h: { type: "string", format: "hostname" },
          i: { type: "string", format: "ipv4" },
          u: { type: "string", format: "uri" },
          m: { type: "string", format: "email" }
        }
      })
    )
    expect(Either.isRight(v.validate({ d: "2024-01-02T03:04:05Z", h: "db-1.example.org", i: "10.0.0.1", u: "https://x.y/z", m: "a@b.c" }))).toBe(true)
    expect(left(v.validate({ d: "yesterday", h: "-bad-", i: "10.0.0.256", u: "nope", m: "nobody" }))).toHaveLength(5)
  })

  it("$id in schemas does not clash across compiles, and compiled validators are cached", () => {
    const a = { $id: "https://x/p.json", type: "object", properties: { a: { type: "string" } } }
    const b = { $id: "https://x/p.json", type: "object", properties: { b: { type: "string" } } }
    const va = right(Params.compile(a))
    const vb = right(Params.compile(b))
    expect(Either.isLeft(va.validate({ a: 1 }))).toBe(true)
    expect(Either.isLeft(vb.validate({ b: 1 }))).toBe(true)
    // same schema (even a different object) and interface: the same validator
    expect(right(Params.compile(JSON.parse(JSON.stringify(a))))).toBe(va)
    expect(right(Params.compile(a, { interface: "env" }))).not.toBe(va)
  })

  it("local $refs and recursion keep working in cached validators", () => {
    const schema = {
      type: "object",
      definitions: { node: { type: "object", properties: { name: { type: "string" }, children: { type: "array", items: { $ref: "#/definitions/node" } } } } },
      properties: { tree: { $ref: "#/definitions/node" } }
    }
    const v = right(Params.compile(schema))
    expect(Either.isRight(v.validate({ tree: { name: "a", children: [{ name: "b", children: [] }] } }))).toBe(true)
    expect(left(v.validate({ tree: { name: "a", children: [{ name: 2 }] } }))).toEqual([
      { path: "params.tree.children.0.name", message: "must be string (got 2)" }
    ])
    // compiling many distinct schemas works and keeps each one right
    for (let i = 0; i < 50; i++) {
      const vi = right(Params.compile({ type: "object", properties: { n: { type: "integer", maximum: i } } }))
      expect(Either.isRight(vi.validate({ n: i }))).toBe(true)
      expect(Either.isLeft(vi.validate({ n: i + 1 }))).toBe(true)
    }
  })

  it("validate() compiles and validates in one step", () => {
    expect(right(Params.validate(diskUsage, { path: "/" }))).toEqual({ path: "/", threshold: 90 })
    expect(left(Params.validate({ type: "strnig" }, {}))[0]!.path).toBe("parameters.type")
  })
})

describe("Params.toEnvironment", () => {
  it("makes ORC_<key> variables", () => {
    const env = right(
      Params.toEnvironment({ s: "text with spaces", n: 42, f: 1.5, t: true, z: null, arr: [1, "a"], obj: { k: "v" }, empty: "" })
    )
    expect(env).toEqual({
      ORC_s: "text with spaces",
      ORC_n: "42",
      ORC_f: "1.5",
      ORC_t: "true",
      ORC_z: "",
      ORC_arr: '[1,"a"]',
      ORC_obj: '{"k":"v"}',
      ORC_empty: ""
    })
  })

  it("refuses invalid names and NUL", () => {
    const issues = left(Params.toEnvironment({ ok: "1", "a-b": "x", "": "y", nul: "a\u0000" }))
    expect(issues.map((i) => i.path)).toEqual(["params.a-b", "params.", "params.nul"])
    expect(Params.isEnvName("_x1")).toBe(true)
    expect(Params.isEnvName("1x")).toBe(false)
  })
})

describe("string parameters, as the original's clients send them", () => {
  const schema = {
    type: "object",
    additionalProperties: false,
    properties: {
      threshold: { type: "integer", maximum: 100 },
      ratio: { type: "number" },
      verbose: { type: "boolean" },
      name: { type: "string" },
      either: { type: ["string", "integer"] }
    }
  } as const
  it("become the declared scalar type when they are exactly such a value", () => {
    const r = Params.validate(schema, { threshold: "95", ratio: "-1.5e2", verbose: "false", name: "42", either: "7" })
    expect(r).toEqual(Either.right({ threshold: 95, ratio: -150, verbose: false, name: "42", either: "7" }))
  })
  it("are refused when they are not, and still checked against the schema", () => {
    const r = Params.validate(schema, { threshold: "9 5", verbose: "yes", ratio: "0x10" })
    expect(Either.isLeft(r)).toBe(true)
    const paths = Either.isLeft(r) ? r.left.map((i) => i.path).sort() : []
    expect(paths).toEqual(["params.ratio", "params.threshold", "params.verbose"])
    const over = Params.validate(schema, { threshold: "101" })
    expect(Either.isLeft(over) && over.left[0]?.message).toContain("must be <= 100")
  })
  it("numbers are never turned into strings", () => {
    const r = Params.validate(schema, { name: 42 })
    expect(Either.isLeft(r)).toBe(true)
  })
})
