/**
 * Tests of `orchestra simulate`: the simulation behind it (built-in
 * policies, a policy loaded by path from a real file, outcome weights,
 * latency models, seeds), the report, its errors, and the command itself
 * run through @effect/cli with real arguments.
 */
import { Command } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { Effect, Either, Exit as EffectExit } from "effect"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { afterAll, describe, expect, it, vi } from "vitest"
import * as Exit from "../src/Exit.js"
import * as Simulate from "../src/Simulate.js"

const base: Simulate.SimulateInput = {
  policy: "one-of",
  options: {},
  plugins: [],
  baseDir: process.cwd(),
  players: 10,
  weights: {},
  slots: 1,
  runs: 50,
  seed: 1
}

const report = (input: Partial<Simulate.SimulateInput>) => Effect.runPromise(Simulate.run({ ...base, ...input }))

/** The message of the usage error a bad input gives. */
const usageError = async (input: Partial<Simulate.SimulateInput>): Promise<string> => {
  const exit = await Effect.runPromiseExit(Simulate.run({ ...base, ...input }))
  if (EffectExit.isSuccess(exit)) throw new Error("expected a usage error")
  const failure = exit.cause._tag === "Fail" ? exit.cause.error : undefined
  expect(failure?.code).toBe(Exit.codes.usage)
  return failure?.message ?? ""
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchestra-simulate-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

/**
 * A user's policy in a file of its own, outside the repository: `last-only`
 * runs one task on the last target; OK iff it ends OK. It imports the
 * plugin API by its resolved location (a user would have it installed).
 */
const userPlugin = (() => {
  const core = pathToFileURL(createRequire(import.meta.url).resolve("@orchestra/core")).href
  const file = path.join(dir, "last-only.mjs")
  fs.writeFileSync(
    file,
    `import { Policy } from ${JSON.stringify(core)}
export default () => Policy.make({
  name: "last-only",
  description: "one task on the last target",
  options: Policy.NoOptions("last-only"),
  start: ({ players }) => ({ state: 0, actions: [{ _tag: "Run", key: "0", players: [players[players.length - 1]] }] }),
  onTaskEnded: (s, e) => ({ state: s, actions: [], finished: e.outcome === "OK" ? { state: "OK" } : { state: "FAIL", reason: "ended " + e.outcome + " on " + e.player } })
})
`
  )
  return file
})()

describe("simulate: the simulation", () => {
  it("one-of, every attempt OK, a fixed latency: every job OK in exactly that time, one dispatch each", async () => {
    const r = await report({ latency: "200ms" })
    expect(r.summary.runs).toBe(50)
    expect(r.summary.states).toEqual({ OK: 50, PARTIAL_FAIL: 0, FAIL: 0, CANCELLED: 0, unfinished: 0 })
    expect(r.summary.durationMs).toEqual({ min: 200, mean: 200, p50: 200, p95: 200, max: 200 })
    expect(r.summary.outcomes.OK).toBe(50)
    expect(r.summary.dispatches).toBe(50)
    expect(r.reasons).toEqual([])
    expect(r.weights).toEqual({ OK: 1 })
  })

  it("rolling in batches of 2 over 6 players at 100ms: 300ms per job", async () => {
    const r = await report({ policy: "rolling", options: { batch: 2 }, players: 6, latency: "100ms", runs: 10 })
    expect(r.summary.durationMs.max).toBe(300)
    expect(r.summary.durationMs.min).toBe(300)
    expect(r.summary.outcomes.OK).toBe(60)
  })

  it("all-of with half the outcomes failing: a mix of job states, counts that add up, reasons", async () => {
    const r = await report({ policy: "all-of", players: 4, weights: { OK: 1, FAIL: 1 }, runs: 400 })
    const s = r.summary
    expect(s.states.OK + s.states.PARTIAL_FAIL + s.states.FAIL).toBe(400)
    expect(s.states.OK).toBeGreaterThan(0)
    expect(s.states.PARTIAL_FAIL).toBeGreaterThan(s.states.OK)
    expect(s.states.FAIL).toBeGreaterThan(0)
    expect(s.outcomes.OK + s.outcomes.FAIL).toBe(1600)
    expect(Math.abs(s.outcomes.OK - 800)).toBeLessThan(120)
    expect(s.outcomes.TIMEOUT).toBe(0)
    expect(r.reasons.length).toBe(5)
    expect(r.reasons[0]!.count).toBeGreaterThanOrEqual(r.reasons[4]!.count)
    expect(s.durationMs.p50).toBeLessThanOrEqual(s.durationMs.p95)
    expect(s.durationMs.p95).toBeLessThanOrEqual(s.durationMs.max)
  })

  it("stages, with its inner policies looked up among the built-ins", async () => {
    const options = {
      stages: [
        { name: "canary", players: ["p1"], policy: { name: "one-of" } },
        { name: "rest", policy: { name: "rolling", options: { batch: "50%" } } }
      ]
    }
    const ok = await report({ policy: "stages", options, players: 5, latency: "10ms", runs: 5 })
    expect(ok.summary.states.OK).toBe(5)
    expect(ok.summary.durationMs.max).toBe(30) // canary, then 2 batches of 2
    const failing = await report({ policy: "stages", options, players: 5, weights: { FAIL: 1 }, runs: 5 })
    expect(failing.summary.states.FAIL).toBe(5)
    expect(failing.reasons[0]!.reason).toContain("stage 2 (rest) skipped")
    expect(failing.summary.dispatches).toBe(5) // only the canary ever ran
  })

  it("the same seed gives the same report; another seed another one", async () => {
    const input = { policy: "all-of", players: 8, weights: { OK: 3, HOST_ERROR: 1 }, latency: "exponential:500ms", runs: 30 }
    const a = await report(input)
    const b = await report(input)
    const c = await report({ ...input, seed: 2 })
    expect(JSON.stringify(b)).toBe(JSON.stringify(a))
    expect(JSON.stringify(c.summary)).not.toBe(JSON.stringify(a.summary))
  })

  it("uniform latency bounds every job's time: all-of over 3 players between 100 and 200ms; slots are reported", async () => {
    const r = await report({ policy: "all-of", players: 3, slots: 2, latency: "uniform:100ms-200ms", runs: 20 })
    expect(r.summary.durationMs.max).toBeLessThanOrEqual(200)
    expect(r.summary.durationMs.min).toBeGreaterThanOrEqual(100)
    expect(r.slots).toBe(2)
  })

  it("loads a user's policy from a file by path, as the conductor's `plugins:` does", async () => {
    const r = await report({ policy: "last-only", plugins: [path.basename(userPlugin)], baseDir: dir, players: 3, weights: { OK: 1, FAIL: 1 }, runs: 200 })
    expect(r.policy).toBe("last-only")
    expect(r.summary.dispatches).toBe(200)
    expect(r.summary.states.OK + r.summary.states.FAIL).toBe(200)
    expect(r.reasons).toEqual([{ reason: "ended FAIL on p3", count: r.summary.states.FAIL }])
  })
})

describe("simulate: bad input is a usage error saying what is wrong", () => {
  it.each([
    ["an unknown policy, listing the known ones", { policy: "nope" }, 'unknown policy plugin "nope" (known: all-of, one-of, rolling, stages)'],
    ["options the policy refuses", { policy: "rolling", options: { batch: 0 } }, 'invalid options for policy "rolling"'],
    ["a latency it cannot read", { latency: "soon" }, '--latency "soon"'],
    ["a backwards latency range", { latency: "uniform:2s-1s" }, "the range's max is below its min"],
    ["an unknown latency model", { latency: "normal:1s" }, 'unknown latency model "normal"'],
    ["no players", { players: 0 }, "--players must be an integer from 1 to 100000"],
    ["too many runs", { runs: 1_000_000 }, "--runs must be an integer from 1 to 100000"],
    ["no slots", { slots: 0 }, "--slots must be an integer from 1 to 1000"],
    ["every weight 0", { weights: { OK: 0 } }, "at least one outcome weight must be above 0"],
    ["a negative weight", { weights: { FAIL: -1 } }, "the weight of FAIL must be a number ≥ 0"],
    ["a plugin file that does not exist", { plugins: ["./missing.js"], baseDir: dir }, "--plugin ./missing.js: no such file"],
    ["a module that is not a plugin", { plugins: ["./not-a-plugin.mjs"], baseDir: dir }, "is not an Orchestra plugin"]
  ] as const)("%s", async (_, input, message) => {
    fs.writeFileSync(path.join(dir, "not-a-plugin.mjs"), "export default { hello: 1 }\n")
    expect(await usageError(input as Partial<Simulate.SimulateInput>)).toContain(message)
  })
})

describe("simulate: latency models and formatting", () => {
  it("parses fixed, uniform and exponential latencies", () => {
    const rng = { seed: 0, next: () => 0.5, int: () => 0, bool: () => true, pick: <A>(xs: ReadonlyArray<A>) => xs[0]!, exponential: (m: number) => m, nextSeed: () => 0 }
    const at = (spec: string) => Either.getOrThrow(Simulate.parseLatency(spec))(rng, { key: "0" as never, player: "p1" as never, attempt: 1, playerAttempt: 1, at: 0 })
    expect(at("200ms")).toBe(200)
    expect(at("250")).toBe(250)
    expect(at("2s")).toBe(2000)
    expect(at("uniform:100ms-2s")).toBe(1050)
    expect(at("exponential:500ms")).toBe(500)
  })

  it("formats simulated times", () => {
    expect(Simulate.formatMs(850)).toBe("850ms")
    expect(Simulate.formatMs(1250)).toBe("1.25s")
    expect(Simulate.formatMs(150_000)).toBe("2.5m")
    expect(Simulate.formatMs(5_400_000)).toBe("1.5h")
  })
})

describe("simulate: the command", () => {
  const cli = Command.run(Simulate.simulate, { name: "orchestra simulate", version: "0.1.0" })
  const runCommand = async (args: ReadonlyArray<string>) => {
    const lines: Array<string> = []
    const spy = vi.spyOn(console, "log").mockImplementation((...xs: Array<unknown>) => void lines.push(xs.map(String).join(" ")))
    try {
      const exit = await Effect.runPromiseExit(cli(["node", "orchestra", ...args]).pipe(Effect.provide(NodeContext.layer)))
      return { exit, out: lines.join("\n") }
    } finally {
      spy.mockRestore()
    }
  }

  it("prints completion times, job states and outcomes", async () => {
    const { exit, out } = await runCommand(["--policy", "rolling", "--options", '{"batch":"25%","maxFailures":1}', "--players", "8", "--ok", "0.9", "--fail", "0.1", "--latency", "uniform:100ms-2s", "--runs", "100", "--seed", "7"])
    expect(EffectExit.isSuccess(exit)).toBe(true)
    expect(out).toContain('policy rolling {"batch":"25%","maxFailures":1} on 8 players: 100 simulated jobs')
    expect(out).toContain("seed 7, 1 slot per player, latency uniform:100ms-2s, outcomes weighted OK 0.9, FAIL 0.1")
    expect(out).toMatch(/completion {2}p50 \S+ {2}p95 \S+ {2}max \S+/)
    expect(out).toMatch(/jobs {8}OK \d+ {2}PARTIAL_FAIL \d+ {2}FAIL \d+ {2}CANCELLED 0/)
    expect(out).toMatch(/outcomes {4}OK \d+ {2}FAIL \d+/)
  })

  it("--json prints the report as JSON; --plugin loads a policy by path", async () => {
    const { exit, out } = await runCommand(["--policy", "last-only", "--plugin", userPlugin, "--players", "2", "--runs", "3", "--latency", "5ms", "--json"])
    expect(EffectExit.isSuccess(exit)).toBe(true)
    const parsed = JSON.parse(out) as Simulate.Report
    expect(parsed.policy).toBe("last-only")
    expect(parsed.summary.states.OK).toBe(3)
    expect(parsed.summary.durationMs.max).toBe(5)
  })

  it("bad options JSON ends with exit code 64 and a message", async () => {
    const { exit } = await runCommand(["--policy", "one-of", "--options", "{nope", "--players", "2"])
    expect(EffectExit.isFailure(exit)).toBe(true)
    if (EffectExit.isFailure(exit) && exit.cause._tag === "Fail") {
      const e = exit.cause.error as Exit.ExitWith
      expect(e.code).toBe(Exit.codes.usage)
      expect(e.message).toContain("--options: not JSON")
    }
  })
})

describe("simulate --pipeline: whole runs of a pipeline", () => {
  const repo = path.resolve(import.meta.dirname, "../../..")
  const release = path.join(repo, "samples/pipelines/release.yaml")
  const scores = path.join(repo, "samples/scores")
  const cli = Command.run(Simulate.simulate, { name: "orchestra simulate", version: "0.1.0" })
  const runCommand = async (args: ReadonlyArray<string>) => {
    const lines: Array<string> = []
    const spy = vi.spyOn(console, "log").mockImplementation((...xs: Array<unknown>) => void lines.push(xs.map(String).join(" ")))
    try {
      const exit = await Effect.runPromiseExit(cli(["node", "orchestra", ...args]).pipe(Effect.provide(NodeContext.layer)))
      return { exit, out: lines.join("\n") }
    } finally {
      spy.mockRestore()
    }
  }
  /** The exit code and message the command ended with. */
  const failure = (exit: EffectExit.Exit<unknown, unknown>): Exit.ExitWith => {
    if (EffectExit.isSuccess(exit) || exit.cause._tag !== "Fail") throw new Error(`expected the command to fail, got ${String(exit)}`)
    const e = exit.cause.error
    if (!(e instanceof Exit.ExitWith)) throw new Error(`expected an ExitWith, got ${String(e)}`)
    return e
  }
  const input = (more: Partial<Simulate.PipelineSimulateInput>): Simulate.PipelineSimulateInput => ({
    pipeline: release,
    params: { ref: "main" },
    scores: [scores],
    plugins: [],
    baseDir: process.cwd(),
    weights: {},
    slots: 1,
    runs: 50,
    seed: 1,
    ...more
  })

  it("the sample release pipeline with the sample scores: exit 0, every run OK, build/canary/rollout each in the report", async () => {
    const { exit, out } = await runCommand(["--pipeline", release, "--scores", scores, "--param", "ref=main"])
    expect(EffectExit.isSuccess(exit)).toBe(true)
    expect(out).toContain('pipeline release (')
    expect(out).toContain('100 simulated runs, params {"ref":"main"}')
    expect(out).toMatch(/completion {2}p50 \S+ {2}p95 \S+ {2}max \S+/)
    expect(out).toMatch(/runs {8}OK 100 {2}PARTIAL_FAIL 0 {2}FAIL 0 {2}CANCELLED 0/)
    expect(out).toContain("outcomes    OK 500")
    expect(out).toMatch(/^ {2}job +ran +skipped +failed +OK +PARTIAL_FAIL +FAIL +CANCELLED +p50 +p95 +max$/m)
    for (const name of ["build", "canary", "rollout"]) expect(out).toMatch(new RegExp(`^  ${name} +100 +0 +0 +100 +0 +0 +0 `, "m"))
    expect(out).not.toContain("no --scores")
  })

  it("--json prints the report as JSON: runs, jobs, settings", async () => {
    const { exit, out } = await runCommand([
      "--pipeline", release, "--scores", scores, "--params", '{"ref":"v1"}', "--runs", "20", "--latency", "100ms", "--json"
    ])
    expect(EffectExit.isSuccess(exit)).toBe(true)
    const parsed = JSON.parse(out) as Simulate.PipelineReport
    expect(parsed.pipeline).toBe("release")
    expect(parsed.params).toEqual({ ref: "v1" })
    expect(parsed.checkedScores).toBe(true)
    expect(parsed.runs).toBe(20)
    expect(parsed.states.OK).toBe(20)
    expect(parsed.durationMs.max).toBe(500) // build 100ms, canary 100ms, rollout 3 × 100ms
    expect(parsed.jobs.map((j) => [j.name, j.ran, j.dispatches])).toEqual([["build", 20, 20], ["canary", 20, 20], ["rollout", 20, 60]])
    expect(parsed.weights).toEqual({ OK: 1 })
  })

  it("failing outcomes: runs FAIL, later jobs skipped, counts add up, the same seed the same report", async () => {
    const a = await Effect.runPromise(Simulate.runPipeline(input({ weights: { FAIL: 0.2 }, runs: 300, seed: 5 })).pipe(Effect.provide(NodeContext.layer)))
    const b = await Effect.runPromise(Simulate.runPipeline(input({ weights: { FAIL: 0.2 }, runs: 300, seed: 5 })).pipe(Effect.provide(NodeContext.layer)))
    expect(JSON.stringify(b)).toBe(JSON.stringify(a))
    expect(a.weights).toEqual({ FAIL: 0.2, OK: 0.8 })
    expect(a.states.OK + a.states.FAIL + a.states.PARTIAL_FAIL).toBe(300)
    expect(a.states.FAIL).toBeGreaterThan(0)
    const [build, canary, rollout] = a.jobs
    expect(build!.ran).toBe(300)
    expect(canary!.ran + canary!.skipped).toBe(300)
    expect(canary!.skipped).toBe(build!.states.FAIL + build!.states.PARTIAL_FAIL)
    expect(rollout!.ran).toBe(canary!.states.OK)
    expect(a.reasons.length).toBeGreaterThan(0)
    const text = Simulate.formatPipeline(a)
    expect(text).toContain("reasons runs did not end OK")
  })

  it("a selector job runs on --players N simulated players", async () => {
    const file = path.join(dir, "selected.yaml")
    fs.writeFileSync(file, "name: selected\njobs:\n  usage: { score: disk-usage, selector: { role: web }, policy: all-of, params: { path: / } }\n")
    const { exit, out } = await runCommand(["--pipeline", file, "--scores", scores, "--players", "7", "--runs", "4", "--json"])
    expect(EffectExit.isSuccess(exit)).toBe(true)
    const parsed = JSON.parse(out) as Simulate.PipelineReport
    expect(parsed.pool).toBe(7)
    expect(parsed.jobs[0]).toMatchObject({ name: "usage", targets: 7, dispatches: 28 })
  })

  it("both --policy and --pipeline, or neither: exit 64 saying so", async () => {
    const both = failure((await runCommand(["--policy", "one-of", "--players", "2", "--pipeline", release])).exit)
    expect(both.code).toBe(Exit.codes.usage)
    expect(both.message).toContain("give --policy NAME or --pipeline FILE, not both")
    const neither = failure((await runCommand(["--runs", "3"])).exit)
    expect(neither.code).toBe(Exit.codes.usage)
    expect(neither.message).toContain("give --policy NAME")
    const noPlayers = failure((await runCommand(["--policy", "one-of"])).exit)
    expect(noPlayers).toMatchObject({ code: Exit.codes.usage, message: "--players N is required with --policy" })
    const options = failure((await runCommand(["--pipeline", release, "--param", "ref=main", "--options", "{}"])).exit)
    expect(options.code).toBe(Exit.codes.usage)
    const params = failure((await runCommand(["--policy", "one-of", "--players", "2", "--param", "ref=main"])).exit)
    expect(params.message).toContain("go with --pipeline")
  })

  it("a broken pipeline: exit 78 with the file and line of each issue", async () => {
    const file = path.join(dir, "broken.yaml")
    fs.writeFileSync(
      file,
      [
        "name: broken",
        "jobs:",
        "  build: { score: build, players: [violin], policy: one-of }",
        '  deploy: { needs: [biuld], score: deploy, players: [viola], policy: all-of, params: { version: "${{ jobs.build.output.nope }}" } }',
        ""
      ].join("\n")
    )
    const e = failure((await runCommand(["--pipeline", file, "--scores", scores])).exit)
    expect(e.code).toBe(Exit.codes.config)
    expect(e.message).toContain(`${file}:4: jobs.deploy.needs.0: unknown job "biuld"`)
    // without --scores, the policies are still checked
    fs.writeFileSync(file, "name: broken\njobs:\n  build: { score: build, players: [violin], policy: one-off }\n")
    const unknownPolicy = failure((await runCommand(["--pipeline", file])).exit)
    expect(unknownPolicy.code).toBe(Exit.codes.config)
    expect(unknownPolicy.message).toContain(`${file}:3: jobs.build.policy: unknown policy "one-off"`)
  })

  it("params the pipeline refuses, and too many runs: exit 64", async () => {
    const missing = failure((await runCommand(["--pipeline", release, "--scores", scores])).exit)
    expect(missing.code).toBe(Exit.codes.usage)
    expect(missing.message).toContain("invalid params")
    expect(missing.message).toContain("params.ref")
    const runs = failure((await runCommand(["--pipeline", release, "--param", "ref=main", "--runs", "0"])).exit)
    expect(runs).toMatchObject({ code: Exit.codes.usage, message: "--runs must be an integer from 1 to 100000 (got 0)" })
  })
})
