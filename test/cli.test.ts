/**
 * The `orchestra` command as a user runs it: `demo` end to end (its jobs,
 * then the sample release pipeline ending OK with the version built reaching
 * every deploy); `submit --wait` exit codes (0 OK, 1 FAIL, 2 PARTIAL_FAIL),
 * `status`, `wait --timeout` on a pending job (4); `submit --plan` (the
 * batches, the params with defaults, nothing created; refused as a submit
 * is; a usage error over --url); `scores validate` on the samples and on
 * a broken manifest; a broken conductor config (78, naming file, line and
 * field, and nothing started).
 */
import { describe, expect, it } from "@effect/vitest"
import { LocalCluster } from "@orchestra/cli"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import {
  alive,
  makeTempDir,
  runCli,
  sharedCluster,
  showCli,
  statusOf,
  submit,
  waitJob,
  writeScoreDir
} from "./support/Harness.js"
import * as Scores from "./support/Scores.js"

const shared = sharedCluster("cli", (dir) => {
  const good = writeScoreDir(path.join(dir, "scores-good"), { check: Scores.check(false) })
  const bad = writeScoreDir(path.join(dir, "scores-bad"), { check: Scores.check(true) })
  return {
    options: {
      players: [
        { name: "lute", scores: good },
        { name: "lyre", scores: bad },
        { name: "ghost", scores: good }
      ]
    },
    start: ["lute", "lyre"]
  }
})
const c = shared.cluster

const cli = (...args: ReadonlyArray<string>) => runCli([...args, "--socket", c().socket], { timeoutMs: 60_000 })

/** The sample scores: every executable in samples/scores. */
const sampleScores = () =>
  fs.readdirSync(LocalCluster.sampleScores).filter((f) => !f.endsWith(".yaml") && !f.endsWith(".conf")).sort()

const connectRefused = (port: number) =>
  Effect.async<boolean>((resume) => {
    const s = net.connect({ host: "127.0.0.1", port })
    s.once("connect", () => {
      s.destroy()
      resume(Effect.succeed(false))
    })
    s.once("error", () => resume(Effect.succeed(true)))
  })

describe("orchestra demo", () => {
  it.live("exits 0, prints the results table, and leaves no process or directory behind", () =>
    Effect.gen(function*() {
      const r = yield* runCli(["demo"], { timeoutMs: 110_000 })
      expect(r.code, showCli(r)).toBe(0)
      const out = r.stdout
      expect(out).toContain("results:")
      expect(out).toMatch(/^job\s+score\s+policy\s+state\s+player\s+outcome\s+response$/m)
      expect(out).toMatch(/^1\s+echo\s+all-of\s+OK\s+violin\s+OK\s+message=hello from the conductor, length=24$/m)
      expect(out).toMatch(/^\s+viola\s+OK\s+message=hello from the conductor/m)
      expect(out).toMatch(/^\s+cello\s+OK\s+message=hello from the conductor/m)
      expect(out).toMatch(/^2\s+disk-usage\s+one-of\s+OK\s+violin\s+UNK_SCORE\s+error=unknown score "disk-usage"$/m)
      expect(out).toMatch(/^\s+viola\s+OK\s+path=\/, used_percent=\d+, over_threshold=(true|false)$/m)
      expect(out).toMatch(/^3\s+fail\s+one-of\s+FAIL\s+cello\s+FAIL/m)
      expect(out).toMatch(/^\d+\s+deploy\s+all-of\s+OK\s+\w+\s+OK\s+deployed=1\.4\.2/m)
      expect(out).toMatch(/^\d+\s+legacy-hello\s+all-of\s+OK\s+viola\s+OK\s+greeting=hello, name=world$/m)
      expect(out).toMatch(/^—\s+disk-usage\s+all-of\s+REFUSED\s+invalid parameters$/m)
      expect(out).toContain("params.colour")
      // the sample pipeline, after the jobs: build (one-of) → canary → rolling deploy, through the conductor
      const section = out.slice(out.indexOf("\npipeline samples/pipelines/release.yaml"))
      expect(section.length, out).toBeLessThan(out.length)
      expect(section).toMatch(/^started pipeline run 1$/m)
      expect(section).toMatch(/^  run 1: build finished OK \(job \d+\)$/m)
      expect(section).toMatch(/^  run 1: canary finished OK \(job \d+\)$/m)
      expect(section).toMatch(/^  run 1: rollout finished OK \(job \d+\)$/m)
      expect(section).toMatch(/^pipeline run 1 \(release\): OK$/m)
      const version = /^build\s+finished\s+\d+\s+OK\s+one-of\s+\{"ref":"main"\}\s+\w+\s+OK\s+ref=main, version=(1\.4\.\d+)/m.exec(section)?.[1]
      expect(version, section).toBeDefined()
      const v = version!.replace(/\./g, "\\.")
      expect(section).toMatch(new RegExp(`^canary\\s+finished\\s+\\d+\\s+OK\\s+all-of\\s+\\{"version":"${v}"\\}\\s+viola\\s+OK\\s+deployed=${v}`, "m"))
      expect(section).toMatch(new RegExp(`^rollout\\s+finished\\s+\\d+\\s+OK\\s+rolling\\s+\\{"version":"${v}"\\}\\s+violin\\s+OK\\s+deployed=${v}`, "m"))
      expect(section).toMatch(new RegExp(`^\\s+viola\\s+OK\\s+deployed=${v}, host=.*task=\\d+/viola/`, "m"))
      expect(section).toMatch(new RegExp(`^\\s+cello\\s+OK\\s+deployed=${v}`, "m"))
      expect(section).toContain(`• the version built, ${version}, went from build to the canary (viola) and to every player of the rollout (violin, viola, cello)`)
      expect(section.indexOf("pipeline run 1 (release): OK")).toBeLessThan(section.indexOf("• stopping the players and the conductor"))
      expect(out).toContain("• done: every process stopped")
      const dir = /working directory (\S+)/.exec(out)?.[1]
      expect(dir).toBeDefined()
      expect(fs.existsSync(dir!)).toBe(false)
      const pids = [...out.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]))
      expect(pids).toHaveLength(4)
      expect(pids.filter(alive)).toEqual([])
    }))
})

