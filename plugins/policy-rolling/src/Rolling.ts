/**
 * The `rolling` policy: one task per target player (keyed by its name,
 * runnable only by that player, as `all-of`), started in batches in the
 * job's player order. A batch is `batch` players (a count, or a percentage
 * of the targets rounded down, at least 1); the next batch starts when
 * every task of the current one has ended.
 *
 * Every outcome but `OK` is a failure, soft ones included (the player could
 * not run the score: that host did not get the change). When failures
 * exceed `maxFailures` (a count, or a percentage of the targets rounded
 * down; default 0) the rollout is aborted: the batch in flight is let end
 * (its tasks are not cancelled), no further batch starts, and the job
 * finishes `PARTIAL_FAIL` if some task ended `OK`, `FAIL` if none did, with
 * a reason saying how many players never started. Otherwise (and when the
 * threshold is passed in the last batch, leaving nobody unstarted) the job
 * finishes with its last batch: `OK` if every task ended `OK`, `FAIL` if
 * none did, `PARTIAL_FAIL` otherwise.
 *
 * @since 0.1.0
 */
import type { JobState, Names } from "@orchestra/core"
import { Outcome, Policy } from "@orchestra/core"
import { Schema } from "effect"

/** A percentage of the targets, as a string: `"25%"`, `"12.5%"`. */
export const Percent = Schema.String.pipe(
  Schema.filter((s) => {
    const m = /^(\d{1,3}(?:\.\d{1,6})?)%$/.exec(s)
    if (m === null) return `a percentage is written like "25%" (got ${JSON.stringify(s)})`
    const n = Number(m[1])
    return n <= 100 || `a percentage is at most 100% (got ${JSON.stringify(s)})`
  }),
  Schema.annotations({ identifier: "Percent" })
)

const PositivePercent = Percent.pipe(
  Schema.filter((s) => Number(s.slice(0, -1)) > 0 || `a batch of 0% would never start anything`)
)

/** Options of `rolling`. */
export const Options = Schema.Struct({
  /** Players per batch: a count (at least 1) or a percentage of the targets (rounded down, at least 1). */
  batch: Schema.Union(Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)), PositivePercent),
  /** Failures allowed before the rollout is aborted: a count or a percentage of the targets (rounded down). Default 0. */
  maxFailures: Schema.optionalWith(Schema.Union(Schema.Int.pipe(Schema.greaterThanOrEqualTo(0)), Percent), {
    default: () => 0
  })
}).pipe(Schema.annotations({ identifier: "RollingOptions" }))
export type Options = typeof Options.Type

/** A count, or a percentage of `total` rounded down. */
const resolve = (value: number | string, total: number): number =>
  typeof value === "number" ? value : Math.floor((total * Number(value.slice(0, -1))) / 100)

/** The batch size for `total` targets: at least 1. */
export const batchSize = (options: Options, total: number): number => Math.max(1, resolve(options.batch, total))

/** The failures allowed for `total` targets. */
export const maxFailures = (options: Options, total: number): number => resolve(options.maxFailures, total)

/** At most this many players are named in a reason. */
export const REASON_LIMIT = 20

/** The state of a `rolling` job: O(1) to update whatever the number of players. */
export interface State {
  /** The targets, in the job's order (shared, never copied). */
  readonly players: ReadonlyArray<Names.PlayerName>
  readonly batch: number
  readonly maxFailures: number
  /** Index in `players` of the first player not started yet. */
  readonly next: number
  /** Tasks of the current batch not ended yet. */
  readonly inFlight: number
  readonly ok: number
  readonly failed: number
  /** How many tasks ended with each outcome. */
  readonly counts: Readonly<Record<Outcome.Outcome, number>>
  /** The first players whose task did not end `OK` (at most {@link REASON_LIMIT}). */
  readonly failures: ReadonlyArray<string>
}

/** A player's task key: its name (player names are always valid task keys). */
const keyOf = (player: Names.PlayerName): Names.TaskKey => player as string as Names.TaskKey

const zero = (): Record<Outcome.Outcome, number> => {
  const counts = {} as Record<Outcome.Outcome, number>
  for (const o of Outcome.all) counts[o] = 0
  return counts
}

/** Whether the rollout has been aborted: more failures than allowed. */
export const aborted = (state: State): boolean => state.failed > state.maxFailures

const failedList = (state: State): string =>
  state.failures.join(", ") + (state.failed > state.failures.length ? `, and ${state.failed - state.failures.length} more` : "")

const tally = (state: State): string =>
  Outcome.all.filter((o) => state.counts[o] > 0).map((o) => `${state.counts[o]} ${o}`).join(", ")

const startBatch = (state: State): Policy.Decision<State> => {
  const end = Math.min(state.players.length, state.next + state.batch)
  const actions: Array<Policy.PolicyAction> = []
  for (let i = state.next; i < end; i++) {
    const player = state.players[i]!
    actions.push({ _tag: "Run", key: keyOf(player), players: [player] })
  }
  return { state: { ...state, next: end, inFlight: end - state.next }, actions }
}

const finish = (state: State): Policy.Decision<State> => {
  const total = state.players.length
  const never = total - state.next
  if (aborted(state) && never > 0) {
    const finished: JobState.FinishedJobState = state.ok > 0 ? "PARTIAL_FAIL" : "FAIL"
    return {
      state,
      actions: [],
      finished: {
        state: finished,
        reason: `rollout aborted after ${state.failed} failure${state.failed === 1 ? "" : "s"} (at most ${state.maxFailures} allowed): ` +
          `${never} of ${total} player${total === 1 ? "" : "s"} never started; ${tally(state)}; failed: ${failedList(state)}`
      }
    }
  }
  if (state.failed === 0) return { state, actions: [], finished: { state: "OK" } }
  return {
    state,
    actions: [],
    finished: {
      state: state.ok === 0 ? "FAIL" : "PARTIAL_FAIL",
      reason: `${state.failed} of ${total} players did not end OK (${tally(state)}): ${failedList(state)}`
    }
  }
}

/** The `rolling` policy, typed. */
export const policy: Policy.Policy<Options, Schema.Schema.Encoded<typeof Options>, State> = {
  name: "rolling",
  description:
    "One task per listed player, in batches (a count or a percentage) in the job's order; aborts when failures exceed maxFailures",
  options: Options,
  start: ({ options, players }) => {
    const state: State = {
      players,
      batch: batchSize(options, players.length),
      maxFailures: maxFailures(options, players.length),
      next: 0,
      inFlight: 0,
      ok: 0,
      failed: 0,
      counts: zero(),
      failures: []
    }
    if (players.length === 0) return { state, actions: [], finished: { state: "OK", reason: "the job targets no player: nothing to run" } }
    return startBatch(state)
  },
  onTaskEnded: (state, event) => {
    const ok = Outcome.isOk(event.outcome)
    const counts = { ...state.counts, [event.outcome]: state.counts[event.outcome] + 1 }
    const next: State = {
      ...state,
      inFlight: state.inFlight - 1,
      ok: state.ok + (ok ? 1 : 0),
      failed: state.failed + (ok ? 0 : 1),
      counts,
      failures: ok || state.failures.length >= REASON_LIMIT ? state.failures : [...state.failures, `${event.player}: ${event.outcome}`]
    }
    if (next.inFlight > 0) return { state: next, actions: [] }
    if (aborted(next) || next.next >= next.players.length) return finish(next)
    return startBatch(next)
  }
}

/** Make the `rolling` policy plugin. */
export const policyRolling = (): Policy.PolicyPlugin => Policy.make(policy)
