/**
 * `orchestra simulate`: run a policy against simulated players — many
 * seeded jobs, with outcome weights, latency, slots — and report how long
 * jobs take (p50/p95/max, simulated time) and how they end. It uses the
 * same simulator as the policy conformance suite (`Simulation` in
 * `@orchestra/core`), the built-in policies (`one-of`, `all-of`, `stages`,
 * `rolling`) and policies loaded by path (`--plugin`), exactly as the
 * conductor loads them. Nothing is started and nothing runs: it is pure
 * computation, reproducible from its seed.
 *
 * `orchestra simulate --pipeline FILE` simulates whole runs of a pipeline
 * instead (`PipelineSimulation` in `@orchestra/pipeline`): the document is
 * loaded and checked as `orchestra pipeline validate` checks it (every
 * issue with its line, exit 78; with `--scores`, against those scores —
 * whose `outputs` then give the placeholders simulated players report their
 * types), each job is simulated with its own policy and targets, a job
 * with a `selector` on `--players N` simulated players `sim-1..sim-N`
 * carrying its labels, and the report says how runs ended, how long they
 * took and, per job, how often it ran, was skipped, or ended in each state.
 * `--policy` and `--pipeline` exclude each other (exit 64).
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import type { FileSystem } from "@effect/platform"
import { PluginLoader } from "@orchestra/conductor"
import type { Catalog, Json, Policy } from "@orchestra/core"
import { Outcome, PluginRegistry, Simulation } from "@orchestra/core"
import { ScoreDirectory, Units } from "@orchestra/manifest"
import { Pipeline, PipelineSimulation } from "@orchestra/pipeline"
import { policyAllOf } from "@orchestra/policy-all-of"
import { policyOneOf } from "@orchestra/policy-one-of"
import { policyRolling } from "@orchestra/policy-rolling"
import { policyStages } from "@orchestra/policy-stages"
import { Console, Effect, Either, Option } from "effect"
import * as path from "node:path"
import { keyValue, parseJsonObject } from "./Audience.js"
import * as Exit from "./Exit.js"

/** The policies `simulate` knows without `--plugin`. */
export const builtinPolicies = (): ReadonlyArray<Policy.PolicyPlugin> => [policyOneOf(), policyAllOf(), policyStages(), policyRolling()]

/** Most players, runs and slots accepted: keeps a simulation bounded. */
export const LIMITS = { players: 100_000, runs: 100_000, slots: 1_000 } as const

/** What to simulate. */
export interface SimulateInput {
  readonly policy: string
  /** The job's `policy.options`. */
  readonly options: unknown
  /** Policy plugins to load (paths or package names), relative to `baseDir`. */
  readonly plugins: ReadonlyArray<string>
  readonly baseDir: string
  readonly players: number
  /** Relative weights of outcomes; empty means every attempt `OK`. */
  readonly weights: Partial<Record<Outcome.Outcome, number>>
  /** `200ms`, `uniform:100ms-2s`, `exponential:500ms`; default `uniform:1ms-100ms`. */
  readonly latency?: string
  readonly slots: number
  readonly runs: number
  readonly seed: number
}

/** What came out. */
export interface Report {
  readonly policy: string
  readonly options: unknown
  readonly players: number
  readonly runs: number
  readonly seed: number
  readonly slots: number
  readonly latency: string
  readonly weights: Partial<Record<Outcome.Outcome, number>>
  readonly summary: Simulation.Summary
  /** The most frequent reasons jobs gave for how they finished, most frequent first. */
  readonly reasons: ReadonlyArray<{ readonly reason: string; readonly count: number }>
}

const usage = (message: string) => new Exit.ExitWith({ code: Exit.codes.usage, message })

const DEFAULT_LATENCY = "uniform:1ms-100ms"

/** A duration with a unit (`200ms`, `2s`), or a bare number of milliseconds. */
const parseMs = (text: string): Either.Either<number, string> =>
  /^\s*\d+(\.\d+)?\s*$/.test(text) ? Either.right(Number(text)) : Units.parseDuration(text)

