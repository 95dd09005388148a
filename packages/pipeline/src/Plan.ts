/**
 * Dry runs: what a job or a pipeline would do, without running anything.
 *
 * {@link ofJob} asks the job's own policy — the same plugin the conductor
 * would run, driven through core's `PolicyRun` — pretending every task ends
 * `OK` at once: the tasks it starts first are batch 1, the tasks it starts
 * once those ended are batch 2, and so on until it finishes. Each task is
 * shown with the player that takes it when all are online (the first of the
 * players it may run on) and the others it could fall back to. This is what
 * `orchestra submit --plan` shows for one job.
 *
 * {@link ofPipeline} lays a pipeline out by topological level, each job
 * with its params resolved where they can be (the run's params; templates
 * reading jobs not run yet show as `<from jobs.build.output.version>`), its
 * targets, and its plan.
 *
 * @since 0.1.0
 */
import type { Job, Policy } from "@orchestra/core"
import { Json, Names, PolicyRun } from "@orchestra/core"
import { Either } from "effect"
import type * as Pipeline from "./Pipeline.js"
import type { PipelineError } from "./Pipeline.js"
import * as PipelineRunModule from "./PipelineRun.js"
import * as Template from "./Template.js"

/** One task of a plan. */
export interface PlannedTask {
  readonly key: Names.TaskKey
  /** Who takes it when every player is online: the first it may run on. */
  readonly player: Names.PlayerName
  /** Every player it may run on, in the policy's order of preference. */
  readonly candidates: ReadonlyArray<Names.PlayerName>
}

/** What a job would do if every task ended `OK`. */
export interface JobPlan {
  readonly policy: string
  /** Tasks started together; batch n+1 starts once batch n has ended. */
  readonly batches: ReadonlyArray<ReadonlyArray<PlannedTask>>
  /** How the job would end (a policy that refuses its options or targets ends `FAIL` here, with its reason). */
  readonly finished: Policy.Finished | undefined
  /** True when the plan was cut at {@link MAX_ROUNDS} batches or {@link MAX_TASKS} tasks. */
  readonly truncated: boolean
}

export interface JobPlanOptions {
  /** Other policies, for policies that compose others (`stages`). */
  readonly policies?: Policy.PolicyLookup | undefined
  readonly score?: Names.ScoreName | undefined
}

/** Plans stop after this many batches. */
export const MAX_ROUNDS = 10_000
/** Plans stop after this many tasks. */
export const MAX_TASKS = 100_000

const PLAN_JOB = Names.jobId(1)
const PLAN_SCORE = Names.scoreName("plan")

const labelMap = (
  labels: ReadonlyMap<Names.PlayerName, Job.Labels> | Readonly<Record<string, Job.Labels>> | undefined
): ReadonlyMap<Names.PlayerName, Job.Labels> => {
  if (labels === undefined) return new Map()
  if (labels instanceof Map) return labels
  return new Map(Object.entries(labels as Readonly<Record<string, Job.Labels>>).map(([k, v]) => [k as Names.PlayerName, v]))
}

/**
 * The batches of players a job would run on, from its policy's own
 * decisions with every task ending `OK`.
 */
export const ofJob = (
  plugin: Policy.PolicyPlugin,
  options: unknown,
  players: ReadonlyArray<Names.PlayerName>,
  labels?: ReadonlyMap<Names.PlayerName, Job.Labels> | Readonly<Record<string, Job.Labels>>,
  more?: JobPlanOptions
): JobPlan => {
  const { run, step } = PolicyRun.PolicyRun.start(plugin, options, {
    job: PLAN_JOB,
    score: more?.score ?? PLAN_SCORE,
    players,
    labels: labelMap(labels),
    now: 0,
    policies: more?.policies ?? (() => undefined)
  })
  const tasksOf = (s: PolicyRun.Step): Array<PlannedTask> =>
    s.actions.flatMap((a) => (a._tag === "Run" ? [{ key: a.key, player: a.players[0]!, candidates: a.players }] : []))
  const batches: Array<ReadonlyArray<PlannedTask>> = []
  let current = tasksOf(step)
  let tasks = 0
  let truncated = false
  while (current.length > 0 && run.finished === undefined) {
    if (batches.length >= MAX_ROUNDS || tasks + current.length > MAX_TASKS) {
      truncated = true
      break
    }
    batches.push(current)
    tasks += current.length
    const next: Array<PlannedTask> = []
    for (const t of current) {
      const s = run.taskEnded({ key: t.key, player: t.player, attempt: 1, outcome: "OK", response: {} }, batches.length)
      next.push(...tasksOf(s))
    }
    current = next
  }
  return { policy: plugin.name, batches, finished: run.finished, truncated }
}

/** A job's plan with an unknown policy. */
const unknownPolicy = (name: string): JobPlan => ({
  policy: name,
  batches: [],
  finished: { state: "FAIL", reason: `unknown policy "${name}"` },
  truncated: false
})

