/**
 * Tests of the sample `canary` policy: the conformance suite over 10,000
 * simulated jobs (rest phase under all-of or rolling, found through the
 * policy lookup) with canary's own invariants — nothing beyond the canaries
 * runs unless every canary ended OK, and the rest phase is exactly its
 * policy's, checked by an independent replay — and its semantics.
 */
import { describe, expect, it } from "@effect/vitest"
import type { Outcome, Policy } from "@orchestra/core"
import { Names, PluginRegistry, PolicyRun } from "@orchestra/core"
import type { SimulatedJob } from "@orchestra/core/testing/PolicySuite"
import { policySuite } from "@orchestra/core/testing/PolicySuite"
import type { Rng } from "@orchestra/core/testing/Simulation"
import { byPlayer, fixedLatency, simulate } from "@orchestra/core/testing/Simulation"
import { policyAllOf } from "@orchestra/policy-all-of"
import { policyRolling } from "@orchestra/policy-rolling"
import { Either } from "effect"
import assert from "node:assert/strict"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import canaryDefault, { policyCanary } from "../canary.js"

const plugin = policyCanary()
const registry = Either.getOrThrow(PluginRegistry.Registry.make([plugin, policyAllOf(), policyRolling()]))
const policies = registry.policies
const p = Names.playerName
const k = Names.taskKey

interface CanaryOptions {
  readonly canary?: number | string
  readonly then?: "all-of" | "rolling"
  readonly rolling?: unknown
}

const randomOptions = (rng: Rng, targets: ReadonlyArray<Names.PlayerName>): unknown => {
  const o: Record<string, unknown> = {}
  const r = rng.next()
  if (r < 0.4) o.canary = rng.int(1, 3)
  else if (r < 0.7 && targets.length > 0) o.canary = rng.pick(targets)
  if (rng.bool()) {
    o.then = "rolling"
    if (rng.bool(0.7)) o.rolling = { batch: rng.bool() ? rng.int(1, 4) : "30%", maxFailures: rng.int(0, 2) }
  } else if (rng.bool()) {
    o.then = "all-of"
  }
  return o
}

/** canary's own invariants, on every simulated job. */
const canaryInvariants = (job: SimulatedJob): void => {
  const { result, targets } = job
  const options = job.options as CanaryOptions
  const count = options.canary ?? 1
  const canaries = typeof count === "number" ? targets.slice(0, count) : [count]
  const rest = targets.filter((t) => !canaries.includes(t))
  const { state, reason } = result.finished!
  if (targets.length === 0) {
    assert.equal(state, "FAIL")
    return
  }

  const canaryEnded = new Map<string, Outcome.Outcome>()
  const restEnded: Array<Policy.TaskEnded & { readonly at: number }> = []
  const restRuns: Array<readonly [string, ReadonlyArray<string>, boolean]> = []
  for (const e of result.trace) {
    if (e._tag === "Run") {
      if (e.key.startsWith("canary:")) {
        assert.equal(restRuns.length, 0)
        assert.deepEqual(e.players, [e.key.slice("canary:".length)], "a canary task runs on its canary")
        assert.ok(canaries.includes(e.players[0]!), `${e.players[0]} is a canary`)
      } else {
        // Nothing beyond the canaries runs unless every canary ended OK.
        assert.ok(e.key.startsWith("rest:"), `key ${e.key}`)
        assert.equal(canaryEnded.size, canaries.length, "a rest task was planned before every canary ended")
        assert.ok([...canaryEnded.values()].every((o) => o === "OK"), "a rest task was planned after a canary failed")
        for (const pl of e.players) assert.ok(rest.includes(pl), `rest task on ${pl}, a canary or not a target`)
        restRuns.push([e.key.slice("rest:".length), e.players, e.front])
      }
    } else if (e._tag === "Ended") {
      if (e.key.startsWith("canary:")) canaryEnded.set(e.key, e.outcome)
      else restEnded.push({ key: k(e.key.slice("rest:".length)), player: e.player, attempt: e.attempt, outcome: e.outcome, response: {}, at: e.at })
    }
  }
  assert.equal(canaryEnded.size, canaries.length, "every canary ran to its end")
  if ([...canaryEnded.values()].some((o) => o !== "OK")) {
    assert.equal(state, "FAIL")
    assert.equal(restRuns.length, 0)
    assert.ok(reason?.startsWith("canary "), `reason: ${reason}`)
    return
  }
  if (rest.length === 0) {
    assert.equal(state, "OK")
    return
  }
  // The rest phase is exactly its policy over the rest: replay it independently.
  const then = options.then ?? "all-of"
  const { run, step } = PolicyRun.PolicyRun.start(policies(then)!, then === "rolling" ? options.rolling ?? { batch: 1 } : {}, {
    job: Names.jobId(1),
    score: Names.scoreName("simulated"),
    players: rest,
    now: 0,
    policies
  })
  const planned = [...step.actions]
  for (const e of restEnded) planned.push(...run.taskEnded(e, e.at).actions)
  assert.deepEqual(restRuns, planned.map((a) => [a.key, a._tag === "Run" ? a.players : [], a._tag === "Run" && a.front === true]))
  const inner = run.finished?.state
  assert.ok(inner !== undefined, "the rest phase finished")
  assert.equal(state, inner === "OK" || inner === "CANCELLED" ? inner : "PARTIAL_FAIL")
}

