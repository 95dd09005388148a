/**
 * Tests of the `one-of` policy: the conformance suite over 10,000 simulated
 * jobs with one-of's own invariants, and examples of its exact semantics.
 */
import { describe, expect, it } from "@effect/vitest"
import assert from "node:assert/strict"
import type { Outcome, Policy } from "@orchestra/core"
import { Names, PluginRegistry, PolicyRun } from "@orchestra/core"
import type { SimulatedJob } from "@orchestra/core/testing/PolicySuite"
import { policySuite } from "@orchestra/core/testing/PolicySuite"
import type { TraceEvent } from "@orchestra/core/testing/Simulation"
import { always, byPlayer, fixedLatency, simulate } from "@orchestra/core/testing/Simulation"
import defaultExport, { OneOf, policyOneOf } from "@orchestra/policy-one-of"
import { Either } from "effect"

const plugin = policyOneOf()
const p = Names.playerName
const k = Names.taskKey

/** one-of's own invariants, on every simulated job (node:assert: cheap enough for 10,000 jobs). */
const oneOfInvariants = (job: SimulatedJob): void => {
  const { result, targets } = job
  const ended = result.trace.filter((e): e is Extract<TraceEvent, { _tag: "Ended" }> => e._tag === "Ended")
  const runs = result.trace.filter((e): e is Extract<TraceEvent, { _tag: "Run" }> => e._tag === "Run")
  const isSoft = (e: { readonly outcome: Outcome.Outcome }) => e.outcome === "UNK_SCORE" || e.outcome === "HOST_ERROR"
  const hard = ended.filter((e) => !isSoft(e))
  const soft = ended.filter(isSoft)
  const { state, reason } = result.finished!

  // One task, key "0", offered first to every target in the job's order,
  // then at the head of the queue to the players not disqualified yet.
  assert.ok(runs.length >= 1 && runs.every((r) => r.key === "0"), "one task, key 0")
  assert.deepEqual(runs[0]!.players, targets, "first offered to every target, in order")
  assert.equal(runs[0]!.front, false, "first queued at the tail")
  for (let i = 1; i < runs.length; i++) {
    const disqualified = new Set(soft.slice(0, i).map((e) => e.player))
    assert.equal(runs[i]!.front, true, "requeued at the head")
    assert.deepEqual(runs[i]!.players, targets.filter((t) => !disqualified.has(t)), "requeued for the players left, in order")
  }
  // Every attempt but the last was soft, each on a different player.
  assert.ok(ended.slice(0, -1).every(isSoft), "only the last outcome may be hard")
  assert.equal(new Set(soft.map((e) => e.player)).size, soft.length, "a player is tried once")

  if (hard.length > 0) {
    // Exactly one hard outcome, the last, ends the job: OK iff it is OK.
    assert.equal(hard.length, 1, "exactly one hard outcome")
    assert.equal(ended[ended.length - 1], hard[0], "the hard outcome is the last")
    assert.equal(state, hard[0]!.outcome === "OK" ? "OK" : "FAIL", "OK iff the hard outcome is OK")
    if (state === "FAIL") assert.ok(reason?.includes(`${hard[0]!.outcome} on ${hard[0]!.player}`), `reason names the outcome: ${reason}`)
  } else {
    // No hard outcome: every target was soft-failed, and the job is FAIL saying so.
    assert.deepEqual(soft.map((e) => e.player).sort(), [...targets].sort(), "every target tried")
    assert.equal(state, "FAIL", "all soft-failed is FAIL")
    assert.ok(reason?.startsWith("every player was tried"), `reason: ${reason}`)
    for (const e of soft.slice(0, 20)) assert.ok(reason?.includes(`${e.player}: ${e.outcome}`) === true, `reason names ${e.player}`)
  }

  // Players are tried in order: with the first eligible player chosen and
  // nobody offline, the players tried are the first targets, in order.
  if (job.pick === "first" && !job.churn) {
    assert.deepEqual(ended.map((e) => e.player), targets.slice(0, ended.length), "players tried in order")
  }
}

