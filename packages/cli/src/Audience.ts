/**
 * The audience commands: `submit`, `status`, `wait`, `watch`, `cancel`,
 * `jobs`, `players` (and `scores list`, in `Scores.ts`), over the
 * conductor's Unix socket or its HTTP API (`Connection`). Each prints for
 * people by default and JSON with `--json`; `submit --wait`, `wait` and
 * `watch JOB` exit with the job's state (`Exit`). `submit --plan` is the dry
 * run: the conductor checks the job as it would a submission and answers
 * with what its policy would do (the socket's `plan` op); nothing is queued.
 *
 * @since 0.1.0
 */
import { Args, Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import type { ClientError, OrchestraClient } from "@orchestra/client"
import { Views } from "@orchestra/api"
import { Json } from "@orchestra/core"
import { Units } from "@orchestra/manifest"
import { Plan } from "@orchestra/pipeline"
import { Clock, Console, Duration, Effect, Either, Fiber, Option, Stream } from "effect"
import * as Connection from "./Connection.js"
import * as Exit from "./Exit.js"
import * as Output from "./Output.js"
import * as Progress from "./Progress.js"

type Client = OrchestraClient.Service
type JobDetail = OrchestraClient.JobDetail

export const jsonOption = Options.boolean("json").pipe(Options.withDescription("Print JSON for scripts"))

const idArg = Args.integer({ name: "id" }).pipe(Args.withDescription("The job id"))

const durationOf = (flag: string) => (s: string) => {
  const ms = Units.parseDuration(s)
  return Either.isLeft(ms)
    ? Effect.fail(ValidationError.invalidValue(HelpDoc.p(`${flag} ${s}: ${ms.left}`)))
    : Effect.succeed(Duration.millis(ms.right))
}

const timeoutOption = Options.text("timeout").pipe(
  Options.withDescription("Give up waiting after this long (e.g. 30s, 5m); exit 4 if the job is still pending"),
  Options.mapEffect(durationOf("--timeout")),
  Options.optional
)

const usage = (message: string) => new Exit.ExitWith({ code: Exit.codes.usage, message })

/** Run `f` with the client the connection flags name; a client failure ends the command with its exit code. */
const withClient = Connection.withClient

// ---- printing a job -------------------------------------------------------------------------

/** Where each player of a job is: its result, or (while the job runs) its latest attempt's phase. */
const playerRows = (job: JobDetail): ReadonlyArray<readonly [string, string, string]> => {
  const rows: Array<readonly [string, string, string]> = []
  const seen = new Set<string>()
  const latest = new Map<string, JobDetail["attempts"][number]>()
  for (const a of job.attempts) latest.set(a.player, a)
  for (const player of [...job.targets, ...Object.keys(job.players), ...latest.keys()]) {
    if (seen.has(player)) continue
    seen.add(player)
    const result = job.players[player]
    const attempt = latest.get(player)
    if (result !== undefined && (attempt === undefined || attempt.outcome !== undefined || attempt.attempt <= result.attempt)) {
      rows.push([player, result.outcome, Output.response(result.response)])
    } else if (job.state === "PENDING") {
      const phase = attempt === undefined ? "waiting" : attempt.startedAt !== undefined ? "running" : "dispatched"
      rows.push([player, phase, ""])
    } else if (result !== undefined) {
      rows.push([player, result.outcome, Output.response(result.response)])
    }
  }
  return rows
}

/** A job for people: `job N: STATE`, what it is, and each player's outcome and response. */
export const describeJob = (job: JobDetail, now: number): string => {
  const took = job.finishedAt !== undefined
    ? `, took ${Output.duration(job.finishedAt - job.createdAt)}`
    : `, ${Output.duration(now - job.createdAt)} ago`
  const lines = [
    `job ${job.id}: ${job.state}`,
    `  ${job.score} (${job.policy}) on ${Output.names(job.targets, 60)}, submitted ${Output.time(job.createdAt)}${took}`
  ]
  if (job.reason !== undefined) lines.push(`  reason: ${job.reason}`)
  const rows = playerRows(job)
  if (rows.length === 0) lines.push("  (no player has reported yet)")
  else lines.push(Output.table(["  player", "outcome", "response"], rows.map(([p, o, r]) => [`  ${p}`, o, r])))
  return lines.join("\n")
}

const printJob = (job: JobDetail, json: boolean) =>
  json
    ? Console.log(JSON.stringify(job))
    : Effect.flatMap(Clock.currentTimeMillis, (now) => Console.log(describeJob(job, now)))

/** The exit of a job's final state: nothing for OK, the code otherwise. */
const exitOf = (job: JobDetail, timeout: Option.Option<Duration.Duration>): Effect.Effect<void, Exit.ExitWith> => {
  if (job.state === "PENDING") {
    const after = Option.match(timeout, { onNone: () => "", onSome: (d) => ` after ${Duration.format(d)}` })
    return Effect.fail(new Exit.ExitWith({ code: Exit.codes.pending, message: `job ${job.id} still pending${after}` }))
  }
  const code = Exit.ofJobState(job.state)
  return code === 0 ? Effect.void : Effect.fail(new Exit.ExitWith({ code }))
}

// ---- following a job ----------------------------------------------------------------------

const stderrSink = (): Progress.Sink => ({
  write: (text) => {
    process.stderr.write(text)
  },
  tty: process.stderr.isTTY === true,
  ...(process.stderr.columns === undefined ? {} : { columns: process.stderr.columns })
})

/**
 * Wait for a job, showing its progress live (on stderr) when `show`: the
 * job's events as they come, and its detail between slices of the wait, so
 * that nothing is missed while the event stream connects. Returns the job
 * as it ended, or as it is at the timeout.
 */
export const follow = (
  client: Client,
  id: number,
  timeout: Option.Option<Duration.Duration>,
  show: boolean
): Effect.Effect<JobDetail, ClientError.ClientError> =>
  Effect.gen(function*() {
    const first = yield* client.get(id)
    const limit = Option.match(timeout, { onNone: () => Infinity, onSome: Duration.toMillis })
    if (!show) return first.state !== "PENDING" ? first : yield* client.wait(id, Option.getOrUndefined(timeout))
    const display = Progress.display(
      Progress.make(id, { title: `${first.score} (${first.policy})`, targets: first.targets.length }),
      stderrSink()
    )
    const feed = (job: JobDetail) => Effect.sync(() => Progress.fromDetail(job).forEach(display.update))
    yield* feed(first)
    if (first.state !== "PENDING") {
      display.finish()
      return first
    }
    const events = yield* client.events(id).pipe(
      Stream.runForEach((e) =>
        Effect.sync(() => {
          const u = Progress.fromEvent(id, e)
          if (u !== undefined) display.update(u)
        })
      ),
      Effect.ignore,
      Effect.fork
    )
    const start = yield* Clock.currentTimeMillis
    let job = first
    for (;;) {
      const left = limit - ((yield* Clock.currentTimeMillis) - start)
      job = yield* client.wait(id, Duration.millis(Math.max(0, Math.min(left, 2000))))
      if (job.state !== "PENDING" || left <= 2000) break
      yield* feed(job)
    }
    // The stream ends after the job's `job.finished`: let it catch up briefly, then stop it.
    if (job.state !== "PENDING") yield* Fiber.join(events).pipe(Effect.timeout(Duration.millis(500)), Effect.ignore)
    yield* Fiber.interrupt(events)
    yield* feed(job)
    display.finish()
    return job
  })

// ---- submit -------------------------------------------------------------------------------

export const keyValue = (flag: string) => (kv: string): Effect.Effect<readonly [string, string], Exit.ExitWith> => {
  const i = kv.indexOf("=")
  return i <= 0 ? Effect.fail(usage(`${flag} ${JSON.stringify(kv)}: expected key=value`)) : Effect.succeed([kv.slice(0, i), kv.slice(i + 1)] as const)
}

export const parseJsonObject = (flag: string, text: string): Effect.Effect<Json.JsonObject, Exit.ExitWith> =>
  Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (e) => usage(`${flag}: not JSON: ${e instanceof Error ? e.message : String(e)}`)
  }).pipe(
    Effect.filterOrFail(
      (v): v is Json.JsonObject => typeof v === "object" && v !== null && !Array.isArray(v),
      () => usage(`${flag}: expected a JSON object`)
    )
  )

