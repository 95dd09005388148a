/**
 * The audience's operations, independent of how they arrive: the HTTP API
 * and the Unix socket's extension ops both call these. Submit, get, list,
 * cancel, wait (returns when the job finishes — woken by its `job.finished`
 * event, never by polling — or at the timeout), events (of one job or of
 * everything, resumable by id), players, the merged score catalog, an
 * attempt's log, health.
 *
 * Every operation takes the caller's `Principal` (the token it
 * authenticated with; none over the Unix socket): a token limited to some
 * scores or players is refused (`Forbidden`, naming what is outside its
 * limits) any job that uses others, and sees only what it may use in lists,
 * events, players and scores.
 *
 * @since 0.1.0
 */
import type { Security, Views } from "@orchestra/api"
import { ApiError, Events as ApiEvents } from "@orchestra/api"
import type { Catalog, Job, Store } from "@orchestra/core"
import type { Names } from "@orchestra/core"
import { Errors, Job as JobModule, JobState, Store as StoreModule } from "@orchestra/core"
import { Chunk, Deferred, Effect, Either, Exit, FiberId, Option, ParseResult, Schema, Stream } from "effect"
import type { EngineService } from "./Engine.js"
import type { Event, EventLog, Position } from "./Events.js"
import type { IntakeService } from "./Intake.js"
import * as Intake from "./Intake.js"

/** The token a request came with; `undefined`: no limits (the Unix socket). */
export type Principal = Security.PrincipalService | undefined

export interface EventsOptions {
  /** Resume after this event id. */
  readonly from?: string | undefined
  /** Only these types (`reset` always passes). */
  readonly types?: ReadonlySet<string> | undefined
}

export interface JobEventsOptions extends EventsOptions {
  /** End the stream once the job has finished (and its last attempts have ended, or 5 s later). */
  readonly untilFinished?: boolean
}

/** A stream of events and the position it starts from. */
export interface Subscription {
  /** The id of the position the stream starts after. */
  readonly from: string
  readonly stream: Stream.Stream<Event>
}

export interface AudienceService {
  readonly submit: (
    body: unknown,
    principal?: Principal
  ) => Effect.Effect<Views.Submitted, Errors.InvalidRequest | ApiError.Forbidden | Errors.StoreError>
  /** The dry run of a submission: its checks (and the token's limits), then the policy's batches; nothing stored. */
  readonly plan: (body: unknown, principal?: Principal) => Effect.Effect<Views.JobPlan, Errors.InvalidRequest | ApiError.Forbidden>
  readonly get: (id: number, principal?: Principal) => Effect.Effect<Views.JobDetail, Errors.JobNotFound | ApiError.Forbidden | Errors.StoreError>
  readonly list: (query: Views.ListParams, principal?: Principal) => Effect.Effect<Views.JobPage, Errors.InvalidRequest | Errors.StoreError>
  /** Cancel a job; returns it once its `CANCELLED` state is recorded (running tasks are told to stop; their outcomes follow). */
  readonly cancel: (
    id: number,
    reason?: string,
    principal?: Principal
  ) => Effect.Effect<Views.JobDetail, Errors.JobNotFound | ApiError.JobFinished | ApiError.Forbidden | Errors.StoreError | Errors.InvalidRequest>
  /** The job as soon as it has finished, or as it is after `timeoutMs`. */
  readonly wait: (
    id: number,
    timeoutMs: number,
    principal?: Principal
  ) => Effect.Effect<Views.JobDetail, Errors.JobNotFound | ApiError.Forbidden | Errors.StoreError>
  /** Events of one job: without `from`, every one still kept from its `job.submitted` on. */
  readonly jobEvents: (
    id: number,
    options: JobEventsOptions,
    principal?: Principal
  ) => Effect.Effect<Subscription, Errors.JobNotFound | ApiError.Forbidden | Errors.StoreError>
  /** Every event: without `from`, those published from now on. */
  readonly allEvents: (options: EventsOptions, principal?: Principal) => Subscription
  readonly players: (principal?: Principal) => Views.PlayersView
  readonly scores: (principal?: Principal) => Views.ScoresView
  readonly log: (
    id: number,
    key: string,
    attempt: number,
    principal?: Principal
  ) => Effect.Effect<string, Errors.JobNotFound | ApiError.AttemptNotFound | ApiError.Forbidden | Errors.StoreError>
  readonly health: Effect.Effect<Views.Health>
  readonly events: EventLog
  /** Event streams being read right now. */
  readonly openStreams: () => number
}

