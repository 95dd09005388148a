/**
 * A three-stage pipeline end to end on real processes: build on one-of →
 * canary on one player → rolling over four, the build's pipe response
 * passed into the deploys' json params. Run with `orchestra pipeline run
 * --wait`; then run again and kill -9 the conductor mid-pipeline: the
 * restarted conductor resumes the run from the store and finishes it
 * without running a finished job again.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { databaseFile, openDatabase, pollUntil, request, runCli, sharedCluster, writeScoreDir } from "./support/Harness.js"

const repo = path.resolve(__dirname, "..")
let markers = ""
let pipelineFile = ""

const shared = sharedCluster("pipeline", (dir) => {
  markers = path.join(dir, "markers.txt")
  fs.writeFileSync(markers, "")
  const scores = writeScoreDir(path.join(dir, "scores"), {
    build: {
      script: `#!/bin/sh\necho "$ORC_JOB_ID $ORC_PLAYER build $ORC_ref" >> ${markers}\necho "ref=$ORC_ref"\necho "version=1.4.7"\necho "artifact=build-1.4.7.tgz"\n`,
      manifest: fs.readFileSync(path.join(repo, "manifests", "build.yaml"), "utf8")
    },
    deploy: {
      script: `#!/usr/bin/env node
let input = ""
process.stdin.on("data", (c) => { input += c })
process.stdin.on("end", () => {
  const p = JSON.parse(input)
  require("fs").appendFileSync(${JSON.stringify(markers)}, process.env.ORC_JOB_ID + " " + process.env.ORC_PLAYER + " deploy " + p.version + "\\n")
  setTimeout(() => process.stdout.write(JSON.stringify({ deployed: p.version, host: process.env.ORC_PLAYER }) + "\\n"), 700)
})
`,
      manifest: fs.readFileSync(path.join(repo, "manifests", "deploy.yaml"), "utf8")
    }
  })
  pipelineFile = path.join(dir, "release.yaml")
  fs.writeFileSync(pipelineFile, `name: release
params:
  type: object
  required: [ref]
  properties:
    ref: { type: string }
jobs:
  build:
    score: build
    players: [p1, p2]
    policy: one-of
    params: { ref: "\${{ params.ref }}" }
  canary:
    needs: [build]
    score: deploy
    players: [p2]
    policy: all-of
    params: { version: "\${{ jobs.build.output.version }}" }
  rollout:
    needs: [canary]
    score: deploy
    players: [p1, p2, p3, p4]
    policy: { name: rolling, options: { batch: 1 } }
    params: { version: "\${{ jobs.canary.players.p2.response.deployed }}" }
`)
  return { options: { players: ["p1", "p2", "p3", "p4"].map((name) => ({ name, scores })) } }
})
const c = shared.cluster

interface RunView {
  readonly id: number
  readonly state: string
  readonly jobs: ReadonlyArray<{ readonly name: string; readonly status: string; readonly id?: number; readonly state?: string }>
}

const getRun = (id: number) =>
  Effect.map(request(c().socket, { op: "pipeline.get", id }), (reply) => {
    const [tag, value] = reply as [string, unknown]
    if (tag !== "OK") throw new Error(`pipeline.get ${id}: ${JSON.stringify(reply)}`)
    return value as RunView
  })

const markerLines = () => fs.readFileSync(markers, "utf8").split("\n").filter((l) => l !== "")

describe("a three-stage pipeline", () => {
  it.live("runs with `orchestra pipeline run --wait`: the build's version reaches every deploy, in order, and exits 0", () =>
    Effect.gen(function*() {
      const before = markerLines().length
      const r = yield* runCli(["pipeline", "run", pipelineFile, "--param", "ref=main", "--wait", "--socket", c().socket], { timeoutMs: 60_000 })
      expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
      expect(r.stdout).toMatch(/pipeline run \d+ \(release\): OK/)
      expect(r.stderr).toMatch(/build finished OK/)
      const lines = markerLines().slice(before)
      expect(lines.filter((l) => l.includes(" build ")).length).toBe(1)
      const deploys = lines.filter((l) => l.includes(" deploy "))
      expect(deploys.length).toBe(5)
      for (const d of deploys) expect(d.endsWith(" deploy 1.4.7")).toBe(true)
      // the canary (p2) first, then the rollout one player at a time, in order
      expect(deploys.map((d) => d.split(" ")[1])).toEqual(["p2", "p1", "p2", "p3", "p4"])
    }).pipe(shared.withLogs), 90_000)

  it.live("a type error is refused by the conductor before anything runs, with its line", () =>
    Effect.gen(function*() {
      const before = markerLines().length
      const runsBefore = (yield* request(c().socket, { op: "pipeline.list" })) as [string, ReadonlyArray<unknown>]
      const broken = pipelineFile.replace(/release\.yaml$/, "broken.yaml")
      fs.writeFileSync(broken, fs.readFileSync(pipelineFile, "utf8").replace("jobs.build.output.version", "jobs.build.output.nosuch"))
      const r = yield* runCli(["pipeline", "run", broken, "--param", "ref=main", "--socket", c().socket])
      expect(r.code).toBe(78)
      expect(r.stderr).toMatch(/invalid pipeline: broken\.yaml:18: jobs\.canary\.params\.version: [^\n]*no output "nosuch"/)
      // nothing ran and no run was stored
      const runsAfter = (yield* request(c().socket, { op: "pipeline.list" })) as [string, ReadonlyArray<unknown>]
      expect(runsAfter[1].length).toBe(runsBefore[1].length)
      expect(markerLines().length).toBe(before)
    }).pipe(shared.withLogs))

  it.live("kill -9 of the conductor mid-pipeline: after a restart the run finishes, and no finished job runs again", () =>
    Effect.gen(function*() {
      const before = markerLines().length
      const started = (yield* request(c().socket, {
        op: "pipeline.run",
        document: fs.readFileSync(pipelineFile, "utf8"),
        file: "release.yaml",
        params: { ref: "crash" }
      })) as [string, { id: number }]
      expect(started[0]).toBe("OK")
      const id = started[1].id
      // wait until the rollout is under way: build and canary finished
      yield* pollUntil(
        "the rollout to start",
        Effect.map(getRun(id), (r) => (r.jobs.find((j) => j.name === "rollout")?.status === "submitted" ? Option.some(r) : Option.none())),
        { timeout: 30_000 }
      )
      yield* c().stopConductor("SIGKILL")
      yield* c().startConductor
      yield* c().waitForPlayers(["p1", "p2", "p3", "p4"], Duration.seconds(30))
      const done = yield* pollUntil(
        "the resumed run to finish",
        Effect.map(getRun(id), (r) => (r.state === "PENDING" ? Option.none() : Option.some(r))),
        { timeout: 60_000, interval: 250 }
      )
      expect(done.state).toBe("OK")
      expect(done.jobs.map((j) => [j.name, j.status, j.state])).toEqual([
        ["build", "finished", "OK"],
        ["canary", "finished", "OK"],
        ["rollout", "finished", "OK"]
      ])
      const lines = markerLines().slice(before)
      const buildId = done.jobs[0]!.id
      const canaryId = done.jobs[1]!.id
      expect(lines.filter((l) => l.startsWith(`${buildId} `)).length).toBe(1)
      expect(lines.filter((l) => l.startsWith(`${canaryId} `)).length).toBe(1)
      // three jobs in the store for the run: none submitted twice
      const db = openDatabase(databaseFile(c()))
      try {
        const ids = done.jobs.map((j) => j.id)
        expect(new Set(ids).size).toBe(3)
        const count = Number(db.prepare(`SELECT COUNT(*) AS n FROM orchestra_jobs WHERE id >= ?`).get(buildId)?.["n"])
        expect(count).toBe(3)
      } finally {
        db.close()
      }
    }).pipe(shared.withLogs), 120_000)
})
