/**
 * Pipeline documents: the samples parse and validate against the sample
 * catalog; every class of error is reported with its exact file:line and
 * message, all of them at once.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { beforeAll, describe, expect, it } from "@effect/vitest"
import type { Catalog } from "@orchestra/core"
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Pipeline } from "../src/index.js"
import { registry, sampleCatalog, samplePipelines, yaml } from "./helpers.js"

let catalog: ReadonlyArray<Catalog.ScoreInfo>
beforeAll(async () => {
  catalog = await sampleCatalog()
})

const context = () => ({ catalog, policies: registry.names("policy") })

const issuesOf = (text: string, ctx: Pipeline.CheckContext | undefined = context()) => {
  const r = ctx === undefined ? Pipeline.parse(text, "p.yaml") : Pipeline.validate(text, "p.yaml", ctx)
  if (Either.isRight(r)) throw new Error("expected the pipeline to be refused")
  expect(r.left._tag).toBe("PipelineError")
  expect(r.left.file).toBe("p.yaml")
  return r.left.issues
}

/** A valid base: build (pipe) → deploy (json). Lines as numbered in comments. */
const base = (deployParams = '{ version: "${{ jobs.build.output.version }}" }', extra: ReadonlyArray<string> = []) =>
  yaml(
    "name: t", // 1
    "params:", // 2
    "  type: object", // 3
    "  properties:", // 4
    "    ref: { type: string }", // 5
    "    count: { type: integer }", // 6
    "jobs:", // 7
    "  build:", // 8
    "    score: build", // 9
    "    players: [violin, viola]", // 10
    "    policy: one-of", // 11
    '    params: { ref: "${{ params.ref }}" }', // 12
    "  deploy:", // 13
    "    needs: [build]", // 14
    "    score: deploy", // 15
    "    players: [viola]", // 16
    "    policy: all-of", // 17
    `    params: ${deployParams}`, // 18
    ...extra // 19…
  )

describe("the sample pipelines", () => {
  it("release.yaml validates against the sample catalog and the built-in policies", () => {
    const file = path.join(samplePipelines, "release.yaml")
    const r = Pipeline.validate(fs.readFileSync(file, "utf8"), file, { catalog, policies: registry.policies })
    if (Either.isLeft(r)) throw new Error(r.left.message)
    const p = r.right
    expect(p.name).toBe("release")
    expect(p.levels).toEqual([["build"], ["canary"], ["rollout"]])
    expect(p.jobs.map((j) => [j.name, j.needs, j.level])).toEqual([["build", [], 0], ["canary", ["build"], 1], ["rollout", ["canary"], 2]])
    expect(p.byName.get("rollout")?.policy).toEqual({ name: "rolling", options: { batch: 1 } })
    expect(p.byName.get("build")?.policy).toEqual({ name: "one-of", options: {} })
    expect(p.byName.get("build")?.deadlineMs).toBe(600_000)
  })

  it("release-stages.yaml: stages are sugar over needs", () => {
    const file = path.join(samplePipelines, "release-stages.yaml")
    const r = Pipeline.validate(fs.readFileSync(file, "utf8"), file, context())
    if (Either.isLeft(r)) throw new Error(r.left.message)
    const byName = r.right.byName
    expect(r.right.levels).toEqual([["build"], ["canary", "usage"], ["rollout", "report"]])
    expect(byName.get("canary")?.needs).toEqual(["build"])
    expect(byName.get("rollout")?.needs).toEqual(["canary", "usage"])
    expect(byName.get("report")?.when).toEqual(["OK", "PARTIAL_FAIL", "FAIL", "CANCELLED"])
    expect(byName.get("report")?.stage).toBe(2)
  })

  it.effect("loadFile reads and checks a file; a missing file is an error naming it", () =>
    Effect.gen(function*() {
      const p = yield* Pipeline.loadFile(path.join(samplePipelines, "release.yaml"), context())
      expect(p.jobs.length).toBe(3)
      const missing = yield* Effect.flip(Pipeline.loadFile(path.join(samplePipelines, "nope.yaml")))
      expect(missing.issues[0]?.message).toBe("cannot read: file not found")
    }).pipe(Effect.provide(NodeFileSystem.layer)))
})

