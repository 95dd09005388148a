/**
 * `orchestra pipeline validate FILE`, `orchestra pipeline run FILE
 * [--plan] [--wait]` and `orchestra pipeline status ID`: a pipeline document checked as a whole before anything runs —
 * its DAG, the scores and policies it names, and every template's type
 * against the producing score's `outputs` and the consuming score's
 * `parameters` (the scores of a score directory, read as a player reads
 * them) — with every error listed by file and line; and the dry run, which
 * shows who would run what, in which order and batches, with the validated
 * params, without running anything. Without `--plan`, the run is handed
 * to the conductor (over the audience socket or the HTTP API), which validates it again
 * against the catalog its players reported, stores it, and runs it —
 * resuming it after a restart.
 *
 * @since 0.1.0
 */
import { Args, Command, Options } from "@effect/cli"
import type { ClientError, OrchestraClient } from "@orchestra/client"
import { Pipeline, Plan } from "@orchestra/pipeline"
import { Console, Duration, Effect, Either, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Connection from "./Connection.js"
import { keyValue, parseJsonObject } from "./Audience.js"
import * as Exit from "./Exit.js"
import { catalogOf, registryOf } from "./Simulate.js"

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

/** Read and check the document: with `--scores`, everything; without, what needs no catalog. */
const load = (a: { readonly file: string; readonly scores: ReadonlyArray<string>; readonly plugin: ReadonlyArray<string> }) =>
  Effect.gen(function*() {
    const registry = yield* registryOf(a.plugin, process.cwd())
    const context = a.scores.length === 0 ? undefined : { catalog: yield* catalogOf(a.scores, process.cwd()), policies: registry.policies }
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

// ---- runs on the conductor ------------------------------------------------------------

type RunView = OrchestraClient.PipelineRunDetail

/** A refused run (a document the conductor finds wrong) is a config error (78), with every issue. */
const refusedAsConfig = <A>(self: Effect.Effect<A, ClientError.ClientError>): Effect.Effect<A, ClientError.ClientError | Exit.ExitWith> =>
  Effect.catchIf(
    self,
    (e) => e.reason === "refused",
    (e) => Effect.fail(new Exit.ExitWith({ code: Exit.codes.config, message: Connection.describe(e) }))
  )

const describeRun = (r: RunView): ReadonlyArray<string> => [
  `pipeline run ${r.id} (${r.pipeline}): ${r.state}${r.reason === undefined ? "" : ` (${r.reason})`}`,
  ...r.jobs.map((j) =>
    `  ${j.name.padEnd(16)} ${j.status.padEnd(10)}${j.id === undefined ? "" : ` job ${j.id}`}${j.state === undefined ? "" : ` ${j.state}`}${j.reason === undefined || j.state === "OK" ? "" : ` (${j.reason})`}`)
]

/** Follow a run until it finishes, printing each job's change on stderr. */
const follow = (client: OrchestraClient.Service, id: number) =>
  Effect.gen(function*() {
    const seen = new Map<string, string>()
    for (;;) {
      const r = yield* client.pipelines.get(id)
      for (const j of r.jobs) {
        const now = `${j.status}${j.state === undefined ? "" : ` ${j.state}`}`
        if (seen.get(j.name) !== now) {
          seen.set(j.name, now)
          yield* Console.error(`run ${id}: ${j.name} ${now}${j.id === undefined ? "" : ` (job ${j.id})`}`)
        }
      }
      if (r.state !== "PENDING") return r
      yield* Effect.sleep(Duration.millis(300))
    }
  })

const endWith = (r: RunView) => {
  const code = Exit.ofJobState(r.state)
  return code === 0 ? Effect.void : Effect.fail(new Exit.ExitWith({ code }))
}

const runId = Args.integer({ name: "id" }).pipe(Args.withDescription("The pipeline run's id"))

export const status = Command.make(
  "status",
  { id: runId, json, wait: Options.boolean("wait").pipe(Options.withDescription("Wait until the run ends (exit status of the run)")), ...Connection.options },
  (a) =>
    Connection.withClient(a, (client) =>
      Effect.gen(function*() {
        const r = a.wait ? yield* follow(client, a.id) : yield* client.pipelines.get(a.id)
        yield* Console.log(a.json ? JSON.stringify(r, null, 2) : describeRun(r).join("\n"))
        if (a.wait) yield* endWith(r)
      }))
).pipe(Command.withDescription("Show a pipeline run: each job's status, id and state. Example: orchestra pipeline status 3 --wait"))

export const list = Command.make(
  "list",
  {
    json,
    state: Options.choice("state", ["PENDING", "OK", "PARTIAL_FAIL", "FAIL", "CANCELLED"]).pipe(Options.withDescription("Only runs in this state"), Options.optional),
    pipeline: Options.text("pipeline").pipe(Options.withDescription("Only runs of this pipeline (its document's name)"), Options.optional),
    limit: Options.integer("limit").pipe(Options.withDescription("At most this many (1 to 1000, default 50)"), Options.optional),
    ...Connection.options
  },
  (a) =>
    Connection.withClient(a, (client) =>
      Effect.gen(function*() {
        const page = yield* client.pipelines.list({
          ...(Option.isSome(a.state) ? { state: a.state.value } : {}),
          ...(Option.isSome(a.pipeline) ? { pipeline: a.pipeline.value } : {}),
          ...(Option.isSome(a.limit) ? { limit: a.limit.value } : {})
        })
        if (a.json) return yield* Console.log(JSON.stringify(page, null, 2))
        if (page.runs.length === 0) return yield* Console.log("no pipeline runs")
        for (const r of page.runs) {
          yield* Console.log(
            `${String(r.id).padStart(6)}  ${r.state.padEnd(12)} ${r.pipeline.padEnd(20)} ${new Date(r.createdAt).toISOString()}${r.reason === undefined ? "" : `  ${r.reason}`}`
          )
        }
      }))
).pipe(Command.withDescription("List pipeline runs, newest first. Example: orchestra pipeline list --state PENDING"))

export const cancel = Command.make(
  "cancel",
  {
    id: runId,
    reason: Options.text("reason").pipe(Options.withDescription("Why (recorded as the run's reason)"), Options.optional),
    json,
    ...Connection.options
  },
  (a) =>
    Connection.withClient(a, (client) =>
      Effect.gen(function*() {
        const r = yield* client.pipelines.cancel(a.id, Option.getOrUndefined(a.reason))
        yield* Console.log(a.json ? JSON.stringify(r, null, 2) : describeRun(r).join("\n"))
      }))
).pipe(Command.withDescription(
  "Cancel a pipeline run: nothing more starts and its running jobs are cancelled; a finished run is refused (69). Example: orchestra pipeline cancel 3 --reason 'wrong ref'"
))

export const run = Command.make(
  "run",
  {
    file,
    scores,
    plugin,
    json,
    wait: Options.boolean("wait").pipe(Options.withDescription("Wait until the run ends, showing each job's progress; exit with the run's state (0 OK, 1 FAIL, 2 PARTIAL_FAIL)")),
    key: Options.text("key").pipe(Options.withDescription("Idempotency key: the same key returns the same run"), Options.optional),
    ...Connection.options,
    param: Options.text("param").pipe(Options.withDescription("A pipeline param key=value (repeatable)"), Options.repeated),
    params: Options.text("params").pipe(Options.withDescription("The pipeline's params as a JSON object"), Options.optional),
    plan: Options.boolean("plan").pipe(Options.withDescription("Show who would run what, in which order and batches, without running anything"))
  },
  (a) =>
    Effect.gen(function*() {
      const kv = yield* Effect.forEach(a.param, keyValue("--param"))
      const fromJson = Option.isSome(a.params) ? yield* parseJsonObject("--params", a.params.value) : {}
      const params = { ...fromJson, ...Object.fromEntries(kv) }
      if (!a.plan) {
        const document = yield* Effect.try({
          try: () => fs.readFileSync(a.file, "utf8"),
          catch: (e) => new Exit.ExitWith({ code: Exit.codes.usage, message: `${a.file}: ${e instanceof Error ? e.message : String(e)}` })
        })
        return yield* Connection.withClient(a, (client) =>
          Effect.gen(function*() {
            const created = yield* refusedAsConfig(client.pipelines.run({
              document,
              file: path.basename(a.file),
              params,
              ...(Option.isSome(a.key) ? { idempotencyKey: a.key.value } : {})
            }))
            if (!a.wait) {
              yield* Console.log(a.json ? JSON.stringify(created) : `pipeline run ${created.id}${created.existing ? " (existing)" : ""}`)
              return
            }
            const r = yield* follow(client, created.id)
            yield* Console.log(a.json ? JSON.stringify(r, null, 2) : describeRun(r).join("\n"))
            return yield* endWith(r)
          }))
      }
      const { pipeline, registry } = yield* load(a)
      const planned = Plan.ofPipeline(pipeline, params, { policies: registry.policies })
      if (Either.isLeft(planned)) return yield* new Exit.ExitWith({ code: Exit.codes.usage, message: planned.left.message })
      yield* Console.log(a.json ? JSON.stringify(planned.right, null, 2) : Plan.renderPipeline(planned.right))
    })
).pipe(Command.withDescription(
  "Run a pipeline on the conductor (validated there first, stored, resumed after a restart); with --plan, only show who would run what. Example: orchestra pipeline run samples/pipelines/release.yaml --param ref=main --wait"
))
