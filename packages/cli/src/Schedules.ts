/**
 * `orchestra schedules validate FILE...` — check schedule documents (and
 * the pipelines they name) and show each one's next fire times in its
 * time zone; `orchestra schedules list` — the schedules a running
 * conductor fires, with their next and latest fire times, the latest run
 * and the latest failure to start one.
 *
 * @since 0.1.0
 */
import { Args, Command, Options } from "@effect/cli"
import { Schedule } from "@orchestra/pipeline"
import { Console, Effect, Either } from "effect"
import * as path from "node:path"
import * as Connection from "./Connection.js"
import * as Exit from "./Exit.js"

const json = Options.boolean("json").pipe(Options.withDescription("Print JSON for scripts"))

/** A time as its zone's wall clock, `2026-12-06 03:30 Europe/Berlin`. */
export const wallClock = (d: Date, timezone: string): string => {
  const text = d.toLocaleString("sv-SE", { timeZone: timezone, hour12: false }).replace(/:00$/, "")
  return `${text} ${timezone}`
}

const runsOf = (s: Schedule.Schedule): string =>
  s.target._tag === "Job" ? `job ${s.target.job.score}` : `pipeline ${s.target.written}`

export const validate = Command.make(
  "validate",
  {
    files: Args.file({ name: "file", exists: "yes" }).pipe(Args.withDescription("Schedule documents (YAML)"), Args.atLeast(1)),
    next: Options.integer("next").pipe(Options.withDescription("How many upcoming fire times to show"), Options.withDefault(3)),
    json
  },
  (a) =>
    Effect.gen(function*() {
      const now = new Date()
      const problems: Array<string> = []
      const valid: Array<Schedule.Schedule> = []
      for (const file of a.files) {
        const r = yield* Effect.either(Schedule.loadFile(path.resolve(file)))
        if (Either.isLeft(r)) problems.push(r.left.message.replace(/^invalid schedule/, `${file}: invalid schedule`))
        else valid.push(r.right.schedule)
      }
      const n = Math.max(0, Math.min(a.next, 100))
      if (a.json) {
        yield* Console.log(JSON.stringify(valid.map((s) => ({
          name: s.name,
          file: s.file,
          cron: s.expression,
          timezone: s.timezone,
          runs: runsOf(s),
          overlap: s.overlap,
          missed: s.missed,
          next: Schedule.upcoming(s, now, n).map((d) => d.toISOString())
        })), null, 2))
      } else {
        for (const s of valid) {
          yield* Console.log(`${s.file}: schedule ${s.name} is valid: ${runsOf(s)} at "${s.expression}" (${s.timezone}); overlap ${s.overlap}, missed ${s.missed}`)
          for (const d of Schedule.upcoming(s, now, n)) yield* Console.log(`  next ${wallClock(d, s.timezone)}  (${d.toISOString()})`)
        }
      }
      if (problems.length > 0) return yield* new Exit.ExitWith({ code: Exit.codes.config, message: problems.join("\n") })
    })
).pipe(Command.withDescription(
  "Check schedule documents (cron, time zone, the job or the pipeline and its params) and show the next fire times; exit 78 naming file and line. Example: orchestra schedules validate samples/schedules/*.yaml"
))

export const list = Command.make(
  "list",
  { json, ...Connection.options },
  (a) =>
    Connection.withClient(a, (client) =>
    Effect.gen(function*() {
      const views = (yield* client.schedules()).schedules
      if (a.json) return yield* Console.log(JSON.stringify(views, null, 2))
      if (views.length === 0) return yield* Console.log("no schedules (add `schedules:` to the conductor's config)")
      for (const v of views) {
        const at = (iso: string | undefined) => (iso === undefined ? "-" : wallClock(new Date(iso), v.timezone))
        yield* Console.log(`${v.name}: ${v.runs} at "${v.cron}" (${v.timezone}); overlap ${v.overlap}, missed ${v.missed}`)
        yield* Console.log(`  next ${at(v.next)}; last fired ${at(v.lastFired)}${v.lastRun === undefined ? "" : ` (${v.lastRun.kind} ${v.lastRun.id})`}`)
        if (v.queued !== undefined) yield* Console.log(`  queued ${at(v.queued)}: waits for the previous run`)
        if (v.lastError !== undefined) yield* Console.log(`  last failure ${at(v.lastError.at)}: ${v.lastError.error}`)
      }
    }))
).pipe(Command.withDescription(
  "The schedules the conductor fires: next and latest fire times, the latest run, the latest failure to start one. Example: orchestra schedules list"
))

export const schedules = Command.make("schedules").pipe(
  Command.withDescription("Schedules: run a job or a pipeline on a cron expression, in a time zone"),
  Command.withSubcommands([validate, list])
)
