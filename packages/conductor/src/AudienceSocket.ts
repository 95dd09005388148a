/**
 * The audience Unix socket, compatible with the original Orchestra: one
 * JSON request per connection, one JSON line in reply, then the connection
 * is closed. Keys are matched case-insensitively (as Go's JSON decoder did).
 * A client may half-close its side once its request is written (as
 * `@orchestra/client` does): the reply still comes. The reply to `status`
 * of a finished job the engine no longer holds is kept (see
 * `internal/StatusCache.ts`), so polling it reads no store.
 *
 * ```
 * {"op":"queue","score":"s","players":["p1"],"scope":"one","params":{}}  → ["OK",17]
 * {"op":"status","id":17} → ["OK",{"status":"OK","players":{"p1":{"status":"OK","response":{}}}}]
 * ```
 *
 * `scope` `one` is the `one-of` policy and `all` is `all-of`; a `policy`
 * (with `options`) names any other. Refusals are `["Error","Missing Score"]`,
 * `["Error","Missing Scope"]`, `["Error","Missing Players"]`,
 * `["Error","Invalid Player"]` (a player not on the allowlist), or
 * `["Error","<reason naming every issue>"]`; an unknown job id is
 * `["Error",null]`.
 *
 * Extensions the original did not have: `{"op":"players"}` →
 * `["OK",{"<name>":{"online":true,"slots":4,"running":1,"labels":{},"scores":["echo",...]}}]`
 * for every player on the allowlist or connected (scores absent until the
 * player has reported its catalog); `{"op":"stats"}` → `["OK",{"jobs":…,
 * "dispatchTurns":…,"assignmentsSent":…,"ingestTurns":…,"endsRecorded":…,
 * "eventLoop":{"activeMs":…,"idleMs":…}}]`, the engine's counters.
 * `{"op":"plan", …the fields of queue…}` → `["OK",{"score":…,"policy":…,
 * "targets":[…],"params":{…},"plan":{"batches":[[…]],…}}]`: the dry run of
 * `queue` — the same checks and refusals, then what the job's policy would
 * do; nothing is stored.
 *
 * Extensions over the `Audience` operations (the same as the HTTP API's;
 * see docs/audience-socket.md): `get`, `cancel`, `jobs`, `scores`, `wait`
 * (held open until the job finishes or the timeout passes) and `events`
 * (a first line `["OK",{"from":"<id>"}]`, then one event per line until the
 * client closes, or, with `"until":"finished"`, the job ends).
 *
 * @since 0.1.0
 */
import { Events as ApiEvents, Views } from "@orchestra/api"
import type { Errors, Job, Store } from "@orchestra/core"
import { Job as JobModule, JobState } from "@orchestra/core"
import type { Names } from "@orchestra/core"
import type { Scope } from "effect"
import { Data, Effect, Either, FiberSet, Option, ParseResult, Schema, Stream } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import type { AudienceService, Subscription } from "./Audience.js"
import type { EngineService } from "./Engine.js"
import type { IntakeService } from "./Intake.js"
import type { PipelinesService } from "./Pipelines.js"
import type { SchedulesService } from "./Schedules.js"
import { StatusCache } from "./internal/StatusCache.js"

/** The socket could not be set up. */
export class AudienceSocketError extends Data.TaggedError("AudienceSocketError")<{
  readonly path: string
  readonly message: string
}> {}

export interface Options {
  /** Where the socket lives (absolute, or relative to the working directory). */
  readonly path: string
  /** Permission bits of the socket file (default 0o660). */
  readonly mode?: number
  readonly uid?: number
  readonly gid?: number
  /** Largest request accepted, in bytes (default 1 MiB). */
  readonly maxRequestBytes?: number
  /** Time a client has to send its request (default 30 s). */
  readonly requestTimeoutMs?: number
}

export interface Dependencies {
  readonly intake: IntakeService
  readonly engine: EngineService
  readonly store: Store.StoreService
  /**
   * Replies to `status` of finished jobs, so polling them reads no store
   * (the conductor clears it after each purge). Without one, `serve` keeps
   * its own, whose entries expire after a minute.
   */
  readonly statusCache?: StatusCache
  /** The audience operations, for the extension ops (without: those ops are refused). */
  readonly audience?: AudienceService
  /** Pipeline runs (the `pipeline.*` ops); absent: those ops are not available. */
  readonly pipelines?: PipelinesService
  /** The schedules (the `schedule.list` op); absent: that op is not available. */
  readonly schedules?: SchedulesService
}

