/**
 * Schedule documents: run a job or a pipeline at the times a cron
 * expression gives, in a time zone.
 *
 * ```yaml
 * name: nightly-release
 * cron: "30 2 * * *"          # minute hour day-of-month month day-of-week
 * timezone: Europe/Berlin     # IANA name; default UTC
 * pipeline: ../pipelines/release.yaml   # relative to this file
 * params: { ref: main }
 * overlap: skip               # or queue
 * missed: run-once            # or skip
 * ```
 *
 * or, instead of `pipeline` and `params`, `job:` — a job as in a pipeline
 * (score, players or selector, policy, params, retry, deadline, labels),
 * without `needs`.
 *
 * Times are wall-clock times in the time zone, each fired once: a time
 * that does not exist on the day clocks go forward fires the same amount
 * of time after the gap (02:30 becomes 03:30); a time that happens twice
 * when clocks go back fires the first time only.
 *
 * - `overlap` — at a fire time while the schedule's previous run is still
 *   going: `skip` it, or `queue` it to start when the previous run ends
 *   (fire times that come while one is queued join it: at most one queued).
 * - `missed` — fire times that passed while nothing could fire them (the
 *   conductor was down; by more than the grace, default one minute):
 *   `skip` them, or `run-once`: one run, at start-up, for all of them.
 *
 * {@link due} is the pure decision; `Scheduler` runs it.
 *
 * @since 0.1.0
 */
import type { FileSystem } from "@effect/platform"
import type { Job } from "@orchestra/core"
import { Errors, Json } from "@orchestra/core"
import { Yaml } from "@orchestra/manifest"
import { Cron, DateTime, Effect, Either, Option, Schema } from "effect"
import * as path from "node:path"
import * as Spec from "./internal/spec.js"
import * as PipelineModule from "./Pipeline.js"
import * as PipelineRun from "./PipelineRun.js"

/** A schedule document that is not valid; lists every issue. */
export class ScheduleError extends Schema.TaggedError<ScheduleError>()("ScheduleError", {
  file: Schema.String,
  message: Schema.String,
  issues: Schema.Array(Errors.Issue)
}) {}

export const scheduleError = (file: string, issues: ReadonlyArray<Errors.Issue>): ScheduleError =>
  new ScheduleError({
    file,
    message: issues.length === 1
      ? `invalid schedule: ${Yaml.formatIssues(issues)}`
      : `invalid schedule (${issues.length} issues):\n${Yaml.formatIssues(issues)}`,
    issues: [...issues]
  })

export const Overlap = Schema.Literal("skip", "queue")
export type Overlap = typeof Overlap.Type

export const Missed = Schema.Literal("skip", "run-once")
export type Missed = typeof Missed.Type

/** The format of a schedule document. */
export const Document = Schema.Struct({
  name: Schema.String,
  description: Schema.optional(Schema.String),
  /** Five fields: minute, hour, day of month, month, day of week. */
  cron: Schema.String,
  /** IANA time zone the cron expression is read in. Default UTC. */
  timezone: Schema.optional(Schema.String),
  job: Schema.optional(Spec.JobSpec),
  /** A pipeline file, relative to the schedule file. */
  pipeline: Schema.optional(Schema.String.pipe(Schema.minLength(1))),
  /** The pipeline's params. */
  params: Schema.optional(Json.JsonObject),
  overlap: Schema.optional(Overlap),
  missed: Schema.optional(Missed)
})
export type Document = typeof Document.Type

/** What a schedule runs. */
export type Target =
  | { readonly _tag: "Job"; readonly job: Spec.JobSpec }
  | {
    readonly _tag: "Pipeline"
    /** The pipeline file, absolute (resolved against the schedule file's directory). */
    readonly file: string
    /** As written in the schedule. */
    readonly written: string
    readonly params: Json.JsonObject
  }