export interface Options {
  /** The conductor's name (health). */
  readonly name: string
  readonly store: Store.StoreService
  readonly engine: EngineService
  readonly intake: IntakeService
  readonly events: EventLog
  /** How long `cancel` waits for the job's state to be recorded (default 10 s). */
  readonly cancelWaitMs?: number
  /** How long a job's event stream stays open after `job.finished` for attempts still running (default 5 s). */
  readonly finishGraceMs?: number
}

// ---- limits ---------------------------------------------------------------------

const describeList = (xs: ReadonlyArray<string>): string => xs.map((x) => JSON.stringify(x)).join(", ")

const outside = (allowed: ReadonlyArray<string> | undefined, used: Iterable<string>): ReadonlyArray<string> => {
  if (allowed === undefined) return []
  const ok = new Set(allowed)
  const out = new Set<string>()
  for (const u of used) if (!ok.has(u)) out.add(u)
  return [...out]
}

/** `Forbidden` when the principal may not use this score or these players. */
export const checkLimits = (
  principal: Principal,
  score: string,
  players: Iterable<string>
): Either.Either<void, ApiError.Forbidden> => {
  if (principal === undefined) return Either.void
  const scores = outside(principal.scores, [score])
  const ps = outside(principal.players, players)
  if (scores.length === 0 && ps.length === 0) return Either.void
  const parts: Array<string> = []
  if (scores.length > 0) parts.push(`score ${describeList(scores)} (it may use: ${describeList(principal.scores ?? [])})`)
  if (ps.length > 0) parts.push(`player${ps.length === 1 ? "" : "s"} ${describeList(ps)} (it may use: ${describeList(principal.players ?? [])})`)
  return Either.left(
    new ApiError.Forbidden({
      message: `token ${JSON.stringify(principal.name)} may not use ${parts.join(" nor ")}`,
      token: principal.name,
      scores: [...scores],
      players: [...ps]
    })
  )
}

const mayUseScore = (p: Principal, score: string) => p === undefined || p.scores === undefined || p.scores.includes(score)
const mayUsePlayer = (p: Principal, player: string) => p === undefined || p.players === undefined || p.players.includes(player)

/** Whether the principal may see an event. */
export const visible = (p: Principal, e: Event): boolean => {
  if (p === undefined || (p.scores === undefined && p.players === undefined)) return true
  switch (e.type) {
    case "job.submitted":
    case "job.finished":
      return mayUseScore(p, e.score) && e.targets.every((t) => mayUsePlayer(p, t))
    case "task.dispatched":
    case "task.started":
    case "task.finished":
      return mayUseScore(p, e.score) && mayUsePlayer(p, e.player)
    case "player.connected":
    case "player.disconnected":
      return mayUsePlayer(p, e.player)
    case "pipeline.started":
    case "pipeline.progressed":
    case "pipeline.finished":
      // a run's jobs are submitted on its behalf: pipelines need a token without limits
      return false
    case "reset":
      return true
  }
}

// ---- views ------------------------------------------------------------------------

