/**
 * Pipeline documents: a named set of jobs, each a job request (score,
 * targets, policy, params) that may need other jobs and take their outputs
 * as params through templates (see {@link Template}).
 *
 * ```yaml
 * name: release
 * params: { type: object, required: [ref], properties: { ref: { type: string } } }
 * jobs:
 *   build:  { score: build, players: [violin, viola], policy: one-of, params: { ref: "${{ params.ref }}" } }
 *   deploy: { needs: [build], score: deploy, players: [viola], policy: all-of,
 *             params: { version: "${{ jobs.build.output.version }}" } }
 * ```
 *
 * `stages:` — an ordered list of stages, each a mapping of jobs — may be
 * written instead of `jobs:`: every job of a stage needs every job of the
 * stage before (plus its own `needs`).
 *
 * A job runs once every job it needs has finished, if each ended in a
 * state listed in its `when` (default `[OK]`); otherwise it is skipped.
 *
 * {@link parse} checks everything that needs nothing but the document:
 * YAML and format (unknown keys, wrong types), job names, `needs` (unknown
 * jobs, cycles), template syntax, references (`params.X` declared in the
 * pipeline's params schema, `jobs.J` declared and an ancestor through
 * `needs`). {@link validate} adds what needs the conductor's knowledge:
 * scores known to the catalog, policies registered (and their options, when
 * given a lookup), and template types:
 *
 * - a reference to a job's response key (`output.K`, `players.P.response.K`)
 *   must name a key declared in the `outputs` schema of the producing score;
 *   `env` scores report no response; `pipe` responses are strings whatever
 *   their schema says;
 * - the type of a whole-string template (from the producer's `outputs`, the
 *   pipeline's `params`, or `string` for `jobs.J.state`) must fit the type
 *   the consuming score's `parameters` schema declares at that place; an
 *   interpolated string is a string. An `integer` fits a `number`; a type
 *   not declared on either side fits anything. String params are not
 *   converted to the declared type here (unlike `--param k=v` on the
 *   command line): a `string` output into an `integer` parameter is an
 *   error;
 * - the params are then checked against the consumer's `parameters` schema
 *   with `@orchestra/manifest` `Params`, each template replaced by a value of
 *   its declared type: every issue about a literal, a missing required
 *   parameter or an unknown parameter name is reported; issues about the
 *   value at a template's place (patterns, ranges, formats) are not — that
 *   value is only known at run time, where the conductor checks it.
 *
 * Every issue is `{ path: "<file>:<line>: jobs.deploy.params.version", message }`,
 * all of them in one {@link PipelineError}, sorted by line.
 *
 * @since 0.1.0
 */
import type { FileSystem } from "@effect/platform"
import type { Catalog, Job, JobState, Names, Policy } from "@orchestra/core"
import { Errors, Json } from "@orchestra/core"
import { Params, Yaml } from "@orchestra/manifest"
import { Effect, Either, Schema } from "effect"
import * as Graph from "./internal/graph.js"
import * as T from "./internal/jsonTypes.js"
import * as Spec from "./internal/spec.js"
import * as Template from "./Template.js"

/** A pipeline document that is not valid; lists every issue. */
export class PipelineError extends Schema.TaggedError<PipelineError>()("PipelineError", {
  file: Schema.String,
  message: Schema.String,
  issues: Schema.Array(Errors.Issue)
}) {}

/** A `PipelineError` for `file` whose message lists every issue. */
export const pipelineError = (file: string, issues: ReadonlyArray<Errors.Issue>): PipelineError =>
  new PipelineError({
    file,
    message: issues.length === 1
      ? `invalid pipeline: ${Yaml.formatIssues(issues)}`
      : `invalid pipeline (${issues.length} issues):\n${Yaml.formatIssues(issues)}`,
    issues: [...issues]
  })

const JobsMap = Schema.Record({ key: Schema.String, value: Spec.PipelineJobSpec })

/** The format of a pipeline document. */
export const Document = Schema.Struct({
  name: Schema.String,
  description: Schema.optional(Schema.String),
  /** JSON Schema of the pipeline's own params. */
  params: Schema.optional(Json.JsonObject),
  jobs: Schema.optional(JobsMap),
  /** Ordered stages, each a mapping of jobs; sugar over `needs`. */
  stages: Schema.optional(Schema.Array(JobsMap).pipe(Schema.minItems(1)))
})
export type Document = typeof Document.Type

