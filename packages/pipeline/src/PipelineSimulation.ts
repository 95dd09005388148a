/**
 * Simulated pipeline runs: a second driver of {@link PipelineRun}, next to
 * the conductor's, that needs no I/O. Each run is started with the
 * pipeline and its params, and every `SubmitJob` it issues is simulated
 * with core's `Simulation` — the job's own policy plugin (looked up as the
 * conductor would), its own targets, simulated players with outcome
 * weights, latency and slots — in simulated time: a job starts when the run
 * submits it and ends `durationMs` later; the run is told the job finished
 * at that time, with per-player results, and submits what that made ready.
 * A run's completion time is the simulated time its last job ended.
 *
 * What the simulated players report, so that templates resolve: for each
 * key the pipeline's templates read from a job (`jobs.J.output.K`,
 * `jobs.J.players.P.response.K`), every player of `J` whose task ended `OK`
 * reports a deterministic placeholder — taken from the producing score's
 * `outputs` schema when the catalog has the score (`const`, the first of
 * `enum`, `default`, the first of `examples`, else a value of its type:
 * `0` within `minimum`/`maximum` for numbers, `true`, `[]`, `{}`, `null`,
 * or the string `sim:J.K`), and the string `sim:J.K` otherwise. A `pipe`
 * score reports strings whatever its schema says; an `env` score reports
 * nothing. A player whose task did not end `OK` reports nothing — so a
 * failure handler reading the response of a failed job fails at run time
 * here as it would for real.
 *
 * Targets: the players a job names; a job with a `selector` also runs on a
 * pool of simulated players `sim-1`..`sim-N` ({@link Config.pool}, default
 * 3), each carrying the selector's labels — the players the selector
 * would match.
 *
 * What is not simulated (each noted so the numbers are read right):
 * jobs of a run that are live at the same time do not compete for slots of
 * a player they share (each job has the players to itself); `retry` and
 * `deadline` of a job are not applied; params are not checked against the
 * consuming score's `parameters` at submission (their values are
 * placeholders — `orchestra pipeline validate --scores` checks their types).
 * A job whose policy is unknown or refuses its options is refused at
 * submission, as intake would refuse it.
 *
 * Pure: no I/O, no clock; the same seed gives the same report. Run `i` uses
 * the seed `Simulation.deriveSeed(seed, i)`, and a job the seed derived
 * from that and the job's index. Bounded by {@link LIMITS}.
 *
 * @since 0.1.0
 */
import type { Catalog, Job, JobState, Json, Policy } from "@orchestra/core"
import { Names, Outcome, PolicyRun as CorePolicyRun, Simulation } from "@orchestra/core"
import { Data, Either } from "effect"
import * as T from "./internal/jsonTypes.js"
import type * as Pipeline from "./Pipeline.js"
import * as PipelineRun from "./PipelineRun.js"
import * as Template from "./Template.js"

type FinishedJobState = JobState.FinishedJobState
type OutcomeT = Outcome.Outcome

/** Bounds of one simulation. */
export const LIMITS = {
  /** Most runs. */
  runs: 100_000,
  /** Most tasks offered in all (runs × the distinct targets of every job), and most attempts dispatched. */
  tasks: 5_000_000,
  /** Most simulated players in the selector pool. */
  pool: 100_000,
  /** Most events simulated for one job (see `Simulation.SimulationConfig.maxEvents`). */
  eventsPerJob: 1_000_000
} as const

/** How many simulated players a `selector` matches unless told. */
export const DEFAULT_POOL = 3

/** Why a simulation could not be made. */
export class PipelineSimulationError extends Data.TaggedError("PipelineSimulationError")<{
  /** `input`: a count, seed or override out of range; `params`: the pipeline refuses the params; `limits`: too much work. */
  readonly reason: "input" | "params" | "limits"
  readonly message: string
}> {}

/** How the tasks of one job end and how long they take, instead of the defaults. */
export interface JobModel {
  readonly outcome?: Simulation.OutcomeModel
  readonly latency?: Simulation.LatencyModel
}

