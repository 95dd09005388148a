/**
 * The engine: jobs in flight, each driven by a `PolicyRun`; the dispatch
 * queue; player sessions; and the two loops that talk to the store.
 *
 * - The **dispatch loop** takes every assignment made since its last turn,
 *   records them all at once (`recordDispatches`, or `recordDispatch` for
 *   each, concurrently, with a store without batches: the store commits
 *   them as one group), then sends each player one `Run` with all of its
 *   assignments (and the `Cancel`s due).
 * - The **ingest loop** takes every `Results`/`Started` message and every
 *   end the conductor decides itself (cancelled, removed player, deadline)
 *   since its last turn, records them all at once (`recordEnds`,
 *   `recordStarts`, `finishJobs`, or the single writes), then,
 *   once durable, acknowledges each player with one `Ack` and feeds the
 *   policies in the order the ends were issued — the order the store gives
 *   them (`seq`), which a replay after a restart follows too.
 *
 * Everything else — policy steps, queueing, slot accounting — is
 * synchronous bookkeeping between those loops, O(1) per event apart from the
 * players a task names.
 *
 * Exactly once: a result is recorded only for an attempt the engine holds
 * open and has not started ending; any other result (duplicate,
 * retransmission, late) is acknowledged without being recorded.
 *
 * Events (`options.events`): once durable, each dispatch, start, end and
 * finished job is published (`task.dispatched`, `task.started`,
 * `task.finished`, `job.finished`), as are `job.submitted` (a job started
 * by `submit`) and player sessions (`player.connected`/`disconnected`).
 *
 * Retries (`request.retry`): a retryable outcome with retries left queues
 * the same task again after an exponential backoff, without telling the
 * policy. Deadline (`request.deadline`): when it passes, tasks not ended
 * end `TIMEOUT` (running ones also get a `Cancel`).
 *
 * @since 0.1.0
 */
import type { Events } from "@orchestra/api"
import type { Job, Policy, Store, Transport } from "@orchestra/core"
import { Errors, Names, Outcome, PolicyRun, Protocol } from "@orchestra/core"
import type { Fiber, Scope } from "effect"
import { Chunk, Clock, Context, Effect, Either, FiberSet, Layer, Queue, Stream } from "effect"
import type { Entry } from "./DispatchQueue.js"
import { DispatchQueue } from "./DispatchQueue.js"
import { eachWrite } from "./internal/concurrently.js"
import type { PlayerInfo } from "./PlayerRegistry.js"
import { PlayerEntry, PlayerRegistry } from "./PlayerRegistry.js"

/** A job the store has accepted, handed to the engine. */
export interface SubmittedJob {
  readonly id: Names.JobId
  readonly request: Job.JobRequest
  readonly targets: ReadonlyArray<Names.PlayerName>
  readonly targetLabels?: Readonly<Record<string, Job.Labels>>
  readonly createdAt: number
}

export interface EngineOptions {
  /** The conductor's name, for logs. */
  readonly name?: string
  readonly store: Store.StoreService
  readonly policies: Policy.PolicyLookup
  /** The players allowed to connect. */
  readonly allowlist: Iterable<Names.PlayerName>
  /** At most this many assignments in one `Run` message (default 256). */
  readonly maxTasksPerRun?: number
  /** At most this many refs in one `Ack` message (default 4096). */
  readonly maxRefsPerAck?: number
  /** Wait before retrying a store write that failed (default 1000 ms). */
  readonly storeRetryMs?: number
  /**
   * Under load (the event loop busy more than half the time since the last
   * turn), a loop (dispatch, ingest) starts a turn at most this often
   * (default 1 ms), taking everything that arrived meanwhile: one store
   * group and one message per player for many events. Otherwise a turn
   * starts at once. Node accepts one audience connection per turn of its
   * event loop, so without this the loops would run for every submission.
   */
  readonly minTurnIntervalMs?: number
  /**
   * Where audience events go (the conductor's `EventLog`), called
   * synchronously from the loops: keep it cheap.
   */
  readonly events?: (event: Events.Body) => void
}

export interface EngineStats {
  /** Jobs in memory: unfinished, or finished with attempts still open. */
  readonly jobs: number
  /** Tasks waiting in the dispatch queue. */
  readonly queued: number
  /** Attempts dispatched (or being ended) and not ended yet. */
  readonly openAttempts: number
  readonly playersOnline: number
  /** Turns of the dispatch loop so far, and assignments sent (their ratio is the batch size). */
  readonly dispatchTurns: number
  readonly assignmentsSent: number
  /** Turns of the ingest loop so far, and ends recorded. */
  readonly ingestTurns: number
  readonly endsRecorded: number
  /** Jobs started and not finished. */
  readonly unfinishedJobs: number
}

export interface AllowlistChange {
  readonly added: ReadonlyArray<Names.PlayerName>
  readonly removed: ReadonlyArray<Names.PlayerName>
}

export interface EngineService {
  /** Start a job the store has accepted. Starting the same id twice starts it once. */
  readonly submit: (job: SubmittedJob) => Effect.Effect<void>
  /** Admit player sessions (pass to `ConductorTransport.serve`). */
  readonly admit: Transport.Admit
  /** Resume the store's unfinished jobs (once, at start-up, before serving); returns how many. */
  readonly recover: Effect.Effect<number, Errors.StoreError>
  /**
   * Replace the allowlist. A removed player's session is closed and its
   * pending tasks end `HOST_ERROR`.
   */
  readonly setAllowlist: (names: Iterable<Names.PlayerName>) => Effect.Effect<AllowlistChange>
  readonly isAllowed: (name: string) => boolean
  readonly allowlist: () => ReadonlyArray<Names.PlayerName>
  readonly player: (name: Names.PlayerName) => PlayerInfo | undefined
  readonly players: () => ReadonlyArray<PlayerInfo>
  /**
   * Whether the engine holds the job: unfinished, or finished with attempts
   * still open. A finished job the engine does not hold no longer changes
   * in the store (until it is purged).
   */
  readonly holds: (id: Names.JobId) => boolean
  /** Cancel an unfinished job; false if the engine does not hold it unfinished. */
  readonly cancel: (id: Names.JobId, reason?: string) => Effect.Effect<boolean>
  readonly stats: Effect.Effect<EngineStats>
}

