import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { TransportMemory } from "@orchestra/transport-memory"
import { Certs, transportTls } from "@orchestra/transport-tls"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as ConductorLive from "../src/ConductorLive.js"
import { FakePlayer, p, waitFor, waitJob } from "./support.js"

const here = path.dirname(fileURLToPath(import.meta.url))

/** A temp dir inside the package, so a plugin copied there resolves the workspace's packages. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(here, ".tmp-live-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

const ask = (socket: string, request: string) =>
  Effect.async<string, Error>((resume) => {
    const c = net.connect(socket, () => c.write(request))
    let out = ""
    c.setEncoding("utf8")
    c.on("data", (d: string) => (out += d))
    c.on("end", () => resume(Effect.succeed(out)))
    c.on("error", (e) => resume(Effect.fail(e)))
  })

const writeConfig = (dir: string, name: string, extra = "") => {
  fs.mkdirSync(path.join(dir, "policies"), { recursive: true })
  fs.copyFileSync(path.join(here, "fixtures", "first-ok-policy.mjs"), path.join(dir, "policies", "first-ok.mjs"))
  fs.writeFileSync(path.join(dir, "players.txt"), "# who may connect\np1\n\np2 # the second\n")
  const file = path.join(dir, "conductor.yaml")
  fs.writeFileSync(
    file,
    `name: ${name}
players: players.txt
audience:
  socket: { path: run/audience.sock, mode: "0600" }
store: { plugin: memory }
transport: { plugin: memory }
plugins: [./policies/first-ok.mjs]
log: { level: error }
${extra}`
  )
  return file
}

describe("ConductorLive", () => {
  it.scopedLive("starts from a config file: user policy from a path, audience socket, SIGHUP reloads the allowlist", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = writeConfig(dir, "live-one")
      const running = yield* ConductorLive.start(file)
      expect(running.conductor.address).toBe("memory://live-one")
      expect(running.registry.names("policy")).toEqual(["all-of", "first-ok", "one-of", "rolling", "stages"])
      const socket = path.join(dir, "run", "audience.sock")
      expect(running.conductor.socketPath).toBe(socket)
      expect(fs.statSync(socket).mode & 0o777).toBe(0o600)

      const p1 = new FakePlayer(p("p1"), () => ({ outcome: "OK", response: { hi: "there" } }))
      yield* p1.connect(TransportMemory.globalHub, "memory://live-one")
      expect(yield* ask(socket, `{"op":"queue","score":"noop","players":["p1"],"policy":"first-ok","options":{"note":"x"}}`)).toBe(`["OK",1]\n`)
      const job = yield* waitJob(running.conductor.store, 1 as never)
      expect(job.state).toBe("OK")
      expect(job.request.policy).toEqual({ name: "first-ok", options: { note: "x" } })

      // remove p1 from the allowlist and send SIGHUP
      fs.writeFileSync(path.join(dir, "players.txt"), "p2\n")
      process.kill(process.pid, "SIGHUP")
      yield* waitFor("p1 to be removed", Effect.sync(() => !running.conductor.engine.isAllowed("p1")))
      yield* waitFor("p1's session to be closed", Effect.sync(() => !p1.online))
      expect(running.conductor.engine.allowlist()).toEqual(["p2"])
      expect(yield* ask(socket, `{"op":"queue","score":"noop","players":["p1"],"scope":"one"}`)).toBe(`["Error","Invalid Player"]\n`)

      // a broken allowlist keeps the previous one in force
      fs.writeFileSync(path.join(dir, "players.txt"), "p2\nbad/name\n")
      yield* running.reload
      expect(running.conductor.engine.allowlist()).toEqual(["p2"])
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("refuses to start on an unknown plugin, naming the known ones", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = writeConfig(dir, "live-two")
      fs.writeFileSync(file, fs.readFileSync(file, "utf8").replace("store: { plugin: memory }", "store: { plugin: mongo }"))
      const e = yield* Effect.flip(ConductorLive.start(file))
      expect(e._tag).toBe("UnknownPlugin")
      expect(e.message).toBe(`unknown store plugin "mongo" (known: memory, sqlite)`)
      // nothing was left listening
      expect(fs.existsSync(path.join(dir, "run", "audience.sock"))).toBe(false)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.scopedLive("refuses to start on a bad config or allowlist, naming file and line", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = writeConfig(dir, "live-three", "retension: 30d\n")
      const e = yield* Effect.flip(ConductorLive.start(file))
      expect(e._tag).toBe("ConfigError")
      expect(e.message).toContain(`${file}:9: retension`)
      const good = writeConfig(dir, "live-three")
      fs.writeFileSync(path.join(dir, "players.txt"), "p1\n\nno way\n")
      const bad = yield* Effect.flip(ConductorLive.start(good))
      expect(bad.message).toContain(`${path.join(dir, "players.txt")}:3`)
      // a plugin path that does not exist
      fs.writeFileSync(path.join(dir, "players.txt"), "p1\n")
      fs.writeFileSync(good, fs.readFileSync(good, "utf8").replace("./policies/first-ok.mjs", "./policies/missing.mjs"))
      const missing = yield* Effect.flip(ConductorLive.start(good))
      expect(missing._tag).toBe("PluginLoadError")
      expect(missing.message).toContain("missing.mjs")
    }).pipe(Effect.provide(NodeContext.layer)))
})

describe("ConductorLive over TLS", () => {
  it.scopedLive("players connect with certificates; jobs submitted on the socket complete; a stranger's certificate is refused", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const certs = path.join(dir, "certs")
      yield* Certs.init({ dir: certs, conductor: "conductor", players: ["p1", "p2", "stranger"] })
      fs.writeFileSync(path.join(dir, "players.txt"), "p1\np2\n")
      const file = path.join(dir, "conductor.yaml")
      fs.writeFileSync(
        file,
        `name: conductor
listen: { host: 127.0.0.1, port: 0 }
tls: { ca: certs/ca.pem, cert: certs/conductor.pem, key: certs/conductor-key.pem, crl: certs/crl.pem }
players: players.txt
audience: { socket: { path: audience.sock } }
store: { plugin: sqlite, path: state/orchestra.db, synchronous: NORMAL }
heartbeat: { interval: 1s, timeout: 5s }
log: { level: error }
`
      )
      const running = yield* ConductorLive.start(file, { signals: false })
      const address = running.conductor.address
      expect(address).toMatch(/^127\.0\.0\.1:\d+$/)
      const f = Certs.files(certs)
      const playerTransport = (name: string) =>
        transportTls().player(
          { tls: { ca: f.ca, cert: f.cert(name), key: f.key(name) }, conductorName: "conductor" },
          { baseDir: dir, log: () => {} }
        )
      const p1 = new FakePlayer(p("p1"), () => ({ outcome: "OK", response: { via: "tls" } }))
      const p2 = new FakePlayer(p("p2"), () => ({ outcome: "OK" }))
      yield* p1.connect(yield* playerTransport("p1"), address)
      yield* p2.connect(yield* playerTransport("p2"), address)
      const stranger = yield* Effect.flip(new FakePlayer(p("stranger")).connect(yield* playerTransport("stranger"), address))
      expect(String((stranger as { reason?: string }).reason ?? (stranger as Error).message)).toContain("allowlist")
      const socket = path.join(dir, "audience.sock")
      const ids: Array<number> = []
      for (let i = 0; i < 40; i++) {
        const reply = JSON.parse(yield* ask(socket, `{"op":"queue","score":"noop","players":["p1","p2"],"scope":"${i % 2 === 0 ? "one" : "all"}"}`)) as [string, number]
        expect(reply[0]).toBe("OK")
        ids.push(reply[1])
      }
      for (const id of ids) expect((yield* waitJob(running.conductor.store, id as never, 30_000)).state).toBe("OK")
      expect(yield* ask(socket, `{"op":"status","id":${ids[1]}}`)).toBe(
        `["OK",{"status":"OK","players":{"p1":{"status":"OK","response":{"via":"tls"}},"p2":{"status":"OK","response":{}}}}]\n`
      )
    }).pipe(Effect.provide(NodeContext.layer)))
})
