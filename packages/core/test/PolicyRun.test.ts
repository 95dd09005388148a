/**
 * Tests of PolicyRun, the guard every policy runs behind: it threads the
 * policy's state, tracks live tasks, checks every decision, and turns a
 * policy that throws, returns garbage, plans for a player the job does not
 * target, never finishes, or gets bad options into a FAIL of its own job
 * only, with a clear reason.
 */
import { describe, expect, it } from "@effect/vitest"
import type { Outcome } from "@orchestra/core"
import { Names, Policy, PolicyRun } from "@orchestra/core"
import { Schema } from "effect"

const p = Names.playerName
const k = Names.taskKey
const input = (players: ReadonlyArray<string>, extra: Partial<PolicyRun.StartInput> = {}): PolicyRun.StartInput => ({
  job: Names.jobId(3),
  score: Names.scoreName("backup"),
  players: players.map(p),
  now: 5000,
  policies: () => undefined,
  ...extra
})
const ended = (key: string, player: string, outcome: Outcome.Outcome = "OK", attempt = 1): Policy.TaskEnded => ({
  key: k(key),
  player: p(player),
  attempt,
  outcome,
  response: {}
})

/** A policy whose start and onTaskEnded are given by the test, with state `S`. */
const policy = <S>(
  name: string,
  start: Policy.Policy<{}, {}, S>["start"],
  onTaskEnded: Policy.Policy<{}, {}, S>["onTaskEnded"] = () => {
    throw new Error("unexpected outcome")
  }
): Policy.PolicyPlugin =>
  Policy.make({ name, description: `test policy ${name}`, options: Schema.Struct({}), start, onTaskEnded })

/** A policy that returns this decision, whatever it is, at start. */
const returning = (decision: unknown): Policy.PolicyPlugin =>
  policy("garbage", () => decision as Policy.Decision<unknown>)

/** A hand-made plugin, not built with Policy.make, as a user could write. */
const raw = (decodeOptions: (u: unknown) => unknown): Policy.PolicyPlugin =>
  ({ kind: "policy", name: "raw", description: "hand-made", decodeOptions }) as unknown as Policy.PolicyPlugin

const run = (actions: ReadonlyArray<Policy.PolicyAction>, state: unknown = 0): Policy.Decision<unknown> => ({ state, actions })
const Run = (key: string, players: ReadonlyArray<string>, front?: boolean): Policy.RunTask => ({
  _tag: "Run",
  key: k(key),
  players: players.map(p),
  ...(front === undefined ? {} : { front })
})

const expectFail = (step: PolicyRun.Step, reason: string | RegExp) => {
  expect(step.actions).toEqual([])
  expect(step.finished?.state).toBe("FAIL")
  if (typeof reason === "string") expect(step.finished?.reason).toContain(reason)
  else expect(step.finished?.reason).toMatch(reason)
}