const requestView = (r: Job.JobRequest): Views.SubmitRequest => ({
  score: r.score,
  players: r.players,
  ...(r.selector === undefined ? {} : { selector: r.selector }),
  policy: { name: r.policy.name, options: r.policy.options },
  params: r.params,
  ...(r.deadline === undefined ? {} : { deadline: r.deadline }),
  ...(r.idempotencyKey === undefined ? {} : { idempotencyKey: r.idempotencyKey }),
  ...(r.retry === undefined ? {} : { retry: r.retry }),
  labels: r.labels
})

/** A stored job as the API shows it. */
export const detailOf = (job: Job.JobRecord): Views.JobDetail => {
  const players: Record<string, { outcome: Job.AttemptRecord["outcome"] & {}; response: Job.Response; key: string; attempt: number }> = {}
  for (const [name, r] of JobModule.playerResults(job)) players[name] = { outcome: r.outcome, response: r.response, key: r.key, attempt: r.attempt }
  return {
    id: job.id,
    score: job.request.score,
    policy: job.request.policy.name,
    state: job.state,
    ...(job.reason === undefined ? {} : { reason: job.reason }),
    createdAt: job.createdAt,
    ...(job.finishedAt === undefined ? {} : { finishedAt: job.finishedAt }),
    targets: [...new Set(job.targets)],
    players,
    attempts: job.attempts.map((a) => ({
      key: a.key,
      attempt: a.attempt,
      player: a.player,
      dispatchedAt: a.dispatchedAt,
      ...(a.startedAt === undefined ? {} : { startedAt: a.startedAt }),
      ...(a.finishedAt === undefined ? {} : { finishedAt: a.finishedAt }),
      ...(a.outcome === undefined ? {} : { outcome: a.outcome }),
      ...(a.response === undefined ? {} : { response: a.response }),
      logBytes: a.log === undefined ? 0 : Buffer.byteLength(a.log, "utf8")
    })),
    request: requestView(job.request)
  }
}

const summaryOf = (s: Store.JobSummary): Views.JobSummary => ({
  id: s.id,
  score: s.score,
  policy: s.policy,
  state: s.state,
  targets: [...new Set(s.targets)],
  createdAt: s.createdAt,
  ...(s.finishedAt === undefined ? {} : { finishedAt: s.finishedAt })
})

const decodeQuery = Schema.decodeUnknownEither(StoreModule.JobQuery, { errors: "all", onExcessProperty: "error" })

/** A job query as the store takes it, or every issue. */
export const checkQuery = (query: Views.ListParams): Either.Either<StoreModule.JobQuery, Errors.InvalidRequest> =>
  Either.match(decodeQuery(query), {
    onLeft: (e) =>
      Either.left(
        Intake.invalid(ParseResult.ArrayFormatter.formatErrorSync(e).map((i) => ({
          path: i.path.length === 0 ? "query" : i.path.map(String).join("."),
          message: i._tag === "Unexpected" ? "unknown parameter" : i.message
        })))
      ),
    onRight: () => Either.right(query as StoreModule.JobQuery)
  })

// ---- the service --------------------------------------------------------------------

