/**
 * The `stages` policy: a job in ordered stages, each a group of the job's
 * targets run under a policy of its own — any registered policy, built-in
 * or a user's, found through `StartContext.policies`. Stage N+1 starts only
 * once stage N's policy has finished, and only if stage N's state is one
 * its `continueOn` allows; otherwise the remaining stages are skipped.
 *
 * - A stage's group: the targets named in `players`, plus the targets whose
 *   labels include all of `selector`, in the job's order. A stage with
 *   neither takes every target that no other stage names or selects.
 * - Everything is checked when the job starts: a group that matches no
 *   target, a named player the job does not target, an unknown policy or
 *   options it refuses finish the job `FAIL` at once, naming the stage.
 * - Inner task keys are namespaced `s<index>:<key>` (index from 0).
 * - When a stage finishes, its tasks still live are cancelled.
 * - An inner policy that throws or returns an invalid decision fails the
 *   job at once, whatever `continueOn` says, with a reason naming the stage.
 * - The job's state: `OK` if every stage run ended `OK`; `FAIL` if none
 *   ended `OK` or `PARTIAL_FAIL`; `PARTIAL_FAIL` otherwise. When stages
 *   were skipped, that is the aggregate of the stages that ran, and the
 *   reason names the stage that stopped the job and the stages skipped.
 *
 * @since 0.1.0
 */
import type { Names } from "@orchestra/core"
import { Job, JobState, Policy } from "@orchestra/core"
import { Either, HashSet, Schema } from "effect"
import * as Inner from "./internal/Inner.js"

/** Which states of a stage let the next one start. */
export const ContinueOn = Schema.Union(
  Schema.Literal("OK", "PARTIAL_FAIL", "ANY"),
  Schema.Array(JobState.FinishedJobState).pipe(Schema.minItems(1))
).pipe(Schema.annotations({ identifier: "ContinueOn" }))
export type ContinueOn = typeof ContinueOn.Type

/** One stage. */
export const Stage = Schema.Struct({
  /** A name for reasons and status ("canary", "rollout"). */
  name: Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128))),
  /** Targets of the job that are in the stage, by name. */
  players: Schema.optional(Schema.Array(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128))).pipe(Schema.maxItems(100_000))),
  /** Targets of the job that are in the stage, by labels: every target whose labels include all of these. */
  selector: Schema.optional(Job.Labels),
  /** The policy the stage runs under, and its options (checked by that policy when the job starts). */
  policy: Schema.Struct({
    name: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(256)),
    options: Schema.optionalWith(Schema.Unknown, { default: () => ({}) })
  }),
  /** States of this stage that let the next one start. Default `"OK"`. */
  continueOn: Schema.optionalWith(ContinueOn, { default: () => "OK" as const })
}).pipe(Schema.annotations({ identifier: "Stage" }))
export type Stage = typeof Stage.Type

/** Options of `stages`. */
export const Options = Schema.Struct({
  stages: Schema.Array(Stage).pipe(Schema.minItems(1), Schema.maxItems(100))
}).pipe(Schema.annotations({ identifier: "StagesOptions" }))
export type Options = typeof Options.Type

const ALL: ReadonlyArray<JobState.FinishedJobState> = JobState.FinishedJobState.literals

/** The states a `continueOn` allows. */
export const allowed = (continueOn: ContinueOn): ReadonlySet<JobState.FinishedJobState> => {
  switch (continueOn) {
    case "OK":
      return new Set(["OK"])
    case "PARTIAL_FAIL":
      return new Set(["OK", "PARTIAL_FAIL"])
    case "ANY":
      return new Set(ALL)
    default:
      return new Set(continueOn)
  }
}

/**
 * The aggregate of finished stages: `OK` if all are `OK`, `FAIL` if none
 * is `OK` or `PARTIAL_FAIL`, `PARTIAL_FAIL` otherwise.
 */
export const aggregate = (states: ReadonlyArray<JobState.FinishedJobState>): JobState.FinishedJobState => {
  if (states.every((s) => s === "OK")) return "OK"
  if (states.every((s) => s !== "OK" && s !== "PARTIAL_FAIL")) return "FAIL"
  return "PARTIAL_FAIL"
}

/** The key prefix of stage `index` (from 0). */
export const prefix = (index: number): string => `s${index}:`

