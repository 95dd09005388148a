/**
 * Tests of the simulator the policy conformance suite (and later
 * `orchestra simulate`) is built on: its random numbers, its outcome and
 * latency models, and its simulated conductor — queue order with `front`,
 * cancellation of queued and running tasks, slots, churn (offline players
 * get nothing new and report late), determinism and summaries.
 */
import { describe, expect, it } from "@effect/vitest"
import type { Outcome } from "@orchestra/core"
import { Names, Policy } from "@orchestra/core"
import { Schema } from "effect"
import type { TraceEvent } from "./conformance/Simulation.js"
import {
  always,
  byPlayer,
  deriveSeed,
  fixedLatency,
  makeRng,
  simulate,
  simulateMany,
  summarize,
  uniformLatency,
  weighted
} from "./conformance/Simulation.js"

const k = Names.taskKey
const Run = (key: string, players: ReadonlyArray<Names.PlayerName>, front = false): Policy.RunTask => ({
  _tag: "Run",
  key: k(key),
  players,
  front
})
const of = <T extends TraceEvent["_tag"]>(trace: ReadonlyArray<TraceEvent>, tag: T) =>
  trace.filter((e): e is Extract<TraceEvent, { _tag: T }> => e._tag === tag)

/** A test policy with state `S`. */
const policy = <S>(
  start: Policy.Policy<{}, {}, S>["start"],
  onTaskEnded: Policy.Policy<{}, {}, S>["onTaskEnded"]
): Policy.PolicyPlugin => Policy.make({ name: "test", description: "test", options: Schema.Struct({}), start, onTaskEnded })

/** Every target runs one task; done when all ended. */
const everyone = policy<number>(
  (c) => ({ state: c.players.length, actions: c.players.map((p) => Run(p, [p])) }),
  (left) => (left > 1 ? { state: left - 1, actions: [] } : { state: 0, actions: [], finished: { state: "OK" } })
)

describe("random numbers", () => {
  it("are determined by the seed", () => {
    const draw = (seed: number) => {
      const r = makeRng(seed)
      return Array.from({ length: 20 }, () => r.next())
    }
    expect(draw(7)).toEqual(draw(7))
    expect(draw(7)).not.toEqual(draw(8))
    expect(draw(7).every((x) => x >= 0 && x < 1)).toBe(true)
    expect(makeRng(7).seed).toBe(7)
  })

  it("int covers both bounds, pick refuses an empty array, seeds derive apart", () => {
    const r = makeRng(1)
    const seen = new Set<number>()
    for (let i = 0; i < 1000; i++) seen.add(r.int(1, 6))
    expect([...seen].sort()).toEqual([1, 2, 3, 4, 5, 6])
    expect(() => r.pick([])).toThrow(RangeError)
    const seeds = new Set(Array.from({ length: 10_000 }, (_, i) => deriveSeed(99, i)))
    expect(seeds.size).toBe(10_000)
    expect(deriveSeed(99, 5)).toBe(deriveSeed(99, 5))
  })

  it("exponential draws have about the mean asked for", () => {
    const r = makeRng(3)
    let sum = 0
    for (let i = 0; i < 20_000; i++) sum += r.exponential(100)
    expect(sum / 20_000).toBeGreaterThan(95)
    expect(sum / 20_000).toBeLessThan(105)
  })
})

