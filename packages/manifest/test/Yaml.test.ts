import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Yaml } from "../src/index.js"

const doc = (text: string, file = "t.yaml"): Yaml.YamlDocument => {
  const r = Yaml.parse(text, file)
  if (Either.isLeft(r)) throw new Error(`unexpected YAML error: ${r.left.message}`)
  return r.right
}

const fail = <A, E>(r: Either.Either<A, E>): E => {
  if (Either.isRight(r)) throw new Error(`expected a failure, got ${JSON.stringify(r.right)}`)
  return r.left
}

describe("Yaml.parse", () => {
  it("yields the value with the YAML 1.2 core schema", () => {
    const d = doc("a: yes\nb: 012\nc: 0x1F\nd: ~\ne: 1.5\nf: true\ng: '1'\n<<: x\n")
    expect(d.value).toEqual({ a: "yes", b: 12, c: 31, d: null, e: 1.5, f: true, g: "1", "<<": "x" })
    expect(d.file).toBe("t.yaml")
  })

  it("an empty document is null and has no lines", () => {
    const d = doc("# only a comment\n")
    expect(d.value).toBeNull()
    expect(d.lineOf([])).toBeUndefined()
    expect(d.lineOf(["a"])).toBeUndefined()
  })

  it("a root scalar has line of the scalar", () => {
    const d = doc("\n\nhello\n")
    expect(d.value).toBe("hello")
    expect(d.lineOf([])).toBe(3)
  })

  it("gives lines of nested block mappings (key lines)", () => {
    const text = [
      "# header", // 1
      "name: x", // 2
      "environment:", // 3
      "  path: /bin", // 4
      "  variables:", // 5
      "    LANG: C", // 6
      "", // 7
      "    TZ: UTC", // 8
      "last: 1" // 9
    ].join("\n")
    const d = doc(text)
    expect(d.lineOf([])).toBe(2)
    expect(d.lineOf(["name"])).toBe(2)
    expect(d.lineOf(["environment"])).toBe(3)
    expect(d.lineOf(["environment", "path"])).toBe(4)
    expect(d.lineOf(["environment", "variables"])).toBe(5)
    expect(d.lineOf(["environment", "variables", "LANG"])).toBe(6)
    expect(d.lineOf(["environment", "variables", "TZ"])).toBe(8)
    expect(d.lineOf(["last"])).toBe(9)
    expect(d.has(["environment", "variables", "TZ"])).toBe(true)
    expect(d.has(["environment", "nope"])).toBe(false)
    expect(d.positionOf(["environment", "variables", "TZ"])).toEqual({ line: 8, column: 5 })
  })

  it("falls back to the nearest existing ancestor", () => {
    const d = doc("a:\n  b:\n    c: 1\n")
    expect(d.lineOf(["a", "b", "missing"])).toBe(2)
    expect(d.lineOf(["a", "zzz", "deeper", 3])).toBe(1)
    expect(d.lineOf(["nothing"])).toBe(1)
  })

  it("gives lines of sequence items, block and nested", () => {
    const text = [
      "list:", // 1
      "  - a", // 2
      "  - b: 1", // 3
      "    c: 2", // 4
      "  -", // 5
      "    - nested", // 6
      "    - second", // 7
      "  - last" // 8
    ].join("\n")
    const d = doc(text)
    expect(d.value).toEqual({ list: ["a", { b: 1, c: 2 }, ["nested", "second"], "last"] })
    expect(d.lineOf(["list"])).toBe(1)
    expect(d.lineOf(["list", 0])).toBe(2)
    expect(d.lineOf(["list", 1])).toBe(3)
    expect(d.lineOf(["list", 1, "c"])).toBe(4)
    expect(d.lineOf(["list", 2, 0])).toBe(6)
    expect(d.lineOf(["list", 2, 1])).toBe(7)
    expect(d.lineOf(["list", 3])).toBe(8)
    // numeric segments given as strings (ajv's instancePath) work too
    expect(d.lineOf(["list", "2", "1"])).toBe(7)
    expect(d.lineOf(["list", 9])).toBe(1)
  })

  it("gives lines and columns in flow style", () => {
    const text = [
      "flow: { a: 1, b: [x, y] }", // 1
      "multi: {", // 2
      "  k: v,", // 3
      "  s: [1,", // 4
      "      2]", // 5
      " }" // 6
    ].join("\n")
    const d = doc(text)
    expect(d.value).toEqual({ flow: { a: 1, b: ["x", "y"] }, multi: { k: "v", s: [1, 2] } })
    expect(d.positionOf(["flow", "a"])).toEqual({ line: 1, column: 9 })
    expect(d.positionOf(["flow", "b", 1])).toEqual({ line: 1, column: 22 })
    expect(d.lineOf(["multi", "k"])).toBe(3)
    expect(d.lineOf(["multi", "s", 0])).toBe(4)
    expect(d.lineOf(["multi", "s", 1])).toBe(5)
  })

  it("multi-line strings do not shift the lines of later keys", () => {
    const text = [
      "description: |", // 1
      "  line one", // 2
      "  line two", // 3
      "folded: >", // 4
      "  a", // 5
      "  b", // 6
      "plain: this is", // 7
      "  continued", // 8
      'quoted: "x', // 9
      '  y"', // 10
      "after: 1" // 11
    ].join("\n")
    const d = doc(text)
    expect(d.value).toEqual({
      description: "line one\nline two\n",
      folded: "a b\n",
      plain: "this is continued",
      quoted: "x y",
      after: 1
    })
    expect(d.lineOf(["description"])).toBe(1)
    expect(d.lineOf(["folded"])).toBe(4)
    expect(d.lineOf(["plain"])).toBe(7)
    expect(d.lineOf(["quoted"])).toBe(9)
    expect(d.lineOf(["after"])).toBe(11)
  })

  it("handles quoted keys, keys with dots, anchors, aliases and complex keys", () => {
    const text = [
      '"quoted key": 1', // 1
      "a.b: 2", // 2
      "base: &B", // 3
      "  k: v", // 4
      "copy: *B", // 5
      "tail: 3" // 6
    ].join("\n")
    const d = doc(text)
    expect(d.lineOf(["quoted key"])).toBe(1)
    expect(d.lineOf(["a.b"])).toBe(2)
    expect(d.lineOf(["a", "b"])).toBe(1) // not the key "a.b": falls back to the root
    expect(d.has(["a", "b"])).toBe(false)
    expect(d.lineOf(["base", "k"])).toBe(4)
    expect(d.lineOf(["copy"])).toBe(5)
    expect(d.lineOf(["tail"])).toBe(6)
    expect((d.value as Record<string, unknown>)["copy"]).toEqual({ k: "v" })
  })

  it("reports syntax errors with file, line and column", () => {
    const e = fail(Yaml.parse("a: 1\nb: [1, 2\n", "bad.yaml"))
    expect(e._tag).toBe("YamlError")
    expect(e.file).toBe("bad.yaml")
    expect(e.line).toBe(3)
    expect(e.reason).toMatch(/indentation/)
    expect(e.message).toMatch(/^bad\.yaml:3:\d+: /)

    const indent = fail(Yaml.parse("a:\n  b: 1\n c: 2\n", "i.yaml"))
    expect(indent.line).toBe(3)
    expect(indent.column).toBe(2)
    expect(indent.reason).toMatch(/indentation/)
  })

  it("refuses duplicate keys, unknown aliases, tabs and several documents", () => {
    const dup = fail(Yaml.parse("a: 1\nb: 2\na: 3\n", "d.yaml"))
    expect(dup.line).toBe(3)
    expect(dup.reason).toMatch(/duplicated mapping key/)
    expect(fail(Yaml.parse("a: *nope\n", "d.yaml")).reason).toMatch(/alias/)
    expect(fail(Yaml.parse("? [complex, key]\n: v\n", "d.yaml")).reason).toMatch(/complex keys/)
    expect(fail(Yaml.parse("a: 1\n\tb: 2\n", "d.yaml")).line).toBe(2)
    const multi = fail(Yaml.parse("a: 1\n---\nb: 2\n", "m.yaml"))
    expect(multi.reason).toMatch(/single YAML document, found 2/)
    expect(multi.line).toBe(3)
  })

  it("refuses alias bombs", () => {
    const lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for (let i = 0; i < 12; i++) {
      const prev = String.fromCharCode(97 + i)
      const cur = String.fromCharCode(98 + i)
      lines.push(`${cur}: &${cur} [${Array(10).fill(`*${prev}`).join(", ")}]`)
    }
    expect(fail(Yaml.parse(lines.join("\n"), "bomb.yaml"))._tag).toBe("YamlError")
  })

  it("does not let __proto__ keys change prototypes", () => {
    const d = doc("__proto__: { polluted: 1 }\nb: 2\n")
    const v = d.value as Record<string, unknown>
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype)
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined()
    expect(v["b"]).toBe(2)
  })
})

