/**
 * Tests of the `rolling` policy: the conformance suite over 10,000
 * simulated jobs with rolling's own invariants (batches, abort threshold,
 * players never started), and examples of its exact semantics.
 */
import { describe, expect, it } from "@effect/vitest"
import type { Outcome, Policy } from "@orchestra/core"
import { JobState, Names, PluginRegistry, PolicyRun } from "@orchestra/core"
import type { SimulatedJob } from "@orchestra/core/testing/PolicySuite"
import { policySuite } from "@orchestra/core/testing/PolicySuite"
import type { Rng } from "@orchestra/core/testing/Simulation"
import { always, byPlayer, fixedLatency, simulate, weighted } from "@orchestra/core/testing/Simulation"
import defaultExport, { policyRolling, Rolling } from "@orchestra/policy-rolling"
import { Either, Schema } from "effect"
import assert from "node:assert/strict"

const plugin = policyRolling()
const p = Names.playerName
const k = Names.taskKey
const decode = Schema.decodeUnknownSync(Rolling.Options)

/** Random valid options: counts and percentages, sometimes bigger than the job. */
const randomOptions = (rng: Rng, targets: ReadonlyArray<Names.PlayerName>): unknown => {
  const n = targets.length
  const batch = rng.bool(0.6) ? rng.int(1, n + 2) : `${rng.pick([1, 10, 25, 33.5, 50, 100])}%`
  const r = rng.next()
  if (r < 0.2) return { batch }
  const maxFailures = r < 0.7 ? rng.int(0, n + 1) : `${rng.pick([0, 10, 25, 50, 100])}%`
  return { batch, maxFailures }
}

/** rolling's own invariants, on every simulated job. */
const rollingInvariants = (job: SimulatedJob): void => {
  const { result, targets } = job
  const n = targets.length
  const options = decode(job.options)
  const batch = Rolling.batchSize(options, n)
  const maxFailures = Rolling.maxFailures(options, n)
  const { state, reason } = result.finished!

  let live = 0
  let started = 0
  let ok = 0
  let failed = 0
  let abortedAt: number | undefined
  let batches = 0
  let lastWasRun = false
  const outcomes: Array<Outcome.Outcome> = []
  for (const [i, e] of result.trace.entries()) {
    if (e._tag === "Run") {
      // In the job's order, one task per player, only on that player.
      const expected = targets[started]
      assert.ok(expected !== undefined && e.key === (expected as string), `task ${started} is ${expected}'s`)
      assert.deepEqual(e.players, [expected], "runnable only by its player")
      assert.equal(e.front, false)
      // A batch starts only once the previous one has ended entirely.
      if (!lastWasRun) {
        assert.equal(live, 0, "a new batch started while the previous one was live")
        batches++
      }
      // No new batch after the abort threshold.
      assert.equal(abortedAt, undefined, `a batch started after the abort (failure ${failed} > ${maxFailures})`)
      started++
      live++
      // Never more live tasks than the batch size.
      assert.ok(live <= batch, `${live} tasks live, more than the batch of ${batch}`)
      lastWasRun = true
      continue
    }
    if (e._tag === "Ended") {
      live--
      outcomes.push(e.outcome)
      if (e.outcome === "OK") ok++
      else failed++
      if (abortedAt === undefined && failed > maxFailures) abortedAt = i
    }
    if (e._tag === "Cancel") assert.fail("rolling never cancels")
    if (e._tag !== "Dispatch" && e._tag !== "Online" && e._tag !== "Offline") lastWasRun = false
  }
  assert.ok(result.maxLive <= batch, "maxLive within the batch")
  // Every task planned ended, once; the job finished with the last one.
  assert.equal(live, 0, "every task started ended")
  assert.equal(outcomes.length, started)

  if (abortedAt !== undefined) {
    // The batch in flight ended, then the job finished: never OK, FAIL iff nothing ended OK.
    assert.equal(state, ok > 0 ? "PARTIAL_FAIL" : "FAIL", "aborted rollout state")
    if (started < n) {
      assert.ok(reason?.includes(`: ${n - started} of ${n} player`), `reason counts the players never started: ${reason}`)
      assert.ok(reason?.startsWith(`rollout aborted after ${failed} failure`), `reason: ${reason}`)
    } else {
      assert.ok(reason?.startsWith(`${failed} of ${n} players did not end OK`), `past the threshold in the last batch: ${reason}`)
    }
    // Players beyond the abort never started: the players started are exactly whole batches.
    assert.equal(started, Math.min(n, batches * batch), "only whole batches started")
    // The abort happened in the last batch started.
    const startedBeforeAbort = result.trace.slice(0, abortedAt).filter((e) => e._tag === "Run").length
    assert.equal(startedBeforeAbort, started, "nothing started after the abort")
  } else {
    assert.equal(started, n, "every player started")
    assert.equal(batches, Math.ceil(n / batch), "batches of the batch size")
    assert.equal(state, JobState.aggregate(outcomes), "aggregate of the outcomes")
    assert.ok(failed <= maxFailures)
  }
}