export class Engine extends Context.Tag("@orchestra/conductor/Engine")<Engine, EngineService>() {}

// ---------------------------------------------------------------------------

type Phase = "new" | "queued" | "assigned" | "backoff" | "ending" | "ended"

interface JobEntry {
  readonly id: Names.JobId
  readonly request: Job.JobRequest
  readonly targets: ReadonlyArray<Names.PlayerName>
  readonly createdAt: number
  run: PolicyRun.PolicyRun | undefined
  /** Tasks not ended, by key. */
  readonly tasks: Map<Names.TaskKey, TaskEntry>
  readonly lastAttempt: Map<Names.TaskKey, number>
  finished: boolean
  /** How it finished, once it has. */
  outcome: Policy.Finished | undefined
  /** Attempt entries of this job in the index. */
  open: number
  deadline: Fiber.RuntimeFiber<void> | undefined
}

interface TaskEntry {
  readonly job: JobEntry
  readonly key: Names.TaskKey
  readonly players: ReadonlyArray<Names.PlayerName>
  attempt: number
  retries: number
  phase: Phase
  queued: Entry<TaskEntry> | undefined
  current: AttemptEntry | undefined
  cancelRequested: boolean
}

interface AttemptEntry {
  readonly task: TaskEntry
  readonly ref: Names.TaskRef
  readonly id: string
  readonly player: Names.PlayerName
  readonly dispatchedAt: number
  /** Counts against the player's slots. */
  readonly occupies: boolean
  durable: boolean
  sent: boolean
  ending: boolean
}

type IngestItem =
  | {
    readonly _tag: "Results"
    readonly player: Names.PlayerName
    readonly session: Transport.PlayerSession
    readonly results: ReadonlyArray<Protocol.TaskResult>
  }
  | {
    readonly _tag: "Started"
    readonly player: Names.PlayerName
    readonly tasks: ReadonlyArray<{ readonly ref: Names.TaskRef; readonly at: number }>
  }
  | { readonly _tag: "End"; readonly attempt: AttemptEntry; readonly outcome: Outcome.Outcome; readonly log: string; readonly at: number }
  | {
    readonly _tag: "Finish"
    readonly id: Names.JobId
    readonly score: Names.ScoreName
    readonly targets: ReadonlyArray<Names.PlayerName>
    readonly state: "OK" | "PARTIAL_FAIL" | "FAIL" | "CANCELLED"
    readonly reason: string | undefined
    readonly at: number
  }

type OutItem =
  | { readonly _tag: "Dispatch"; readonly attempt: AttemptEntry }
  | { readonly _tag: "Cancel"; readonly attempt: AttemptEntry }

type Fork = <A, E>(effect: Effect.Effect<A, E>) => Fiber.RuntimeFiber<A, E>

const chunksOf = <A>(xs: ReadonlyArray<A>, n: number): ReadonlyArray<ReadonlyArray<A>> => {
  if (xs.length <= n) return [xs]
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n))
  return out
}

/** Messages built from data already checked (requests decoded at intake, refs we made) skip the constructor's check. */
const trusted = { disableValidation: true } as const

const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e))

class EngineImpl {
  readonly registry: PlayerRegistry
  readonly queue = new DispatchQueue<TaskEntry>()
  readonly jobs = new Map<Names.JobId, JobEntry>()
  readonly index = new Map<string, AttemptEntry>()
  /** Open attempts counting against each player's slots. */
  readonly assigned = new Map<Names.PlayerName, Set<AttemptEntry>>()
  replaying = false
  dispatchTurns = 0
  assignmentsSent = 0
  ingestTurns = 0
  endsRecorded = 0
  unfinished = 0
  /** Where events go; a no-op without `options.events`. */
  readonly emit: (event: Events.Body) => void
  private readonly maxTasksPerRun: number
  private readonly maxRefsPerAck: number
  private readonly storeRetryMs: number

  constructor(
    readonly options: EngineOptions,
    readonly ingest: Queue.Queue<IngestItem>,
    readonly out: Queue.Queue<OutItem>,
    readonly fork: Fork
  ) {
    this.registry = new PlayerRegistry(options.allowlist)
    for (const name of this.registry.allowlist) this.queue.setPlayer(name)
    this.maxTasksPerRun = Math.max(1, options.maxTasksPerRun ?? 256)
    this.maxRefsPerAck = Math.max(1, options.maxRefsPerAck ?? 4096)
    this.storeRetryMs = Math.max(0, options.storeRetryMs ?? 1000)
    const events = options.events
    this.emit = events === undefined
      ? () => undefined
      : (event) => {
        try {
          events(event)
        } catch {
          // a listener's bug must not stop the engine
        }
      }
  }

  get store(): Store.StoreService {
    return this.options.store
  }

  log(level: "Info" | "Warning" | "Error" | "Debug", message: string, fields: Record<string, unknown> = {}): void {
    const eff = level === "Info"
      ? Effect.logInfo(message)
      : level === "Warning"
      ? Effect.logWarning(message)
      : level === "Error"
      ? Effect.logError(message)
      : Effect.logDebug(message)
    this.fork(Effect.annotateLogs(eff, fields))
  }

  // ---- jobs -------------------------------------------------------------

  private newJob(job: SubmittedJob): JobEntry {
    const entry: JobEntry = {
      id: job.id,
      request: job.request,
      targets: job.targets,
      createdAt: job.createdAt,
      run: undefined,
      tasks: new Map(),
      lastAttempt: new Map(),
      finished: false,
      outcome: undefined,
      open: 0,
      deadline: undefined
    }
    this.jobs.set(job.id, entry)
    this.unfinished++
    return entry
  }

