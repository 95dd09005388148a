/**
 * Tests of the sample `quorum` policy: the conformance suite over 10,000
 * simulated jobs with quorum's own invariants (never more than n tasks;
 * finishes at the very outcome that reaches k OK or puts k out of reach),
 * its semantics, cancellation of the rest, and loading the built file by
 * path as the conductor does.
 */
import { describe, expect, it } from "@effect/vitest"
import type { Outcome } from "@orchestra/core"
import { Names, PluginRegistry, PolicyRun } from "@orchestra/core"
import type { SimulatedJob } from "@orchestra/core/testing/PolicySuite"
import { policySuite } from "@orchestra/core/testing/PolicySuite"
import type { Rng } from "@orchestra/core/testing/Simulation"
import { byPlayer, fixedLatency, simulate } from "@orchestra/core/testing/Simulation"
import { policyAllOf } from "@orchestra/policy-all-of"
import { policyStages } from "@orchestra/policy-stages"
import { Either } from "effect"
import assert from "node:assert/strict"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import quorumDefault, { policyQuorum } from "../quorum.js"

const plugin = policyQuorum()
const p = Names.playerName
const k = Names.taskKey

/** k from 1 to n + 1: sometimes out of reach from the start. */
const randomOptions = (rng: Rng, targets: ReadonlyArray<Names.PlayerName>): unknown => ({ k: rng.int(1, targets.length + 1) })

const quorumInvariants = (job: SimulatedJob): void => {
  const { result, targets } = job
  const n = targets.length
  const want = (job.options as { readonly k: number }).k
  const { state, reason } = result.finished!
  const runs = result.trace.filter((e) => e._tag === "Run")
  const ended = result.trace.filter((e) => e._tag === "Ended")

  if (want > n) {
    assert.equal(state, "FAIL")
    assert.equal(runs.length, 0, "nothing runs when k > n")
    assert.ok(reason?.includes(`a quorum of ${want} cannot be reached`), `reason: ${reason}`)
    return
  }
  // Every target runs, at once, one task each: never more than n tasks.
  assert.equal(runs.length, n, "one task per target")
  assert.ok(runs.every((r) => r.at === runs[0]!.at), "all at once")
  assert.deepEqual(runs.map((r) => r._tag === "Run" && r.players), targets.map((t) => [t]))
  assert.ok(result.maxLive <= n)
  assert.ok(!result.trace.some((e) => e._tag === "Cancel"), "finishing is what cancels the rest")
  // It finishes at the very outcome that decides it, not one later.
  let ok = 0
  let failed = 0
  for (const [i, e] of ended.entries()) {
    if (e._tag !== "Ended") continue
    if (e.outcome === "OK") ok++
    else failed++
    const decided = ok >= want || n - failed < want
    assert.equal(decided, i === ended.length - 1, `decided at outcome ${i + 1} of ${ended.length}`)
  }
  if (ok >= want) {
    assert.equal(state, "OK")
    assert.equal(ok, want, "finished as soon as k ended OK")
    assert.ok(reason?.startsWith(`quorum of ${want} of ${n} reached`), `reason: ${reason}`)
  } else {
    assert.equal(state, "FAIL")
    assert.equal(failed, n - want + 1, "finished as soon as k was out of reach")
    assert.ok(reason?.startsWith(`quorum of ${want} of ${n} out of reach: ${failed} failed`), `reason: ${reason}`)
  }
  const open = n - ended.length
  if (open > 0) assert.ok(reason?.endsWith(`${open} task${open === 1 ? "" : "s"} not ended ${open === 1 ? "is" : "are"} cancelled`), `reason: ${reason}`)
}

policySuite(plugin, {
  options: randomOptions,
  runs: 10_000,
  maxSteps: (n) => n,
  reachableStates: ["OK", "FAIL"],
  invalidOptions: ["quorum", 2, {}, { k: 0 }, { k: 1.5 }, { k: "2" }, { k: 2, n: 3 }],
  invariants: quorumInvariants
})

const start = (players: ReadonlyArray<string>, want: number) =>
  PolicyRun.PolicyRun.start(plugin, { k: want }, {
    job: Names.jobId(4),
    score: Names.scoreName("vote"),
    players: players.map(p),
    now: 0,
    policies: () => undefined
  })