policySuite(plugin, {
  options: randomOptions,
  runs: 10_000,
  policies,
  maxSteps: (n) => n,
  requireReasonOn: ["FAIL", "PARTIAL_FAIL"],
  reachableStates: ["OK", "PARTIAL_FAIL", "FAIL"],
  invalidOptions: ["canary", 1, { canary: 0 }, { canary: "" }, { then: "one-of" }, { rolling: { batch: 2 } }, { canaries: 2 }],
  invariants: canaryInvariants
})

const start = (players: ReadonlyArray<string>, options: unknown, lookup: Policy.PolicyLookup = policies) =>
  PolicyRun.PolicyRun.start(plugin, options, {
    job: Names.jobId(5),
    score: Names.scoreName("deploy"),
    players: players.map(p),
    now: 0,
    policies: lookup
  })

const ended = (key: string, player: string, outcome: Outcome.Outcome) => ({ key: k(key), player: p(player), attempt: 1, outcome, response: {} })

describe("canary semantics", () => {
  it("the first target is the canary; once OK, the rest run under all-of", () => {
    const { run, step } = start(["a", "b", "c"], {})
    expect(step.actions).toEqual([{ _tag: "Run", key: "canary:a", players: ["a"], front: false }])
    const s = run.taskEnded(ended("canary:a", "a", "OK"), 1)
    expect(s.actions.map((x) => x.key)).toEqual(["rest:b", "rest:c"])
    run.taskEnded(ended("rest:b", "b", "OK"), 2)
    expect(run.taskEnded(ended("rest:c", "c", "FAIL"), 3).finished).toEqual({
      state: "PARTIAL_FAIL",
      reason: "canaries a OK; the rest ended PARTIAL_FAIL under all-of (1 of 2 players did not end OK (1 OK, 1 FAIL): c: FAIL)"
    })
  })

  it("a failed canary: the job is FAIL and nothing else ever runs", () => {
    const result = simulate(plugin, {
      seed: 1,
      players: 6,
      options: { canary: 2, then: "rolling", rolling: { batch: 2 } },
      policies,
      outcome: byPlayer({ p2: "TIMEOUT" }),
      latency: fixedLatency(10),
      trace: true
    })
    expect(result.finished).toEqual({ state: "FAIL", reason: "canary p2 ended TIMEOUT: the other 4 players were not run" })
    expect(result.dispatches).toBe(2)
  })

  it("a named canary, then rolling in batches over the rest", () => {
    const result = simulate(plugin, {
      seed: 2,
      players: 5,
      options: { canary: "p3", then: "rolling", rolling: { batch: 2 } },
      policies,
      latency: fixedLatency(10),
      trace: true
    })
    expect(result.finished?.state).toBe("OK")
    const runs = result.trace.flatMap((e) => (e._tag === "Run" ? [`${e.at} ${e.key}`] : []))
    expect(runs).toEqual(["0 canary:p3", "10 rest:p1", "10 rest:p2", "20 rest:p4", "20 rest:p5"])
    expect(result.durationMs).toBe(30)
  })

  it("every target a canary: OK once they all are", () => {
    const { run } = start(["a", "b"], { canary: 5 })
    run.taskEnded(ended("canary:a", "a", "OK"), 1)
    expect(run.taskEnded(ended("canary:b", "b", "OK"), 2).finished).toEqual({ state: "OK", reason: "canaries a, b OK; every target was a canary" })
  })

  it("refuses at start a canary that is not a target, or a rest policy the conductor lacks", () => {
    expect(start(["a"], { canary: "zz" }).step.finished).toEqual({ state: "FAIL", reason: 'the canary "zz" is not a target of the job' })
    expect(start(["a", "b"], { then: "rolling" }, () => undefined).step.finished?.reason).toBe(
      'the rest-phase policy "rolling" is not registered with this conductor'
    )
    expect(start(["a", "b"], { then: "rolling", rolling: { batch: 0 } }).step.finished?.reason).toContain('invalid options for policy "rolling"')
  })

  it("a rest-phase policy that throws fails the job with a reason naming it", () => {
    const throwing: Policy.PolicyPlugin = {
      ...policyAllOf(),
      decodeOptions: (raw) =>
        Either.map(policyAllOf().decodeOptions(raw), (o) => ({
          ...o,
          onTaskEnded: () => {
            throw new Error("broken")
          }
        }))
    }
    const { run } = start(["a", "b", "c"], {}, (n) => (n === "all-of" ? throwing : undefined))
    run.taskEnded(ended("canary:a", "a", "OK"), 1)
    expect(run.taskEnded(ended("rest:b", "b", "OK"), 2).finished).toEqual({
      state: "FAIL",
      reason: 'the rest-phase policy "all-of" threw on an outcome of task b: broken'
    })
  })

  it("the built file loads by path and is the canary policy", async () => {
    const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../dist/canary.js")
    const mod = (await import(pathToFileURL(file).href)) as { readonly default: unknown }
    const plugins = Either.getOrThrow(PluginRegistry.pluginsOf("policies/dist/canary.js", mod.default))
    expect(plugins.map((x) => x.name)).toEqual(["canary"])
    expect(canaryDefault).toBe(policyCanary)
  })
})
