/**
 * Runs one job's policy, step by step, guarding the rest of the system from
 * it: a policy that throws, returns something malformed, plans a task for a
 * player the job does not target, or leaves the job with nothing to wait
 * for, finishes its own job as `FAIL` with a clear reason — and nothing
 * else. Pure: no I/O, no clock; the conductor, the simulator and the tests
 * all drive policies through here.
 *
 * @since 0.1.0
 */
import { Either } from "effect"
import type { Labels } from "./Job.js"
import { FinishedJobState } from "./JobState.js"
import type { JobId, PlayerName, ScoreName, TaskKey } from "./Names.js"
import type {
  Decision,
  Finished,
  PolicyAction,
  PolicyLookup,
  PolicyOptions,
  PolicyPlugin,
  PolicyState,
  TaskEnded
} from "./Policy.js"

/** What one step asks of the conductor. */
export interface Step {
  readonly actions: ReadonlyArray<PolicyAction>
  /** Set on the step that finished the job. */
  readonly finished?: Finished
}

export interface StartInput {
  readonly job: JobId
  readonly score: ScoreName
  readonly players: ReadonlyArray<PlayerName>
  readonly labels?: ReadonlyMap<PlayerName, Labels>
  readonly now: number
  readonly policies: PolicyLookup
}

const isFinishedState = (u: unknown): u is FinishedJobState =>
  typeof u === "string" && (FinishedJobState.literals as ReadonlyArray<string>).includes(u)


/** JSON for a message, whatever the value (bigints, cycles, throwing getters). */
const show = (u: unknown): string => {
  try {
    return JSON.stringify(u) ?? String(u)
  } catch {
    return typeof u
  }
}

/**
 * Check and decode a policy's options, guarded: a plugin that throws or
 * returns something else than an `Either` gives a reason, not a crash.
 */
export const decodeOptions = (plugin: PolicyPlugin, raw: unknown): Either.Either<PolicyOptions, string> => {
  let decoded: unknown
  try {
    decoded = plugin.decodeOptions(raw)
  } catch (e) {
    return Either.left(`policy "${plugin.name}" threw while checking its options: ${describeError(e)}`)
  }
  if (!Either.isEither(decoded)) return Either.left(`policy "${plugin.name}" did not return an Either from decodeOptions`)
  const either = decoded as Either.Either<PolicyOptions, { readonly message?: unknown }>
  if (Either.isLeft(either)) return Either.left(String(either.left.message ?? either.left))
  return Either.right(either.right)
}

/** What a decision is checked against. */
export interface DecisionContext {
  readonly isLive: (key: string) => boolean
  readonly liveCount: number
  readonly isTarget: (player: PlayerName) => boolean
  readonly maxKeyLength: number
  /** How to name a task key in messages ("a task key"). */
  readonly keyWhat: string
  /** What to say of a player that may not be used ("which the job does not target"). */
  readonly outside: string
  /** What the decision is for, in messages ("the job"). */
  readonly what: string
}

/** A decision that passed the checks. */
export type CheckedDecision =
  | { readonly _tag: "Finished"; readonly finished: Finished }
  | {
    readonly _tag: "Running"
    readonly actions: ReadonlyArray<PolicyAction>
    /** Tasks the decision makes live, with their players (deduplicated). */
    readonly added: ReadonlyMap<TaskKey, ReadonlyArray<PlayerName>>
  }

/**
 * The checks every policy decision passes, wherever a policy runs (a job,
 * or a stage of one): a well-formed object, Run actions with valid and
 * not-yet-live keys naming allowed players, known actions, a valid finished
 * state, and — when not finished — something live to wait for. Pure; may
 * throw on hostile values (throwing getters), so callers guard it. The
 * actions of a finishing decision are dropped: what is live is cancelled.
 */
export const checkDecision = (decision: unknown, context: DecisionContext): Either.Either<CheckedDecision, string> => {
  if (typeof decision !== "object" || decision === null) return Either.left("not an object")
  const d = decision as Decision<unknown>
  if (!Array.isArray(d.actions)) return Either.left("`actions` is not an array")
  const added = new Map<TaskKey, ReadonlyArray<PlayerName>>()
  const planned = (key: string) => context.isLive(key) || added.has(key as TaskKey)
  const accepted: Array<PolicyAction> = []
  for (const action of d.actions as ReadonlyArray<PolicyAction>) {
    if (typeof action !== "object" || action === null) return Either.left("an action is not an object")
    if (action._tag === "Run") {
      if (typeof action.key !== "string" || action.key.length === 0 || action.key.length > context.maxKeyLength) {
        return Either.left(`${context.keyWhat} must be a string of 1 to ${context.maxKeyLength} characters (got ${show(action.key)})`)
      }
      if (planned(action.key)) return Either.left(`task ${action.key} is already live`)
      if (!Array.isArray(action.players) || action.players.length === 0) {
        return Either.left(`task ${action.key} has no player to run on`)
      }
      for (const p of action.players) {
        if (!context.isTarget(p)) return Either.left(`task ${action.key} names player ${show(p)}, ${context.outside}`)
      }
      const players = dedupe(action.players)
      added.set(action.key, players)
      accepted.push({ _tag: "Run", key: action.key, players, front: action.front === true })
    } else if (action._tag === "Cancel") {
      if (typeof action.key === "string" && planned(action.key)) accepted.push({ _tag: "Cancel", key: action.key })
    } else {
      return Either.left(`unknown action ${show((action as { _tag?: unknown })._tag)}`)
    }
  }
  if (d.finished !== undefined) {
    const f = d.finished
    if (typeof f !== "object" || f === null || !isFinishedState(f.state)) {
      return Either.left(`\`finished.state\` must be one of ${FinishedJobState.literals.join(", ")}`)
    }
    const finished: Finished = f.reason === undefined ? { state: f.state } : { state: f.state, reason: String(f.reason) }
    return Either.right({ _tag: "Finished", finished })
  }
  if (context.liveCount + added.size === 0) {
    return Either.left(`no task is live and ${context.what} is not finished, so it would never end`)
  }
  return Either.right({ _tag: "Running", actions: accepted, added })
}