/** Parse a latency model: `200ms`, `uniform:100ms-2s`, `exponential:500ms`. */
export const parseLatency = (spec: string): Either.Either<Simulation.LatencyModel, string> => {
  const bad = (why: string) => Either.left(`--latency ${JSON.stringify(spec)}: ${why} (expected 200ms, uniform:100ms-2s or exponential:500ms)`)
  const colon = spec.indexOf(":")
  if (colon < 0) {
    return Either.match(parseMs(spec), { onLeft: bad, onRight: (ms) => Either.right(Simulation.fixedLatency(ms)) })
  }
  const kind = spec.slice(0, colon)
  const rest = spec.slice(colon + 1)
  if (kind === "uniform") {
    const [lo, hi, ...more] = rest.split("-")
    if (lo === undefined || hi === undefined || more.length > 0) return bad("a uniform latency is a range min-max")
    const min = parseMs(lo)
    const max = parseMs(hi)
    if (Either.isLeft(min)) return bad(min.left)
    if (Either.isLeft(max)) return bad(max.left)
    if (max.right < min.right) return bad("the range's max is below its min")
    return Either.right(Simulation.uniformLatency(min.right, max.right))
  }
  if (kind === "exponential") {
    return Either.match(parseMs(rest), { onLeft: bad, onRight: (mean) => Either.right(Simulation.exponentialLatency(mean)) })
  }
  return bad(`unknown latency model ${JSON.stringify(kind)}`)
}

/** The registry: the built-in policies, then each plugin module in turn. */
export const registryOf = (plugins: ReadonlyArray<string>, baseDir: string) =>
  Effect.gen(function*() {
    let registry = yield* PluginRegistry.Registry.make(builtinPolicies())
    for (const spec of plugins) {
      const exported = yield* PluginLoader.load(spec, baseDir)
      registry = yield* Either.flatMap(PluginRegistry.pluginsOf(spec, exported), (found) => registry.add(found, spec))
    }
    return registry
  }).pipe(Effect.mapError((e) => usage(`--plugin ${e.spec}: ${e.message}`)))

const checkCount = (flag: string, n: number, min: number, max: number): Effect.Effect<void, Exit.ExitWith> =>
  Number.isInteger(n) && n >= min && n <= max ? Effect.void : Effect.fail(usage(`--${flag} must be an integer from ${min} to ${max} (got ${n})`))

/** The models of the simulated players both modes share: outcomes from the weights, latency, and the checks of the counts. */
const modelsOf = (input: {
  readonly weights: Partial<Record<Outcome.Outcome, number>>
  readonly latency?: string | undefined
  readonly runs: number
  readonly slots: number
  readonly seed: number
}) =>
  Effect.gen(function*() {
    yield* checkCount("runs", input.runs, 1, LIMITS.runs)
    yield* checkCount("slots", input.slots, 1, LIMITS.slots)
    if (!Number.isInteger(input.seed)) return yield* usage(`--seed must be an integer (got ${input.seed})`)
    for (const [o, w] of Object.entries(input.weights)) {
      if (!(typeof w === "number" && Number.isFinite(w) && w >= 0)) return yield* usage(`the weight of ${o} must be a number ≥ 0 (got ${w})`)
    }
    // Weights read as probabilities: without --ok, OK takes what the others leave (--fail 0.3 → OK 0.7).
    const given = Object.values(input.weights).reduce<number>((a, w) => a + (w ?? 0), 0)
    const weights = input.weights.OK === undefined && given > 0 && given < 1 ? { ...input.weights, OK: Math.round((1 - given) * 1e9) / 1e9 } : input.weights
    const weighted = Object.values(weights).some((w) => (w ?? 0) > 0)
    if (Object.keys(weights).length > 0 && !weighted) return yield* usage("at least one outcome weight must be above 0")
    const outcome = weighted ? Simulation.weighted(weights) : Simulation.always("OK")
    const latencySpec = input.latency ?? DEFAULT_LATENCY
    const latency = yield* Either.mapLeft(parseLatency(latencySpec), usage)
    const shownWeights: Partial<Record<Outcome.Outcome, number>> = weighted ? weights : { OK: 1 }
    return { outcome, latency, latencySpec, weights: shownWeights }
  })

