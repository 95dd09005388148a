/**
 * The wired binary: transport plugin resolution, the SIGHUP wiring, and the
 * compiled daemon (`dist`) run as a real child process over real mutual TLS
 * — killed with SIGKILL while a score runs, then restarted.
 */
import { Errors, Names, Protocol } from "@orchestra/core"
import { Certs, layerConductor } from "@orchestra/transport-tls"
import { afterAll, afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Ref } from "effect"
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { PlayerConfig, PlayerLive, NodePluginLoader } from "../src/index.js"
import * as Conductor from "./support/conductor.js"
import { alive, assignment, cleanup, readPid, tempDir, track, waitFor, writeScore } from "./support/fixtures.js"

afterEach(cleanup)

const packageDir = fileURLToPath(new URL("..", import.meta.url))
const runner = path.join(packageDir, "test", "support", "run-player.mjs")
const WATCHDOG_TEXT = "orphaned && watched.size"

/** Watchdog helpers still alive (they exit on their own once their orphans are gone). */
const watchdogs = (): Array<number> =>
  fs.readdirSync("/proc").filter((n) => /^\d+$/.test(n)).map(Number).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(WATCHDOG_TEXT) && alive(pid)
    } catch {
      return false
    }
  })
const watchdogsBefore = new Set(watchdogs())
afterAll(() => {
  for (const pid of watchdogs()) if (!watchdogsBefore.has(pid)) track(pid)
  cleanup()
})

const configFor = (
  dir: string,
  fields: { readonly address: string; readonly certs: string; readonly scores: string; readonly state: string; readonly extra?: string }
) => {
  const file = path.join(dir, "player.yaml")
  fs.writeFileSync(
    file,
    [
      "name: p1",
      `conductors: ["${fields.address}"]`,
      `tls: { ca: ${fields.certs}/ca.pem, cert: ${fields.certs}/p1.pem, key: ${fields.certs}/p1-key.pem }`,
      "conductorName: conductor",
      `scores: ${path.relative(dir, fields.scores)}`,
      `state: ${fields.state}`,
      "slots: 2",
      "labels: { role: test }",
      "killGrace: 300ms",
      "backoff: { initial: 100ms, max: 500ms }",
      fields.extra ?? ""
    ].join("\n")
  )
  return file
}

/** Start the compiled player as a child process; its stderr goes to a file. */
const spawnPlayer = (config: string, logFile: string) => {
  const log = fs.openSync(logFile, "a")
  const child = ChildProcess.spawn(process.execPath, [runner, config], {
    cwd: packageDir,
    stdio: ["ignore", log, log]
  })
  fs.closeSync(log)
  track(child.pid!)
  return child
}

const exited = (child: ChildProcess.ChildProcess) =>
  Effect.promise(() =>
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => child.once("exit", () => resolve()))
  )

/** A TLS conductor on 127.0.0.1 with fresh certificates, and the fake conductor on it. */
const tlsConductor = Effect.gen(function*() {
  const certs = tempDir("certs")
  yield* Certs.init({ dir: certs, conductor: "conductor", players: ["p1"] })
  const transport = layerConductor(
    {
      listen: { host: "127.0.0.1", port: 0 },
      tls: { ca: `${certs}/ca.pem`, cert: `${certs}/conductor.pem`, key: `${certs}/conductor-key.pem` }
    },
    { baseDir: certs }
  )
  const conductor = yield* Conductor.make.pipe(Effect.provide(transport))
  return { certs, conductor }
})