/** Describe a thrown value, whatever it is. */
export const describeError = (e: unknown): string => {
  if (e instanceof Error) return e.message
  try {
    return String(e)
  } catch {
    return "unprintable error"
  }
}

/** One job's policy in motion. */
export class PolicyRun {
  private state: PolicyState | undefined
  private readonly liveTasks = new Map<TaskKey, ReadonlyArray<PlayerName>>()
  private done: Finished | undefined
  private readonly targets: ReadonlySet<PlayerName>

  private constructor(
    readonly policy: string,
    private readonly options: PolicyOptions | undefined,
    players: ReadonlyArray<PlayerName>
  ) {
    this.targets = new Set(players)
  }

  /**
   * Start a job's policy. Bad options or a policy that misbehaves at start
   * give a run that is already finished as `FAIL`, with the reason.
   */
  static start(plugin: PolicyPlugin, rawOptions: unknown, input: StartInput): { readonly run: PolicyRun; readonly step: Step } {
    const players = dedupe(input.players)
    const decoded = decodeOptions(plugin, rawOptions)
    if (Either.isLeft(decoded)) {
      const run = new PolicyRun(plugin.name, undefined, players)
      return { run, step: run.fail(decoded.left) }
    }
    const options = decoded.right
    const run = new PolicyRun(plugin.name, options, players)
    let decision: Decision<PolicyState>
    try {
      decision = options.start({
        job: input.job,
        score: input.score,
        players,
        labels: input.labels ?? new Map(),
        now: input.now,
        policies: input.policies
      })
    } catch (e) {
      return { run, step: run.fail(`policy "${plugin.name}" threw at start: ${describeError(e)}`) }
    }
    return { run, step: run.apply(decision, "start") }
  }

  /** The tasks planned and not ended yet, with the players that may take each. */
  get live(): ReadonlyMap<TaskKey, ReadonlyArray<PlayerName>> {
    return this.liveTasks
  }

  /** How the job finished, once it has. */
  get finished(): Finished | undefined {
    return this.done
  }

  /**
   * A task's attempt ended. Events for a task that is not live, or after
   * the job finished, change nothing.
   */
  taskEnded(event: TaskEnded, now: number): Step {
    if (this.done !== undefined || this.options === undefined) return { actions: [] }
    if (!this.liveTasks.has(event.key)) return { actions: [] }
    this.liveTasks.delete(event.key)
    let decision: Decision<PolicyState>
    try {
      decision = this.options.onTaskEnded(this.state as PolicyState, event, now)
    } catch (e) {
      return this.fail(`policy "${this.policy}" threw on an outcome of task ${event.key}: ${describeError(e)}`)
    }
    return this.apply(decision, `outcome of task ${event.key}`)
  }

  /** End the job from outside the policy (cancelled, removed). */
  finish(finished: Finished): Step {
    if (this.done !== undefined) return { actions: [] }
    this.done = finished
    return { actions: [], finished }
  }

  private fail(reason: string): Step {
    this.done = { state: "FAIL", reason }
    return { actions: [], finished: this.done }
  }

  private apply(decision: Decision<PolicyState>, when: string): Step {
    try {
      return this.applyUnguarded(decision, when)
    } catch (e) {
      // A decision with throwing getters, a Proxy, a reason that cannot become a string...
      return this.fail(`policy "${this.policy}" returned an invalid decision at ${when}: ${describeError(e)}`)
    }
  }

  private applyUnguarded(decision: Decision<PolicyState>, when: string): Step {
    const checked = checkDecision(decision, {
      isLive: (key) => this.liveTasks.has(key as TaskKey),
      liveCount: this.liveTasks.size,
      isTarget: (p) => this.targets.has(p),
      maxKeyLength: 256,
      keyWhat: "a task key",
      outside: "which the job does not target",
      what: "the job"
    })
    if (Either.isLeft(checked)) {
      return this.fail(`policy "${this.policy}" returned an invalid decision at ${when}: ${checked.left}`)
    }
    this.state = decision.state
    if (checked.right._tag === "Finished") {
      this.done = checked.right.finished
      return { actions: [], finished: this.done }
    }
    for (const [k, v] of checked.right.added) this.liveTasks.set(k, v)
    return { actions: checked.right.actions }
  }
}

const dedupe = <A>(xs: ReadonlyArray<A>): ReadonlyArray<A> => {
  const seen = new Set<A>()
  const out: Array<A> = []
  for (const x of xs) {
    if (!seen.has(x)) {
      seen.add(x)
      out.push(x)
    }
  }
  return out
}
