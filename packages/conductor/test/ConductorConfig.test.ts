import { describe, expect, it } from "@effect/vitest"
import { NodeFileSystem } from "@effect/platform-node"
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Allowlist from "../src/Allowlist.js"
import * as ConductorConfig from "../src/ConductorConfig.js"

const full = `# a conductor
name: conductor-1
listen: { host: 127.0.0.1, port: 7031 }
tls:
  ca: certs/ca.pem
  cert: certs/conductor.pem
  key: /etc/orchestra/conductor.key
  crl: certs/crl.pem
players: players.txt
audience:
  socket:
    path: run/conductor.sock
    mode: "0640"
store:
  plugin: sqlite
  path: state/orchestra.db
  synchronous: NORMAL
plugins: [./policies/canary.js, "@acme/orchestra-quorum"]
schedules: [schedules, /etc/orchestra/nightly.yaml]
retention: 30d
heartbeat: { interval: 5s, timeout: 15s }
log: { level: debug }
`

describe("ConductorConfig", () => {
  it("decodes a full file, resolving paths against its directory", () => {
    const c = Either.getOrThrow(ConductorConfig.decode(full, "/srv/orchestra/conductor.yaml"))
    expect(c).toEqual({
      file: "/srv/orchestra/conductor.yaml",
      baseDir: "/srv/orchestra",
      name: "conductor-1",
      playersFile: "/srv/orchestra/players.txt",
      audienceSocket: { path: "/srv/orchestra/run/conductor.sock", mode: 0o640 },
      store: { plugin: "sqlite", config: { path: "state/orchestra.db", synchronous: "NORMAL" } },
      transport: {
        plugin: "tls",
        config: {
          name: "conductor-1",
          listen: { host: "127.0.0.1", port: 7031 },
          tls: {
            ca: "/srv/orchestra/certs/ca.pem",
            cert: "/srv/orchestra/certs/conductor.pem",
            key: "/etc/orchestra/conductor.key",
            crl: "/srv/orchestra/certs/crl.pem"
          },
          heartbeat: { intervalMs: 5000, timeoutMs: 15000 }
        }
      },
      plugins: ["./policies/canary.js", "@acme/orchestra-quorum"],
      scheduleFiles: ["/srv/orchestra/schedules", "/etc/orchestra/nightly.yaml"],
      retentionMs: 30 * 86_400_000,
      logLevel: "debug"
    })
  })

  it("fills defaults for a minimal file", () => {
    const c = Either.getOrThrow(ConductorConfig.decode("players: players.txt\ntransport: { plugin: memory }\n", "/x/c.yaml"))
    expect(c.name).toBe("conductor")
    expect(c.store).toEqual({ plugin: "sqlite", config: { path: "orchestra.db" } })
    expect(c.transport).toEqual({ plugin: "memory", config: { name: "conductor" } })
    expect(c.audienceSocket).toBeUndefined()
    expect(c.retentionMs).toBeUndefined()
    expect(c.logLevel).toBe("info")
  })

  it("reads modes as octal digits, as a string or a number", () => {
    const mode = (m: string) =>
      Either.map(ConductorConfig.decode(`players: p\naudience: { socket: { path: s, mode: ${m} } }\n`, "/c.yaml"), (c) => c.audienceSocket!.mode)
    expect(mode(`"0660"`)).toEqual(Either.right(0o660))
    expect(mode(`660`)).toEqual(Either.right(0o660))
    expect(mode(`"0o600"`)).toEqual(Either.right(0o600))
    const bad = mode(`"0999"`)
    expect(Either.isLeft(bad) && bad.left.message).toContain(`/c.yaml:2: audience.socket.mode: invalid file mode "0999"`)
  })

  it("names the file, line and field of every mistake, unknown keys included", () => {
    const text = `name: c
listn: { port: 1 }
players: players.txt
listen:
  port: seventy
store:
  plugin: sqlite
log: { level: loud }
`
    const r = ConductorConfig.decode(text, "conductor.yaml")
    expect(Either.isLeft(r)).toBe(true)
    if (Either.isLeft(r)) {
      const issues = r.left.issues.map((i) => i.path)
      expect(issues).toEqual(["conductor.yaml:2: listn", "conductor.yaml:5: listen.port", "conductor.yaml:8: log.level"])
      expect(r.left.issues[0]!.message).toBe(`unknown key "listn"`)
      expect(r.left.message).toContain("conductor.yaml:5: listen.port")
    }
    const missing = ConductorConfig.decode("name: c\n", "c.yaml")
    expect(Either.isLeft(missing) && missing.left.issues).toEqual([{ path: "c.yaml:1: players", message: "is required" }])
    const syntax = ConductorConfig.decode("players: [unclosed\n", "c.yaml")
    expect(Either.isLeft(syntax) && syntax.left.message).toContain("c.yaml:")
  })
})

