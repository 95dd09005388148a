/**
 * `orchestra demo` (`npm run demo`): the main job on a fresh clone. A dev CA
 * and certificates, one conductor and three players as separate processes
 * over mutual TLS on 127.0.0.1, an embedded SQLite store, the sample
 * scores — one player lacks `disk-usage`, to show one-of fail-over — and a
 * handful of jobs, including one refused for invalid parameters and one
 * that fails. Prints the progress and a results table; then runs the
 * sample pipeline `samples/pipelines/release.yaml` on the same players
 * through the conductor (build on one of them, deploy the version built to
 * a canary, then roll it out one player at a time) and shows each job and
 * the data passed from one to the next. Stops every process and exits 0 —
 * or 70, naming what did not go as expected (a job's state, the pipeline
 * not ending OK, the version built not reaching every deploy).
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import type { ClientError } from "@orchestra/client"
import { OrchestraClient, UnixSocket } from "@orchestra/client"
import { JobState } from "@orchestra/core"
import { Console, Duration, Effect, Either, Option, ParseResult, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Exit from "./Exit.js"
import * as LocalCluster from "./LocalCluster.js"
import * as Output from "./Output.js"

interface DemoJob {
  readonly title: string
  readonly request: UnixSocket.QueueRequest
  /** What the demo expects, so a run that does not show it fails loudly. */
  readonly expect: "OK" | "FAIL" | "PARTIAL_FAIL" | "refused"
}

const players = ["violin", "viola", "cello"] as const

const jobs: ReadonlyArray<DemoJob> = [
  {
    title: "echo on every player (all-of)",
    request: { score: "echo", players: [...players], scope: "all", params: { message: "hello from the conductor" } },
    expect: "OK"
  },
  {
    title: "disk-usage on one of violin, viola (violin lacks the score: fail-over)",
    request: { score: "disk-usage", players: ["violin", "viola"], scope: "one", params: { path: "/", threshold: 99 } },
    expect: "OK"
  },
  {
    title: "disk-usage with invalid parameters (refused at submission)",
    request: { score: "disk-usage", players: ["viola", "cello"], scope: "all", params: { path: "tmp", threshold: 150, colour: "red" } },
    expect: "refused"
  },
  {
    title: "a score that fails, on one of cello",
    request: { score: "fail", players: ["cello"], scope: "one", params: { code: 3 } },
    expect: "FAIL"
  },
  {
    title: "build on one of the players (pipe interface)",
    request: { score: "build", players: [...players], scope: "one", params: { ref: "main" } },
    expect: "OK"
  },
  {
    title: "deploy on every player (json interface)",
    request: { score: "deploy", players: [...players], scope: "all", params: { version: "1.4.2" } },
    expect: "OK"
  },
  {
    title: "a legacy score with a .conf (original Orchestra layout)",
    request: { score: "legacy-hello", players: ["viola", "cello"], scope: "all", params: { name: "world" } },
    expect: "OK"
  }
]

/** A score directory with every sample score but `disk-usage`. */
const scoresWithout = (dir: string, missing: string): string => {
  fs.mkdirSync(dir, { recursive: true })
  for (const entry of fs.readdirSync(LocalCluster.sampleScores)) {
    if (entry === missing || entry.startsWith(`${missing}.`)) continue
    const from = path.join(LocalCluster.sampleScores, entry)
    fs.symlinkSync(fs.realpathSync(from), path.join(dir, entry))
  }
  return dir
}

// ---- the sample pipeline ------------------------------------------------------------------

/** The sample pipeline the demo runs on its players, and its params. */
const pipelineName = "release.yaml"
const pipelineShown = path.join("samples", "pipelines", pipelineName)
const pipelineParams = { ref: "main" } as const
/** How long the pipeline may take (it takes a second or two). */
const PIPELINE_TIMEOUT_MS = 60_000

const Started = Schema.Struct({ id: Schema.Number, existing: Schema.Boolean })
const RunView = Schema.Struct({
  id: Schema.Number,
  pipeline: Schema.String,
  state: JobState.JobState,
  reason: Schema.optional(Schema.String),
  jobs: Schema.Array(Schema.Struct({
    name: Schema.String,
    status: Schema.String,
    id: Schema.optional(Schema.Number),
    state: Schema.optional(Schema.String),
    reason: Schema.optional(Schema.String)
  }))
})
type RunView = typeof RunView.Type

