/**
 * A policy of one's own, as a sample: `canary` — run the score on the
 * canary player(s) first; only if every canary ended `OK`, run it on the
 * rest of the targets under another policy, found by name through
 * `StartContext.policies` (composition).
 *
 * Options:
 * - `canary`: a player's name (a target of the job), or how many of the
 *   first targets, in the job's order, are canaries. Default 1.
 * - `then`: the policy for the rest, `"all-of"` (default) or `"rolling"`.
 * - `rolling`: the options of `rolling` when `then` is `"rolling"`
 *   (default `{ batch: 1 }`).
 *
 * How it ends:
 * - The canary phase is one task per canary (key `canary:<player>`), all
 *   at once; it ends when every canary task has ended. If one did not end
 *   `OK`, the job is `FAIL` and the rest never run.
 * - Otherwise the `then` policy runs over the rest (its keys prefixed
 *   `rest:`), and the job ends when it does: `OK` if it ends `OK`,
 *   `CANCELLED` if it ends so, `PARTIAL_FAIL` otherwise (the canaries did
 *   succeed). With no player left after the canaries, the job is `OK`.
 * - A `then` policy that throws or plans a task outside the rest fails the
 *   job, with a reason naming it.
 *
 * Load it from the conductor config by path, once built (`npm run build`):
 * `plugins: [policies/dist/canary.js]`. It imports only the plugin API
 * (`@orchestra/core`) and `effect`.
 *
 * @since 0.1.0
 */
import type { JobState, Names } from "@orchestra/core"
import { Outcome, Policy } from "@orchestra/core"
import { Either, Schema } from "effect"

/** Options of `canary`. */
export const Options = Schema.Struct({
  canary: Schema.optionalWith(
    Schema.Union(Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)), Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128))),
    { default: () => 1 }
  ),
  then: Schema.optionalWith(Schema.Literal("all-of", "rolling"), { default: () => "all-of" as const }),
  rolling: Schema.optional(Schema.Unknown)
}).pipe(
  Schema.filter((o) => o.rolling === undefined || o.then === "rolling" || `"rolling" options are given but "then" is "${o.then}"`)
)
export type Options = typeof Options.Type

const CANARY = "canary:"
const REST = "rest:"

/** The state of a canary job. */
export interface State {
  readonly phase: "canary" | "rest"
  readonly canaries: ReadonlyArray<Names.PlayerName>
  readonly rest: ReadonlyArray<Names.PlayerName>
  /** Canary tasks not ended yet. */
  readonly waiting: number
  /** Canaries that did not end OK. */
  readonly failed: ReadonlyArray<string>
  /** The `then` policy, with its options checked. */
  readonly then: { readonly name: string; readonly options: Policy.PolicyOptions }
  /** What the `then` policy is started with. */
  readonly context: Omit<Policy.StartContext<unknown>, "options" | "players" | "now">
  /** The `then` policy's own state, in the rest phase. */
  readonly inner?: Policy.PolicyState
}

const fail = (state: State | undefined, reason: string): Policy.Decision<State> => ({
  state: state as State,
  actions: [],
  finished: { state: "FAIL", reason }
})

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/** The job's state once the rest phase ended so, the canaries having succeeded. */
const overall = (rest: JobState.FinishedJobState): JobState.FinishedJobState =>
  rest === "OK" || rest === "CANCELLED" ? rest : "PARTIAL_FAIL"

/** Turn a decision of the `then` policy into one of the canary job: prefix keys, check players. */
const lift = (state: State, decision: Policy.Decision<Policy.PolicyState>, when: string): Policy.Decision<State> => {
  const name = state.then.name
  const allowed = new Set(state.rest)
  if (typeof decision !== "object" || decision === null || !Array.isArray(decision.actions)) {
    return fail(state, `the rest-phase policy "${name}" returned something that is not a decision ${when}`)
  }
  const next: State = { ...state, inner: decision.state }
  if (decision.finished !== undefined) {
    const rest = decision.finished.state
    const why = decision.finished.reason === undefined ? "" : ` (${decision.finished.reason})`
    return {
      state: next,
      actions: [],
      finished: { state: overall(rest), reason: `canaries ${state.canaries.join(", ")} OK; the rest ended ${rest} under ${name}${why}` }
    }
  }
  const actions: Array<Policy.PolicyAction> = []
  const planned: ReadonlyArray<Policy.PolicyAction> = decision.actions
  for (const a of planned) {
    if (typeof a.key !== "string" || a.key.length > 256 - REST.length) {
      return fail(state, `the rest-phase policy "${name}" planned a task key that is not a string of at most ${256 - REST.length} characters ${when}`)
    }
    const key = `${REST}${a.key}` as Names.TaskKey
    if (a._tag === "Run") {
      const outside = a.players.find((p) => !allowed.has(p))
      if (outside !== undefined) return fail(state, `the rest-phase policy "${name}" planned task ${a.key} on ${outside}, which is not in the rest ${when}`)
      actions.push(a.front === true ? { _tag: "Run", key, players: a.players, front: true } : { _tag: "Run", key, players: a.players })
    } else {
      actions.push({ _tag: "Cancel", key })
    }
  }
  return { state: next, actions }
}

