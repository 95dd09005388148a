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
 *
 * @since 0.1.0
 */
import type { Job, Store } from "@orchestra/core"
import { Job as JobModule, JobState } from "@orchestra/core"
import type { Names } from "@orchestra/core"
import type { Scope } from "effect"
import { Data, Effect, FiberSet } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import type { EngineService } from "./Engine.js"
import type { IntakeService } from "./Intake.js"
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
  if (op === "status") return status(deps, request, deps.statusCache)
  if (op === "players") return Effect.sync((): Reply => ["OK", playersOf(deps.engine)])
  if (op === "stats") return Effect.map(statsOf(deps.engine), (s): Reply => ["OK", s])
  return Effect.succeed(error(`Unknown Op ${JSON.stringify(op)}`))
}

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
        run(
          handle(served, request).pipe(
            Effect.catchAllCause((cause) => Effect.logError("audience request failed", cause).pipe(Effect.as(error("Internal error")))),
            Effect.flatMap((r) => Effect.sync(() => socket.end(line(r))))
          )
        )
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