  /** Start a job's policy; returns the entry, or undefined if already held. */
  private startPolicy(job: SubmittedJob): JobEntry | undefined {
    if (this.jobs.has(job.id)) return undefined
    const entry = this.newJob(job)
    const name = job.request.policy.name
    const plugin = this.options.policies(name)
    if (plugin === undefined) {
      this.finish(entry, { state: "FAIL", reason: `unknown policy "${name}"` }, job.createdAt)
      return entry
    }
    const labels = new Map<Names.PlayerName, Job.Labels>()
    for (const [k, v] of Object.entries(job.targetLabels ?? {})) labels.set(k as Names.PlayerName, v)
    const { run, step } = PolicyRun.PolicyRun.start(plugin, job.request.policy.options, {
      job: job.id,
      score: job.request.score,
      players: job.targets,
      labels,
      now: job.createdAt,
      policies: this.options.policies
    })
    entry.run = run
    this.applyStep(entry, step, job.createdAt)
    return entry
  }

  /** Start a job; false if it was already held. */
  start(job: SubmittedJob, now: number): boolean {
    const entry = this.startPolicy(job)
    if (entry === undefined) return false
    this.armDeadline(entry, now)
    this.maybeForget(entry)
    return true
  }

  private applyStep(job: JobEntry, step: PolicyRun.Step, now: number): void {
    for (const action of step.actions) {
      if (action._tag === "Run") {
        this.createTask(job, action.key, action.players, action.front === true, now)
      } else {
        const task = job.tasks.get(action.key)
        if (task !== undefined) this.cancelTask(task, "cancelled by the job's policy", now)
      }
    }
    if (step.finished !== undefined) this.finish(job, step.finished, now)
  }

  private createTask(
    job: JobEntry,
    key: Names.TaskKey,
    players: ReadonlyArray<Names.PlayerName>,
    front: boolean,
    now: number
  ): void {
    const attempt = (job.lastAttempt.get(key) ?? 0) + 1
    job.lastAttempt.set(key, attempt)
    const task: TaskEntry = {
      job,
      key,
      players,
      attempt,
      retries: 0,
      phase: "new",
      queued: undefined,
      current: undefined,
      cancelRequested: false
    }
    job.tasks.set(key, task)
    if (!this.replaying) this.enqueueTask(task, front, now)
  }

  private enqueueTask(task: TaskEntry, front: boolean, now: number): void {
    const deadline = task.job.request.deadline
    if (deadline !== undefined && now >= deadline) {
      this.endSynthetic(task, "TIMEOUT", "the job's deadline passed before the task ran", now)
      return
    }
    if (task.cancelRequested) {
      this.endSynthetic(task, "CANCELLED", "cancelled", now)
      return
    }
    const r = this.queue.enqueue(task, task.players, { front })
    if (r._tag === "Orphan") {
      this.endSynthetic(
        task,
        "HOST_ERROR",
        `no player that may take the task is on the allowlist (${task.players.join(", ")})`,
        now
      )
    } else if (r._tag === "Taken") {
      this.assign(task, r.taken.player as Names.PlayerName, now)
    } else {
      task.queued = r.entry
      task.phase = "queued"
    }
  }

  assignTaken(taken: ReadonlyArray<{ readonly value: TaskEntry; readonly player: string }>, now: number): void {
    for (const t of taken) {
      t.value.queued = undefined
      this.assign(t.value, t.player as Names.PlayerName, now)
    }
  }

  private newAttempt(task: TaskEntry, player: Names.PlayerName, at: number, occupies: boolean): AttemptEntry {
    const ref: Names.TaskRef = { job: task.job.id, key: task.key, attempt: task.attempt }
    const a: AttemptEntry = {
      task,
      ref,
      id: Names.taskRefString(ref),
      player,
      dispatchedAt: at,
      occupies,
      durable: false,
      sent: false,
      ending: false
    }
    this.index.set(a.id, a)
    task.current = a
    task.job.open++
    if (occupies) {
      let set = this.assigned.get(player)
      if (set === undefined) {
        set = new Set()
        this.assigned.set(player, set)
      }
      set.add(a)
    }
    return a
  }

  private assign(task: TaskEntry, player: Names.PlayerName, now: number): void {
    const a = this.newAttempt(task, player, now, true)
    task.phase = "assigned"
    this.out.unsafeOffer({ _tag: "Dispatch", attempt: a })
  }

  /**
   * End a task's current attempt (or a new attempt, when none is open) with
   * an outcome the conductor decides: recorded and fed like a player's result.
   */
  private endSynthetic(
    task: TaskEntry,
    outcome: Outcome.Outcome,
    why: string,
    now: number,
    player?: Names.PlayerName
  ): void {
    if (task.queued !== undefined) {
      this.queue.remove(task.queued)
      task.queued = undefined
    }
    let a = task.current
    if (a === undefined) {
      a = this.newAttempt(task, player ?? task.players[0]!, now, false)
    }
    if (a.ending) return
    a.ending = true
    task.phase = "ending"
    this.ingest.unsafeOffer({ _tag: "End", attempt: a, outcome, log: why, at: now })
  }

  private cancelTask(task: TaskEntry, why: string, now: number): void {
    task.cancelRequested = true
    if (this.replaying) return
    switch (task.phase) {
      case "new":
      case "queued":
      case "backoff":
        this.endSynthetic(task, "CANCELLED", why, now)
        break
      case "assigned": {
        const a = task.current!
        if (!a.sent) this.endSynthetic(task, "CANCELLED", why, now)
        else this.out.unsafeOffer({ _tag: "Cancel", attempt: a })
        break
      }
      default:
        break
    }
  }

  private finish(job: JobEntry, finished: Policy.Finished, now: number): void {
    if (job.finished) return
    job.finished = true
    this.unfinished--
    job.outcome = finished
    if (job.deadline !== undefined) {
      job.deadline.unsafeInterruptAsFork(job.deadline.id())
      job.deadline = undefined
    }
    if (this.replaying) return
    this.ingest.unsafeOffer({
      _tag: "Finish",
      id: job.id,
      score: job.request.score,
      targets: job.targets,
      state: finished.state,
      reason: finished.reason,
      at: now
    })
    this.cancelLive(job, `the job finished ${finished.state}`, now)
  }

  /** Queued tasks of a finished job end at once; running ones are told to stop. */
  private cancelLive(job: JobEntry, why: string, now: number): void {
    for (const task of [...job.tasks.values()]) {
      switch (task.phase) {
        case "new":
        case "queued":
        case "backoff":
          if (task.queued !== undefined) {
            this.queue.remove(task.queued)
            task.queued = undefined
          }
          task.phase = "ended"
          job.tasks.delete(task.key)
          break
        case "assigned": {
          task.cancelRequested = true
          const a = task.current!
          if (!a.sent) this.endSynthetic(task, "CANCELLED", why, now)
          else this.out.unsafeOffer({ _tag: "Cancel", attempt: a })
          break
        }
        default:
          break
      }
    }
  }