/**
 * The groups of the stages, in the job's target order; a stage with no
 * `players` and no `selector` takes the targets no other stage has.
 * Returns the first problem instead when a stage names a player the job
 * does not target.
 */
export const groups = (
  stages: ReadonlyArray<Stage>,
  targets: ReadonlyArray<Names.PlayerName>,
  labels: ReadonlyMap<Names.PlayerName, Job.Labels>
): Either.Either<ReadonlyArray<ReadonlyArray<Names.PlayerName>>, string> => {
  const targetSet = new Set<string>(targets)
  const explicit: Array<ReadonlyArray<Names.PlayerName> | undefined> = []
  const claimed = new Set<Names.PlayerName>()
  for (const [i, stage] of stages.entries()) {
    if (stage.players === undefined && stage.selector === undefined) {
      explicit.push(undefined)
      continue
    }
    const named = new Set(stage.players ?? [])
    for (const n of named) {
      if (!targetSet.has(n)) return Either.left(`${label(stages, i)} names player ${JSON.stringify(n)}, which the job does not target`)
    }
    const selector = stage.selector === undefined ? undefined : Object.entries(stage.selector)
    const group = targets.filter((t) => {
      if (named.has(t)) return true
      if (selector === undefined) return false
      const l = labels.get(t) ?? {}
      return selector.every(([k, v]) => l[k] === v)
    })
    for (const t of group) claimed.add(t)
    explicit.push(group)
  }
  const rest = targets.filter((t) => !claimed.has(t))
  return Either.right(explicit.map((g) => g ?? rest))
}

/** "stage 2 (canary)", or "stage 2" for a stage with no name. */
export const label = (stages: ReadonlyArray<{ readonly name?: string | undefined }>, index: number): string => {
  const name = stages[index]?.name
  return name === undefined ? `stage ${index + 1}` : `stage ${index + 1} (${name})`
}

/** Inner reasons are cut to this length in the job's reason. */
const INNER_REASON_LIMIT = 300

const short = (reason: string): string =>
  reason.length > INNER_REASON_LIMIT ? `${reason.slice(0, INNER_REASON_LIMIT - 1)}…` : reason

/** How a stage that ran ended. */
export interface StageResult {
  readonly state: JobState.FinishedJobState
  readonly reason?: string
}

/** Everything fixed at start, shared by every state of a job. */
interface Plan {
  readonly stages: ReadonlyArray<Stage>
  readonly setups: ReadonlyArray<Inner.StageSetup>
  readonly allowed: ReadonlyArray<ReadonlySet<JobState.FinishedJobState>>
  readonly context: Omit<Policy.StartContext<unknown>, "options" | "players" | "now">
}

/** The state of a `stages` job. */
export interface State {
  readonly plan: Plan
  /** The stage running (or the last one run, once finished). */
  readonly current: number
  readonly inner: Inner.Inner | undefined
  /** How the stages before `current` ended. */
  readonly results: ReadonlyArray<StageResult>
}

const describeResult = (stages: ReadonlyArray<Stage>, i: number, r: StageResult): string =>
  `${label(stages, i)} ${r.state}${r.reason === undefined ? "" : ` (${short(r.reason)})`}`

const skipped = (stages: ReadonlyArray<Stage>, from: number): string => {
  const names = stages.slice(from).map((_, j) => label(stages, from + j).replace(/^stage /, ""))
  return `${names.length === 1 ? "stage" : "stages"} ${names.join(", ")} skipped`
}

/** Earlier stages that did not end OK, for a reason. */
const notOkBefore = (stages: ReadonlyArray<Stage>, results: ReadonlyArray<StageResult>, before: number): string => {
  const shown = results.slice(0, before).flatMap((r, i) => (r.state === "OK" ? [] : [describeResult(stages, i, r)]))
  return shown.length === 0 ? "" : `; earlier: ${shown.join("; ")}`
}

const finishAll = (state: State): Policy.Decision<State> => {
  const { stages } = state.plan
  const states = state.results.map((r) => r.state)
  const agg = aggregate(states)
  if (agg === "OK") return { state, actions: [], finished: { state: "OK" } }
  return {
    state,
    actions: [],
    finished: { state: agg, reason: state.results.map((r, i) => describeResult(stages, i, r)).join("; ") }
  }
}