describe("orchestra submit / status / wait", () => {
  it.live("submit --wait exits 0 on OK, 1 on FAIL, 2 on PARTIAL_FAIL; status shows the job", () =>
    Effect.gen(function*() {
      const [ok, fail, partial] = yield* Effect.all([
        cli("submit", "echo", "-p", "lute,lyre", "--scope", "all", "--param", "message=hi there", "--wait"),
        cli("submit", "fail", "-p", "lute", "--scope", "one", "--params", "{\"code\":3}", "--wait"),
        cli("submit", "check", "-p", "lute", "-p", "lyre", "--scope", "all", "--wait")
      ], { concurrency: 3 })
      expect(ok.code, showCli(ok)).toBe(0)
      expect(ok.stdout).toMatch(/job \d+: OK/)
      expect(ok.stdout).toMatch(/lute\s+OK\s+message=hi there, length=8/)
      // live progress on stderr, a line per change: each player's outcome, then the job's state
      expect(ok.stderr, showCli(ok)).toMatch(/job \d+: lute OK/)
      expect(ok.stderr).toMatch(/job \d+: lyre OK/)
      expect(fail.stderr, showCli(fail)).toMatch(/job \d+: lute FAIL/)
      expect(fail.code, showCli(fail)).toBe(1)
      expect(fail.stdout).toMatch(/job \d+: FAIL/)
      expect(partial.code, showCli(partial)).toBe(2)
      const id = Number(/job (\d+): PARTIAL_FAIL/.exec(partial.stdout)?.[1])
      expect(id).toBeGreaterThan(0)

      const status = yield* cli("status", String(id))
      expect(status.code, showCli(status)).toBe(0)
      expect(status.stdout).toContain(`job ${id}: PARTIAL_FAIL`)
      expect(status.stdout).toMatch(/lute\s+OK\s+result=good, player=lute/)
      expect(status.stdout).toMatch(/lyre\s+FAIL\s+result=bad, player=lyre/)
    }).pipe(shared.withLogs))

  it.live("wait --timeout on a pending job exits 4", () =>
    Effect.gen(function*() {
      // ghost is never started: the job stays pending
      const id = yield* submit(c(), { score: "echo", players: ["ghost"], scope: "one", params: { message: "later" } })
      const waited = yield* cli("wait", String(id), "--timeout", "1s")
      expect(waited.code, showCli(waited)).toBe(4)
      expect((yield* statusOf(c(), id)).status).toBe("PENDING")
    }).pipe(shared.withLogs))
})