  private maybeForget(job: JobEntry): void {
    if (job.finished && job.open === 0) this.jobs.delete(job.id)
  }

  cancelJob(id: Names.JobId, reason: string, now: number): boolean {
    const job = this.jobs.get(id)
    if (job === undefined || job.finished || job.run === undefined) return false
    const step = job.run.finish({ state: "CANCELLED", reason })
    this.applyStep(job, step, now)
    this.maybeForget(job)
    return true
  }

  // ---- retries and deadlines ----------------------------------------------

  private shouldRetry(task: TaskEntry, outcome: Outcome.Outcome, finishedAt: number): boolean {
    const retry = task.job.request.retry
    if (retry === undefined || task.retries >= retry.max) return false
    if (!Outcome.isRetryable(outcome) || task.cancelRequested) return false
    const deadline = task.job.request.deadline
    return deadline === undefined || finishedAt < deadline
  }

  private backoffMs(task: TaskEntry): number {
    const retry = task.job.request.retry!
    const n = task.retries // 1 for the first retry
    return Math.min(retry.maxBackoffMs, Math.round(retry.backoffMs * Math.pow(retry.factor, n - 1)))
  }

  private armDeadline(job: JobEntry, now: number): void {
    const deadline = job.request.deadline
    if (deadline === undefined || job.finished) return
    job.deadline = this.fork(
      Effect.sleep(Math.max(0, deadline - now)).pipe(
        Effect.zipRight(Clock.currentTimeMillis),
        Effect.flatMap((t) => Effect.sync(() => this.onDeadline(job, t)))
      )
    )
  }

  private onDeadline(job: JobEntry, now: number): void {
    job.deadline = undefined
    if (job.finished) return
    for (const task of [...job.tasks.values()]) {
      if (task.phase === "assigned" && task.current !== undefined && task.current.sent) {
        this.out.unsafeOffer({ _tag: "Cancel", attempt: task.current })
      }
      if (task.phase !== "ending" && task.phase !== "ended") {
        this.endSynthetic(task, "TIMEOUT", "the job's deadline passed", now)
      }
    }
  }

  // ---- ends -------------------------------------------------------------

  /** An attempt's end is durable: free its slot, then retry or tell the policy. */
  onEnded(a: AttemptEntry, outcome: Outcome.Outcome, response: Job.Response, finishedAt: number, now: number): void {
    if (this.index.get(a.id) !== a) return
    this.index.delete(a.id)
    const task = a.task
    const job = task.job
    job.open--
    if (a.occupies) {
      this.assigned.get(a.player)?.delete(a)
      this.assignTaken(this.queue.release(a.player), now)
    }
    if (task.current === a) task.current = undefined
    if (job.finished || task.phase === "ended") {
      this.maybeForget(job)
      return
    }
    this.afterEnd(task, a.player, a.ref.attempt, outcome, response, finishedAt, now)
    this.maybeForget(job)
  }

  /** What follows an attempt's end, live and in replay alike. */
  private afterEnd(
    task: TaskEntry,
    player: Names.PlayerName,
    attempt: number,
    outcome: Outcome.Outcome,
    response: Job.Response,
    finishedAt: number,
    now: number
  ): void {
    const job = task.job
    if (this.shouldRetry(task, outcome, finishedAt)) {
      task.retries++
      task.attempt++
      job.lastAttempt.set(task.key, Math.max(job.lastAttempt.get(task.key) ?? 0, task.attempt))
      task.phase = "backoff"
      if (!this.replaying) {
        const expected = task.attempt
        const delay = this.backoffMs(task)
        this.log("Info", "retrying task", { job: job.id, task: task.key, attempt: expected, outcome, delayMs: delay })
        this.fork(
          Effect.sleep(delay).pipe(
            Effect.zipRight(Clock.currentTimeMillis),
            Effect.flatMap((t) =>
              Effect.sync(() => {
                if (task.phase === "backoff" && task.attempt === expected && !job.finished) this.enqueueTask(task, false, t)
              })
            )
          )
        )
      }
      return
    }
    task.phase = "ended"
    job.tasks.delete(task.key)
    if (job.run === undefined) return
    const step = job.run.taskEnded({ key: task.key, player, attempt, outcome, response }, finishedAt)
    this.applyStep(job, step, this.replaying ? finishedAt : now)
  }

  // ---- recovery -----------------------------------------------------------

  recoverJob(rec: Job.JobRecord, now: number): void {
    if (this.jobs.has(rec.id)) return
    const submitted: SubmittedJob = {
      id: rec.id,
      request: rec.request,
      targets: rec.targets,
      targetLabels: rec.targetLabels,
      createdAt: rec.createdAt
    }
    let job: JobEntry | undefined
    this.replaying = true
    try {
      job = this.startPolicy(submitted)
      if (job === undefined) return
      const ended = rec.attempts
        .filter((a) => a.outcome !== undefined)
        .sort((x, y) => (x.seq ?? 0) - (y.seq ?? 0))
      for (const a of ended) {
        if (job.finished) break
        const task = job.tasks.get(a.key)
        if (task === undefined || task.attempt !== a.attempt || task.phase === "ended") continue
        this.afterEnd(task, a.player, a.attempt, a.outcome!, a.response ?? {}, a.finishedAt ?? rec.createdAt, now)
      }
    } finally {
      this.replaying = false
    }
    if (job === undefined) return
    // the highest attempt number recorded per key: never reuse one
    const byRef = new Map<string, Job.AttemptRecord>()
    for (const a of rec.attempts) {
      byRef.set(`${a.key}\u0000${a.attempt}`, a)
      if ((job.lastAttempt.get(a.key) ?? 0) < a.attempt) job.lastAttempt.set(a.key, a.attempt)
    }
    if (job.finished) {
      const f = job.outcome ?? { state: "FAIL" as const, reason: "the job could not be resumed" }
      this.ingest.unsafeOffer({ _tag: "Finish", id: job.id, score: job.request.score, targets: job.targets, state: f.state, reason: f.reason, at: now })
      for (const task of job.tasks.values()) task.phase = "ended"
      job.tasks.clear()
      this.maybeForget(job)
      return
    }
    for (const task of [...job.tasks.values()]) {
      const recorded = byRef.get(`${task.key}\u0000${task.attempt}`)
      if (recorded !== undefined && recorded.outcome !== undefined) {
        // the replay did not consume this end: start a fresh attempt
        task.attempt = (job.lastAttempt.get(task.key) ?? task.attempt) + 1
        job.lastAttempt.set(task.key, task.attempt)
      }
      if (recorded !== undefined && recorded.outcome === undefined) {
        if (!this.registry.isAllowed(recorded.player)) {
          const a = this.newAttempt(task, recorded.player, recorded.dispatchedAt, false)
          a.durable = true
          this.endSynthetic(task, "HOST_ERROR", `player ${recorded.player} is not on the allowlist`, now)
          continue
        }
        const a = this.newAttempt(task, recorded.player, recorded.dispatchedAt, true)
        a.durable = true
        a.sent = true
        task.phase = "assigned"
        this.queue.occupy(recorded.player)
        continue
      }
      if (task.cancelRequested) {
        this.endSynthetic(task, "CANCELLED", "cancelled by the job's policy", now)
        continue
      }
      this.enqueueTask(task, false, now)
    }
    this.armDeadline(job, now)
  }