const ended = (player: string, outcome: Outcome.Outcome) => ({ key: k(player), player: p(player), attempt: 1, outcome, response: {} })

describe("quorum semantics", () => {
  it("2 of 4: OK at the second OK; the two tasks still live are left for the conductor to cancel", () => {
    const { run, step } = start(["a", "b", "c", "d"], 2)
    expect(step.actions.map((a) => a.key)).toEqual(["a", "b", "c", "d"])
    expect(run.taskEnded(ended("c", "OK"), 1)).toEqual({ actions: [] })
    expect(run.taskEnded(ended("a", "FAIL"), 2)).toEqual({ actions: [] })
    expect(run.taskEnded(ended("d", "OK"), 3)).toEqual({
      actions: [],
      finished: { state: "OK", reason: "quorum of 2 of 4 reached: c, d ended OK; 1 task not ended is cancelled" }
    })
    // The finished job's live tasks are exactly what the conductor cancels.
    expect([...run.live.keys()]).toEqual(["b"])
  })

  it("3 of 4: FAIL at the second failure, k being out of reach", () => {
    const { run } = start(["a", "b", "c", "d"], 3)
    run.taskEnded(ended("a", "HOST_ERROR"), 1)
    expect(run.taskEnded(ended("b", "TIMEOUT"), 2).finished).toEqual({
      state: "FAIL",
      reason: "quorum of 3 of 4 out of reach: 2 failed (a: HOST_ERROR, b: TIMEOUT), at most 1 may; 2 tasks not ended are cancelled"
    })
  })

  it("k > n fails at start; k = n needs every target", () => {
    expect(start(["a", "b"], 3).step.finished).toEqual({
      state: "FAIL",
      reason: "a quorum of 3 cannot be reached: the job targets 2 players"
    })
    const { run } = start(["a", "b"], 2)
    run.taskEnded(ended("a", "OK"), 1)
    expect(run.taskEnded(ended("b", "OK"), 2).finished).toEqual({ state: "OK", reason: "quorum of 2 of 2 reached: a, b ended OK" })
  })

  it("inside a stage, the tasks left when the quorum is reached are cancelled before the next stage starts", () => {
    const registry = Either.getOrThrow(PluginRegistry.Registry.make([policyStages(), plugin, policyAllOf()]))
    const result = simulate(policyStages(), {
      seed: 11,
      players: ["a", "b", "c", "d", "e"],
      options: {
        stages: [
          { name: "vote", players: ["a", "b", "c", "d"], policy: { name: "quorum", options: { k: 2 } } },
          { name: "apply", players: ["e"], policy: { name: "all-of" } }
        ]
      },
      policies: registry.policies,
      latency: (_rng, a) => ({ a: 10, b: 500, c: 20, d: 800, e: 10 })[a.player as string] ?? 10,
      trace: true
    })
    expect(result.finished).toEqual({ state: "OK" })
    const at20 = result.trace.filter((e) => e.at === 20 && (e._tag === "Cancel" || e._tag === "Run"))
    expect(at20.map((e) => `${e._tag} ${"key" in e ? e.key : ""}`)).toEqual(["Cancel s0:b", "Cancel s0:d", "Run s1:e"])
    expect(result.durationMs).toBe(30)
  })

  it("the built file loads by path, as the conductor's `plugins:` does, and runs", async () => {
    const here = path.dirname(fileURLToPath(import.meta.url))
    const file = path.resolve(here, "../dist/quorum.js")
    const mod = (await import(pathToFileURL(file).href)) as { readonly default: unknown }
    const plugins = Either.getOrThrow(PluginRegistry.pluginsOf("policies/dist/quorum.js", mod.default))
    expect(plugins.map((x) => [x.kind, x.name])).toEqual([["policy", "quorum"]])
    expect(quorumDefault).toBe(policyQuorum)
    const registry = Either.getOrThrow(PluginRegistry.Registry.make(plugins))
    const loaded = Either.getOrThrow(registry.get("policy", "quorum"))
    const result = simulate(loaded, { seed: 1, players: 5, options: { k: 3 }, outcome: byPlayer({ p1: "FAIL" }), latency: fixedLatency(5) })
    expect(result.finished?.state).toBe("OK")
    expect(result.steps).toBe(4)
  })
})
