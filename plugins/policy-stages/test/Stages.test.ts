/**
 * Tests of the `stages` policy: the conformance suite over 10,000 simulated
 * jobs of random stages (one-of, all-of, rolling and a policy that leaves
 * tasks live when it finishes), with stages' own invariants checked against
 * an independent replay of every stage's inner policy; and examples of its
 * exact semantics, including inner policies that misbehave.
 */
import { describe, expect, it } from "@effect/vitest"
import type { Outcome } from "@orchestra/core"
import { JobState, Names, PluginRegistry, Policy, PolicyRun } from "@orchestra/core"
import type { SimulatedJob } from "@orchestra/core/testing/PolicySuite"
import { policySuite } from "@orchestra/core/testing/PolicySuite"
import type { Rng, TraceEvent } from "@orchestra/core/testing/Simulation"
import { always, byPlayer, fixedLatency, simulate } from "@orchestra/core/testing/Simulation"
import { policyAllOf } from "@orchestra/policy-all-of"
import { policyOneOf } from "@orchestra/policy-one-of"
import { policyRolling } from "@orchestra/policy-rolling"
import defaultExport, { policyStages, Stages } from "@orchestra/policy-stages"
import { Either, Schema } from "effect"
import assert from "node:assert/strict"

const p = Names.playerName
const k = Names.taskKey

/** A test policy: one task per player, all at once; finishes OK on the first OK, leaving the others live. */
const firstOk = Policy.make<{}, {}, number>({
  name: "first-ok",
  description: "finishes on the first OK",
  options: Policy.NoOptions("first-ok"),
  start: ({ players }) => ({ state: players.length, actions: players.map((pl) => ({ _tag: "Run", key: k(pl), players: [pl] })) }),
  onTaskEnded: (left, e) =>
    e.outcome === "OK"
      ? { state: left - 1, actions: [], finished: { state: "OK" } }
      : left > 1
      ? { state: left - 1, actions: [] }
      : { state: 0, actions: [], finished: { state: "FAIL", reason: "no task ended OK" } }
})

const plugin = policyStages()
const registry = Either.getOrThrow(
  PluginRegistry.Registry.make([plugin, policyOneOf(), policyAllOf(), policyRolling(), firstOk])
)
const policies = registry.policies

const continueOns: ReadonlyArray<unknown> = [
  undefined,
  "OK",
  "PARTIAL_FAIL",
  "ANY",
  ["OK"],
  ["FAIL"],
  ["OK", "FAIL"],
  ["PARTIAL_FAIL", "CANCELLED"]
]

/** Random valid stages over these targets (no labels in the suite: selectors are `{}` or match nothing). */
const randomOptions = (rng: Rng, targets: ReadonlyArray<Names.PlayerName>): unknown => {
  const count = rng.int(1, 4)
  const stages = Array.from({ length: count }, (_, i) => {
    const stage: Record<string, unknown> = {}
    if (rng.bool(0.5)) stage.name = rng.pick(["canary", "rollout", "check", `s${i}`])
    const r = rng.next()
    if (targets.length > 0 && r < 0.55) {
      stage.players = Array.from({ length: rng.int(1, Math.min(4, targets.length)) }, () => rng.pick(targets))
    } else if (r < 0.65) {
      stage.selector = rng.bool(0.9) ? {} : { role: "nowhere" }
    }
    const policy = rng.pick(["one-of", "all-of", "rolling", "first-ok"])
    stage.policy = policy === "rolling"
      ? { name: policy, options: { batch: rng.bool() ? rng.int(1, 3) : "50%", maxFailures: rng.int(0, 2) } }
      : rng.bool()
      ? { name: policy }
      : { name: policy, options: {} }
    const continueOn = rng.pick(continueOns)
    if (continueOn !== undefined) stage.continueOn = continueOn
    return stage
  })
  return { stages }
}

type Run = Extract<TraceEvent, { _tag: "Run" }>
type Ended = Extract<TraceEvent, { _tag: "Ended" }>

const parseKey = (key: string): { readonly stage: number; readonly inner: string } => {
  const m = /^s(\d+):(.+)$/s.exec(key)
  assert.ok(m !== null, `task key ${key} is not namespaced by its stage`)
  return { stage: Number(m[1]), inner: m[2]! }
}

