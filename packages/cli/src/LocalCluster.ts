/**
 * A conductor and players as real `orchestra` processes on 127.0.0.1, with
 * a development CA, generated configs and their own state directories — the
 * set-up behind `orchestra demo`, the cross-process tests and the
 * benchmarks. Every process started is tracked by pid and stopped when the
 * scope closes.
 *
 * @since 0.1.0
 */
import { UnixSocket } from "@orchestra/client"
import type { Json } from "@orchestra/core"
import { Certs } from "@orchestra/transport-tls"
import { Data, Deferred, Duration, Effect, Option } from "effect"
import type { Scope } from "effect"
import * as childProcess from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** Something about the local cluster went wrong (a process would not start, a wait timed out). */
export class ClusterError extends Data.TaggedError("ClusterError")<{ readonly message: string }> {}

/** The `orchestra` executable of this package. */
export const binPath: string = fileURLToPath(new URL("../bin/orchestra.js", import.meta.url))

/** The repository's sample score directory. */
export const sampleScores: string = fileURLToPath(new URL("../../../samples/scores", import.meta.url))

/** The repository's sample pipeline documents. */
export const samplePipelines: string = fileURLToPath(new URL("../../../samples/pipelines", import.meta.url))

export interface PlayerSpec {
  readonly name: string
  /** Score directory (default: the sample scores). */
  readonly scores?: string
  readonly manifests?: ReadonlyArray<string>
  readonly slots?: number
  readonly labels?: Readonly<Record<string, string>>
  /** More keys for the player's config file. */
  readonly config?: Readonly<Record<string, unknown>>
}

export interface Options {
  /** Working directory: certificates, configs, state and logs go here. */
  readonly dir: string
  readonly conductorName?: string
  readonly players: ReadonlyArray<PlayerSpec>
  /** The allowlist (default: every player's name). */
  readonly allow?: ReadonlyArray<string>
  /** Store plugin (default sqlite, in `dir/conductor/orchestra.db`). */
  readonly store?: "sqlite" | "memory"
  /** More keys for the conductor's config file. */
  readonly conductorConfig?: Readonly<Record<string, unknown>>
  /** Heartbeat of sessions (default 1s / 4s: fast detection on loopback). */
  readonly heartbeat?: { readonly interval: string; readonly timeout: string }
  readonly logLevel?: string
  /** Extra names to issue certificates for (not started, not allowlisted). */
  readonly extraCertificates?: ReadonlyArray<string>
  /** Environment of the processes (added to the parent's). */
  readonly env?: Readonly<Record<string, string>>
}

/** A running (or exited) daemon process. */
export interface Daemon {
  readonly name: string
  readonly pid: number
  readonly log: string
  /** Resolves when the process has exited, with its code or signal. */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  readonly isRunning: () => boolean
}

export interface Cluster {
  readonly dir: string
  readonly pki: string
  readonly socket: string
  readonly port: number
  readonly conductorName: string
  readonly conductorConfigFile: string
  readonly playerConfigFile: (name: string) => string
  readonly conductor: () => Daemon | undefined
  readonly player: (name: string) => Daemon | undefined
  readonly startConductor: Effect.Effect<Daemon, ClusterError>
  /** Stop the conductor (SIGTERM waits for a clean exit; SIGKILL is a crash). */
  readonly stopConductor: (signal?: "SIGTERM" | "SIGKILL") => Effect.Effect<void>
  readonly startPlayer: (name: string) => Effect.Effect<Daemon, ClusterError>
  readonly stopPlayer: (name: string, signal?: "SIGTERM" | "SIGKILL") => Effect.Effect<void>
  /** Send a signal (SIGHUP: reload) to a daemon. */
  readonly signal: (daemon: Daemon, signal: NodeJS.Signals) => Effect.Effect<void>
  /** Wait until these players are online and have reported their scores. */
  readonly waitForPlayers: (names: ReadonlyArray<string>, timeout?: Duration.DurationInput) => Effect.Effect<void, ClusterError>
  /** Rewrite the allowlist file (then SIGHUP the conductor to apply it). */
  readonly writeAllowlist: (names: ReadonlyArray<string>) => Effect.Effect<void>
  readonly queue: (job: UnixSocket.QueueRequest) => Effect.Effect<number, UnixSocket.ClientError>
  readonly status: (id: number) => Effect.Effect<Option.Option<UnixSocket.JobStatus>, UnixSocket.ClientError>
  readonly wait: (id: number, timeout?: Duration.DurationInput) => Effect.Effect<UnixSocket.JobStatus, UnixSocket.ClientError>
  /** Every pid started so far (for leak checks). */
  readonly pids: () => ReadonlyArray<number>
}