const Config = Schema.Struct({
  name: Schema.String,
  port: Schema.Number,
  mode: Schema.optional(Schema.Literal("fast", "safe")),
  servers: Schema.optionalWith(
    Schema.Array(Schema.Struct({ host: Schema.String, weight: Schema.optional(Schema.Number) })),
    { default: () => [] }
  )
})

class Klass extends Schema.Class<Klass>("Klass")({
  name: Schema.String,
  inner: Schema.Struct({ x: Schema.Number })
}) {}

describe("Yaml.decode", () => {
  it("decodes a valid document, applying defaults", () => {
    const r = Yaml.decode(Config, "name: n\nport: 8080\n", "c.yaml")
    expect(r).toEqual(Either.right({ name: "n", port: 8080, servers: [] }))
  })

  it("lists every issue as file:line: field: message", () => {
    const text = [
      "name: 1", // 1
      "port: high", // 2
      "mode: turbo", // 3
      "servers:", // 4
      "  - host: a", // 5
      "    wieght: 2", // 6
      "  - { host: 7 }", // 7
      "colour: blue" // 8
    ].join("\n")
    const e = fail(Yaml.decode(Config, text, "conf/c.yaml"))
    expect(e._tag).toBe("ConfigError")
    expect(e.file).toBe("conf/c.yaml")
    const paths = e.issues.map((i) => i.path)
    expect(paths).toEqual([
      "conf/c.yaml:1: name",
      "conf/c.yaml:2: port",
      "conf/c.yaml:3: mode",
      "conf/c.yaml:6: servers.0.wieght",
      "conf/c.yaml:7: servers.1.host",
      "conf/c.yaml:8: colour"
    ])
    expect(e.issues[2]!.message).toBe('Expected "fast" | "safe", actual "turbo"')
    expect(e.issues[3]!.message).toBe('unknown key "wieght"')
    expect(e.issues[5]!.message).toBe('unknown key "colour"')
    const lines = e.message.split("\n")
    expect(lines[0]).toBe("invalid configuration (6 issues):")
    expect(lines).toContain('conf/c.yaml:8: colour: unknown key "colour"')
    expect(lines).toContain("conf/c.yaml:1: name: Expected string, actual 1")
  })

  it("a missing field is located at its parent", () => {
    const e = fail(Yaml.decode(Config, "# c\nname: n\n", "c.yaml"))
    expect(e.issues).toEqual([{ path: "c.yaml:2: port", message: "is required" }])
    const k = fail(Yaml.decode(Klass, "name: n\ninner:\n  y: 1\n", "k.yaml"))
    expect(k.issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
      "k.yaml:2: inner.x: is required",
      'k.yaml:3: inner.y: unknown key "y"'
    ])
  })

  it("decodes Schema.Class values", () => {
    const r = Yaml.decode(Klass, "name: n\ninner: { x: 2 }\n", "k.yaml")
    expect(Either.isRight(r) && r.right instanceof Klass && r.right.inner.x === 2).toBe(true)
  })

  it("an empty file or a non-mapping is one issue at the root", () => {
    const e = fail(Yaml.decode(Config, "", "empty.yaml"))
    expect(e.issues).toHaveLength(1)
    expect(e.issues[0]!.path).toBe("empty.yaml")
    expect(e.issues[0]!.message).toMatch(/actual null/)
    const l = fail(Yaml.decode(Config, "\n- a\n", "l.yaml"))
    expect(l.issues[0]!.path).toBe("l.yaml:2")
  })

  it("a syntax error is a ConfigError at file:line", () => {
    const e = fail(Yaml.decode(Config, "name: n\nport: [\n", "s.yaml"))
    expect(e.issues).toHaveLength(1)
    expect(e.issues[0]!.path).toBe("s.yaml:3")
    expect(e.issues[0]!.message).toMatch(/^YAML syntax: /)
    expect(e.message).toContain("s.yaml:3: YAML syntax")
  })
})

describe("Yaml.loadFile", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchestra-yaml-"))

  it.effect("reads and decodes a file", () =>
    Effect.gen(function*() {
      const file = path.join(dir, "ok.yaml")
      fs.writeFileSync(file, "name: n\nport: 1\n")
      const v = yield* Yaml.loadFile(Config, file)
      expect(v.port).toBe(1)
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("names the file in decode errors", () =>
    Effect.gen(function*() {
      const file = path.join(dir, "bad.yaml")
      fs.writeFileSync(file, "name: n\nport: 1\nextra: 2\n")
      const e = yield* Effect.flip(Yaml.loadFile(Config, file))
      expect(e.file).toBe(file)
      expect(e.issues[0]!.path).toBe(`${file}:3: extra`)
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("a missing file is a ConfigError naming it", () =>
    Effect.gen(function*() {
      const file = path.join(dir, "nope.yaml")
      const e = yield* Effect.flip(Yaml.loadFile(Config, file))
      expect(e._tag).toBe("ConfigError")
      expect(e.file).toBe(file)
      expect(e.message).toContain(file)
      expect(e.message).toContain("file not found")
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})