/** What to simulate. */
export interface Config {
  /** A pipeline that passed `Pipeline.parse` (better: `Pipeline.validate`). */
  readonly pipeline: Pipeline.Pipeline
  /** The run's params, as given (checked against the pipeline's params schema). */
  readonly params: unknown
  /** Policies by name: each job's own, and those that compose others (`stages`). */
  readonly policies: Policy.PolicyLookup
  /** The scores, for the `outputs` schemas placeholders are made from. Default: none (every placeholder a string). */
  readonly catalog?: ReadonlyArray<Catalog.ScoreInfo> | ((score: string) => Catalog.ScoreInfo | undefined)
  /** How tasks end. Default: every attempt `OK`. */
  readonly outcome?: Simulation.OutcomeModel
  /** How long tasks run. Default: uniform in [1, 100] ms. */
  readonly latency?: Simulation.LatencyModel
  /** Per job, by name: models that replace the defaults. */
  readonly jobs?: Readonly<Record<string, JobModel>>
  /** Tasks a player runs at once. Default 1. */
  readonly slots?: number
  /** Players going offline and back, per job. Default: none. */
  readonly churn?: Simulation.Churn
  /** How many simulated players (`sim-1`..`sim-N`) a `selector` matches. Default 3. */
  readonly pool?: number
  readonly seed: number
  readonly runs: number
  /** Simulated epoch milliseconds at which each run starts. Default 0. */
  readonly startAt?: number
}

/** One job in one simulated run. */
export interface JobTimeline {
  readonly name: string
  /** `finished` (it ran), `skipped`, or `failed` (it could not be submitted); `waiting` only in an unfinished run. */
  readonly status: PipelineRun.JobStatus
  /** Simulated time the run submitted it. */
  readonly submittedAt: number | undefined
  readonly finishedAt: number | undefined
  /** How it ended; `undefined` when it did not run. */
  readonly state: FinishedJobState | undefined
  /** False when its simulation stopped before the job finished (it then counts as `FAIL` for the run). */
  readonly completed: boolean
  readonly reason: string | undefined
  /** Its params, templates resolved. */
  readonly params: Json.JsonObject | undefined
  /** The distinct players it was offered. */
  readonly targets: ReadonlyArray<Names.PlayerName>
  /** Attempts handed to players. */
  readonly dispatches: number
  /** Outcomes of ended attempts fed to its policy. */
  readonly outcomes: Readonly<Record<OutcomeT, number>>
}

/** One simulated run. */
export interface RunResult {
  readonly index: number
  readonly seed: number
  /** How the run ended; `undefined` if it did not (a bug this reports instead of hiding). */
  readonly state: FinishedJobState | undefined
  readonly reason: string | undefined
  /** From the start to the end of its last job, in simulated ms. */
  readonly durationMs: number
  /** Every job, in the pipeline's topological order. */
  readonly jobs: ReadonlyArray<JobTimeline>
  /** Names of the jobs in the order the run submitted them. */
  readonly submitted: ReadonlyArray<string>
}

/** Simulated times summed up, in ms. */
export interface Durations {
  readonly min: number
  readonly mean: number
  readonly p50: number
  readonly p95: number
  readonly max: number
}

export type StateCounts = Readonly<Record<FinishedJobState | "unfinished", number>>

/** One job over every run. */
export interface JobSummary {
  readonly name: string
  readonly score: string
  readonly policy: string
  readonly needs: ReadonlyArray<string>
  readonly when: ReadonlyArray<FinishedJobState>
  /** Distinct players it is offered in a run. */
  readonly targets: number
  /** Runs in which it was submitted. */
  readonly ran: number
  readonly skipped: number
  /** Runs in which it could not be submitted (a template that did not resolve, a refused request). */
  readonly failed: number
  /** How it ended when it ran; `unfinished`: its simulation stopped first. */
  readonly states: StateCounts
  readonly outcomes: Readonly<Record<OutcomeT, number>>
  readonly dispatches: number
  /** How long it took when it ran. */
  readonly durationMs: Durations
}