const parseJson = (flag: string, text: string): Effect.Effect<Json.Json, Exit.ExitWith> =>
  Effect.try({
    try: () => JSON.parse(text) as Json.Json,
    catch: (e) => usage(`${flag}: not JSON: ${e instanceof Error ? e.message : String(e)}`)
  })

const splitList = (values: ReadonlyArray<string>) => values.flatMap((p) => p.split(",")).map((p) => p.trim()).filter((p) => p.length > 0)

// ---- submit --plan ------------------------------------------------------------------------

/** The conductor's dry run of a job (the HTTP API's `JobPlan`, also the socket's `plan` reply). */
export const JobPlanReply = Views.JobPlan
export type JobPlanReply = Views.JobPlan

/** A job's plan for people: what would run, with which params, then one line per batch. */
export const describePlan = (view: JobPlanReply): string => {
  // the names were checked by the conductor that planned them
  const plan = { policy: view.plan.policy, batches: view.plan.batches, finished: view.plan.finished, truncated: view.plan.truncated } as Plan.JobPlan
  const lines = [
    `plan: ${view.score} (${view.policy.name}) on ${Output.names(view.targets, 60)} — nothing was submitted`,
    `  params ${JSON.stringify(view.params)}`
  ]
  if (view.policy.options !== undefined && JSON.stringify(view.policy.options) !== "{}") lines.push(`  options ${JSON.stringify(view.policy.options)}`)
  lines.push(plan.batches.length === 0 && plan.finished === undefined ? "  (no task)" : Plan.renderJob(plan, "  "))
  if (view.unchecked.length > 0) {
    lines.push(`  not checked on ${Output.names(view.unchecked, 60)} (no catalog reported yet: they check the score and params themselves)`)
  }
  if (view.offline.length > 0) lines.push(`  offline now: ${Output.names(view.offline, 60)} (their tasks would wait for them)`)
  return lines.join("\n")
}