/** A valid schedule. */
export interface Schedule {
  readonly name: string
  readonly description: string | undefined
  readonly file: string
  /** The cron expression as written. */
  readonly expression: string
  readonly timezone: string
  readonly cron: Cron.Cron
  readonly target: Target
  readonly overlap: Overlap
  readonly missed: Missed
}

/** Parse a cron expression of exactly five fields in a time zone. */
export const parseCron = (expression: string, timezone: string): Either.Either<Cron.Cron, string> => {
  const fields = expression.trim().split(/\s+/).filter((f) => f.length > 0)
  if (fields.length !== 5) {
    return Either.left(`expected 5 fields (minute hour day-of-month month day-of-week), got ${fields.length} in ${JSON.stringify(expression)}`)
  }
  const zone = DateTime.zoneMakeNamed(timezone)
  if (Option.isNone(zone)) return Either.left(`unknown time zone ${JSON.stringify(timezone)}`)
  const parsed = Either.mapLeft(Cron.parse(fields.join(" "), zone.value), (e) => `${e.message}: ${JSON.stringify(expression)}`)
  return Either.flatMap(parsed, (cron) => {
    try {
      Cron.next(cron, new Date(Date.UTC(2000, 0, 1)))
      return Either.right(cron)
    } catch {
      return Either.left(`${JSON.stringify(expression)} never fires (no such date)`)
    }
  })
}

/** Parse the text of a schedule document (the pipeline file it names is not read: see {@link loadFile}). */
export const parse = (text: string, file: string): Either.Either<Schedule, ScheduleError> => {
  const parsed = Yaml.parse(text, file)
  if (Either.isLeft(parsed)) return Either.left(scheduleError(file, Yaml.yamlErrorToConfigError(parsed.left).issues))
  const doc = parsed.right
  const decoded = Yaml.decodeDocument(Document, doc)
  if (Either.isLeft(decoded)) return Either.left(scheduleError(file, decoded.left.issues))
  const d = decoded.right
  const issues: Array<{ readonly line: number; readonly issue: Errors.Issue }> = []
  const add = (p: Yaml.Path, message: string) => issues.push({ line: doc.lineOf(p) ?? 0, issue: Yaml.issueAt(doc, p, message) })

  const nameProblem = Spec.documentNameProblem(d.name)
  if (nameProblem !== undefined) add(["name"], nameProblem)
  const timezone = d.timezone ?? "UTC"
  let cron: Cron.Cron | undefined
  if (Option.isNone(DateTime.zoneMakeNamed(timezone))) {
    add(["timezone"], `unknown time zone ${JSON.stringify(timezone)} (use an IANA name such as "Europe/Berlin" or "UTC")`)
  } else {
    const c = parseCron(d.cron, timezone)
    if (Either.isLeft(c)) add(["cron"], c.left)
    else cron = c.right
  }
  let target: Target | undefined
  if (d.job !== undefined && d.pipeline !== undefined) {
    add(["pipeline"], "write either `job` or `pipeline`, not both")
  } else if (d.job !== undefined) {
    if (d.params !== undefined) add(["params"], "`params` are the pipeline's; a job's params go under `job.params`")
    if ((d.job.players ?? []).length === 0 && d.job.selector === undefined) {
      add(["job"], "the job targets no player: name `players` or give a `selector`")
    }
    target = { _tag: "Job", job: d.job }
  } else if (d.pipeline !== undefined) {
    target = {
      _tag: "Pipeline",
      file: path.resolve(path.dirname(path.resolve(file)), d.pipeline),
      written: d.pipeline,
      params: d.params ?? {}
    }
  } else {
    add([], "`job` or `pipeline` is required")
  }
  if (issues.length > 0 || cron === undefined || target === undefined) {
    issues.sort((a, b) => a.line - b.line)
    return Either.left(scheduleError(file, issues.map((i) => i.issue)))
  }
  return Either.right({
    name: d.name,
    description: d.description,
    file,
    expression: d.cron,
    timezone,
    cron,
    target,
    overlap: d.overlap ?? "skip",
    missed: d.missed ?? "skip"
  })
}

