/**
 * Schedule documents and the pure `due` decision: the samples load (with
 * their pipeline), errors with file:line, cron in time zones across DST
 * changes, on-time and missed fire times under both `missed` policies.
 */
import { NodeFileSystem } from "@effect/platform-node"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Schedule } from "../src/index.js"
import { samplePipelines, sampleSchedules, yaml } from "./helpers.js"

const tmpDirs: Array<string> = []
afterAll(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true })
})
const tmp = (): string => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "orchestra-schedule-"))
  tmpDirs.push(d)
  return d
}

const parse = (text: string) => Schedule.parse(text, "s.yaml")
const issuesOf = (text: string) => {
  const r = parse(text)
  if (Either.isRight(r)) throw new Error("expected the schedule to be refused")
  expect(r.left._tag).toBe("ScheduleError")
  return r.left.issues
}
const schedule = (cron: string, timezone = "UTC", missed: Schedule.Missed = "skip") =>
  Either.getOrThrow(parse(yaml("name: s", `cron: "${cron}"`, `timezone: ${timezone}`, `missed: ${missed}`, "job: { score: noop, players: [violin], policy: one-of }")))
const d = (iso: string) => new Date(iso)
const iso = (dates: ReadonlyArray<Date>) => dates.map((x) => x.toISOString())