/** One op on the conductor's socket: its decoded value, or the refusal (or a reply not understood) as text. */
const askSocket = <A, I>(socket: string, body: Readonly<Record<string, unknown>>, schema: Schema.Schema<A, I>) =>
  Effect.map(UnixSocket.request(socket, body), ([tag, value]): Either.Either<A, string> =>
    tag === "OK"
      ? Either.mapLeft(Schema.decodeUnknownEither(schema)(value), (e) => `unexpected reply to ${String(body["op"])}: ${ParseResult.TreeFormatter.formatErrorSync(e)}`)
      : Either.left(`${String(body["op"])} refused: ${typeof value === "string" ? value : JSON.stringify(value)}`))

/** A string field of a response (`undefined` if absent). */
const field = (r: Readonly<Record<string, unknown>> | undefined, key: string): string | undefined => {
  const v = r?.[key]
  return typeof v === "string" ? v : undefined
}

/**
 * Run the sample pipeline through the conductor (`pipeline.run`, then
 * `pipeline.get` until it is no longer PENDING), print each job's changes
 * as they come, then each job with its params and every player's response.
 * What did not go as expected comes back as problems.
 */
const runPipeline = (socket: string): Effect.Effect<ReadonlyArray<string>, ClientError.ClientError> =>
  Effect.gen(function*() {
    const problems: Array<string> = []
    yield* Console.log(
      `\npipeline ${pipelineShown} (ref=${pipelineParams.ref}): build on one of the players → deploy the version built to a canary (viola) → roll it out one player at a time`
    )
    const document = yield* Effect.try({
      try: () => fs.readFileSync(path.join(LocalCluster.samplePipelines, pipelineName), "utf8"),
      catch: (e) => `cannot read ${pipelineShown}: ${e instanceof Error ? e.message : String(e)}`
    }).pipe(Effect.either)
    if (Either.isLeft(document)) return [document.left]
    const started = yield* askSocket(socket, { op: "pipeline.run", document: document.right, file: pipelineName, params: pipelineParams }, Started)
    if (Either.isLeft(started)) {
      yield* Console.log(`  → ${started.left}`)
      return [`the sample pipeline was not started: ${started.left}`]
    }
    const id = started.right.id
    yield* Console.log(`started pipeline run ${id}`)

    const seen = new Map<string, string>()
    let run: RunView | undefined
    const deadline = Date.now() + PIPELINE_TIMEOUT_MS
    for (;;) {
      const got = yield* askSocket(socket, { op: "pipeline.get", id }, RunView)
      if (Either.isLeft(got)) return [...problems, `pipeline run ${id}: ${got.left}`]
      run = got.right
      for (const j of run.jobs) {
        const now = `${j.status}${j.state === undefined ? "" : ` ${j.state}`}${j.id === undefined ? "" : ` (job ${j.id})`}`
        if (seen.get(j.name) !== now) {
          seen.set(j.name, now)
          yield* Console.log(`  run ${id}: ${j.name} ${now}`)
        }
      }
      if (run.state !== "PENDING" || Date.now() >= deadline) break
      yield* Effect.sleep(Duration.millis(200))
    }

    const client = OrchestraClient.makeSocket({ path: socket })
    const details = new Map<string, OrchestraClient.JobDetail>()
    for (const j of run.jobs) if (j.id !== undefined) details.set(j.name, yield* client.get(j.id))
    const rows: Array<Array<string>> = []
    for (const j of run.jobs) {
      const d = details.get(j.name)
      const head = [j.name, j.status, j.id === undefined ? "—" : String(j.id), j.state ?? "", d?.policy ?? "", d === undefined ? "" : JSON.stringify(d.request.params ?? {})]
      // players in the order they were dispatched (a rolling deploy's batches, in turn)
      const order = [...new Set(d?.attempts.map((a) => a.player) ?? [])]
      if (d === undefined || order.length === 0) rows.push([...head, "", "", j.reason ?? ""])
      order.forEach((player, i) => {
        const r = d!.players[player]
        rows.push([...(i === 0 ? head : head.map(() => "")), player, r?.outcome ?? "", r === undefined ? "" : Output.response(r.response, 70)])
      })
    }
    yield* Console.log(`\npipeline run ${id} (${run.pipeline}): ${run.state}${run.reason === undefined ? "" : ` (${run.reason})`}\n`)
    yield* Console.log(Output.table(["pipeline job", "status", "job", "state", "policy", "params", "player", "outcome", "response"], rows))

    if (run.state === "PENDING") problems.push(`pipeline run ${id} still PENDING after ${PIPELINE_TIMEOUT_MS / 1000} s`)
    else if (run.state !== "OK") problems.push(`pipeline run ${id} ended ${run.state}${run.reason === undefined ? "" : ` (${run.reason})`}, expected OK`)
    for (const j of run.jobs) {
      if (j.status !== "finished" || j.state !== "OK") {
        problems.push(`pipeline job ${j.name} is ${j.status}${j.state === undefined ? "" : ` ${j.state}`}${j.reason === undefined ? "" : ` (${j.reason})`}, expected finished OK`)
      }
    }

    // the data passed: the version the build reported is what the canary and every rollout player deployed
    const build = details.get("build")
    const version = Object.values(build?.players ?? {}).map((r) => field(r.response, "version")).find((v) => v !== undefined)
    if (version === undefined) {
      problems.push("the build reported no version")
    } else {
      const deploys = ["canary", "rollout"].map((name) => ({ name, detail: details.get(name) }))
      const missed: Array<string> = []
      for (const { detail, name } of deploys) {
        const given = field(detail?.request.params, "version")
        if (given !== version) missed.push(`${name} was given version ${given ?? "(none)"}`)
        for (const [player, r] of Object.entries(detail?.players ?? {})) {
          const deployed = field(r.response, "deployed")
          if (deployed !== version) missed.push(`${name} on ${player} deployed ${deployed ?? "(nothing)"}`)
        }
        if (detail !== undefined && Object.keys(detail.players).length < detail.targets.length) missed.push(`${name}: not every target reported`)
      }
      if (missed.length === 0) {
        const rolled = [...new Set(details.get("rollout")?.attempts.map((a) => a.player) ?? [])]
        yield* Console.log(`\n• the version built, ${version}, went from build to the canary (viola) and to every player of the rollout (${rolled.join(", ")})`)
      } else {
        problems.push(`the version built (${version}) did not reach every deploy: ${missed.join("; ")}`)
      }
    }
    return problems
  })