describe("PolicyRun.start", () => {
  it("gives the policy its decoded options, the deduplicated targets, labels, job, score and time", () => {
    const seen: Array<Policy.StartContext<{ readonly batch: number }>> = []
    const plugin = Policy.make({
      name: "ctx",
      description: "records its context",
      options: Schema.Struct({ batch: Schema.NumberFromString }),
      start: (context) => {
        seen.push(context)
        return { state: "s0", actions: [{ _tag: "Run", key: k("t"), players: context.players }] }
      },
      onTaskEnded: (state) => ({ state, actions: [] })
    })
    const lookup: Policy.PolicyLookup = (name) => (name === "ctx" ? plugin : undefined)
    const { run: r, step } = PolicyRun.PolicyRun.start(plugin, { batch: "4" }, input(["b", "a", "b"], { policies: lookup }))
    expect(seen).toHaveLength(1)
    const context = seen[0]!
    expect(context.options).toEqual({ batch: 4 })
    expect(context.players).toEqual(["b", "a"])
    expect(context.labels).toEqual(new Map())
    expect(context.job).toBe(3)
    expect(context.score).toBe("backup")
    expect(context.now).toBe(5000)
    expect(context.policies("ctx")).toBe(plugin)
    expect(step).toEqual({ actions: [{ _tag: "Run", key: "t", players: ["b", "a"], front: false }] })
    expect([...r.live]).toEqual([["t", ["b", "a"]]])
    expect(r.finished).toBeUndefined()
    expect(r.policy).toBe("ctx")
  })

  it("passes labels through when given", () => {
    let labels: ReadonlyMap<Names.PlayerName, unknown> | undefined
    const plugin = policy("labels", (c) => {
      labels = c.labels
      return run([Run("0", ["a"])])
    })
    const given = new Map([[p("a"), { role: "web" }]])
    PolicyRun.PolicyRun.start(plugin, {}, input(["a"], { labels: given }))
    expect(labels).toBe(given)
  })

  it("bad options fail the job at start, naming the policy and the field", () => {
    let started = false
    const plugin = Policy.make({
      name: "batched",
      description: "needs a batch size",
      options: Schema.Struct({ batch: Schema.Int.pipe(Schema.positive()) }),
      start: () => {
        started = true
        return { state: 0, actions: [] }
      },
      onTaskEnded: (s) => ({ state: s, actions: [] })
    })
    const { run: r, step } = PolicyRun.PolicyRun.start(plugin, { batch: -2 }, input(["a"]))
    expectFail(step, /^invalid options for policy "batched": [\s\S]*batch[\s\S]*-2/)
    expect(started).toBe(false)
    expect(r.live.size).toBe(0)
    expect(r.finished).toEqual(step.finished)
    // A finished run ignores outcomes.
    expect(r.taskEnded(ended("0", "a"), 6000)).toEqual({ actions: [] })
  })

  it("a decodeOptions that throws fails the job", () => {
    const plugin = raw(() => {
      throw new Error("options exploded")
    })
    expectFail(PolicyRun.PolicyRun.start(plugin, {}, input(["a"])).step, `policy "raw" threw while checking its options: options exploded`)
  })

  it("a decodeOptions that returns something other than an Either fails the job", () => {
    const { step } = PolicyRun.PolicyRun.start(raw(() => 42), {}, input(["a"]))
    expect(step.finished?.state).toBe("FAIL")
    expect(step.actions).toEqual([])
  })

  it("a start that throws an Error fails the job with its message", () => {
    const plugin = policy("thrower", () => {
      throw new Error("no can do")
    })
    const { run: r, step } = PolicyRun.PolicyRun.start(plugin, {}, input(["a"]))
    expectFail(step, `policy "thrower" threw at start: no can do`)
    expect(r.live.size).toBe(0)
  })

  it("a start that throws a non-Error still gives a readable reason", () => {
    const stringThrower = policy("s", () => {
      throw "just a string" // eslint-disable-line no-throw-literal
    })
    expectFail(PolicyRun.PolicyRun.start(stringThrower, {}, input(["a"])).step, `policy "s" threw at start: just a string`)
    const unprintable = policy("u", () => {
      throw { toString: () => { throw new Error("nope") } } // eslint-disable-line no-throw-literal
    })
    expectFail(PolicyRun.PolicyRun.start(unprintable, {}, input(["a"])).step, `policy "u" threw at start: unprintable error`)
  })

  it("a start that plans nothing and does not finish fails the job: it would never end", () => {
    expectFail(
      PolicyRun.PolicyRun.start(returning(run([])), {}, input(["a"])).step,
      `policy "garbage" returned an invalid decision at start: no task is live and the job is not finished, so it would never end`
    )
  })

  it("a Run for a player the job does not target fails the job", () => {
    const plugin = policy("stray", () => run([Run("0", ["a", "mallory"])]))
    const { run: r, step } = PolicyRun.PolicyRun.start(plugin, {}, input(["a", "b"]))
    expectFail(step, `policy "stray" returned an invalid decision at start: task 0 names player "mallory", which the job does not target`)
    expect(r.live.size).toBe(0)
  })

  const garbage: ReadonlyArray<readonly [string, unknown, string]> = [
    ["null", null, "not an object"],
    ["a number", 42, "not an object"],
    ["a string", "Run everything", "not an object"],
    ["no actions", { state: 0 }, "`actions` is not an array"],
    ["actions not an array", { state: 0, actions: { _tag: "Run" } }, "`actions` is not an array"],
    ["a null action", { state: 0, actions: [null] }, "an action is not an object"],
    ["a string action", { state: 0, actions: ["Run"] }, "an action is not an object"],
    ["an unknown action", { state: 0, actions: [{ _tag: "Explode", key: "0" }] }, `unknown action "Explode"`],
    ["an action without a tag", { state: 0, actions: [{ key: "0" }] }, "unknown action undefined"],
    ["an empty key", { state: 0, actions: [{ _tag: "Run", key: "", players: ["a"] }] }, `a task key must be a string of 1 to 256 characters (got "")`],
    ["a number key", { state: 0, actions: [{ _tag: "Run", key: 7, players: ["a"] }] }, "(got 7)"],
    ["a key of 257 characters", { state: 0, actions: [{ _tag: "Run", key: "k".repeat(257), players: ["a"] }] }, "1 to 256 characters"],
    ["no players", { state: 0, actions: [{ _tag: "Run", key: "0", players: [] }] }, "task 0 has no player to run on"],
    ["players not an array", { state: 0, actions: [{ _tag: "Run", key: "0", players: "a" }] }, "task 0 has no player to run on"],
    ["a non-string player", { state: 0, actions: [{ _tag: "Run", key: "0", players: [{ name: "a" }] }] }, `names player {"name":"a"}`],
    ["a duplicate key", { state: 0, actions: [{ _tag: "Run", key: "0", players: ["a"] }, { _tag: "Run", key: "0", players: ["a"] }] }, "task 0 is already live"],
    ["finished PENDING", { state: 0, actions: [], finished: { state: "PENDING" } }, "`finished.state` must be one of OK, PARTIAL_FAIL, FAIL, CANCELLED"],
    ["finished as a string", { state: 0, actions: [], finished: "OK" }, "`finished.state` must be one of"],
    ["finished null", { state: 0, actions: [], finished: null }, "`finished.state` must be one of"],
    ["finished with a bad Run", { state: 0, actions: [{ _tag: "Run", key: "0", players: ["zz"] }], finished: { state: "OK" } }, "which the job does not target"]
  ]
  it.each(garbage)("garbage at start (%s) fails the job with a clear reason", (_, decision, why) => {
    const { run: r, step } = PolicyRun.PolicyRun.start(returning(decision), {}, input(["a"]))
    expectFail(step, `policy "garbage" returned an invalid decision at start: `)
    expect(step.finished?.reason).toContain(why)
    expect(r.live.size).toBe(0)
    expect(r.taskEnded(ended("0", "a"), 6000)).toEqual({ actions: [] })
  })

  it("normalises accepted Runs: players deduplicated, front a boolean", () => {
    const { run: r, step } = PolicyRun.PolicyRun.start(
      returning(run([Run("x", ["b", "a", "b"]), Run("y", ["a"], true)])),
      {},
      input(["a", "b"])
    )
    expect(step.actions).toEqual([
      { _tag: "Run", key: "x", players: ["b", "a"], front: false },
      { _tag: "Run", key: "y", players: ["a"], front: true }
    ])
    expect(r.live.get(k("x"))).toEqual(["b", "a"])
  })

  it("drops a Cancel of a task that is not live, keeps one of a task planned in the same decision", () => {
    const { step } = PolicyRun.PolicyRun.start(
      returning(run([{ _tag: "Cancel", key: k("ghost") }, Run("x", ["a"]), { _tag: "Cancel", key: k("x") }])),
      {},
      input(["a"])
    )
    expect(step.actions).toEqual([
      { _tag: "Run", key: "x", players: ["a"], front: false },
      { _tag: "Cancel", key: "x" }
    ])
  })

  it("a policy may finish at start; its actions are then dropped and the reason kept as a string", () => {
    const { run: r, step } = PolicyRun.PolicyRun.start(
      returning({ state: 0, actions: [Run("0", ["a"])], finished: { state: "CANCELLED", reason: 42 } }),
      {},
      input(["a"])
    )
    expect(step).toEqual({ actions: [], finished: { state: "CANCELLED", reason: "42" } })
    expect(r.live.size).toBe(0)
    expect(r.finished).toEqual({ state: "CANCELLED", reason: "42" })
  })
})

