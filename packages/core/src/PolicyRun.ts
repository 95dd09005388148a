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
import type { PolicyError } from "./Errors.js"
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

const describeError = (e: unknown): string => {
  if (e instanceof Error) return e.message
  try {
    return String(e)
  } catch {
    return "unprintable error"
  }
}

/** JSON for a message, whatever the value (bigints, cycles, throwing getters). */
const show = (u: unknown): string => {
  try {
    return JSON.stringify(u) ?? String(u)
  } catch {
    return typeof u
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
    let decoded: Either.Either<PolicyOptions, PolicyError>
    try {
      decoded = plugin.decodeOptions(rawOptions)
    } catch (e) {
      const run = new PolicyRun(plugin.name, undefined, players)
      return { run, step: run.fail(`policy "${plugin.name}" threw while checking its options: ${describeError(e)}`) }
    }
    if (!Either.isEither(decoded)) {
      const run = new PolicyRun(plugin.name, undefined, players)
      return { run, step: run.fail(`policy "${plugin.name}" did not return an Either from decodeOptions`) }
    }
    if (Either.isLeft(decoded)) {
      const run = new PolicyRun(plugin.name, undefined, players)
      return { run, step: run.fail(decoded.left.message) }
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
    const invalid = (why: string) => this.fail(`policy "${this.policy}" returned an invalid decision at ${when}: ${why}`)
    if (typeof decision !== "object" || decision === null) return invalid("not an object")
    if (!Array.isArray(decision.actions)) return invalid("`actions` is not an array")
    // Only what this decision adds: O(actions) per step, not O(live tasks).
    const added = new Map<TaskKey, ReadonlyArray<PlayerName>>()
    const planned = (key: TaskKey) => this.liveTasks.has(key) || added.has(key)
    const accepted: Array<PolicyAction> = []
    for (const action of decision.actions as ReadonlyArray<PolicyAction>) {
      if (typeof action !== "object" || action === null) return invalid("an action is not an object")
      if (action._tag === "Run") {
        if (typeof action.key !== "string" || action.key.length === 0 || action.key.length > 256) {
          return invalid(`a task key must be a string of 1 to 256 characters (got ${show(action.key)})`)
        }
        if (planned(action.key)) return invalid(`task ${action.key} is already live`)
        if (!Array.isArray(action.players) || action.players.length === 0) {
          return invalid(`task ${action.key} has no player to run on`)
        }
        for (const p of action.players) {
          if (!this.targets.has(p)) return invalid(`task ${action.key} names player ${show(p)}, which the job does not target`)
        }
        const players = dedupe(action.players)
        added.set(action.key, players)
        accepted.push({ _tag: "Run", key: action.key, players, front: action.front === true })
      } else if (action._tag === "Cancel") {
        if (planned(action.key)) accepted.push({ _tag: "Cancel", key: action.key })
      } else {
        return invalid(`unknown action ${show((action as { _tag?: unknown })._tag)}`)
      }
    }
    if (decision.finished !== undefined) {
      const f = decision.finished
      if (typeof f !== "object" || f === null || !isFinishedState(f.state)) {
        return invalid(`\`finished.state\` must be one of ${FinishedJobState.literals.join(", ")}`)
      }
      const done: Finished = f.reason === undefined ? { state: f.state } : { state: f.state, reason: String(f.reason) }
      this.state = decision.state
      this.done = done
      return { actions: [], finished: this.done }
    }
    if (this.liveTasks.size + added.size === 0) return invalid("no task is live and the job is not finished, so it would never end")
    this.state = decision.state
    for (const [k, v] of added) this.liveTasks.set(k, v)
    return { actions: accepted }
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
