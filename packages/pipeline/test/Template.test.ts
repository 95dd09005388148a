/**
 * Templates: the reference forms, whole-string vs interpolated values,
 * syntax errors, resolution.
 */
import { describe, expect, it } from "@effect/vitest"
import type { Json } from "@orchestra/core"
import { Either } from "effect"
import { Template } from "../src/index.js"

const ref = (s: string) => Either.map(Template.parseExpr(s), (e) => e.ref)

describe("Template", () => {
  it("parses every reference form", () => {
    expect(ref(" params.ref ")).toEqual(Either.right({ _tag: "Param", path: ["ref"] }))
    expect(ref("params.config.level")).toEqual(Either.right({ _tag: "Param", path: ["config", "level"] }))
    expect(ref("jobs.build.output.version")).toEqual(Either.right({ _tag: "Output", job: "build", key: ["version"] }))
    expect(ref("jobs.build.players.violin.response.version")).toEqual(
      Either.right({ _tag: "Response", job: "build", player: "violin", key: ["version"] })
    )
    expect(ref('jobs.deploy.players["web1.example.com"].response.host')).toEqual(
      Either.right({ _tag: "Response", job: "deploy", player: "web1.example.com", key: ["host"] })
    )
    expect(ref("jobs.canary.state")).toEqual(Either.right({ _tag: "State", job: "canary" }))
  })

  it("refuses what is not a reference, saying what is expected", () => {
    expect(ref("")).toEqual(Either.left(expect.stringMatching(/^empty template: expected params.<name>/)))
    expect(ref("env.HOME")).toEqual(Either.left(expect.stringMatching(/^"env.HOME": unknown reference/)))
    expect(ref("params")).toEqual(Either.left('"params": name a param (params.<name>)'))
    expect(ref("jobs.build.output")).toEqual(Either.left('"jobs.build.output": name a key (jobs.build.output.<key>)'))
    expect(ref("jobs.build.state.x")).toEqual(Either.left('"jobs.build.state.x": jobs.<job>.state has no keys'))
    expect(ref("jobs.build.players.violin.version")).toEqual(
      Either.left('"jobs.build.players.violin.version": expected jobs.build.players.<player>.response.<key>')
    )
    expect(ref("params.a..b")).toEqual(Either.left(expect.stringMatching(/unexpected "\."/)))
    expect(ref("params.a b")).toEqual(Either.left(expect.stringMatching(/unexpected " "/)))
    expect(ref('jobs.x.players["y].response.k')).toEqual(Either.left(expect.stringMatching(/^unclosed/)))
  })

  it("a whole-string template keeps its value's type; others interpolate", () => {
    const parsed = Template.parse({
      n: "${{ params.n }}",
      s: "n=${{ params.n }}, o=${{ params.o }}, z=${{ params.z }}",
      nested: [{ x: "${{params.o}}" }, "plain"],
      lit: { a: [1, "b"] }
    })
    expect(parsed.problems).toEqual([])
    const values: Record<string, Json.Json> = { n: 3, o: { k: [1, "x"] }, z: null }
    const out = Template.resolve(parsed.value, (r) => (r._tag === "Param" ? Either.right(values[r.path[0]!]!) : Either.left("no")))
    expect(out).toEqual(Either.right({
      n: 3,
      s: 'n=3, o={"k":[1,"x"]}, z=null',
      nested: [{ x: { k: [1, "x"] } }, "plain"],
      lit: { a: [1, "b"] }
    }))
    expect(Template.occurrences(parsed.value).map((o) => [o.path, o.whole, Template.render(o.expr.ref)])).toEqual([
      [["n"], true, "params.n"],
      [["s"], false, "params.n"],
      [["s"], false, "params.o"],
      [["s"], false, "params.z"],
      [["nested", 0, "x"], true, "params.o"]
    ])
  })

  it("locates syntax problems and resolution failures", () => {
    const parsed = Template.parse({ a: ["ok", "${{ params.x"], b: "${{ nope }}" })
    expect(parsed.problems).toEqual([
      { path: ["a", 1], message: 'unclosed "${{" (expected "}}")' },
      { path: ["b"], message: expect.stringMatching(/^"nope": unknown reference/) }
    ])
    const v = Template.parse({ deep: { k: "${{ jobs.a.output.v }}" } }).value
    expect(Template.resolve(v, () => Either.left("job \"a\" has not finished"))).toEqual(
      Either.left({ path: ["deep", "k"], message: '${{ jobs.a.output.v }}: job "a" has not finished' })
    )
  })

  it("renders references, quoting names that need it", () => {
    expect(Template.render({ _tag: "Response", job: "d", player: "web1.example.com", key: ["a", "b"] })).toBe(
      'jobs.d.players["web1.example.com"].response.a.b'
    )
  })
})
