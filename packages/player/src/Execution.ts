/**
 * Execution of one task: spawn the score's executable directly (no shell),
 * in its own process group, with a clean environment built from its
 * manifest; feed and read it according to its interface (`env`, `pipe`,
 * `json`); enforce its timeout and the job's deadline; honour a
 * cancellation; and turn what happened into a `TaskResult`.
 *
 * `run` never fails: every way a task can end is an outcome.
 *
 * - exit 0 → `OK`, any other exit status → `FAIL` (the status is noted in
 *   the log, the response stays what the score printed);
 * - death by a signal the player did not send → `UNKNOWN_FAILURE`;
 * - the score's timeout or the job's deadline → `TIMEOUT`, a cancellation →
 *   `CANCELLED`: SIGTERM to the whole process group, SIGKILL after the grace
 *   period;
 * - the executable or its workdir missing, not executable, a user that
 *   cannot be switched to → `HOST_ERROR`.
 *
 * The outcome is decided only after the process has exited AND its stdout
 * and stderr have ended, so a `pipe` score's last lines are never lost. If a
 * background process the score left behind keeps those pipes open, reading
 * stops one grace period after the score exited, and the log says so.
 *
 * @since 0.1.0
 */
import type { Catalog, Json, Names, Protocol } from "@orchestra/core"
import { Names as N } from "@orchestra/core"
import { Clock, Deferred, Duration, Effect, Exit, Option } from "effect"
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Env from "./internal/env.js"
import { JsonCollector, LogCapture, PipeParser } from "./internal/output.js"
import * as Proc from "./internal/proc.js"
import * as Users from "./internal/users.js"

/** What the player needs to know about a score to run it (from its manifest, resolved). */
export interface ScoreSpec {
  readonly name: Names.ScoreName
  /** Absolute path of the executable. */
  readonly executable: string
  readonly interface: Catalog.Interface
  /** `PATH` of the score; {@link Env.DEFAULT_PATH} when absent. */
  readonly path?: string | undefined
  /** Working directory; the directory of the executable when absent. */
  readonly workdir?: string | undefined
  /** User to run as (name or uid); needs the player to run as root. */
  readonly user?: string | undefined
  /** Fixed environment variables. */
  readonly variables: Readonly<Record<string, string>>
  /** Time limit in milliseconds; none when absent. */
  readonly timeoutMs?: number | undefined
  /** Limit of the captured log and of the protocol output on stdout, in bytes. */
  readonly maxOutputBytes: number
}

/** The score's process, just after it was started. */
export interface Spawned {
  readonly pid: number
  /** Start time from /proc/<pid>/stat, so a recycled pid is never taken for this process. */
  readonly startTime: string | undefined
  /** Epoch milliseconds. */
  readonly at: number
}

export interface Request {
  readonly assignment: Protocol.Assignment
  readonly player: Names.PlayerName
  readonly score: ScoreSpec
  /** Time between SIGTERM and SIGKILL, and how long to wait for output after the score exited. */
  readonly killGraceMs: number
  /** Completes when the task is to be cancelled. */
  readonly cancelled: Effect.Effect<void>
  /** Called once the process exists (to journal its pid, send `Started`, watch it). */
  readonly onSpawned: (spawned: Spawned) => Effect.Effect<void>
}

/** The error response of an outcome the player decided. */
const errorResponse = (error: string, extra: Json.JsonObject = {}): Json.JsonObject => ({ error, ...extra })

const formatMs = (ms: number): string =>
  ms % 1000 === 0 ? `${ms / 1000}s` : ms > 1000 ? `${(ms / 1000).toFixed(1)}s` : `${ms}ms`

type Ended =
  | { readonly _tag: "Exited" }
  | { readonly _tag: "TimedOut"; readonly byDeadline: boolean; readonly afterMs: number }
  | { readonly _tag: "Cancelled" }