/** The runs summed up. */
export interface Report {
  readonly pipeline: string
  readonly file: string
  /** The params, checked, defaults applied. */
  readonly params: Json.JsonObject
  readonly runs: number
  readonly seed: number
  /** The players a selector matches (0 when no job has a selector). */
  readonly pool: number
  /** Runs by how they ended. */
  readonly states: StateCounts
  /** Completion time of the runs. */
  readonly durationMs: Durations
  /** Outcomes of every task of every run. */
  readonly outcomes: Readonly<Record<OutcomeT, number>>
  readonly dispatches: number
  /** Every job, in topological order. */
  readonly jobs: ReadonlyArray<JobSummary>
  /** The most frequent reasons runs gave for not ending `OK`, most frequent first. */
  readonly reasons: ReadonlyArray<{ readonly reason: string; readonly count: number }>
}

// ---------------------------------------------------------------------------

const emptyOutcomes = (): Record<OutcomeT, number> => {
  const out = {} as Record<OutcomeT, number>
  for (const o of Outcome.all) out[o] = 0
  return out
}

const emptyStates = (): Record<FinishedJobState | "unfinished", number> => ({ OK: 0, PARTIAL_FAIL: 0, FAIL: 0, CANCELLED: 0, unfinished: 0 })

const durations = (values: Array<number>): Durations => {
  if (values.length === 0) return { min: 0, mean: 0, p50: 0, p95: 0, max: 0 }
  values.sort((a, b) => a - b)
  const at = (q: number) => values[Math.min(values.length - 1, Math.floor(q * values.length))]!
  return { min: values[0]!, mean: values.reduce((s, d) => s + d, 0) / values.length, p50: at(0.5), p95: at(0.95), max: values[values.length - 1]! }
}

const fail = (reason: PipelineSimulationError["reason"], message: string) => Either.left(new PipelineSimulationError({ reason, message }))

// ---- what simulated players report ------------------------------------------

const isJson = (u: unknown): u is Json.Json =>
  u === null || typeof u === "string" || typeof u === "boolean" || (typeof u === "number" && Number.isFinite(u)) ||
  (Array.isArray(u) && u.every(isJson)) || (T.isObject(u) && Object.values(u).every(isJson))

/** A number within the schema's bounds, as near 0 as they allow. */
const numberWithin = (schema: Readonly<Record<string, unknown>>): number => {
  let n = 0
  const min = schema["minimum"]
  const exclusiveMin = schema["exclusiveMinimum"]
  const max = schema["maximum"]
  if (typeof min === "number" && Number.isFinite(min)) n = Math.max(n, Math.ceil(min))
  if (typeof exclusiveMin === "number" && Number.isFinite(exclusiveMin)) n = Math.max(n, Math.floor(exclusiveMin) + 1)
  if (typeof max === "number" && Number.isFinite(max) && n > max) n = Math.floor(max)
  return n
}

/** The placeholder a schema suggests (see the module's doc); `fallback` for a string or a schema that says nothing. */
export const placeholderOf = (schema: unknown, fallback: string): Json.Json => {
  if (!T.isObject(schema)) return fallback
  if ("const" in schema && isJson(schema["const"])) return schema["const"]
  const en = schema["enum"]
  if (Array.isArray(en) && en.length > 0 && isJson(en[0])) return en[0]
  if ("default" in schema && isJson(schema["default"])) return schema["default"]
  const examples = schema["examples"]
  if (Array.isArray(examples) && examples.length > 0 && isJson(examples[0])) return examples[0]
  const types = T.typesOf(schema)
  const first = types === undefined ? "string" : types.has("string") ? "string" : [...types][0] ?? "string"
  switch (first) {
    case "string":
      return fallback
    case "integer":
    case "number":
      return numberWithin(schema)
    case "boolean":
      return true
    case "null":
      return null
    case "array":
      return []
    case "object":
      return {}
  }
}

/** Set `value` at `path` in `target`, making objects on the way (a deeper key replaces a shallower value). */
const setPath = (target: Record<string, Json.Json>, path: ReadonlyArray<string>, value: Json.Json): void => {
  let node = target
  path.forEach((seg, i) => {
    if (i === path.length - 1) {
      if (!T.isObject(node[seg])) node[seg] = value
      return
    }
    const next = node[seg]
    if (!T.isObject(next)) node[seg] = {}
    node = node[seg] as Record<string, Json.Json>
  })
}