export const submit = Command.make(
  "submit",
  {
    score: Args.text({ name: "score" }).pipe(Args.withDescription("The score to run")),
    players: Options.text("player").pipe(
      Options.withAlias("p"),
      Options.withDescription("A target player (repeat, or separate with commas)"),
      Options.repeated
    ),
    selector: Options.text("selector").pipe(
      Options.withDescription("Target every player whose labels include key=value (repeatable: all must match)"),
      Options.repeated
    ),
    scope: Options.choice("scope", ["one", "all"]).pipe(
      Options.withDescription("one: any one of the players runs it (one-of); all: every player runs it (all-of)"),
      Options.optional
    ),
    policy: Options.text("policy").pipe(Options.withDescription("A policy by name (one-of, all-of, rolling, stages, ...), instead of --scope"), Options.optional),
    options: Options.text("options").pipe(Options.withDescription("The policy's options, as JSON (e.g. '{\"batchSize\":2}')"), Options.optional),
    param: Options.text("param").pipe(Options.withDescription("A parameter key=value (repeatable; values are strings, converted to the declared type)"), Options.repeated),
    params: Options.text("params").pipe(Options.withDescription("Parameters as a JSON object (typed values)"), Options.optional),
    deadline: Options.text("deadline").pipe(
      Options.withDescription("Tasks not finished this long from now end TIMEOUT (e.g. 10m)"),
      Options.mapEffect(durationOf("--deadline")),
      Options.optional
    ),
    retry: Options.integer("retry").pipe(Options.withDescription("Retry a failed task up to this many times (0-100)"), Options.optional),
    retryBackoff: Options.text("retry-backoff").pipe(
      Options.withDescription("Pause before the first retry, doubled each time (default 1s)"),
      Options.mapEffect(durationOf("--retry-backoff")),
      Options.optional
    ),
    idempotencyKey: Options.text("idempotency-key").pipe(
      Options.withDescription("Submitting the same key again returns the same job instead of a new one"),
      Options.optional
    ),
    label: Options.text("label").pipe(Options.withDescription("A label key=value on the job (repeatable)"), Options.repeated),
    wait: Options.boolean("wait").pipe(Options.withDescription("Wait for the job, show each player's progress, and exit with its state")),
    plan: Options.boolean("plan").pipe(
      Options.withDescription("Dry run: show which players would run it, in which batches, with the validated params (defaults applied); nothing is queued")
    ),
    timeout: timeoutOption,
    connection: Connection.options,
    json: jsonOption
  },
  (a) =>
    Effect.gen(function*() {
      const players = splitList(a.players)
      const kv = yield* Effect.forEach(a.param, keyValue("--param"))
      const fromJson = Option.isSome(a.params) ? yield* parseJsonObject("--params", a.params.value) : {}
      const options = Option.isSome(a.options) ? yield* parseJson("--options", a.options.value) : undefined
      const selector = yield* Effect.forEach(splitList(a.selector), keyValue("--selector"))
      const labels = yield* Effect.forEach(a.label, keyValue("--label"))
      if (Option.isSome(a.scope) && Option.isSome(a.policy)) return yield* usage("give --scope or --policy, not both")
      const policy = Option.isSome(a.policy) ? a.policy.value : Option.isSome(a.scope) ? (a.scope.value === "one" ? "one-of" : "all-of") : undefined
      if (policy === undefined) return yield* usage("give --scope one|all or --policy NAME")
      if (players.length === 0 && selector.length === 0) return yield* usage("give the target players: -p NAME (repeatable) or --selector key=value")
      if (Option.isSome(a.retry) && (a.retry.value < 0 || a.retry.value > 100)) return yield* usage("--retry: expected 0 to 100")
      if (a.plan && a.wait) return yield* usage("give --plan or --wait, not both: a plan runs nothing")
      const now = yield* Clock.currentTimeMillis
      const request: OrchestraClient.SubmitRequest = {
        score: a.score,
        ...(players.length > 0 ? { players } : {}),
        ...(selector.length > 0 ? { selector: Object.fromEntries(selector) } : {}),
        policy: options === undefined ? { name: policy } : { name: policy, options },
        params: { ...fromJson, ...Object.fromEntries(kv) },
        ...(Option.isSome(a.deadline) ? { deadline: now + Duration.toMillis(a.deadline.value) } : {}),
        ...(Option.isSome(a.retry)
          ? { retry: { max: a.retry.value, ...(Option.isSome(a.retryBackoff) ? { backoffMs: Duration.toMillis(a.retryBackoff.value) } : {}) } }
          : {}),
        ...(Option.isSome(a.idempotencyKey) ? { idempotencyKey: a.idempotencyKey.value } : {}),
        ...(labels.length > 0 ? { labels: Object.fromEntries(labels) } : {})
      }
      if (a.plan) {
        const view = yield* withClient(a.connection, (client) => client.plan(request))
        yield* Console.log(a.json ? JSON.stringify(view) : describePlan(view))
        return
      }
      yield* withClient(a.connection, (client) =>
        Effect.gen(function*() {
          const { existing, id } = yield* client.submit(request)
          const said = existing ? `job ${id} exists already (same idempotency key)` : `job ${id} queued`
          if (!a.wait) {
            yield* a.json ? Console.log(JSON.stringify({ id, existing })) : Console.log(said)
            return
          }
          if (!a.json) yield* Console.error(`${said}; waiting`)
          const job = yield* follow(client, id, a.timeout, !a.json)
          yield* printJob(job, a.json)
          yield* exitOf(job, a.timeout)
        }))
    })
).pipe(
  Command.withDescription(
    "Queue a job; with --wait, show each player's progress live and exit with the job's state (0 OK, 1 FAIL, 2 PARTIAL_FAIL, 3 CANCELLED, 4 pending at --timeout); " +
      "with --plan, only show who would run it, in which batches, with which params (refused as a submit would be, 69). " +
      "Example: orchestra submit disk-usage -p web1,web2 --scope all --params '{\"path\":\"/\"}' --wait"
  )
)