const policyOf = (r: UnixSocket.QueueRequest) => r.policy ?? (r.scope === "one" ? "one-of" : "all-of")

export const demo = Command.make(
  "demo",
  {
    dir: Options.directory("dir").pipe(
      Options.withDescription("Where to put certificates, configs, state and logs (default: a new temporary directory)"),
      Options.optional
    ),
    keep: Options.boolean("keep").pipe(Options.withDescription("Keep the directory afterwards (to read the logs)"))
  },
  (a) =>
    Effect.gen(function*() {
      const dir = Option.isSome(a.dir) ? path.resolve(a.dir.value) : fs.mkdtempSync(path.join(os.tmpdir(), "orchestra-demo-"))
      yield* Console.log(`Orchestra demo — working directory ${dir}`)
      yield* Console.log("• generating a development CA and certificates (mutual TLS)")
      const violinScores = scoresWithout(path.join(dir, "violin-scores"), "disk-usage")
      const cluster = yield* LocalCluster.start({
        dir,
        players: [
          { name: "violin", scores: violinScores, labels: { section: "strings", desk: "1" } },
          { name: "viola", labels: { section: "strings", desk: "2" } },
          { name: "cello", labels: { section: "strings", desk: "3" } }
        ]
      })
      yield* Console.log(`• starting the conductor (TLS on 127.0.0.1:${cluster.port}, SQLite store, socket ${cluster.socket})`)
      const conductor = yield* cluster.startConductor
      yield* Console.log(`  conductor pid ${conductor.pid}`)
      for (const p of players) {
        const d = yield* cluster.startPlayer(p)
        yield* Console.log(`• starting player ${p} (pid ${d.pid})${p === "violin" ? " — without the disk-usage score" : ""}`)
      }
      yield* cluster.waitForPlayers(players)
      yield* Console.log("• all three players connected over mutual TLS and reported their scores\n")

      const accepted: Array<{ readonly job: DemoJob; readonly id: number }> = []
      const refused: Array<{ readonly job: DemoJob; readonly reason: string }> = []
      for (const job of jobs) {
        const result = yield* cluster.queue(job.request).pipe(Effect.either)
        if (result._tag === "Right") {
          accepted.push({ job, id: result.right })
          yield* Console.log(`submitted job ${result.right}: ${job.title}`)
        } else {
          refused.push({ job, reason: result.left.message })
          yield* Console.log(`refused: ${job.title}\n  → ${result.left.message}`)
        }
      }

      yield* Console.log("\nprogress:")
      const final = new Map<number, UnixSocket.JobStatus>()
      const seen = new Map<number, string>()
      const deadline = Date.now() + 60_000
      while (final.size < accepted.length && Date.now() < deadline) {
        for (const { id } of accepted) {
          if (final.has(id)) continue
          const s = yield* cluster.status(id)
          if (Option.isNone(s)) continue
          const line = `  job ${id}: ${s.value.status}  ${Object.entries(s.value.players).map(([p, r]) => `${p}:${r.status}`).join(" ")}`.trimEnd()
          if (seen.get(id) !== line) {
            seen.set(id, line)
            yield* Console.log(line)
          }
          if (s.value.status !== "PENDING") final.set(id, s.value)
        }
        yield* Effect.sleep(Duration.millis(100))
      }

      const rows: Array<Array<string>> = []
      for (const { job, id } of accepted) {
        const s = final.get(id)
        const entries = s === undefined ? [] : Object.entries(s.players)
        if (entries.length === 0) rows.push([String(id), job.request.score, policyOf(job.request), s?.status ?? "PENDING", "", "", ""])
        entries.forEach(([p, r], i) =>
          rows.push([
            i === 0 ? String(id) : "",
            i === 0 ? job.request.score : "",
            i === 0 ? policyOf(job.request) : "",
            i === 0 ? s!.status : "",
            p,
            r.status,
            Output.response(r.response, 70)
          ])
        )
      }
      for (const { job } of refused) rows.push(["—", job.request.score, policyOf(job.request), "REFUSED", "", "", "invalid parameters"])
      yield* Console.log("\nresults:\n")
      yield* Console.log(Output.table(["job", "score", "policy", "state", "player", "outcome", "response"], rows))

      const pipelineProblems = yield* runPipeline(cluster.socket)

      const problems: Array<string> = []
      for (const { job, id } of accepted) {
        const state = final.get(id)?.status ?? "PENDING"
        if (state !== job.expect) problems.push(`job ${id} (${job.title}) ended ${state}, expected ${job.expect}`)
      }
      for (const { job } of refused) if (job.expect !== "refused") problems.push(`"${job.title}" was refused`)
      for (const job of jobs) {
        if (job.expect === "refused" && !refused.some((r) => r.job === job)) problems.push(`"${job.title}" was not refused`)
      }

      problems.push(...pipelineProblems)

      yield* Console.log("\n• stopping the players and the conductor")
      return { dir, problems }
    }).pipe(
      Effect.scoped,
      Effect.flatMap(({ dir, problems }) =>
        Effect.gen(function*() {
          if (a.keep) yield* Console.log(`• kept ${dir} (configs, certificates, logs, SQLite store)`)
          else fs.rmSync(dir, { recursive: true, force: true })
          if (problems.length > 0) {
            return yield* new Exit.ExitWith({ code: Exit.codes.internal, message: `the demo did not go as expected:\n${problems.join("\n")}` })
          }
          yield* Console.log("• done: every process stopped")
        })
      ),
      Effect.catchTag("ClusterError", (e) => Effect.fail(new Exit.ExitWith({ code: Exit.codes.internal, message: e.message }))),
      Effect.catchTag("ClientError", (e) => Effect.fail(new Exit.ExitWith({ code: Exit.codes.unavailable, message: e.message })))
    )
).pipe(
  Command.withDescription(
    "Run the demo: a conductor and three players as real processes over mutual TLS on 127.0.0.1, sample jobs, a results table, then the sample release pipeline (build → canary → rolling deploy). Example: orchestra demo --keep"
  )
)