/** A reply: `["OK", value]` or `["Error", reason]`. */
export type Reply = readonly ["OK", unknown] | readonly ["Error", string | null]

const error = (reason: string | null): Reply => ["Error", reason]

/** The status of a job as the original showed it. */
export const statusOf = (job: Job.JobRecord): {
  readonly status: string
  readonly players: Record<string, { readonly status: string; readonly response: Job.Response }>
} => {
  const players: Record<string, { status: string; response: Job.Response }> = {}
  for (const [name, r] of JobModule.playerResults(job)) players[name] = { status: r.outcome, response: r.response }
  return { status: job.state, players }
}

/** Look a key up case-insensitively (an exact match first). */
const getKey = (o: Record<string, unknown>, key: string): unknown => {
  if (Object.prototype.hasOwnProperty.call(o, key)) return o[key]
  const lower = key.toLowerCase()
  for (const k of Object.keys(o)) if (k.toLowerCase() === lower) return o[k]
  return undefined
}

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** Answer one parsed request. */
export const handle = (deps: Dependencies, request: unknown): Effect.Effect<Reply> => {
  if (!isObject(request)) return Effect.succeed(error("Invalid request: expected a JSON object"))
  const op = getKey(request, "op")
  if (op === undefined || op === null) return Effect.succeed(error("Missing Op"))
  if (op === "queue") return queue(deps, request)
  if (op === "plan") return plan(deps, request)
  if (op === "status") return status(deps, request, deps.statusCache)
  if (op === "players") return Effect.sync((): Reply => ["OK", playersOf(deps.engine)])
  if (op === "stats") return Effect.map(statsOf(deps.engine), (s): Reply => ["OK", s])
  if (op === "schedule.list") {
    if (deps.schedules === undefined) return Effect.succeed(error(`Op ${JSON.stringify(op)} is not available`))
    return Effect.map(deps.schedules.list, (views): Reply => ["OK", views])
  }
  if (typeof op === "string" && op.startsWith("pipeline.")) {
    if (deps.pipelines === undefined) return Effect.succeed(error(`Op ${JSON.stringify(op)} is not available`))
    return pipelineOp(deps.pipelines, op, request)
  }
  if (typeof op === "string" && EXTENSION_OPS.has(op)) {
    if (deps.audience === undefined) return Effect.succeed(error(`Op ${JSON.stringify(op)} is not available`))
    return extension(deps.audience, op, request)
  }
  return Effect.succeed(error(`Unknown Op ${JSON.stringify(op)}`))
}

// ---- pipeline runs -----------------------------------------------------------------------

/**
 * `pipeline.run` `{document, file?, params?, key?}` → `["OK",{"id":N,"existing":false}]`;
 * `pipeline.get` `{id}` → `["OK",run]` (unknown: `["Error",null]`);
 * `pipeline.list` `{state?, pipeline?, before?, limit?}` → `["OK",{"runs":[…],"next"?}]`;
 * `pipeline.cancel` `{id, reason?}` → `["OK",true]`.
 */
const pipelineOp = (pipelines: PipelinesService, op: string, request: Record<string, unknown>): Effect.Effect<Reply> => {
  switch (op) {
    case "pipeline.run": {
      const document = getKey(request, "document")
      if (typeof document !== "string" || document.trim() === "") return Effect.succeed(error("Missing Document"))
      const file = getKey(request, "file")
      const key = getKey(request, "key")
      return replyOf(pipelines.run({
        document,
        file: typeof file === "string" ? file : undefined,
        params: getKey(request, "params") ?? {},
        key: typeof key === "string" && key !== "" ? key : undefined
      }))
    }
    case "pipeline.get": {
      const id = jobId(request)
      if (id === undefined) return Effect.succeed(error(null))
      return Effect.match(pipelines.get(id), {
        onFailure: failure,
        onSuccess: (run): Reply => (Option.isSome(run) ? ["OK", run.value] : error(null))
      })
    }
    case "pipeline.list": {
      const limit = getKey(request, "limit")
      const before = getKey(request, "before")
      const state = getKey(request, "state")
      const pipeline = getKey(request, "pipeline")
      return replyOf(pipelines.list({
        ...(typeof limit === "number" ? { limit } : {}),
        ...(typeof before === "number" ? { before } : {}),
        ...(typeof state === "string" ? { state: state as "PENDING" } : {}),
        ...(typeof pipeline === "string" ? { pipeline } : {})
      }))
    }
    case "pipeline.cancel": {
      const id = jobId(request)
      if (id === undefined) return Effect.succeed(error(null))
      const reason = getKey(request, "reason")
      return Effect.match(pipelines.cancel(id, typeof reason === "string" ? reason : undefined), {
        onFailure: failure,
        onSuccess: (ok): Reply => (ok ? ["OK", true] : error(null))
      })
    }
    default:
      return Effect.succeed(error(`Unknown Op ${JSON.stringify(op)}`))
  }
}