/** Simulate `runs` jobs of the policy and sum them up. */
export const run = (input: SimulateInput): Effect.Effect<Report, Exit.ExitWith> =>
  Effect.gen(function*() {
    yield* checkCount("players", input.players, 1, LIMITS.players)
    const { latency, latencySpec, outcome, weights } = yield* modelsOf(input)

    const registry = yield* registryOf(input.plugins, input.baseDir)
    const plugin = yield* Either.mapLeft(registry.get("policy", input.policy), (e) => usage(e.message))
    // Options the policy refuses would fail every job at start: say so once instead.
    const checked = yield* Effect.try({
      try: () => plugin.decodeOptions(input.options),
      catch: (e) => usage(`policy "${plugin.name}" threw while checking its options: ${e instanceof Error ? e.message : String(e)}`)
    })
    if (Either.isLeft(checked)) return yield* usage(checked.left.message)

    const results: Array<Simulation.SimulationResult> = []
    const reasons = new Map<string, number>()
    for (let i = 0; i < input.runs; i++) {
      const result = Simulation.simulate(plugin, {
        seed: Simulation.deriveSeed(input.seed, i),
        players: input.players,
        options: input.options,
        outcome,
        latency,
        slots: input.slots,
        policies: registry.policies
      })
      results.push(result)
      const reason = result.finished?.reason ?? (result.status === "finished" ? undefined : `did not finish (${result.status})`)
      if (reason !== undefined) reasons.set(reason, (reasons.get(reason) ?? 0) + 1)
      if (i % 1000 === 999) yield* Effect.yieldNow()
    }
    return {
      policy: plugin.name,
      options: input.options,
      players: input.players,
      runs: input.runs,
      seed: input.seed,
      slots: input.slots,
      latency: latencySpec,
      weights,
      summary: Simulation.summarize(results),
      reasons: [...reasons.entries()]
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
        .slice(0, 5)
        .map(([reason, count]) => ({ reason, count }))
    }
  })