const allowedStates = (continueOn: unknown): ReadonlyArray<string> =>
  continueOn === undefined || continueOn === "OK"
    ? ["OK"]
    : continueOn === "PARTIAL_FAIL"
    ? ["OK", "PARTIAL_FAIL"]
    : continueOn === "ANY"
    ? ["OK", "PARTIAL_FAIL", "FAIL", "CANCELLED"]
    : (continueOn as ReadonlyArray<string>)

const aggregateOf = (states: ReadonlyArray<string>): string =>
  states.every((s) => s === "OK") ? "OK" : states.every((s) => s === "FAIL" || s === "CANCELLED") ? "FAIL" : "PARTIAL_FAIL"

interface StageOptions {
  readonly name?: string
  readonly players?: ReadonlyArray<string>
  readonly selector?: Readonly<Record<string, string>>
  readonly policy: { readonly name: string; readonly options?: unknown }
  readonly continueOn?: unknown
}

/** The groups, computed independently of the policy (no labels: `{}` matches all, any other selector none). */
const expectedGroups = (stages: ReadonlyArray<StageOptions>, targets: ReadonlyArray<string>): ReadonlyArray<ReadonlyArray<string>> => {
  const claimed = new Set<string>()
  const explicit = stages.map((s) => {
    if (s.players === undefined && s.selector === undefined) return undefined
    const all = s.selector !== undefined && Object.keys(s.selector).length === 0
    const g = targets.filter((t) => all || (s.players ?? []).includes(t))
    g.forEach((t) => claimed.add(t))
    return g
  })
  return explicit.map((g) => g ?? targets.filter((t) => !claimed.has(t)))
}

/** What the simulated jobs covered, counted by the invariants. */
const covered = { jobs: 0, failedAtStart: 0, stopped: 0, allRan: 0, severalStages: 0, leftoversCancelled: 0 }