/** One job of a validated pipeline. */
export interface PipelineJob {
  readonly name: string
  /** Where the job is written (`["jobs", "build"]`, `["stages", 0, "build"]`), for messages. */
  readonly path: Yaml.Path
  readonly description: string | undefined
  readonly score: Names.ScoreName
  readonly players: ReadonlyArray<Names.PlayerName>
  readonly selector: Job.Labels | undefined
  readonly policy: Job.PolicyRef
  /** The params, templates parsed. */
  readonly params: Template.Value
  /** Jobs this one needs: its own `needs`, then (with `stages`) every job of the stage before. */
  readonly needs: ReadonlyArray<string>
  /** States every need must end in for this job to run. */
  readonly when: ReadonlyArray<JobState.FinishedJobState>
  readonly retry: Job.RetryPolicy | undefined
  /** Deadline in milliseconds from the job's submission. */
  readonly deadlineMs: number | undefined
  readonly labels: Job.Labels
  /** Topological level: 0 needs nothing, n needs a job of level n-1. */
  readonly level: number
  /** The stage index, for pipelines written with `stages`. */
  readonly stage: number | undefined
}

/** A pipeline that passed {@link parse} (and maybe {@link validate}). */
export interface Pipeline {
  readonly name: string
  readonly description: string | undefined
  readonly file: string
  /** The document's text, as given. */
  readonly text: string
  /** JSON Schema of the pipeline's params, if it declares one. */
  readonly params: Json.JsonObject | undefined
  /** Every job, in topological order (by level, then as written). */
  readonly jobs: ReadonlyArray<PipelineJob>
  readonly byName: ReadonlyMap<string, PipelineJob>
  /** Job names by topological level. */
  readonly levels: ReadonlyArray<ReadonlyArray<string>>
}

/** What {@link validate} checks a pipeline against. */
export interface CheckContext {
  /** The scores players reported (merged), or a lookup by name. */
  readonly catalog: ReadonlyArray<Catalog.ScoreInfo> | ((score: string) => Catalog.ScoreInfo | undefined)
  /**
   * Some players have not reported their catalog yet (a conductor just
   * started): a score no reported catalog has is then not an error — its
   * job's params and templates are checked when the job is submitted, as
   * a single job's are. Default false.
   */
  readonly catalogIncomplete?: boolean
  /** Registered policies, by name; or a lookup, which also checks each job's policy options. */
  readonly policies: ReadonlyArray<string> | Policy.PolicyLookup
}

// ---------------------------------------------------------------------------

interface Located {
  readonly line: number
  readonly order: number
  readonly issue: Errors.Issue
}

class IssueList {
  private readonly items: Array<Located> = []
  constructor(private readonly doc: Yaml.YamlDocument) {}
  add(path: Yaml.Path, message: string): void {
    this.items.push({ line: this.doc.lineOf(path) ?? 0, order: this.items.length, issue: Yaml.issueAt(this.doc, path, message) })
  }
  get size(): number {
    return this.items.length
  }
  sorted(): ReadonlyArray<Errors.Issue> {
    return [...this.items].sort((a, b) => a.line - b.line || a.order - b.order).map((l) => l.issue)
  }
}

const list = (xs: Iterable<string>, limit = 20): string => {
  const all = [...xs]
  return all.length <= limit ? all.join(", ") : `${all.slice(0, limit).join(", ")} and ${all.length - limit} more`
}

interface Draft {
  readonly name: string
  readonly path: Yaml.Path
  readonly spec: Spec.PipelineJobSpec
  readonly stage: number | undefined
  needs: Array<string>
  params: Template.Value
  /** The templates in the params, in order. */
  occurrences: ReadonlyArray<Template.Occurrence>
  /** Paths below params holding a template that did not parse. */
  broken: Array<Template.Path>
}

/** Parse the text of a pipeline document and run the checks that need nothing else. */
export const parse = (text: string, file: string): Either.Either<Pipeline, PipelineError> => analyze(text, file, undefined)