const startRest = (state: State, now: number): Policy.Decision<State> => {
  const summary = `canaries ${state.canaries.join(", ")} OK`
  if (state.rest.length === 0) return { state, actions: [], finished: { state: "OK", reason: `${summary}; every target was a canary` } }
  const next: State = { ...state, phase: "rest" }
  try {
    return lift(next, state.then.options.start({ ...state.context, players: state.rest, now }), "at start")
  } catch (e) {
    return fail(next, `the rest-phase policy "${state.then.name}" threw at start: ${message(e)}`)
  }
}

/** The canary policy, typed. */
export const policy: Policy.Policy<Options, Schema.Schema.Encoded<typeof Options>, State> = {
  name: "canary",
  description: "The canary player(s) first; only if every canary ends OK, the rest under all-of or rolling",
  options: Options,
  start: ({ job, labels, options, players, policies, score }) => {
    if (players.length === 0) return fail(undefined, "the job targets no player: there is no canary")
    let canaries: ReadonlyArray<Names.PlayerName>
    if (typeof options.canary === "number") {
      canaries = players.slice(0, options.canary)
    } else {
      const named = players.find((p) => p === options.canary)
      if (named === undefined) return fail(undefined, `the canary ${JSON.stringify(options.canary)} is not a target of the job`)
      canaries = [named]
    }
    const chosen = new Set(canaries)
    const rest = players.filter((p) => !chosen.has(p))

    const plugin = policies(options.then)
    if (plugin === undefined) return fail(undefined, `the rest-phase policy "${options.then}" is not registered with this conductor`)
    const raw = options.then === "rolling" ? options.rolling ?? { batch: 1 } : {}
    let decoded: Either.Either<Policy.PolicyOptions, { readonly message: string }>
    try {
      decoded = plugin.decodeOptions(raw)
    } catch (e) {
      return fail(undefined, `the rest-phase policy "${options.then}" threw while checking its options: ${message(e)}`)
    }
    if (Either.isLeft(decoded)) return fail(undefined, decoded.left.message)

    const state: State = {
      phase: "canary",
      canaries,
      rest,
      waiting: canaries.length,
      failed: [],
      then: { name: plugin.name, options: decoded.right },
      context: { job, score, labels, policies }
    }
    return {
      state,
      actions: canaries.map((p) => ({ _tag: "Run", key: `${CANARY}${p}` as Names.TaskKey, players: [p] }))
    }
  },
  onTaskEnded: (state, event, now) => {
    if (state.phase === "canary") {
      const failed = Outcome.isOk(event.outcome) ? state.failed : [...state.failed, `${event.player} ended ${event.outcome}`]
      const next: State = { ...state, waiting: state.waiting - 1, failed }
      if (next.waiting > 0) return { state: next, actions: [] }
      if (failed.length > 0) {
        const others = next.rest.length === 0 ? "" : `: the other ${next.rest.length} player${next.rest.length === 1 ? " was" : "s were"} not run`
        return fail(next, `canary ${failed.join(", ")}${others}`)
      }
      return startRest(next, now)
    }
    // The rest phase: hand the outcome to the `then` policy, without the prefix.
    const inner: Policy.TaskEnded = { ...event, key: event.key.slice(REST.length) as Names.TaskKey }
    try {
      return lift(state, state.then.options.onTaskEnded(state.inner!, inner, now), `on an outcome of task ${inner.key}`)
    } catch (e) {
      return fail(state, `the rest-phase policy "${state.then.name}" threw on an outcome of task ${inner.key}: ${message(e)}`)
    }
  }
}

/** Make the canary policy plugin; the default export, so the file can be named in `plugins:`. */
export const policyCanary = (): Policy.PolicyPlugin => Policy.make(policy)
export default policyCanary