/** The keys the pipeline's templates read from each job, shortest first. */
const referencedKeys = (pipeline: Pipeline.Pipeline): ReadonlyMap<string, ReadonlyArray<ReadonlyArray<string>>> => {
  const byJob = new Map<string, Map<string, ReadonlyArray<string>>>()
  for (const job of pipeline.jobs) {
    for (const occ of Template.occurrences(job.params)) {
      const ref = occ.expr.ref
      if (ref._tag !== "Output" && ref._tag !== "Response") continue
      let keys = byJob.get(ref.job)
      if (keys === undefined) byJob.set(ref.job, keys = new Map())
      keys.set(ref.key.join("\u0000"), ref.key)
    }
  }
  return new Map([...byJob].map(([job, keys]) => [job, [...keys.values()].sort((a, b) => a.length - b.length)]))
}

/** What a player whose task ended `OK` reports for each job. */
const responsesOf = (
  pipeline: Pipeline.Pipeline,
  scoreOf: (score: string) => Catalog.ScoreInfo | undefined
): ReadonlyMap<string, Job.Response> => {
  const out = new Map<string, Job.Response>()
  for (const [jobName, keys] of referencedKeys(pipeline)) {
    const job = pipeline.byName.get(jobName)
    if (job === undefined) continue
    const score = scoreOf(job.score)
    if (score?.interface === "env") continue
    const response: Record<string, Json.Json> = {}
    for (const key of keys) {
      const fallback = `sim:${jobName}.${key.join(".")}`
      const w = score?.outputs === undefined ? undefined : T.walk(score.outputs, key, 1)
      let value = placeholderOf(w?._tag === "Found" ? w.schema : undefined, fallback)
      if (score?.interface === "pipe" && typeof value !== "string") value = Template.interpolate(value)
      setPath(response, key, value)
    }
    out.set(jobName, response)
  }
  return out
}

// ---- one run ------------------------------------------------------------------

interface Prepared {
  readonly pipeline: Pipeline.Pipeline
  readonly params: Json.JsonObject
  readonly policies: Policy.PolicyLookup
  readonly responses: ReadonlyMap<string, Job.Response>
  readonly models: ReadonlyMap<string, { readonly outcome: Simulation.OutcomeModel; readonly latency: Simulation.LatencyModel }>
  readonly jobIndex: ReadonlyMap<string, number>
  readonly pool: ReadonlyArray<Names.PlayerName>
  readonly slots: number
  readonly churn: Simulation.Churn | undefined
  readonly seed: number
  readonly startAt: number
}

interface Mutable {
  submittedAt: number | undefined
  finishedAt: number | undefined
  state: FinishedJobState | undefined
  completed: boolean
  params: Json.JsonObject | undefined
  targets: ReadonlyArray<Names.PlayerName>
  dispatches: number
  outcomes: Record<OutcomeT, number>
}

interface Ending {
  readonly at: number
  readonly seq: number
  readonly jobName: string
  readonly result: PipelineRun.JobResult
}

/** The distinct players a job is offered, and their labels: the named ones, then the pool for a selector. */
const targetsOf = (request: Job.JobRequest, pool: ReadonlyArray<Names.PlayerName>) => {
  const named = new Set<string>(request.players)
  const targets: Array<Names.PlayerName> = [...request.players]
  const labels: Record<string, Job.Labels> = {}
  if (request.selector !== undefined) {
    for (const p of pool) {
      if (named.has(p)) continue
      targets.push(p)
      labels[p] = request.selector
    }
  }
  return { targets, labels }
}