describe("models", () => {
  it("weighted draws outcomes in proportion, never one of weight 0", () => {
    const model = weighted({ OK: 3, FAIL: 1, TIMEOUT: 0 })
    const r = makeRng(11)
    const counts: Partial<Record<Outcome.Outcome, number>> = {}
    const context = { key: k("0"), player: Names.playerName("a"), attempt: 1, playerAttempt: 1, at: 0 }
    for (let i = 0; i < 10_000; i++) {
      const o = model(r, context)
      counts[o] = (counts[o] ?? 0) + 1
    }
    expect(Object.keys(counts).sort()).toEqual(["FAIL", "OK"])
    expect(counts.OK! / 10_000).toBeGreaterThan(0.72)
    expect(counts.OK! / 10_000).toBeLessThan(0.78)
    expect(() => weighted({ OK: 0 })).toThrow(RangeError)
  })

  it("byPlayer follows each player's own sequence of attempts, the last repeating", () => {
    const model = byPlayer({ a: ["HOST_ERROR", "OK"], b: "FAIL" }, always("TIMEOUT"))
    const r = makeRng(1)
    const at = (player: string, playerAttempt: number) =>
      model(r, { key: k("x"), player: Names.playerName(player), attempt: 9, playerAttempt, at: 0 })
    expect([at("a", 1), at("a", 2), at("a", 3), at("b", 1), at("c", 1)]).toEqual(["HOST_ERROR", "OK", "OK", "FAIL", "TIMEOUT"])
  })
})

