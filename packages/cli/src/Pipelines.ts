/**
 * `orchestra pipeline validate FILE` and `orchestra pipeline run FILE
 * --plan`: a pipeline document checked as a whole before anything runs —
 * its DAG, the scores and policies it names, and every template's type
 * against the producing score's `outputs` and the consuming score's
 * `parameters` (the scores of a score directory, read as a player reads
 * them) — with every error listed by file and line; and the dry run, which
 * shows who would run what, in which order and batches, with the validated
 * params, without running anything.
 *
 * @since 0.1.0
 */
import { Args, Command, Options } from "@effect/cli"
import type { FileSystem } from "@effect/platform"
import type { Catalog } from "@orchestra/core"
import { ScoreDirectory } from "@orchestra/manifest"
import { Pipeline, Plan } from "@orchestra/pipeline"
import { Console, Effect, Either, Option } from "effect"
import * as path from "node:path"
import { keyValue, parseJsonObject } from "./Audience.js"
import * as Exit from "./Exit.js"
import { registryOf } from "./Simulate.js"

const file = Args.file({ name: "file", exists: "yes" }).pipe(Args.withDescription("The pipeline document (YAML)"))
const scores = Options.directory("scores", { exists: "yes" }).pipe(
  Options.withDescription("The score directory to check scores, outputs and parameters against (as a player reads it); repeatable, merged"),
  Options.repeated
)
const plugin = Options.text("plugin").pipe(
  Options.withDescription("A policy plugin module (path or package) the pipeline uses; repeatable"),
  Options.repeated
)
const json = Options.boolean("json").pipe(Options.withDescription("Print JSON for scripts"))

/** The merged catalog of the score directories (the first directory that has a score wins). */
const catalogOf = (dirs: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<Catalog.ScoreInfo>, Exit.ExitWith, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const byName = new Map<string, Catalog.ScoreInfo>()
    for (const dir of dirs) {
      const scanned = yield* ScoreDirectory.scan(path.resolve(dir)).pipe(
        Effect.mapError((e) => new Exit.ExitWith({ code: Exit.codes.usage, message: e.message }))
      )
      for (const x of scanned.excluded) yield* Console.error(`warning: score ${x.name} in ${dir} is excluded: ${x.reason}`)
      for (const s of scanned.scores) if (!byName.has(s.name)) byName.set(s.name, s.info)
    }
    return [...byName.values()]
  })

/** Read and check the document: with `--scores`, everything; without, what needs no catalog. */
const load = (a: { readonly file: string; readonly scores: ReadonlyArray<string>; readonly plugin: ReadonlyArray<string> }) =>
  Effect.gen(function*() {
    const registry = yield* registryOf(a.plugin, process.cwd())
    const context = a.scores.length === 0 ? undefined : { catalog: yield* catalogOf(a.scores), policies: registry.policies }
    const pipeline = yield* Pipeline.loadFile(path.resolve(a.file), context).pipe(
      Effect.mapError((e) => new Exit.ExitWith({ code: Exit.codes.config, message: `${a.file}: ${e.message}` }))
    )
    return { pipeline, registry, checkedScores: context !== undefined }
  })

export const validate = Command.make(
  "validate",
  { file, scores, plugin, json },
  (a) =>
    Effect.gen(function*() {
      const { checkedScores, pipeline } = yield* load(a)
      if (a.json) {
        yield* Console.log(JSON.stringify({
          name: pipeline.name,
          valid: true,
          checkedScores,
          levels: pipeline.levels,
          jobs: pipeline.jobs.map((j) => ({ name: j.name, score: j.score, needs: j.needs, policy: j.policy.name }))
        }, null, 2))
        return
      }
      yield* Console.log(`${a.file}: pipeline ${pipeline.name} is valid (${pipeline.jobs.length} jobs)`)
      yield* Effect.forEach(pipeline.levels, (names, i) => Console.log(`  ${i + 1}. ${names.join(", ")}`))
      if (!checkedScores) {
        yield* Console.log("  (scores, outputs and parameter types not checked: give --scores DIR to check them)")
      }
    })
).pipe(Command.withDescription(
  "Check a pipeline document before anything runs: cycles, unknown jobs, scores and policies, template references and types; every error with its line (exit 78). Example: orchestra pipeline validate samples/pipelines/release.yaml --scores samples/scores"
))

export const run = Command.make(
  "run",
  {
    file,
    scores,
    plugin,
    json,
    param: Options.text("param").pipe(Options.withDescription("A pipeline param key=value (repeatable)"), Options.repeated),
    params: Options.text("params").pipe(Options.withDescription("The pipeline's params as a JSON object"), Options.optional),
    plan: Options.boolean("plan").pipe(Options.withDescription("Show who would run what, in which order and batches, without running anything"))
  },
  (a) =>
    Effect.gen(function*() {
      if (!a.plan) {
        return yield* new Exit.ExitWith({
          code: Exit.codes.usage,
          message: "running a pipeline on a conductor is not available in this version yet; `--plan` shows what it would do"
        })
      }
      const { pipeline, registry } = yield* load(a)
      const kv = yield* Effect.forEach(a.param, keyValue("--param"))
      const fromJson = Option.isSome(a.params) ? yield* parseJsonObject("--params", a.params.value) : {}
      const planned = Plan.ofPipeline(pipeline, { ...fromJson, ...Object.fromEntries(kv) }, { policies: registry.policies })
      if (Either.isLeft(planned)) return yield* new Exit.ExitWith({ code: Exit.codes.usage, message: planned.left.message })
      yield* Console.log(a.json ? JSON.stringify(planned.right, null, 2) : Plan.renderPipeline(planned.right))
    })
).pipe(Command.withDescription(
  "Run a pipeline; with --plan, only show the plan. Example: orchestra pipeline run samples/pipelines/release.yaml --param ref=main --plan --scores samples/scores"
))
