import { describe, expect, it } from "vitest"
import * as childProcess from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Schema } from "effect"
import * as Audience from "../src/Audience.js"
import * as Exit from "../src/Exit.js"
import * as Output from "../src/Output.js"
import { binPath } from "../src/LocalCluster.js"

const orchestra = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  childProcess.spawnSync(process.execPath, [binPath, ...args], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 30_000 })

describe("orchestra command", () => {
  it("--help lists every command planned in DESIGN.md", () => {
    const r = orchestra(["--help"])
    expect(r.status).toBe(0)
    for (const command of ["conductor", "player", "submit", "status", "wait", "watch", "cancel", "jobs", "players", "scores validate", "scores list", "pipeline run", "pipeline validate", "pipeline status", "schedules validate", "schedules list", "certs init", "certs revoke", "demo"]) {
      expect(r.stdout).toMatch(new RegExp(`- ${command}\\b`))
    }
  })

  it("pipeline status over --url with no conductor there exits 69 naming where it tried", () => {
    const r = orchestra(["pipeline", "status", "1", "--url", "http://127.0.0.1:9"])
    expect(r.status).toBe(Exit.codes.unavailable)
    expect(r.stderr).toContain("127.0.0.1:9")
  })

  it("pipeline validate checks the sample pipeline against the sample scores; run --plan shows the plan", () => {
    const root = path.resolve(__dirname, "..", "..", "..")
    const file = path.join(root, "samples", "pipelines", "release.yaml")
    const ok = orchestra(["pipeline", "validate", file, "--scores", path.join(root, "samples", "scores")])
    expect(ok.stderr).toBe("")
    expect(ok.status).toBe(0)
    expect(ok.stdout).toContain("pipeline release is valid (3 jobs)")
    expect(ok.stdout).toMatch(/1\. build\n\s+2\. canary\n\s+3\. rollout/)
    const plan = orchestra(["pipeline", "run", file, "--param", "ref=main", "--plan", "--scores", path.join(root, "samples", "scores")])
    expect(plan.status).toBe(0)
    expect(plan.stdout).toContain("rollout")
    expect(plan.stdout).toContain("<from jobs.build.output.version>")
    const missing = orchestra(["pipeline", "run", file, "--plan"])
    expect(missing.status).toBe(Exit.codes.usage)
    expect(missing.stderr).toContain("ref")
  })

  it("pipeline validate lists every type error with its line before anything runs, and exits 78", () => {
    const root = path.resolve(__dirname, "..", "..", "..")
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchestra-pipeline-"))
    try {
      const file = path.join(dir, "broken.yaml")
      fs.writeFileSync(file, [
        "name: broken",
        "jobs:",
        "  build:",
        "    score: build",
        "    players: [a]",
        "    policy: one-of",
        "    params: { ref: main }",
        "  deploy:",
        "    needs: [build]",
        "    score: deploy",
        "    players: [a]",
        "    policy: all-of",
        "    params:",
        "      version: \"${{ jobs.build.output.nosuch }}\"",
        "      batch: \"${{ jobs.build.output.version }}\"",
        "  loop-a:",
        "    needs: [loop-b]",
        "    score: noop",
        "    players: [a]",
        "    policy: one-of",
        "  loop-b:",
        "    needs: [loop-a]",
        "    score: noop",
        "    players: [a]",
        "    policy: one-of",
        ""
      ].join("\n"))
      const r = orchestra(["pipeline", "validate", file, "--scores", path.join(root, "samples", "scores")])
      expect(r.status).toBe(Exit.codes.config)
      expect(r.stderr).toMatch(/broken\.yaml:14\b[^\n]*nosuch/)
      expect(r.stderr).toMatch(/broken\.yaml:15\b[^\n]*integer/)
      expect(r.stderr).toMatch(/cycle/)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("schedules validate shows the sample schedules' next fire times in their zones; a broken one exits 78 with file and line", () => {
    const root = path.resolve(__dirname, "..", "..", "..")
    const samples = ["disk-usage.yaml", "nightly-release.yaml"].map((f) => path.join(root, "samples", "schedules", f))
    const ok = orchestra(["schedules", "validate", ...samples, "--next", "2"])
    expect(ok.stderr).toBe("")
    expect(ok.status).toBe(0)
    expect(ok.stdout).toContain(`${samples[1]}: schedule nightly-release is valid: pipeline ../pipelines/release.yaml at "30 2 * * *" (Europe/Berlin); overlap skip, missed run-once`)
    // 02:30 in Berlin is 01:30 or 00:30 UTC, by the season
    expect(ok.stdout).toMatch(/next \d{4}-\d{2}-\d{2} 02:30 Europe\/Berlin {2}\(\d{4}-\d{2}-\d{2}T0[01]:30:00\.000Z\)/)
    expect(ok.stdout.match(/ next /g)?.length).toBe(4)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchestra-schedules-"))
    try {
      const bad = path.join(dir, "bad.yaml")
      fs.writeFileSync(bad, 'name: bad\ncron: "61 * * * *"\npipeline: nope.yaml\n')
      const r = orchestra(["schedules", "validate", bad])
      expect(r.status).toBe(Exit.codes.config)
      expect(r.stderr).toContain(`${bad}:2: cron:`)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("schedules list over --url with no conductor there exits 69 naming where it tried", () => {
    const r = orchestra(["schedules", "list", "--url", "http://127.0.0.1:9"])
    expect(r.status).toBe(Exit.codes.unavailable)
    expect(r.stderr).toContain("127.0.0.1:9")
  })

  it("token new prints a token and a config entry holding only its SHA-256, with the limits given", () => {
    const r = orchestra(["token", "new", "--name", "deployer", "--score", "deploy", "--player", "web1", "--json"])
    expect(r.status).toBe(0)
    const { entry, token } = JSON.parse(r.stdout) as { token: string; entry: Record<string, unknown> }
    expect(token).toMatch(/^orc_[A-Za-z0-9_-]{43}$/)
    const digest = `sha256:${crypto.createHash("sha256").update(token).digest("hex")}`
    expect(entry).toEqual({ name: "deployer", hash: digest, scores: ["deploy"], players: ["web1"] })
    expect(r.stdout.split(token).length).toBe(2)
  })

  it("an unknown flag is a usage error (64)", () => {
    const r = orchestra(["status", "--no-such-flag", "1"])
    expect(r.status).toBe(Exit.codes.usage)
  })

  it("submit without --scope or --policy is a usage error naming both", () => {
    const r = orchestra(["submit", "echo", "-p", "a", "--socket", "/nonexistent.sock"])
    expect(r.status).toBe(Exit.codes.usage)
    expect(r.stderr).toContain("--scope one|all or --policy")
  })

  it("submit --plan over --url with no conductor there exits 69; --plan with --wait is a usage error", () => {
    const r = orchestra(["submit", "echo", "-p", "a", "--scope", "one", "--plan", "--url", "http://127.0.0.1:9"])
    expect(r.status).toBe(Exit.codes.unavailable)
    expect(r.stderr).toContain("127.0.0.1:9")
    const both = orchestra(["submit", "echo", "-p", "a", "--scope", "one", "--plan", "--wait", "--socket", "/nonexistent.sock"])
    expect(both.status).toBe(Exit.codes.usage)
    expect(both.stderr).toContain("--plan or --wait")
  })

  it("submit --plan with no conductor at the socket: exit 69, as submit", () => {
    const r = orchestra(["submit", "echo", "-p", "a", "--scope", "one", "--plan", "--socket", path.join(os.tmpdir(), "orchestra-none.sock")])
    expect(r.status).toBe(Exit.codes.unavailable)
    expect(r.stderr).toContain("is the conductor running")
  })

  it("no conductor at the socket: exit 69 with a message saying so", () => {
    const r = orchestra(["status", "1", "--socket", path.join(os.tmpdir(), "orchestra-none.sock")])
    expect(r.status).toBe(Exit.codes.unavailable)
    expect(r.stderr).toContain("is the conductor running")
  })

  it("ORCHESTRA_SOCKET is the socket when --socket is not given", () => {
    const sock = path.join(os.tmpdir(), "orchestra-env-none.sock")
    const r = orchestra(["status", "1"], { ORCHESTRA_SOCKET: sock })
    expect(r.stderr).toContain(sock)
  })

  it("a broken conductor config exits 78 naming file, line and field", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchestra-cli-"))
    try {
      const file = path.join(dir, "conductor.yaml")
      fs.writeFileSync(path.join(dir, "players.txt"), "p1\n")
      fs.writeFileSync(file, "name: c\nplayers: players.txt\nlisten:\n  host: 127.0.0.1\n  prot: 7030\n")
      const r = orchestra(["conductor", "--config", file])
      expect(r.status).toBe(Exit.codes.config)
      expect(r.stderr).toContain(`${file}:5`)
      expect(r.stderr).toContain("prot")
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("certs init then revoke writes the files a newcomer needs", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchestra-cli-certs-"))
    try {
      const init = orchestra(["certs", "init", "--dir", dir, "--conductor", "c", "--player", "p1", "--player", "p2"])
      expect(init.status).toBe(0)
      for (const f of ["ca.pem", "ca-key.pem", "c.pem", "c-key.pem", "p1.pem", "p1-key.pem", "p2.pem", "p2-key.pem", "crl.pem"]) {
        expect(fs.existsSync(path.join(dir, f))).toBe(true)
      }
      const before = fs.readFileSync(path.join(dir, "crl.pem"), "utf8")
      const revoke = orchestra(["certs", "revoke", "--dir", dir, "p2"])
      expect(revoke.status).toBe(0)
      expect(fs.readFileSync(path.join(dir, "crl.pem"), "utf8")).not.toBe(before)
      expect(orchestra(["certs", "revoke", "--dir", dir, "nobody"]).status).toBe(Exit.codes.usage)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe("submit --plan output", () => {
  it("names the job, its params and options, one line per batch, and what was not checked or is offline", () => {
    const view = Schema.decodeUnknownSync(Audience.JobPlanReply)({
      score: "deploy",
      policy: { name: "rolling", options: { batch: 2 } },
      targets: ["a", "b", "c"],
      targetLabels: {},
      params: { version: "1.2.3" },
      unchecked: ["c"],
      offline: ["c"],
      plan: {
        policy: "rolling",
        batches: [
          [{ key: "a", player: "a", candidates: ["a"] }, { key: "b", player: "b", candidates: ["b"] }],
          [{ key: "c", player: "c", candidates: ["c", "a"] }]
        ],
        finished: { state: "OK" },
        truncated: false
      }
    })
    expect(Audience.describePlan(view).split("\n")).toEqual([
      "plan: deploy (rolling) on a,b,c — nothing was submitted",
      `  params {"version":"1.2.3"}`,
      `  options {"batch":2}`,
      "  batch 1: a, b",
      "  batch 2: c (else a)",
      "  ends OK",
      "  not checked on c (no catalog reported yet: they check the score and params themselves)",
      "  offline now: c (their tasks would wait for them)"
    ])
  })
})

describe("Exit codes", () => {
  it("tell the job's state", () => {
    expect(Exit.ofJobState("OK")).toBe(0)
    expect(Exit.ofJobState("FAIL")).toBe(1)
    expect(Exit.ofJobState("PARTIAL_FAIL")).toBe(2)
    expect(Exit.ofJobState("CANCELLED")).toBe(3)
    expect(Exit.ofJobState("PENDING")).toBe(4)
  })
})

describe("Output", () => {
  it("aligns table columns", () => {
    const t = Output.table(["a", "bb"], [["xxx", "y"], ["z", "wwww"]]).split("\n")
    expect(t[0]).toBe("a    bb")
    expect(t[2]).toBe("xxx  y")
    expect(t[3]).toBe("z    wwww")
  })
  it("shortens long responses", () => {
    expect(Output.response({ k: "v".repeat(100) }, 20)).toHaveLength(20)
    expect(Output.response({ a: "1", b: { c: 2 } })).toBe("a=1, b={\"c\":2}")
  })
})