describe("PolicyRun.taskEnded", () => {
  /** Two tasks; records every call; on "again" re-runs the task that ended, at the head. */
  const recorder = () => {
    const calls: Array<{ readonly state: number; readonly event: Policy.TaskEnded; readonly now: number }> = []
    const plugin = policy<number>(
      "recorder",
      (c) => ({ state: 0, actions: c.players.map((pl) => Run(pl, [pl])) }),
      (state, event, now) => {
        calls.push({ state, event, now })
        if (event.outcome === "HOST_ERROR") return { state: state + 1, actions: [Run(event.key, [event.player], true)] }
        return { state: state + 1, actions: [] }
      }
    )
    return { calls, plugin }
  }

  it("removes the task from live before asking the policy, and threads the policy's state", () => {
    const { calls, plugin } = recorder()
    const { run: r } = PolicyRun.PolicyRun.start(plugin, {}, input(["a", "b", "c"]))
    expect([...r.live.keys()]).toEqual(["a", "b", "c"])
    expect(r.taskEnded(ended("b", "b"), 6000)).toEqual({ actions: [] })
    expect([...r.live.keys()]).toEqual(["a", "c"])
    r.taskEnded(ended("a", "a"), 6001)
    expect(calls.map((c) => [c.state, c.event.key, c.now])).toEqual([[0, "b", 6000], [1, "a", 6001]])
  })

  it("a task may be planned again once it ended (a requeue at the head)", () => {
    const { plugin } = recorder()
    const { run: r } = PolicyRun.PolicyRun.start(plugin, {}, input(["a", "b"]))
    expect(r.taskEnded(ended("a", "a", "HOST_ERROR"), 6000)).toEqual({
      actions: [{ _tag: "Run", key: "a", players: ["a"], front: true }]
    })
    expect([...r.live.keys()].sort()).toEqual(["a", "b"])
  })

  it("ignores an outcome for a task that is not live, without asking the policy", () => {
    const { calls, plugin } = recorder()
    const { run: r } = PolicyRun.PolicyRun.start(plugin, {}, input(["a", "b"]))
    expect(r.taskEnded(ended("zz", "a"), 6000)).toEqual({ actions: [] })
    r.taskEnded(ended("a", "a"), 6000)
    expect(r.taskEnded(ended("a", "a"), 6001)).toEqual({ actions: [] }) // a duplicate
    expect(calls).toHaveLength(1)
  })

  it("the last task ending with nothing planned and no finish fails the job: it would never end", () => {
    const { plugin } = recorder()
    const { run: r } = PolicyRun.PolicyRun.start(plugin, {}, input(["a", "b"]))
    r.taskEnded(ended("a", "a"), 6000)
    expectFail(
      r.taskEnded(ended("b", "b"), 6001),
      `policy "recorder" returned an invalid decision at outcome of task b: no task is live and the job is not finished, so it would never end`
    )
  })

  it("a policy that throws on an outcome fails the job; the other live tasks stay listed to be cancelled", () => {
    const plugin = policy(
      "fragile",
      (c) => run(c.players.map((pl) => Run(pl, [pl]))),
      (_, event) => {
        if (event.outcome === "TIMEOUT") throw new TypeError("did not expect a timeout")
        return run([])
      }
    )
    const { run: r } = PolicyRun.PolicyRun.start(plugin, {}, input(["a", "b", "c"]))
    expectFail(r.taskEnded(ended("b", "b", "TIMEOUT"), 6000), `policy "fragile" threw on an outcome of task b: did not expect a timeout`)
    expect([...r.live.keys()]).toEqual(["a", "c"])
    expect(r.finished?.state).toBe("FAIL")
    expect(r.taskEnded(ended("a", "a"), 6001)).toEqual({ actions: [] })
  })

  it("a policy that returns garbage on an outcome fails the job", () => {
    const plugin = policy("sloppy", (c) => run([Run("0", c.players)]), () => ({ state: 1, actions: "none" }) as never)
    const { run: r } = PolicyRun.PolicyRun.start(plugin, {}, input(["a"]))
    expectFail(r.taskEnded(ended("0", "a"), 6000), `policy "sloppy" returned an invalid decision at outcome of task 0: \`actions\` is not an array`)
  })

  it("a Run for a non-target player on an outcome fails the job", () => {
    const plugin = policy("escape", (c) => run([Run("0", c.players)]), () => run([Run("1", ["elsewhere"])]))
    const { run: r } = PolicyRun.PolicyRun.start(plugin, {}, input(["a"]))
    expectFail(r.taskEnded(ended("0", "a"), 6000), `task 1 names player "elsewhere", which the job does not target`)
  })

  it("a Run for a task that is still live fails the job", () => {
    const plugin = policy("double", (c) => run(c.players.map((pl) => Run(pl, [pl]))), () => run([Run("b", ["b"])]))
    const { run: r } = PolicyRun.PolicyRun.start(plugin, {}, input(["a", "b"]))
    expectFail(r.taskEnded(ended("a", "a"), 6000), "task b is already live")
  })

  it("a Cancel keeps the task live until its CANCELLED outcome arrives", () => {
    const plugin = policy<string>(
      "canceller",
      (c) => ({ state: "running", actions: c.players.map((pl) => Run(pl, [pl])) }),
      (state, event) =>
        event.outcome === "FAIL"
          ? { state: "cancelling", actions: [{ _tag: "Cancel", key: k("b") }, { _tag: "Cancel", key: k("a") }] }
          : { state, actions: [], finished: { state: "FAIL", reason: `after ${state}` } }
    )
    const { run: r } = PolicyRun.PolicyRun.start(plugin, {}, input(["a", "b"]))
    expect(r.taskEnded(ended("a", "a", "FAIL"), 6000)).toEqual({ actions: [{ _tag: "Cancel", key: "b" }] })
    expect([...r.live.keys()]).toEqual(["b"])
    expect(r.taskEnded(ended("b", "b", "CANCELLED"), 6001)).toEqual({
      actions: [],
      finished: { state: "FAIL", reason: "after cancelling" }
    })
  })

  it("finish() ends the job from outside, once; later outcomes are ignored", () => {
    const { calls, plugin } = recorder()
    const { run: r } = PolicyRun.PolicyRun.start(plugin, {}, input(["a", "b"]))
    expect(r.finish({ state: "CANCELLED", reason: "cancelled by alice" })).toEqual({
      actions: [],
      finished: { state: "CANCELLED", reason: "cancelled by alice" }
    })
    expect(r.finish({ state: "OK" })).toEqual({ actions: [] })
    expect(r.finished).toEqual({ state: "CANCELLED", reason: "cancelled by alice" })
    expect(r.taskEnded(ended("a", "a"), 6000)).toEqual({ actions: [] })
    expect(calls).toHaveLength(0)
    expect([...r.live.keys()]).toEqual(["a", "b"]) // still listed, for the conductor to cancel
  })

  it("a broken policy fails only its own job: another job's run goes on", () => {
    const broken = policy("broken", (c) => run([Run("0", c.players)]), () => {
      throw new Error("bug")
    })
    const { plugin: good } = recorder()
    const bad = PolicyRun.PolicyRun.start(broken, {}, input(["a", "b"])).run
    const fine = PolicyRun.PolicyRun.start(good, {}, input(["a", "b"])).run
    expect(bad.taskEnded(ended("0", "a"), 6000).finished?.state).toBe("FAIL")
    expect(fine.taskEnded(ended("a", "a"), 6000)).toEqual({ actions: [] })
    expect(fine.finished).toBeUndefined()
    expect([...fine.live.keys()]).toEqual(["b"])
  })

  it("a finished decision's state is kept and its actions dropped", () => {
    const plugin = policy(
      "closer",
      (c) => run(c.players.map((pl) => Run(pl, [pl]))),
      (_, event) => ({ state: 9, actions: [Run("late", [event.player])], finished: { state: "PARTIAL_FAIL", reason: "enough" } })
    )
    const { run: r } = PolicyRun.PolicyRun.start(plugin, {}, input(["a", "b"]))
    expect(r.taskEnded(ended("a", "a"), 6000)).toEqual({ actions: [], finished: { state: "PARTIAL_FAIL", reason: "enough" } })
    expect(r.live.has(k("late"))).toBe(false)
  })
})