  // ---- players ------------------------------------------------------------

  info(e: PlayerEntry): PlayerInfo {
    return {
      name: e.name,
      allowlisted: e.allowlisted,
      online: e.session !== undefined,
      slots: e.slots,
      running: this.assigned.get(e.name)?.size ?? 0,
      labels: e.labels,
      catalog: e.catalog,
      address: e.address
    }
  }

  /** A session starts: register what the player said, resend what it lacks; returns the messages to send first. */
  sessionStarted(p: PlayerEntry, claim: object, session: Transport.PlayerSession, now: number): ReadonlyArray<Protocol.ToPlayer> | undefined {
    if (p.claim !== claim || this.registry.get(p.name) !== p) return undefined
    const hello = session.hello
    p.session = session
    p.hello = hello
    p.slots = hello.slots
    p.labels = hello.labels
    p.address = session.peer.address
    p.setCatalog(hello.catalog)
    const running = new Set(hello.running.map(Names.taskRefString))
    const runs: Array<Protocol.Assignment> = []
    const cancels: Array<Names.TaskRef> = []
    for (const a of [...(this.assigned.get(p.name) ?? [])]) {
      if (a.ending) continue
      const task = a.task
      if (task.cancelRequested || task.job.finished) {
        if (running.has(a.id)) {
          a.sent = true
          cancels.push(a.ref)
        } else {
          this.endSynthetic(task, "CANCELLED", "cancelled while the player was away", now)
        }
        continue
      }
      if (!a.durable) continue
      a.sent = true
      if (!running.has(a.id)) runs.push(this.assignment(a))
    }
    const messages: Array<Protocol.ToPlayer> = []
    for (const c of chunksOf(runs, this.maxTasksPerRun)) if (c.length > 0) messages.push(new Protocol.Run({ tasks: c }, trusted))
    if (cancels.length > 0) messages.push(new Protocol.Cancel({ refs: cancels }, trusted))
    this.assignTaken(this.queue.setPlayer(p.name, { online: true, slots: hello.slots }), now)
    return messages
  }

  sessionEnded(p: PlayerEntry, claim: object): void {
    if (p.claim !== claim) return
    p.claim = undefined
    p.session = undefined
    p.address = undefined
    if (this.registry.get(p.name) === p) this.queue.setPlayer(p.name, { online: false })
  }

  onMessage(p: PlayerEntry, session: Transport.PlayerSession, msg: Protocol.FromPlayer): void {
    if (p.session !== session) return
    switch (msg._tag) {
      case "Results":
        if (msg.results.length > 0) this.ingest.unsafeOffer({ _tag: "Results", player: p.name, session, results: msg.results })
        break
      case "Started":
        if (msg.tasks.length > 0) this.ingest.unsafeOffer({ _tag: "Started", player: p.name, tasks: msg.tasks })
        break
      case "CatalogChanged":
        p.setCatalog(msg.catalog)
        this.log("Info", "catalog changed", { player: p.name, scores: msg.catalog.length })
        break
      case "Hello":
        break
    }
  }

  /** Apply a new allowlist; returns the sessions to close. */
  setAllowlist(names: Iterable<Names.PlayerName>, now: number): { readonly change: AllowlistChange; readonly close: ReadonlyArray<Transport.PlayerSession> } {
    const change = this.registry.diff(names)
    const close: Array<Transport.PlayerSession> = []
    for (const name of change.added) {
      this.registry.add(name)
      this.queue.setPlayer(name)
    }
    for (const name of change.removed) {
      const p = this.registry.remove(name)
      if (p?.session !== undefined) close.push(p.session)
      const why = `player ${name} was removed from the allowlist`
      for (const e of this.queue.removePlayer(name)) {
        const task = e.value
        task.queued = undefined
        this.endSynthetic(task, "HOST_ERROR", why, now, name)
      }
      for (const a of [...(this.assigned.get(name) ?? [])]) {
        if (!a.ending) this.endSynthetic(a.task, "HOST_ERROR", why, now)
      }
    }
    return { change, close }
  }

  assignment(a: AttemptEntry): Protocol.Assignment {
    const req = a.task.job.request
    return req.deadline === undefined
      ? { ref: a.ref, score: req.score, params: req.params }
      : { ref: a.ref, score: req.score, params: req.params, deadline: req.deadline }
  }

  // ---- the loops ----------------------------------------------------------

  /** Record dispatches of attempts (one batch when the store takes batches); one result each. */
  recordDispatches(attempts: ReadonlyArray<AttemptEntry>): Effect.Effect<ReadonlyArray<Either.Either<void, Errors.StoreError>>> {
    const store = this.store
    // called as methods: a store may be an object whose methods use `this`
    return eachWrite(
      store.recordDispatches === undefined ? undefined : (ds) => store.recordDispatches!(ds),
      (d) => store.recordDispatch(d),
      attempts.map((a): Store.Dispatched => ({ ref: a.ref, player: a.player, at: a.dispatchedAt })),
      "recordDispatch"
    )
  }