/** stages' own invariants, on every simulated job. */
const stagesInvariants = (job: SimulatedJob): void => {
  covered.jobs++
  const { result, targets } = job
  const stages = (job.options as { readonly stages: ReadonlyArray<StageOptions> }).stages
  const groups = expectedGroups(stages, targets)
  const { state, reason } = result.finished!

  // A stage that matches nothing: the job fails at start, naming it, and runs nothing.
  const empty = groups.findIndex((g) => g.length === 0)
  if (empty >= 0) {
    assert.equal(state, "FAIL")
    assert.equal(result.dispatches, 0, "nothing ran")
    assert.ok(reason?.startsWith(`stage ${empty + 1}`), `reason names the stage: ${reason}`)
    covered.failedAtStart++
    return
  }

  // Walk the trace: stage order, stages never overlapping, tasks only in their group.
  const runs: Array<Array<Run>> = stages.map(() => [])
  const ends: Array<Array<{ readonly index: number; readonly event: Ended }>> = stages.map(() => [])
  const live = new Map<string, { readonly stage: number; cancelled: boolean }>()
  let current = -1
  for (const [index, e] of result.trace.entries()) {
    if (e._tag === "Run") {
      const { stage } = parseKey(e.key)
      assert.ok(stage < stages.length, `stage ${stage} does not exist`)
      assert.ok(stage >= current, `stage ${stage} planned a task after stage ${current} had started`)
      if (stage > current) {
        // A stage starts only once the previous one finished: its tasks all ended or cancelled.
        assert.equal(stage, current + 1, "stages start in order, none missed")
        for (const [key, t] of live) {
          assert.ok(t.stage === stage || t.cancelled, `stage ${stage} started while task ${key} of stage ${t.stage} was live`)
        }
        current = stage
      }
      for (const pl of e.players) assert.ok(groups[stage]!.includes(pl), `task ${e.key} offered to ${pl}, not in stage ${stage}`)
      runs[stage]!.push(e)
      live.set(e.key, { stage, cancelled: false })
    } else if (e._tag === "Cancel") {
      const t = live.get(e.key)
      if (t !== undefined) t.cancelled = true
      if (t !== undefined && t.stage < stages.length - 1) covered.leftoversCancelled++
    } else if (e._tag === "Dispatch") {
      const { stage } = parseKey(e.key)
      assert.equal(stage, current, `a task of stage ${stage} was dispatched while stage ${current} ran`)
    } else if (e._tag === "Ended") {
      const t = live.get(e.key)
      assert.ok(t !== undefined)
      live.delete(e.key)
      ends[t.stage]!.push({ index, event: e })
      // A leftover of an earlier stage was cancelled when its stage finished (its outcome may
      // still be another one: it may have ended before the cancel reached its player).
      if (t.stage < current) assert.ok(t.cancelled, `task ${e.key} of stage ${t.stage} was live after its stage, not cancelled`)
    }
  }
  const started = current + 1
  assert.ok(started >= 1, "the first stage started")
  if (started >= 2) covered.severalStages++

  // Replay every stage that ran into its own inner policy: the stage planned exactly what it
  // planned, and ended as it did; a stage ends at the outcome that finished its inner policy.
  const states: Array<string> = []
  for (let i = 0; i < started; i++) {
    const inner = policies(stages[i]!.policy.name)!
    const { run, step } = PolicyRun.PolicyRun.start(inner, stages[i]!.policy.options ?? {}, {
      job: Names.jobId(1),
      score: Names.scoreName("simulated"),
      players: groups[i]!.map(p),
      now: 0,
      policies
    })
    const planned = [...step.actions]
    let finishedAt: number | undefined
    for (const { index, event } of ends[i]!) {
      if (run.finished !== undefined) break
      const s = run.taskEnded({ ...event, key: k(parseKey(event.key).inner), response: {} }, event.at)
      planned.push(...s.actions)
      if (run.finished !== undefined) finishedAt = index
    }
    assert.ok(run.finished !== undefined, `stage ${i}'s inner policy did not finish on the stage's outcomes`)
    const asRuns = planned.filter((a) => a._tag === "Run").map((a) => [`s${i}:${a.key}`, a.players, a._tag === "Run" && a.front === true])
    assert.deepEqual(runs[i]!.map((r) => [r.key, r.players, r.front]), asRuns, `stage ${i} planned what its policy planned`)
    states.push(run.finished.state)
    if (i + 1 < started) {
      // continueOn honoured, and the next stage started at the outcome that finished this one.
      assert.ok(allowedStates(stages[i]!.continueOn).includes(run.finished.state), `stage ${i} ended ${run.finished.state}, continueOn ${JSON.stringify(stages[i]!.continueOn)}`)
      const next = result.trace.findIndex((e) => e._tag === "Run" && e.key.startsWith(`s${i + 1}:`))
      const between = result.trace.slice((finishedAt ?? -1) + 1, next)
      assert.ok(finishedAt !== undefined && between.every((e) => e._tag === "Cancel"), `stage ${i + 1} started right after stage ${i} finished`)
    }
  }

  // The job's state: the aggregate of the stages that ran; skipped stages say so.
  assert.equal(state, aggregateOf(states), `aggregate of ${states.join(", ")}`)
  if (started < stages.length) {
    assert.ok(!allowedStates(stages[started - 1]!.continueOn).includes(states[started - 1]!), "stopped although continueOn allowed going on")
    assert.ok(reason?.includes("skipped"), `reason says stages were skipped: ${reason}`)
    assert.ok(reason?.startsWith(`${Stages.label(stages, started - 1)} ended ${states[started - 1]}`), `reason: ${reason}`)
    for (let i = started; i < stages.length; i++) assert.equal(runs[i]!.length, 0, `skipped stage ${i} ran a task`)
    covered.stopped++
  } else {
    if (state === "OK") assert.equal(reason, undefined)
    covered.allRan++
  }
}

