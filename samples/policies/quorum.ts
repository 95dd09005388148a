/**
 * A policy of one's own, as a sample: `quorum` — k of the n targets must
 * succeed. Every target runs the score at once (one task per player, keyed
 * by its name). The job finishes as soon as its result is known:
 *
 * - `OK` once k tasks ended `OK`;
 * - `FAIL` once k can no longer be reached (more than n − k failed), or at
 *   start when k > n.
 *
 * Every outcome but `OK` is a failure. The job finishes at once rather than
 * waiting for the tasks still running: its state is already decided, and a
 * task on a player that is offline could hold it for hours. Finishing is
 * also how those tasks are cancelled — the conductor cancels every task
 * still live when a job finishes (and `stages` does the same for a stage),
 * so the finishing decision lists no `Cancel` of its own (`PolicyRun` would
 * drop the actions of a finishing decision anyway).
 *
 * Load it from the conductor config by path, once built (`npm run build`):
 *
 * ```yaml
 * plugins: [policies/dist/quorum.js]   # relative to the config file
 * ```
 *
 * and submit with `"policy": { "name": "quorum", "options": { "k": 2 } }`.
 * It imports only the plugin API (`@orchestra/core`) and `effect`.
 *
 * @since 0.1.0
 */
import type { Names } from "@orchestra/core"
import { Outcome, Policy } from "@orchestra/core"
import { Schema } from "effect"

/** Options: `k`, how many targets must succeed. */
export const Options = Schema.Struct({
  k: Schema.Int.pipe(Schema.greaterThanOrEqualTo(1), Schema.annotations({ description: "how many targets must end OK" }))
})
export type Options = typeof Options.Type

/** At most this many players are named in a reason. */
const NAMED = 10

/** The state of a quorum job: a few counters and the first names, whatever n. */
export interface State {
  readonly n: number
  readonly k: number
  readonly ok: number
  readonly failed: number
  /** The first players that ended OK / did not, for the reason. */
  readonly oks: ReadonlyArray<string>
  readonly failures: ReadonlyArray<string>
}

const names = (shown: ReadonlyArray<string>, count: number): string =>
  shown.join(", ") + (count > shown.length ? `, and ${count - shown.length} more` : "")

/** What happens to the tasks still running, for the reason. */
const leftover = (state: State): string => {
  const open = state.n - state.ok - state.failed
  return open === 0 ? "" : `; ${open} task${open === 1 ? "" : "s"} not ended ${open === 1 ? "is" : "are"} cancelled`
}

/** The quorum policy, typed. */
export const policy: Policy.Policy<Options, Schema.Schema.Encoded<typeof Options>, State> = {
  name: "quorum",
  description: "Every target runs at once; OK as soon as k end OK, FAIL as soon as k can no longer be reached (the rest are cancelled)",
  options: Options,
  start: ({ options, players }) => {
    const state: State = { n: players.length, k: options.k, ok: 0, failed: 0, oks: [], failures: [] }
    if (options.k > players.length) {
      return {
        state,
        actions: [],
        finished: {
          state: "FAIL",
          reason: `a quorum of ${options.k} cannot be reached: the job targets ${players.length} player${players.length === 1 ? "" : "s"}`
        }
      }
    }
    return {
      state,
      actions: players.map((p: Names.PlayerName) => ({ _tag: "Run", key: p as string as Names.TaskKey, players: [p] }))
    }
  },
  onTaskEnded: (state, event) => {
    const ok = Outcome.isOk(event.outcome)
    const next: State = ok
      ? { ...state, ok: state.ok + 1, oks: state.oks.length < NAMED ? [...state.oks, event.player] : state.oks }
      : {
        ...state,
        failed: state.failed + 1,
        failures: state.failures.length < NAMED ? [...state.failures, `${event.player}: ${event.outcome}`] : state.failures
      }
    if (next.ok >= next.k) {
      return {
        state: next,
        actions: [],
        finished: { state: "OK", reason: `quorum of ${next.k} of ${next.n} reached: ${names(next.oks, next.ok)} ended OK${leftover(next)}` }
      }
    }
    if (next.n - next.failed < next.k) {
      return {
        state: next,
        actions: [],
        finished: {
          state: "FAIL",
          reason: `quorum of ${next.k} of ${next.n} out of reach: ${next.failed} failed (${names(next.failures, next.failed)}), ` +
            `at most ${next.n - next.k} may${leftover(next)}`
        }
      }
    }
    return { state: next, actions: [] }
  }
}

/** Make the quorum policy plugin; the default export, so the file can be named in `plugins:`. */
export const policyQuorum = (): Policy.PolicyPlugin => Policy.make(policy)
export default policyQuorum