// ---- extension ops over the audience operations ------------------------------------------

const EXTENSION_OPS: ReadonlySet<string> = new Set(["get", "cancel", "jobs", "scores", "wait", "events"])

/** The reply to an audience operation's failure: `null` for an unknown job (as `status`), else its message. */
const failure = (e: Errors.JobNotFound | Errors.InvalidRequest | Errors.StoreError | { readonly _tag: string; readonly message: string }): Reply =>
  e._tag === "JobNotFound" ? error(null) : error(e.message)

const replyOf = <A, E extends { readonly _tag: string; readonly message: string }>(effect: Effect.Effect<A, E>): Effect.Effect<Reply> =>
  Effect.match(effect, { onFailure: failure, onSuccess: (value): Reply => ["OK", value] })

/** A job id in a request: a positive safe integer (or its digits). */
const jobId = (request: Record<string, unknown>): number | undefined => {
  const n = statusId(request)
  return n === undefined || Number.isNaN(n) ? undefined : n
}

const decodeList = Schema.decodeUnknownEither(Views.ListParams, { errors: "all" })
const decodeDuration = Schema.decodeUnknownEither(Views.DurationParam)

/** The `jobs` filters: the HTTP API's query parameters, as JSON (numbers or strings). */
const listQuery = (request: Record<string, unknown>): Either.Either<Views.ListParams, string> => {
  const raw: Record<string, string> = {}
  for (const key of ["state", "score", "player", "since", "until", "before", "limit"] as const) {
    const v = getKey(request, key)
    if (v === undefined || v === null) continue
    if (typeof v !== "string" && typeof v !== "number") return Either.left(`Invalid ${key}: expected a string or a number`)
    raw[key] = String(v)
  }
  return Either.mapLeft(decodeList(raw), (e) =>
    ParseResult.ArrayFormatter.formatErrorSync(e).map((i) => `${i.path.map(String).join(".") || "query"}: ${i.message}`).join("; "))
}

/** `timeout` of `wait`: a duration (`"30s"`) or a number of seconds; default 30 s, at most 5 min. */
const waitTimeout = (request: Record<string, unknown>): Either.Either<number, string> => {
  const v = getKey(request, "timeout")
  if (v === undefined || v === null) return Either.right(Views.DEFAULT_WAIT_MS)
  if (typeof v !== "string" && typeof v !== "number") return Either.left("Invalid timeout: expected a duration such as \"30s\" or a number of seconds")
  return Either.mapLeft(decodeDuration(String(v)), (e) => `Invalid timeout: ${ParseResult.TreeFormatter.formatErrorSync(e)}`)
}

/** `types` of `events`: an array of event types or a comma-separated string. */
const eventTypes = (request: Record<string, unknown>): Either.Either<ReadonlySet<string> | undefined, string> => {
  const v = getKey(request, "types")
  if (v === undefined || v === null) return Either.right(undefined)
  const list = typeof v === "string" ? v.split(",").map((t) => t.trim()).filter((t) => t !== "") : v
  if (!Array.isArray(list) || !list.every((t) => typeof t === "string")) return Either.left("Invalid types: expected event types")
  const known = new Set<string>(ApiEvents.types)
  const unknown = list.filter((t) => !known.has(t))
  if (unknown.length > 0) return Either.left(`Unknown event type ${unknown.map((t) => JSON.stringify(t)).join(", ")}`)
  return Either.right(list.length === 0 ? undefined : new Set(list))
}

