/**
 * Plans: each built-in policy's own decisions, simulated with every task
 * OK, as batches of players; a pipeline laid out by level with params
 * resolved where they can be.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import type { Catalog, Policy } from "@orchestra/core"
import { Names } from "@orchestra/core"
import { Either } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Pipeline, Plan } from "../src/index.js"
import { p, registry, sampleCatalog, samplePipelines } from "./helpers.js"

let catalog: ReadonlyArray<Catalog.ScoreInfo>
beforeAll(async () => {
  catalog = await sampleCatalog()
})

const players = ["violin", "viola", "cello", "oboe", "flute"].map(p)
const policy = (name: string): Policy.PolicyPlugin => registry.policies(name)!
/** The players of each batch. */
const batches = (plan: Plan.JobPlan) => plan.batches.map((b) => b.map((t) => t.player))

describe("Plan.ofJob", () => {
  it("one-of: one task, on the first player, the others as fall-backs", () => {
    const plan = Plan.ofJob(policy("one-of"), {}, players.slice(0, 3))
    expect(plan.batches).toEqual([[{ key: "0", player: "violin", candidates: ["violin", "viola", "cello"] }]])
    expect(plan.finished).toEqual({ state: "OK" })
    expect(Plan.renderJob(plan)).toBe("batch 1: violin (else viola, cello)\nends OK")
  })

  it("all-of: everyone at once", () => {
    expect(batches(Plan.ofJob(policy("all-of"), {}, players))).toEqual([players])
  })

  it("rolling: batches of a count or a percentage, in order", () => {
    expect(batches(Plan.ofJob(policy("rolling"), { batch: 2 }, players))).toEqual([["violin", "viola"], ["cello", "oboe"], ["flute"]])
    expect(batches(Plan.ofJob(policy("rolling"), { batch: "40%" }, players))).toEqual([["violin", "viola"], ["cello", "oboe"], ["flute"]])
    expect(batches(Plan.ofJob(policy("rolling"), { batch: 1 }, players.slice(0, 3)))).toEqual([["violin"], ["viola"], ["cello"]])
  })

  it("stages: a canary by label, then the rest rolling, composed through the registry", () => {
    const labels = { viola: { role: "canary" } }
    const plan = Plan.ofJob(
      policy("stages"),
      { stages: [{ selector: { role: "canary" }, policy: { name: "all-of" } }, { policy: { name: "rolling", options: { batch: 2 } } }] },
      players,
      labels,
      { policies: registry.policies }
    )
    expect(batches(plan)).toEqual([["viola"], ["violin", "cello"], ["oboe", "flute"]])
    expect(plan.batches[1]?.map((t) => t.key)).toEqual(["s1:violin", "s1:cello"])
    expect(plan.finished?.state).toBe("OK")
  })

  it("bad options: no batch, the policy's own reason", () => {
    const plan = Plan.ofJob(policy("rolling"), { batch: 0 }, players)
    expect(plan.batches).toEqual([])
    expect(plan.finished?.state).toBe("FAIL")
    expect(plan.finished?.reason).toMatch(/^invalid options for policy "rolling"/)
  })

  it("a policy that never stops planning is cut", () => {
    let n = 0
    const endless: Policy.PolicyPlugin = {
      kind: "policy",
      name: "endless",
      description: "a new task after each",
      decodeOptions: () =>
        Either.right({
          policy: "endless",
          start: () => ({ state: 0 as never, actions: [{ _tag: "Run", key: Names.taskKey(`t${n++}`), players: [p("violin")] }] }),
          onTaskEnded: (s) => ({ state: s, actions: [{ _tag: "Run", key: Names.taskKey(`t${n++}`), players: [p("violin")] }] })
        })
    }
    const plan = Plan.ofJob(endless, {}, [p("violin")])
    expect(plan.truncated).toBe(true)
    expect(plan.batches.length).toBe(Plan.MAX_ROUNDS)
    expect(plan.finished).toBeUndefined()
  })
})

describe("Plan.ofPipeline", () => {
  it("the sample release: levels, params resolved where they can be, each job's batches", () => {
    const file = path.join(samplePipelines, "release.yaml")
    const pipeline = Either.getOrThrow(Pipeline.validate(fs.readFileSync(file, "utf8"), file, { catalog, policies: registry.policies }))
    const plan = Either.getOrThrow(Plan.ofPipeline(pipeline, { ref: "main" }, { policies: registry.policies }))
    expect(plan.levels.map((l) => l.map((j) => [j.name, j.params, batches(j.plan)]))).toEqual([
      [["build", { ref: "main" }, [["violin"]]]],
      [["canary", { version: "<from jobs.build.output.version>" }, [["viola"]]]],
      [["rollout", { version: "<from jobs.canary.players.viola.response.deployed>" }, [["violin"], ["viola"], ["cello"]]]]
    ])
    expect(Plan.renderPipeline(plan)).toBe([
      'pipeline release  params {"ref":"main"}',
      "level 0",
      "  build: score build, policy one-of",
      '    params {"ref":"main"}',
      "    batch 1: violin (else viola, cello)",
      "    ends OK",
      "level 1",
      "  canary: score deploy, policy all-of  needs build",
      '    params {"version":"<from jobs.build.output.version>"}',
      "    batch 1: viola",
      "    ends OK",
      "level 2",
      "  rollout: score deploy, policy rolling  needs canary",
      '    params {"version":"<from jobs.canary.players.viola.response.deployed>"}',
      "    batch 1: violin",
      "    batch 2: viola",
      "    batch 3: cello",
      "    ends OK"
    ].join("\n"))
    // invalid params: the pipeline's error
    const bad = Plan.ofPipeline(pipeline, {}, { policies: registry.policies })
    expect(Either.isLeft(bad) && bad.left.issues[0]?.message).toBe("is required")
  })

  it("selectors are resolved by the caller's resolver", () => {
    const text = [
      "name: t",
      "jobs:",
      "  a: { score: noop, selector: { role: web }, policy: { name: rolling, options: { batch: 2 } } }"
    ].join("\n")
    const pipeline = Either.getOrThrow(Pipeline.parse(text, "t.yaml"))
    const plan = Either.getOrThrow(Plan.ofPipeline(pipeline, {}, {
      policies: registry.policies,
      targets: () => ({ targets: [p("w1"), p("w2"), p("w3")], labels: new Map() })
    }))
    expect(batches(plan.levels[0]![0]!.plan)).toEqual([["w1", "w2"], ["w3"]])
    const unresolved = Either.getOrThrow(Plan.ofPipeline(pipeline, {}, { policies: registry.policies }))
    expect(unresolved.levels[0]![0]!.plan.batches).toEqual([])
  })
})