/** One job of a pipeline plan. */
export interface PlannedJob {
  readonly name: string
  readonly level: number
  readonly needs: ReadonlyArray<string>
  readonly when: ReadonlyArray<string>
  readonly score: Names.ScoreName
  readonly policy: Job.PolicyRef
  /** Params resolved where they can be; `<from jobs.J.…>` where they cannot yet. */
  readonly params: Json.Json
  readonly targets: ReadonlyArray<Names.PlayerName>
  readonly plan: JobPlan
}

export interface PipelinePlan {
  readonly name: string
  /** The run's params, validated, defaults applied. */
  readonly params: Json.JsonObject
  /** Jobs by topological level. */
  readonly levels: ReadonlyArray<ReadonlyArray<PlannedJob>>
}

/** Resolve a job's targets, as the conductor would. */
export type TargetResolver = (job: {
  readonly players: ReadonlyArray<Names.PlayerName>
  readonly selector: Job.Labels | undefined
}) => { readonly targets: ReadonlyArray<Names.PlayerName>; readonly labels: ReadonlyMap<Names.PlayerName, Job.Labels> }

export interface PipelinePlanContext {
  readonly policies: Policy.PolicyLookup
  /** Default: the players named, without labels (a selector matches nobody). */
  readonly targets?: TargetResolver | undefined
}

const namedOnly: TargetResolver = (job) => ({ targets: job.players, labels: new Map() })

/** The placeholder for a value known only once a job ran. */
export const placeholder = (ref: Template.Ref): string => `<from ${Template.render(ref)}>`

/** Plan a pipeline run with these params. Invalid params are a `PipelineError`. */
export const ofPipeline = (
  pipeline: Pipeline.Pipeline,
  params: unknown,
  context: PipelinePlanContext
): Either.Either<PipelinePlan, PipelineError> =>
  Either.map(PipelineRunModule.checkParams(pipeline, params), (checked) => {
    const resolveTargets = context.targets ?? namedOnly
    const planned: Array<Array<PlannedJob>> = pipeline.levels.map(() => [])
    for (const job of pipeline.jobs) {
      const resolvedParams = Template.substitute(job.params, (expr) => {
        if (expr.ref._tag !== "Param") return placeholder(expr.ref)
        let v: Json.Json | undefined = checked
        for (const seg of expr.ref.path) {
          v = Json.isJsonObject(v) ? v[seg] : undefined
          if (v === undefined) break
        }
        return v === undefined ? `<missing ${Template.render(expr.ref)}>` : v
      })
      const { labels, targets } = resolveTargets({ players: job.players, selector: job.selector })
      const plugin = context.policies(job.policy.name)
      const plan = plugin === undefined
        ? unknownPolicy(job.policy.name)
        : ofJob(plugin, job.policy.options, targets, labels, { policies: context.policies, score: job.score })
      planned[job.level]!.push({
        name: job.name,
        level: job.level,
        needs: job.needs,
        when: job.when,
        score: job.score,
        policy: job.policy,
        params: resolvedParams,
        targets,
        plan
      })
    }
    return { name: pipeline.name, params: checked, levels: planned }
  })

const describeBatch = (batch: ReadonlyArray<PlannedTask>): string =>
  batch.map((t) => {
    const others = t.candidates.filter((c) => c !== t.player)
    return others.length === 0 ? t.player : `${t.player} (else ${others.join(", ")})`
  }).join(", ")

/** A job plan as text, one line per batch. */
export const renderJob = (plan: JobPlan, indent = ""): string => {
  const lines = plan.batches.map((b, i) => `${indent}batch ${i + 1}: ${describeBatch(b)}`)
  if (plan.truncated) lines.push(`${indent}… (plan cut after ${plan.batches.length} batches)`)
  if (plan.finished !== undefined) {
    lines.push(`${indent}ends ${plan.finished.state}${plan.finished.reason === undefined ? "" : `: ${plan.finished.reason}`}`)
  }
  return lines.join("\n")
}

/** A pipeline plan as text. */
export const renderPipeline = (plan: PipelinePlan): string => {
  const lines: Array<string> = [`pipeline ${plan.name}  params ${JSON.stringify(plan.params)}`]
  plan.levels.forEach((jobs, level) => {
    lines.push(`level ${level}`)
    for (const j of jobs) {
      const needs = j.needs.length === 0 ? "" : `  needs ${j.needs.join(", ")}${j.when.length === 1 && j.when[0] === "OK" ? "" : ` (when ${j.when.join(", ")})`}`
      lines.push(`  ${j.name}: score ${j.score}, policy ${j.policy.name}${needs}`)
      lines.push(`    params ${JSON.stringify(j.params)}`)
      lines.push(renderJob(j.plan, "    "))
    }
  })
  return lines.join("\n")
}