// ---- status, wait, cancel -----------------------------------------------------------------

const printLogs = (client: Client, job: JobDetail) =>
  Effect.forEach(job.attempts.filter((a) => a.logBytes > 0), (a) =>
    Effect.gen(function*() {
      const text = yield* client.log({ job: job.id, key: a.key, attempt: a.attempt })
      yield* Console.log(`\n--- log of ${a.player} (task ${a.key}, attempt ${a.attempt}, ${a.logBytes} bytes)\n${text.replace(/\n$/, "")}`)
    }), { discard: true })

export const status = Command.make(
  "status",
  {
    id: idArg,
    logs: Options.boolean("logs").pipe(Options.withDescription("Also print each attempt's log (the score's stderr)")),
    connection: Connection.options,
    json: jsonOption
  },
  (a) =>
    withClient(a.connection, (client) =>
      Effect.gen(function*() {
        const job = yield* client.get(a.id)
        yield* printJob(job, a.json)
        if (a.logs && !a.json) yield* printLogs(client, job)
      }))
).pipe(
  Command.withDescription(
    "Show a job: its state, score, policy and targets, and each player's outcome and response (--logs: the scores' stderr too). Example: orchestra status 42"
  )
)

export const wait = Command.make(
  "wait",
  { id: idArg, timeout: timeoutOption, connection: Connection.options, json: jsonOption },
  (a) =>
    withClient(a.connection, (client) =>
      Effect.gen(function*() {
        const job = yield* follow(client, a.id, a.timeout, !a.json)
        yield* printJob(job, a.json)
        yield* exitOf(job, a.timeout)
      }))
).pipe(
  Command.withDescription(
    "Wait until a job finishes, showing each player's progress; exit 0 OK, 1 FAIL, 2 PARTIAL_FAIL, 3 CANCELLED, 4 still pending at --timeout. Example: orchestra wait 42 --timeout 5m"
  )
)

