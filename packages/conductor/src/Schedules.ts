/**
 * Schedules in the conductor: the schedule documents named in the config
 * (`schedules:`) fired by the `Scheduler` of `@orchestra/pipeline` on
 * Effect's `Clock`. A job schedule submits its job through intake, with the
 * idempotency key `schedule/<name>/<fire time>`; a pipeline schedule starts
 * a run through the pipeline service, keyed the same way — so a fire time
 * submitted just before a crash, and submitted again after it, is one job
 * or one run. The latest fire time handled is kept in the store, which is
 * what lets a restarted conductor see the runs it missed while it was down
 * and skip them or run once (`missed:`).
 *
 * @since 0.1.0
 */
import { FileSystem } from "@effect/platform"
import type { PlatformError } from "@effect/platform/Error"
import type { Views } from "@orchestra/api"
import type { Names, Store } from "@orchestra/core"
import { Errors } from "@orchestra/core"
import { Schedule, Scheduler, ScheduleState } from "@orchestra/pipeline"
import type { Scope } from "effect"
import { Effect, Either, Option } from "effect"
import * as path from "node:path"
import type { IntakeService } from "./Intake.js"
import type { PipelinesService } from "./Pipelines.js"

/** A schedule as loaded from its file; a pipeline schedule carries the pipeline's text. */
export interface Loaded {
  readonly schedule: Schedule.Schedule
  /** The pipeline document a pipeline schedule starts (read when the config was loaded). */
  readonly pipeline?: { readonly document: string; readonly file: string } | undefined
}

/** One schedule, as the audience sees it: the API's view (`next`, `lastHandled`, ... are ISO times). */
export type ScheduleView = Views.ScheduleView

export interface SchedulesService {
  readonly list: Effect.Effect<ReadonlyArray<ScheduleView>>
}

export interface Options {
  readonly schedules: ReadonlyArray<Loaded>
  /** How late a fire time may be and not count as missed (default one minute). */
  readonly graceMs?: number
  /** How often a queued fire checks whether the previous run ended (default 5 s). */
  readonly pollMs?: number
}

export interface Dependencies {
  readonly store: Store.StoreService
  readonly intake: IntakeService
  readonly pipelines: PipelinesService
}

type Handle = { readonly kind: "job"; readonly id: Names.JobId } | { readonly kind: "pipeline"; readonly id: number }

/** The schedule state kept in the conductor's store. */
export const stateOf = (store: Store.StoreService): ScheduleState.ScheduleStateService => ({
  get: (schedule) => Effect.map(store.getScheduleState(schedule), Option.map((ms) => new Date(ms))),
  set: (schedule, at) => store.setScheduleState(schedule, at.getTime())
})

const iso = (d: Date | undefined): string | undefined => (d === undefined ? undefined : d.toISOString())