policySuite(plugin, {
  options: randomOptions,
  runs: 10_000,
  policies,
  requireReasonOn: ["FAIL", "PARTIAL_FAIL"],
  reachableStates: ["OK", "PARTIAL_FAIL", "FAIL"],
  maxSteps: (n) => 4 * n + 10,
  invalidOptions: [
    "stages",
    7,
    {},
    { stages: [] },
    { stages: [{}] },
    { stages: [{ policy: {} }] },
    { stages: [{ policy: { name: "all-of" }, continueOn: "SOMETIMES" }] },
    { stages: [{ policy: { name: "all-of" }, continueOn: [] }] },
    { stages: [{ policy: { name: "all-of" }, continueOn: ["PENDING"] }] },
    { stages: [{ policy: { name: "all-of" }, players: "a" }] },
    { stages: [{ policy: { name: "all-of" }, selector: { "bad key!": "x" } }] },
    { stages: [{ policy: { name: "all-of" }, extra: 1 }] },
    { stages: [{ policy: { name: "all-of", extra: 1 } }] }
  ],
  invariants: stagesInvariants
})

describe("the simulated stages jobs", () => {
  it("covered failures at start, stopped jobs, completed jobs, several stages and cancelled leftovers", (ctx) => {
    if (covered.jobs < 10_000) ctx.skip() // a single job replayed (ORCHESTRA_POLICY_JOB), or the suite filtered out
    expect(covered.failedAtStart).toBeGreaterThan(100)
    expect(covered.stopped).toBeGreaterThan(1000)
    expect(covered.allRan).toBeGreaterThan(1000)
    expect(covered.severalStages).toBeGreaterThan(1000)
    expect(covered.leftoversCancelled).toBeGreaterThan(100)
  })
})

// ---- examples ---------------------------------------------------------------

const start = (
  players: ReadonlyArray<string>,
  stages: ReadonlyArray<unknown>,
  lookup: Policy.PolicyLookup = policies,
  labels: Readonly<Record<string, Record<string, string>>> = {}
) =>
  PolicyRun.PolicyRun.start(plugin, { stages }, {
    job: Names.jobId(9),
    score: Names.scoreName("deploy"),
    players: players.map(p),
    labels: new Map(Object.entries(labels).map(([n, l]) => [p(n), l])),
    now: 1000,
    policies: lookup
  })

const ended = (key: string, player: string, outcome: Outcome.Outcome, attempt = 1) => ({
  key: k(key),
  player: p(player),
  attempt,
  outcome,
  response: {}
})

const Run = (key: string, players: ReadonlyArray<string>, front = false) => ({ _tag: "Run", key, players, front })

const canaryThenRollout = [
  { name: "canary", players: ["a"], policy: { name: "all-of" } },
  { name: "rollout", policy: { name: "rolling", options: { batch: 2 } } }
]

