/**
 * One stage's inner policy in motion, as an immutable value: the
 * bookkeeping `PolicyRun` does for a job, done for a stage inside the
 * `stages` state (which must stay a plain value a step never mutates).
 *
 * Inner task keys are namespaced (`s<index>:<key>`) on the way out and
 * stripped on the way back. Like `PolicyRun`, it guards the job from the
 * inner policy: a throw, a malformed decision, a task for a player outside
 * the stage's group, a key already live, or nothing left to wait for is
 * reported as `Misbehaved` with a clear reason — the caller fails the job.
 *
 * @since 0.1.0
 */
import type { Names, Policy } from "@orchestra/core"
import { PolicyRun } from "@orchestra/core"
import { Either, HashSet } from "effect"

/** Longest task key the conductor accepts. */
const MAX_KEY = 256

/** A stage's inner policy between steps. */
export interface Inner {
  /** Name of the inner policy, for reasons. */
  readonly policy: string
  readonly options: Policy.PolicyOptions
  readonly state: Policy.PolicyState
  /** Inner keys planned and not ended yet (persistent set: O(log n) per step). */
  readonly live: HashSet.HashSet<string>
}

/** What a stage is run with: fixed when the job starts. */
export interface StageSetup {
  /** Prefix of the stage's task keys, `s<index>:`. */
  readonly prefix: string
  /** The players of the stage, in the job's order. */
  readonly group: ReadonlyArray<Names.PlayerName>
  readonly groupSet: ReadonlySet<Names.PlayerName>
  readonly policy: string
  readonly options: Policy.PolicyOptions
}

export type Result =
  /** The stage goes on; `actions` are namespaced. */
  | { readonly _tag: "Running"; readonly inner: Inner; readonly actions: ReadonlyArray<Policy.PolicyAction> }
  /** The stage finished; `cancel` lists (namespaced) tasks of the stage still live, sorted. */
  | { readonly _tag: "Finished"; readonly finished: Policy.Finished; readonly cancel: ReadonlyArray<Names.TaskKey> }
  /** The inner policy misbehaved: the job must fail with this reason. */
  | { readonly _tag: "Misbehaved"; readonly reason: string }

const describeError = PolicyRun.describeError

/**
 * Check and decode a stage's inner options, guarded as `PolicyRun` does:
 * a plugin that throws or returns something else than an `Either` is an
 * error, not a crash.
 */
export const decodeOptions = PolicyRun.decodeOptions

/** Start a stage's inner policy. */
export const start = (
  setup: StageSetup,
  context: Omit<Policy.StartContext<unknown>, "options" | "players">
): Result => {
  let decision: Policy.Decision<Policy.PolicyState>
  try {
    decision = setup.options.start({ ...context, players: setup.group })
  } catch (e) {
    return { _tag: "Misbehaved", reason: `policy "${setup.policy}" threw at start: ${describeError(e)}` }
  }
  const empty: Inner = {
    policy: setup.policy,
    options: setup.options,
    state: undefined as unknown as Policy.PolicyState,
    live: HashSet.empty()
  }
  return apply(setup, empty, decision, "start")
}

/** A task of the stage ended; `key` is the inner key (prefix stripped). */
export const taskEnded = (
  setup: StageSetup,
  inner: Inner,
  key: string,
  event: Policy.TaskEnded,
  now: number
): Result => {
  const live = HashSet.remove(inner.live, key)
  let decision: Policy.Decision<Policy.PolicyState>
  try {
    decision = inner.options.onTaskEnded(inner.state, { ...event, key: key as Names.TaskKey }, now)
  } catch (e) {
    return { _tag: "Misbehaved", reason: `policy "${inner.policy}" threw on an outcome of task ${key}: ${describeError(e)}` }
  }
  return apply(setup, { ...inner, live }, decision, `outcome of task ${key}`)
}

const apply = (setup: StageSetup, inner: Inner, decision: Policy.Decision<Policy.PolicyState>, when: string): Result => {
  try {
    return applyUnguarded(setup, inner, decision, when)
  } catch (e) {
    return { _tag: "Misbehaved", reason: `policy "${inner.policy}" returned an invalid decision at ${when}: ${describeError(e)}` }
  }
}

const applyUnguarded = (setup: StageSetup, inner: Inner, decision: Policy.Decision<Policy.PolicyState>, when: string): Result => {
  const checked = PolicyRun.checkDecision(decision, {
    isLive: (key) => HashSet.has(inner.live, key),
    liveCount: HashSet.size(inner.live),
    isTarget: (p) => setup.groupSet.has(p),
    maxKeyLength: MAX_KEY - setup.prefix.length,
    keyWhat: "a task key inside a stage",
    outside: "which is not in the stage",
    what: "the stage"
  })
  if (Either.isLeft(checked)) {
    return { _tag: "Misbehaved", reason: `policy "${inner.policy}" returned an invalid decision at ${when}: ${checked.left}` }
  }
  if (checked.right._tag === "Finished") {
    // As for a job: the actions of a finishing decision are dropped, and
    // whatever is still live is cancelled.
    const cancel = HashSet.toValues(inner.live).sort().map((k) => `${setup.prefix}${k}` as Names.TaskKey)
    return { _tag: "Finished", finished: checked.right.finished, cancel }
  }
  let live = inner.live
  for (const key of checked.right.added.keys()) live = HashSet.add(live, key)
  const actions = checked.right.actions.map((action): Policy.PolicyAction =>
    action._tag === "Run"
      ? {
        _tag: "Run",
        key: `${setup.prefix}${action.key}` as Names.TaskKey,
        players: action.players,
        ...(action.front === true ? { front: true } : {})
      }
      : { _tag: "Cancel", key: `${setup.prefix}${action.key}` as Names.TaskKey }
  )
  return { _tag: "Running", inner: { ...inner, state: decision.state, live }, actions }
}