describe("PlayerLive", () => {
  it.scoped("an unknown transport plugin name is a typed error listing the built-in ones", () =>
    Effect.gen(function*() {
      const config = Either_getOrThrow(PlayerConfig.decode("name: p\nconductors: [c]\ntransport: carrier-pigeon\nscores: s\nstate: st\n", "/x/p.yaml"))
      const exit = yield* Effect.exit(PlayerLive.makeTransport(config))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const e = exit.cause._tag === "Fail" ? exit.cause.error : undefined
        expect(e).toBeInstanceOf(Errors.UnknownPlugin)
        expect((e as Errors.UnknownPlugin).known).toEqual(["memory", "tls"])
      }
    }).pipe(Effect.provide(NodePluginLoader.layer)))

  it.scoped("a transport plugin loaded from a path relative to the config gets the transport config", () =>
    Effect.gen(function*() {
      const dir = tempDir("plugin")
      // the plugin's player() returns an Effect: built with the same effect package
      fs.writeFileSync(
        path.join(dir, "pigeon.mjs"),
        [
          `import { Effect } from ${JSON.stringify(pathToEffect())}`,
          "export default () => ({",
          "  kind: 'transport', name: 'pigeon', description: 'test',",
          "  conductor: () => Effect.die('not here'),",
          "  player: (config, ctx) => Effect.sync(() => { globalThis.__pigeon = { config, baseDir: ctx.baseDir }; return { connect: () => Effect.never } })",
          "})"
        ].join("\n")
      )
      const config = Either_getOrThrow(PlayerConfig.decode(
        "name: p\nconductors: [c]\ntransport: { plugin: ./pigeon.mjs, speed: fast }\nscores: s\nstate: st\n",
        path.join(dir, "player.yaml")
      ))
      const transport = yield* PlayerLive.makeTransport(config)
      expect(typeof transport.connect).toBe("function")
      expect((globalThis as { __pigeon?: unknown }).__pigeon).toEqual({ config: { speed: "fast" }, baseDir: dir })
    }).pipe(Effect.provide(NodePluginLoader.layer)))

  it.scopedLive("onSignal runs the effect on each signal, and stops listening when the scope closes", () =>
    Effect.gen(function*() {
      const count = yield* Ref.make(0)
      const before = process.listenerCount("SIGHUP")
      yield* Effect.scoped(
        Effect.gen(function*() {
          yield* PlayerLive.onSignal("SIGHUP", Ref.update(count, (n) => n + 1))
          expect(process.listenerCount("SIGHUP")).toBe(before + 1)
          process.kill(process.pid, "SIGHUP")
          yield* Effect.promise(() => waitFor(() => Effect.runSync(Ref.get(count)) === 1, 3000))
          process.kill(process.pid, "SIGHUP")
          yield* Effect.promise(() => waitFor(() => Effect.runSync(Ref.get(count)) === 2, 3000))
        })
      )
      expect(yield* Ref.get(count)).toBe(2)
      expect(process.listenerCount("SIGHUP")).toBe(before)
    }))

  it.scopedLive("kill -9 of the player process: on restart the orphan group is killed and reported UNKNOWN_FAILURE; SIGHUP reloads", () =>
    Effect.gen(function*() {
      const { certs, conductor } = yield* tlsConductor
      const dir = tempDir("live")
      const scores = path.join(dir, "scores")
      const pids = path.join(dir, "pids")
      fs.mkdirSync(scores)
      fs.mkdirSync(pids)
      writeScore(scores, "long", `sleep 300 & echo $! > ${pids}/gc.pid; echo $$ > ${pids}/child.pid; wait`)
      writeScore(scores, "quick", "echo ok=1", "interface: pipe")
      const config = configFor(dir, { address: conductor.address, certs, scores, state: path.join(dir, "state") })
      const logFile = path.join(dir, "player.log")

      const first = spawnPlayer(config, logFile)
      const s1 = yield* Conductor.nextSession(conductor, 30_000)
      expect(s1.hello.player).toBe("p1")
      expect(s1.hello.catalog.map((c) => c.name)).toEqual(["long", "quick"])
      const long = assignment("long")
      yield* s1.send(new Protocol.Run({ tasks: [long] }))
      yield* Conductor.nextMessage(s1, Conductor.isStarted)
      expect(yield* Effect.promise(() => waitFor(() => fs.existsSync(path.join(pids, "gc.pid"))))).toBe(true)
      const child = track(readPid(path.join(pids, "child.pid"))!)
      const grandchild = track(readPid(path.join(pids, "gc.pid"))!)

      first.kill("SIGKILL")
      yield* exited(first)
      // the score outlives its player
      expect(alive(child)).toBe(true)
      expect(alive(grandchild)).toBe(true)

      const second = spawnPlayer(config, logFile)
      const s2 = yield* Conductor.nextSession(conductor, 30_000)
      expect(s2.hello.running).toEqual([])
      const { byRef } = yield* Conductor.collectResults(s2, [long.ref], { ack: true })
      const r = byRef.get(Names.taskRefString(long.ref))!
      expect(r.outcome).toBe("UNKNOWN_FAILURE")
      expect(r.response).toEqual({ error: "player restarted while the score was running" })
      expect(yield* Effect.promise(() => waitFor(() => !alive(child) && !alive(grandchild), 3000))).toBe(true)

      // SIGHUP reloads the catalog and the conductor hears of it
      writeScore(scores, "added", "true")
      second.kill("SIGHUP")
      const changed = yield* Conductor.nextMessage(s2, Conductor.isCatalogChanged)
      expect(changed.catalog.map((c) => c.name)).toEqual(["added", "long", "quick"])

      // business as usual
      const quick = assignment("quick")
      yield* s2.send(new Protocol.Run({ tasks: [quick] }))
      const q = yield* Conductor.collectResults(s2, [quick.ref], { ack: true })
      expect(q.byRef.get(Names.taskRefString(quick.ref))!.response).toEqual({ ok: "1" })

      // a clean stop on SIGTERM
      second.kill("SIGTERM")
      yield* exited(second).pipe(Effect.timeout("10 seconds"))
      expect(second.exitCode !== null || second.signalCode !== null).toBe(true)

      // one logfmt line per event, on stderr
      const log = fs.readFileSync(logFile, "utf8")
      const startedLine = log.split("\n").find((l) => l.includes('message="player started"'))!
      expect(startedLine).toMatch(/^timestamp=\S+ level=INFO fiber=#\d+ message="player started" /)
      expect(startedLine).toContain(" player=p1")
      expect(startedLine).toContain(" slots=2")
      // nothing but logfmt lines
      for (const line of log.split("\n").filter((l) => l !== "")) expect(line).toMatch(/^timestamp=\S+ level=[A-Z]+ /)
      expect(log).toMatch(/level=WARN .*message="score was running when the player stopped; reported as UNKNOWN_FAILURE".* task=/)
      expect(log).toMatch(/message="task ended" .*outcome=OK/)
    }).pipe(Effect.provide(Conductor.quiet)), 90_000)

  it.scopedLive("the watchdog stops an orphan at its timeout when the player never comes back", () =>
    Effect.gen(function*() {
      const { certs, conductor } = yield* tlsConductor
      const dir = tempDir("live")
      const scores = path.join(dir, "scores")
      const pids = path.join(dir, "pids")
      fs.mkdirSync(scores)
      fs.mkdirSync(pids)
      writeScore(
        scores,
        "bounded",
        `sleep 300 & echo $! > ${pids}/gc.pid; echo $$ > ${pids}/child.pid; wait`,
        "interface: env\nenvironment:\n  timeout: 1s"
      )
      const config = configFor(dir, { address: conductor.address, certs, scores, state: path.join(dir, "state") })
      const player = spawnPlayer(config, path.join(dir, "player.log"))
      const s = yield* Conductor.nextSession(conductor, 30_000)
      const a = assignment("bounded")
      yield* s.send(new Protocol.Run({ tasks: [a] }))
      yield* Conductor.nextMessage(s, Conductor.isStarted)
      expect(yield* Effect.promise(() => waitFor(() => fs.existsSync(path.join(pids, "gc.pid"))))).toBe(true)
      const child = track(readPid(path.join(pids, "child.pid"))!)
      const grandchild = track(readPid(path.join(pids, "gc.pid"))!)
      player.kill("SIGKILL")
      yield* exited(player)
      expect(alive(child)).toBe(true)
      // timeout 1 s + 2 × grace 0.3 s after the start, then SIGTERM to the group
      expect(yield* Effect.promise(() => waitFor(() => !alive(child) && !alive(grandchild), 8000))).toBe(true)
      // and the watchdog then exits by itself
      expect(yield* Effect.promise(() => waitFor(() => watchdogs().every((p) => watchdogsBefore.has(p)), 5000))).toBe(true)
    }).pipe(Effect.provide(Conductor.quiet)), 60_000)
})

// ---- small helpers --------------------------------------------------------------

const Either_getOrThrow = <A, E>(e: Either.Either<A, E>): A => Either.getOrThrow(e)

/** The URL of the `effect` package this package uses, for a plugin written in a temp dir. */
const pathToEffect = (): string => import.meta.resolve("effect")
