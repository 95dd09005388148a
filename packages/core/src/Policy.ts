/**
 * Scheduler policies: pure, deterministic state machines that decide which
 * tasks of a job exist, which players may take them, what to do on each
 * outcome, and the job's aggregate state. A policy only plans; the
 * conductor applies its decisions, persists and dispatches.
 *
 * Built-in policies (`one-of`, `all-of`, ...) are plugins made with
 * {@link make}, exactly as a user's own policy is.
 *
 * @since 0.1.0
 */
import { Either, ParseResult, Schema } from "effect"
import { PolicyError } from "./Errors.js"
import type { Labels, Response } from "./Job.js"
import type { FinishedJobState } from "./JobState.js"
import type { JobId, PlayerName, ScoreName, TaskKey } from "./Names.js"
import type { Outcome } from "./Outcome.js"

/** Queue a task that any of `players` may take (in preference order). */
export interface RunTask {
  readonly _tag: "Run"
  readonly key: TaskKey
  /** The players that may take the task; every one must be a target of the job. */
  readonly players: ReadonlyArray<PlayerName>
  /** Queue at the head instead of the tail (a requeue after a soft outcome). */
  readonly front?: boolean
}

/** Cancel a queued or running task; it ends with outcome `CANCELLED`. */
export interface CancelTask {
  readonly _tag: "Cancel"
  readonly key: TaskKey
}

export type PolicyAction = RunTask | CancelTask

/** How a job finished, when the policy says it has. */
export interface Finished {
  readonly state: FinishedJobState
  /** What else to say about it (for example "stage 2 of 3 skipped: stage 1 FAIL"). */
  readonly reason?: string
}

/** What a policy decided after one step. */
export interface Decision<S> {
  readonly state: S
  readonly actions: ReadonlyArray<PolicyAction>
  /** Set once the job is finished: the conductor cancels whatever task is still live. */
  readonly finished?: Finished
}

/** Everything a policy may look at when a job starts. */
export interface StartContext<O> {
  readonly job: JobId
  readonly score: ScoreName
  /** The job's targets, in the order asked for (duplicates already collapsed). */
  readonly players: ReadonlyArray<PlayerName>
  /** Labels of the targets, as resolved when the job was accepted. */
  readonly labels: ReadonlyMap<PlayerName, Labels>
  readonly options: O
  /** Milliseconds since the epoch: the only clock a policy may use. */
  readonly now: number
  /** Other policies by name, for composition (`stages`). */
  readonly policies: PolicyLookup
}

/**
 * One task's attempt ended on a player. A task cancelled or timed out
 * before it was ever dispatched ends with `attempt: 0` and, as `player`, the
 * first player it was offered to.
 */
export interface TaskEnded {
  readonly key: TaskKey
  readonly player: PlayerName
  readonly attempt: number
  readonly outcome: Outcome
  readonly response: Response
}

/**
 * A policy, typed. `O` is its options type, `I` their encoded (JSON) form,
 * `S` its state.
 */
export interface Policy<O, I, S> {
  readonly name: string
  readonly description: string
  /** Schema of the options a job passes in `policy.options`. */
  readonly options: Schema.Schema<O, I>
  readonly start: (context: StartContext<O>) => Decision<S>
  readonly onTaskEnded: (state: S, event: TaskEnded, now: number) => Decision<S>
}

/** The state of a policy, opaque outside the policy itself. */
export type PolicyState = { readonly _PolicyState: unique symbol }

/** A policy with its types erased: what the registry holds and the conductor runs. */
export interface PolicyPlugin {
  readonly kind: "policy"
  readonly name: string
  readonly description: string
  /** Check and decode a job's `policy.options`. */
  readonly decodeOptions: (options: unknown) => Either.Either<PolicyOptions, PolicyError>
}

/** Options that passed a policy's schema, bound to that policy. */
export interface PolicyOptions {
  readonly policy: string
  readonly start: (context: Omit<StartContext<unknown>, "options">) => Decision<PolicyState>
  readonly onTaskEnded: (state: PolicyState, event: TaskEnded, now: number) => Decision<PolicyState>
}

export type PolicyLookup = (name: string) => PolicyPlugin | undefined

/**
 * The options schema of a policy that takes none: an empty object and
 * nothing else (`Schema.Struct({})` alone accepts any value).
 */
export const NoOptions = (policy: string): Schema.Schema<{}, {}> =>
  Schema.Struct({}).pipe(
    Schema.filter((u: unknown) => {
      if (typeof u !== "object" || u === null || Array.isArray(u)) return `policy "${policy}" takes an options object`
      const keys = Object.keys(u)
      return keys.length === 0 ||
        `policy "${policy}" takes no options (got ${keys.map((k) => JSON.stringify(k)).join(", ")})`
    }),
    Schema.annotations({ identifier: "NoOptions" })
  )

/** Make a policy plugin from a typed policy. */
export const make = <O, I, S>(policy: Policy<O, I, S>): PolicyPlugin => {
  const decode = Schema.decodeUnknownEither(policy.options, { errors: "all", onExcessProperty: "error" })
  return {
    kind: "policy",
    name: policy.name,
    description: policy.description,
    decodeOptions: (raw) =>
      Either.match(decode(raw ?? {}), {
        onLeft: (error) =>
          Either.left(
            new PolicyError({
              policy: policy.name,
              reason: "options",
              message: `invalid options for policy "${policy.name}": ${ParseResult.TreeFormatter.formatErrorSync(error)}`
            })
          ),
        onRight: (options) =>
          Either.right<PolicyOptions>({
            policy: policy.name,
            start: (context) => policy.start({ ...context, options }) as unknown as Decision<PolicyState>,
            onTaskEnded: (state, event, now) =>
              policy.onTaskEnded(state as unknown as S, event, now) as unknown as Decision<PolicyState>
          })
      })
  }
}

/** Whether a value looks like a policy plugin (for plugins loaded from user code). */
export const isPolicyPlugin = (u: unknown): u is PolicyPlugin =>
  typeof u === "object" && u !== null && (u as { kind?: unknown }).kind === "policy" &&
  typeof (u as { name?: unknown }).name === "string" &&
  typeof (u as { decodeOptions?: unknown }).decodeOptions === "function"
