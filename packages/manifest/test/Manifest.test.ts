import { NodeFileSystem } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Ajv } from "ajv"
import { Effect, Either, Schema } from "effect"
import { Catalog } from "@orchestra/core"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Manifest } from "../src/index.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const fixtures = path.join(here, "fixtures", "broken")
const manifestsDir = path.resolve(here, "../../../manifests")

const right = <A, E>(r: Either.Either<A, E>): A => {
  if (Either.isLeft(r)) throw new Error(`expected success, got ${String((r.left as { message?: string }).message ?? JSON.stringify(r.left))}`)
  return r.right
}
const left = <A, E>(r: Either.Either<A, E>): E => {
  if (Either.isRight(r)) throw new Error(`expected failure, got ${JSON.stringify(r.right)}`)
  return r.left
}

const full = `# yaml-language-server: $schema=score-manifest.schema.json
name: disk-usage
description: Report usage of one filesystem
interface: pipe
idempotent: true
parameters:
  type: object
  required: [path]
  additionalProperties: false
  properties:
    path: { type: string, pattern: "^/" }
    threshold: { type: integer, minimum: 1, maximum: 100, default: 90 }
outputs:
  type: object
  properties: { used_percent: { type: string } }
environment:
  path: /usr/bin:/bin
  workdir: /tmp
  user: nobody
  variables: { LANG: C.UTF-8, TZ: UTC }
  timeout: 30s
  maxOutputBytes: 64KiB
`

describe("Manifest.parse", () => {
  it("decodes every field", () => {
    const m = right(Manifest.parse(full, "scores/disk-usage.yaml"))
    expect(m).toBeInstanceOf(Manifest.ScoreManifest)
    expect(m.name).toBe("disk-usage")
    expect(m.description).toBe("Report usage of one filesystem")
    expect(m.interface).toBe("pipe")
    expect(m.idempotent).toBe(true)
    expect(m.parameters).toEqual({
      type: "object",
      required: ["path"],
      additionalProperties: false,
      properties: {
        path: { type: "string", pattern: "^/" },
        threshold: { type: "integer", minimum: 1, maximum: 100, default: 90 }
      }
    })
    expect(m.outputs).toEqual({ type: "object", properties: { used_percent: { type: "string" } } })
    expect(m.environment).toBeInstanceOf(Manifest.ScoreEnvironment)
    expect({ ...m.environment }).toEqual({
      path: "/usr/bin:/bin",
      workdir: "/tmp",
      user: "nobody",
      variables: { LANG: "C.UTF-8", TZ: "UTC" },
      timeoutMs: 30_000,
      maxOutputBytes: 65536
    })
  })

  it("applies defaults", () => {
    const m = right(Manifest.parse("interface: json\n", "d/s.yaml"))
    expect(m.name).toBe("s")
    expect(m.interface).toBe("json")
    expect(m.idempotent).toBe(false)
    expect(m.description).toBeUndefined()
    expect(m.parameters).toBeUndefined()
    expect(m.outputs).toBeUndefined()
    expect({ ...m.environment }).toEqual({ path: "/usr/local/bin:/usr/bin:/bin", variables: {}, maxOutputBytes: 1024 * 1024 })
    expect(m.environment.timeoutMs).toBeUndefined()
    // no interface: env, as the original
    expect(right(Manifest.parse("description: x\n", "d/s.yml")).interface).toBe("env")
    // an empty manifest is all defaults
    expect(right(Manifest.parse("# nothing yet\n", "d/s.yaml")).interface).toBe("env")
  })

  it("accepts timeouts and sizes as numbers", () => {
    const m = right(Manifest.parse("environment: { timeout: 1.5, maxOutputBytes: 1000 }\n", "d/s.yaml"))
    expect(m.environment.timeoutMs).toBe(1500)
    expect(m.environment.maxOutputBytes).toBe(1000)
    const units = right(Manifest.parse("environment: { timeout: 250ms, maxOutputBytes: 2MiB }\n", "d/s.yaml"))
    expect(units.environment.timeoutMs).toBe(250)
    expect(units.environment.maxOutputBytes).toBe(2 * 1024 * 1024)
    expect(right(Manifest.parse("environment: { timeout: 1h }\n", "d/s.yaml")).environment.timeoutMs).toBe(3_600_000)
  })

  it("takes the score name from options over the file name", () => {
    expect(right(Manifest.parse("name: real\n", "elsewhere/other.yaml", { scoreName: "real" })).name).toBe("real")
    const e = left(Manifest.parse("name: real\n", "elsewhere/other.yaml"))
    expect(e.issues[0]!.path).toBe("elsewhere/other.yaml:1: name")
  })

  it("refuses an invalid name", () => {
    const e = left(Manifest.parse("name: 'a b'\n", "d/a b.yaml"))
    expect(e.issues.some((i) => i.path === "d/a b.yaml:1: name" && /whitespace/.test(i.message))).toBe(true)
    const slash = left(Manifest.parse("name: 7\n", "d/s.yaml"))
    expect(slash.issues[0]!.path).toBe("d/s.yaml:1: name")
  })

  it("lists several issues sorted by line, each with file:line: field", () => {
    const text = [
      "name: s", // 1
      "interface: pipe", // 2
      "idempotent: maybe", // 3
      "outputs:", // 4
      "  type: object", // 5
      "  properties: { x: { type: nope } }", // 6
      "environment:", // 7
      "  user: ''", // 8
      "  path: 3" // 9
    ].join("\n")
    const e = left(Manifest.parse(text, "d/s.yaml"))
    expect(e._tag).toBe("ManifestError")
    expect(e.file).toBe("d/s.yaml")
    expect(e.issues.map((i) => i.path)).toEqual([
      "d/s.yaml:3: idempotent",
      "d/s.yaml:6: outputs.properties.x.type",
      "d/s.yaml:8: environment.user",
      "d/s.yaml:9: environment.path"
    ])
    expect(e.issues[0]!.message).toBe('must be boolean (got "maybe")')
    expect(e.message.split("\n")[0]).toBe("invalid manifest (4 issues):")
    expect(e.message).toContain('d/s.yaml:3: idempotent: must be boolean (got "maybe")')
  })

  it("a non-mapping manifest is an error at its first line", () => {
    const e = left(Manifest.parse("\n- a\n- b\n", "d/s.yaml"))
    expect(e.issues).toEqual([{ path: "d/s.yaml:2", message: "must be object" }])
  })

  it("parameters must be an object schema and compile", () => {
    const notObject = left(Manifest.parse("parameters: 3\n", "d/s.yaml"))
    expect(notObject.issues[0]!.path).toBe("d/s.yaml:1: parameters")
    const arrayType = left(Manifest.parse("parameters:\n  type: array\n", "d/s.yaml"))
    expect(arrayType.issues).toEqual([{ path: "d/s.yaml:2: parameters.type", message: 'must be "object" (got "array")' }])
  })

  it("toScoreInfo carries what a player reports", () => {
    const m = right(Manifest.parse(full, "scores/disk-usage.yaml"))
    const info = Manifest.toScoreInfo(m, { digest: "abc", source: "manifest" })
    expect(info).toBeInstanceOf(Catalog.ScoreInfo)
    expect(info).toMatchObject({ name: "disk-usage", interface: "pipe", idempotent: true, digest: "abc", source: "manifest" })
    expect(info.parameters).toEqual(m.parameters)
    // it encodes for the wire
    expect(Schema.encodeSync(Catalog.ScoreInfo)(info).name).toBe("disk-usage")
  })

  it("none() is the manifest of a score without one", () => {
    const m = Manifest.none(Manifest.ScoreManifest.fields.name.make("plain"))
    expect(m.interface).toBe("env")
    expect(m.parameters).toBeUndefined()
    expect(m.environment.path).toBe(Manifest.DEFAULT_PATH)
  })
})

