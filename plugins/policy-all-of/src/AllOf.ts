/**
 * The `all-of` policy: one task per target player (keyed by the player's
 * name), each runnable only by that player. Every outcome is final for its
 * player, soft ones included. The job is `OK` when every task ended `OK`,
 * `FAIL` when none did, `PARTIAL_FAIL` otherwise (`JobState.aggregate`).
 *
 * @since 0.1.0
 */
import type { Names } from "@orchestra/core"
import { JobState, Outcome, Policy } from "@orchestra/core"
import type { Schema } from "effect"


/** The options of `all-of`: none (an empty object). */
export const Options = Policy.NoOptions("all-of")
export type Options = typeof Options.Type

/** The state of an `all-of` job; O(1) to update whatever the number of players. */
export interface State {
  /** Tasks not ended yet. */
  readonly remaining: number
  /** How many tasks ended with each outcome. */
  readonly counts: Readonly<Record<Outcome.Outcome, number>>
  /** The first players whose task did not end `OK`, for the reason (at most {@link REASON_LIMIT}). */
  readonly failures: ReadonlyArray<string>
}

/** At most this many players are named in a reason. */
export const REASON_LIMIT = 20

/**
 * The task key of a player's task: its name. Player names (1–128
 * characters) are always valid task keys (1–256).
 */
const keyOf = (player: Names.PlayerName): Names.TaskKey => player as string as Names.TaskKey

const zero = (): Record<Outcome.Outcome, number> => {
  const counts = {} as Record<Outcome.Outcome, number>
  for (const o of Outcome.all) counts[o] = 0
  return counts
}

const aggregateOf = (counts: Readonly<Record<Outcome.Outcome, number>>): JobState.FinishedJobState =>
  JobState.aggregate(Outcome.all.filter((o) => counts[o] > 0))

const reasonOf = (state: State): string => {
  const total = Outcome.all.reduce((s, o) => s + state.counts[o], 0)
  const failed = total - state.counts.OK
  const tally = Outcome.all.filter((o) => state.counts[o] > 0).map((o) => `${state.counts[o]} ${o}`).join(", ")
  const named = state.failures.join(", ") + (failed > state.failures.length ? `, and ${failed - state.failures.length} more` : "")
  return `${failed} of ${total} players did not end OK (${tally}): ${named}`
}

/** The `all-of` policy, typed. */
export const policy: Policy.Policy<Options, Schema.Schema.Encoded<typeof Options>, State> = {
  name: "all-of",
  description: "One task per listed player; OK if all end OK, FAIL if none does, PARTIAL_FAIL otherwise",
  options: Options,
  start: ({ players }) => {
    const state: State = { remaining: players.length, counts: zero(), failures: [] }
    if (players.length === 0) return { state, actions: [], finished: { state: "OK", reason: "the job targets no player: nothing to run" } }
    return { state, actions: players.map((p) => ({ _tag: "Run", key: keyOf(p), players: [p] })) }
  },
  onTaskEnded: (state, event) => {
    const counts = zero()
    for (const o of Outcome.all) counts[o] = state.counts[o] + (o === event.outcome ? 1 : 0)
    const failures = Outcome.isOk(event.outcome) || state.failures.length >= REASON_LIMIT
      ? state.failures
      : [...state.failures, `${event.player}: ${event.outcome}`]
    const next: State = { remaining: state.remaining - 1, counts, failures }
    if (next.remaining > 0) return { state: next, actions: [] }
    const aggregate = aggregateOf(counts)
    return {
      state: next,
      actions: [],
      finished: aggregate === "OK" ? { state: aggregate } : { state: aggregate, reason: reasonOf(next) }
    }
  }
}

/** Make the `all-of` policy plugin. */
export const policyAllOf = (): Policy.PolicyPlugin => Policy.make(policy)