const simulateRun = (prep: Prepared, index: number, budget: { dispatched: number }): RunResult => {
  const runSeed = Simulation.deriveSeed(prep.seed, index)
  const now0 = prep.startAt
  const jobs = new Map<string, Mutable>()
  for (const j of prep.pipeline.jobs) {
    jobs.set(j.name, {
      submittedAt: undefined,
      finishedAt: undefined,
      state: undefined,
      completed: true,
      params: undefined,
      targets: [],
      dispatches: 0,
      outcomes: emptyOutcomes()
    })
  }
  const submitted: Array<string> = []
  const endings: Array<Ending> = []
  let seq = 0
  let nextId = 1

  const first = PipelineRun.start(prep.pipeline, prep.params, now0, { runId: `sim-${index + 1}` })
  let state = first.state
  let todo: Array<PipelineRun.Action> = [...first.actions]

  const apply = (step: PipelineRun.Step) => {
    state = step.state
    todo.push(...step.actions)
  }

  /** Simulate one submitted job; its end is queued at the simulated time it ends. */
  const submit = (action: PipelineRun.SubmitJob, now: number) => {
    const request = action.request
    const plugin = prep.policies(request.policy.name)
    if (plugin === undefined) return apply(PipelineRun.submissionFailed(state, action.jobName, `policy: unknown policy "${request.policy.name}"`, now))
    const options = CorePolicyRun.decodeOptions(plugin, request.policy.options)
    if (Either.isLeft(options)) return apply(PipelineRun.submissionFailed(state, action.jobName, `policy.options: ${options.left}`, now))
    const id = Names.jobId(nextId++)
    apply(PipelineRun.jobSubmitted(state, action.jobName, id, now))
    const { labels, targets } = targetsOf(request, prep.pool)
    const model = prep.models.get(action.jobName)!
    const sim = Simulation.simulate(plugin, {
      seed: Simulation.deriveSeed(runSeed, prep.jobIndex.get(action.jobName) ?? 0),
      players: targets,
      options: request.policy.options,
      outcome: model.outcome,
      latency: model.latency,
      slots: prep.slots,
      ...(prep.churn === undefined ? {} : { churn: prep.churn }),
      maxEvents: LIMITS.eventsPerJob,
      trace: true,
      startAt: now,
      policies: prep.policies,
      labels,
      job: id,
      score: request.score
    })
    budget.dispatched += sim.dispatches
    const ok = prep.responses.get(action.jobName) ?? {}
    const players: Record<string, PipelineRun.PlayerResult> = {}
    for (const e of sim.trace) {
      if (e._tag === "Ended" && e.dispatched) players[e.player] = { outcome: e.outcome, response: e.outcome === "OK" ? ok : {} }
    }
    const result: PipelineRun.JobResult = sim.finished === undefined
      ? { id, state: "FAIL", reason: `the simulation of the job stopped before it finished (${sim.status})`, players }
      : { id, state: sim.finished.state, reason: sim.finished.reason, players }
    const m = jobs.get(action.jobName)!
    m.submittedAt = now
    m.params = request.params
    m.targets = sim.targets
    m.dispatches = sim.dispatches
    m.outcomes = { ...sim.outcomes }
    m.completed = sim.finished !== undefined
    submitted.push(action.jobName)
    pushEnding(endings, { at: now + sim.durationMs, seq: seq++, jobName: action.jobName, result })
  }

  const act = (now: number) => {
    while (todo.length > 0) {
      const batch = todo
      todo = []
      // Cancellations never come: a simulated run is not cancelled.
      for (const action of batch) if (action._tag === "SubmitJob") submit(action, now)
    }
  }

  act(now0)
  while (state.finished === undefined) {
    const next = popEnding(endings)
    if (next === undefined) break
    apply(PipelineRun.jobFinished(state, next.jobName, next.result, next.at))
    const m = jobs.get(next.jobName)!
    m.finishedAt = next.at
    m.state = next.result.state
    act(next.at)
  }

  const timelines: Array<JobTimeline> = prep.pipeline.jobs.map((j) => {
    const m = jobs.get(j.name)!
    const e = state.jobs[j.name]
    return {
      name: j.name,
      status: e?.status ?? "waiting",
      submittedAt: m.submittedAt,
      finishedAt: m.finishedAt,
      state: m.state,
      completed: m.completed,
      reason: e?.reason,
      params: m.params,
      targets: m.targets,
      dispatches: m.dispatches,
      outcomes: m.outcomes
    }
  })
  const finished = state.finished
  return {
    index,
    seed: runSeed,
    state: finished?.state,
    reason: finished?.reason,
    durationMs: (finished?.at ?? now0) - now0,
    jobs: timelines,
    submitted
  }
}

