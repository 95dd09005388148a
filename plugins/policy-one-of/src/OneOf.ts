/**
 * The `one-of` policy: the job is one task (key `"0"`) that any of its
 * target players may take, in the order the job lists them. A soft outcome
 * (`UNK_SCORE`, `HOST_ERROR`: the player could not even try) disqualifies
 * that player and requeues the task at the head of the queue for the
 * players left; when none is left the job is `FAIL`. The first hard outcome
 * ends the job: `OK` is `OK`, anything else `FAIL`.
 *
 * @since 0.1.0
 */
import type { JobState } from "@orchestra/core"
import { Names, Outcome, Policy } from "@orchestra/core"
import type { Schema } from "effect"


/** The options of `one-of`: none (an empty object). */
export const Options = Policy.NoOptions("one-of")
export type Options = typeof Options.Type

/** The key of the job's only task. */
export const key: Names.TaskKey = Names.taskKey("0")

/** A player that could not even try, and why (newest first, shared tails: O(1) per step). */
interface Refusal {
  readonly player: Names.PlayerName
  readonly outcome: Outcome.Outcome
  readonly previous: Refusal | undefined
}

/** The state of a `one-of` job. */
export interface State {
  /** Players still allowed to take the task, in the job's order. */
  readonly remaining: ReadonlyArray<Names.PlayerName>
  /** Players disqualified by a soft outcome, newest first. */
  readonly refused: Refusal | undefined
}

/** At most this many players are named in a reason. */
const REASON_LIMIT = 20

const describeRefusals = (refused: Refusal | undefined): string => {
  const all: Array<Refusal> = []
  for (let r = refused; r !== undefined; r = r.previous) all.push(r)
  all.reverse()
  const shown = all.slice(0, REASON_LIMIT).map((r) => `${r.player}: ${r.outcome}`)
  if (all.length > REASON_LIMIT) shown.push(`and ${all.length - REASON_LIMIT} more`)
  return shown.join(", ")
}

const finish = (state: State, finished: JobState.FinishedJobState, reason: string | undefined): Policy.Decision<State> => ({
  state,
  actions: [],
  finished: reason === undefined ? { state: finished } : { state: finished, reason }
})

/** The `one-of` policy, typed. */
export const policy: Policy.Policy<Options, Schema.Schema.Encoded<typeof Options>, State> = {
  name: "one-of",
  description: "One task that any listed player may take, in the order listed; a player that cannot run it is skipped",
  options: Options,
  start: ({ players }) => {
    const state: State = { remaining: players, refused: undefined }
    if (players.length === 0) return finish(state, "FAIL", "the job targets no player")
    return { state, actions: [{ _tag: "Run", key, players }] }
  },
  onTaskEnded: (state, event) => {
    if (Outcome.isSoft(event.outcome)) {
      const next: State = {
        remaining: state.remaining.filter((p) => p !== event.player),
        refused: { player: event.player, outcome: event.outcome, previous: state.refused }
      }
      if (next.remaining.length === 0) {
        return finish(next, "FAIL", `every player was tried and none could run the task: ${describeRefusals(next.refused)}`)
      }
      return { state: next, actions: [{ _tag: "Run", key, players: next.remaining, front: true }] }
    }
    const after = state.refused === undefined ? "" : ` after ${describeRefusals(state.refused)}`
    return Outcome.isOk(event.outcome)
      ? finish(state, "OK", after === "" ? undefined : `ran on ${event.player}${after}`)
      : finish(state, "FAIL", `the task ended ${event.outcome} on ${event.player}${after}`)
  }
}

/** Make the `one-of` policy plugin. */
export const policyOneOf = (): Policy.PolicyPlugin => Policy.make(policy)