describe("validation errors, with file:line", () => {
  it("the base document is valid (so each variant below fails for its own reason)", () => {
    expect(Either.isRight(Pipeline.validate(base(), "p.yaml", context()))).toBe(true)
  })

  it("an output the producing score does not declare", () => {
    expect(issuesOf(base('{ version: "${{ jobs.build.output.versoin }}" }'))).toEqual([{
      path: "p.yaml:18: jobs.deploy.params.version",
      message: '${{ jobs.build.output.versoin }}: score "build" (job "build") declares no output "versoin" (declared: ref, version, artifact)'
    }])
  })

  it("a string output into an integer parameter (pipe outputs are strings)", () => {
    expect(issuesOf(base('{ version: "1.2.3", batch: "${{ jobs.build.output.version }}" }'))).toEqual([{
      path: "p.yaml:18: jobs.deploy.params.batch",
      message:
        '${{ jobs.build.output.version }} is a string (score "build" (job "build") has interface pipe: its outputs are strings), but parameter batch of score "deploy" must be an integer'
    }])
  })

  it("an integer param into an integer parameter keeps its type; into a string parameter it does not fit", () => {
    expect(Either.isRight(Pipeline.validate(base('{ version: "1.2.3", batch: "${{ params.count }}" }'), "p.yaml", context()))).toBe(true)
    expect(issuesOf(base('{ version: "${{ params.count }}" }'))).toEqual([{
      path: "p.yaml:18: jobs.deploy.params.version",
      message: "${{ params.count }} is an integer (declared in the pipeline's params), but parameter version of score \"deploy\" must be a string"
    }])
  })

  it("an interpolated string is a string", () => {
    expect(issuesOf(base('{ version: "1.2.3", batch: "1${{ params.count }}" }'))).toEqual([{
      path: "p.yaml:18: jobs.deploy.params.batch",
      message:
        'a string with ${{ params.count }} inside is a string (templates inside a longer string are interpolated), but parameter batch of score "deploy" must be an integer'
    }])
  })

  it("literals are checked by the consumer's schema; patterns at a template's place are left to run time", () => {
    // "1.2" breaks deploy's version pattern; "x" is not an integer; "colour" is not a parameter
    expect(issuesOf(base('{ version: "1.2", batch: "x", colour: "${{ params.ref }}" }'))).toEqual([
      { path: "p.yaml:18: jobs.deploy.params.colour", message: 'unknown parameter "colour"' },
      { path: "p.yaml:18: jobs.deploy.params.version", message: 'must match pattern "^[0-9]+\\.[0-9]+\\.[0-9]+$" (got "1.2")' },
      { path: "p.yaml:18: jobs.deploy.params.batch", message: 'must be integer (got "x")' }
    ])
    // a required parameter left out
    expect(issuesOf(base("{ batch: 1 }"))).toEqual([{ path: "p.yaml:18: jobs.deploy.params.version", message: "is required" }])
  })

  it("a cycle in needs, named", () => {
    const text = yaml(
      "name: t", // 1
      "jobs:", // 2
      "  a:", // 3
      "    needs: [c]", // 4
      "    score: noop", // 5
      "    players: [violin]", // 6
      "    policy: one-of", // 7
      "  b:", // 8
      "    needs: [a]", // 9
      "    score: noop", // 10
      "    players: [violin]", // 11
      "    policy: one-of", // 12
      "  c:", // 13
      "    needs: [b]", // 14
      "    score: noop", // 15
      "    players: [violin]", // 16
      "    policy: one-of", // 17
      "  d:", // 18
      "    needs: [d]", // 19
      "    score: noop", // 20
      "    players: [violin]", // 21
      "    policy: one-of" // 22
    )
    expect(issuesOf(text, undefined)).toEqual([
      { path: "p.yaml:4: jobs.a.needs.0", message: "cycle in needs: a → c → b → a" },
      { path: "p.yaml:19: jobs.d.needs.0", message: "cycle in needs: d → d" }
    ])
  })

  it("an unknown job in needs", () => {
    expect(issuesOf(base(undefined, ["    # end"]).replace("needs: [build]", "needs: [biuld]"), undefined)).toEqual([
      { path: "p.yaml:14: jobs.deploy.needs.0", message: 'unknown job "biuld" (jobs: build, deploy)' },
      {
        path: "p.yaml:18: jobs.deploy.params.version",
        message:
          '${{ jobs.build.output.version }}: job "build" is not among the needs of "deploy" (directly or through other jobs), so it may not have run: add it to `needs`'
      }
    ])
  })

  it("an unknown score, an unknown policy, bad policy options", () => {
    const text = base().replace("score: build", "score: biuld").replace("policy: all-of", "policy: { name: rolling, options: { batch: 0 } }")
    const issues = issuesOf(text.replace("policy: one-of", "policy: one-off"), { catalog, policies: registry.policies })
    expect(issues.map((i) => i.path)).toEqual([
      "p.yaml:9: jobs.build.score",
      "p.yaml:11: jobs.build.policy",
      "p.yaml:17: jobs.deploy.policy.options"
    ])
    expect(issues[0]?.message).toBe(
      'unknown score "biuld" (known: build, deploy, disk-usage, echo, fail, legacy-hello, noop, sleep)'
    )
    expect(issues[1]?.message).toBe('unknown policy "one-off"')
    expect(issues[2]?.message).toMatch(/^invalid options for policy "rolling": /)
    // with a list of names, the known ones are listed
    expect(issuesOf(text.replace("policy: one-of", "policy: one-off"))[1]).toEqual({
      path: "p.yaml:11: jobs.build.policy",
      message: 'unknown policy "one-off" (known: all-of, one-of, rolling, stages)'
    })
  })

  it("unknown references: a job not declared, a param not declared, a bad accessor", () => {
    expect(issuesOf(base('{ version: "${{ jobs.biuld.output.version }}", batch: "${{ params.cuont }}" }'), undefined)).toEqual([
      { path: "p.yaml:18: jobs.deploy.params.version", message: '${{ jobs.biuld.output.version }}: unknown job "biuld" (jobs: build, deploy)' },
      { path: "p.yaml:18: jobs.deploy.params.batch", message: '${{ params.cuont }}: the pipeline declares no param "cuont" (declared: ref, count)' }
    ])
    expect(issuesOf(base('{ version: "${{ jobs.build.outputs.version }}" }'), undefined)).toEqual([{
      path: "p.yaml:18: jobs.deploy.params.version",
      message: '"jobs.build.outputs.version": expected jobs.build.output.<key>, jobs.build.players.<player>.response.<key> or jobs.build.state'
    }])
    expect(issuesOf(base('{ version: "${{ jobs.build.output.version" }'), undefined)).toEqual([{
      path: "p.yaml:18: jobs.deploy.params.version",
      message: 'unclosed "${{" (expected "}}")'
    }])
  })

  it("a reference to a job that is not an ancestor, to itself, to a player the job does not target", () => {
    const text = base('{ version: "${{ jobs.build.players.cello.response.version }}" }', [
      "  other:", // 19
      "    score: deploy", // 20
      "    players: [cello]", // 21
      "    policy: all-of", // 22
      '    params: { version: "${{ jobs.deploy.output.deployed }}", batch: "${{ jobs.other.output.batch }}" }' // 23
    ])
    expect(issuesOf(text)).toEqual([
      {
        path: "p.yaml:18: jobs.deploy.params.version",
        message: '${{ jobs.build.players.cello.response.version }}: player "cello" is not a target of job "build" (players: violin, viola)'
      },
      {
        path: "p.yaml:23: jobs.other.params.version",
        message:
          '${{ jobs.deploy.output.deployed }}: job "deploy" is not among the needs of "other" (directly or through other jobs), so it may not have run: add it to `needs`'
      },
      { path: "p.yaml:23: jobs.other.params.batch", message: '${{ jobs.other.output.batch }}: job "other" cannot refer to itself' }
    ])
  })

  it("an ancestor through needs may be referred to; its json outputs keep their types", () => {
    const text = base('{ version: "${{ jobs.build.output.version }}" }', [
      "  after:", // 19
      "    needs: [deploy]", // 20
      "    score: deploy", // 21
      "    players: [cello]", // 22
      "    policy: all-of", // 23
      '    params: { version: "${{ jobs.build.output.version }}", batch: "${{ jobs.deploy.players.viola.response.batch }}" }' // 24
    ])
    expect(Either.isRight(Pipeline.validate(text, "p.yaml", context()))).toBe(true)
    // deploy's `host` output is a string: not an integer
    expect(issuesOf(text.replace("response.batch", "response.host"))).toEqual([{
      path: "p.yaml:24: jobs.after.params.batch",
      message:
        '${{ jobs.deploy.players.viola.response.host }} is a string (declared in the outputs of score "deploy" (job "deploy")), but parameter batch of score "deploy" must be an integer'
    }])
  })

  it("responses of env scores and of scores without outputs", () => {
    const text = base('{ version: "${{ jobs.build.output.version }}" }', [
      "  after:", // 19
      "    needs: [deploy]", // 20
      "    score: echo", // 21
      "    players: [cello]", // 22
      "    policy: one-of", // 23
      '    params: { message: "${{ jobs.deploy.output.host }}" }', // 24
      "  last:", // 25
      "    needs: [after, fail]", // 26
      "    score: echo", // 27
      "    players: [cello]", // 28
      "    policy: one-of", // 29
      '    params: { message: "${{ jobs.fail.output.code }}" }', // 30
      "  fail:", // 31
      "    score: fail", // 32
      "    players: [cello]", // 33
      "    policy: one-of" // 34
    ])
    expect(Either.isRight(Pipeline.validate(text, "p.yaml", context()))).toBe(false)
    expect(issuesOf(text)).toEqual([{
      path: "p.yaml:30: jobs.last.params.message",
      message: '${{ jobs.fail.output.code }}: score "fail" (job "fail") has interface env: it reports no response'
    }])
    const noOutputs = catalog.map((s) => (s.name === "build" ? { ...s, outputs: undefined } as Catalog.ScoreInfo : s))
    expect(issuesOf(base(), { catalog: noOutputs, policies: registry.names("policy") })).toEqual([{
      path: "p.yaml:18: jobs.deploy.params.version",
      message: '${{ jobs.build.output.version }}: score "build" (job "build") declares no outputs: declare "version" under `outputs` in its manifest'
    }])
  })

  it("bad YAML, with its line", () => {
    expect(issuesOf(yaml("name: t", "jobs:", "  a: [1, 2", "  b: 3"), undefined)).toEqual([
      { path: "p.yaml:4", message: expect.stringMatching(/^YAML syntax: .* \(column \d+\)$/) }
    ])
  })

  it("format errors: unknown keys, wrong types, missing fields, all at once with lines", () => {
    const text = yaml(
      "name: t", // 1
      "jobs:", // 2
      "  a:", // 3
      "    score: noop", // 4
      "    players: violin", // 5
      "    policy: one-of", // 6
      "    retries: 3", // 7
      "  b:", // 8
      "    players: [violin]", // 9
      "    policy: one-of", // 10
      "    when: [MAYBE]" // 11
    )
    expect(issuesOf(text, undefined)).toEqual([
      { path: "p.yaml:5: jobs.a.players", message: 'Expected ReadonlyArray<PlayerName>, actual "violin"' },
      { path: "p.yaml:7: jobs.a.retries", message: 'unknown key "retries"' },
      { path: "p.yaml:8: jobs.b.score", message: "is required" },
      { path: "p.yaml:11: jobs.b.when.0", message: 'Expected "OK" | "PARTIAL_FAIL" | "FAIL" | "CANCELLED", actual "MAYBE"' }
    ])
  })

  it("structure: names, targets, when without needs, jobs and stages together, an invalid params schema", () => {
    const text = yaml(
      "name: t t", // 1
      "params: { type: object, properties: { n: { type: integr } } }", // 2
      "jobs:", // 3
      "  1st:", // 4
      "    score: noop", // 5
      "    policy: one-of", // 6
      "    when: [OK]", // 7
      "stages:", // 8
      "  - x: { score: noop, players: [violin], policy: one-of }" // 9
    )
    const issues = issuesOf(text, undefined)
    expect(issues.map((i) => [i.path, i.message.slice(0, 40)])).toEqual([
      ["p.yaml:1: name", 'must be 1-128 letters, digits, "_", "." '],
      ["p.yaml:2: params.properties.n.type", expect.any(String)],
      ["p.yaml:4: jobs.1st", 'invalid job name "1st": use 1-64 letters'],
      ["p.yaml:4: jobs.1st", "the job targets no player: name `players"],
      ["p.yaml:7: jobs.1st.when", "`when` says which states of the needs le"],
      ["p.yaml:8: stages", "write either `jobs` or `stages`, not bot"]
    ])
  })

  it("stages: a job name used twice", () => {
    const text = yaml(
      "name: t", // 1
      "stages:", // 2
      "  - a: { score: noop, players: [violin], policy: one-of }", // 3
      "  - a: { score: noop, players: [violin], policy: one-of }" // 4
    )
    expect(issuesOf(text, undefined)).toEqual([{ path: "p.yaml:4: stages.1.a", message: 'job "a" is already declared (stages.0.a)' }])
  })

  it("a catalog given as a lookup function", () => {
    const byName = new Map(catalog.map((s) => [s.name as string, s]))
    const r = Pipeline.validate(base(), "p.yaml", { catalog: (name) => byName.get(name), policies: registry.policies })
    expect(Either.isRight(r)).toBe(true)
    expect(issuesOf(base().replace("score: build", "score: nope"), { catalog: (name) => byName.get(name), policies: registry.policies }))
      .toEqual([{ path: "p.yaml:9: jobs.build.score", message: 'unknown score "nope"' }])
  })

  it("an incomplete catalog: a score nobody reported is not an error, but a known score's checks still apply", () => {
    const byName = new Map(catalog.map((s) => [s.name as string, s]))
    const context = { catalog: (name: string) => byName.get(name), catalogIncomplete: true, policies: registry.policies }
    expect(Either.isRight(Pipeline.validate(base().replace("score: build", "score: nope"), "p.yaml", context))).toBe(true)
    // an unknown policy is an error whatever the catalog
    expect(issuesOf(base().replace("policy: one-of", "policy: nosuch"), context).map((i) => i.path)).toEqual(["p.yaml:11: jobs.build.policy"])
  })
})