const stop = (state: State, at: number): Policy.Decision<State> => {
  const { stages } = state.plan
  const r = state.results[at]!
  const reason = `${label(stages, at)} ended ${r.state}${r.reason === undefined ? "" : ` (${short(r.reason)})`}: ` +
    `${skipped(stages, at + 1)}${notOkBefore(stages, state.results, at)}`
  return { state, actions: [], finished: { state: aggregate(state.results.map((x) => x.state)), reason } }
}

const misbehaved = (state: State, at: number, why: string): Policy.Decision<State> => {
  const { stages } = state.plan
  const rest = at + 1 < stages.length ? `; ${skipped(stages, at + 1)}` : ""
  return { state, actions: [], finished: { state: "FAIL", reason: `${label(stages, at)}: ${why}${rest}` } }
}

/**
 * Go on from a stage's result: start stages in turn while they finish at
 * once, and stop or finish when the plan says so. `actions` are the
 * actions already due (cancels of the stage just finished).
 */
const advance = (
  state: State,
  result: Inner.Result,
  actions: Array<Policy.PolicyAction>,
  now: number
): Policy.Decision<State> => {
  let s = state
  let r = result
  for (;;) {
    const i = s.current
    switch (r._tag) {
      case "Misbehaved":
        return misbehaved(s, i, r.reason)
      case "Running":
        for (const a of r.actions) actions.push(a)
        return { state: { ...s, inner: r.inner }, actions }
      case "Finished": {
        for (const key of r.cancel) actions.push({ _tag: "Cancel", key })
        s = { ...s, inner: undefined, results: [...s.results, r.finished] }
        const { plan } = s
        if (i + 1 >= plan.stages.length) return { ...finishAll(s), actions: [] }
        if (!plan.allowed[i]!.has(r.finished.state)) return { ...stop(s, i), actions: [] }
        s = { ...s, current: i + 1 }
        r = Inner.start(plan.setups[i + 1]!, { ...plan.context, now })
      }
    }
  }
}

/** The `stages` policy, typed. */
export const policy: Policy.Policy<Options, Schema.Schema.Encoded<typeof Options>, State> = {
  name: "stages",
  description:
    "Ordered stages, each a group of players (by name or label) run under a policy of its own; the next starts when the previous one's state allows it (continueOn)",
  options: Options,
  start: (context) => {
    const { options, players, labels, policies } = context
    const stages = options.stages
    const fail = (reason: string): Policy.Decision<State> => ({
      state: undefined as unknown as State,
      actions: [],
      finished: { state: "FAIL", reason }
    })
    const grouped = groups(stages, players, labels)
    if (Either.isLeft(grouped)) return fail(grouped.left)
    const setups: Array<Inner.StageSetup> = []
    for (const [i, stage] of stages.entries()) {
      const group = grouped.right[i]!
      if (group.length === 0) {
        const how = stage.players === undefined && stage.selector === undefined
          ? "takes the targets no other stage has, and there are none"
          : "matches no target of the job"
        return fail(`${label(stages, i)} ${how}`)
      }
      const plugin = policies(stage.policy.name)
      if (plugin === undefined) return fail(`${label(stages, i)}: unknown policy "${stage.policy.name}"`)
      const decoded = Inner.decodeOptions(plugin, stage.policy.options)
      if (Either.isLeft(decoded)) return fail(`${label(stages, i)}: ${decoded.left}`)
      setups.push({ prefix: prefix(i), group, groupSet: new Set(group), policy: plugin.name, options: decoded.right })
    }
    const plan: Plan = {
      stages,
      setups,
      allowed: stages.map((s) => allowed(s.continueOn)),
      context: { job: context.job, score: context.score, labels, policies }
    }
    const state: State = { plan, current: 0, inner: undefined, results: [] }
    return advance(state, Inner.start(setups[0]!, { ...plan.context, now: context.now }), [], context.now)
  },
  onTaskEnded: (state, event, now) => {
    const setup = state.plan.setups[state.current]!
    // Outcomes of an earlier stage's tasks (cancelled when it finished) change nothing.
    if (state.inner === undefined || !event.key.startsWith(setup.prefix)) return { state, actions: [] }
    const key = event.key.slice(setup.prefix.length)
    if (!HashSet.has(state.inner.live, key)) return { state, actions: [] }
    return advance(state, Inner.taskEnded(setup, state.inner, key, event, now), [], now)
  }
}

/** Make the `stages` policy plugin. */
export const policyStages = (): Policy.PolicyPlugin => Policy.make(policy)
