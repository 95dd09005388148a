/**
 * The player: accepts assignments from the conductor, runs them (at most
 * `slots` at once, the rest in a local FIFO queue), and reports results
 * through the durable outbox; keeps a session with one of its conductors
 * (exponential backoff with jitter between attempts, reset after a healthy
 * session); and recovers what a previous run of the player left behind.
 *
 * Per assignment, before anything runs: the score must be in the catalog
 * (else `UNK_SCORE`) and the params must pass its manifest (else
 * `INVALID_PARAMS` with every violation) — the score is never spawned in
 * those cases. An assignment whose ref is already queued, running or
 * waiting in the outbox is not run again (a finished one has its result
 * sent again). A `Cancel` stops a running task (`CANCELLED`), drops a queued
 * one (`CANCELLED` at once), and answers an unknown ref with a `CANCELLED`
 * result so that the conductor converges.
 *
 * On a lost session, running tasks go on; their results wait in the outbox
 * and are sent after the next `Welcome`, and again every `resendInterval`
 * until acknowledged.
 *
 * @since 0.1.0
 */
import type { Job, Names, Transport } from "@orchestra/core"
import { Names as N, Protocol, Transport as T } from "@orchestra/core"
import type { Scope } from "effect"
import { Cause, Clock, Context, Deferred, Duration, Effect, Either, Layer, Option, Queue, Schedule, Stream } from "effect"
import * as Execution from "./Execution.js"
import * as Env from "./internal/env.js"
import * as Recovery from "./internal/recovery.js"
import * as Watchdog from "./internal/watchdog.js"
import { Outbox } from "./Outbox.js"
import type * as OutboxNs from "./Outbox.js"
import { ScoreCatalog } from "./ScoreCatalog.js"

export interface Options {
  readonly name: Names.PlayerName
  /** Conductor addresses, tried in turn. */
  readonly conductors: ReadonlyArray<string>
  readonly slots: number
  readonly labels?: Job.Labels | undefined
  /** Time between SIGTERM and SIGKILL (default 5 s). */
  readonly killGraceMs?: number | undefined
  /** Unacknowledged results are sent again after this long (default 30 s). */
  readonly resendIntervalMs?: number | undefined
  /** Reconnection backoff (default 500 ms doubling up to 30 s, with jitter). */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number } | undefined
  /** A session that lasted this long resets the backoff (default 10 s). */
  readonly healthyAfterMs?: number | undefined
  /** Results per `Results` message at most (default 256). */
  readonly maxResultsPerMessage?: number | undefined
  /**
   * Approximate size of a `Results` message at most (default 4 MiB, well
   * under the tls transport's 16 MiB frames); a single larger result goes alone.
   */
  readonly maxMessageBytes?: number | undefined
  /** Start the watchdog helper that bounds orphaned scores if the player dies (default false). */
  readonly watchdog?: boolean | undefined
}

export interface Status {
  /** The address of the conductor of the current session. */
  readonly connected: string | undefined
  readonly running: ReadonlyArray<Names.TaskRef>
  readonly queued: ReadonlyArray<Names.TaskRef>
  /** Durable results not yet acknowledged. */
  readonly unacknowledged: number
}

export interface PlayerService {
  /** Rescan the score directory; a changed catalog is sent to the conductor (`CatalogChanged`). */
  readonly reload: Effect.Effect<void>
  readonly status: Effect.Effect<Status>
}

export class Player extends Context.Tag("@orchestra/player/Player")<Player, PlayerService>() {}

/** The response of a task the player refused or stopped. */
const errorResult = (
  ref: Names.TaskRef,
  outcome: Protocol.TaskResult["outcome"],
  response: Protocol.TaskResult["response"],
  finishedAt: number,
  extra: { readonly log?: string; readonly startedAt?: number } = {}
): Protocol.TaskResult => ({ ref, outcome, response, log: extra.log ?? "", ...(extra.startedAt === undefined ? {} : { startedAt: extra.startedAt }), finishedAt })

interface LiveTask {
  readonly assignment: Protocol.Assignment
  state: "queued" | "running"
  cancelled: boolean
  pid: number | undefined
  readonly cancel: Deferred.Deferred<void>
}