interface ExitInfo {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

const describeSpawnError = (e: unknown, executable: string, cwd: string, user?: string): string => {
  const err = e as NodeJS.ErrnoException
  if (user !== undefined && (err.code === "EACCES" || err.code === "EPERM")) {
    return `cannot start ${executable} as user ${JSON.stringify(user)}: ${err.code === "EACCES" ? "permission denied" : "operation not permitted"} (the executable, its directory and the workdir ${cwd} must be accessible to that user)`
  }
  switch (err.code) {
    case "ENOENT":
      return fs.existsSync(executable)
        ? `cannot start ${executable}: its interpreter (#! line) or a library was not found`
        : `cannot start ${executable}: no such file`
    case "EACCES":
      return `cannot start ${executable}: permission denied (is it executable?)`
    case "ENOEXEC":
      return `cannot start ${executable}: not an executable format (missing #! line?)`
    case "ENOTDIR":
      return `cannot start ${executable}: workdir ${cwd} is not a directory`
    case "EPERM":
      return `cannot start ${executable}: operation not permitted (${err.message})`
    default:
      return `cannot start ${executable}: ${err.message ?? String(e)}`
  }
}

/** Check what can be checked before spawning; a reason when the task cannot start. */
const preflight = (
  score: ScoreSpec
): { readonly cwd: string; readonly ids: Users.UserIds | undefined } | { readonly hostError: string } => {
  const cwd = score.workdir ?? path.dirname(score.executable)
  try {
    if (!fs.statSync(cwd).isDirectory()) return { hostError: `workdir ${cwd} is not a directory` }
  } catch {
    return { hostError: `workdir ${cwd} does not exist` }
  }
  if (score.user === undefined) return { cwd, ids: undefined }
  const ids = Users.lookup(score.user)
  if (ids === undefined) return { hostError: `user ${JSON.stringify(score.user)} does not exist on this host` }
  const me = Users.currentUid()
  if (me === ids.uid) return { cwd, ids: undefined }
  if (me !== 0) {
    return {
      hostError: `the score must run as user ${JSON.stringify(score.user)} but the player is not running as root (uid ${me})`
    }
  }
  return { cwd, ids }
}

/**
 * Run one task to its end. Never fails; the result carries the outcome.
 * The caller has already checked that the score exists and the parameters
 * pass its manifest.
 */
export const run = (request: Request): Effect.Effect<Protocol.TaskResult> =>
  Effect.gen(function*() {
    const { assignment, score } = request
    const ref = assignment.ref
    const now = yield* Clock.currentTimeMillis
    const result = (
      outcome: Protocol.TaskResult["outcome"],
      response: Json.JsonObject,
      log: string,
      startedAt: number | undefined
    ) =>
      Effect.map(Clock.currentTimeMillis, (finishedAt): Protocol.TaskResult => ({
        ref,
        outcome,
        response,
        log,
        ...(startedAt === undefined ? {} : { startedAt }),
        finishedAt
      }))

    if (assignment.deadline !== undefined && now >= assignment.deadline) {
      return yield* result("TIMEOUT", errorResponse("the job's deadline passed before the task could start"), "", undefined)
    }
    const pre = preflight(score)
    if ("hostError" in pre) return yield* result("HOST_ERROR", errorResponse(pre.hostError), "", undefined)

    const env = Env.build({
      path: score.path,
      variables: score.variables,
      params: score.interface === "json" ? undefined : assignment.params,
      task: {
        taskId: N.taskRefString(ref),
        attempt: ref.attempt,
        jobId: ref.job,
        score: score.name,
        player: request.player,
        deadline: assignment.deadline
      }
    })

    const exited = yield* Deferred.make<ExitInfo>()
    const closed = yield* Deferred.make<void>()
    const spawnError = yield* Deferred.make<unknown>()
    const log = new LogCapture(score.maxOutputBytes)
    const pipe = score.interface === "pipe" ? new PipeParser(score.maxOutputBytes, log) : undefined
    const json = score.interface === "json" ? new JsonCollector(score.maxOutputBytes) : undefined

    let child: ChildProcess.ChildProcess
    try {
      child = ChildProcess.spawn(score.executable, [], {
        cwd: pre.cwd,
        env,
        detached: true,
        stdio: [score.interface === "json" ? "pipe" : "ignore", "pipe", "pipe"],
        ...(pre.ids === undefined ? {} : { uid: pre.ids.uid, gid: pre.ids.gid })
      })
    } catch (e) {
      return yield* result("HOST_ERROR", errorResponse(describeSpawnError(e, score.executable, pre.cwd, pre.ids?.name)), "", undefined)
    }
    child.on("error", (e) => Deferred.unsafeDone(spawnError, Exit.succeed(e)))
    child.on("exit", (code, signal) => Deferred.unsafeDone(exited, Exit.succeed({ code, signal })))
    child.on("close", () => Deferred.unsafeDone(closed, Exit.void))
    const pid = child.pid
    if (pid === undefined) {
      const e = yield* Deferred.await(spawnError)
      child.stdout?.destroy()
      child.stderr?.destroy()
      child.stdin?.destroy()
      return yield* result("HOST_ERROR", errorResponse(describeSpawnError(e, score.executable, pre.cwd, pre.ids?.name)), "", undefined)
    }
    // Read the start time at once: the child cannot have been reaped yet.
    const startTime = Proc.readStat(pid)?.startTime
    const startedAt = yield* Clock.currentTimeMillis

    child.stdout!.on("data", (chunk: Buffer) => {
      if (pipe !== undefined) pipe.write(chunk)
      else if (json !== undefined) json.write(chunk)
      else log.append(chunk)
    })
    child.stderr!.on("data", (chunk: Buffer) => log.append(chunk))
    if (child.stdin) {
      // a score that does not read its stdin must not break the player
      child.stdin.on("error", () => {})
      child.stdin.end(JSON.stringify(assignment.params))
    }

    yield* request.onSpawned({ pid, startTime, at: startedAt })

    const notes: Array<string> = []
    const grace = Duration.millis(request.killGraceMs)

    /** After the score exited: wait for its output to end, at most one grace period. */
    const drain = Effect.gen(function*() {
      const done = yield* Deferred.await(closed).pipe(Effect.timeoutOption(grace))
      if (Option.isNone(done)) {
        notes.push(
          `stdout/stderr still open ${formatMs(request.killGraceMs)} after the score exited (a background process holds them); stopped reading`
        )
        child.stdout?.destroy()
        child.stderr?.destroy()
      }
    })

    const limits: Array<{ readonly ms: number; readonly byDeadline: boolean }> = []
    if (score.timeoutMs !== undefined) limits.push({ ms: score.timeoutMs, byDeadline: false })
    if (assignment.deadline !== undefined) limits.push({ ms: Math.max(0, assignment.deadline - startedAt), byDeadline: true })
    limits.sort((a, b) => a.ms - b.ms)
    const limit = limits[0]

    const natural: Effect.Effect<Ended> = Effect.zipRight(
      Effect.zipRight(Deferred.await(exited), drain),
      Effect.succeed({ _tag: "Exited" } as const)
    )
    const timer: Effect.Effect<Ended> = limit === undefined
      ? Effect.never
      : Effect.as(Effect.sleep(Duration.millis(limit.ms)), {
        _tag: "TimedOut",
        byDeadline: limit.byDeadline,
        afterMs: score.timeoutMs !== undefined && !limit.byDeadline ? score.timeoutMs : limit.ms
      } as const)
    const cancel: Effect.Effect<Ended> = Effect.as(request.cancelled, { _tag: "Cancelled" } as const)

    // If the player itself stops (the fiber is interrupted), the score is stopped too.
    const terminate = Effect.gen(function*() {
      Proc.signalGroup(pid, "SIGTERM")
      const gone = yield* Deferred.await(exited).pipe(Effect.timeoutOption(grace))
      if (Option.isNone(gone)) Proc.signalGroup(pid, "SIGKILL")
    })
    const ended = yield* Effect.raceAll([natural, timer, cancel]).pipe(Effect.onInterrupt(() => terminate))

    if (ended._tag !== "Exited") {
      // Stop the whole process group: SIGTERM, then SIGKILL after the grace period.
      const why = ended._tag === "Cancelled" ? "cancelled" : ended.byDeadline ? "job deadline reached" : `timed out after ${formatMs(ended.afterMs)}`
      Proc.signalGroup(pid, "SIGTERM")
      notes.push(`${why}: sent SIGTERM to the process group`)
      const gone = yield* Effect.all([Deferred.await(exited), Deferred.await(closed)]).pipe(Effect.timeoutOption(grace))
      if (Option.isNone(gone)) {
        Proc.signalGroup(pid, "SIGKILL")
        notes.push(`still running ${formatMs(request.killGraceMs)} later: sent SIGKILL to the process group`)
        yield* Deferred.await(exited)
        yield* drain
      }
      const response = ended._tag === "Cancelled"
        ? errorResponse("cancelled")
        : errorResponse(ended.byDeadline ? "the job's deadline was reached while the task ran" : `timed out after ${formatMs(ended.afterMs)}`)
      return yield* result(ended._tag === "Cancelled" ? "CANCELLED" : "TIMEOUT", response, log.text(notes), startedAt)
    }

    const exit = yield* Deferred.await(exited)
    if (exit.signal !== null) {
      notes.push(`killed by signal ${exit.signal}`)
      return yield* result("UNKNOWN_FAILURE", errorResponse(`killed by signal ${exit.signal}`), log.text(notes), startedAt)
    }
    const code = exit.code ?? -1
    if (code !== 0) notes.push(`exit status ${code}`)
    const statusOutcome = code === 0 ? "OK" as const : "FAIL" as const

    if (pipe !== undefined) {
      pipe.end()
      if (pipe.overflow) {
        return yield* result(
          "FAIL",
          errorResponse(`stdout exceeds maxOutputBytes (${score.maxOutputBytes} bytes)`),
          log.text(notes),
          startedAt
        )
      }
      return yield* result(statusOutcome, { ...pipe.response }, log.text(notes), startedAt)
    }
    if (json !== undefined) {
      if (json.overflow) {
        return yield* result(
          "FAIL",
          errorResponse(`stdout exceeds maxOutputBytes (${score.maxOutputBytes} bytes)`),
          log.text(notes),
          startedAt
        )
      }
      const text = json.text()
      if (text.trim() === "") {
        return yield* result(
          "FAIL",
          code === 0 ? errorResponse("expected a JSON object on stdout, got nothing") : {},
          log.text(notes),
          startedAt
        )
      }
      let parsed: unknown
      try {
        parsed = JSON.parse(text)
      } catch (e) {
        return yield* result(
          "FAIL",
          errorResponse(`stdout is not valid JSON: ${e instanceof Error ? e.message : String(e)}`),
          log.text(notes),
          startedAt
        )
      }
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        const kind = parsed === null ? "null" : Array.isArray(parsed) ? "an array" : `a ${typeof parsed}`
        return yield* result(
          "FAIL",
          errorResponse(`stdout is ${kind}, expected a JSON object`),
          log.text(notes),
          startedAt
        )
      }
      return yield* result(statusOutcome, parsed as Json.JsonObject, log.text(notes), startedAt)
    }
    return yield* result(statusOutcome, {}, log.text(notes), startedAt)
  })