  /** One turn of the dispatch loop. */
  dispatchBatch(items: ReadonlyArray<OutItem>): Effect.Effect<void> {
    const self = this
    return Effect.gen(function*() {
      self.dispatchTurns++
      const seen = new Set<AttemptEntry>()
      const toRecord: Array<AttemptEntry> = []
      for (const item of items) {
        const a = item.attempt
        if (item._tag === "Dispatch" && !a.durable && !a.ending && !seen.has(a)) {
          seen.add(a)
          toRecord.push(a)
        }
      }
      const recorded = yield* self.recordDispatches(toRecord)
      const failed: Array<AttemptEntry> = []
      let firstError: unknown
      recorded.forEach((r, i) => {
        const a = toRecord[i]!
        if (Either.isRight(r)) {
          a.durable = true
          self.emit({
            type: "task.dispatched",
            at: a.dispatchedAt,
            job: a.ref.job,
            score: a.task.job.request.score,
            key: a.ref.key,
            attempt: a.ref.attempt,
            player: a.player
          })
        } else {
          failed.push(a)
          firstError ??= r.left
        }
      })
      if (failed.length > 0) {
        yield* Effect.logError("could not record dispatches; retrying").pipe(
          Effect.annotateLogs({ count: failed.length, error: describe(firstError) })
        )
        self.fork(
          Effect.sleep(self.storeRetryMs).pipe(
            Effect.zipRight(Effect.sync(() => {
              for (const a of failed) if (!a.ending && !a.durable) self.out.unsafeOffer({ _tag: "Dispatch", attempt: a })
            }))
          )
        )
      }
      const perPlayer = new Map<Names.PlayerName, { runs: Array<Protocol.Assignment>; cancels: Array<Names.TaskRef> }>()
      const bucket = (name: Names.PlayerName) => {
        let b = perPlayer.get(name)
        if (b === undefined) {
          b = { runs: [], cancels: [] }
          perPlayer.set(name, b)
        }
        return b
      }
      for (const item of items) {
        const a = item.attempt
        const session = self.registry.get(a.player)?.session
        if (item._tag === "Dispatch") {
          if (!a.durable || a.ending || a.sent || session === undefined) continue
          a.sent = true
          self.assignmentsSent++
          bucket(a.player).runs.push(self.assignment(a))
        } else if (session !== undefined && a.sent) {
          bucket(a.player).cancels.push(a.ref)
        }
      }
      yield* Effect.forEach(
        perPlayer,
        ([name, b]) => {
          const session = self.registry.get(name)?.session
          if (session === undefined) return Effect.void
          const messages: Array<Protocol.ToPlayer> = []
          for (const c of chunksOf(b.runs, self.maxTasksPerRun)) if (c.length > 0) messages.push(new Protocol.Run({ tasks: c }, trusted))
          if (b.cancels.length > 0) messages.push(new Protocol.Cancel({ refs: b.cancels }, trusted))
          return Effect.forEach(messages, (m) => session.send(m), { discard: true })
        },
        { discard: true }
      )
    })
  }