const extension = (audience: AudienceService, op: string, request: Record<string, unknown>): Effect.Effect<Reply> => {
  switch (op) {
    case "get": {
      const id = jobId(request)
      return id === undefined ? Effect.succeed(error(null)) : replyOf(audience.get(id))
    }
    case "cancel": {
      const id = jobId(request)
      const reason = getKey(request, "reason")
      return id === undefined ? Effect.succeed(error(null)) : replyOf(audience.cancel(id, typeof reason === "string" ? reason : undefined))
    }
    case "jobs":
      return Either.match(listQuery(request), {
        onLeft: (why) => Effect.succeed(error(why)),
        onRight: (query) => replyOf(audience.list(query))
      })
    case "scores":
      return Effect.sync((): Reply => ["OK", audience.scores()])
    case "wait": {
      const id = jobId(request)
      if (id === undefined) return Effect.succeed(error(null))
      return Either.match(waitTimeout(request), {
        onLeft: (why) => Effect.succeed(error(why)),
        onRight: (ms) => replyOf(audience.wait(id, ms))
      })
    }
    default:
      return Effect.succeed(error(`Op ${JSON.stringify(op)} streams: send it on a connection of its own`))
  }
}

/** What an `events` request subscribes to, or the refusal. */
export const subscribe = (audience: AudienceService, request: Record<string, unknown>): Effect.Effect<Subscription, Reply> =>
  Effect.gen(function*() {
    const types = eventTypes(request)
    if (Either.isLeft(types)) return yield* Effect.fail(error(types.left))
    const rawFrom = getKey(request, "from")
    if (rawFrom !== undefined && rawFrom !== null && typeof rawFrom !== "string") return yield* Effect.fail(error("Invalid from: expected an event id"))
    const from = typeof rawFrom === "string" ? rawFrom : undefined
    const until = getKey(request, "until")
    if (until !== undefined && until !== null && until !== "finished") return yield* Effect.fail(error(`Invalid until ${JSON.stringify(until)}: expected "finished"`))
    const rawId = getKey(request, "id")
    if (rawId === undefined || rawId === null) {
      if (until === "finished") return yield* Effect.fail(error("Missing Id: until finished needs a job id"))
      return audience.allEvents({ from, types: types.right })
    }
    const id = jobId(request)
    if (id === undefined) return yield* Effect.fail(error(null))
    return yield* Effect.mapError(
      audience.jobEvents(id, { from, types: types.right, untilFinished: until === "finished" }),
      failure
    )
  })

/**
 * The engine's counters and the event loop's busy and idle time since the
 * process started, as the `stats` op shows them (for monitoring and the
 * benchmarks: the ratio of assignments to dispatch turns is the batch size).
 */
export const statsOf = (engine: EngineService): Effect.Effect<Record<string, unknown>> =>
  Effect.map(engine.stats, (s) => {
    const elu = performance.eventLoopUtilization()
    return { ...s, eventLoop: { activeMs: Math.round(elu.active), idleMs: Math.round(elu.idle) } }
  })

/** Every known player, as the `players` op shows them. */
export const playersOf = (engine: EngineService): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  for (const p of engine.players()) {
    out[p.name] = {
      online: p.online,
      allowlisted: p.allowlisted,
      slots: p.slots,
      running: p.running,
      labels: p.labels,
      ...(p.catalog === undefined ? {} : { scores: [...p.catalog.keys()].sort() })
    }
  }
  return out
}