/** Parse a pipeline document and check it all, catalog, policies and template types included. */
export const validate = (text: string, file: string, context: CheckContext): Either.Either<Pipeline, PipelineError> =>
  analyze(text, file, context)

/** Read a pipeline file and {@link parse} it, or {@link validate} it when given a context. */
export const loadFile = (
  file: string,
  context?: CheckContext
): Effect.Effect<Pipeline, PipelineError, FileSystem.FileSystem> =>
  Yaml.readText(file).pipe(
    Effect.mapError((e) => pipelineError(file, e.issues)),
    Effect.flatMap((text) => analyze(text, file, context))
  )

const analyze = (text: string, file: string, context: CheckContext | undefined): Either.Either<Pipeline, PipelineError> => {
  const parsed = Yaml.parse(text, file)
  if (Either.isLeft(parsed)) return Either.left(pipelineError(file, Yaml.yamlErrorToConfigError(parsed.left).issues))
  const doc = parsed.right
  const decoded = Yaml.decodeDocument(Document, doc)
  if (Either.isLeft(decoded)) return Either.left(pipelineError(file, decoded.left.issues))
  const d = decoded.right
  const issues = new IssueList(doc)

  const nameProblem = Spec.documentNameProblem(d.name)
  if (nameProblem !== undefined) issues.add(["name"], nameProblem)

  // -- the jobs, from `jobs` or `stages`
  const drafts: Array<Draft> = []
  const byName = new Map<string, Draft>()
  const addDraft = (name: string, spec: Spec.PipelineJobSpec, path: Yaml.Path, stage: number | undefined) => {
    const problem = Spec.jobNameProblem(name)
    if (problem !== undefined) issues.add(path, problem)
    const earlier = byName.get(name)
    if (earlier !== undefined) {
      issues.add(path, `job "${name}" is already declared (${Yaml.dottedPath(earlier.path)})`)
      return
    }
    const draft: Draft = { name, path, spec, stage, needs: [], params: { _tag: "Literal", value: {} }, occurrences: [], broken: [] }
    drafts.push(draft)
    byName.set(name, draft)
  }
  if (d.jobs !== undefined && d.stages !== undefined) {
    issues.add(["stages"], "write either `jobs` or `stages`, not both")
  } else if (d.jobs === undefined && d.stages === undefined) {
    issues.add([], "`jobs` is required (or `stages`)")
  }
  if (d.jobs !== undefined) {
    const entries = Object.entries(d.jobs)
    if (entries.length === 0) issues.add(["jobs"], "a pipeline needs at least one job")
    for (const [name, spec] of entries) addDraft(name, spec, ["jobs", name], undefined)
  }
  if (d.stages !== undefined && d.jobs === undefined) {
    d.stages.forEach((stage, i) => {
      const entries = Object.entries(stage)
      if (entries.length === 0) issues.add(["stages", i], "a stage needs at least one job")
      for (const [name, spec] of entries) addDraft(name, spec, ["stages", i, name], i)
    })
  }

  // -- needs (own, then the previous stage's jobs)
  const stageJobs = (i: number) => drafts.filter((j) => j.stage === i).map((j) => j.name)
  for (const job of drafts) {
    const own = job.spec.needs ?? []
    own.forEach((n, i) => {
      if (!byName.has(n)) {
        issues.add([...job.path, "needs", i], `unknown job "${n}" (jobs: ${list(byName.keys())})`)
      } else if (!job.needs.includes(n)) {
        job.needs.push(n)
      }
    })
    if (job.stage !== undefined && job.stage > 0) {
      for (const n of stageJobs(job.stage - 1)) if (!job.needs.includes(n)) job.needs.push(n)
    }
    if (job.spec.when !== undefined && job.needs.length === 0) {
      issues.add([...job.path, "when"], "`when` says which states of the needs let the job run, and this job needs no job")
    }
    if ((job.spec.players ?? []).length === 0 && job.spec.selector === undefined) {
      issues.add(job.path, "the job targets no player: name `players` or give a `selector`")
    }
  }
  const graph: Graph.Graph = new Map(drafts.map((j) => [j.name, j.needs]))
  const cycles = Graph.cycles(graph)
  for (const cycle of cycles) {
    const first = byName.get(cycle[0]!)!
    const next = cycle[1 % cycle.length]!
    const at = (first.spec.needs ?? []).indexOf(next)
    issues.add(
      at >= 0 ? [...first.path, "needs", at] : first.path,
      `cycle in needs: ${[...cycle, cycle[0]!].join(" → ")}`
    )
  }
  const ancestors = Graph.ancestors(graph)

  // -- the pipeline's params schema
  if (d.params !== undefined) {
    const compiled = Params.compileDetailed(d.params)
    if (Either.isLeft(compiled)) for (const p of compiled.left) issues.add(["params", ...p.segments], p.message)
  }

  // -- templates: syntax and references
  /** References that are structurally sound, by job: only these get type checks. */
  const soundRefs = new Map<string, Set<Template.Occurrence>>()
  for (const job of drafts) {
    const parsedParams = Template.parse(job.spec.params ?? {})
    job.params = parsedParams.value
    job.occurrences = Template.occurrences(parsedParams.value)
    for (const p of parsedParams.problems) {
      job.broken.push(p.path)
      issues.add([...job.path, "params", ...p.path], p.message)
    }
    const sound = new Set<Template.Occurrence>()
    for (const occ of job.occurrences) {
      const problem = referenceProblem(occ.expr, job, d.params, byName, ancestors)
      if (problem === undefined) sound.add(occ)
      else issues.add([...job.path, "params", ...occ.path], `\${{ ${occ.expr.source} }}: ${problem}`)
    }
    soundRefs.set(job.name, sound)
  }

  // -- what needs the catalog and the policies
  if (context !== undefined) {
    const lookupScore = typeof context.catalog === "function"
      ? context.catalog
      : ((catalog) => {
        const m = new Map(catalog.map((s) => [s.name as string, s]))
        return (name: string) => m.get(name)
      })(context.catalog)
    const knownScores = typeof context.catalog === "function" ? undefined : [...new Set(context.catalog.map((s) => s.name))].sort()
    const scoreOf = (job: Draft) => lookupScore(job.spec.score)
    for (const job of drafts) {
      if (scoreOf(job) === undefined && context.catalogIncomplete !== true) {
        issues.add(
          [...job.path, "score"],
          `unknown score "${job.spec.score}"${knownScores === undefined ? "" : ` (known: ${list(knownScores) || "none"})`}`
        )
      }
      checkPolicy(job, context.policies, issues)
    }
    for (const job of drafts) {
      const consumer = scoreOf(job)
      if (consumer === undefined) continue
      checkParams(job, consumer, soundRefs.get(job.name) ?? new Set(), d.params, byName, scoreOf, issues)
    }
  }

  if (issues.size > 0) return Either.left(pipelineError(file, issues.sorted()))

  const levels = Graph.levels(graph)
  const levelOf = new Map<string, number>()
  levels.forEach((names, l) => names.forEach((n) => levelOf.set(n, l)))
  const jobs: Array<PipelineJob> = levels.flat().map((name) => {
    const j = byName.get(name)!
    return {
      name,
      path: j.path,
      description: j.spec.description,
      score: j.spec.score,
      players: j.spec.players ?? [],
      selector: j.spec.selector,
      policy: Spec.policyRef(j.spec.policy),
      params: j.params,
      needs: j.needs,
      when: j.spec.when ?? ["OK"],
      retry: j.spec.retry,
      deadlineMs: j.spec.deadline,
      labels: j.spec.labels ?? {},
      level: levelOf.get(name) ?? 0,
      stage: j.stage
    }
  })
  return Either.right({
    name: d.name,
    description: d.description,
    file,
    text,
    params: d.params,
    jobs,
    byName: new Map(jobs.map((j) => [j.name, j])),
    levels
  })
}