policySuite(plugin, {
  options: () => ({}),
  runs: 10_000,
  disqualifiesOnSoft: true,
  maxSteps: (n) => n,
  reachableStates: ["OK", "FAIL"],
  invalidOptions: ["one", 1, [], { retries: 2 }],
  invariants: oneOfInvariants
})

const start = (players: ReadonlyArray<string>, options: unknown = {}) =>
  PolicyRun.PolicyRun.start(plugin, options, {
    job: Names.jobId(7),
    score: Names.scoreName("deploy"),
    players: players.map(p),
    now: 1000,
    policies: () => undefined
  })

const ended = (key: string, player: string, outcome: Outcome.Outcome, attempt = 1): Policy.TaskEnded => ({
  key: k(key),
  player: p(player),
  attempt,
  outcome,
  response: {}
})

describe("one-of semantics", () => {
  it("is exported as default and named, under the name one-of, with empty options", () => {
    expect(defaultExport).toBe(policyOneOf)
    expect(plugin.name).toBe("one-of")
    expect(OneOf.key).toBe("0")
    expect(Either.isRight(plugin.decodeOptions({}))).toBe(true)
    expect(Either.isRight(plugin.decodeOptions(undefined))).toBe(true)
    const bad = plugin.decodeOptions({ batchSize: 2 })
    expect(Either.isLeft(bad)).toBe(true)
    if (Either.isLeft(bad)) expect(bad.left.message).toContain("batchSize")
  })

  it("loads through the plugin registry by its package's default export", () => {
    const plugins = PluginRegistry.pluginsOf("@orchestra/policy-one-of", defaultExport)
    expect(Either.isRight(plugins)).toBe(true)
    const registry = Either.getOrThrow(PluginRegistry.Registry.make(Either.getOrThrow(plugins)))
    expect(registry.names("policy")).toEqual(["one-of"])
  })

  it("offers one task, key 0, to every target in the job's order", () => {
    const { step } = start(["c", "a", "b", "a"])
    expect(step).toEqual({ actions: [{ _tag: "Run", key: "0", players: ["c", "a", "b"], front: false }] })
  })

  it("a: UNK_SCORE, b: HOST_ERROR, c: OK → OK, b and c each offered the task at the head", () => {
    const { run, step } = start(["a", "b", "c"])
    expect(step.actions).toEqual([{ _tag: "Run", key: "0", players: ["a", "b", "c"], front: false }])
    const s1 = run.taskEnded(ended("0", "a", "UNK_SCORE"), 1001)
    expect(s1).toEqual({ actions: [{ _tag: "Run", key: "0", players: ["b", "c"], front: true }] })
    const s2 = run.taskEnded(ended("0", "b", "HOST_ERROR", 2), 1002)
    expect(s2).toEqual({ actions: [{ _tag: "Run", key: "0", players: ["c"], front: true }] })
    const s3 = run.taskEnded(ended("0", "c", "OK", 3), 1003)
    expect(s3.actions).toEqual([])
    expect(s3.finished?.state).toBe("OK")
    expect(s3.finished?.reason).toBe("ran on c after a: UNK_SCORE, b: HOST_ERROR")
    expect(run.finished?.state).toBe("OK")
  })

  it("the same through the simulator: b and c dispatched in turn, attempts 1 to 3", () => {
    const result = simulate(plugin, {
      seed: 1,
      players: ["a", "b", "c"],
      outcome: byPlayer({ a: "UNK_SCORE", b: "HOST_ERROR", c: "OK" }),
      latency: fixedLatency(10),
      trace: true
    })
    expect(result.finished).toEqual({ state: "OK", reason: "ran on c after a: UNK_SCORE, b: HOST_ERROR" })
    expect(result.trace.filter((e) => e._tag === "Dispatch")).toEqual([
      { _tag: "Dispatch", at: 0, key: "0", attempt: 1, player: "a" },
      { _tag: "Dispatch", at: 10, key: "0", attempt: 2, player: "b" },
      { _tag: "Dispatch", at: 20, key: "0", attempt: 3, player: "c" }
    ])
    expect(result.trace.filter((e) => e._tag === "Run").map((e) => e._tag === "Run" && e.front)).toEqual([false, true, true])
    expect(result.durationMs).toBe(30)
  })

  it("a hard failure ends the job at once as FAIL, without trying another player", () => {
    const { run } = start(["a", "b"])
    const s = run.taskEnded(ended("0", "a", "FAIL"), 1001)
    expect(s).toEqual({ actions: [], finished: { state: "FAIL", reason: "the task ended FAIL on a" } })
  })

  it.each(["UNKNOWN_FAILURE", "INVALID_PARAMS", "TIMEOUT", "CANCELLED"] as const)("%s is hard: FAIL", (outcome) => {
    const { run } = start(["a", "b"])
    const s = run.taskEnded(ended("0", "a", outcome), 1001)
    expect(s.finished?.state).toBe("FAIL")
    expect(s.finished?.reason).toContain(outcome)
  })

  it("a hard outcome after soft ones names the players skipped", () => {
    const { run } = start(["a", "b", "c"])
    run.taskEnded(ended("0", "b", "HOST_ERROR"), 1001)
    const s = run.taskEnded(ended("0", "a", "TIMEOUT", 2), 1002)
    expect(s.finished).toEqual({ state: "FAIL", reason: "the task ended TIMEOUT on a after b: HOST_ERROR" })
  })

  it("an OK on the first player finishes OK with no reason", () => {
    const { run } = start(["a", "b"])
    expect(run.taskEnded(ended("0", "a", "OK"), 1001)).toEqual({ actions: [], finished: { state: "OK" } })
  })

  it("every player soft-failed: FAIL, saying every player was tried and why", () => {
    const { run } = start(["a", "b", "c"])
    run.taskEnded(ended("0", "a", "UNK_SCORE"), 1001)
    run.taskEnded(ended("0", "c", "HOST_ERROR", 2), 1002)
    const s = run.taskEnded(ended("0", "b", "UNK_SCORE", 3), 1003)
    expect(s).toEqual({
      actions: [],
      finished: {
        state: "FAIL",
        reason: "every player was tried and none could run the task: a: UNK_SCORE, c: HOST_ERROR, b: UNK_SCORE"
      }
    })
  })

  it("a single player that cannot run the score: FAIL", () => {
    const { run } = start(["solo"])
    const s = run.taskEnded(ended("0", "solo", "UNK_SCORE"), 1001)
    expect(s.finished?.state).toBe("FAIL")
    expect(s.finished?.reason).toContain("solo: UNK_SCORE")
  })

  it("a long list of refusals is cut short in the reason", () => {
    const names = Array.from({ length: 30 }, (_, i) => `h${i}`)
    const { run } = start(names)
    let last: PolicyRun.Step = { actions: [] }
    for (const [i, n] of names.entries()) last = run.taskEnded(ended("0", n, "HOST_ERROR", i + 1), 1001 + i)
    expect(last.finished?.state).toBe("FAIL")
    expect(last.finished?.reason).toContain("h19: HOST_ERROR, and 10 more")
    expect(last.finished?.reason).not.toContain("h20")
  })

  it("a job with no target fails at start", () => {
    expect(start([]).step).toEqual({ actions: [], finished: { state: "FAIL", reason: "the job targets no player" } })
  })

  it("an offline first player just delays the task; it still runs on the first player that can", () => {
    const result = simulate(plugin, {
      seed: 42,
      players: 5,
      outcome: always("OK"),
      churn: { offlineAtStart: 1, meanOnlineMs: 1_000_000, meanOfflineMs: 50, maxOfflineMs: 100 },
      trace: true
    })
    expect(result.finished?.state).toBe("OK")
    expect(result.dispatches).toBe(1)
    const dispatch = result.trace.find((e) => e._tag === "Dispatch")
    const firstOnline = result.trace.find((e) => e._tag === "Online")
    expect(dispatch && firstOnline && dispatch.at).toBe(firstOnline!.at)
    expect(dispatch?._tag === "Dispatch" && dispatch.player).toBe(firstOnline?._tag === "Online" && firstOnline.player)
  })
})
