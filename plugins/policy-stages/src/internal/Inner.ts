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
import { JobState } from "@orchestra/core"
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

const describeError = (e: unknown): string => {
  if (e instanceof Error) return e.message
  try {
    return String(e)
  } catch {
    return "unprintable error"
  }
}

const show = (u: unknown): string => {
  try {
    return JSON.stringify(u) ?? String(u)
  } catch {
    return typeof u
  }
}

const isFinishedState = (u: unknown): u is JobState.FinishedJobState =>
  typeof u === "string" && (JobState.FinishedJobState.literals as ReadonlyArray<string>).includes(u)

/**
 * Check and decode a stage's inner options, guarded as `PolicyRun` does:
 * a plugin that throws or returns something else than an `Either` is an
 * error, not a crash.
 */
export const decodeOptions = (plugin: Policy.PolicyPlugin, raw: unknown): Either.Either<Policy.PolicyOptions, string> => {
  let decoded: unknown
  try {
    decoded = plugin.decodeOptions(raw)
  } catch (e) {
    return Either.left(`policy "${plugin.name}" threw while checking its options: ${describeError(e)}`)
  }
  if (!Either.isEither(decoded)) return Either.left(`policy "${plugin.name}" did not return an Either from decodeOptions`)
  const either = decoded as Either.Either<Policy.PolicyOptions, { readonly message?: unknown }>
  if (Either.isLeft(either)) return Either.left(String(either.left.message ?? either.left))
  return Either.right(either.right)
}

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
  const invalid = (why: string): Result => ({
    _tag: "Misbehaved",
    reason: `policy "${inner.policy}" returned an invalid decision at ${when}: ${why}`
  })
  if (typeof decision !== "object" || decision === null) return invalid("not an object")
  if (!Array.isArray(decision.actions)) return invalid("`actions` is not an array")
  const room = MAX_KEY - setup.prefix.length
  let live = inner.live
  const actions: Array<Policy.PolicyAction> = []
  for (const action of decision.actions as ReadonlyArray<Policy.PolicyAction>) {
    if (typeof action !== "object" || action === null) return invalid("an action is not an object")
    if (action._tag === "Run") {
      if (typeof action.key !== "string" || action.key.length === 0 || action.key.length > room) {
        return invalid(`a task key inside a stage must be a string of 1 to ${room} characters (got ${show(action.key)})`)
      }
      if (HashSet.has(live, action.key)) return invalid(`task ${action.key} is already live`)
      if (!Array.isArray(action.players) || action.players.length === 0) return invalid(`task ${action.key} has no player to run on`)
      for (const p of action.players as ReadonlyArray<Names.PlayerName>) {
        if (!setup.groupSet.has(p)) return invalid(`task ${action.key} names player ${show(p)}, which is not in the stage`)
      }
      live = HashSet.add(live, action.key)
      actions.push({
        _tag: "Run",
        key: `${setup.prefix}${action.key}` as Names.TaskKey,
        players: action.players,
        ...(action.front === true ? { front: true } : {})
      })
    } else if (action._tag === "Cancel") {
      if (typeof action.key === "string" && HashSet.has(live, action.key)) {
        actions.push({ _tag: "Cancel", key: `${setup.prefix}${action.key}` as Names.TaskKey })
      }
    } else {
      return invalid(`unknown action ${show((action as { _tag?: unknown })._tag)}`)
    }
  }
  if (decision.finished !== undefined) {
    const f = decision.finished
    if (typeof f !== "object" || f === null || !isFinishedState(f.state)) {
      return invalid(`\`finished.state\` must be one of ${JobState.FinishedJobState.literals.join(", ")}`)
    }
    // As for a job: the actions of a finishing decision are dropped, and
    // whatever is still live is cancelled.
    const cancel = HashSet.toValues(inner.live).sort().map((k) => `${setup.prefix}${k}` as Names.TaskKey)
    return {
      _tag: "Finished",
      finished: f.reason === undefined ? { state: f.state } : { state: f.state, reason: String(f.reason) },
      cancel
    }
  }
  if (HashSet.size(live) === 0) return invalid("no task is live and the stage is not finished, so it would never end")
  return { _tag: "Running", inner: { ...inner, state: decision.state, live }, actions }
}