/** What is wrong with a reference, as far as the document alone can tell. */
const referenceProblem = (
  expr: Template.Expr,
  job: Draft,
  paramsSchema: Json.JsonObject | undefined,
  byName: ReadonlyMap<string, Draft>,
  ancestors: ReadonlyMap<string, ReadonlySet<string>>
): string | undefined => {
  const ref = expr.ref
  if (ref._tag === "Param") {
    if (paramsSchema === undefined) return `the pipeline declares no params (add a \`params\` JSON Schema with a property "${ref.path[0]}")`
    const w = T.walk(paramsSchema, ref.path, 1)
    if (w._tag === "Missing") {
      const where = ref.path.slice(0, w.index).join(".")
      return w.index === 0
        ? `the pipeline declares no param "${ref.path[0]}"${w.declared.length > 0 ? ` (declared: ${list(w.declared)})` : ""}`
        : `param ${where} declares no key "${ref.path[w.index]}"`
    }
    if (w._tag === "NotObject") {
      return `params.${ref.path.slice(0, w.index).join(".")} is ${T.describeTypes(w.types)}: it has no key "${ref.path[w.index]}"`
    }
    return undefined
  }
  const producer = byName.get(ref.job)
  if (producer === undefined) return `unknown job "${ref.job}" (jobs: ${list(byName.keys())})`
  if (ref.job === job.name) return `job "${job.name}" cannot refer to itself`
  if (!(ancestors.get(job.name)?.has(ref.job) ?? false)) {
    return `job "${ref.job}" is not among the needs of "${job.name}" (directly or through other jobs), so it may not have run: add it to \`needs\``
  }
  if (ref._tag === "Response" && producer.spec.selector === undefined) {
    const targets = producer.spec.players ?? []
    if (!targets.includes(ref.player as Names.PlayerName)) {
      return `player "${ref.player}" is not a target of job "${ref.job}" (players: ${list(targets)})`
    }
  }
  return undefined
}

