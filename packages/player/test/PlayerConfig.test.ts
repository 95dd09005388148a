import { NodeFileSystem } from "@effect/platform-node"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, LogLevel } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { PlayerConfig } from "../src/index.js"
import { cleanup, tempDir } from "./support/fixtures.js"

afterEach(cleanup)

const issuesOf = (text: string, file = "/etc/orchestra/player.yaml") => {
  const r = PlayerConfig.decode(text, file)
  if (Either.isRight(r)) throw new Error("expected a config error")
  return r.left.issues.map((i) => `${i.path}: ${i.message}`)
}

describe("PlayerConfig", () => {
  it("a minimal config: defaults, and paths relative to the file's directory", () => {
    const r = PlayerConfig.decode(
      [
        "name: web-1",
        "conductors: [conductor.example.com:7030, 10.0.0.2:7030]",
        "tls: { ca: certs/ca.pem, cert: certs/web-1.pem, key: /abs/web-1-key.pem }",
        "scores: scores",
        "state: ../state"
      ].join("\n"),
      "/etc/orchestra/player.yaml"
    )
    expect(Either.isRight(r)).toBe(true)
    const c = Either.getOrThrow(r)
    expect(c.name).toBe("web-1")
    expect(c.conductors).toEqual(["conductor.example.com:7030", "10.0.0.2:7030"])
    expect(c.transport).toBe("tls")
    expect(c.transportConfig).toEqual({
      tls: { ca: "/etc/orchestra/certs/ca.pem", cert: "/etc/orchestra/certs/web-1.pem", key: "/abs/web-1-key.pem" }
    })
    expect(c.scores).toBe("/etc/orchestra/scores")
    expect(c.state).toBe("/etc/state")
    expect(c.manifests).toEqual([])
    expect(c.slots).toBe(4)
    expect(c.labels).toEqual({})
    expect(c.killGraceMs).toBe(5000)
    expect(c.resendIntervalMs).toBe(30_000)
    expect(c.backoff).toEqual({ initialMs: 500, maxMs: 30_000 })
    expect(c.watchdog).toBe(true)
    expect(c.logLevel).toBe(LogLevel.Info)
  })

  it("every field set; a transport block passes its other keys to the plugin", () => {
    const c = Either.getOrThrow(PlayerConfig.decode(
      [
        "name: db-2",
        "conductors: ['[::1]:7030']",
        "transport: { plugin: tls, connectTimeoutMs: 2000 }",
        "tls: { ca: ca.pem, cert: db-2.pem, key: db-2-key.pem }",
        "conductorName: conductor",
        "heartbeat: { interval: 2s, timeout: 6s }",
        "scores: /srv/scores",
        "manifests: [m1, /m2]",
        "slots: 16",
        "state: /var/lib/orchestra",
        "labels: { role: db, zone: eu-1 }",
        "killGrace: 1500ms",
        "resendInterval: 1m",
        "backoff: { initial: 1s, max: 1m }",
        "watchdog: false",
        "log: { level: debug }"
      ].join("\n"),
      "/cfg/player.yaml"
    ))
    expect(c.transportConfig).toEqual({
      tls: { ca: "/cfg/ca.pem", cert: "/cfg/db-2.pem", key: "/cfg/db-2-key.pem" },
      conductorName: "conductor",
      heartbeat: { intervalMs: 2000, timeoutMs: 6000 },
      connectTimeoutMs: 2000
    })
    expect(c.manifests).toEqual(["/cfg/m1", "/m2"])
    expect(c.slots).toBe(16)
    expect(c.labels).toEqual({ role: "db", zone: "eu-1" })
    expect(c.killGraceMs).toBe(1500)
    expect(c.resendIntervalMs).toBe(60_000)
    expect(c.backoff).toEqual({ initialMs: 1000, maxMs: 60_000 })
    expect(c.watchdog).toBe(false)
    expect(c.logLevel).toBe(LogLevel.Debug)
  })

  it("the memory transport needs neither tls nor host:port addresses", () => {
    const c = Either.getOrThrow(PlayerConfig.decode("name: p\nconductors: [conductor]\ntransport: memory\nscores: s\nstate: st\n", "/x/p.yaml"))
    expect(c.transport).toBe("memory")
    expect(c.transportConfig).toEqual({})
  })

  it("errors name the file, the line and the field — every one of them, unknown keys included", () => {
    const issues = issuesOf(
      [
        "name: web/1", // 1
        "conductors: [good:7030, 'no-port', 'bad:99999']", // 2
        "tls: { ca: ca.pem, cert: c.pem }", // 3
        "scores: s", // 4
        "state: st", // 5
        "slots: 0", // 6
        "colour: blue", // 7
        "killGrace: soon", // 8
        "labels: { 'bad key!': x }" // 9
      ].join("\n")
    )
    const joined = issues.join("\n")
    expect(joined).toMatch(/player\.yaml:1: name: .*"\/"/)
    expect(joined).toMatch(/player\.yaml:3: tls\.key: is required/)
    expect(joined).toMatch(/player\.yaml:6: slots: /)
    expect(joined).toMatch(/player\.yaml:7: colour: unknown key "colour"/)
    expect(joined).toMatch(/player\.yaml:8: killGrace: .*invalid duration/)
    expect(joined).toMatch(/player\.yaml:9: labels/)
  })

  it("cross-field checks are located too: tls required with the tls transport, host:port addresses", () => {
    const issues = issuesOf("name: p\nconductors:\n  - ok:1\n  - nope\nscores: s\nstate: st\n")
    expect(issues).toEqual([
      "/etc/orchestra/player.yaml:1: tls: is required with the tls transport (ca, cert, key)",
      "/etc/orchestra/player.yaml:4: conductors.1: must be host:port with a port in 1..65535 (got \"nope\")"
    ])
  })

  it("missing required fields and YAML syntax errors", () => {
    expect(issuesOf("name: p\n")).toEqual(expect.arrayContaining([
      expect.stringMatching(/conductors: is required/),
      expect.stringMatching(/scores: is required/),
      expect.stringMatching(/state: is required/)
    ]))
    expect(issuesOf("name: p\n  conductors: [x\n")[0]).toMatch(/^\/etc\/orchestra\/player\.yaml:\d+: YAML syntax/)
  })

  it.effect("load reads the file; a missing file names it", () =>
    Effect.gen(function*() {
      const dir = tempDir("cfg")
      const file = path.join(dir, "player.yaml")
      fs.writeFileSync(file, "name: p\nconductors: [c]\ntransport: memory\nscores: scores\nstate: state\n")
      const c = yield* PlayerConfig.load(file)
      expect(c.scores).toBe(path.join(dir, "scores"))
      expect(c.file).toBe(file)
      const missing = yield* Effect.exit(PlayerConfig.load(path.join(dir, "nope.yaml")))
      expect(Exit.isFailure(missing)).toBe(true)
      if (Exit.isFailure(missing)) expect(String(missing.cause)).toMatch(/nope\.yaml.*file not found/)
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it("the commented example in the README is a valid config", () => {
    const readme = fs.readFileSync(new URL("../README.md", import.meta.url), "utf8")
    const yaml = /```yaml\n([\s\S]*?)```/.exec(readme)![1]!
    const c = Either.getOrThrow(PlayerConfig.decode(yaml, "/etc/orchestra/player.yaml"))
    expect(c.name).toBe("web-1")
    expect(c.conductors).toHaveLength(2)
    expect(c.transportConfig).toMatchObject({ conductorName: "conductor", heartbeat: { intervalMs: 5000, timeoutMs: 15_000 } })
    expect(c.state).toBe("/var/lib/orchestra/player")
  })
})