/** Simulated milliseconds, short: `850ms`, `1.25s`, `2.5m`. */
export const formatMs = (ms: number): string => {
  if (ms < 1000) return `${Math.round(ms)}ms`
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(2))}s`
  if (ms < 3_600_000) return `${Number((ms / 60_000).toFixed(2))}m`
  return `${Number((ms / 3_600_000).toFixed(2))}h`
}

/** The report for people. */
export const format = (r: Report): string => {
  const s = r.summary
  const d = s.durationMs
  const weights = Object.entries(r.weights).map(([o, w]) => `${o} ${w}`).join(", ")
  const states = (["OK", "PARTIAL_FAIL", "FAIL", "CANCELLED", "unfinished"] as const)
    .filter((st) => st !== "unfinished" || s.states.unfinished > 0)
    .map((st) => `${st} ${s.states[st]}`)
  const outcomes = Outcome.all.filter((o) => s.outcomes[o] > 0).map((o) => `${o} ${s.outcomes[o]}`)
  const lines = [
    `policy ${r.policy} ${JSON.stringify(r.options)} on ${r.players} player${r.players === 1 ? "" : "s"}: ${r.runs} simulated job${r.runs === 1 ? "" : "s"}`,
    `  seed ${r.seed}, ${r.slots} slot${r.slots === 1 ? "" : "s"} per player, latency ${r.latency}, outcomes weighted ${weights}`,
    `completion  p50 ${formatMs(d.p50)}  p95 ${formatMs(d.p95)}  max ${formatMs(d.max)}  (min ${formatMs(d.min)}, mean ${formatMs(d.mean)})`,
    `jobs        ${states.join("  ")}`,
    `outcomes    ${outcomes.length === 0 ? "none" : outcomes.join("  ")}`,
    `tasks       ${s.dispatches} dispatched, ${s.steps} outcomes fed to the policy`
  ]
  if (r.reasons.length > 0) {
    lines.push("reasons (most frequent)")
    for (const { count, reason } of r.reasons) lines.push(`  ${String(count).padStart(6)}  ${reason}`)
  }
  return lines.join("\n")
}

// ---- whole pipelines ---------------------------------------------------------

/** What to simulate with `--pipeline`. */
export interface PipelineSimulateInput {
  /** The pipeline document, relative to `baseDir`. */
  readonly pipeline: string
  readonly params: Json.JsonObject
  /** Score directories to check the pipeline against and read `outputs` from (merged, the first having a score wins). */
  readonly scores: ReadonlyArray<string>
  /** Policy plugins to load (paths or package names), relative to `baseDir`. */
  readonly plugins: ReadonlyArray<string>
  readonly baseDir: string
  /** How many simulated players (`sim-1`..`sim-N`) a job's `selector` matches; default 3. */
  readonly players?: number | undefined
  readonly weights: Partial<Record<Outcome.Outcome, number>>
  readonly latency?: string | undefined
  readonly slots: number
  readonly runs: number
  readonly seed: number
}

/** What came out of `--pipeline`: the simulation's report and the settings it ran with. */
export interface PipelineReport extends PipelineSimulation.Report {
  readonly slots: number
  readonly latency: string
  readonly weights: Partial<Record<Outcome.Outcome, number>>
  /** Whether the pipeline was checked against score directories (`--scores`), whose `outputs` typed the placeholders. */
  readonly checkedScores: boolean
}

/** The merged catalog of score directories, read as a player reads them (the first directory that has a score wins); relative to `baseDir`. */
export const catalogOf = (dirs: ReadonlyArray<string>, baseDir: string): Effect.Effect<ReadonlyArray<Catalog.ScoreInfo>, Exit.ExitWith, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const byName = new Map<string, Catalog.ScoreInfo>()
    for (const dir of dirs) {
      const scanned = yield* ScoreDirectory.scan(path.resolve(baseDir, dir)).pipe(Effect.mapError((e) => usage(e.message)))
      for (const x of scanned.excluded) yield* Console.error(`warning: score ${x.name} in ${dir} is excluded: ${x.reason}`)
      for (const s of scanned.scores) if (!byName.has(s.name)) byName.set(s.name, s.info)
    }
    return [...byName.values()]
  })

/**
 * Load and check the pipeline, then simulate it. Without `--scores` the
 * scores are not checked (as `pipeline validate` without them), but the
 * policies and their options are: a simulation of a job whose policy does
 * not exist says nothing useful.
 */
export const runPipeline = (input: PipelineSimulateInput): Effect.Effect<PipelineReport, Exit.ExitWith, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const pool = input.players ?? PipelineSimulation.DEFAULT_POOL
    yield* checkCount("players", pool, 1, PipelineSimulation.LIMITS.pool)
    const { latency, latencySpec, outcome, weights } = yield* modelsOf(input)
    const registry = yield* registryOf(input.plugins, input.baseDir)
    const catalog = input.scores.length === 0 ? undefined : yield* catalogOf(input.scores, input.baseDir)
    const pipeline = yield* Pipeline.loadFile(path.resolve(input.baseDir, input.pipeline), {
      catalog: catalog ?? [],
      catalogIncomplete: catalog === undefined,
      policies: registry.policies
    }).pipe(Effect.mapError((e) => new Exit.ExitWith({ code: Exit.codes.config, message: `${input.pipeline}: ${e.message}` })))
    const simulated = PipelineSimulation.simulate({
      pipeline,
      params: input.params,
      policies: registry.policies,
      ...(catalog === undefined ? {} : { catalog }),
      outcome,
      latency,
      slots: input.slots,
      pool,
      seed: input.seed,
      runs: input.runs
    })
    if (Either.isLeft(simulated)) {
      const e = simulated.left
      return yield* usage(e.reason === "params" ? `--param/--params: ${e.message}` : e.message)
    }
    return { ...simulated.right, slots: input.slots, latency: latencySpec, weights, checkedScores: catalog !== undefined }
  })

const STATES = ["OK", "PARTIAL_FAIL", "FAIL", "CANCELLED"] as const

/** The pipeline report for people. */
export const formatPipeline = (r: PipelineReport): string => {
  const d = r.durationMs
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`
  const weights = Object.entries(r.weights).map(([o, w]) => `${o} ${w}`).join(", ")
  const states = [...STATES, "unfinished" as const]
    .filter((st) => st !== "unfinished" || r.states.unfinished > 0)
    .map((st) => `${st} ${r.states[st]}`)
  const outcomes = Outcome.all.filter((o) => r.outcomes[o] > 0).map((o) => `${o} ${r.outcomes[o]}`)
  const lines = [
    `pipeline ${r.pipeline} (${path.relative(process.cwd(), r.file) || r.file}): ${plural(r.runs, "simulated run")}, params ${JSON.stringify(r.params)}`,
    `  seed ${r.seed}, ${plural(r.slots, "slot")} per player, latency ${r.latency}, outcomes weighted ${weights}`
  ]
  if (r.pool > 0) lines.push(`  jobs with a selector run on ${plural(r.pool, "simulated player")} sim-1..sim-${r.pool}, carrying its labels`)
  if (!r.checkedScores) lines.push("  (no --scores: scores not checked, and what players report is strings; give --scores DIR for their declared types)")
  lines.push(
    `completion  p50 ${formatMs(d.p50)}  p95 ${formatMs(d.p95)}  max ${formatMs(d.max)}  (min ${formatMs(d.min)}, mean ${formatMs(d.mean)})`,
    `runs        ${states.join("  ")}`,
    `outcomes    ${outcomes.length === 0 ? "none" : outcomes.join("  ")}`,
    `tasks       ${r.dispatches} dispatched`
  )
  const width = Math.max(4, ...r.jobs.map((j) => j.name.length))
  const unfinished = r.jobs.some((j) => j.states.unfinished > 0)
  const columns = ["ran", "skipped", "failed", ...STATES, ...(unfinished ? ["unfinished"] : []), "p50", "p95", "max"]
  const row = (name: string, cells: ReadonlyArray<string>) =>
    `  ${name.padEnd(width)}  ${cells.map((c, i) => c.padStart(Math.max(columns[i]!.length, 6))).join("  ")}`
  lines.push("per job (in runs; times when it ran)", row("job", columns))
  for (const j of r.jobs) {
    const ran = j.ran > 0
    lines.push(row(j.name, [
      String(j.ran),
      String(j.skipped),
      String(j.failed),
      ...STATES.map((st) => String(j.states[st])),
      ...(unfinished ? [String(j.states.unfinished)] : []),
      ran ? formatMs(j.durationMs.p50) : "-",
      ran ? formatMs(j.durationMs.p95) : "-",
      ran ? formatMs(j.durationMs.max) : "-"
    ]))
  }
  if (r.jobs.some((j) => j.failed > 0)) lines.push("  (failed: the job could not be submitted — a template did not resolve, or the request was refused)")
  if (r.reasons.length > 0) {
    lines.push("reasons runs did not end OK (most frequent)")
    for (const { count, reason } of r.reasons) lines.push(`  ${String(count).padStart(6)}  ${reason}`)
  }
  return lines.join("\n")
}