/** The job a `queue` request asks for, or the refusal. */
const queueJob = (deps: Dependencies, request: Record<string, unknown>): Record<string, unknown> | Reply => {
  const score = getKey(request, "score")
  if (typeof score !== "string" || score.length === 0) return error("Missing Score")
  const scope = getKey(request, "scope")
  const policy = getKey(request, "policy")
  const options = getKey(request, "options")
  let policyName: unknown
  if (policy !== undefined && policy !== null) policyName = policy
  else if (scope === undefined || scope === null || scope === "") return error("Missing Scope")
  else if (scope === "one") policyName = "one-of"
  else if (scope === "all") policyName = "all-of"
  else return error(`Invalid Scope ${JSON.stringify(scope)}: expected "one" or "all"`)
  const players = getKey(request, "players")
  const selector = getKey(request, "selector")
  const hasSelector = selector !== undefined && selector !== null
  if (!hasSelector && (!Array.isArray(players) || players.length === 0)) return error("Missing Players")
  if (players !== undefined && players !== null && !Array.isArray(players)) return error("Missing Players")
  for (const p of (players as ReadonlyArray<unknown> | undefined | null) ?? []) {
    if (typeof p !== "string" || !deps.engine.isAllowed(p)) return error("Invalid Player")
  }
  const job: Record<string, unknown> = {
    score,
    players: players ?? [],
    policy: options === undefined || options === null ? { name: policyName } : { name: policyName, options }
  }
  const params = getKey(request, "params")
  if (params !== undefined && params !== null) job["params"] = params
  if (hasSelector) job["selector"] = selector
  for (const key of ["deadline", "retry", "idempotencyKey", "labels"] as const) {
    const v = getKey(request, key)
    if (v !== undefined && v !== null) job[key] = v
  }
  return job
}

const queue = (deps: Dependencies, request: Record<string, unknown>): Effect.Effect<Reply> => {
  const job = queueJob(deps, request)
  if (Array.isArray(job)) return Effect.succeed(job as Reply)
  return Effect.matchEffect(deps.intake.submitUnknown(job), {
    onSuccess: (accepted) => Effect.succeed<Reply>(["OK", accepted.id]),
    onFailure: (e) =>
      e._tag === "InvalidRequest"
        ? Effect.succeed(error(e.message))
        : Effect.logError("audience queue: store error").pipe(
          Effect.annotateLogs({ error: e.message }),
          Effect.as(error(`store error: ${e.message}`))
        )
  })
}

/** The dry run of `queue`: the same request and refusals; the plan instead of an id, and nothing stored. */
const plan = (deps: Dependencies, request: Record<string, unknown>): Effect.Effect<Reply> => {
  const job = queueJob(deps, request)
  if (Array.isArray(job)) return Effect.succeed(job as Reply)
  return Effect.match(deps.intake.planUnknown(job), {
    onSuccess: (planned): Reply => ["OK", planned],
    onFailure: (e): Reply => error(e.message)
  })
}

/** The id a `status` request names: a positive safe integer, `undefined` when absent, `NaN` when it is not an id. */
const statusId = (request: Record<string, unknown>): number | undefined => {
  const raw = getKey(request, "id")
  if (raw === undefined || raw === null) return undefined
  const n = typeof raw === "number" ? raw : typeof raw === "string" && /^[0-9]+$/.test(raw) ? Number(raw) : NaN
  return Number.isSafeInteger(n) && n >= 1 ? n : NaN
}

/** The reply to `status` of job `n`; a finished job's reply goes into `cache` when it can no longer change. */
const statusReply = (deps: Dependencies, cache: StatusCache | undefined, n: number): Effect.Effect<Reply> =>
  Effect.gen(function*() {
    const id = n as Names.JobId
    // Checked before the read: a job the engine did not hold then no longer changes once finished.
    const settled = cache !== undefined && !deps.engine.holds(id)
    const generation = cache?.generation ?? 0
    const found = yield* Effect.either(deps.store.getJob(id))
    if (found._tag === "Left") {
      yield* Effect.logError("audience status: store error").pipe(Effect.annotateLogs({ error: found.left.message }))
      return error(`store error: ${found.left.message}`)
    }
    if (found.right._tag === "None") return error(null)
    const job = found.right.value
    const reply: Reply = ["OK", statusOf(job)]
    if (settled && JobState.isFinished(job.state)) cache.set(n, line(reply), Date.now(), generation)
    return reply
  })

const status = (deps: Dependencies, request: Record<string, unknown>, cache?: StatusCache): Effect.Effect<Reply> => {
  const n = statusId(request)
  if (n === undefined) return Effect.succeed(error("Missing Id"))
  if (Number.isNaN(n)) return Effect.succeed(error(null))
  return statusReply(deps, cache, n)
}

const line = (r: Reply): string => `${JSON.stringify(r)}\n`

/**
 * Find the end of the first complete JSON value in `text`: the index just
 * after it, or -1 if it is not complete yet. Scalars end at whitespace.
 */