// A tiny binary min-heap of job ends, by time then submission order.
const lessEnding = (a: Ending, b: Ending) => a.at < b.at || (a.at === b.at && a.seq < b.seq)
const pushEnding = (heap: Array<Ending>, e: Ending): void => {
  heap.push(e)
  let i = heap.length - 1
  while (i > 0) {
    const parent = (i - 1) >> 1
    if (!lessEnding(heap[i]!, heap[parent]!)) break
    ;[heap[i], heap[parent]] = [heap[parent]!, heap[i]!]
    i = parent
  }
}
const popEnding = (heap: Array<Ending>): Ending | undefined => {
  const top = heap[0]
  if (top === undefined) return undefined
  const last = heap.pop()!
  if (heap.length > 0) {
    heap[0] = last
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < heap.length && lessEnding(heap[l]!, heap[m]!)) m = l
      if (r < heap.length && lessEnding(heap[r]!, heap[m]!)) m = r
      if (m === i) break
      ;[heap[i], heap[m]] = [heap[m]!, heap[i]!]
      i = m
    }
  }
  return top
}

// ---- many runs ------------------------------------------------------------------

const prepare = (config: Config): Either.Either<Prepared, PipelineSimulationError> => {
  const { pipeline } = config
  const count = (what: string, n: number, min: number, max: number) =>
    Number.isInteger(n) && n >= min && n <= max ? undefined : `${what} must be an integer from ${min} to ${max} (got ${n})`
  const hasSelector = pipeline.jobs.some((j) => j.selector !== undefined)
  const pool = config.pool ?? DEFAULT_POOL
  const problem = count("runs", config.runs, 1, LIMITS.runs) ??
    count("slots", config.slots ?? 1, 1, 1_000) ??
    count("the selector pool", pool, 1, LIMITS.pool) ??
    (Number.isSafeInteger(config.seed) ? undefined : `the seed must be an integer (got ${config.seed})`)
  if (problem !== undefined) return fail("input", problem)
  const unknownJobs = Object.keys(config.jobs ?? {}).filter((n) => !pipeline.byName.has(n))
  if (unknownJobs.length > 0) {
    return fail("input", `no job ${unknownJobs.map((n) => JSON.stringify(n)).join(", ")} in pipeline ${pipeline.name} (jobs: ${pipeline.jobs.map((j) => j.name).join(", ")})`)
  }
  const params = PipelineRun.checkParams(pipeline, config.params)
  if (Either.isLeft(params)) return fail("params", `invalid params: ${params.left.issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`)

  const poolNames = hasSelector ? Array.from({ length: pool }, (_, i) => Names.playerName(`sim-${i + 1}`)) : []
  const perRun = pipeline.jobs.reduce((sum, j) => {
    const named = new Set<string>(j.players)
    return sum + named.size + (j.selector === undefined ? 0 : poolNames.filter((p) => !named.has(p)).length)
  }, 0)
  if (perRun * config.runs > LIMITS.tasks) {
    return fail(
      "limits",
      `${config.runs} runs of pipeline ${pipeline.name} offer up to ${perRun * config.runs} tasks (${perRun} a run), more than the ${LIMITS.tasks} a simulation may: simulate fewer runs`
    )
  }

  const catalog = config.catalog
  const scoreOf = catalog === undefined
    ? () => undefined
    : typeof catalog === "function"
    ? catalog
    : ((list: ReadonlyArray<Catalog.ScoreInfo>) => {
      const byName = new Map(list.map((s) => [s.name as string, s]))
      return (score: string) => byName.get(score)
    })(catalog)
  const outcome = config.outcome ?? Simulation.always("OK")
  const latency = config.latency ?? Simulation.uniformLatency(1, 100)
  return Either.right({
    pipeline,
    params: params.right,
    policies: config.policies,
    responses: responsesOf(pipeline, scoreOf),
    models: new Map(pipeline.jobs.map((j) => {
      const own = config.jobs?.[j.name]
      return [j.name, { outcome: own?.outcome ?? outcome, latency: own?.latency ?? latency }] as const
    })),
    jobIndex: new Map(pipeline.jobs.map((j, i) => [j.name, i])),
    pool: poolNames,
    slots: config.slots ?? 1,
    churn: config.churn,
    seed: config.seed,
    startAt: config.startAt ?? 0
  })
}