  /** One turn of the ingest loop. */
  ingestBatch(items: ReadonlyArray<IngestItem>): Effect.Effect<void> {
    const self = this
    return Effect.gen(function*() {
      self.ingestTurns++
      interface PendingEnd {
        readonly a: AttemptEntry
        readonly ended: Store.Ended
        readonly session: Transport.PlayerSession | undefined
        readonly synthetic: IngestItem | undefined
      }
      const ends: Array<PendingEnd> = []
      const needDispatch: Array<AttemptEntry> = []
      const starts: Array<{ readonly ref: Names.TaskRef; readonly at: number }> = []
      const startedAttempts: Array<AttemptEntry> = []
      const finishes: Array<Extract<IngestItem, { _tag: "Finish" }>> = []
      const acks = new Map<Transport.PlayerSession, Array<Names.TaskRef>>()
      const ackLater = (session: Transport.PlayerSession, ref: Names.TaskRef) => {
        let refs = acks.get(session)
        if (refs === undefined) {
          refs = []
          acks.set(session, refs)
        }
        refs.push(ref)
      }
      for (const item of items) {
        switch (item._tag) {
          case "Results":
            for (const r of item.results) {
              const a = self.index.get(Names.taskRefString(r.ref))
              if (a === undefined || a.ending || a.player !== item.player) {
                ackLater(item.session, r.ref)
                continue
              }
              a.ending = true
              a.task.phase = a.task.phase === "ended" ? "ended" : "ending"
              if (!a.durable) needDispatch.push(a)
              const ended: Store.Ended = {
                ref: a.ref,
                player: a.player,
                outcome: r.outcome,
                response: r.response,
                log: r.log,
                finishedAt: r.finishedAt,
                ...(r.startedAt === undefined ? {} : { startedAt: r.startedAt })
              }
              ends.push({ a, ended, session: item.session, synthetic: undefined })
            }
            break
          case "Started":
            for (const t of item.tasks) {
              const a = self.index.get(Names.taskRefString(t.ref))
              if (a !== undefined && !a.ending && a.player === item.player) {
                starts.push(t)
                startedAttempts.push(a)
              }
            }
            break
          case "End": {
            const a = item.attempt
            if (self.index.get(a.id) !== a) break
            if (!a.durable) needDispatch.push(a)
            ends.push({
              a,
              ended: { ref: a.ref, player: a.player, outcome: item.outcome, response: {}, log: item.log, finishedAt: item.at },
              session: undefined,
              synthetic: item
            })
            break
          }
          case "Finish":
            finishes.push(item)
            yield* Effect.logDebug("job finished").pipe(
              Effect.annotateLogs({ job: item.id, state: item.state, ...(item.reason === undefined ? {} : { reason: item.reason }) })
            )
            break
        }
      }

      if (needDispatch.length > 0) {
        const recorded = yield* self.recordDispatches(needDispatch)
        for (const [i, r] of recorded.entries()) {
          const a = needDispatch[i]!
          if (Either.isRight(r)) a.durable = true
          else yield* Effect.logError("could not record a dispatch").pipe(Effect.annotateLogs({ task: a.id, error: r.left.message }))
        }
      }

      // Every write of the turn at once (one batch per kind), so the store commits them together;
      // an end whose dispatch is still not recorded is not recorded either.
      const durableEnds = ends.filter((e) => e.a.durable)
      const store = self.store
      const [endResults, startResults, finishResults] = yield* Effect.all([
        eachWrite(
          store.recordEnds === undefined ? undefined : (es) => store.recordEnds!(es),
          (e) => store.recordEnd(e),
          durableEnds.map((e) => e.ended),
          "recordEnd"
        ),
        eachWrite(
          store.recordStarts === undefined ? undefined : (ss) => store.recordStarts!(ss),
          (st) => store.recordStart(st.ref, st.at),
          starts,
          "recordStart"
        ),
        eachWrite(
          store.finishJobs === undefined ? undefined : (fs) => store.finishJobs!(fs),
          (f) => store.finishJob(f.id, f.state, f.at, f.reason),
          finishes,
          "finishJob"
        )
      ], { concurrency: "unbounded" })
      for (const [i, r] of startResults.entries()) {
        if (Either.isLeft(r)) {
          yield* Effect.logWarning("could not record a start").pipe(Effect.annotateLogs({ error: r.left.message }))
          continue
        }
        const a = startedAttempts[i]!
        self.emit({
          type: "task.started",
          at: starts[i]!.at,
          job: a.ref.job,
          score: a.task.job.request.score,
          key: a.ref.key,
          attempt: a.ref.attempt,
          player: a.player
        })
      }
      const finishRetry: Array<IngestItem> = []
      const finishedJobs: Array<Events.Body> = []
      for (const [i, r] of finishResults.entries()) {
        const f = finishes[i]!
        if (Either.isRight(r)) {
          finishedJobs.push({
            type: "job.finished",
            at: f.at,
            job: f.id,
            score: f.score,
            targets: f.targets,
            state: f.state,
            ...(f.reason === undefined ? {} : { reason: f.reason })
          })
          continue
        }
        yield* Effect.logError("could not record a finished job; retrying").pipe(Effect.annotateLogs({ job: f.id, error: r.left.message }))
        finishRetry.push(f)
      }
      if (finishRetry.length > 0) {
        self.fork(Effect.sleep(self.storeRetryMs).pipe(Effect.zipRight(Effect.sync(() => {
          for (const f of finishRetry) self.ingest.unsafeOffer(f)
        }))))
      }
      const byEnd = new Map<PendingEnd, Either.Either<boolean, Errors.StoreError>>()
      durableEnds.forEach((e, i) => byEnd.set(e, endResults[i]!))

      const done: Array<PendingEnd> = []
      const retry: Array<IngestItem> = []
      const taskFinished: Array<Events.Body> = []
      ends.forEach((e) => {
        const r = byEnd.get(e)
        if (r !== undefined && Either.isRight(r)) {
          self.endsRecorded++
          done.push(e)
          if (r.right) {
            taskFinished.push({
              type: "task.finished",
              at: e.ended.finishedAt,
              job: e.a.ref.job,
              score: e.a.task.job.request.score,
              key: e.a.ref.key,
              attempt: e.a.ref.attempt,
              player: e.a.player,
              outcome: e.ended.outcome
            })
          }
          if (e.session !== undefined) ackLater(e.session, e.ended.ref)
        } else if (e.synthetic !== undefined) {
          retry.push(e.synthetic)
        } else {
          // not recorded: the player sends it again, and it is taken then
          e.a.ending = false
          if (e.a.task.phase === "ending") e.a.task.phase = "assigned"
        }
      })
      if (done.length < ends.length) {
        yield* Effect.logError("could not record results; they will be retried").pipe(
          Effect.annotateLogs({ count: ends.length - done.length })
        )
      }
      if (retry.length > 0) {
        self.fork(Effect.sleep(self.storeRetryMs).pipe(Effect.zipRight(Effect.sync(() => {
          for (const item of retry) self.ingest.unsafeOffer(item)
        }))))
      }

      yield* Effect.forEach(
        acks,
        ([session, refs]) =>
          Effect.forEach(chunksOf(refs, self.maxRefsPerAck), (c) => session.send(new Protocol.Ack({ refs: c }, trusted)), { discard: true }),
        { discard: true }
      )

      if (done.length > 0) {
        const now = yield* Clock.currentTimeMillis
        for (const e of done) {
          self.onEnded(e.a, e.ended.outcome, e.ended.response, e.ended.finishedAt, now)
        }
      }
      // Once the engine has taken them in (a reader then sees `holds` up to date), outcomes
      // first, then the jobs that finished: a job's last outcomes come before its end.
      for (const e of taskFinished) self.emit(e)
      for (const e of finishedJobs) self.emit(e)
    })
  }
}

/**
 * Resume after the I/O callbacks of the current turn of the event loop (a
 * `setImmediate`), or at `until` (performance.now() time) if that is later
 * (a timer: the event loop sleeps or serves I/O meanwhile). Wall-clock
 * time, not the Effect clock.
 */
const afterIo = (until: number): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const wait = until - performance.now()
    if (wait <= 0) {
      const handle = setImmediate(() => resume(Effect.void))
      return Effect.sync(() => clearImmediate(handle))
    }
    const timer = setTimeout(() => resume(Effect.void), Math.ceil(wait))
    return Effect.sync(() => clearTimeout(timer))
  })

const loop = <A>(
  queue: Queue.Queue<A>,
  name: string,
  minIntervalMs: number,
  turn: (items: ReadonlyArray<A>) => Effect.Effect<void>
) => {
  let lastStart = Number.NEGATIVE_INFINITY
  let lastUse = performance.eventLoopUtilization()
  return Effect.gen(function*() {
    const first = yield* Queue.take(queue)
    // Everything queued by the other callbacks of this turn of the event loop joins this batch; and
    // when the event loop has been busy since the last turn (under load), so does everything until
    // `minIntervalMs` after the last turn started. When it has been mostly idle, no waiting: low
    // load keeps low latency.
    const busy = performance.eventLoopUtilization(lastUse).utilization > 0.5
    yield* afterIo(busy ? lastStart + minIntervalMs : 0)
    lastStart = performance.now()
    lastUse = performance.eventLoopUtilization()
    const rest = yield* Queue.takeAll(queue)
    const items = rest.length === 0 ? [first] : [first, ...Chunk.toReadonlyArray(rest)]
    yield* turn(items).pipe(
      Effect.catchAllCause((cause) => Effect.logError(`${name} loop turn failed`, cause))
    )
  }).pipe(Effect.forever)
}