/** Make the audience operations over a conductor's parts. */
export const make = (options: Options): AudienceService => {
  const { store, engine, intake, events: log } = options
  const cancelWaitMs = options.cancelWaitMs ?? 10_000
  const graceMs = options.finishGraceMs ?? 5_000

  // Wakers of `wait`ers, by job; woken by the job's `job.finished`.
  const finishWaiters = new Map<number, Set<() => void>>()
  // When each player's last session ended.
  const lastSeen = new Map<string, number>()
  log.observe((e) => {
    if (e.type === "job.finished") {
      const ws = finishWaiters.get(e.job)
      if (ws !== undefined) {
        finishWaiters.delete(e.job)
        for (const w of ws) w()
      }
    } else if (e.type === "player.disconnected") {
      lastSeen.set(e.player, e.at)
    }
  })

  const record = (id: number): Effect.Effect<Job.JobRecord, Errors.JobNotFound | Errors.StoreError> =>
    Number.isSafeInteger(id) && id >= 1
      ? Effect.flatMap(store.getJob(id as Names.JobId), Option.match({
        onNone: () => Effect.fail(new Errors.JobNotFound({ id })),
        onSome: Effect.succeed
      }))
      : Effect.fail(new Errors.JobNotFound({ id }))

  const allowed = (job: Job.JobRecord, principal: Principal): Either.Either<void, ApiError.Forbidden> =>
    checkLimits(principal, job.request.score, job.targets)

  const readable = (id: number, principal: Principal) =>
    Effect.flatMap(record(id), (job) => Effect.as(allowed(job, principal), job))

  /**
   * Run `body` with a waker registered for the job's `job.finished` (before
   * `body` reads anything, so no finish is missed); `finished` resolves when
   * it comes.
   */
  const withFinishWaiter = <A, E>(id: number, body: (finished: Effect.Effect<void>) => Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.acquireUseRelease(
      Effect.sync(() => {
        const deferred = Deferred.unsafeMake<void>(FiberId.none)
        const wake = () => {
          Deferred.unsafeDone(deferred, Exit.void)
        }
        let set = finishWaiters.get(id)
        if (set === undefined) {
          set = new Set()
          finishWaiters.set(id, set)
        }
        set.add(wake)
        return { deferred, wake }
      }),
      ({ deferred }) => body(Deferred.await(deferred)),
      ({ wake }) =>
        Effect.sync(() => {
          const set = finishWaiters.get(id)
          if (set === undefined) return
          set.delete(wake)
          if (set.size === 0) finishWaiters.delete(id)
        })
    )

  const waitFinished = (id: number, timeoutMs: number, principal: Principal) =>
    withFinishWaiter(id, (finished) =>
      Effect.gen(function*() {
        const job = yield* readable(id, principal)
        if (JobState.isFinished(job.state)) return detailOf(job)
        yield* finished.pipe(Effect.timeout(Math.max(0, timeoutMs)), Effect.ignore)
        return detailOf(yield* record(id))
      }))

  const submit: AudienceService["submit"] = (body, principal) =>
    Effect.gen(function*() {
      const request = yield* Intake.decode(body)
      if (principal !== undefined && (principal.scores !== undefined || principal.players !== undefined)) {
        const resolved = yield* intake.check(request, Date.now())
        yield* checkLimits(principal, request.score, resolved.targets)
      }
      const accepted = yield* intake.submit(request)
      return { id: accepted.id, existing: accepted.existing }
    })

  const plan: AudienceService["plan"] = (body, principal) =>
    Effect.gen(function*() {
      const request = yield* Intake.decode(body)
      const planned = yield* intake.plan(request)
      yield* checkLimits(principal, request.score, planned.targets)
      return planned as Views.JobPlan
    })

  const cancel: AudienceService["cancel"] = (id, reason, principal) =>
    withFinishWaiter(id, (finished) =>
      Effect.gen(function*() {
        const job = yield* readable(id, principal)
        if (JobState.isFinished(job.state)) return yield* new ApiError.JobFinished({ id, state: job.state })
        const why = reason === undefined || reason === ""
          ? `cancelled${principal === undefined ? "" : ` by ${principal.name}`}`
          : reason
        const cancelled = yield* engine.cancel(job.id, why)
        if (!cancelled) {
          const now = yield* record(id)
          if (JobState.isFinished(now.state)) return yield* new ApiError.JobFinished({ id, state: now.state })
          return yield* Intake.invalid([{ path: "id", message: `job ${id} is not run by this conductor` }])
        }
        yield* finished.pipe(Effect.timeout(cancelWaitMs), Effect.ignore)
        return detailOf(yield* record(id))
      }))

  let streams = 0
  /** Count the stream as open while it is read. */
  const counted = (stream: Stream.Stream<Event>): Stream.Stream<Event> =>
    Stream.unwrapScoped(
      Effect.as(
        Effect.acquireRelease(Effect.sync(() => streams++), () => Effect.sync(() => streams--)),
        stream
      )
    )

  const typeFilter = (types: ReadonlySet<string> | undefined) => (e: Event): boolean =>
    types === undefined || types.size === 0 || e.type === "reset" || types.has(e.type)

  const allEvents: AudienceService["allEvents"] = (opts, principal) => {
    const position = log.resume(opts.from)
    const keep = typeFilter(opts.types)
    return {
      from: log.idOf(position.cursor),
      stream: counted(log.stream(position).pipe(Stream.filter((e) => keep(e) && visible(principal, e))))
    }
  }

  const jobEvents: AudienceService["jobEvents"] = (id, opts, principal) =>
    Effect.gen(function*() {
      const job = yield* readable(id, principal)
      const mine = (e: Event) => ApiEvents.jobOf(e) === id
      let position: Position
      if (opts.from !== undefined && opts.from.trim() !== "") {
        position = log.resume(opts.from)
      } else {
        const first = log.find(mine)
        if (first !== undefined) {
          position = {
            cursor: first.seq - 1,
            reset: first.event.type === "job.submitted"
              ? undefined
              : log.reset(first.seq - 1, `the first events of job ${id} are no longer kept: read the job for what happened before`)
          }
        } else {
          position = {
            cursor: log.last,
            reset: log.reset(
              log.last,
              JobState.isFinished(job.state)
                ? `the events of job ${id} are no longer kept; it finished ${job.state}: read the job`
                : `the earlier events of job ${id} are no longer kept: read the job for what happened before`
            )
          }
        }
      }
      const keep = typeFilter(opts.types)
      const untilFinished = opts.untilFinished === true
      let cursor = position.cursor
      let pendingReset = position.reset
      let finishedAt = untilFinished && JobState.isFinished(job.state) ? Date.now() : undefined
      const done = () => finishedAt !== undefined && (!engine.holds(job.id) || Date.now() - finishedAt >= graceMs)
      const pull: Effect.Effect<Chunk.Chunk<Event>, Option.Option<never>> = Effect.suspend(() => {
        if (pendingReset !== undefined) {
          const r = pendingReset
          pendingReset = undefined
          return Effect.succeed(Chunk.of<Event>(r))
        }
        const got = log.read(cursor)
        if (got === "lagged") {
          cursor = log.oldest - 1
          return Effect.succeed(Chunk.of<Event>(log.reset(cursor, `this reader fell more than ${log.capacity} events behind: events were missed`)))
        }
        if (got.length > 0) {
          cursor += got.length
          const out: Array<Event> = []
          for (const e of got) {
            if (!mine(e)) continue
            if (untilFinished && e.type === "job.finished") finishedAt ??= Date.now()
            if (keep(e)) out.push(e)
          }
          return Effect.succeed(Chunk.unsafeFromArray(out))
        }
        if (done()) return Effect.fail(Option.none())
        const next = log.wait(cursor)
        const waitNext = finishedAt === undefined
          ? next
          : Effect.raceFirst(next, Effect.sleep(Math.max(1, finishedAt + graceMs - Date.now())))
        return Effect.zipRight(waitNext, pull)
      })
      return { from: log.idOf(position.cursor), stream: counted(Stream.repeatEffectChunkOption(pull)) }
    })

  const players: AudienceService["players"] = (principal) => {
    const now = Date.now()
    const list: Array<Views.PlayerView> = []
    for (const p of engine.players()) {
      if (!mayUsePlayer(principal, p.name)) continue
      const seen = p.online ? now : lastSeen.get(p.name)
      list.push({
        name: p.name,
        online: p.online,
        allowlisted: p.allowlisted,
        slots: p.slots,
        running: p.running,
        idle: p.online ? Math.max(0, p.slots - p.running) : 0,
        labels: p.labels,
        ...(p.address === undefined ? {} : { address: p.address }),
        ...(seen === undefined ? {} : { lastSeen: seen }),
        ...(p.catalog === undefined ? {} : { scores: [...p.catalog.keys()].filter((s) => mayUseScore(principal, s)).sort() })
      })
    }
    list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    const online = list.filter((p) => p.online)
    const slots = online.reduce((n, p) => n + p.slots, 0)
    const running = online.reduce((n, p) => n + p.running, 0)
    return {
      players: list,
      summary: {
        total: list.length,
        online: online.length,
        busy: online.filter((p) => p.running > 0).length,
        idle: online.filter((p) => p.running === 0).length,
        slots,
        running,
        free: online.reduce((n, p) => n + Math.max(0, p.slots - p.running), 0)
      }
    }
  }

  const scores: AudienceService["scores"] = (principal) => {
    interface Variant {
      readonly info: Catalog.ScoreInfo
      readonly players: Array<string>
    }
    const byName = new Map<string, Map<string, Variant>>()
    for (const p of engine.players()) {
      if (p.catalog === undefined || !mayUsePlayer(principal, p.name)) continue
      for (const info of p.catalog.values()) {
        if (!mayUseScore(principal, info.name)) continue
        let variants = byName.get(info.name)
        if (variants === undefined) {
          variants = new Map()
          byName.set(info.name, variants)
        }
        const key = `${info.digest}\u0000${info.interface}`
        let v = variants.get(key)
        if (v === undefined) {
          v = { info, players: [] }
          variants.set(key, v)
        }
        v.players.push(p.name)
      }
    }
    const out: Array<Views.ScoreView> = []
    for (const [name, variants] of byName) {
      const vs = [...variants.values()].map((v) => ({ ...v, players: v.players.sort() }))
      vs.sort((a, b) => b.players.length - a.players.length || (a.info.digest < b.info.digest ? -1 : 1))
      const main = vs[0]!.info
      out.push({
        name,
        interface: main.interface,
        ...(main.description === undefined ? {} : { description: main.description }),
        ...(main.parameters === undefined ? {} : { parameters: main.parameters }),
        ...(main.outputs === undefined ? {} : { outputs: main.outputs }),
        idempotent: main.idempotent,
        players: vs.flatMap((v) => v.players).sort(),
        differs: vs.length > 1,
        variants: vs.map((v) => ({ digest: v.info.digest, interface: v.info.interface, source: v.info.source, players: v.players }))
      })
    }
    out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    return { scores: out }
  }

  return {
    submit,
    plan,
    get: (id, principal) => Effect.map(readable(id, principal), detailOf),
    list: (query, principal) =>
      Effect.map(Effect.flatMap(checkQuery(query), store.listJobs), (page): Views.JobPage => ({
        jobs: page.jobs
          .filter((j) => mayUseScore(principal, j.score) && j.targets.every((t) => mayUsePlayer(principal, t)))
          .map(summaryOf),
        ...(page.next === undefined ? {} : { next: page.next })
      })),
    cancel,
    wait: waitFinished,
    jobEvents,
    allEvents,
    players,
    scores,
    log: (id, key, attempt, principal) =>
      Effect.flatMap(readable(id, principal), (job) => {
        const a = job.attempts.find((x) => x.key === key && x.attempt === attempt)
        return a === undefined ? Effect.fail(new ApiError.AttemptNotFound({ job: id, key, attempt })) : Effect.succeed(a.log ?? "")
      }),
    health: Effect.map(engine.stats, (stats): Views.Health => {
      const ps = engine.players()
      return {
        status: "ok",
        name: options.name,
        startedAt: log.startedAt,
        players: { online: stats.playersOnline, allowlisted: ps.filter((p) => p.allowlisted).length },
        queued: stats.queued,
        lastEventId: log.lastId
      }
    }),
    events: log,
    openStreams: () => streams
  }
}