/**
 * Read and parse a schedule file; for a pipeline schedule, read and parse
 * the pipeline too (the checks that need no catalog) and check the
 * schedule's params against it. Problems of the pipeline are reported
 * with the pipeline file's own lines.
 */
export const loadFile = (
  file: string
): Effect.Effect<{ readonly schedule: Schedule; readonly pipeline: PipelineModule.Pipeline | undefined }, ScheduleError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const text = yield* Yaml.readText(file).pipe(Effect.mapError((e) => scheduleError(file, e.issues)))
    const schedule = yield* parse(text, file)
    if (schedule.target._tag !== "Pipeline") return { schedule, pipeline: undefined }
    const target = schedule.target
    const pipeline = yield* PipelineModule.loadFile(target.file).pipe(
      Effect.mapError((e) => {
        const doc = Yaml.parse(text, file)
        const at = Either.isRight(doc) ? Yaml.issueAt(doc.right, ["pipeline"], "").path : file
        return scheduleError(file, [
          { path: at, message: `pipeline ${target.written} is not valid` },
          ...e.issues
        ])
      })
    )
    const params = PipelineRun.checkParams(pipeline, target.params)
    if (Either.isLeft(params)) {
      const doc = Yaml.parse(text, file)
      return yield* scheduleError(
        file,
        params.left.issues.map((i) => {
          const segments = i.path.replace(/^.*?: params\.?/, "").split(".").filter((s) => s.length > 0)
          return Either.isRight(doc)
            ? Yaml.issueAt(doc.right, ["params", ...segments], i.message)
            : { path: file, message: i.message }
        })
      )
    }
    return { schedule, pipeline }
  })

// ---------------------------------------------------------------------------

/** What {@link due} decided. */
export interface Due {
  /** Fire times to fire now (at most one). */
  readonly fire: ReadonlyArray<Date>
  /**
   * Fire times not fired: passed by more than the grace and skipped
   * (`missed: skip`), or folded into the one run (`missed: run-once`). At
   * most {@link MISSED_LIST_LIMIT} are listed; {@link Due.missedCount}
   * counts them (it stops counting at {@link MISSED_COUNT_LIMIT}).
   */
  readonly missed: ReadonlyArray<Date>
  readonly missedCount: number
  /** The next fire time after `now`. */
  readonly next: Date
  /** The latest fire time up to `now` that this decision handles (fired or missed); `undefined` when none. */
  readonly handledUpTo: Date | undefined
  /** Whether that latest fire time is within the grace of `now` (on time, not missed). */
  readonly onTime: boolean
}

export const MISSED_LIST_LIMIT = 100
export const MISSED_COUNT_LIMIT = 1_000

/** How late a fire time may be and still count as on time (not missed). Default one minute. */
export const DEFAULT_GRACE_MS = 60_000

/**
 * Which fire times to run now. `lastFired` is the latest fire time already
 * handled (`None`: none — nothing is due before `now`, only later times).
 * Fire times after `lastFired` and up to `now` are due: the latest is on
 * time if within `grace` of `now`, the others (and it, when later than
 * that) were missed. `missed: skip` fires only an on-time one;
 * `missed: run-once` fires once, at the latest due time, for all.
 */
