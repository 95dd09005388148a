/**
 * Tests of the `all-of` policy: the conformance suite over 10,000 simulated
 * jobs with all-of's own invariants, and examples of its exact semantics.
 */
import { describe, expect, it } from "@effect/vitest"
import type { Outcome, Policy } from "@orchestra/core"
import { JobState, Names, PluginRegistry, PolicyRun } from "@orchestra/core"
import type { SimulatedJob } from "@orchestra/core/testing/PolicySuite"
import { policySuite } from "@orchestra/core/testing/PolicySuite"
import type { TraceEvent } from "@orchestra/core/testing/Simulation"
import { always, byPlayer, fixedLatency, simulate, simulateMany, weighted } from "@orchestra/core/testing/Simulation"
import defaultExport, { AllOf, policyAllOf } from "@orchestra/policy-all-of"
import { Either } from "effect"
import assert from "node:assert/strict"

const plugin = policyAllOf()
const p = Names.playerName
const k = Names.taskKey

/** all-of's own invariants, on every simulated job (node:assert: cheap enough for 10,000 jobs). */
const allOfInvariants = (job: SimulatedJob): void => {
  const { result, targets } = job
  const runs = result.trace.filter((e): e is Extract<TraceEvent, { _tag: "Run" }> => e._tag === "Run")
  const ended = result.trace.filter((e): e is Extract<TraceEvent, { _tag: "Ended" }> => e._tag === "Ended")
  const { state, reason } = result.finished!

  // Exactly one task per distinct target, keyed by its name, runnable only by it, planned at start.
  assert.equal(runs.length, targets.length, "one task per distinct player")
  runs.forEach((r, i) => {
    const t = targets[i]!
    assert.ok(r.key === (t as string) && r.players.length === 1 && r.players[0] === t && !r.front, `task ${i} is ${t}'s own`)
    assert.equal(r.at, runs[0]!.at, "every task planned at start")
  })
  assert.ok(!result.trace.some((e) => e._tag === "Cancel"), "no cancel")
  // Every task ended once, on its own player; soft outcomes were final.
  assert.equal(ended.length, targets.length, "every task ended")
  assert.equal(new Set(ended.map((e) => e.key)).size, targets.length, "every task ended once")
  assert.ok(ended.every((e) => (e.player as string) === e.key && e.attempt === 1), "each task ran once, on its player")
  // The aggregate is JobState.aggregate of the outcomes, never PENDING.
  assert.equal(state, JobState.aggregate(ended.map((e) => e.outcome)), "aggregate of the outcomes")
  assert.notEqual(state as string, "PENDING")
  if (state !== "OK") {
    const failed = ended.filter((e) => e.outcome !== "OK")
    assert.ok(reason?.startsWith(`${failed.length} of ${ended.length} players did not end OK`), `reason: ${reason}`)
    for (const e of failed.slice(0, AllOf.REASON_LIMIT)) assert.ok(reason?.includes(`${e.player}: ${e.outcome}`) === true, `reason names ${e.player}`)
  } else {
    assert.equal(reason, undefined, "no reason on OK")
  }
  // The job finished with the last outcome, not before.
  assert.equal(result.steps, targets.length, "finished with the last outcome")
}

policySuite(plugin, {
  options: () => ({}),
  runs: 10_000,
  disqualifiesOnSoft: false,
  maxSteps: (n) => n,
  requireReasonOn: ["FAIL", "PARTIAL_FAIL"],
  reachableStates: ["OK", "PARTIAL_FAIL", "FAIL"],
  invalidOptions: ["all", 0, [], { parallel: 2 }],
  invariants: allOfInvariants
})

const start = (players: ReadonlyArray<string>, options: unknown = {}) =>
  PolicyRun.PolicyRun.start(plugin, options, {
    job: Names.jobId(9),
    score: Names.scoreName("uptime"),
    players: players.map(p),
    now: 1000,
    policies: () => undefined
  })

const ended = (player: string, outcome: Outcome.Outcome): Policy.TaskEnded => ({
  key: k(player),
  player: p(player),
  attempt: 1,
  outcome,
  response: { player }
})