describe("orchestra submit --plan", () => {
  it.live("shows the players and batches with the validated params (defaults applied), exits 0, and creates no job", () =>
    Effect.gen(function*() {
      // ids are allocated in order: a plan allocating one would show as a gap
      const before = yield* submit(c(), { score: "echo", players: ["lute"], scope: "one", params: { message: "before" } })
      yield* waitJob(c(), before)
      const [rolling, one, json, offline] = yield* Effect.all([
        cli("submit", "disk-usage", "-p", "lute,lyre", "--policy", "rolling", "--options", "{\"batch\":1}", "--param", "path=/", "--plan"),
        cli("submit", "disk-usage", "-p", "lyre", "-p", "lute", "--scope", "one", "--params", "{\"path\":\"/var\",\"threshold\":75}", "--plan"),
        cli("submit", "echo", "-p", "lute,lyre", "--scope", "all", "--param", "message=hi", "--plan", "--json"),
        cli("submit", "echo", "-p", "ghost,lute", "--scope", "all", "--param", "message=hi", "--plan")
      ], { concurrency: 2 })
      expect(rolling.code, showCli(rolling)).toBe(0)
      expect(rolling.stdout).toContain("plan: disk-usage (rolling) on lute,lyre — nothing was submitted")
      expect(rolling.stdout).toContain(`params {"path":"/","threshold":90}`)
      expect(rolling.stdout).toMatch(/^  options \{"batch":1\}$/m)
      expect(rolling.stdout).toMatch(/^  batch 1: lute\n  batch 2: lyre\n  ends OK$/m)
      expect(one.code, showCli(one)).toBe(0)
      expect(one.stdout).toContain("plan: disk-usage (one-of) on lyre,lute")
      expect(one.stdout).toContain(`params {"path":"/var","threshold":75}`)
      expect(one.stdout).toMatch(/^  batch 1: lyre \(else lute\)$/m)
      expect(json.code, showCli(json)).toBe(0)
      const view = JSON.parse(json.stdout) as { targets: unknown; params: unknown; plan: { batches: ReadonlyArray<ReadonlyArray<{ player: string }>> } }
      expect(view.targets).toEqual(["lute", "lyre"])
      expect(view.params).toEqual({ message: "hi" })
      expect(view.plan.batches.map((b) => b.map((t) => t.player))).toEqual([["lute", "lyre"]])
      // ghost is allowlisted but never started: offline, and it has not reported its catalog
      expect(offline.code, showCli(offline)).toBe(0)
      expect(offline.stdout).toMatch(/^  batch 1: ghost, lute$/m)
      expect(offline.stdout).toContain("offline now: ghost")
      expect(offline.stdout).toContain("not checked on ghost")

      const after = yield* submit(c(), { score: "echo", players: ["lute"], scope: "one", params: { message: "after" } })
      expect(after).toBe(before + 1)
      yield* waitJob(c(), after)
      const jobs = yield* cli("jobs", "--json", "--limit", "1000")
      expect(jobs.code, showCli(jobs)).toBe(0)
      const listed = (JSON.parse(jobs.stdout) as { jobs: ReadonlyArray<{ id: number; score: string }> }).jobs
      expect(listed.filter((j) => j.score === "disk-usage")).toEqual([])
      expect(listed.map((j) => j.id)).toContain(after)
    }).pipe(shared.withLogs))

  it.live("invalid params exit as a refused submit does, naming every violation; --url is a usage error", () =>
    Effect.gen(function*() {
      const args = ["submit", "disk-usage", "-p", "lute", "--scope", "one", "--params", "{\"path\":\"tmp\",\"threshold\":150,\"colour\":\"red\"}"] as const
      const [planned, submitted] = yield* Effect.all([cli(...args, "--plan"), cli(...args)], { concurrency: 2 })
      expect(submitted.code, showCli(submitted)).toBe(69)
      expect(planned.code, showCli(planned)).toBe(submitted.code)
      expect(planned.stdout).toBe("")
      for (const what of ["params.path", "params.threshold", "params.colour"]) expect(planned.stderr, showCli(planned)).toContain(what)
      expect(planned.stderr).toBe(submitted.stderr)
      const unknown = yield* cli("submit", "echo", "-p", "lute,stranger", "--scope", "all", "--plan")
      expect(unknown.code, showCli(unknown)).toBe(69)
      expect(unknown.stderr).toContain("Invalid Player")
      const both = yield* cli("submit", "echo", "-p", "lute", "--scope", "one", "--plan", "--wait")
      expect(both.code, showCli(both)).toBe(64)
      const overHttp = yield* runCli(["submit", "echo", "-p", "lute", "--scope", "one", "--plan", "--url", "http://127.0.0.1:9"])
      expect(overHttp.code, showCli(overHttp)).toBe(69)
      expect(overHttp.stderr).toContain("127.0.0.1:9")
    }).pipe(shared.withLogs))
})