const checkPolicy = (job: Draft, policies: CheckContext["policies"], issues: IssueList): void => {
  const ref = Spec.policyRef(job.spec.policy)
  const namePath = [...job.path, ...Spec.policyNamePath(job.spec.policy)]
  if (typeof policies !== "function") {
    if (!policies.includes(ref.name)) issues.add(namePath, `unknown policy "${ref.name}" (known: ${list([...policies].sort()) || "none"})`)
    return
  }
  const plugin = policies(ref.name)
  if (plugin === undefined) {
    issues.add(namePath, `unknown policy "${ref.name}"`)
    return
  }
  let decoded: ReturnType<Policy.PolicyPlugin["decodeOptions"]>
  try {
    decoded = plugin.decodeOptions(ref.options)
  } catch (e) {
    issues.add(namePath, `policy "${ref.name}" threw while checking its options: ${e instanceof Error ? e.message : String(e)}`)
    return
  }
  if (Either.isLeft(decoded)) {
    issues.add(typeof job.spec.policy === "string" ? namePath : [...job.path, "policy", "options"], decoded.left.message)
  }
}

/** The JSON types of what a reference yields, or why it cannot be used; `undefined` types: not known. */
const producedTypes = (
  ref: Template.Ref,
  paramsSchema: Json.JsonObject | undefined,
  byName: ReadonlyMap<string, Draft>,
  scoreOf: (job: Draft) => Catalog.ScoreInfo | undefined
): { readonly _tag: "Types"; readonly types: T.Types; readonly origin: string } | { readonly _tag: "Problem"; readonly message: string } | undefined => {
  switch (ref._tag) {
    case "Param": {
      const w = T.walk(paramsSchema, ref.path, 1)
      return { _tag: "Types", types: w._tag === "Found" ? T.typesOf(w.schema) : undefined, origin: "declared in the pipeline's params" }
    }
    case "State":
      return { _tag: "Types", types: new Set(["string"]), origin: "a job state" }
    case "Output":
    case "Response": {
      const producer = byName.get(ref.job)
      if (producer === undefined) return undefined
      const score = scoreOf(producer)
      if (score === undefined) return undefined // reported as an unknown score
      const of = `score "${score.name}" (job "${ref.job}")`
      if (score.interface === "env") return { _tag: "Problem", message: `${of} has interface env: it reports no response` }
      if (score.outputs === undefined) {
        return { _tag: "Problem", message: `${of} declares no outputs: declare "${ref.key[0]}" under \`outputs\` in its manifest` }
      }
      const w = T.walk(score.outputs, ref.key, 1)
      if (w._tag === "Missing") {
        return w.index === 0
          ? { _tag: "Problem", message: `${of} declares no output "${ref.key[0]}"${w.declared.length > 0 ? ` (declared: ${list(w.declared)})` : ""}` }
          : { _tag: "Problem", message: `${of} declares no key "${ref.key[w.index]}" in output ${ref.key.slice(0, w.index).join(".")}` }
      }
      if (w._tag === "NotObject") {
        return { _tag: "Problem", message: `output ${ref.key.slice(0, w.index).join(".")} of ${of} is ${T.describeTypes(w.types)}: it has no key "${ref.key[w.index]}"` }
      }
      if (score.interface === "pipe") {
        if (ref.key.length > 1) {
          return { _tag: "Problem", message: `${of} has interface pipe: output "${ref.key[0]}" is a string, it has no key "${ref.key[1]}"` }
        }
        return { _tag: "Types", types: new Set(["string"]), origin: `${of} has interface pipe: its outputs are strings` }
      }
      return { _tag: "Types", types: w._tag === "Found" ? T.typesOf(w.schema) : undefined, origin: `declared in the outputs of ${of}` }
    }
  }
}