class Accumulator {
  private readonly states = emptyStates()
  private readonly outcomes = emptyOutcomes()
  private readonly times: Array<number> = []
  private readonly reasons = new Map<string, number>()
  private dispatches = 0
  private readonly jobs: Array<{
    readonly job: Pipeline.PipelineJob
    targets: number
    ran: number
    skipped: number
    failed: number
    readonly states: Record<FinishedJobState | "unfinished", number>
    readonly outcomes: Record<OutcomeT, number>
    dispatches: number
    readonly times: Array<number>
  }>

  constructor(private readonly prep: Prepared) {
    this.jobs = prep.pipeline.jobs.map((job) => ({
      job,
      targets: 0,
      ran: 0,
      skipped: 0,
      failed: 0,
      states: emptyStates(),
      outcomes: emptyOutcomes(),
      dispatches: 0,
      times: []
    }))
  }

  add(run: RunResult): void {
    this.states[run.state ?? "unfinished"]++
    this.times.push(run.durationMs)
    if (run.state !== "OK") {
      const reason = run.reason ?? (run.state === undefined ? "the run did not finish" : `ended ${run.state}`)
      this.reasons.set(reason, (this.reasons.get(reason) ?? 0) + 1)
    }
    run.jobs.forEach((t, i) => {
      const acc = this.jobs[i]!
      acc.targets = Math.max(acc.targets, t.targets.length)
      if (t.submittedAt !== undefined) {
        acc.ran++
        acc.states[t.completed && t.state !== undefined ? t.state : "unfinished"]++
        if (t.finishedAt !== undefined) acc.times.push(t.finishedAt - t.submittedAt)
      } else if (t.status === "failed") acc.failed++
      else if (t.status === "skipped") acc.skipped++
      acc.dispatches += t.dispatches
      this.dispatches += t.dispatches
      for (const o of Outcome.all) {
        acc.outcomes[o] += t.outcomes[o]
        this.outcomes[o] += t.outcomes[o]
      }
    })
  }

  report(): Report {
    const { pipeline } = this.prep
    return {
      pipeline: pipeline.name,
      file: pipeline.file,
      params: this.prep.params,
      runs: this.times.length,
      seed: this.prep.seed,
      pool: this.prep.pool.length,
      states: { ...this.states },
      durationMs: durations(this.times),
      outcomes: { ...this.outcomes },
      dispatches: this.dispatches,
      jobs: this.jobs.map((acc) => ({
        name: acc.job.name,
        score: acc.job.score,
        policy: acc.job.policy.name,
        needs: acc.job.needs,
        when: acc.job.when,
        targets: acc.targets,
        ran: acc.ran,
        skipped: acc.skipped,
        failed: acc.failed,
        states: { ...acc.states },
        outcomes: { ...acc.outcomes },
        dispatches: acc.dispatches,
        durationMs: durations(acc.times)
      })),
      reasons: [...this.reasons.entries()]
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
        .slice(0, 5)
        .map(([reason, count]) => ({ reason, count }))
    }
  }
}

const execute = (
  config: Config,
  onRun: ((run: RunResult) => void) | undefined
): Either.Either<Report, PipelineSimulationError> =>
  Either.flatMap(prepare(config), (prep) => {
    const acc = new Accumulator(prep)
    const budget = { dispatched: 0 }
    for (let i = 0; i < config.runs; i++) {
      const run = simulateRun(prep, i, budget)
      acc.add(run)
      onRun?.(run)
      if (budget.dispatched > LIMITS.tasks) {
        return fail(
          "limits",
          `the policies dispatched ${budget.dispatched} attempts in ${i + 1} runs, more than the ${LIMITS.tasks} a simulation may: simulate fewer runs`
        )
      }
    }
    return Either.right(acc.report())
  })

/** Simulate `config.runs` runs of the pipeline and sum them up. */
export const simulate = (config: Config): Either.Either<Report, PipelineSimulationError> => execute(config, undefined)

/** {@link simulate}, keeping every run (for tests and tools that look at single runs). */
export const simulateRuns = (
  config: Config
): Either.Either<{ readonly report: Report; readonly runs: ReadonlyArray<RunResult> }, PipelineSimulationError> => {
  const runs: Array<RunResult> = []
  return Either.map(execute(config, (r) => void runs.push(r)), (report) => ({ report, runs }))
}