describe("orchestra scores validate / configuration errors", () => {
  it.live("scores validate lists every sample score with its interface and parameters; a broken manifest is named by file:line and field", () =>
    Effect.gen(function*() {
      const dir = makeTempDir("validate")
      try {
        const broken = writeScoreDir(path.join(dir, "broken"), {
          echo: {
            script: "#!/bin/sh\necho ok=1\n",
            manifest: "name: echo\ninterface: pipe\nparameters:\n  type: object\nenvironment:\n  timeout: soon\n"
          },
          other: { script: "#!/bin/sh\nexit 0\n", manifest: "name: other\ninterface: teleport\n" }
        }, { samples: false })
        const [samples, bad] = yield* Effect.all([
          runCli(["scores", "validate", LocalCluster.sampleScores]),
          runCli(["scores", "validate", broken])
        ], { concurrency: 2 })
        expect(samples.code, showCli(samples)).toBe(0)
        const names = sampleScores()
        expect(names.length).toBeGreaterThanOrEqual(8)
        // one block per score: its name and interface, then its parameters (or that it has none)
        const blocks = new Map<string, ReadonlyArray<string>>()
        let current: Array<string> | undefined
        for (const line of samples.stdout.split("\n")) {
          const head = /^(\S+)\s+interface=(env|pipe|json)\b/.exec(line)
          if (head !== null) blocks.set(head[1]!, (current = []))
          else if (line.startsWith("    ") && current !== undefined) current.push(line.trim())
        }
        expect([...blocks.keys()].sort()).toEqual(names)
        const parameterLine = /^[A-Za-z_][\w-]*( \(required\))?: \S|^\(no parameters\)$|^\(no parameter schema/
        for (const [name, lines] of blocks) {
          expect(lines.some((l) => parameterLine.test(l)), `${name}: ${JSON.stringify(lines)}`).toBe(true)
        }
        const known: Record<string, ReadonlyArray<string>> = {
          "disk-usage": ["path", "threshold"],
          deploy: ["version", "batch"],
          echo: ["message"],
          fail: ["code"],
          sleep: ["seconds"],
          build: ["ref"]
        }
        for (const [name, params] of Object.entries(known)) {
          for (const p of params) {
            if (blocks.has(name)) expect(blocks.get(name)!.some((l) => l.startsWith(`${p}:`) || l.startsWith(`${p} (required):`)), `${name}.${p}`).toBe(true)
          }
        }
        expect(samples.stdout).toMatch(/^disk-usage\s+interface=pipe/m)
        expect(samples.stdout).toMatch(/^deploy\s+interface=json/m)
        expect(samples.stdout).toMatch(/^\s+path \(required\): string, pattern "\^\/"/m)
        expect(samples.stdout).toMatch(/^\s+threshold: integer, minimum 1, maximum 100, default 90$/m)
        expect(samples.stdout).toMatch(/^\s+version \(required\): string/m)
        expect(samples.stdout).toContain(`${names.length} score(s) ok, 0 excluded`)

        expect(bad.code, showCli(bad)).not.toBe(0)
        expect(bad.stderr).toContain(`${path.join(broken, "echo.yaml")}:6: environment.timeout`)
        expect(bad.stderr).toMatch(/other\.yaml:2: interface/)
      } finally {
        fs.rmSync(dir, { recursive: true, force: true })
      }
    }))

  it.live("a broken conductor config exits 78 naming file, line and field, and starts nothing", () =>
    Effect.gen(function*() {
      const dir = makeTempDir("badconfig")
      try {
        const port = yield* LocalCluster.freePort
        fs.writeFileSync(path.join(dir, "players.txt"), "someone\n")
        fs.writeFileSync(
          path.join(dir, "conductor.yaml"),
          [
            "name: broken", // 1
            "listen:", // 2
            "  host: 127.0.0.1", // 3
            `  port: ${port}`, // 4
            "players: players.txt", // 5
            "audience:", // 6
            "  socket:", // 7
            "    path: broken.sock", // 8
            "store:", // 9
            "  plugin: sqlite", // 10
            "  path: broken.db", // 11
            "heartbeat:", // 12
            "  interval: fast", // 13
            "colour: red" // 14
          ].join("\n") + "\n"
        )
        const r = yield* runCli(["conductor", "--config", "conductor.yaml"], { cwd: dir, timeoutMs: 30_000 })
        expect(r.code, showCli(r)).toBe(78)
        expect(r.stderr).toMatch(/conductor\.yaml:13: heartbeat\.interval/)
        expect(r.stderr).toMatch(/conductor\.yaml:14: colour/)
        expect(fs.readdirSync(dir).sort()).toEqual(["conductor.yaml", "players.txt"])
        expect(yield* connectRefused(port)).toBe(true)
      } finally {
        fs.rmSync(dir, { recursive: true, force: true })
      }
    }))
})