const SCALARS: T.Types = new Set(["string", "number", "integer", "boolean"])

/** The types the consumer accepts at a path below its params. */
const acceptedTypes = (consumer: Catalog.ScoreInfo, path: Template.Path): T.Types => {
  if (consumer.parameters === undefined) return path.length === 1 ? SCALARS : undefined
  const w = T.walk(consumer.parameters, path, 0)
  return w._tag === "Found" ? T.typesOf(w.schema) : undefined
}

const dotted = (path: Template.Path): string => path.map(String).join(".")

const checkParams = (
  job: Draft,
  consumer: Catalog.ScoreInfo,
  sound: ReadonlySet<Template.Occurrence>,
  paramsSchema: Json.JsonObject | undefined,
  byName: ReadonlyMap<string, Draft>,
  scoreOf: (job: Draft) => Catalog.ScoreInfo | undefined,
  issues: IssueList
): void => {
  const at = (path: Template.Path): Yaml.Path => [...job.path, "params", ...path]
  const templated = new Set<string>(job.broken.map(dotted))
  const typesAt = new Map<string, T.Types>()
  for (const occ of job.occurrences) {
    const key = dotted(occ.path)
    templated.add(key)
    if (!sound.has(occ)) continue
    const produced = producedTypes(occ.expr.ref, paramsSchema, byName, scoreOf)
    if (produced === undefined) continue
    if (produced._tag === "Problem") {
      issues.add(at(occ.path), `\${{ ${occ.expr.source} }}: ${produced.message}`)
      continue
    }
    const types: T.Types = occ.whole ? produced.types : new Set(["string"])
    if (occ.whole) typesAt.set(key, produced.types)
    else typesAt.set(key, types)
    const accepted = acceptedTypes(consumer, occ.path)
    if (!T.fits(types, accepted)) {
      const what = occ.whole
        ? `\${{ ${occ.expr.source} }} is ${T.describeTypes(types)} (${produced.origin})`
        : `a string with \${{ ${occ.expr.source} }} inside is a string (templates inside a longer string are interpolated)`
      issues.add(at(occ.path), `${what}, but parameter ${dotted(occ.path)} of score "${consumer.name}" must be ${T.describeTypes(accepted)}`)
    }
  }
  // Literals, required and unknown parameters: the params with each template
  // replaced by a value of its type, checked by the score's own schema.
  const representative = Template.substitute(job.params, (_expr, path) => T.representative(typesAt.get(dotted(path))))
  const checked = Params.validate(consumer.parameters, representative, { interface: consumer.interface })
  if (Either.isRight(checked)) return
  for (const issue of checked.left) {
    const segments = issue.path === "params" ? [] : issue.path.replace(/^params\./, "").split(".")
    const key = segments.join(".")
    const atTemplate = [...templated].some((t) => key === t || key.startsWith(`${t}.`))
    const aboutName = issue.message.startsWith("unknown parameter") || issue.message.startsWith("parameter name")
    if (atTemplate && !aboutName) continue
    issues.add(at(segments), issue.message)
  }
}

/** The job named `name`; `undefined` when the pipeline has none. */
export const job = (pipeline: Pipeline, name: string): PipelineJob | undefined => pipeline.byName.get(name)