/** A free TCP port on 127.0.0.1 (bound, then released). */
export const freePort: Effect.Effect<number, ClusterError> = Effect.async<number, ClusterError>((resume) => {
  const server = net.createServer()
  server.once("error", (e) => resume(Effect.fail(new ClusterError({ message: `no free port: ${e.message}` }))))
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

const writeConfig = (file: string, config: Readonly<Record<string, unknown>>): void => {
  // JSON is YAML: the daemons read it as their YAML config.
  fs.writeFileSync(file, `# generated by orchestra's local cluster\n${JSON.stringify(config, null, 2)}\n`)
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Start a local cluster in `options.dir`; everything stops when the scope closes. */
export const start = (options: Options): Effect.Effect<Cluster, ClusterError, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = path.resolve(options.dir)
    const conductorName = options.conductorName ?? "conductor"
    const pki = path.join(dir, "pki")
    fs.mkdirSync(dir, { recursive: true })
    const names = options.players.map((p) => p.name)
    yield* Certs.init({ dir: pki, conductor: conductorName, players: [...names, ...(options.extraCertificates ?? [])] }).pipe(
      Effect.mapError((e) => new ClusterError({ message: `certificates: ${e.message}` }))
    )
    const port = yield* freePort
    const socket = path.join(dir, "conductor", "conductor.sock")
    const heartbeat = options.heartbeat ?? { interval: "1s", timeout: "4s" }
    const logLevel = options.logLevel ?? "info"
    fs.mkdirSync(path.join(dir, "conductor"), { recursive: true })
    const allowlistFile = path.join(dir, "conductor", "players.txt")
    const writeAllowlistSync = (list: ReadonlyArray<string>) =>
      fs.writeFileSync(allowlistFile, `# players allowed to connect\n${list.join("\n")}\n`)
    writeAllowlistSync(options.allow ?? names)
    const conductorConfigFile = path.join(dir, "conductor", "conductor.yaml")
    writeConfig(conductorConfigFile, {
      name: conductorName,
      listen: { host: "127.0.0.1", port },
      tls: { ca: "../pki/ca.pem", cert: `../pki/${conductorName}.pem`, key: `../pki/${conductorName}-key.pem`, crl: "../pki/crl.pem" },
      players: "players.txt",
      audience: { socket: { path: "conductor.sock", mode: "0600" } },
      store: options.store === "memory" ? { plugin: "memory" } : { plugin: "sqlite", path: "orchestra.db" },
      heartbeat,
      log: { level: logLevel },
      ...options.conductorConfig
    })
    const playerConfigFile = (name: string) => path.join(dir, name, "player.yaml")
    for (const p of options.players) {
      fs.mkdirSync(path.join(dir, p.name), { recursive: true })
      writeConfig(playerConfigFile(p.name), {
        name: p.name,
        conductors: [`127.0.0.1:${port}`],
        tls: { ca: "../pki/ca.pem", cert: `../pki/${p.name}.pem`, key: `../pki/${p.name}-key.pem` },
        conductorName,
        heartbeat,
        scores: path.resolve(p.scores ?? sampleScores),
        ...(p.manifests === undefined ? {} : { manifests: p.manifests.map((m) => path.resolve(m)) }),
        slots: p.slots ?? 4,
        state: "state",
        labels: p.labels ?? {},
        backoff: { initial: "100ms", max: "2s" },
        log: { level: logLevel },
        ...p.config
      })
    }

    const daemons = new Map<string, Daemon>()
    const started: Array<number> = []

    const spawn = (name: string, args: ReadonlyArray<string>, cwd: string): Effect.Effect<Daemon, ClusterError> =>
      Effect.try({
        try: () => {
          const log = path.join(cwd, `${name}.log`)
          const fd = fs.openSync(log, "a")
          const child = childProcess.spawn(process.execPath, [binPath, ...args], {
            cwd,
            stdio: ["ignore", fd, fd],
            env: { ...process.env, ...options.env }
          })
          fs.closeSync(fd)
          if (child.pid === undefined) throw new Error(`could not start ${name}`)
          started.push(child.pid)
          let running = true
          const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
            child.once("exit", (code, signal) => {
              running = false
              resolve({ code, signal })
            })
          })
          const daemon: Daemon = { name, pid: child.pid, log, exited, isRunning: () => running }
          daemons.set(name, daemon)
          return daemon
        },
        catch: (e) => new ClusterError({ message: `starting ${name}: ${e instanceof Error ? e.message : String(e)}` })
      })

    const stop = (name: string, signal: "SIGTERM" | "SIGKILL"): Effect.Effect<void> =>
      Effect.gen(function*() {
        const d = daemons.get(name)
        if (d === undefined || !d.isRunning()) return
        yield* Effect.sync(() => process.kill(d.pid, signal)).pipe(Effect.ignore)
        const done = yield* Effect.promise(() => d.exited).pipe(Effect.timeout(Duration.seconds(15)), Effect.option)
        if (Option.isNone(done)) {
          yield* Effect.sync(() => process.kill(d.pid, "SIGKILL")).pipe(Effect.ignore)
          yield* Effect.promise(() => d.exited)
        }
      })

    const logTail = (d: Daemon) => {
      try {
        return fs.readFileSync(d.log, "utf8").split("\n").slice(-15).join("\n")
      } catch {
        return "(no log)"
      }
    }

    const startConductor = Effect.gen(function*() {
      const d = yield* spawn("conductor", ["conductor", "--config", conductorConfigFile], path.join(dir, "conductor"))
      // Ready when the audience socket answers.
      const ready = yield* Deferred.make<void, ClusterError>()
      const poll = Effect.gen(function*() {
        for (let i = 0; i < 300; i++) {
          if (!d.isRunning()) {
            return yield* new ClusterError({ message: `the conductor exited at start-up:\n${logTail(d)}` })
          }
          const ok = yield* UnixSocket.players(socket).pipe(Effect.option)
          if (Option.isSome(ok)) return
          yield* Effect.sleep(Duration.millis(100))
        }
        return yield* new ClusterError({ message: `the conductor did not open its socket in 30 s:\n${logTail(d)}` })
      })
      yield* Deferred.complete(ready, poll)
      yield* Deferred.await(ready)
      return d
    })

    const startPlayer = (name: string) =>
      Effect.gen(function*() {
        const spec = options.players.find((p) => p.name === name)
        if (spec === undefined) return yield* new ClusterError({ message: `no player named ${name} in this cluster` })
        return yield* spawn(name, ["player", "--config", playerConfigFile(name)], path.join(dir, name))
      })

    const waitForPlayers = (wanted: ReadonlyArray<string>, timeout: Duration.DurationInput = Duration.seconds(30)) =>
      Effect.gen(function*() {
        const deadline = Date.now() + Duration.toMillis(Duration.decode(timeout))
        let last = ""
        while (Date.now() < deadline) {
          const ps = yield* UnixSocket.players(socket).pipe(Effect.option)
          if (Option.isSome(ps)) {
            const missing = wanted.filter((n) => !(ps.value[n]?.online === true && ps.value[n]?.scores !== undefined))
            if (missing.length === 0) return
            last = `waiting for ${missing.join(", ")}`
          }
          yield* Effect.sleep(Duration.millis(100))
        }
        return yield* new ClusterError({ message: `players not online in time (${last})` })
      })

    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        // Players first (they stop their scores), then the conductor.
        yield* Effect.forEach([...daemons.keys()].filter((n) => n !== "conductor"), (n) => stop(n, "SIGTERM"), {
          concurrency: "unbounded",
          discard: true
        })
        yield* stop("conductor", "SIGTERM")
        for (const pid of started) if (isAlive(pid)) yield* Effect.sync(() => process.kill(pid, "SIGKILL")).pipe(Effect.ignore)
      })
    )

    const cluster: Cluster = {
      dir,
      pki,
      socket,
      port,
      conductorName,
      conductorConfigFile,
      playerConfigFile,
      conductor: () => daemons.get("conductor"),
      player: (name) => daemons.get(name),
      startConductor,
      stopConductor: (signal = "SIGTERM") => stop("conductor", signal),
      startPlayer,
      stopPlayer: (name, signal = "SIGTERM") => stop(name, signal),
      signal: (d, signal) => Effect.sync(() => process.kill(d.pid, signal)).pipe(Effect.ignore),
      waitForPlayers,
      writeAllowlist: (list) => Effect.sync(() => writeAllowlistSync(list)),
      queue: (job) => UnixSocket.queue(socket, job),
      status: (id) => UnixSocket.status(socket, id),
      wait: (id, timeout = Duration.seconds(60)) => UnixSocket.wait(socket, id, { timeout, interval: Duration.millis(50) }),
      pids: () => [...started]
    }
    return cluster
  })

/** Params helper for callers building jobs. */
export type Params = Json.JsonObject