describe("broken fixtures give precise errors", () => {
  const cases: ReadonlyArray<readonly [file: string, line: number, field: string, message: RegExp]> = [
    ["bad-syntax.yaml", 6, "", /YAML syntax: .*indentation/],
    ["unknown-key.yaml", 4, "colour", /unknown key "colour"/],
    ["unknown-key.yaml", 7, "environment.retries", /unknown key "retries"/],
    ["bad-interface.yaml", 3, "interface", /must be one of "env", "pipe", "json" \(got "socket"\)/],
    ["bad-params.yaml", 7, "parameters.properties.count.type", /got "integr"/],
    ["bad-keyword.yaml", 8, "parameters.properties.count.minimun", /unknown keyword: "minimun"/],
    ["name-mismatch.yaml", 2, "name", /"echo" does not match the score's file name "name-mismatch"/],
    ["bad-env-param.yaml", 7, "parameters.properties.dashed-name", /environment variable/],
    ["bad-environment.yaml", 4, "environment.workdir", /must match pattern "\^\/"/],
    ["bad-environment.yaml", 5, "environment.timeout", /invalid duration "soon"/],
    ["bad-environment.yaml", 6, "environment.maxOutputBytes", /invalid size "1TB"/],
    ["bad-environment.yaml", 9, "environment.variables.NUMBER", /must be string \(got 3\)/],
    ["bad-conf.conf", 3, "timeout", /unknown key "timeout"/]
  ]
  for (const [name, line, field, message] of cases) {
    it.effect(`${name}:${line} ${field}`, () =>
      Effect.gen(function*() {
        const file = path.join(fixtures, name)
        const e = yield* Effect.flip(Manifest.load(file))
        expect(e._tag).toBe("ManifestError")
        expect(e.file).toBe(file)
        const where = field === "" ? `${file}:${line}` : `${file}:${line}: ${field}`
        const issue = e.issues.find((i) => i.path === where)
        expect(issue, `${where} in ${JSON.stringify(e.issues)}`).toBeDefined()
        expect(issue!.message).toMatch(message)
        expect(e.message).toContain(`${where}: `)
      }).pipe(Effect.provide(NodeFileSystem.layer)))
  }

  it.effect("a missing manifest file is a ManifestError naming it", () =>
    Effect.gen(function*() {
      const file = path.join(fixtures, "does-not-exist.yaml")
      const e = yield* Effect.flip(Manifest.load(file))
      expect(e.file).toBe(file)
      expect(e.message).toContain(file)
      expect(e.message).toContain("file not found")
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})

describe("legacy .conf", () => {
  const conf = (text: string) => Manifest.parseLegacyConf(text, "d/s.conf")
  it("accepts the original's forms", () => {
    for (const text of ["interface=pipe", "interface = pipe", "interface pipe", "  interface\tpipe  ", "interface=pipe # trailing comment"]) {
      expect(right(conf(text)).interface, text).toBe("pipe")
    }
    expect(right(conf("interface=env\n")).interface).toBe("env")
    expect(right(conf("interface=json\n")).interface).toBe("json")
  })

  it("ignores comments and blank lines; defaults to env", () => {
    const m = right(conf("# a comment\n\n   # indented comment\n\ninterface=pipe\n\n"))
    expect(m.interface).toBe("pipe")
    expect(m.name).toBe("s")
    expect(m.parameters).toBeUndefined()
    expect(m.environment.path).toBe(Manifest.DEFAULT_PATH)
    expect(right(conf("# empty\n")).interface).toBe("env")
    expect(right(conf("")).interface).toBe("env")
    expect(right(conf("interface=pipe\r\n")).interface).toBe("pipe")
  })

  it("names the line of every problem", () => {
    const e = left(conf("# c\ninterface=pipes\nuser=root\n\ninterface=env\ninterface\n"))
    expect(e.file).toBe("d/s.conf")
    expect(e.issues.map((i) => i.path)).toEqual([
      "d/s.conf:2: interface",
      "d/s.conf:3: user",
      "d/s.conf:5: interface",
      "d/s.conf:6: interface"
    ])
    expect(e.issues[0]!.message).toMatch(/got "pipes"/)
    expect(e.issues[1]!.message).toMatch(/unknown key "user"/)
    expect(e.issues[2]!.message).toMatch(/repeated key "interface" \(first on line 2\)/)
    const empty = left(conf("interface=\n"))
    expect(empty.issues[0]!.message).toMatch(/missing value/)
  })

  it.effect("load() picks the legacy reader for .conf files", () =>
    Effect.gen(function*() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchestra-conf-"))
      const file = path.join(dir, "hello.conf")
      fs.writeFileSync(file, "interface env\n")
      const m = yield* Manifest.load(file)
      expect(m.name).toBe("hello")
      expect(m.interface).toBe("env")
      fs.rmSync(dir, { recursive: true, force: true })
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})

describe("the published format", () => {
  const schemaFile = path.join(manifestsDir, "score-manifest.schema.json")

  it("is a valid draft-07 schema that plain ajv (as editors) accepts", () => {
    const schema = JSON.parse(fs.readFileSync(schemaFile, "utf8"))
    const ajv = new Ajv({ allErrors: true })
    expect(ajv.validateSchema(schema)).toBe(true)
    const validate = ajv.compile(schema)
    expect(validate({ name: "x", interface: "pipe", environment: { timeout: "30s", maxOutputBytes: "1MiB" } })).toBe(true)
    expect(validate({ interface: "socket" })).toBe(false)
    expect(validate({ colour: "red" })).toBe(false)
    expect(validate({ environment: { timeout: "30" } })).toBe(false)
  })

  it("is the schema the loader uses", () => {
    expect(Manifest.formatSchemaLocations[0]).toBe(schemaFile)
    expect(right(Manifest.formatSchema())).toEqual(JSON.parse(fs.readFileSync(schemaFile, "utf8")))
  })

  it("every manifest under manifests/ loads", () => {
    const files = fs.readdirSync(manifestsDir).filter((f) => f.endsWith(".yaml"))
    expect(files.length).toBeGreaterThanOrEqual(7)
    for (const f of files) {
      const m = right(Manifest.parse(fs.readFileSync(path.join(manifestsDir, f), "utf8"), path.join(manifestsDir, f)))
      expect(m.name).toBe(f.replace(/\.yaml$/, ""))
    }
  })
})