export const cancel = Command.make(
  "cancel",
  {
    id: idArg,
    reason: Options.text("reason").pipe(Options.withDescription("Why (recorded as the job's reason)"), Options.optional),
    connection: Connection.options,
    json: jsonOption
  },
  (a) =>
    withClient(a.connection, (client) =>
      Effect.gen(function*() {
        const job = yield* client.cancel(a.id, Option.getOrUndefined(a.reason))
        if (!a.json) yield* Console.error(`job ${a.id} cancelled; running scores are being stopped`)
        yield* printJob(job, a.json)
      }))
).pipe(
  Command.withDescription(
    "Cancel a job: it ends CANCELLED, queued tasks are dropped and running scores are stopped; a finished job is refused (69). Example: orchestra cancel 42 --reason 'wrong version'"
  )
)

// ---- watch --------------------------------------------------------------------------------

/** One event for people, one line. */
export const describeEvent = (e: OrchestraClient.Event): string => {
  const at = Output.time(e.at).slice(11, 19)
  switch (e.type) {
    case "job.submitted":
      return `${at}  job ${e.job} submitted: ${e.score} (${e.policy}) on ${Output.names(e.targets, 60)}`
    case "task.dispatched":
      return `${at}  job ${e.job} ${e.score}: ${e.player} dispatched (task ${e.key}, attempt ${e.attempt})`
    case "task.started":
      return `${at}  job ${e.job} ${e.score}: ${e.player} started (task ${e.key}, attempt ${e.attempt})`
    case "task.finished":
      return `${at}  job ${e.job} ${e.score}: ${e.player} ${e.outcome} (task ${e.key}, attempt ${e.attempt})`
    case "job.finished":
      return `${at}  job ${e.job} ${e.score}: ${e.state}${e.reason === undefined ? "" : ` (${e.reason})`}`
    case "player.connected":
      return `${at}  player ${e.player} connected (${e.slots} slots${e.address === undefined ? "" : `, ${e.address}`})`
    case "player.disconnected":
      return `${at}  player ${e.player} disconnected`
    case "pipeline.started":
      return `${at}  pipeline run ${e.run} (${e.pipeline}) started: ${e.jobs.join(", ")}`
    case "pipeline.progressed":
      return `${at}  pipeline run ${e.run} (${e.pipeline}) ${e.name}: ${e.status}${
        e.jobId === undefined ? "" : ` (job ${e.jobId}${e.state === undefined ? "" : ` ${e.state}`})`
      }${e.reason === undefined ? "" : ` ${e.reason}`}`
    case "pipeline.finished":
      return `${at}  pipeline run ${e.run} (${e.pipeline}): ${e.state}${e.reason === undefined ? "" : ` (${e.reason})`}`
    case "reset":
      return `${at}  reset: ${e.reason}`
  }
}

const eventTypes = [
  "job.submitted",
  "task.dispatched",
  "task.started",
  "task.finished",
  "job.finished",
  "player.connected",
  "player.disconnected",
  "pipeline.started",
  "pipeline.progressed",
  "pipeline.finished"
] as const