describe("Allowlist", () => {
  it("reads one name per line with comments and blank lines", () => {
    const names = Allowlist.parse("# players\nweb-1\n\n  web-2  # the second\nweb-1\n#db\n", "players.txt")
    expect(names).toEqual(Either.right(["web-1", "web-2"]))
  })

  it("names the line of every invalid name", () => {
    const r = Allowlist.parse("ok\nbad/name\nfine\ntwo words\n", "players.txt")
    expect(Either.isLeft(r)).toBe(true)
    if (Either.isLeft(r)) {
      expect(r.left.issues.map((i) => i.path)).toEqual(["players.txt:2", "players.txt:4"])
      expect(r.left.issues[0]!.message).toContain(`"bad/name"`)
      expect(r.left.message).toContain("players.txt:2")
    }
  })
})

describe("the README example", () => {
  it("is a valid conductor.yaml", () => {
    const readme = fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "README.md"), "utf8")
    const section = readme.slice(readme.indexOf("## conductor.yaml"))
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)![1]!
    const c = ConductorConfig.decode(yaml, "/etc/orchestra/conductor.yaml")
    expect(Either.isRight(c)).toBe(true)
    if (Either.isRight(c)) {
      expect(c.right.audienceSocket).toEqual({ path: "/etc/orchestra/run/conductor.sock", mode: 0o660 })
      expect(c.right.plugins).toEqual(["./policies/canary.js"])
      expect(c.right.retentionMs).toBe(30 * 86_400_000)
    }
  })
})

describe("schedules in the config", () => {
  const setup = (files: Record<string, string>, schedules: string) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchestra-config-schedules-"))
    for (const [name, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true })
      fs.writeFileSync(path.join(dir, name), text)
    }
    fs.writeFileSync(path.join(dir, "players.txt"), "p1\n")
    fs.writeFileSync(path.join(dir, "conductor.yaml"), `players: players.txt\nschedules: ${schedules}\n`)
    return dir
  }
  const load = (dir: string) =>
    Effect.runPromise(Effect.either(ConductorConfig.load(path.join(dir, "conductor.yaml"))).pipe(Effect.provide(NodeFileSystem.layer)))
  const job = (name: string, cron = "*/5 * * * *") => `name: ${name}\ncron: "${cron}"\njob: { score: noop, players: [p1], policy: one-of }\n`
  const pipeline = `name: rel
params: { type: object, required: [ref], properties: { ref: { type: string } } }
jobs:
  build: { score: build, players: [p1], policy: one-of, params: { ref: "\${{ params.ref }}" } }
`

  it("loads schedule files and directories (yaml only, dotfiles skipped), paths relative to the config, a pipeline's text with it", async () => {
    const dir = setup({
      "schedules/a.yaml": job("a"),
      "schedules/b.yml": `name: b\ncron: "0 3 * * *"\ntimezone: Europe/Berlin\npipeline: ../pipelines/rel.yaml\nparams: { ref: main }\n`,
      "schedules/.hidden.yaml": "broken: [",
      "schedules/README.md": "not a schedule",
      "pipelines/rel.yaml": pipeline,
      "one.yaml": job("one")
    }, "[schedules, one.yaml]")
    try {
      const r = await load(dir)
      if (Either.isLeft(r)) throw new Error(r.left.message)
      expect(r.right.scheduleFiles).toEqual([path.join(dir, "schedules"), path.join(dir, "one.yaml")])
      expect(r.right.schedules.map((l) => [l.schedule.name, l.schedule.timezone, l.pipeline?.file])).toEqual([
        ["a", "UTC", undefined],
        ["b", "Europe/Berlin", "rel.yaml"],
        ["one", "UTC", undefined]
      ])
      expect(r.right.schedules[1]!.pipeline!.document).toBe(pipeline)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("refuses to start on any broken schedule: every problem with its file and line, duplicates and missing files too", async () => {
    const dir = setup({
      "schedules/a.yaml": job("a"),
      "schedules/b.yaml": job("b", "61 * * * *"),
      "schedules/c.yaml": `name: c\ncron: "* * * * *"\npipeline: ../nope.yaml\n`,
      "also-a.yaml": job("a")
    }, "[schedules, also-a.yaml, missing.yaml]")
    try {
      const r = await load(dir)
      if (Either.isRight(r)) throw new Error("expected the config to be refused")
      expect(r.left._tag).toBe("ConfigError")
      const issues = r.left.issues.map((i) => `${i.path}: ${i.message}`)
      expect(issues.find((i) => i.startsWith(`${path.join(dir, "schedules", "b.yaml")}:2: cron`))).toBeDefined()
      expect(issues.find((i) => i.startsWith(`${path.join(dir, "schedules", "c.yaml")}:3: pipeline`))).toBeDefined()
      expect(issues).toContain(`${path.join(dir, "also-a.yaml")}: name: schedule "a" is also defined in ${path.join(dir, "schedules", "a.yaml")}`)
      expect(issues.find((i) => i.endsWith(`cannot read ${path.join(dir, "missing.yaml")}: no such file or directory`))).toBeDefined()
      expect(r.left.message).toMatch(/^invalid schedules \(5 issues\)/)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