export const endOfValue = (text: string): number => {
  let i = 0
  while (i < text.length && /\s/.test(text[i]!)) i++
  if (i === text.length) return -1
  const first = text[i]!
  if (first !== "{" && first !== "[") {
    if (first === "\"") {
      for (let j = i + 1; j < text.length; j++) {
        if (text[j] === "\\") j++
        else if (text[j] === "\"") return j + 1
      }
      return -1
    }
    for (let j = i; j < text.length; j++) if (/\s/.test(text[j]!)) return j
    return -1
  }
  let depth = 0
  let inString = false
  for (let j = i; j < text.length; j++) {
    const c = text[j]!
    if (inString) {
      if (c === "\\") j++
      else if (c === "\"") inString = false
      continue
    }
    if (c === "\"") inString = true
    else if (c === "{" || c === "[") depth++
    else if (c === "}" || c === "]") {
      depth--
      if (depth === 0) return j + 1
    }
  }
  return -1
}

const parseRequest = (text: string): { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly reason: string } => {
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch (e) {
    return { ok: false, reason: `Invalid JSON: ${e instanceof Error ? e.message : String(e)}` }
  }
}

const prepare = (file: string): Effect.Effect<void, AudienceSocketError> =>
  Effect.gen(function*() {
    let stat: fs.Stats | undefined
    try {
      stat = fs.lstatSync(file)
    } catch {
      stat = undefined
    }
    if (stat === undefined) {
      yield* Effect.try({
        try: () => fs.mkdirSync(path.dirname(file), { recursive: true }),
        catch: (e) => new AudienceSocketError({ path: file, message: `cannot create the directory: ${String(e)}` })
      })
      return
    }
    if (!stat.isSocket()) {
      return yield* new AudienceSocketError({ path: file, message: "a file that is not a socket exists at the audience socket path" })
    }
    const live = yield* Effect.async<boolean>((resume) => {
      const probe = net.connect(file)
      probe.once("connect", () => {
        probe.destroy()
        resume(Effect.succeed(true))
      })
      probe.once("error", () => resume(Effect.succeed(false)))
    })
    if (live) {
      return yield* new AudienceSocketError({ path: file, message: "another process is listening on the audience socket" })
    }
    yield* Effect.try({
      try: () => fs.unlinkSync(file),
      catch: (e) => new AudienceSocketError({ path: file, message: `cannot remove the stale socket: ${String(e)}` })
    })
  })

/** Write a line, waiting for the socket to drain when its buffer is full. */
const writeLine = (socket: net.Socket, text: string): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    if (socket.destroyed || !socket.writable) return resume(Effect.interrupt)
    if (socket.write(text)) return resume(Effect.void)
    const onDrain = () => {
      socket.off("close", onClose)
      resume(Effect.void)
    }
    const onClose = () => {
      socket.off("drain", onDrain)
      resume(Effect.interrupt)
    }
    socket.once("drain", onDrain)
    socket.once("close", onClose)
    return Effect.sync(() => {
      socket.off("drain", onDrain)
      socket.off("close", onClose)
    })
  })

/** The `events` op: `["OK",{"from":…}]`, then one event per line. */
const streamEvents = (audience: AudienceService, request: Record<string, unknown>, socket: net.Socket): Effect.Effect<void> =>
  Effect.matchEffect(subscribe(audience, request), {
    onFailure: (reply) => writeLine(socket, line(reply)),
    onSuccess: (sub) =>
      Effect.zipRight(
        writeLine(socket, line(["OK", { from: sub.from }])),
        Stream.runForEachChunk(sub.stream, (chunk) => {
          let text = ""
          for (const e of chunk) text += `${JSON.stringify(e)}\n`
          return text === "" ? Effect.void : writeLine(socket, text)
        })
      )
  })