describe("simulate", () => {
  it("runs every task and reports time, steps, dispatches and outcomes", () => {
    const result = simulate(everyone, { seed: 1, players: 4, latency: fixedLatency(25), trace: true })
    expect(result.status).toBe("finished")
    expect(result.finished).toEqual({ state: "OK" })
    expect(result.targets).toEqual(["p1", "p2", "p3", "p4"])
    expect(result.durationMs).toBe(25)
    expect(result.steps).toBe(4)
    expect(result.dispatches).toBe(4)
    expect(result.maxLive).toBe(4)
    expect(result.outcomes.OK).toBe(4)
    expect(of(result.trace, "Finished")).toEqual([{ _tag: "Finished", at: 25, state: "OK" }])
  })

  it("collapses duplicate targets, as the conductor does", () => {
    const result = simulate(everyone, { seed: 1, players: ["b", "a", "b"] })
    expect(result.targets).toEqual(["b", "a"])
    expect(result.steps).toBe(2)
  })

  it("is deterministic: the same config gives the same run, another seed another run", () => {
    const config = {
      players: 12,
      outcome: weighted({ OK: 1, FAIL: 1 }),
      latency: uniformLatency(0, 100),
      churn: { offlineAtStart: 0.5, meanOnlineMs: 30, meanOfflineMs: 30, maxOfflineMs: 100 },
      trace: true
    }
    expect(JSON.stringify(simulate(everyone, { ...config, seed: 5 }))).toBe(JSON.stringify(simulate(everyone, { ...config, seed: 5 })))
    expect(JSON.stringify(simulate(everyone, { ...config, seed: 5 }).trace)).not.toBe(JSON.stringify(simulate(everyone, { ...config, seed: 6 }).trace))
  })

  it("a task queued at the front goes before the tasks already waiting", () => {
    // One player with one slot: t1 runs, t2 waits; when t1 ends, t3 comes in at the front.
    const plugin = policy<number>(
      (c) => ({ state: 0, actions: [Run("t1", c.players), Run("t2", c.players)] }),
      (n, e) =>
        e.key === "t1"
          ? { state: n + 1, actions: [Run("t3", [e.player], true)] }
          : n + 1 < 3
          ? { state: n + 1, actions: [] }
          : { state: n + 1, actions: [], finished: { state: "OK" } }
    )
    const result = simulate(plugin, { seed: 1, players: ["solo"], latency: fixedLatency(10), trace: true })
    expect(of(result.trace, "Dispatch").map((e) => [e.key, e.at])).toEqual([["t1", 0], ["t3", 10], ["t2", 20]])
    expect(result.finished?.state).toBe("OK")
  })

  it("with pick first, a task goes to the first eligible player in its order", () => {
    const plugin = policy<number>(
      (c) => ({ state: 0, actions: [Run("0", [...c.players].reverse())] }),
      (s) => ({ state: s, actions: [], finished: { state: "OK" } })
    )
    const result = simulate(plugin, { seed: 1, players: ["a", "b", "c"], pick: "first", trace: true })
    expect(of(result.trace, "Dispatch").map((e) => e.player)).toEqual(["c"])
    const players = new Set<string>()
    for (let seed = 0; seed < 60; seed++) {
      const r = simulate(plugin, { seed, players: ["a", "b", "c"], pick: "random", trace: true })
      for (const d of of(r.trace, "Dispatch")) players.add(d.player)
    }
    expect([...players].sort()).toEqual(["a", "b", "c"])
  })

  it("a player runs as many tasks at once as it has slots", () => {
    const plugin = policy<number>(
      (c) => ({ state: 3, actions: ["x", "y", "z"].map((key) => Run(key, c.players)) }),
      (left) => (left > 1 ? { state: left - 1, actions: [] } : { state: 0, actions: [], finished: { state: "OK" } })
    )
    const two = simulate(plugin, { seed: 1, players: ["solo"], slots: 2, latency: fixedLatency(10), trace: true })
    expect(of(two.trace, "Dispatch").map((e) => [e.key, e.at])).toEqual([["x", 0], ["y", 0], ["z", 10]])
    expect(two.durationMs).toBe(20)
  })

  it("a Cancel of a queued task ends it CANCELLED at once, never dispatched", () => {
    const plugin = policy<string>(
      (c) => ({ state: "run", actions: [Run("t1", c.players), Run("t2", c.players)] }),
      (s, e) =>
        e.key === "t1"
          ? { state: "cancel", actions: [{ _tag: "Cancel", key: k("t2") }] }
          : { state: s, actions: [], finished: { state: e.outcome === "CANCELLED" ? "CANCELLED" : "FAIL", reason: s } }
    )
    const result = simulate(plugin, { seed: 1, players: ["solo"], slots: 1, latency: fixedLatency(10), trace: true })
    expect(of(result.trace, "Dispatch").map((e) => e.key)).toEqual(["t1"])
    expect(of(result.trace, "Ended").map((e) => [e.key, e.outcome, e.dispatched, e.at])).toEqual([
      ["t1", "OK", true, 10],
      ["t2", "CANCELLED", false, 10]
    ])
    expect(result.finished).toEqual({ state: "CANCELLED", reason: "cancel" })
  })

  it("a Cancel of a running task ends it CANCELLED; its own result never reaches the policy", () => {
    const plugin = policy<number>(
      (c) => ({ state: 0, actions: c.players.map((p) => Run(p, [p])) }),
      (n, e) =>
        n === 0
          ? { state: 1, actions: [{ _tag: "Cancel", key: k(e.key === "fast" ? "slow" : "fast") }] }
          : { state: 2, actions: [], finished: { state: "PARTIAL_FAIL", reason: `${e.key}: ${e.outcome}` } }
    )
    const result = simulate(plugin, {
      seed: 1,
      players: ["fast", "slow"],
      latency: (_r, a) => (a.player === "fast" ? 5 : 500),
      trace: true
    })
    expect(of(result.trace, "Ended").map((e) => [e.key, e.outcome, e.at])).toEqual([["fast", "OK", 5], ["slow", "CANCELLED", 5]])
    expect(result.finished?.reason).toBe("slow: CANCELLED")
    expect(result.durationMs).toBe(5)
  })

  it("churn: an offline player gets no task, and its results reach the policy only once it is back", () => {
    let delayed = 0
    for (let seed = 0; seed < 200; seed++) {
      const result = simulate(everyone, {
        seed,
        players: 6,
        latency: uniformLatency(0, 50),
        churn: { offlineAtStart: 0.5, meanOnlineMs: 20, meanOfflineMs: 40, maxOfflineMs: 80 },
        trace: true
      })
      expect(result.finished?.state).toBe("OK")
      const online = new Map(result.targets.map((t) => [t as string, true]))
      // Players offline at start are those whose first toggle is Online.
      for (const t of result.targets) {
        const first = result.trace.find((e) => (e._tag === "Online" || e._tag === "Offline") && e.player === t)
        if (first?._tag === "Online") online.set(t, false)
      }
      const doneAt = new Map<string, number>()
      for (const e of result.trace) {
        if (e._tag === "Online") online.set(e.player, true)
        else if (e._tag === "Offline") online.set(e.player, false)
        else if (e._tag === "Dispatch") {
          expect(online.get(e.player), `dispatch to offline ${e.player} (seed ${seed})`).toBe(true)
          doneAt.set(e.key, e.at)
        } else if (e._tag === "Ended") {
          expect(online.get(e.player), `result from offline ${e.player} (seed ${seed})`).toBe(true)
          if (e.at - doneAt.get(e.key)! > 50) delayed++
        }
      }
    }
    expect(delayed).toBeGreaterThan(0)
  })

  it("stops a policy that never lets its job end at the event limit", () => {
    // Re-plans and cancels the same task forever.
    const forever = policy<number>(
      (c) => ({ state: 0, actions: [Run("0", c.players)] }),
      (n, e) => ({ state: n + 1, actions: [Run(e.key, [e.player]), { _tag: "Cancel", key: e.key }] })
    )
    const result = simulate(forever, { seed: 1, players: 1, maxEvents: 500 })
    expect(result.status).toBe("event-limit")
    expect(result.finished).toBeUndefined()
    expect(result.steps).toBeGreaterThan(100)
  })

  it("a policy that fails at start finishes the simulation at once", () => {
    const broken = Policy.make({
      name: "needs-options",
      description: "test",
      options: Schema.Struct({ batch: Schema.Int }),
      start: () => ({ state: 0, actions: [] }),
      onTaskEnded: (s) => ({ state: s, actions: [] })
    })
    const result = simulate(broken, { seed: 1, players: 3, options: { batch: "two" } })
    expect(result.status).toBe("finished")
    expect(result.finished?.state).toBe("FAIL")
    expect(result.steps).toBe(0)
    expect(result.dispatches).toBe(0)
  })
})