export const watch = Command.make(
  "watch",
  {
    id: Args.integer({ name: "id" }).pipe(Args.withDescription("The job to watch (default: everything)"), Args.optional),
    from: Options.text("from").pipe(Options.withDescription("Resume after this event id (the last one you saw)"), Options.optional),
    types: Options.text("type").pipe(
      Options.withDescription(`Only these event types (repeatable, or comma-separated): ${eventTypes.join(", ")}`),
      Options.repeated
    ),
    connection: Connection.options,
    json: jsonOption
  },
  (a) =>
    withClient(a.connection, (client) =>
      Effect.gen(function*() {
        const types = splitList(a.types)
        for (const t of types) {
          if (!(eventTypes as ReadonlyArray<string>).includes(t)) return yield* usage(`--type ${t}: expected one of ${eventTypes.join(", ")}`)
        }
        const options: OrchestraClient.EventsOptions = {
          lastEventId: Option.getOrUndefined(a.from),
          ...(types.length > 0 ? { types: types as ReadonlyArray<typeof eventTypes[number]> } : {})
        }
        const print = (e: OrchestraClient.Event) => Console.log(a.json ? JSON.stringify(e) : describeEvent(e))
        if (Option.isNone(a.id)) {
          return yield* client.events("all", options).pipe(Stream.runForEach(print))
        }
        const id = a.id.value
        const first = yield* client.get(id)
        if (!a.json) yield* Console.error(`job ${id}: ${first.score} (${first.policy}) on ${Output.names(first.targets, 60)}: ${first.state}`)
        if (first.state !== "PENDING" && Option.isNone(a.from)) return yield* exitOf(first, Option.none())
        // The stream ends after the job's `job.finished`; should it be missed (the job finished while
        // the stream connected), the job's own end, from `wait`, ends the watch a moment later.
        const streamed = client.events(id, options).pipe(Stream.runForEach(print))
        const ended = Effect.zipLeft(client.wait(id), Effect.sleep(Duration.seconds(2)))
        yield* Effect.raceFirst(streamed, Effect.asVoid(ended))
        const job = yield* client.get(id)
        yield* exitOf(job, Option.none())
      }))
).pipe(
  Command.withDescription(
    "Print events as they happen — of one job (ends when it finishes, with its exit code) or of everything (until interrupted); --json prints each event as a JSON line. Example: orchestra watch 42"
  )
)

// ---- jobs ---------------------------------------------------------------------------------

const timeOf = (flag: string) => (s: string) => {
  const ago = Units.parseDuration(s)
  if (Either.isRight(ago)) return Effect.map(Clock.currentTimeMillis, (now) => now - ago.right)
  const t = /^[0-9]{10,16}$/.test(s) ? Number(s) : Date.parse(s)
  return Number.isFinite(t)
    ? Effect.succeed(t)
    : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`${flag} ${s}: expected a duration ago (e.g. 1h), an ISO-8601 date or epoch milliseconds`)))
}

/** Most pages `jobs --all` reads (1000 jobs each). */
const MAX_PAGES = 1000