/** Listen on the socket until the scope closes; the socket file is removed then. */
export const serve = (options: Options, deps: Dependencies): Effect.Effect<{ readonly path: string }, AudienceSocketError, Scope.Scope> =>
  Effect.gen(function*() {
    const file = path.resolve(options.path)
    const maxBytes = options.maxRequestBytes ?? 1024 * 1024
    const timeoutMs = options.requestTimeoutMs ?? 30_000
    yield* prepare(file)
    const fibers = yield* FiberSet.make()
    const run = yield* FiberSet.runtime(fibers)<never>()
    const cache = deps.statusCache ?? new StatusCache()
    const served: Dependencies = { ...deps, statusCache: cache }

    const open = new Set<net.Socket>()
    const onConnection = (socket: net.Socket) => {
      open.add(socket)
      socket.once("close", () => open.delete(socket))
      let buffer = ""
      let answered = false
      socket.setEncoding("utf8")
      socket.setTimeout(timeoutMs)
      const reply = (r: Reply) => {
        if (answered) return
        answered = true
        socket.end(line(r))
      }
      const answer = (text: string) => {
        const parsed = parseRequest(text)
        if (!parsed.ok) {
          reply(error(parsed.reason))
          return
        }
        answered = true
        // The most frequent request, a status poll of a finished job, is answered on the spot.
        const request = parsed.value
        if (isObject(request) && getKey(request, "op") === "status") {
          const n = statusId(request)
          const hit = n === undefined || Number.isNaN(n) ? undefined : cache.get(n, Date.now())
          if (hit !== undefined) {
            socket.end(hit)
            return
          }
        }
        const op = isObject(request) ? getKey(request, "op") : undefined
        const audience = served.audience
        if (op === "events" && audience !== undefined && isObject(request)) {
          // held open: no request timeout; stopped when the client goes away
          socket.setTimeout(0)
          const fiber = run(
            streamEvents(audience, request, socket).pipe(
              Effect.catchAllCause((cause) => Effect.logError("audience events failed", cause)),
              Effect.ensuring(Effect.sync(() => socket.end()))
            )
          )
          socket.once("close", () => fiber.unsafeInterruptAsFork(fiber.id()))
          return
        }
        if (op === "wait") {
          socket.setTimeout(0)
        }
        const fiber = run(
          handle(served, request).pipe(
            Effect.catchAllCause((cause) => Effect.logError("audience request failed", cause).pipe(Effect.as(error("Internal error")))),
            Effect.flatMap((r) => Effect.sync(() => socket.end(line(r))))
          )
        )
        // a waiting client that went away needs no answer (other ops run to the end: a job is never half-submitted)
        if (op === "wait") socket.once("close", () => fiber.unsafeInterruptAsFork(fiber.id()))
      }
      socket.on("data", (chunk: string) => {
        if (answered) return
        buffer += chunk
        if (buffer.length > maxBytes) {
          reply(error(`Request too large (more than ${maxBytes} bytes)`))
          return
        }
        const end = endOfValue(buffer)
        if (end >= 0) answer(buffer.slice(0, end))
      })
      socket.on("end", () => {
        if (answered) return
        if (buffer.trim() === "") {
          reply(error("Empty request"))
          return
        }
        answer(buffer)
      })
      socket.on("timeout", () => {
        if (!answered) reply(error("Request timed out"))
        else socket.destroy()
      })
      socket.on("error", () => socket.destroy())
    }

    const server = yield* Effect.acquireRelease(
      Effect.async<net.Server, AudienceSocketError>((resume) => {
        // Half-open: a client may end its side once the request is written; the reply still goes out.
        const srv = net.createServer({ allowHalfOpen: true }, onConnection)
        srv.once("error", (e) => resume(Effect.fail(new AudienceSocketError({ path: file, message: e.message }))))
        srv.listen(file, () => resume(Effect.succeed(srv)))
      }),
      (srv) =>
        Effect.async<void>((resume) => {
          srv.close(() => resume(Effect.void))
          for (const s of open) s.destroy()
          try {
            if (fs.lstatSync(file).isSocket()) fs.unlinkSync(file)
          } catch {
            // already gone
          }
        })
    )
    server.on("error", () => undefined)
    yield* Effect.try({
      try: () => {
        fs.chmodSync(file, options.mode ?? 0o660)
        if (options.uid !== undefined || options.gid !== undefined) {
          fs.chownSync(file, options.uid ?? -1, options.gid ?? -1)
        }
      },
      catch: (e) => new AudienceSocketError({ path: file, message: `cannot set the socket's mode or owner: ${String(e)}` })
    })
    yield* Effect.logInfo("audience socket listening").pipe(Effect.annotateLogs({ path: file }))
    return { path: file }
  })
