import { NodeFileSystem } from "@effect/platform-node"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import type { Json } from "@orchestra/core"
import * as cp from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Params, ScoreDirectory } from "../src/index.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const samples = path.resolve(here, "../../../samples/scores")
const manifests = path.resolve(here, "../../../manifests")

let catalog: ScoreDirectory.ScanResult
const spawned: Array<cp.ChildProcess> = []

beforeAll(async () => {
  catalog = await Effect.runPromise(ScoreDirectory.scan(samples).pipe(Effect.provide(NodeFileSystem.layer)))
})

afterAll(() => {
  for (const child of spawned) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, "SIGKILL")
      } catch {
        // already gone
      }
    }
  }
})

const entry = (name: string): ScoreDirectory.ScoreEntry => {
  const e = catalog.scores.find((s) => s.name === name)
  if (e === undefined) throw new Error(`no score ${name}`)
  return e
}

interface Run {
  readonly status: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly response: Record<string, unknown> | undefined
}

/** Run a score as a player would: validate params, build the environment, feed stdin, parse the response. */
const run = (name: string, params: Record<string, unknown>): Run => {
  const e = entry(name)
  const m = e.manifest
  const validator = Either.getOrThrow(Params.compile(m.parameters, { interface: m.interface }))
  const checked = validator.validate(params)
  if (Either.isLeft(checked)) throw new Error(`params refused: ${JSON.stringify(checked.left)}`)
  const env: Record<string, string> = {
    PATH: m.environment.path,
    ...m.environment.variables,
    ORC_TASK_ID: "7/0/1",
    ...(m.interface === "json" ? {} : Either.getOrThrow(Params.toEnvironment(checked.right)))
  }
  const r = cp.spawnSync(e.executable, [], {
    env,
    cwd: m.environment.workdir ?? os.tmpdir(),
    input: m.interface === "json" ? JSON.stringify(checked.right) : "",
    stdio: [m.interface === "json" ? "pipe" : "ignore", "pipe", "pipe"],
    timeout: 20_000,
    killSignal: "SIGKILL",
    maxBuffer: m.environment.maxOutputBytes,
    encoding: "utf8"
  })
  let response: Record<string, unknown> | undefined
  if (m.interface === "pipe") {
    response = {}
    for (const line of r.stdout.split("\n")) {
      const i = line.indexOf("=")
      if (i > 0) response[line.slice(0, i)] = line.slice(i + 1)
    }
  } else if (m.interface === "json" && r.status === 0) {
    response = JSON.parse(r.stdout) as Record<string, unknown>
  }
  if (response !== undefined && m.outputs !== undefined) {
    const outputs = Either.getOrThrow(Params.compile(m.outputs))
    const ok = outputs.validate(response)
    if (Either.isLeft(ok)) throw new Error(`${name}: response does not match outputs: ${JSON.stringify(ok.left)}`)
  }
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, response }
}

