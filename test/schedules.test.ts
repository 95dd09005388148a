/**
 * Schedules on real processes: a conductor whose config names schedule
 * files lists them (`orchestra schedules list`), keeps where each stands in
 * its SQLite store, and after a restart makes up the runs missed while it
 * was down — once, for `missed: run-once`, never for `missed: skip` — with
 * a real player running the real score. A broken schedule keeps the
 * conductor from starting, naming the file and the line. (Firing every
 * minute, overlaps and the missed-run policies on a controllable clock are
 * in packages/conductor/test/Schedules.test.ts.)
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { databaseFile, openDatabase, pollUntil, runCli, sharedCluster, showCli, writeScoreDir } from "./support/Harness.js"

let markers = ""
let schedulesDir = ""

// A yearly cron: nothing fires on its own while the test runs (unless it runs across New Year).
const YEARLY = "0 0 1 1 *"

const shared = sharedCluster("schedules", (dir) => {
  markers = path.join(dir, "markers.txt")
  fs.writeFileSync(markers, "")
  const scores = writeScoreDir(path.join(dir, "scores"), {
    tick: {
      script: `#!/bin/sh\necho "$ORC_JOB_ID $ORC_note" >> ${markers}\n`,
      manifest: "interface: env\nparameters:\n  type: object\n  properties:\n    note: { type: string }\n"
    }
  })
  schedulesDir = path.join(dir, "schedules")
  fs.mkdirSync(schedulesDir)
  fs.writeFileSync(
    path.join(schedulesDir, "catch-up.yaml"),
    `name: catch-up\ncron: "${YEARLY}"\njob:\n  score: tick\n  players: [p1]\n  policy: one-of\n  params: { note: caught-up }\nmissed: run-once\n`
  )
  fs.writeFileSync(
    path.join(schedulesDir, "skipper.yaml"),
    `name: skipper\ncron: "${YEARLY}"\ntimezone: Australia/Sydney\njob:\n  score: tick\n  players: [p1]\n  policy: one-of\n  params: { note: skipped }\nmissed: skip\n`
  )
  return { options: { players: [{ name: "p1", scores }], conductorConfig: { schedules: [schedulesDir] } } }
})
const c = shared.cluster

interface View {
  readonly name: string
  readonly next?: string
  readonly lastHandled?: string
  readonly lastFired?: string
  readonly lastRun?: { readonly kind: string; readonly id: number }
}

const list = Effect.gen(function*() {
  const r = yield* runCli(["schedules", "list", "--json", "--socket", c().socket])
  expect(r.code, showCli(r)).toBe(0)
  return JSON.parse(r.stdout) as ReadonlyArray<View>
})

const nextNewYear = (now: Date, zoneOffsetMs = 0) => new Date(Date.UTC(now.getUTCFullYear() + 1, 0, 1) - zoneOffsetMs)

describe("schedules in a running conductor", () => {
  it.live("`orchestra schedules list` shows each schedule with its next fire time in its zone", () =>
    Effect.gen(function*() {
      const r = yield* runCli(["schedules", "list", "--socket", c().socket])
      expect(r.code, showCli(r)).toBe(0)
      expect(r.stdout).toMatch(/^catch-up: job tick at "0 0 1 1 \*" \(UTC\); overlap skip, missed run-once$/m)
      expect(r.stdout).toMatch(new RegExp(`^  next ${nextNewYear(new Date()).getUTCFullYear()}-01-01 00:00 UTC; last fired -$`, "m"))
      expect(r.stdout).toMatch(/^skipper: job tick at "0 0 1 1 \*" \(Australia\/Sydney\); overlap skip, missed skip$/m)
      expect(r.stdout).toMatch(/^  next \d{4}-01-01 00:00 Australia\/Sydney; last fired -$/m)
      const views = yield* list
      expect(views.map((v) => v.name)).toEqual(["catch-up", "skipper"])
      expect(views[0]!.next).toBe(nextNewYear(new Date()).toISOString())
    }).pipe(shared.withLogs))

  it.live("after a restart, a missed run is made up once for `run-once` and not at all for `skip`", () =>
    Effect.gen(function*() {
      yield* c().stopConductor("SIGTERM")
      // the conductor was "down" since New Year's Eve a year ago: this year's 1 January 00:00 was missed by both
      const longAgo = Date.UTC(new Date().getUTCFullYear() - 1, 11, 31, 12, 0, 0)
      const db = openDatabase(databaseFile(c()), { writable: true })
      try {
        const changed = db.prepare("UPDATE orchestra_schedules SET last_fired = ?").run(longAgo).changes
        expect(changed).toBe(2)
      } finally {
        db.close()
      }
      yield* c().startConductor
      yield* c().waitForPlayers(["p1"], Duration.seconds(30))
      const line = yield* pollUntil(
        "the made-up run of catch-up",
        Effect.sync(() => Option.fromNullable(fs.readFileSync(markers, "utf8").split("\n").find((l) => l.endsWith(" caught-up")))),
        { timeout: 30_000 }
      )
      const jobId = Number(line.split(" ")[0])
      const views = yield* list
      const thisNewYear = new Date(Date.UTC(new Date().getUTCFullYear(), 0, 1)).toISOString()
      expect(views[0]).toMatchObject({ name: "catch-up", lastFired: thisNewYear, lastRun: { kind: "job", id: jobId } })
      // skipper: its missed time is handled (recorded) but nothing ran
      expect(views[1]!.lastFired).toBeUndefined()
      expect(views[1]!.lastRun).toBeUndefined()
      expect(new Date(views[1]!.lastHandled!).getTime()).toBeGreaterThan(longAgo)
      const ran = fs.readFileSync(markers, "utf8").split("\n").filter((l) => l !== "")
      expect(ran).toEqual([`${jobId} caught-up`])
      // the job carries the schedule's label and its fire time's idempotency key
      const ro = openDatabase(databaseFile(c()))
      try {
        const row = ro.prepare("SELECT request FROM orchestra_jobs WHERE id = ?").get(jobId)
        const request = JSON.parse(String(row!["request"])) as { labels: Record<string, string>; idempotencyKey: string }
        expect(request.labels["orchestra/schedule"]).toBe("catch-up")
        expect(request.idempotencyKey).toBe(`schedule/catch-up/${thisNewYear}`)
      } finally {
        ro.close()
      }
      // a second restart makes nothing up again
      yield* c().stopConductor("SIGTERM")
      yield* c().startConductor
      yield* c().waitForPlayers(["p1"], Duration.seconds(30))
      yield* Effect.sleep(Duration.seconds(1))
      expect(fs.readFileSync(markers, "utf8").split("\n").filter((l) => l !== "")).toEqual([`${jobId} caught-up`])
    }).pipe(shared.withLogs), 90_000)

  it.live("a broken schedule keeps the conductor from starting, naming the file and the line", () =>
    Effect.gen(function*() {
      const dir = path.join(shared.dir(), "broken")
      fs.mkdirSync(dir, { recursive: true })
      fs.writeFileSync(path.join(dir, "bad.yaml"), `name: bad\ncron: "0 0 1 1 *"\ntimezone: Mars/Olympus\njob: { score: tick, players: [p1], policy: one-of }\n`)
      const config = fs.readFileSync(c().conductorConfigFile, "utf8").replace(schedulesDir, dir)
      expect(config).toContain(dir)
      // beside the real config, so its relative paths still hold
      const file = path.join(path.dirname(c().conductorConfigFile), "conductor-broken.yaml")
      fs.writeFileSync(file, config)
      const r = yield* runCli(["conductor", "--config", file], { cwd: path.dirname(c().conductorConfigFile), timeoutMs: 30_000 })
      expect(r.code, showCli(r)).toBe(78)
      expect(r.stderr).toContain(`${path.join(dir, "bad.yaml")}:3: timezone: unknown time zone "Mars/Olympus"`)
    }).pipe(shared.withLogs))
})