export const jobs = Command.make(
  "jobs",
  {
    state: Options.choice("state", ["PENDING", "OK", "PARTIAL_FAIL", "FAIL", "CANCELLED"]).pipe(
      Options.withDescription("Only jobs in this state"),
      Options.optional
    ),
    score: Options.text("score").pipe(Options.withDescription("Only jobs of this score"), Options.optional),
    player: Options.text("player").pipe(Options.withAlias("p"), Options.withDescription("Only jobs targeting this player"), Options.optional),
    since: Options.text("since").pipe(
      Options.withDescription("Only jobs submitted since: a duration ago (1h, 2d), an ISO-8601 date or epoch ms"),
      Options.mapEffect(timeOf("--since")),
      Options.optional
    ),
    until: Options.text("until").pipe(
      Options.withDescription("Only jobs submitted before: a duration ago, an ISO-8601 date or epoch ms"),
      Options.mapEffect(timeOf("--until")),
      Options.optional
    ),
    limit: Options.integer("limit").pipe(Options.withDescription("Jobs per page, 1-1000"), Options.withDefault(50)),
    before: Options.integer("before").pipe(Options.withDescription("Only jobs with a smaller id: the next page after the one that ended there"), Options.optional),
    all: Options.boolean("all").pipe(Options.withDescription("Every page, not just the first")),
    connection: Connection.options,
    json: jsonOption
  },
  (a) =>
    withClient(a.connection, (client) =>
      Effect.gen(function*() {
        if (a.limit < 1 || a.limit > 1000) return yield* usage("--limit: expected 1 to 1000")
        const query: OrchestraClient.ListQuery = {
          ...(Option.isSome(a.state) ? { state: a.state.value } : {}),
          ...(Option.isSome(a.score) ? { score: a.score.value } : {}),
          ...(Option.isSome(a.player) ? { player: a.player.value } : {}),
          ...(Option.isSome(a.since) ? { since: a.since.value } : {}),
          ...(Option.isSome(a.until) ? { until: a.until.value } : {}),
          limit: a.limit
        }
        const found: Array<OrchestraClient.JobSummary> = []
        let before = Option.getOrUndefined(a.before)
        let next: number | undefined
        for (let page = 0; page < (a.all ? MAX_PAGES : 1); page++) {
          const p = yield* client.list(before === undefined ? query : { ...query, before })
          found.push(...p.jobs)
          next = p.next
          if (next === undefined) break
          before = next
        }
        if (a.json) {
          yield* Console.log(JSON.stringify(next === undefined || a.all ? { jobs: found } : { jobs: found, next }))
          return
        }
        const now = yield* Clock.currentTimeMillis
        if (found.length === 0) yield* Console.log("no jobs")
        else {
          yield* Console.log(
            Output.table(
              ["id", "state", "score", "policy", "targets", "submitted", "took"],
              found.map((j) => [
                String(j.id),
                j.state,
                j.score,
                j.policy,
                Output.names(j.targets, 30),
                Output.time(j.createdAt),
                j.finishedAt !== undefined ? Output.duration(j.finishedAt - j.createdAt) : `(${Output.duration(now - j.createdAt)} so far)`
              ])
            )
          )
        }
        if (next !== undefined && !a.all) yield* Console.error(`more: orchestra jobs --before ${next}${a.limit === 50 ? "" : ` --limit ${a.limit}`} (or --all)`)
      }))
).pipe(
  Command.withDescription(
    "List jobs, newest first, a page at a time (--before the last id for the next page, --all for every page). Example: orchestra jobs --state FAIL --since 1d"
  )
)

// ---- players ------------------------------------------------------------------------------

export const players = Command.make("players", { connection: Connection.options, json: jsonOption }, (a) =>
  withClient(a.connection, (client) =>
    Effect.gen(function*() {
      const view = yield* client.players()
      if (a.json) return yield* Console.log(JSON.stringify(view))
      yield* Console.log(
        Output.table(
          ["player", "state", "slots", "running", "labels", "scores"],
          view.players.map((p) => [
            p.name,
            p.online ? "online" : p.allowlisted ? "offline" : "removed",
            String(p.slots),
            String(p.running),
            Object.entries(p.labels).map(([k, v]) => `${k}=${v}`).join(","),
            p.scores === undefined ? "(not reported)" : p.scores.join(",")
          ])
        )
      )
      const s = view.summary
      yield* Console.log(`${s.total} players, ${s.online} online (${s.busy} busy); ${s.slots} slots, ${s.running} running, ${s.free} free`)
    }))).pipe(
    Command.withDescription("List players: online or not, slots, running tasks, labels and scores. Example: orchestra players")
  )

// ---- scores list --------------------------------------------------------------------------

export const scoresList = Command.make("list", { connection: Connection.options, json: jsonOption }, (a) =>
  withClient(a.connection, (client) =>
    Effect.gen(function*() {
      const view = yield* client.scores()
      if (a.json) return yield* Console.log(JSON.stringify(view))
      if (view.scores.length === 0) return yield* Console.log("no scores (no player has reported its catalog yet)")
      yield* Console.log(
        Output.table(
          ["score", "interface", "players", "versions", "description"],
          view.scores.map((s) => [
            s.name,
            s.interface,
            Output.names(s.players, 30),
            s.differs ? `${s.variants.length} (differ)` : String(s.variants.length),
            s.description ?? ""
          ])
        )
      )
      for (const s of view.scores.filter((s) => s.differs)) {
        yield* Console.error(
          `${s.name}: players have different versions: ${s.variants.map((v) => `${v.digest.slice(0, 12)} on ${Output.names(v.players, 40)}`).join("; ")}`
        )
      }
    }))).pipe(
    Command.withDescription(
      "The score catalog merged from the players: each score's interface, the players that have it, and whether their versions differ. Example: orchestra scores list"
    )
  )