const weightOption = (outcome: Outcome.Outcome) =>
  Options.float(outcome.toLowerCase().replace(/_/g, "-")).pipe(
    Options.withDescription(`Relative weight of the outcome ${outcome}`),
    Options.optional
  )

const weightOptions = {
  OK: weightOption("OK"),
  FAIL: weightOption("FAIL"),
  UNK_SCORE: weightOption("UNK_SCORE"),
  HOST_ERROR: weightOption("HOST_ERROR"),
  UNKNOWN_FAILURE: weightOption("UNKNOWN_FAILURE"),
  INVALID_PARAMS: weightOption("INVALID_PARAMS"),
  TIMEOUT: weightOption("TIMEOUT"),
  CANCELLED: weightOption("CANCELLED")
} as const

const parseOptionsJson = (text: string): Effect.Effect<unknown, Exit.ExitWith> =>
  Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (e) => usage(`--options: not JSON: ${e instanceof Error ? e.message : String(e)}`)
  })

const given = <A>(o: Option.Option<A>): o is Option.Some<A> => Option.isSome(o)

export const simulate = Command.make(
  "simulate",
  {
    policy: Options.text("policy").pipe(
      Options.withDescription("The policy to simulate, by name (built-in, or from a --plugin); or give --pipeline"),
      Options.optional
    ),
    pipeline: Options.file("pipeline", { exists: "yes" }).pipe(
      Options.withDescription("A pipeline document to simulate whole runs of, each job with its own policy and targets; or give --policy"),
      Options.optional
    ),
    options: Options.text("options").pipe(Options.withDescription("With --policy: the policy's options, as JSON (default {})"), Options.optional),
    param: Options.text("param").pipe(Options.withDescription("With --pipeline: a pipeline param key=value (repeatable)"), Options.repeated),
    params: Options.text("params").pipe(Options.withDescription("With --pipeline: the pipeline's params as a JSON object"), Options.optional),
    scores: Options.directory("scores", { exists: "yes" }).pipe(
      Options.withDescription(
        "With --pipeline: a score directory to check the pipeline against (as a player reads it; repeatable, merged); the outputs its scores declare type what simulated players report"
      ),
      Options.repeated
    ),
    plugin: Options.text("plugin").pipe(
      Options.withDescription("A policy plugin to load, by path (relative to the current directory) or package name; repeatable"),
      Options.repeated
    ),
    players: Options.integer("players").pipe(
      Options.withDescription(
        `With --policy (required): how many target players (named p1..pN). With --pipeline: how many simulated players sim-1..sim-N a job's selector matches (default ${PipelineSimulation.DEFAULT_POOL})`
      ),
      Options.optional
    ),
    ...weightOptions,
    latency: Options.text("latency").pipe(
      Options.withDescription(`How long a task runs: 200ms, uniform:100ms-2s or exponential:500ms (default ${DEFAULT_LATENCY})`),
      Options.optional
    ),
    slots: Options.integer("slots").pipe(Options.withDescription("Tasks a player runs at once"), Options.withDefault(1)),
    runs: Options.integer("runs").pipe(Options.withDescription("How many jobs (--policy) or pipeline runs (--pipeline) to simulate"), Options.withDefault(100)),
    seed: Options.integer("seed").pipe(Options.withDescription("Seed of the simulation: the same seed, the same report"), Options.withDefault(1)),
    json: Options.boolean("json").pipe(Options.withDescription("Print JSON for scripts"))
  },
  (a) =>
    Effect.gen(function*() {
      const weights: Partial<Record<Outcome.Outcome, number>> = {}
      for (const o of Outcome.all) {
        const w = a[o]
        if (Option.isSome(w)) weights[o] = w.value
      }
      const latency = Option.getOrUndefined(a.latency)
      if (given(a.policy) && given(a.pipeline)) {
        return yield* usage("give --policy NAME or --pipeline FILE, not both: a pipeline's jobs name their own policies")
      }
      if (given(a.pipeline)) {
        if (given(a.options)) return yield* usage("--options goes with --policy: the jobs of a pipeline carry their own policy options")
        const kv = yield* Effect.forEach(a.param, keyValue("--param"))
        const fromJson = Option.isSome(a.params) ? yield* parseJsonObject("--params", a.params.value) : {}
        const report = yield* runPipeline({
          pipeline: a.pipeline.value,
          params: { ...fromJson, ...Object.fromEntries(kv) },
          scores: a.scores,
          plugins: a.plugin,
          baseDir: process.cwd(),
          players: Option.getOrUndefined(a.players),
          weights,
          latency,
          slots: a.slots,
          runs: a.runs,
          seed: a.seed
        })
        yield* Console.log(a.json ? JSON.stringify(report, null, 2) : formatPipeline(report))
        return
      }
      if (!given(a.policy)) {
        return yield* usage("give --policy NAME (one policy's jobs on --players N players) or --pipeline FILE (whole runs of a pipeline)")
      }
      if (a.param.length > 0 || given(a.params) || a.scores.length > 0) {
        return yield* usage("--param, --params and --scores go with --pipeline, not --policy")
      }
      if (!given(a.players)) return yield* usage("--players N is required with --policy")
      const options = Option.isSome(a.options) ? yield* parseOptionsJson(a.options.value) : {}
      const report = yield* run({
        policy: a.policy.value,
        options,
        plugins: a.plugin,
        baseDir: process.cwd(),
        players: a.players.value,
        weights,
        ...(latency === undefined ? {} : { latency }),
        slots: a.slots,
        runs: a.runs,
        seed: a.seed
      })
      yield* Console.log(a.json ? JSON.stringify(report, null, 2) : format(report))
    })
).pipe(
  Command.withDescription(
    "Simulate many jobs of a policy, or many runs of a whole pipeline, against simulated players — nothing runs, the same seed gives the same report — and report completion times (p50/p95/max) and how runs, jobs and tasks ended (with --pipeline, per job: how often it ran, was skipped, or ended in each state). " +
      "A pipeline is checked first as `pipeline validate` checks it (exit 78 with the lines); a job with a selector runs on --players N simulated players sim-1..sim-N; jobs running at the same time do not share players' slots, and retries and deadlines are not simulated. " +
      "Examples: orchestra simulate --policy rolling --options '{\"batch\":\"25%\"}' --players 20 --ok 0.95 --fail 0.05 --latency uniform:1s-5s --runs 1000; " +
      "orchestra simulate --pipeline samples/pipelines/release.yaml --scores samples/scores --param ref=main --fail 0.02 --latency uniform:1s-30s --runs 1000"
  )
)