describe("all-of semantics", () => {
  it("is exported as default and named, under the name all-of, with empty options", () => {
    expect(defaultExport).toBe(policyAllOf)
    expect(plugin.name).toBe("all-of")
    expect(Either.isRight(plugin.decodeOptions({}))).toBe(true)
    expect(Either.isRight(plugin.decodeOptions(null))).toBe(true)
    const bad = plugin.decodeOptions({ parallel: 2 })
    expect(Either.isLeft(bad)).toBe(true)
    if (Either.isLeft(bad)) expect(bad.left.message).toContain(`takes no options (got "parallel")`)
  })

  it("loads through the plugin registry next to one another policy", () => {
    const plugins = Either.getOrThrow(PluginRegistry.pluginsOf("@orchestra/policy-all-of", defaultExport))
    const registry = Either.getOrThrow(PluginRegistry.Registry.make(plugins))
    expect(Either.getOrThrow(registry.get("policy", "all-of")).name).toBe("all-of")
  })

  it("plans one task per distinct player, keyed and restricted to that player, in order", () => {
    const { run, step } = start(["b", "a", "b", "c"])
    expect(step).toEqual({
      actions: [
        { _tag: "Run", key: "b", players: ["b"], front: false },
        { _tag: "Run", key: "a", players: ["a"], front: false },
        { _tag: "Run", key: "c", players: ["c"], front: false }
      ]
    })
    expect([...run.live.keys()]).toEqual(["b", "a", "c"])
  })

  it("all OK → OK, finishing only with the last outcome", () => {
    const { run } = start(["a", "b", "c"])
    expect(run.taskEnded(ended("b", "OK"), 1001)).toEqual({ actions: [] })
    expect(run.taskEnded(ended("a", "OK"), 1002)).toEqual({ actions: [] })
    expect(run.finished).toBeUndefined()
    expect(run.taskEnded(ended("c", "OK"), 1003)).toEqual({ actions: [], finished: { state: "OK" } })
  })

  it("some failed → PARTIAL_FAIL, naming who and how", () => {
    const { run } = start(["a", "b", "c"])
    run.taskEnded(ended("a", "OK"), 1001)
    run.taskEnded(ended("c", "TIMEOUT"), 1002)
    expect(run.taskEnded(ended("b", "OK"), 1003).finished).toEqual({
      state: "PARTIAL_FAIL",
      reason: "1 of 3 players did not end OK (2 OK, 1 TIMEOUT): c: TIMEOUT"
    })
  })

  it("soft outcomes are final: UNK_SCORE and HOST_ERROR count as failures, with no requeue", () => {
    const { run } = start(["a", "b"])
    expect(run.taskEnded(ended("a", "UNK_SCORE"), 1001)).toEqual({ actions: [] })
    expect(run.taskEnded(ended("b", "HOST_ERROR"), 1002)).toEqual({
      actions: [],
      finished: { state: "FAIL", reason: "2 of 2 players did not end OK (1 UNK_SCORE, 1 HOST_ERROR): a: UNK_SCORE, b: HOST_ERROR" }
    })
  })

  it("none OK → FAIL", () => {
    const { run } = start(["a", "b", "c"])
    run.taskEnded(ended("a", "FAIL"), 1001)
    run.taskEnded(ended("b", "CANCELLED"), 1002)
    const s = run.taskEnded(ended("c", "INVALID_PARAMS"), 1003)
    expect(s.finished?.state).toBe("FAIL")
    expect(s.finished?.reason).toContain("3 of 3 players did not end OK")
  })

  it("a single player", () => {
    const { run, step } = start(["solo"])
    expect(step.actions).toHaveLength(1)
    expect(run.taskEnded(ended("solo", "UNKNOWN_FAILURE"), 1001).finished?.state).toBe("FAIL")
  })

  it("a job with no target has nothing to run: OK, saying so", () => {
    expect(start([]).step).toEqual({ actions: [], finished: { state: "OK", reason: "the job targets no player: nothing to run" } })
  })

  it("names at most REASON_LIMIT failed players in the reason", () => {
    const names = Array.from({ length: 50 }, (_, i) => `h${i}`)
    const { run } = start(names)
    let last: PolicyRun.Step = { actions: [] }
    for (const [i, n] of names.entries()) last = run.taskEnded(ended(n, i % 2 === 0 ? "FAIL" : "OK"), 1001 + i)
    expect(last.finished?.state).toBe("PARTIAL_FAIL")
    expect(last.finished?.reason).toMatch(/^25 of 50 players did not end OK \(25 OK, 25 FAIL\): h0: FAIL, h2: FAIL, /)
    expect(last.finished?.reason).toContain("h38: FAIL, and 5 more")
    expect(last.finished?.reason).not.toContain("h40")
  })

  // PolicyRun's cost per step does not grow with the live tasks.
  it("a large job: 20,000 players, one task each, all ended", () => {
    const result = simulate(plugin, {
      seed: 3,
      players: 20_000,
      outcome: weighted({ OK: 9, FAIL: 1 }),
      trace: false
    })
    expect(result.status).toBe("finished")
    expect(result.steps).toBe(20_000)
    expect(result.dispatches).toBe(20_000)
    expect(result.finished?.state).toBe("PARTIAL_FAIL")
    expect(result.finished?.reason).toMatch(/^\d+ of 20000 players did not end OK \(\d+ OK, \d+ FAIL\): p\d+: FAIL, .*, and \d+ more$/)
    expect(result.outcomes.OK + result.outcomes.FAIL).toBe(20_000)
    expect(result.maxLive).toBe(20_000)
  })

  it("tasks run in parallel: the job takes as long as its slowest player", () => {
    const result = simulate(plugin, {
      seed: 5,
      players: ["a", "b", "c"],
      outcome: byPlayer({ a: "OK", b: "FAIL", c: "OK" }),
      latency: (_rng, attempt) => ({ a: 30, b: 10, c: 20 })[attempt.player as string] ?? 0,
      trace: true
    })
    expect(result.durationMs).toBe(30)
    expect(result.trace.filter((e) => e._tag === "Ended").map((e) => e._tag === "Ended" && e.player)).toEqual(["b", "c", "a"])
    expect(result.finished?.state).toBe("PARTIAL_FAIL")
  })

  it("an offline player's task waits for it; the job ends when it is back", () => {
    const summary = simulateMany(plugin, {
      seed: 11,
      players: 10,
      outcome: always("OK"),
      latency: fixedLatency(1),
      churn: { offlineAtStart: 1, meanOnlineMs: 1_000_000, meanOfflineMs: 500, maxOfflineMs: 1000 }
    }, 50)
    expect(summary.states.OK).toBe(50)
    expect(summary.durationMs.min).toBeGreaterThan(1)
    expect(summary.durationMs.max).toBeLessThanOrEqual(1001)
    expect(summary.outcomes.OK).toBe(500)
  })
})