export const due = (
  schedule: Pick<Schedule, "cron" | "missed">,
  lastFired: Option.Option<Date>,
  now: Date,
  options?: { readonly graceMs?: number | undefined }
): Due => {
  const grace = options?.graceMs ?? DEFAULT_GRACE_MS
  const next = Cron.next(schedule.cron, now)
  const nothing: Due = { fire: [], missed: [], missedCount: 0, next, handledUpTo: undefined, onTime: false }
  if (Option.isNone(lastFired) || lastFired.value.getTime() >= now.getTime()) return nothing
  const after = lastFired.value
  // the due times, oldest first (only the first ones kept), and the latest
  const listed: Array<Date> = []
  let count = 0
  let latest: Date | undefined
  let capped = false
  for (const t of Cron.sequence(schedule.cron, after)) {
    if (t.getTime() > now.getTime()) break
    if (count >= MISSED_COUNT_LIMIT) {
      capped = true
      break
    }
    count++
    latest = t
    if (listed.length < MISSED_LIST_LIMIT) listed.push(t)
  }
  if (capped) latest = latestUpTo(schedule.cron, after, now) ?? latest
  if (latest === undefined) return nothing
  const last = latest
  const onTime = now.getTime() - last.getTime() <= grace
  const earlier = listed.filter((t) => t.getTime() !== last.getTime())
  const missed = onTime || earlier.length >= MISSED_LIST_LIMIT ? earlier : [...earlier, last]
  const missedCount = capped ? MISSED_COUNT_LIMIT : onTime ? count - 1 : count
  const fire = onTime || schedule.missed === "run-once" ? [last] : []
  return { fire, missed, missedCount, next, handledUpTo: last, onTime }
}

const MINUTE = 60_000
const DAY = 24 * 60 * MINUTE
/** Windows searched, smallest first, for the latest fire time of a long outage. */
const WINDOWS = [2 * MINUTE, 60 * MINUTE, DAY, 32 * DAY, 366 * DAY, 8 * 366 * DAY]

/**
 * The latest fire time in (after, now], searched forward from ever larger
 * windows before `now` (effect's `Cron.prev` is not reliable across DST
 * changes, and `Cron.next` is: every answer comes from `next`).
 */
const latestUpTo = (cron: Cron.Cron, after: Date, now: Date): Date | undefined => {
  for (const w of WINDOWS) {
    const from = new Date(Math.max(after.getTime(), now.getTime() - w))
    let found: Date | undefined
    let steps = 0
    for (const t of Cron.sequence(cron, from)) {
      if (t.getTime() > now.getTime() || ++steps > 50_000) break
      found = t
    }
    if (found !== undefined) return found
    if (from.getTime() === after.getTime()) return undefined
  }
  return undefined
}

/** The next `n` fire times after `from`, for display. */
export const upcoming = (schedule: Pick<Schedule, "cron">, from: Date, n: number): ReadonlyArray<Date> => {
  const out: Array<Date> = []
  for (const t of Cron.sequence(schedule.cron, from)) {
    if (out.length >= n) break
    out.push(t)
  }
  return out
}

/**
 * The job request a job schedule submits at a fire time: its deadline
 * counted from the fire time, the label `orchestra/schedule`, and the
 * idempotency key `schedule/<name>/<fire time ISO>` — a fire time submitted
 * twice (a crash between submitting and recording it) is one job.
 */
export const jobRequest = (schedule: Schedule, at: Date): Either.Either<Job.JobRequest, string> => {
  if (schedule.target._tag !== "Job") return Either.left(`schedule ${schedule.name} runs a pipeline, not a job`)
  const job = schedule.target.job
  const built = Spec.makeRequest({
    score: job.score,
    players: job.players ?? [],
    selector: job.selector,
    policy: Spec.policyRef(job.policy),
    params: job.params ?? {},
    deadline: job.deadline === undefined ? undefined : at.getTime() + job.deadline,
    idempotencyKey: `schedule/${schedule.name}/${at.toISOString()}`,
    retry: job.retry,
    labels: { ...(job.labels ?? {}), [Spec.LABEL_SCHEDULE]: schedule.name }
  })
  return built._tag === "Right" ? Either.right(built.request) : Either.left(built.reason)
}

/** A run id for a pipeline fired by a schedule: `<name>@<fire time ms>`, stable across restarts. */
export const runId = (schedule: Schedule, at: Date): string => `${schedule.name}@${at.getTime()}`