describe("schedule documents", () => {
  it.effect("the samples load; a pipeline schedule's pipeline is read and its params checked", () =>
    Effect.gen(function*() {
      const nightly = yield* Schedule.loadFile(path.join(sampleSchedules, "nightly-release.yaml"))
      expect(nightly.schedule).toMatchObject({ name: "nightly-release", expression: "30 2 * * *", timezone: "Europe/Berlin", overlap: "skip", missed: "run-once" })
      expect(nightly.schedule.target).toEqual({
        _tag: "Pipeline",
        file: path.join(samplePipelines, "release.yaml"),
        written: "../pipelines/release.yaml",
        params: { ref: "main" }
      })
      expect(nightly.pipeline?.name).toBe("release")
      const disk = yield* Schedule.loadFile(path.join(sampleSchedules, "disk-usage.yaml"))
      expect(disk.schedule).toMatchObject({ name: "disk-usage", timezone: "UTC", overlap: "queue", missed: "skip" })
      expect(disk.pipeline).toBeUndefined()
      const request = Either.getOrThrow(Schedule.jobRequest(disk.schedule, d("2024-05-01T10:15:00Z")))
      expect(request.idempotencyKey).toBe("schedule/disk-usage/2024-05-01T10:15:00.000Z")
      expect(request.deadline).toBe(Date.parse("2024-05-01T10:15:00Z") + 5 * 60_000)
      expect(request.labels).toEqual({ "orchestra/schedule": "disk-usage" })
      expect(request.selector).toEqual({ role: "web" })
      expect(request.params).toEqual({ path: "/", threshold: 90 })
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("a pipeline schedule with params the pipeline refuses, or a pipeline that is missing", () =>
    Effect.gen(function*() {
      const dir = tmp()
      fs.copyFileSync(path.join(samplePipelines, "release.yaml"), path.join(dir, "release.yaml"))
      const file = path.join(dir, "s.yaml")
      fs.writeFileSync(file, yaml("name: s", 'cron: "0 * * * *"', "pipeline: release.yaml", "params:", "  ref: 7"))
      const e = yield* Effect.flip(Schedule.loadFile(file))
      expect(e.issues).toEqual([{ path: `${file}:5: params.ref`, message: "must be string (got 7)" }])
      fs.writeFileSync(file, yaml("name: s", 'cron: "0 * * * *"', "pipeline: gone.yaml"))
      const missing = yield* Effect.flip(Schedule.loadFile(file))
      expect(missing.issues).toEqual([
        { path: `${file}:3: pipeline`, message: "pipeline gone.yaml is not valid" },
        { path: path.join(dir, "gone.yaml"), message: "cannot read: file not found" }
      ])
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it("errors, with lines", () => {
    expect(issuesOf(yaml(
      "name: s", // 1
      'cron: "0 * * *"', // 2
      "timezone: UTC", // 3
      "job: { score: noop, players: [violin], policy: one-of }" // 4
    ))).toEqual([{ path: "s.yaml:2: cron", message: 'expected 5 fields (minute hour day-of-month month day-of-week), got 4 in "0 * * *"' }])
    expect(issuesOf(yaml(
      "name: s", // 1
      'cron: "61 * * * *"', // 2
      "timezone: Mars/Olympus", // 3
      "job: { score: noop, players: [violin], policy: one-of }", // 4
      "pipeline: p.yaml" // 5
    ))).toEqual([
      { path: "s.yaml:3: timezone", message: 'unknown time zone "Mars/Olympus" (use an IANA name such as "Europe/Berlin" or "UTC")' },
      { path: "s.yaml:5: pipeline", message: "write either `job` or `pipeline`, not both" }
    ])
    expect(issuesOf(yaml('cron: "61 * * * *"', "name: s", "pipeline: p.yaml"))[0]).toEqual({
      path: "s.yaml:1: cron",
      message: expect.stringMatching(/61 \* \* \* \*/)
    })
    expect(issuesOf(yaml(
      "name: s", // 1
      'cron: "* * * * *"', // 2
      "overlap: wait", // 3
      "job:", // 4
      "  score: noop", // 5
      "  policy: one-of", // 6
      "  needs: [x]" // 7
    ))).toEqual([
      { path: "s.yaml:3: overlap", message: 'Expected "skip" | "queue", actual "wait"' },
      { path: "s.yaml:7: job.needs", message: 'unknown key "needs"' }
    ])
    expect(issuesOf(yaml("name: s", 'cron: "0 0 30 2 *"', "pipeline: p.yaml"))).toEqual([
      { path: "s.yaml:2: cron", message: '"0 0 30 2 *" never fires (no such date)' }
    ])
    expect(issuesOf(yaml("name: s", 'cron: "* * * * *"'))).toEqual([{ path: "s.yaml:1", message: "`job` or `pipeline` is required" }])
    expect(issuesOf(yaml("name: s", 'cron: "* * * * *"', "job: { score: noop, policy: one-of }", "params: { a: 1 }"))).toEqual([
      { path: "s.yaml:3: job", message: "the job targets no player: name `players` or give a `selector`" },
      { path: "s.yaml:4: params", message: "`params` are the pipeline's; a job's params go under `job.params`" }
    ])
    expect(issuesOf("name: [")[0]?.path).toBe("s.yaml:1")
  })
})

describe("cron in a time zone", () => {
  it("reads times in the schedule's zone", () => {
    const ny = schedule("0 9 * * 1-5", "America/New_York")
    // Friday 8 March 2024, then Monday 11 March (after the US change to EDT on the 10th)
    expect(iso(Schedule.upcoming(ny, d("2024-03-08T12:00:00Z"), 3))).toEqual([
      "2024-03-08T14:00:00.000Z", // 09:00 EST
      "2024-03-11T13:00:00.000Z", // 09:00 EDT
      "2024-03-12T13:00:00.000Z"
    ])
    expect(iso(Schedule.upcoming(schedule("0 9 * * *"), d("2024-03-08T12:00:00Z"), 1))).toEqual(["2024-03-09T09:00:00.000Z"])
  })

  it("across DST in Europe/Berlin: a time skipped fires after the gap, a time repeated fires once", () => {
    const nightly = schedule("30 2 * * *", "Europe/Berlin")
    // 31 March 2024: 02:00 CET → 03:00 CEST, 02:30 does not exist
    expect(iso(Schedule.upcoming(nightly, d("2024-03-30T00:00:00Z"), 3))).toEqual([
      "2024-03-30T01:30:00.000Z", // 02:30 CET
      "2024-03-31T01:30:00.000Z", // 03:30 CEST
      "2024-04-01T00:30:00.000Z" // 02:30 CEST
    ])
    // 27 October 2024: 03:00 CEST → 02:00 CET, 02:30 happens twice
    expect(iso(Schedule.upcoming(nightly, d("2024-10-26T00:00:00Z"), 3))).toEqual([
      "2024-10-26T00:30:00.000Z", // 02:30 CEST
      "2024-10-27T00:30:00.000Z", // 02:30 CEST, the first of the two
      "2024-10-28T01:30:00.000Z" // 02:30 CET
    ])
    const hourly = schedule("0 * * * *", "Europe/Berlin")
    expect(iso(Schedule.upcoming(hourly, d("2024-10-26T23:30:00Z"), 3))).toEqual([
      "2024-10-27T00:00:00.000Z", // 02:00 CEST
      "2024-10-27T02:00:00.000Z", // 03:00 CET (02:00 CET, a repeat, is not fired again)
      "2024-10-27T03:00:00.000Z"
    ])
    // due over the spring-forward night: the 03:30 CEST fire
    const due = Schedule.due(nightly, Option.some(d("2024-03-30T01:30:00Z")), d("2024-03-31T01:30:20Z"))
    expect(iso(due.fire)).toEqual(["2024-03-31T01:30:00.000Z"])
    expect(due.missedCount).toBe(0)
    expect(due.next.toISOString()).toBe("2024-04-01T00:30:00.000Z")
  })
})

describe("due", () => {
  const everyMinute = schedule("* * * * *")

  it("nothing before the first reference time; then each fire time once, on time within the grace", () => {
    const none = Schedule.due(everyMinute, Option.none(), d("2024-01-01T10:00:00Z"))
    expect(none).toMatchObject({ fire: [], missedCount: 0, handledUpTo: undefined })
    expect(none.next.toISOString()).toBe("2024-01-01T10:01:00.000Z")
    const onTime = Schedule.due(everyMinute, Option.some(d("2024-01-01T10:00:00Z")), d("2024-01-01T10:01:00Z"))
    expect(iso(onTime.fire)).toEqual(["2024-01-01T10:01:00.000Z"])
    expect(onTime.onTime).toBe(true)
    expect(onTime.next.toISOString()).toBe("2024-01-01T10:02:00.000Z")
    // already handled: nothing again
    expect(Schedule.due(everyMinute, Option.some(d("2024-01-01T10:01:00Z")), d("2024-01-01T10:01:40Z")).fire).toEqual([])
    // 50 s late is still on time
    expect(iso(Schedule.due(everyMinute, Option.some(d("2024-01-01T10:00:00Z")), d("2024-01-01T10:01:50Z")).fire)).toEqual([
      "2024-01-01T10:01:00.000Z"
    ])
  })

  it("missed: skip fires only an on-time time; run-once fires once for all", () => {
    const last = Option.some(d("2024-01-01T10:00:00Z"))
    const skip = Schedule.due(everyMinute, last, d("2024-01-01T10:05:30Z"))
    expect(iso(skip.fire)).toEqual(["2024-01-01T10:05:00.000Z"])
    expect(iso(skip.missed)).toEqual(["10:01", "10:02", "10:03", "10:04"].map((t) => `2024-01-01T${t}:00.000Z`))
    expect(skip.missedCount).toBe(4)
    const every5 = schedule("*/5 * * * *")
    const late = Schedule.due(every5, last, d("2024-01-01T10:17:30Z"))
    expect(late.fire).toEqual([])
    expect(iso(late.missed)).toEqual(["2024-01-01T10:05:00.000Z", "2024-01-01T10:10:00.000Z", "2024-01-01T10:15:00.000Z"])
    expect(late.handledUpTo?.toISOString()).toBe("2024-01-01T10:15:00.000Z")
    const once = Schedule.due(schedule("*/5 * * * *", "UTC", "run-once"), last, d("2024-01-01T10:17:30Z"))
    expect(iso(once.fire)).toEqual(["2024-01-01T10:15:00.000Z"])
    expect(once.missedCount).toBe(3)
    expect(once.onTime).toBe(false)
  })

  it("a long outage: the missed times listed are bounded, and so is the count", () => {
    const r = Schedule.due(schedule("* * * * *", "UTC", "run-once"), Option.some(d("2024-01-01T00:00:00Z")), d("2024-01-31T00:00:30Z"))
    expect(iso(r.fire)).toEqual(["2024-01-31T00:00:00.000Z"])
    expect(r.missed.length).toBe(Schedule.MISSED_LIST_LIMIT)
    expect(r.missedCount).toBe(Schedule.MISSED_COUNT_LIMIT)
  })
})