/** Hostile values must fail the job, never throw out of PolicyRun. */
describe("PolicyRun against hostile decisions", () => {
  const hostile: ReadonlyArray<readonly [string, () => PolicyRun.Step]> = [
    ["a bigint task key", () => PolicyRun.PolicyRun.start(returning(run([{ _tag: "Run", key: 10n as never, players: [p("a")] }])), {}, input(["a"])).step],
    ["a bigint player", () => PolicyRun.PolicyRun.start(returning(run([{ _tag: "Run", key: k("0"), players: [1n as never] }])), {}, input(["a"])).step],
    ["a bigint action tag", () => PolicyRun.PolicyRun.start(returning(run([{ _tag: 1n, key: k("0") } as never])), {}, input(["a"])).step],
    ["a decision whose getter throws", () => {
      const decision = { state: 0, get actions(): never { throw new Error("getter") } }
      return PolicyRun.PolicyRun.start(returning(decision), {}, input(["a"])).step
    }],
    ["a reason that cannot become a string", () =>
      PolicyRun.PolicyRun.start(returning({ state: 0, actions: [], finished: { state: "OK", reason: Object.create(null) } }), {}, input(["a"])).step],
    ["a decodeOptions that returns null", () => PolicyRun.PolicyRun.start(raw(() => null), {}, input(["a"])).step]
  ]
  for (const [what, go] of hostile) {
    it(`${what} fails the job instead of throwing`, () => {
      const step = go()
      expect(step.finished?.state).toBe("FAIL")
    })
  }

  it("a decodeOptions that returns a non-Either is reported as such", () => {
    const { step } = PolicyRun.PolicyRun.start(raw(() => 42), {}, input(["a"]))
    expect(step.finished?.reason).toContain("decodeOptions")
  })
})