describe("sample scores", () => {
  it("scan clean, with the expected interfaces and sources", () => {
    expect(catalog.excluded).toEqual([])
    const summary = Object.fromEntries(catalog.scores.map((s) => [s.name, `${s.manifest.interface}/${s.source}`]))
    expect(summary).toEqual({
      build: "pipe/manifest",
      deploy: "json/manifest",
      "disk-usage": "pipe/manifest",
      echo: "pipe/manifest",
      fail: "env/manifest",
      "legacy-hello": "pipe/legacy-conf",
      noop: "env/manifest",
      sleep: "env/manifest"
    })
  })

  it("YAML manifests are symlinks into manifests/", () => {
    for (const s of catalog.scores.filter((s) => s.source === "manifest")) {
      const link = path.join(samples, `${s.name}.yaml`)
      expect(fs.lstatSync(link).isSymbolicLink(), link).toBe(true)
      expect(fs.readlinkSync(link)).toBe(`../../manifests/${s.name}.yaml`)
      expect(fs.realpathSync(link)).toBe(fs.realpathSync(path.join(manifests, `${s.name}.yaml`)))
    }
  })

  it("every sample has timeout and sane limits", () => {
    for (const s of catalog.scores.filter((s) => s.source === "manifest")) {
      const t = s.manifest.environment.timeoutMs
      expect(t, s.name).toBeGreaterThan(0)
      expect(t!, s.name).toBeLessThanOrEqual(2 * 3_600_000)
    }
    expect(entry("sleep").manifest.environment.timeoutMs).toBeGreaterThan(3_600_000)
  })

  it("echo reports the message and its length", () => {
    const r = run("echo", { message: "héllo wörld" })
    expect(r.status).toBe(0)
    expect(r.response).toEqual({ message: "héllo wörld", length: "11" })
    const multi = run("echo", { message: "a\nb=c" })
    expect(multi.response).toEqual({ message: "a b=c", length: "5" })
    expect(Either.isLeft(Params.validate(entry("echo").manifest.parameters, {}))).toBe(true)
  })

  it("disk-usage reports usage with the default threshold", () => {
    const r = run("disk-usage", { path: "/" })
    expect(r.status).toBe(0)
    expect(r.response!["path"]).toBe("/")
    const used = Number(r.response!["used_percent"])
    expect(Number.isInteger(used) && used >= 0 && used <= 100).toBe(true)
    expect(r.response!["over_threshold"]).toBe(used > 90 ? "true" : "false")
    const low = run("disk-usage", { path: "/", threshold: 1 })
    expect(low.response!["over_threshold"]).toBe(used > 1 ? "true" : "false")
    const missing = run("disk-usage", { path: "/no/such/path/here" })
    expect(missing.status).not.toBe(0)
    expect(missing.stderr).not.toBe("")
    const bad = Params.validate(entry("disk-usage").manifest.parameters, { path: "relative", threshold: 101 }, { interface: "pipe" })
    expect(Either.isLeft(bad) && bad.left.length).toBe(2)
  })

  it("fail exits with the code asked for and writes to stderr", () => {
    const dflt = run("fail", {})
    expect(dflt.status).toBe(1)
    expect(dflt.stderr).toMatch(/exiting with code 1 .*task 7\/0\/1/)
    expect(run("fail", { code: 42 }).status).toBe(42)
    expect(run("fail", { code: 255 }).status).toBe(255)
    expect(Either.isLeft(Params.validate(entry("fail").manifest.parameters, { code: 0 }))).toBe(true)
    expect(Either.isLeft(Params.validate(entry("fail").manifest.parameters, { code: 256 }))).toBe(true)
  })

  it("sleep sleeps the seconds asked for", () => {
    const r = run("sleep", { seconds: 0.2 })
    expect(r.status).toBe(0)
    expect(run("sleep", { seconds: 0 }).status).toBe(0)
    expect(Either.isLeft(Params.validate(entry("sleep").manifest.parameters, { seconds: 3601 }))).toBe(true)
  })

  it("sleep can be cancelled by a signal", async () => {
    const e = entry("sleep")
    const child = cp.spawn(e.executable, [], { env: { PATH: e.manifest.environment.path, ORC_seconds: "30" }, stdio: "ignore" })
    spawned.push(child)
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on("exit", (code, signal) => resolve({ code, signal }))
    )
    await new Promise((resolve) => setTimeout(resolve, 100))
    process.kill(child.pid!, "SIGTERM")
    const result = await exited
    expect(result).toEqual({ code: null, signal: "SIGTERM" })
  })

  it("build reports a stable version and an artifact", () => {
    const a = run("build", {})
    expect(a.status).toBe(0)
    expect(a.response!["ref"]).toBe("main")
    expect(a.response!["version"]).toMatch(/^1\.4\.[0-9]+$/)
    expect(a.response!["artifact"]).toBe(`build-main-${a.response!["version"]}.tar.gz`)
    expect(run("build", {}).response).toEqual(a.response)
    const feature = run("build", { ref: "feature/x y" })
    expect(feature.response!["artifact"]).toMatch(/^build-feature_x_y-1\.4\.[0-9]+\.tar\.gz$/)
  })

  it("deploy reads JSON params on stdin and answers JSON", () => {
    const r = run("deploy", { version: "1.2.3", batch: 2 })
    expect(r.status).toBe(0)
    expect(r.response).toEqual({ deployed: "1.2.3", host: os.hostname(), batch: 2, task: "7/0/1" })
    expect(r.stderr).toMatch(/deploying 1\.2\.3/)
    const v = Params.validate(entry("deploy").manifest.parameters, { version: "1.2", batch: 1.5 }, { interface: "json" })
    expect(Either.isLeft(v) && v.left.map((i) => i.path)).toEqual(["params.version", "params.batch"])
    // garbage on stdin: a clear failure
    const g = cp.spawnSync(entry("deploy").executable, [], {
      env: { PATH: entry("deploy").manifest.environment.path },
      input: "not json",
      timeout: 20_000,
      killSignal: "SIGKILL",
      encoding: "utf8"
    })
    expect(g.status).toBe(2)
    expect(g.stderr).toMatch(/not JSON/)
  })

  it("noop exits 0 with no output", () => {
    const r = run("noop", {})
    expect(r.status).toBe(0)
    expect(r.stdout).toBe("")
    expect(Either.isLeft(Params.validate(entry("noop").manifest.parameters, { x: 1 }))).toBe(true)
  })

  it("legacy-hello runs with flat string params from its .conf", () => {
    const e = entry("legacy-hello")
    expect(e.manifestFile).toBe(path.join(samples, "legacy-hello.conf"))
    expect(e.manifest.parameters).toBeUndefined()
    expect(run("legacy-hello", {}).response).toEqual({ greeting: "hello", name: "world" })
    expect(run("legacy-hello", { name: "orchestra" }).response).toEqual({ greeting: "hello", name: "orchestra" })
  })

  it("catalog info is what a player reports", () => {
    const infos: ReadonlyArray<Json.JsonObject | undefined> = catalog.scores.map((s) => s.info.parameters)
    expect(infos.filter((p) => p !== undefined)).toHaveLength(7)
    for (const s of catalog.scores) {
      expect(s.info.digest).toMatch(/^[0-9a-f]{64}$/)
      expect(s.info.name).toBe(s.name)
    }
  })
})