/** Start firing the schedules; they fire until the scope closes. */
export const make = (options: Options, deps: Dependencies): Effect.Effect<SchedulesService, Errors.StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const byName = new Map(options.schedules.map((l) => [l.schedule.name, l]))
    const lastRun = new Map<string, Handle>()
    const lastError = new Map<string, { readonly at: string; readonly error: string }>()

    const fire = (schedule: Schedule.Schedule, at: Date): Effect.Effect<Handle, Errors.InvalidRequest | Errors.StoreError> =>
      Effect.gen(function*() {
        const key = `schedule/${schedule.name}/${at.toISOString()}`
        if (schedule.target._tag === "Job") {
          const request = Schedule.jobRequest(schedule, at)
          if (Either.isLeft(request)) {
            return yield* new Errors.InvalidRequest({ message: request.left, issues: [{ path: schedule.file, message: request.left }] })
          }
          const accepted = yield* deps.intake.submit(request.right)
          return { kind: "job", id: accepted.id } as const
        }
        const pipeline = byName.get(schedule.name)?.pipeline
        if (pipeline === undefined) {
          const message = `schedule ${schedule.name}: its pipeline was not loaded`
          return yield* new Errors.InvalidRequest({ message, issues: [{ path: schedule.file, message }] })
        }
        const run = yield* deps.pipelines.run({ document: pipeline.document, file: pipeline.file, params: schedule.target.params, key })
        return { kind: "pipeline", id: run.id } as const
      }).pipe(Effect.tap((h) => Effect.sync(() => lastRun.set(schedule.name, h))))

    const isRunning = (h: Handle): Effect.Effect<boolean> =>
      (h.kind === "job"
        ? Effect.map(deps.store.getJob(h.id), Option.match({ onNone: () => false, onSome: (j) => j.state === "PENDING" }))
        : Effect.map(deps.pipelines.get(h.id), Option.match({ onNone: () => false, onSome: (r) => r.state === "PENDING" }))).pipe(
          // a store that cannot answer: count the run as still going (nothing starts on top of it)
          Effect.catchAll(() => Effect.succeed(true))
        )

    const onEvent = (e: Scheduler.SchedulerEvent): Effect.Effect<void> => {
      switch (e._tag) {
        case "Fired": {
          const run = lastRun.get(e.schedule)
          return Effect.logInfo("schedule fired").pipe(
            Effect.annotateLogs({
              schedule: e.schedule,
              at: e.at.toISOString(),
              ...(run === undefined ? {} : { [run.kind]: run.id }),
              ...(e.folded > 0 ? { folded: e.folded } : {})
            })
          )
        }
        case "SkippedOverlap":
          return Effect.logInfo("schedule skipped: its previous run is still going").pipe(
            Effect.annotateLogs({ schedule: e.schedule, at: e.at.toISOString() })
          )
        case "Queued":
          return Effect.logInfo("schedule queued: it starts when its previous run ends").pipe(
            Effect.annotateLogs({ schedule: e.schedule, at: e.at.toISOString() })
          )
        case "Missed":
          return Effect.logWarning(
            e.policy === "skip" ? "schedule missed runs while the conductor was down: skipped" : "schedule missed runs while the conductor was down: running once"
          ).pipe(
            Effect.annotateLogs({ schedule: e.schedule, missed: e.count, first: e.times[0]?.toISOString() ?? "" })
          )
        case "FireFailed":
          return Effect.sync(() => lastError.set(e.schedule, { at: e.at.toISOString(), error: e.error })).pipe(
            Effect.zipRight(
              Effect.logError("schedule could not start its run").pipe(
                Effect.annotateLogs({ schedule: e.schedule, at: e.at.toISOString(), error: e.error })
              )
            )
          )
        case "StateFailed":
          return Effect.logError("schedule state could not be recorded").pipe(
            Effect.annotateLogs({ schedule: e.schedule, error: e.error })
          )
      }
    }

    const scheduler = yield* Scheduler.make<Handle, Errors.InvalidRequest | Errors.StoreError>({
      schedules: options.schedules.map((l) => l.schedule),
      fire,
      isRunning,
      onEvent,
      graceMs: options.graceMs,
      pollMs: options.pollMs
    }).pipe(Effect.provideService(ScheduleState.ScheduleState, stateOf(deps.store)))

    if (options.schedules.length > 0) {
      yield* Effect.logInfo("schedules loaded").pipe(
        Effect.annotateLogs({ schedules: options.schedules.map((l) => l.schedule.name).join(", ") })
      )
    }

    return {
      list: Effect.map(scheduler.status, (statuses) => {
        const status = new Map(statuses.map((s) => [s.name, s]))
        return options.schedules.map(({ schedule }): ScheduleView => {
          const st = status.get(schedule.name)
          const next = iso(st?.next)
          const lastHandled = iso(st?.lastHandled)
          const lastFired = iso(st?.lastFired)
          const queued = iso(st?.queued)
          const run = lastRun.get(schedule.name)
          const error = lastError.get(schedule.name)
          return {
            name: schedule.name,
            ...(schedule.description === undefined ? {} : { description: schedule.description }),
            file: schedule.file,
            cron: schedule.expression,
            timezone: schedule.timezone,
            runs: schedule.target._tag === "Job" ? `job ${schedule.target.job.score}` : `pipeline ${schedule.target.written}`,
            overlap: schedule.overlap,
            missed: schedule.missed,
            ...(next === undefined ? {} : { next }),
            ...(lastHandled === undefined ? {} : { lastHandled }),
            ...(lastFired === undefined ? {} : { lastFired }),
            ...(queued === undefined ? {} : { queued }),
            ...(run === undefined ? {} : { lastRun: run }),
            ...(error === undefined ? {} : { lastError: error })
          }
        })
      })
    }
  })

const SCHEDULE_FILE = /\.ya?ml$/

const whyNot = (e: PlatformError): string =>
  e._tag === "SystemError" && e.reason === "NotFound" ? "no such file or directory" : e._tag === "SystemError" ? e.reason : e.message

/**
 * Load the schedules the config names: each entry a schedule file or a
 * directory of them (`*.yaml`, `*.yml`; dotfiles skipped). Every problem
 * of every file is reported, with its line; two schedules of one name are
 * an error.
 */
export const load = (
  entries: ReadonlyArray<string>,
  configFile: string
): Effect.Effect<ReadonlyArray<Loaded>, Errors.ConfigError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const files: Array<string> = []
    const issues: Array<Errors.Issue> = []
    for (const entry of entries) {
      const listed = yield* Effect.either(
        Effect.flatMap(fs.stat(entry), (info) =>
          info.type === "Directory"
            ? Effect.map(fs.readDirectory(entry), (names) =>
              names.filter((n) => !n.startsWith(".") && SCHEDULE_FILE.test(n)).sort().map((n) => path.join(entry, n)))
            : Effect.succeed([entry]))
      )
      if (Either.isLeft(listed)) issues.push({ path: `${configFile}: schedules`, message: `cannot read ${entry}: ${whyNot(listed.left)}` })
      else files.push(...listed.right)
    }
    const loaded: Array<Loaded> = []
    const seen = new Map<string, string>()
    for (const file of files) {
      const r = yield* Effect.either(Schedule.loadFile(file))
      if (Either.isLeft(r)) {
        issues.push(...r.left.issues)
        continue
      }
      const { schedule } = r.right
      const other = seen.get(schedule.name)
      if (other !== undefined) {
        issues.push({ path: `${file}: name`, message: `schedule ${JSON.stringify(schedule.name)} is also defined in ${other}` })
        continue
      }
      seen.set(schedule.name, file)
      if (schedule.target._tag === "Pipeline") {
        const pipelineFile = schedule.target.file
        const document = yield* fs.readFileString(pipelineFile).pipe(
          Effect.mapError((e) => new Errors.ConfigError({ file: configFile, message: `cannot read ${pipelineFile}: ${e.message}`, issues: [] }))
        )
        loaded.push({ schedule, pipeline: { document, file: path.basename(schedule.target.file) } })
      } else {
        loaded.push({ schedule })
      }
    }
    if (issues.length > 0) {
      return yield* new Errors.ConfigError({
        file: configFile,
        message: `invalid schedules (${issues.length} issue${issues.length === 1 ? "" : "s"}):\n${issues.map((i) => `  ${i.path}: ${i.message}`).join("\n")}`,
        issues
      })
    }
    return loaded
  })
