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