/** Reconnection delays: exponential from `initialMs`, jittered, never more than `maxMs`. */
export const backoffSchedule = (initialMs: number, maxMs: number): Schedule.Schedule<Duration.Duration> =>
  Schedule.exponential(Duration.millis(initialMs), 2).pipe(
    Schedule.jittered,
    Schedule.modifyDelay((_, d) => Duration.min(d, Duration.millis(maxMs)))
  )

/**
 * Start the player in the current scope: recover the journal, start the
 * workers and the session loop. Closing the scope stops everything (running
 * scores are stopped too; they are reported as `UNKNOWN_FAILURE` at the next
 * start).
 */
export const make = (
  options: Options
): Effect.Effect<PlayerService, never, Scope.Scope | T.PlayerTransport | ScoreCatalog | Outbox> =>
  Effect.gen(function*() {
    const transport = yield* T.PlayerTransport
    const catalog = yield* ScoreCatalog
    const outbox = yield* Outbox
    const killGraceMs = options.killGraceMs ?? 5000
    const resendIntervalMs = options.resendIntervalMs ?? 30_000
    const backoff = options.backoff ?? { initialMs: 500, maxMs: 30_000 }
    const healthyAfterMs = options.healthyAfterMs ?? 10_000
    const maxPerMessage = Math.max(1, options.maxResultsPerMessage ?? 256)
    const maxMessageBytes = Math.max(1024, options.maxMessageBytes ?? 4 * 1024 * 1024)
    const watchdog = options.watchdog === true ? yield* Watchdog.start : Watchdog.none

    const live = new Map<string, LiveTask>()
    const runQueue = yield* Queue.unbounded<string>()
    const sentAt = new Map<string, number>()
    let session: Transport.ConductorSession | undefined
    let sessionAddress: string | undefined

    const key = N.taskRefString

    // ---- sending ------------------------------------------------------------

    const send = (message: Protocol.FromPlayer): Effect.Effect<void> =>
      Effect.suspend(() => (session === undefined ? Effect.void : session.send(message)))

    /** Send results in messages of at most `maxPerMessage` results and about `maxMessageBytes`. */
    const sendResults = (results: ReadonlyArray<Protocol.TaskResult>) =>
      Effect.gen(function*() {
        if (session === undefined || results.length === 0) return
        const now = yield* Clock.currentTimeMillis
        let chunk: Array<Protocol.TaskResult> = []
        let bytes = 0
        const flush = Effect.suspend(() => {
          if (chunk.length === 0) return Effect.void
          const out = chunk
          chunk = []
          bytes = 0
          for (const r of out) sentAt.set(key(r.ref), now)
          return send(new Protocol.Results({ results: out }))
        })
        for (const r of results) {
          const size = 256 + r.log.length * 2 + JSON.stringify(r.response).length
          if (chunk.length > 0 && (chunk.length >= maxPerMessage || bytes + size > maxMessageBytes)) yield* flush
          chunk.push(r)
          bytes += size
        }
        yield* flush
      })

    /** Make results durable, forget their tasks, send them. */
    const finish = (results: ReadonlyArray<Protocol.TaskResult>) =>
      Effect.gen(function*() {
        if (results.length === 0) return
        yield* outbox.finish(results)
        for (const r of results) {
          live.delete(key(r.ref))
          yield* Effect.logInfo("task ended").pipe(
            Effect.annotateLogs({
              task: key(r.ref),
              outcome: r.outcome,
              ...(typeof r.response.error === "string" ? { error: r.response.error } : {})
            })
          )
        }
        yield* sendResults(results)
      })

    // ---- checking ------------------------------------------------------------

    /** The score and valid params of an assignment, or the result refusing it. */
    const check = (a: Protocol.Assignment) =>
      Effect.gen(function*() {
        const snapshot = yield* catalog.snapshot
        const now = yield* Clock.currentTimeMillis
        const score = snapshot.scores.get(a.score)
        if (score === undefined) {
          const why = snapshot.excluded.find((e) => e.name === a.score)
          return Either.left(errorResult(a.ref, "UNK_SCORE", {
            error: `unknown score ${JSON.stringify(a.score)}`,
            ...(why === undefined ? {} : { reason: why.reason })
          }, now))
        }
        const valid = score.validate(a.params)
        if (Either.isLeft(valid)) {
          return Either.left(errorResult(a.ref, "INVALID_PARAMS", {
            error: "invalid params",
            violations: valid.left.map((i) => `${i.path}: ${i.message}`)
          }, now))
        }
        return Either.right({ score, params: valid.right })
      })

    // ---- running ----------------------------------------------------------------

    const runTask = (task: LiveTask) =>
      Effect.gen(function*() {
        const a = task.assignment
        const ref = a.ref
        const checked = yield* check(a)
        if (Either.isLeft(checked)) return yield* finish([checked.left])
        const { score, params } = checked.right
        const now = yield* Clock.currentTimeMillis
        if (a.deadline !== undefined && now >= a.deadline) {
          return yield* finish([errorResult(ref, "TIMEOUT", { error: "the job's deadline passed before the task could start" }, now)])
        }
        if (yield* Deferred.isDone(task.cancel)) {
          // cancelled while it was being checked: never spawned
          return yield* finish([errorResult(ref, "CANCELLED", { error: "cancelled before it started" }, now)])
        }
        yield* outbox.start(ref, now)
        const limitMs = Math.min(
          score.spec.timeoutMs ?? Number.POSITIVE_INFINITY,
          a.deadline === undefined ? Number.POSITIVE_INFINITY : a.deadline - now
        )
        const result = yield* Execution.run({
          assignment: { ...a, params },
          player: options.name,
          score: score.spec,
          killGraceMs,
          cancelled: Deferred.await(task.cancel),
          onSpawned: (s) =>
            Effect.gen(function*() {
              task.pid = s.pid
              yield* outbox.spawned(ref, s.pid, s.startTime)
              if (Number.isFinite(limitMs) && s.startTime !== undefined) {
                watchdog.watch(s.pid, s.startTime, s.at + limitMs + 2 * killGraceMs, killGraceMs)
              }
              yield* Effect.logInfo("task started").pipe(
                Effect.annotateLogs({ task: key(ref), score: a.score, pid: s.pid })
              )
              yield* send(new Protocol.Started({ tasks: [{ ref, at: s.at }] }))
            })
        })
        if (task.pid !== undefined) watchdog.forget(task.pid)
        yield* finish([result])
      }).pipe(
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause)
            ? Effect.failCause(cause)
            : Effect.gen(function*() {
              yield* Effect.logError("task failed inside the player").pipe(
                Effect.annotateLogs({ task: key(task.assignment.ref), cause: Cause.pretty(cause) })
              )
              const now = yield* Clock.currentTimeMillis
              yield* finish([errorResult(task.assignment.ref, "HOST_ERROR", { error: "internal error in the player" }, now)])
            })
        )
      )

    const worker = Effect.forever(
      Effect.gen(function*() {
        const k = yield* Queue.take(runQueue)
        const task = live.get(k)
        if (task === undefined || task.state !== "queued" || task.cancelled) return
        task.state = "running"
        yield* runTask(task)
      })
    )

    /** Mark a task queued (so a duplicate is seen at once); `enqueue` hands it to the workers. */
    const markQueued = (a: Protocol.Assignment) =>
      Effect.map(Deferred.make<void>(), (cancel) => {
        live.set(key(a.ref), { assignment: a, state: "queued", cancelled: false, pid: undefined, cancel })
      })
    const enqueue = (a: Protocol.Assignment) => Queue.offer(runQueue, key(a.ref))

    // ---- messages -----------------------------------------------------------------

    const handleRun = (run: Protocol.Run) =>
      Effect.gen(function*() {
        const fresh: Array<Protocol.Assignment> = []
        const refused: Array<Protocol.TaskResult> = []
        const again: Array<Protocol.TaskResult> = []
        const seen = new Set<string>()
        for (const a of run.tasks) {
          const k = key(a.ref)
          if (seen.has(k) || live.has(k)) {
            yield* Effect.logDebug("duplicate assignment ignored").pipe(Effect.annotateLogs({ task: k }))
            continue
          }
          seen.add(k)
          if (outbox.phase(a.ref) !== undefined) {
            const r = outbox.result(a.ref)
            if (Option.isSome(r)) again.push(r.value)
            yield* Effect.logDebug("assignment already done; result sent again").pipe(Effect.annotateLogs({ task: k }))
            continue
          }
          const checked = yield* check(a)
          if (Either.isLeft(checked)) {
            refused.push(checked.left)
            continue
          }
          fresh.push(a)
        }
        if (fresh.length > 0) {
          const now = yield* Clock.currentTimeMillis
          for (const a of fresh) yield* markQueued(a)
          yield* outbox.accept(fresh, now)
          for (const a of fresh) {
            yield* Effect.logDebug("task queued").pipe(Effect.annotateLogs({ task: key(a.ref), score: a.score }))
            yield* enqueue(a)
          }
        }
        yield* finish(refused)
        yield* sendResults(again)
      })

    const handleCancel = (cancel: Protocol.Cancel) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const results: Array<Protocol.TaskResult> = []
        const again: Array<Protocol.TaskResult> = []
        for (const ref of cancel.refs) {
          const k = key(ref)
          const task = live.get(k)
          if (task !== undefined && task.state === "queued") {
            if (task.cancelled) continue
            task.cancelled = true
            results.push(errorResult(ref, "CANCELLED", { error: "cancelled before it started" }, now))
          } else if (task !== undefined) {
            yield* Effect.logInfo("cancelling running task").pipe(Effect.annotateLogs({ task: k, pid: task.pid ?? "" }))
            yield* Deferred.succeed(task.cancel, undefined)
          } else {
            const r = outbox.result(ref)
            if (Option.isSome(r)) again.push(r.value)
            else if (outbox.phase(ref) === undefined) {
              results.push(errorResult(ref, "CANCELLED", { error: "cancelled; the task was not known to this player" }, now))
            }
          }
        }
        yield* finish(results)
        yield* sendResults(again)
      })

    const handleAck = (ack: Protocol.Ack) =>
      Effect.gen(function*() {
        const dropped = yield* outbox.ack(ack.refs)
        for (const r of ack.refs) sentAt.delete(key(r))
        yield* Effect.logDebug("results acknowledged").pipe(Effect.annotateLogs({ count: dropped.length }))
      })

    const handle = (message: Protocol.ToPlayer): Effect.Effect<void> => {
      switch (message._tag) {
        case "Run":
          return handleRun(message)
        case "Cancel":
          return handleCancel(message)
        case "Ack":
          return handleAck(message)
        case "Refused":
          return Effect.logWarning("conductor ended the session").pipe(Effect.annotateLogs({ reason: message.reason }))
        case "Welcome":
          return Effect.logDebug("unexpected Welcome ignored")
      }
    }

    // ---- recovery ---------------------------------------------------------------------

    const recovered = outbox.recovered
    for (const w of recovered.warnings) {
      yield* Effect.logWarning("outbox journal").pipe(Effect.annotateLogs({ file: outbox.file, problem: w }))
    }
    if (recovered.running.length > 0) {
      const results = yield* Effect.forEach(
        recovered.running,
        (r: OutboxNs.Running) =>
          Effect.gen(function*() {
            const ref = r.assignment.ref
            const stopped = yield* Recovery.stop(
              { pid: r.pid, startTime: r.startTime, marker: Env.marker(key(ref), options.name) },
              killGraceMs
            )
            yield* Effect.logWarning("score was running when the player stopped; reported as UNKNOWN_FAILURE").pipe(
              Effect.annotateLogs({ task: key(ref), score: r.assignment.score, pid: r.pid ?? "", leftovers: stopped })
            )
            const now = yield* Clock.currentTimeMillis
            return errorResult(
              ref,
              "UNKNOWN_FAILURE",
              { error: "player restarted while the score was running" },
              now,
              {
                startedAt: r.startedAt,
                log: stopped > 0 ? `[orchestra] stopped ${stopped} leftover process(es) of the score\n` : ""
              }
            )
          }),
        { concurrency: "unbounded" }
      )
      yield* finish(results)
    }
    for (const q of recovered.queued) {
      yield* markQueued(q.assignment)
      yield* enqueue(q.assignment)
    }
    if (recovered.queued.length > 0 || recovered.results.length > 0) {
      yield* Effect.logInfo("outbox recovered").pipe(
        Effect.annotateLogs({ queued: recovered.queued.length, unacknowledged: recovered.results.length })
      )
    }

    for (let i = 0; i < options.slots; i++) yield* Effect.forkScoped(worker)

    // ---- session -----------------------------------------------------------------------

    const runningRefs = () => [...live.values()].map((t) => t.assignment.ref)

    const runSession = (address: string) =>
      Effect.scoped(
        Effect.gen(function*() {
          const snapshot = yield* catalog.snapshot
          const hello = new Protocol.Hello({
            protocol: Protocol.PROTOCOL_VERSION,
            player: options.name,
            slots: options.slots,
            labels: options.labels ?? {},
            catalog: snapshot.catalog,
            running: runningRefs()
          })
          const s = yield* transport.connect(address, hello)
          const openedAt = yield* Clock.currentTimeMillis
          session = s
          sessionAddress = address
          yield* Effect.addFinalizer(() =>
            Effect.sync(() => {
              if (session === s) {
                session = undefined
                sessionAddress = undefined
              }
            })
          )
          yield* Effect.logInfo("session open").pipe(
            Effect.annotateLogs({ conductor: s.welcome.conductor, address: s.address })
          )
          const latest = yield* catalog.snapshot
          if (latest.catalog !== snapshot.catalog) yield* send(new Protocol.CatalogChanged({ catalog: latest.catalog }))
          yield* sendResults(yield* outbox.pending)
          yield* Stream.runForEach(s.incoming, handle)
          const closedAt = yield* Clock.currentTimeMillis
          yield* Effect.logInfo("session closed").pipe(
            Effect.annotateLogs({ address, lasted: `${closedAt - openedAt}ms` })
          )
          return closedAt - openedAt
        })
      )

    const sessionLoop = Effect.gen(function*() {
      const driver = yield* Schedule.driver(backoffSchedule(backoff.initialMs, backoff.maxMs))
      let index = 0
      for (;;) {
        const address = options.conductors[index % options.conductors.length]!
        const outcome = yield* Effect.either(runSession(address))
        if (Either.isRight(outcome)) {
          if (outcome.right >= healthyAfterMs) yield* driver.reset
          else index++
        } else {
          index++
          const e = outcome.left
          if (e._tag === "SessionRefused") {
            yield* Effect.logWarning("session refused").pipe(Effect.annotateLogs({ address, reason: e.reason }))
          } else {
            yield* Effect.logWarning("cannot connect").pipe(
              Effect.annotateLogs({ address, reason: e.reason, error: e.message })
            )
          }
        }
        yield* Effect.ignore(driver.next(undefined))
      }
    })
    yield* Effect.forkScoped(sessionLoop)

    // results not acknowledged after resendInterval are sent again
    const resend = Effect.gen(function*() {
      if (session === undefined) return
      const now = yield* Clock.currentTimeMillis
      const due = (yield* outbox.pending).filter((r) => now - (sentAt.get(key(r.ref)) ?? 0) >= resendIntervalMs)
      if (due.length > 0) {
        yield* Effect.logDebug("sending unacknowledged results again").pipe(Effect.annotateLogs({ count: due.length }))
        yield* sendResults(due)
      }
    })
    yield* Effect.forkScoped(
      Effect.repeat(resend, Schedule.spaced(Duration.millis(Math.max(1, Math.floor(resendIntervalMs / 2)))))
    )

    const service: PlayerService = {
      reload: Effect.gen(function*() {
        const r = yield* Effect.either(catalog.reload)
        if (Either.isRight(r) && r.right.changed) {
          yield* send(new Protocol.CatalogChanged({ catalog: r.right.snapshot.catalog }))
        }
      }),
      status: Effect.gen(function*() {
        const pending = yield* outbox.pending
        const tasks = [...live.values()]
        return {
          connected: sessionAddress,
          running: tasks.filter((t) => t.state === "running").map((t) => t.assignment.ref),
          queued: tasks.filter((t) => t.state === "queued" && !t.cancelled).map((t) => t.assignment.ref),
          unacknowledged: pending.length
        }
      })
    }
    return service
  })

/** The player as a layer: it runs while the layer is alive. */
export const layer = (options: Options): Layer.Layer<Player, never, T.PlayerTransport | ScoreCatalog | Outbox> =>
  Layer.scoped(Player, make(options))