policySuite(plugin, {
  options: randomOptions,
  runs: 10_000,
  maxSteps: (n) => n,
  requireReasonOn: ["FAIL", "PARTIAL_FAIL"],
  reachableStates: ["OK", "PARTIAL_FAIL", "FAIL"],
  invalidOptions: [
    "rolling",
    3,
    {},
    { batch: 0 },
    { batch: -1 },
    { batch: 1.5 },
    { batch: "0%" },
    { batch: "150%" },
    { batch: "25" },
    { batch: "x%" },
    { batch: 2, maxFailures: -1 },
    { batch: 2, maxFailures: "101%" },
    { batch: 2, maxFailure: 1 }
  ],
  invariants: rollingInvariants
})

const start = (players: ReadonlyArray<string>, options: unknown) =>
  PolicyRun.PolicyRun.start(plugin, options, {
    job: Names.jobId(3),
    score: Names.scoreName("deploy"),
    players: players.map(p),
    now: 1000,
    policies: () => undefined
  })

const ended = (player: string, outcome: Outcome.Outcome): Policy.TaskEnded => ({
  key: k(player),
  player: p(player),
  attempt: 1,
  outcome,
  response: {}
})

const runKeys = (step: PolicyRun.Step) => step.actions.map((a) => a.key)

describe("rolling semantics", () => {
  it("is exported as default and named, under the name rolling", () => {
    expect(defaultExport).toBe(policyRolling)
    expect(plugin.name).toBe("rolling")
    const plugins = Either.getOrThrow(PluginRegistry.pluginsOf("@orchestra/policy-rolling", defaultExport))
    expect(Either.getOrThrow(PluginRegistry.Registry.make(plugins)).names("policy")).toEqual(["rolling"])
  })

  it("batch sizes: a count, or a percentage rounded down, at least 1; maxFailures likewise", () => {
    const size = (batch: number | string, n: number) => Rolling.batchSize(decode({ batch }), n)
    expect(size(2, 10)).toBe(2)
    expect(size(50, 10)).toBe(50)
    expect(size("25%", 10)).toBe(2)
    expect(size("25%", 3)).toBe(1)
    expect(size("1%", 1000)).toBe(10)
    expect(size("100%", 7)).toBe(7)
    expect(size("12.5%", 16)).toBe(2)
    const maxF = (maxFailures: number | string, n: number) => Rolling.maxFailures(decode({ batch: 1, maxFailures }), n)
    expect(Rolling.maxFailures(decode({ batch: 1 }), 10)).toBe(0)
    expect(maxF("20%", 10)).toBe(2)
    expect(maxF("10%", 5)).toBe(0)
    expect(maxF(3, 10)).toBe(3)
  })

  it("batches of 2 in the job's order; the next batch starts when the whole current one has ended", () => {
    const { run, step } = start(["a", "b", "c", "d", "e"], { batch: 2 })
    expect(step.actions).toEqual([
      { _tag: "Run", key: "a", players: ["a"], front: false },
      { _tag: "Run", key: "b", players: ["b"], front: false }
    ])
    expect(run.taskEnded(ended("b", "OK"), 1001)).toEqual({ actions: [] })
    expect(runKeys(run.taskEnded(ended("a", "OK"), 1002))).toEqual(["c", "d"])
    run.taskEnded(ended("c", "OK"), 1003)
    expect(runKeys(run.taskEnded(ended("d", "OK"), 1004))).toEqual(["e"])
    expect(run.taskEnded(ended("e", "OK"), 1005)).toEqual({ actions: [], finished: { state: "OK" } })
  })

  it("maxFailures 0 (the default): the first failure aborts; the batch in flight ends; the rest never start", () => {
    const { run } = start(["a", "b", "c", "d", "e"], { batch: 2 })
    expect(run.taskEnded(ended("a", "FAIL"), 1001)).toEqual({ actions: [] }) // b still runs
    const s = run.taskEnded(ended("b", "OK"), 1002)
    expect(s.actions).toEqual([])
    expect(s.finished).toEqual({
      state: "PARTIAL_FAIL",
      reason: "rollout aborted after 1 failure (at most 0 allowed): 3 of 5 players never started; 1 OK, 1 FAIL; failed: a: FAIL"
    })
    expect(run.live.size).toBe(0)
  })

  it("an abort with nothing OK is FAIL", () => {
    const { run } = start(["a", "b", "c"], { batch: 1 })
    const s = run.taskEnded(ended("a", "TIMEOUT"), 1001)
    expect(s.finished?.state).toBe("FAIL")
    expect(s.finished?.reason).toContain("2 of 3 players never started")
  })

  it("past the threshold in the last batch, nobody is left unstarted: the usual aggregate and reason", () => {
    const { run } = start(["a", "b"], { batch: 1 })
    run.taskEnded(ended("a", "OK"), 1001)
    expect(run.taskEnded(ended("b", "FAIL"), 1002).finished).toEqual({
      state: "PARTIAL_FAIL",
      reason: "1 of 2 players did not end OK (1 OK, 1 FAIL): b: FAIL"
    })
  })

  it("soft outcomes count as failures", () => {
    const { run } = start(["a", "b", "c"], { batch: 1, maxFailures: 1 })
    expect(runKeys(run.taskEnded(ended("a", "UNK_SCORE"), 1001))).toEqual(["b"])
    const s = run.taskEnded(ended("b", "HOST_ERROR"), 1002)
    expect(s.finished?.state).toBe("FAIL")
    expect(s.finished?.reason).toContain("failed: a: UNK_SCORE, b: HOST_ERROR")
  })

  it("failures within maxFailures: the rollout completes, PARTIAL_FAIL with the players that failed", () => {
    const result = simulate(plugin, {
      seed: 5,
      players: 10,
      options: { batch: "30%", maxFailures: "20%" },
      outcome: byPlayer({ p2: "FAIL", p7: "TIMEOUT" }),
      latency: fixedLatency(100),
      trace: true
    })
    expect(result.finished).toEqual({
      state: "PARTIAL_FAIL",
      reason: "2 of 10 players did not end OK (8 OK, 1 FAIL, 1 TIMEOUT): p2: FAIL, p7: TIMEOUT"
    })
    // 4 batches of 3, 3, 3, 1 → 400 ms, never more than 3 live.
    expect(result.durationMs).toBe(400)
    expect(result.maxLive).toBe(3)
    const runs = result.trace.filter((e) => e._tag === "Run")
    expect(runs.map((e) => e.at)).toEqual([0, 0, 0, 100, 100, 100, 200, 200, 200, 300])
  })

  it("a third failure with maxFailures 2 aborts after its batch; later batches never run", () => {
    const result = simulate(plugin, {
      seed: 6,
      players: 12,
      options: { batch: 3, maxFailures: 2 },
      outcome: byPlayer({ p1: "FAIL", p4: "FAIL", p5: "FAIL" }),
      latency: fixedLatency(10),
      trace: true
    })
    expect(result.finished?.state).toBe("PARTIAL_FAIL")
    expect(result.finished?.reason).toContain("rollout aborted after 3 failures (at most 2 allowed): 6 of 12 players never started")
    const dispatched = new Set(result.trace.flatMap((e) => (e._tag === "Dispatch" ? [e.player] : [])))
    expect([...dispatched].sort()).toEqual(["p1", "p2", "p3", "p4", "p5", "p6"])
  })

  it("finishes only once the batch in flight has ended, even a slow one", () => {
    const result = simulate(plugin, {
      seed: 9,
      players: 4,
      options: { batch: 2 },
      outcome: byPlayer({ p1: "FAIL" }),
      latency: (_rng, a) => (a.player === "p2" ? 5000 : 10),
      trace: true
    })
    expect(result.durationMs).toBe(5000)
    expect(result.finished?.state).toBe("PARTIAL_FAIL")
    expect(result.dispatches).toBe(2)
  })

  it("a job with no target is OK, with nothing to run", () => {
    expect(start([], { batch: 1 }).step.finished).toEqual({ state: "OK", reason: "the job targets no player: nothing to run" })
  })

  it("all OK with weighted outcomes at 100% OK over many players: one batch at a time, OK", () => {
    const result = simulate(plugin, { seed: 1, players: 100, options: { batch: "10%" }, outcome: weighted({ OK: 1 }), slots: 2 })
    expect(result.finished).toEqual({ state: "OK" })
    expect(result.maxLive).toBe(10)
    expect(result.steps).toBe(100)
  })

  it("refuses bad options with the policy's name and what is wrong", () => {
    const bad = plugin.decodeOptions({ batch: "150%" })
    expect(Either.isLeft(bad)).toBe(true)
    if (Either.isLeft(bad)) {
      expect(bad.left.message).toContain('invalid options for policy "rolling"')
      expect(bad.left.message).toContain("at most 100%")
    }
    expect(start(["a"], { batch: 0 }).step.finished?.state).toBe("FAIL")
    expect(always("OK")).toBeTypeOf("function")
  })
})