/** Make an engine; its loops run until the scope closes. */
export const make = (options: EngineOptions): Effect.Effect<EngineService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const ingest = yield* Queue.unbounded<IngestItem>()
    const out = yield* Queue.unbounded<OutItem>()
    const fibers = yield* FiberSet.make<unknown, unknown>()
    const run = yield* FiberSet.runtime(fibers)<never>()
    const fork: Fork = (effect) => run(effect) as never
    const impl = new EngineImpl(options, ingest, out, fork)
    const minInterval = Math.max(0, options.minTurnIntervalMs ?? 1)
    yield* Effect.forkScoped(loop(out, "dispatch", minInterval, (items) => impl.dispatchBatch(items)))
    yield* Effect.forkScoped(loop(ingest, "ingest", minInterval, (items) => impl.ingestBatch(items)))
    yield* Effect.addFinalizer(() => Effect.all([Queue.shutdown(ingest), Queue.shutdown(out)]))

    const admit: Transport.Admit = (hello, peer) =>
      Effect.gen(function*() {
        const p = impl.registry.get(hello.player)
        if (p === undefined || !p.allowlisted) {
          const reason = `player "${hello.player}" is not on the allowlist`
          yield* Effect.logWarning("session refused").pipe(Effect.annotateLogs({ player: hello.player, peer: peer.address, reason }))
          return yield* new Errors.SessionRefused({ reason })
        }
        if (p.claim !== undefined) {
          const reason = `player "${hello.player}" already has a live session${p.address === undefined ? "" : ` from ${p.address}`}`
          yield* Effect.logWarning("session refused").pipe(Effect.annotateLogs({ player: hello.player, peer: peer.address, reason }))
          return yield* new Errors.SessionRefused({ reason })
        }
        const claim = {}
        p.claim = claim
        let connected = false
        yield* Effect.addFinalizer(() =>
          Effect.flatMap(Clock.currentTimeMillis, (at) =>
            Effect.sync(() => {
              impl.sessionEnded(p, claim)
              if (connected) impl.emit({ type: "player.disconnected", at, player: p.name })
            })
          ).pipe(
            Effect.zipRight(Effect.logInfo("player disconnected").pipe(Effect.annotateLogs({ player: p.name, peer: peer.address })))
          )
        )
        return (session: Transport.PlayerSession) =>
          Effect.gen(function*() {
            const now = yield* Clock.currentTimeMillis
            const first = impl.sessionStarted(p, claim, session, now)
            if (first === undefined) {
              yield* session.close(`player "${p.name}" is not on the allowlist`)
              return
            }
            connected = true
            impl.emit({ type: "player.connected", at: now, player: p.name, slots: session.hello.slots, address: session.peer.address })
            yield* Effect.logInfo("player connected").pipe(
              Effect.annotateLogs({ player: p.name, peer: peer.address, slots: session.hello.slots, scores: session.hello.catalog.length })
            )
            yield* Effect.forEach(first, (m) => session.send(m), { discard: true })
            yield* session.incoming.pipe(
              Stream.runForEachChunk((chunk) =>
                Effect.sync(() => {
                  for (const msg of chunk) impl.onMessage(p, session, msg)
                })
              )
            )
          })
      })

    const service: EngineService = {
      submit: (job) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.sync(() => {
            if (!impl.start(job, now)) return
            impl.emit({
              type: "job.submitted",
              at: job.createdAt,
              job: job.id,
              score: job.request.score,
              policy: job.request.policy.name,
              targets: [...new Set(job.targets)]
            })
          })),
      admit,
      recover: Effect.gen(function*() {
        const jobs = yield* options.store.unfinishedJobs
        const now = yield* Clock.currentTimeMillis
        for (const rec of jobs) impl.recoverJob(rec, now)
        if (jobs.length > 0) yield* Effect.logInfo("resumed unfinished jobs").pipe(Effect.annotateLogs({ jobs: jobs.length }))
        return jobs.length
      }),
      setAllowlist: (names) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const { change, close } = impl.setAllowlist(names, now)
          for (const name of change.removed) {
            yield* Effect.logWarning("player removed from the allowlist").pipe(Effect.annotateLogs({ player: name }))
          }
          for (const name of change.added) {
            yield* Effect.logInfo("player added to the allowlist").pipe(Effect.annotateLogs({ player: name }))
          }
          yield* Effect.forEach(close, (s) => s.close(`player "${s.player}" was removed from the allowlist`), { discard: true })
          return change
        }),
      isAllowed: (name) => impl.registry.isAllowed(name),
      allowlist: () => impl.registry.allowlist,
      player: (name) => {
        const e = impl.registry.get(name)
        return e === undefined ? undefined : impl.info(e)
      },
      players: () => impl.registry.entriesList().map((e) => impl.info(e)),
      holds: (id) => impl.jobs.has(id),
      cancel: (id, reason) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => impl.cancelJob(id, reason ?? "cancelled", now))),
      stats: Effect.sync(() => ({
        jobs: impl.jobs.size,
        queued: impl.queue.size,
        openAttempts: impl.index.size,
        playersOnline: impl.registry.entriesList().filter((e) => e.session !== undefined).length,
        dispatchTurns: impl.dispatchTurns,
        assignmentsSent: impl.assignmentsSent,
        ingestTurns: impl.ingestTurns,
        endsRecorded: impl.endsRecorded,
        unfinishedJobs: impl.unfinished
      }))
    }
    return service
  })

/** The engine as a layer. */
export const layer = (options: EngineOptions): Layer.Layer<Engine> => Layer.scoped(Engine, make(options))

export { PlayerEntry }