describe("stages semantics", () => {
  it("is exported as default and named, under the name stages", () => {
    expect(defaultExport).toBe(policyStages)
    expect(plugin.name).toBe("stages")
    const plugins = Either.getOrThrow(PluginRegistry.pluginsOf("@orchestra/policy-stages", defaultExport))
    expect(plugins.map((x) => x.name)).toEqual(["stages"])
  })

  it("canary then rollout: stage 2 starts only when stage 1 has finished OK, with its keys namespaced", () => {
    const { run, step } = start(["a", "b", "c", "d"], canaryThenRollout)
    expect(step.actions).toEqual([Run("s0:a", ["a"])])
    const s = run.taskEnded(ended("s0:a", "a", "OK"), 1001)
    // The rollout stage is every target no other stage names: b, c, d, in batches of 2.
    expect(s.actions).toEqual([Run("s1:b", ["b"]), Run("s1:c", ["c"])])
    run.taskEnded(ended("s1:b", "b", "OK"), 1002)
    expect(run.taskEnded(ended("s1:c", "c", "OK"), 1003).actions).toEqual([Run("s1:d", ["d"])])
    expect(run.taskEnded(ended("s1:d", "d", "OK"), 1004)).toEqual({ actions: [], finished: { state: "OK" } })
  })

  it("a canary that fails skips the rollout: nothing of stage 2 ever runs, and the reason says so", () => {
    const result = simulate(plugin, {
      seed: 3,
      players: ["a", "b", "c", "d"],
      options: { stages: canaryThenRollout },
      policies,
      outcome: byPlayer({ a: "FAIL" }),
      trace: true
    })
    expect(result.finished).toEqual({
      state: "FAIL",
      reason: "stage 1 (canary) ended FAIL (1 of 1 players did not end OK (1 FAIL): a: FAIL): stage 2 (rollout) skipped"
    })
    expect(result.trace.filter((e) => e._tag === "Run").map((e) => e._tag === "Run" && e.key)).toEqual(["s0:a"])
    expect(result.dispatches).toBe(1)
  })

  it("three stages, the second failing: the third is skipped, the state is the aggregate of the two run", () => {
    const { run } = start(["a", "b", "c", "d"], [
      { name: "prepare", players: ["a", "b", "c", "d"], policy: { name: "all-of" } },
      { name: "canary", players: ["b"], policy: { name: "one-of" } },
      { name: "rollout", players: ["c", "d"], policy: { name: "all-of" } },
      { players: ["a"], policy: { name: "all-of" } }
    ])
    for (const n of ["a", "b", "c", "d"]) run.taskEnded(ended(`s0:${n}`, n, "OK"), 1001)
    const s = run.taskEnded(ended("s1:0", "b", "FAIL"), 1002)
    expect(s.finished).toEqual({
      state: "PARTIAL_FAIL",
      reason: "stage 2 (canary) ended FAIL (the task ended FAIL on b): stages 3 (rollout), 4 skipped"
    })
  })

  it("continueOn PARTIAL_FAIL lets a partly failed stage go on; the job is PARTIAL_FAIL naming it", () => {
    const stages = [
      { name: "first", players: ["a", "b"], policy: { name: "all-of" }, continueOn: "PARTIAL_FAIL" },
      { name: "second", players: ["c"], policy: { name: "all-of" } }
    ]
    const { run } = start(["a", "b", "c"], stages)
    run.taskEnded(ended("s0:a", "a", "OK"), 1001)
    expect(run.taskEnded(ended("s0:b", "b", "TIMEOUT"), 1002).actions).toEqual([Run("s1:c", ["c"])])
    const s = run.taskEnded(ended("s1:c", "c", "OK"), 1003)
    expect(s.finished?.state).toBe("PARTIAL_FAIL")
    expect(s.finished?.reason).toBe(
      "stage 1 (first) PARTIAL_FAIL (1 of 2 players did not end OK (1 OK, 1 TIMEOUT): b: TIMEOUT); stage 2 (second) OK"
    )
    // With the default continueOn, the same PARTIAL_FAIL stops the job.
    const strict = start(["a", "b", "c"], stages.map((x) => ({ ...x, continueOn: "OK" }))).run
    strict.taskEnded(ended("s0:a", "a", "OK"), 1001)
    const stopped = strict.taskEnded(ended("s0:b", "b", "TIMEOUT"), 1002)
    expect(stopped.actions).toEqual([])
    expect(stopped.finished?.reason).toMatch(/^stage 1 \(first\) ended PARTIAL_FAIL .*: stage 2 \(second\) skipped$/)
  })

  it("continueOn ANY goes on after a FAIL; every stage failed is FAIL", () => {
    const { run } = start(["a", "b"], [
      { players: ["a"], policy: { name: "one-of" }, continueOn: "ANY" },
      { players: ["b"], policy: { name: "one-of" } }
    ])
    expect(run.taskEnded(ended("s0:0", "a", "FAIL"), 1001).actions).toEqual([Run("s1:0", ["b"])])
    expect(run.taskEnded(ended("s1:0", "b", "FAIL"), 1002).finished?.state).toBe("FAIL")
  })

  it("continueOn [FAIL]: a fallback stage runs only when the previous one failed", () => {
    const stages = [
      { name: "try", players: ["a"], policy: { name: "one-of" }, continueOn: ["FAIL"] },
      { name: "fallback", players: ["b"], policy: { name: "one-of" } }
    ]
    const ok = start(["a", "b"], stages).run
    expect(ok.taskEnded(ended("s0:0", "a", "OK"), 1001).finished).toEqual({
      state: "OK",
      reason: "stage 1 (try) ended OK: stage 2 (fallback) skipped"
    })
    const failed = start(["a", "b"], stages).run
    expect(failed.taskEnded(ended("s0:0", "a", "FAIL"), 1001).actions).toEqual([Run("s1:0", ["b"])])
    expect(failed.taskEnded(ended("s1:0", "b", "OK"), 1002).finished?.state).toBe("PARTIAL_FAIL")
  })

  it("one-of inside a stage fails over: a soft outcome requeues the stage's task at the head for the next player", () => {
    const result = simulate(plugin, {
      seed: 4,
      players: ["a", "b", "c"],
      options: {
        stages: [
          { name: "any web", players: ["a", "b"], policy: { name: "one-of" } },
          { name: "db", players: ["c"], policy: { name: "one-of" } }
        ]
      },
      policies,
      outcome: byPlayer({ a: "UNK_SCORE" }),
      latency: fixedLatency(10),
      trace: true
    })
    expect(result.finished).toEqual({ state: "OK" })
    const runs = result.trace.filter((e): e is Run => e._tag === "Run")
    expect(runs.map((r) => [r.at, r.key, r.players, r.front])).toEqual([
      [0, "s0:0", ["a", "b"], false],
      [10, "s0:0", ["b"], true],
      [20, "s1:0", ["c"], false]
    ])
  })

  it("selects a stage's players by label, in the job's order", () => {
    const result = simulate(plugin, {
      seed: 8,
      players: ["w1", "d1", "w2", "d2"],
      labels: { w1: { role: "web" }, w2: { role: "web", zone: "b" }, d1: { role: "db" }, d2: { role: "db" } },
      options: {
        stages: [
          { name: "db", selector: { role: "db" }, policy: { name: "all-of" } },
          { name: "web-b", selector: { role: "web", zone: "b" }, policy: { name: "all-of" } },
          { name: "rest", policy: { name: "all-of" } }
        ]
      },
      policies,
      trace: true
    })
    expect(result.finished).toEqual({ state: "OK" })
    expect(result.trace.filter((e): e is Run => e._tag === "Run").map((r) => r.key)).toEqual(["s0:d1", "s0:d2", "s1:w2", "s2:w1"])
  })

  it("a stage whose policy finishes with tasks live: those are cancelled and the next stage starts in the same step", () => {
    const { run, step } = start(["a", "b", "c", "d"], [
      { name: "any", players: ["a", "b", "c"], policy: { name: "first-ok" } },
      { name: "last", players: ["d"], policy: { name: "all-of" } }
    ])
    expect(step.actions.map((a) => a.key)).toEqual(["s0:a", "s0:b", "s0:c"])
    const s = run.taskEnded(ended("s0:b", "b", "OK"), 1001)
    expect(s.actions.filter((a) => a._tag === "Cancel").map((a) => a.key)).toEqual(["s0:a", "s0:c"])
    expect(s.actions[s.actions.length - 1]).toEqual(Run("s1:d", ["d"]))
    // The cancelled tasks' outcomes arrive later and change nothing.
    expect(run.taskEnded(ended("s0:a", "a", "CANCELLED"), 1002)).toEqual({ actions: [] })
    expect(run.taskEnded(ended("s0:c", "c", "OK"), 1003)).toEqual({ actions: [] })
    expect(run.taskEnded(ended("s1:d", "d", "OK"), 1004).finished).toEqual({ state: "OK" })
  })

  it("stages compose: a stages policy inside a stage", () => {
    const result = simulate(plugin, {
      seed: 2,
      players: 4,
      options: {
        stages: [
          {
            name: "inner",
            players: ["p1", "p2"],
            policy: { name: "stages", options: { stages: [{ players: ["p1"], policy: { name: "all-of" } }, { policy: { name: "all-of" } }] } }
          },
          { name: "outer", policy: { name: "rolling", options: { batch: 1 } } }
        ]
      },
      policies,
      trace: true
    })
    expect(result.finished).toEqual({ state: "OK" })
    expect(result.trace.filter((e): e is Run => e._tag === "Run").map((r) => r.key)).toEqual(["s0:s0:p1", "s0:s1:p2", "s1:p3", "s1:p4"])
  })

  describe("options checked when the job starts, naming the stage", () => {
    const cases: ReadonlyArray<readonly [string, ReadonlyArray<unknown>, string]> = [
      ["a group that matches no target", [{ name: "web", selector: { role: "web" }, policy: { name: "all-of" } }], "stage 1 (web) matches no target of the job"],
      ["a player the job does not target", [{ players: ["a", "zz"], policy: { name: "all-of" } }], 'stage 1 names player "zz", which the job does not target'],
      ["an unknown policy", [{ players: ["a"], policy: { name: "all-of" } }, { name: "x", policy: { name: "nope" } }], 'stage 2 (x): unknown policy "nope"'],
      ["options the inner policy refuses", [{ name: "c", players: ["a"], policy: { name: "one-of", options: { retries: 2 } } }], 'stage 1 (c): invalid options for policy "one-of"'],
      ["a rest stage with nothing left", [{ players: ["a", "b"], policy: { name: "all-of" } }, { name: "rest", policy: { name: "all-of" } }], "stage 2 (rest) takes the targets no other stage has, and there are none"]
    ]
    it.each(cases)("%s", (_, stages, reason) => {
      const { run, step } = start(["a", "b"], stages)
      expect(step.actions).toEqual([])
      expect(step.finished?.state).toBe("FAIL")
      expect(step.finished?.reason).toContain(reason)
      expect(run.live.size).toBe(0)
    })
  })

  describe("an inner policy that misbehaves fails its job, and only its job", () => {
    const misbehaving = (name: string, onTaskEnded: Policy.Policy<{}, {}, number>["onTaskEnded"], start?: Policy.Policy<{}, {}, number>["start"]) =>
      Policy.make<{}, {}, number>({
        name,
        description: name,
        options: Policy.NoOptions(name),
        start: start ?? (({ players }) => ({ state: 0, actions: players.map((pl) => ({ _tag: "Run", key: k(pl), players: [pl] })) })),
        onTaskEnded
      })
    /** One task per player; throws on a FAIL; OK once every task ended. */
    const boom = misbehaving("boom", (left, e) => {
      if (e.outcome === "FAIL") throw new Error("kaboom")
      return left > 1 ? { state: left - 1, actions: [] } : { state: 0, actions: [], finished: { state: "OK" } }
    }, ({ players }) => ({ state: players.length, actions: players.map((pl) => ({ _tag: "Run", key: k(pl), players: [pl] })) }))
    const lookup: Policy.PolicyLookup = (name) => (name === "boom" ? boom : policies(name))
    const stages = [
      { name: "canary", players: ["a", "b"], policy: { name: "one-of" } },
      { name: "boom", policy: { name: "boom" }, continueOn: "ANY" },
      { name: "after", players: ["a"], policy: { name: "all-of" } }
    ]

    it("a throw fails the job at once, whatever continueOn says, naming the stage and the policy", () => {
      const { run } = start(["a", "b", "c", "d"], stages, lookup)
      run.taskEnded(ended("s0:0", "a", "OK"), 1001)
      expect([...run.live.keys()].sort()).toEqual(["s1:c", "s1:d"])
      // Another job with the same stages, in flight at the same time, where c ends OK: unaffected.
      const other = start(["a", "b", "c", "d"], stages, lookup).run
      other.taskEnded(ended("s0:0", "a", "OK"), 1001)
      const s = run.taskEnded(ended("s1:c", "c", "FAIL"), 1002)
      expect(s.finished).toEqual({
        state: "FAIL",
        reason: 'stage 2 (boom): policy "boom" threw on an outcome of task c: kaboom; stage 3 (after) skipped'
      })
      expect(other.taskEnded(ended("s1:c", "c", "OK"), 1002).finished?.state).toBe(undefined)
      expect(other.taskEnded(ended("s1:d", "d", "OK"), 1002)).toEqual({ actions: [Run("s2:a", ["a"])] })
      expect(other.taskEnded(ended("s2:a", "a", "OK"), 1003).finished).toEqual({ state: "OK" })
    })

    it("through the simulator: a throw inside a stage fails only that job, with a reason naming the stage", () => {
      const options = { stages: [{ policy: { name: "boom" } }] }
      const one = simulate(plugin, { seed: 1, players: ["a", "b", "c"], options, policies: lookup, outcome: byPlayer({ b: "FAIL" }) })
      expect(one.finished?.state).toBe("FAIL")
      expect(one.finished?.reason).toBe('stage 1: policy "boom" threw on an outcome of task b: kaboom')
      const two = simulate(plugin, { seed: 1, players: ["a", "b", "c"], options, policies: lookup })
      expect(two.finished).toEqual({ state: "OK" })
    })

    const invalid: ReadonlyArray<readonly [string, Policy.PolicyPlugin, string]> = [
      [
        "a task for a player outside the stage",
        misbehaving("outside", (s) => ({ state: s, actions: [] }), () => ({ state: 0, actions: [{ _tag: "Run", key: k("x"), players: [p("b")] }] })),
        'stage 1: policy "outside" returned an invalid decision at start: task x names player "b", which is not in the stage'
      ],
      [
        "a start that throws",
        misbehaving("bad-start", (s) => ({ state: s, actions: [] }), () => {
          throw new Error("no start")
        }),
        'stage 1: policy "bad-start" threw at start: no start'
      ],
      [
        "nothing live and not finished",
        misbehaving("stuck", (s) => ({ state: s, actions: [] })),
        'stage 1: policy "stuck" returned an invalid decision at outcome of task a: no task is live and the stage is not finished'
      ],
      [
        "a key already live",
        misbehaving("twice", (s) => ({ state: s, actions: [] }), () => ({
          state: 0,
          actions: [{ _tag: "Run", key: k("x"), players: [p("a")] }, { _tag: "Run", key: k("x"), players: [p("a")] }]
        })),
        "task x is already live"
      ],
      [
        "a key too long once namespaced",
        misbehaving("long", (s) => ({ state: s, actions: [] }), () => ({ state: 0, actions: [{ _tag: "Run", key: k("x".repeat(256)), players: [p("a")] }] })),
        "a task key inside a stage must be a string of 1 to 253 characters"
      ],
      [
        "an unknown action",
        misbehaving("odd", (s) => ({ state: s, actions: [] }), () => ({ state: 0, actions: [{ _tag: "Explode" } as unknown as Policy.PolicyAction] })),
        'unknown action "Explode"'
      ],
      [
        "a bad finished state",
        misbehaving("pending", (s) => ({ state: s, actions: [], finished: { state: "PENDING" as "OK" } })),
        "`finished.state` must be one of OK, PARTIAL_FAIL, FAIL, CANCELLED"
      ]
    ]
    it.each(invalid)("%s", (_, inner, reason) => {
      const lookupOne: Policy.PolicyLookup = (name) => (name === inner.name ? inner : undefined)
      const { run, step } = start(["a"], [{ policy: { name: inner.name } }], lookupOne)
      const finished = step.finished ?? run.taskEnded(ended("s0:a", "a", "OK"), 1001).finished
      expect(finished?.state).toBe("FAIL")
      expect(finished?.reason).toContain(reason)
    })
  })

  it("aggregates the stages run: OK if all OK, FAIL if none OK or PARTIAL_FAIL, PARTIAL_FAIL otherwise", () => {
    expect(Stages.aggregate(["OK", "OK"])).toBe("OK")
    expect(Stages.aggregate(["FAIL", "CANCELLED"])).toBe("FAIL")
    expect(Stages.aggregate(["PARTIAL_FAIL", "PARTIAL_FAIL"])).toBe("PARTIAL_FAIL")
    expect(Stages.aggregate(["OK", "FAIL"])).toBe("PARTIAL_FAIL")
    const states: ReadonlyArray<JobState.FinishedJobState> = ["OK", "PARTIAL_FAIL", "FAIL", "CANCELLED"]
    for (const a of states) for (const b of states) expect(Stages.aggregate([a, b])).toBe(aggregateOf([a, b]))
  })

  it("continueOn accepts OK, PARTIAL_FAIL, ANY or a list of states, and nothing else", () => {
    const decode = Schema.decodeUnknownEither(Stages.ContinueOn)
    for (const ok of ["OK", "PARTIAL_FAIL", "ANY", ["FAIL"], ["OK", "CANCELLED"]]) expect(Either.isRight(decode(ok))).toBe(true)
    for (const bad of ["FAIL", "any", [], ["PENDING"], 1]) expect(Either.isLeft(decode(bad))).toBe(true)
    expect([...Stages.allowed("PARTIAL_FAIL")].sort()).toEqual(["OK", "PARTIAL_FAIL"])
    expect(always("OK")).toBeTypeOf("function")
  })
})
