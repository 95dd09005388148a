/**
 * The pipeline simulator: runs of a pipeline driven through PipelineRun,
 * each job simulated by core's Simulation with its own policy — dependency
 * order and simulated time, skips after a failure, `when: [FAIL]` handlers,
 * placeholders of the producing score's output types feeding templates,
 * selector pools, seeds, limits — and invariants over 2,000 random
 * configurations.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import type { Catalog, JobState, Outcome } from "@orchestra/core"
import { Outcome as Outcomes, Simulation } from "@orchestra/core"
import { Either } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Pipeline, PipelineSimulation } from "../src/index.js"
import { registry, sampleCatalog, samplePipelines, yaml } from "./helpers.js"

let catalog: ReadonlyArray<Catalog.ScoreInfo>
let release: Pipeline.Pipeline
beforeAll(async () => {
  catalog = await sampleCatalog()
  const file = path.join(samplePipelines, "release.yaml")
  release = Either.getOrThrow(Pipeline.validate(fs.readFileSync(file, "utf8"), file, { catalog, policies: registry.policies }))
})

const load = (text: string): Pipeline.Pipeline => {
  const r = Pipeline.validate(text, "t.yaml", { catalog, policies: registry.policies })
  if (Either.isLeft(r)) throw new Error(r.left.message)
  return r.right
}

const base = (pipeline: Pipeline.Pipeline): PipelineSimulation.Config => ({
  pipeline,
  params: { ref: "main" },
  policies: registry.policies,
  catalog,
  latency: Simulation.fixedLatency(100),
  seed: 1,
  runs: 20
})

const runsOf = (config: PipelineSimulation.Config) => Either.getOrThrow(PipelineSimulation.simulateRuns(config))
const errorOf = (config: PipelineSimulation.Config) => {
  const r = PipelineSimulation.simulate(config)
  if (Either.isRight(r)) throw new Error("expected an error")
  return r.left
}
const job = (run: PipelineSimulation.RunResult, name: string) => run.jobs.find((j) => j.name === name)!
const sum = (xs: Readonly<Record<string, number>>) => Object.values(xs).reduce((a, b) => a + b, 0)

describe("the sample release pipeline (build → canary → rollout)", () => {
  it("every task OK at a fixed 100ms: every run OK, jobs in dependency order, completion = the sum of the jobs' times", () => {
    const { report, runs } = runsOf(base(release))
    expect(report.states).toEqual({ OK: 20, PARTIAL_FAIL: 0, FAIL: 0, CANCELLED: 0, unfinished: 0 })
    // build (one-of: 1 task) 100ms, canary (1 task) 100ms, rollout (rolling batch 1 over 3) 300ms
    expect(report.durationMs).toEqual({ min: 500, mean: 500, p50: 500, p95: 500, max: 500 })
    expect(report.outcomes.OK).toBe(20 * 5)
    expect(report.dispatches).toBe(20 * 5)
    expect(report.jobs.map((j) => [j.name, j.ran, j.skipped, j.failed, j.states.OK, j.dispatches])).toEqual([
      ["build", 20, 0, 0, 20, 20],
      ["canary", 20, 0, 0, 20, 20],
      ["rollout", 20, 0, 0, 20, 60]
    ])
    expect(report.jobs.map((j) => j.durationMs.max)).toEqual([100, 100, 300])
    expect(report.reasons).toEqual([])
    for (const run of runs) {
      expect(run.submitted).toEqual(["build", "canary", "rollout"])
      expect(run.jobs.map((j) => [j.submittedAt, j.finishedAt])).toEqual([[0, 100], [100, 200], [200, 500]])
      expect(run.durationMs).toBe(500)
    }
  })

  it("templates resolve from what the simulated players report: placeholders travel build → canary → rollout", () => {
    const [run] = runsOf({ ...base(release), runs: 1 }).runs
    expect(job(run!, "build").params).toEqual({ ref: "main" })
    // build is a pipe score: its output version is a string
    expect(job(run!, "canary").params).toEqual({ version: "sim:build.version" })
    expect(job(run!, "rollout").params).toEqual({ version: "sim:canary.deployed" })
    expect(job(run!, "rollout").targets).toEqual(["violin", "viola", "cello"])
  })

  it("the first job failing (weight 1 on FAIL): the rest are skipped without a task, the run FAILs after that job", () => {
    const { report, runs } = runsOf({ ...base(release), jobs: { build: { outcome: Simulation.weighted({ FAIL: 1 }) } } })
    expect(report.states.FAIL).toBe(20)
    expect(report.jobs.map((j) => [j.name, j.ran, j.skipped, j.states.FAIL, j.dispatches])).toEqual([
      ["build", 20, 0, 20, 20],
      ["canary", 0, 20, 0, 0],
      ["rollout", 0, 20, 0, 0]
    ])
    expect(report.outcomes).toMatchObject({ OK: 0, FAIL: 20 })
    expect(report.durationMs.max).toBe(100)
    expect(report.reasons[0]!.count).toBe(20)
    expect(report.reasons[0]!.reason).toContain("build ended FAIL")
    for (const run of runs) {
      expect(run.submitted).toEqual(["build"])
      expect(job(run, "canary")).toMatchObject({ status: "skipped", submittedAt: undefined, dispatches: 0 })
      expect(job(run, "canary").reason).toContain("build ended FAIL")
    }
  })

  it("the same weights on every job: fewer runs get through, the counts add up", () => {
    const { report } = runsOf({ ...base(release), outcome: Simulation.weighted({ OK: 9, FAIL: 1 }), runs: 500 })
    expect(report.states.OK + report.states.FAIL + report.states.PARTIAL_FAIL).toBe(500)
    expect(report.states.OK).toBeGreaterThan(250)
    expect(report.states.FAIL).toBeGreaterThan(0)
    const [build, canary, rollout] = report.jobs
    expect(build!.ran).toBe(500)
    expect(canary!.ran).toBe(build!.states.OK)
    expect(rollout!.ran).toBe(canary!.states.OK)
    expect(rollout!.ran + rollout!.skipped).toBe(500)
  })
})

describe("when, handlers and run states", () => {
  const withHandler = () =>
    load(yaml(
      "name: handled",
      "jobs:",
      "  build: { score: build, players: [violin], policy: one-of, params: { ref: main } }",
      '  deploy: { needs: [build], score: deploy, players: [viola], policy: all-of, params: { version: "${{ jobs.build.output.version }}" } }',
      '  notify: { needs: [deploy], when: [FAIL], score: echo, players: [cello], policy: one-of, params: { message: "deploy ${{ jobs.deploy.state }}" } }'
    ))

  it("a `when: [FAIL]` job is skipped when its need is OK, and the run is still OK", () => {
    const { report, runs } = runsOf({ ...base(withHandler()), params: {} })
    expect(report.states.OK).toBe(20)
    expect(report.jobs.map((j) => [j.name, j.ran, j.skipped])).toEqual([["build", 20, 0], ["deploy", 20, 0], ["notify", 0, 20]])
    expect(job(runs[0]!, "notify").reason).toContain("deploy ended OK")
    expect(report.durationMs.max).toBe(200)
  })

  it("it runs only when its need FAILed, reading that need's state; the run is FAIL", () => {
    const { report, runs } = runsOf({ ...base(withHandler()), params: {}, jobs: { deploy: { outcome: Simulation.always("FAIL") } } })
    expect(report.states.FAIL).toBe(20)
    expect(report.jobs.map((j) => [j.name, j.ran, j.skipped, j.states.OK, j.states.FAIL])).toEqual([
      ["build", 20, 0, 20, 0],
      ["deploy", 20, 0, 0, 20],
      ["notify", 20, 0, 20, 0]
    ])
    expect(runs[0]!.submitted).toEqual(["build", "deploy", "notify"])
    expect(job(runs[0]!, "notify").params).toEqual({ message: "deploy FAIL" })
    expect(report.durationMs.max).toBe(300)
  })

  it("a handler reading the response of a job that failed cannot be submitted (failed players report nothing), as for real", () => {
    const p = load(yaml(
      "name: reads-failed",
      "jobs:",
      "  deploy: { score: deploy, players: [viola], policy: all-of, params: { version: 1.0.0 } }",
      '  notify: { needs: [deploy], when: [FAIL], score: echo, players: [cello], policy: one-of, params: { message: "${{ jobs.deploy.players.viola.response.host }}" } }'
    ))
    const { report, runs } = runsOf({ ...base(p), params: {}, outcome: Simulation.always("FAIL"), runs: 3 })
    expect(report.states.FAIL).toBe(3)
    expect(report.jobs[1]).toMatchObject({ name: "notify", ran: 0, failed: 3, skipped: 0, dispatches: 0 })
    expect(job(runs[0]!, "notify").reason).toContain('has no "host"')
  })

  it("jobs side by side run at the same simulated time; the run ends with the last", () => {
    const stages = load(fs.readFileSync(path.join(samplePipelines, "release-stages.yaml"), "utf8"))
    const { report, runs } = runsOf({ ...base(stages), runs: 2 })
    expect(report.states.OK).toBe(2)
    const run = runs[0]!
    expect(job(run, "canary").submittedAt).toBe(100)
    expect(job(run, "usage").submittedAt).toBe(100)
    // usage (all-of over 2 players, 1 slot each) 100ms; rollout 3 × 100ms; report 100ms
    expect(job(run, "rollout").submittedAt).toBe(200)
    expect(job(run, "report").submittedAt).toBe(200)
    expect(run.durationMs).toBe(500)
    expect(job(run, "report").params).toEqual({ message: "canary OK, disk usage OK" })
  })
})

describe("what simulated players report, and who they are", () => {
  it("placeholders take the type the producing score's outputs declare; without the score, strings", () => {
    const text = yaml(
      "name: typed",
      "jobs:",
      "  a: { score: deploy, players: [viola], policy: all-of, params: { version: 1.2.3 } }",
      '  b: { needs: [a], score: deploy, players: [viola], policy: all-of, params: { version: 1.2.3, batch: "${{ jobs.a.output.batch }}" } }'
    )
    const typed = runsOf({ ...base(load(text)), params: {}, runs: 1 }).runs[0]!
    expect(job(typed, "b").params).toEqual({ version: "1.2.3", batch: 0 })
    const untyped = runsOf({ ...base(Either.getOrThrow(Pipeline.parse(text, "t.yaml"))), params: {}, catalog: undefined, runs: 1 }).runs[0]!
    expect(job(untyped, "b").params).toEqual({ version: "1.2.3", batch: "sim:a.batch" })
  })

  it("placeholderOf: const, enum, default, examples, then a value of the type within its bounds", () => {
    const fb = "sim:x"
    expect(PipelineSimulation.placeholderOf({ const: 7 }, fb)).toBe(7)
    expect(PipelineSimulation.placeholderOf({ enum: ["true", "false"] }, fb)).toBe("true")
    expect(PipelineSimulation.placeholderOf({ type: "integer", default: 3 }, fb)).toBe(3)
    expect(PipelineSimulation.placeholderOf({ type: "string", examples: ["1.4.2"] }, fb)).toBe("1.4.2")
    expect(PipelineSimulation.placeholderOf({ type: "integer", minimum: 5 }, fb)).toBe(5)
    expect(PipelineSimulation.placeholderOf({ type: "number", maximum: -2 }, fb)).toBe(-2)
    expect(PipelineSimulation.placeholderOf({ type: "integer", exclusiveMinimum: 0 }, fb)).toBe(1)
    expect(PipelineSimulation.placeholderOf({ type: "boolean" }, fb)).toBe(true)
    expect(PipelineSimulation.placeholderOf({ type: ["null", "string"] }, fb)).toBe(fb)
    expect(PipelineSimulation.placeholderOf({ type: "object" }, fb)).toEqual({})
    expect(PipelineSimulation.placeholderOf({ type: "array" }, fb)).toEqual([])
    expect(PipelineSimulation.placeholderOf(undefined, fb)).toBe(fb)
  })

  it("a selector job runs on the pool sim-1..sim-N, which carries its labels; named players come first", () => {
    const p = load(yaml(
      "name: selected",
      "jobs:",
      "  usage: { score: disk-usage, players: [viola], selector: { role: web }, policy: all-of, params: { path: / } }"
    ))
    const { report, runs } = runsOf({ ...base(p), params: {}, pool: 4, runs: 3 })
    expect(report.pool).toBe(4)
    expect(job(runs[0]!, "usage").targets).toEqual(["viola", "sim-1", "sim-2", "sim-3", "sim-4"])
    expect(report.jobs[0]).toMatchObject({ targets: 5, dispatches: 15 })
    expect(report.durationMs.max).toBe(100)
    // a policy selecting by label sees the pool's labels: stages picks the web players first
    const staged = load(yaml(
      "name: staged",
      "jobs:",
      "  usage:",
      "    score: disk-usage",
      "    players: [viola]",
      "    selector: { role: web }",
      "    params: { path: / }",
      "    policy: { name: stages, options: { stages: [{ name: web, selector: { role: web }, policy: { name: all-of } }, { name: rest, policy: { name: one-of } }] } }"
    ))
    const s = runsOf({ ...base(staged), params: {}, pool: 2, runs: 1 })
    expect(s.report.states.OK).toBe(1)
    expect(s.report.durationMs.max).toBe(200) // the web stage (sim-1, sim-2 side by side), then viola
  })

  it("a policy unknown to the lookup (a pipeline only parsed): that job is refused at submission, the run FAILs", () => {
    const p = Either.getOrThrow(Pipeline.parse(yaml(
      "name: unknown-policy",
      "jobs:",
      "  a: { score: noop, players: [viola], policy: one-of }",
      "  b: { needs: [a], score: noop, players: [viola], policy: nope }"
    ), "t.yaml"))
    const { report, runs } = runsOf({ ...base(p), params: {}, runs: 2 })
    expect(report.states.FAIL).toBe(2)
    expect(report.jobs.map((j) => [j.name, j.ran, j.failed])).toEqual([["a", 2, 0], ["b", 0, 2]])
    expect(job(runs[0]!, "b").reason).toContain('unknown policy "nope"')
  })
})

describe("seeds, limits and bad input", () => {
  it("the same seed gives the same report; another seed another", () => {
    const config: PipelineSimulation.Config = {
      ...base(release),
      outcome: Simulation.weighted({ OK: 8, FAIL: 1, HOST_ERROR: 1 }),
      latency: Simulation.exponentialLatency(300),
      runs: 200,
      seed: 11
    }
    const a = Either.getOrThrow(PipelineSimulation.simulate(config))
    const b = Either.getOrThrow(PipelineSimulation.simulate(config))
    const c = Either.getOrThrow(PipelineSimulation.simulate({ ...config, seed: 12 }))
    expect(JSON.stringify(b)).toBe(JSON.stringify(a))
    expect(JSON.stringify(c)).not.toBe(JSON.stringify(a))
    expect(c.seed).toBe(12)
  })

  it("refuses params the pipeline refuses, counts out of range, overrides of unknown jobs, and too much work", () => {
    expect(errorOf({ ...base(release), params: {} })).toMatchObject({ reason: "params" })
    expect(errorOf({ ...base(release), params: {} }).message).toContain("ref")
    expect(errorOf({ ...base(release), runs: 0 })).toMatchObject({ reason: "input", message: "runs must be an integer from 1 to 100000 (got 0)" })
    expect(errorOf({ ...base(release), slots: 0 }).reason).toBe("input")
    expect(errorOf({ ...base(release), seed: 1.5 }).reason).toBe("input")
    expect(errorOf({ ...base(release), jobs: { nope: { outcome: Simulation.always("OK") } } }).message).toContain('no job "nope"')
    const wide = load(yaml("name: wide", "jobs:", "  a: { score: noop, selector: { role: web }, policy: all-of }"))
    const tooMuch = errorOf({ ...base(wide), params: {}, pool: 100_000, runs: 100 })
    expect(tooMuch.reason).toBe("limits")
    expect(tooMuch.message).toContain("10000000 tasks")
  })
})

// ---- invariants over many random configurations ---------------------------------

const diamond = () =>
  load(yaml(
    "name: diamond",
    "params: { type: object, properties: { ref: { type: string, default: main } } }",
    "jobs:",
    '  build: { score: build, players: [violin, viola, cello], policy: one-of, params: { ref: "${{ params.ref }}" } }',
    '  canary: { needs: [build], score: deploy, players: [viola], policy: all-of, params: { version: "${{ jobs.build.output.version }}" } }',
    "  usage: { needs: [build], score: disk-usage, selector: { role: web }, policy: { name: rolling, options: { batch: 2, maxFailures: 1 } }, params: { path: / } }",
    '  rollout: { needs: [canary, usage], when: [OK, PARTIAL_FAIL], score: deploy, players: [violin, viola, cello], policy: { name: rolling, options: { batch: 1 } }, params: { version: "${{ jobs.canary.players.viola.response.deployed }}" } }',
    '  report: { needs: [rollout], when: [PARTIAL_FAIL, FAIL, CANCELLED], score: echo, players: [cello], policy: one-of, params: { message: "rollout ${{ jobs.rollout.state }}" } }',
    "  tidy: { needs: [build], when: [FAIL], score: noop, players: [violin, viola], policy: all-of }"
  ))

const checkRun = (pipeline: Pipeline.Pipeline, run: PipelineSimulation.RunResult) => {
  expect(run.state).toBeDefined()
  const byName = new Map(run.jobs.map((j) => [j.name, j]))
  let lastEnd = 0
  let failed = false
  let partial = false
  for (const j of pipeline.jobs) {
    const t = byName.get(j.name)!
    expect(["finished", "skipped", "failed"]).toContain(t.status)
    if (t.submittedAt !== undefined) {
      expect(t.status).toBe("finished")
      expect(t.finishedAt).toBeGreaterThanOrEqual(t.submittedAt)
      lastEnd = Math.max(lastEnd, t.finishedAt!)
      for (const n of j.needs) {
        const need = byName.get(n)!
        // a job never starts before all its needs ended, and only in a state its `when` lists
        expect(need.finishedAt).toBeLessThanOrEqual(t.submittedAt)
        expect(j.when).toContain(need.state)
        expect(run.submitted.indexOf(n)).toBeLessThan(run.submitted.indexOf(j.name))
      }
      if (t.state === "FAIL" || t.state === "CANCELLED") failed = true
      if (t.state === "PARTIAL_FAIL") partial = true
    } else {
      // skipped (or refused) jobs have no tasks
      expect(t.dispatches).toBe(0)
      expect(sum(t.outcomes)).toBe(0)
      expect(t.state).toBeUndefined()
      if (t.status === "skipped" && j.when.includes("OK")) failed = true
      if (t.status === "failed") failed = true
    }
    if (t.dispatches === 0) expect(sum(t.outcomes)).toBe(0)
  }
  expect(run.durationMs).toBe(lastEnd)
  expect(run.state).toBe(failed ? "FAIL" : partial ? "PARTIAL_FAIL" : "OK")
}

describe("invariants over 2,000 random seeds, weights, latencies, slots and pools", () => {
  it("every run ends; needs before jobs; skipped jobs without tasks; run states as the jobs say; counts add up", () => {
    const pipeline = diamond()
    const rng = Simulation.makeRng(20_240_601)
    const outcomes: ReadonlyArray<Outcome.Outcome> = Outcomes.all
    const seen = new Set<JobState.FinishedJobState>()
    const statuses = new Set<string>()
    let total = 0
    for (let k = 0; k < 2_000; k++) {
      const weights: Partial<Record<Outcome.Outcome, number>> = { OK: rng.int(1, 20) }
      for (const o of outcomes) if (o !== "OK" && rng.bool(0.4)) weights[o] = rng.int(0, 5)
      const latencies = [Simulation.fixedLatency(rng.int(0, 50)), Simulation.uniformLatency(1, 500), Simulation.exponentialLatency(200)]
      const runs = rng.int(1, 3)
      const { report, runs: results } = runsOf({
        pipeline,
        params: rng.bool() ? {} : { ref: "v1" },
        policies: registry.policies,
        catalog,
        outcome: Simulation.weighted(weights),
        latency: rng.pick(latencies),
        slots: rng.int(1, 3),
        pool: rng.int(1, 5),
        seed: rng.nextSeed(),
        runs
      })
      expect(results.length).toBe(runs)
      for (const run of results) {
        checkRun(pipeline, run)
        seen.add(run.state!)
        for (const j of run.jobs) statuses.add(`${j.name} ${j.status}`)
      }
      total += runs
      // the report's counts add up
      expect(sum(report.states)).toBe(runs)
      expect(report.states.unfinished).toBe(0)
      for (const j of report.jobs) {
        expect(j.ran + j.skipped + j.failed).toBe(runs)
        expect(sum(j.states)).toBe(j.ran)
      }
      for (const o of outcomes) expect(report.jobs.reduce((s, j) => s + j.outcomes[o], 0)).toBe(report.outcomes[o])
      expect(report.jobs.reduce((s, j) => s + j.dispatches, 0)).toBe(report.dispatches)
      expect(report.durationMs.p50).toBeLessThanOrEqual(report.durationMs.p95)
      expect(report.durationMs.p95).toBeLessThanOrEqual(report.durationMs.max)
    }
    expect(total).toBeGreaterThan(3_000)
    // the configurations reached every way a run ends but CANCELLED (nothing cancels a simulated run)
    expect([...seen].sort()).toEqual(["FAIL", "OK", "PARTIAL_FAIL"])
    // and every job both ran and was skipped in some of them
    for (const j of pipeline.jobs) {
      if (j.needs.length > 0) expect(statuses).toContain(`${j.name} skipped`)
      expect(statuses).toContain(`${j.name} finished`)
    }
  })
})