describe("summaries", () => {
  it("simulateMany sums many runs: states, outcomes and completion times", () => {
    const failing = policy<{ readonly left: number; readonly ok: number }>(
      (c) => ({ state: { left: c.players.length, ok: 0 }, actions: c.players.map((p) => Run(p, [p])) }),
      (s, e) => {
        const next = { left: s.left - 1, ok: s.ok + (e.outcome === "OK" ? 1 : 0) }
        if (next.left > 0) return { state: next, actions: [] }
        return { state: next, actions: [], finished: { state: next.ok === 3 ? "OK" : "FAIL", reason: "not all OK" } }
      }
    )
    const summary = simulateMany(failing, { seed: 4, players: 3, outcome: weighted({ OK: 4, FAIL: 1 }), latency: uniformLatency(10, 20) }, 500)
    expect(summary.runs).toBe(500)
    expect(summary.states.OK + summary.states.FAIL).toBe(500)
    expect(summary.states.OK).toBeGreaterThan(0)
    expect(summary.states.FAIL).toBeGreaterThan(0)
    expect(summary.steps).toBe(1500)
    expect(summary.outcomes.OK + summary.outcomes.FAIL).toBe(1500)
    expect(summary.dispatches).toBe(1500)
    expect(summary.durationMs.min).toBeGreaterThanOrEqual(10)
    expect(summary.durationMs.max).toBeLessThanOrEqual(20)
    expect(summary.durationMs.p50).toBeGreaterThanOrEqual(summary.durationMs.min)
    expect(summary.durationMs.p95).toBeGreaterThanOrEqual(summary.durationMs.p50)
    expect(summary.durationMs.max).toBeGreaterThanOrEqual(summary.durationMs.p95)
  })

  it("an empty summary is all zeros", () => {
    const s = summarize([])
    expect(s.runs).toBe(0)
    expect(s.durationMs).toEqual({ min: 0, mean: 0, p50: 0, p95: 0, max: 0 })
  })
})
