/**
 * Helpers of the cross-process suite: a local cluster shared by the tests of
 * one file (started in `beforeAll`, stopped in `afterAll`, which fails if any
 * process it started — daemon or score — is still alive), score
 * directories written for a test, bounded polling, the daemons' log tails in
 * failure messages, the audience socket's `players` op, the `orchestra`
 * binary run as a child process, `/proc` scans for leftover processes, and
 * read-only access to the conductor's SQLite file.
 *
 * What LocalCluster does not offer and is built here: the `players` op (the
 * cluster exposes queue/status/wait only), the list of log files, and a
 * leftover check that covers score processes as well as daemons.
 */
import { LocalCluster } from "@orchestra/cli"
import { Cause, Duration, Effect, Exit, Option, Scope } from "effect"
import * as childProcess from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll } from "vitest"

export type Cluster = LocalCluster.Cluster
export type ClusterOptions = LocalCluster.Options
export type JobStatus = Effect.Effect.Success<ReturnType<Cluster["wait"]>>
export type QueueRequest = Parameters<Cluster["queue"]>[0]

/** Keep the working directories (to read the logs after a run). */
const keep = process.env["ORCHESTRA_E2E_KEEP"] === "1"

// ---- score directories --------------------------------------------------------

export interface ScoreDef {
  /** The executable's text (a `#!` script). */
  readonly script: string
  /** The YAML manifest `<name>.yaml`, if any. */
  readonly manifest?: string
  /** A legacy `<name>.conf`, if any. */
  readonly conf?: string
}

/**
 * Write a score directory: the sample scores (symlinked, except those in
 * `without` or redefined) and the scores given.
 */
export const writeScoreDir = (
  dir: string,
  scores: Readonly<Record<string, ScoreDef>>,
  options: { readonly samples?: boolean; readonly without?: ReadonlyArray<string> } = {}
): string => {
  fs.mkdirSync(dir, { recursive: true })
  if (options.samples !== false) {
    const skip = new Set([...(options.without ?? []), ...Object.keys(scores)])
    for (const entry of fs.readdirSync(LocalCluster.sampleScores)) {
      const base = entry.replace(/\.(yaml|conf)$/, "")
      if (skip.has(base)) continue
      fs.symlinkSync(fs.realpathSync(path.join(LocalCluster.sampleScores, entry)), path.join(dir, entry))
    }
  }
  for (const [name, def] of Object.entries(scores)) {
    fs.writeFileSync(path.join(dir, name), def.script, { mode: 0o755 })
    if (def.manifest !== undefined) fs.writeFileSync(path.join(dir, `${name}.yaml`), def.manifest)
    if (def.conf !== undefined) fs.writeFileSync(path.join(dir, `${name}.conf`), def.conf)
  }
  return dir
}

/** A manifest in YAML (JSON is YAML). */
export const manifest = (m: Readonly<Record<string, unknown>>): string => `${JSON.stringify(m, null, 2)}\n`

// ---- logs ------------------------------------------------------------------------

/** The last `lines` lines of a file. */
export const tail = (file: string, lines = 25): string => {
  try {
    return fs.readFileSync(file, "utf8").split("\n").slice(-lines - 1).join("\n")
  } catch {
    return "(no log)"
  }
}

/** Every daemon log of a cluster directory (`<dir>/<name>/<name>.log`). */
export const logFiles = (dir: string): ReadonlyArray<string> => {
  const out: Array<string> = []
  let entries: Array<string> = []
  try {
    entries = fs.readdirSync(dir)
  } catch {
    return out
  }
  for (const name of entries) {
    const f = path.join(dir, name, `${name}.log`)
    if (fs.existsSync(f)) out.push(f)
  }
  return out
}

/** The tails of the daemon logs of a cluster directory, for failure messages. */
export const logsOf = (dir: string, lines = 25): string =>
  logFiles(dir).map((f) => `----- ${path.relative(dir, f)} (last ${lines} lines)\n${tail(f, lines)}`).join("\n")

const toError = (u: unknown): Error => (u instanceof Error ? u : new Error(typeof u === "string" ? u : JSON.stringify(u)))

/** Append the daemons' log tails to whatever makes `self` fail. */
export const withLogs = (dir: () => string) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, Error, R> =>
  Effect.catchAllCause(self, (cause) =>
    Effect.failSync(() => {
      const e = toError(Cause.squash(cause))
      e.message = `${e.message}\n\n${logsOf(dir())}`
      return e
    }))

// ---- the audience socket ------------------------------------------------------------

/** One raw request on the audience socket: the parsed reply. */
export const request = (socket: string, body: unknown, timeoutMs = 10_000): Effect.Effect<unknown, Error> =>
  Effect.async<unknown, Error>((resume) => {
    const s = net.createConnection({ path: socket })
    const chunks: Array<Buffer> = []
    let done = false
    const finish = (e: Effect.Effect<unknown, Error>) => {
      if (done) return
      done = true
      clearTimeout(timer)
      s.destroy()
      resume(e)
    }
    const timer = setTimeout(() => finish(Effect.fail(new Error(`no reply on ${socket} in ${timeoutMs} ms`))), timeoutMs)
    s.on("connect", () => s.end(JSON.stringify(body)))
    s.on("data", (c) => chunks.push(c))
    s.on("error", (e) => finish(Effect.fail(e)))
    s.on("close", () => {
      const text = Buffer.concat(chunks).toString("utf8").split("\n")[0] ?? ""
      try {
        finish(Effect.succeed(JSON.parse(text)))
      } catch {
        finish(Effect.fail(new Error(`reply is not JSON: ${text.slice(0, 200)}`)))
      }
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      s.destroy()
    })
  })

export interface PlayerState {
  readonly online: boolean
  readonly allowlisted: boolean
  readonly slots: number
  readonly running: number
  readonly labels: Readonly<Record<string, string>>
  readonly scores?: ReadonlyArray<string>
}

/** The conductor's `players` op. */
export const players = (cluster: Cluster): Effect.Effect<Readonly<Record<string, PlayerState>>, Error> =>
  Effect.flatMap(request(cluster.socket, { op: "players" }), (reply) =>
    Array.isArray(reply) && reply[0] === "OK" && typeof reply[1] === "object" && reply[1] !== null
      ? Effect.succeed(reply[1] as Record<string, PlayerState>)
      : Effect.fail(new Error(`players: unexpected reply ${JSON.stringify(reply)}`)))

// ---- jobs -------------------------------------------------------------------------------

/** Queue a job; a refusal is an error naming the reason. */
export const submit = (cluster: Cluster, job: QueueRequest): Effect.Effect<number, Error> =>
  cluster.queue(job).pipe(Effect.mapError((e) => new Error(`queue ${JSON.stringify(job)} → ${e.reason}: ${e.message}`)))

/** Queue a job that must be refused; returns the reason. */
export const refused = (cluster: Cluster, job: QueueRequest): Effect.Effect<string, Error> =>
  cluster.queue(job).pipe(
    Effect.flip,
    Effect.mapError((id) => new Error(`expected ${JSON.stringify(job)} to be refused, but it was accepted as job ${id}`)),
    Effect.map((e) => e.message)
  )

/** Wait until a job is no longer PENDING; on timeout the error shows its last status. */
export const waitJob = (cluster: Cluster, id: number, timeout: Duration.DurationInput = Duration.seconds(60)): Effect.Effect<JobStatus, Error> =>
  cluster.wait(id, timeout).pipe(
    Effect.catchAll((e) =>
      cluster.status(id).pipe(
        Effect.option,
        Effect.flatMap((s) =>
          Effect.fail(new Error(`job ${id}: ${e.message}; last status ${JSON.stringify(Option.flatten(s).pipe(Option.getOrUndefined))}`))
        )
      )
    )
  )

/** The current status of a job (it must exist). */
export const statusOf = (cluster: Cluster, id: number): Effect.Effect<JobStatus, Error> =>
  cluster.status(id).pipe(
    Effect.mapError((e) => new Error(`status ${id}: ${e.message}`)),
    Effect.flatMap(Option.match({ onNone: () => Effect.fail(new Error(`job ${id} not found`)), onSome: Effect.succeed }))
  )

/** The outcomes of a status, by player. */
export const outcomes = (s: JobStatus): Record<string, string> =>
  Object.fromEntries(Object.entries(s.players).map(([p, r]) => [p, r.status]))

/**
 * Evaluate `check` every `interval` until it returns `Some`, at most
 * `timeout`; the error names `what`, and `describe()` when given.
 */
export const pollUntil = <A, E, R>(
  what: string,
  check: Effect.Effect<Option.Option<A>, E, R>,
  options: { readonly timeout?: number; readonly interval?: number; readonly describe?: () => string } = {}
): Effect.Effect<A, Error | E, R> =>
  Effect.gen(function*() {
    const timeout = options.timeout ?? 30_000
    const interval = options.interval ?? 100
    const deadline = Date.now() + timeout
    const maxRounds = Math.ceil(timeout / interval) + 10
    for (let i = 0; i < maxRounds && Date.now() < deadline; i++) {
      const r = yield* check
      if (Option.isSome(r)) return r.value
      yield* Effect.sleep(Duration.millis(interval))
    }
    const last = yield* check
    if (Option.isSome(last)) return last.value
    return yield* Effect.fail(new Error(`timed out after ${timeout} ms waiting for ${what}${options.describe ? `: ${options.describe()}` : ""}`))
  })

/** Wait until a file contains `text` (a daemon's log line). */
export const waitForLog = (file: string, text: string | RegExp, timeout = 20_000): Effect.Effect<string, Error> =>
  pollUntil(
    `${JSON.stringify(String(text))} in ${file}`,
    Effect.sync(() => {
      let content = ""
      try {
        content = fs.readFileSync(file, "utf8")
      } catch {
        return Option.none()
      }
      const line = content.split("\n").find((l) => (typeof text === "string" ? l.includes(text) : text.test(l)))
      return line === undefined ? Option.none() : Option.some(line)
    }),
    { timeout, interval: 100, describe: () => `\n${tail(file, 15)}` }
  )

// ---- processes ------------------------------------------------------------------------

/** Whether a pid is alive (zombies count as dead: they run nothing). */
export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    return false
  }
}

const procPids = (): ReadonlyArray<number> =>
  fs.readdirSync("/proc").filter((n) => /^[0-9]+$/.test(n)).map(Number).filter((p) => p !== process.pid)

/** Processes whose environment has every one of `entries` (`KEY=value`). */
export const processesWithEnv = (entries: ReadonlyArray<string>): ReadonlyArray<number> =>
  procPids().filter((pid) => {
    try {
      const env = fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")
      return entries.every((e) => env.includes(e))
    } catch {
      return false
    }
  })

/** Processes whose working directory is `dir` or below it. */
export const processesUnder = (dir: string): ReadonlyArray<number> =>
  procPids().filter((pid) => {
    try {
      const cwd = fs.readlinkSync(`/proc/${pid}/cwd`)
      return cwd === dir || cwd.startsWith(`${dir}/`)
    } catch {
      return false
    }
  })

/** Describe processes for a message: pid and command line. */
export const describeProcesses = (pids: ReadonlyArray<number>): string =>
  pids.map((pid) => {
    try {
      return `${pid}: ${fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim()}`
    } catch {
      return `${pid}: (gone)`
    }
  }).join("\n")

/**
 * Processes a cluster left behind: its daemons still alive, processes
 * working in its directory, and score processes of its players.
 */
export const leftovers = (dir: string, pids: ReadonlyArray<number>, playerNames: ReadonlyArray<string>): ReadonlyArray<number> => {
  const found = new Set<number>()
  for (const pid of pids) if (alive(pid)) found.add(pid)
  for (const pid of processesUnder(dir)) if (alive(pid)) found.add(pid)
  for (const name of playerNames) for (const pid of processesWithEnv([`ORC_PLAYER=${name}`])) if (alive(pid)) found.add(pid)
  return [...found]
}

// ---- a cluster per file ------------------------------------------------------------------------

export interface Shared {
  readonly cluster: () => Cluster
  readonly dir: () => string
  /** Append the daemons' log tails to a failing test's error. */
  readonly withLogs: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, Error, R>
}

export interface SharedSetup {
  readonly options: Omit<ClusterOptions, "dir">
  /** Players started with the conductor (default: all). */
  readonly start?: ReadonlyArray<string>
}

/** Make a temporary directory (removed by the caller). */
export const makeTempDir = (prefix: string): string => fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), `orchestra-e2e-${prefix}-`)))

/**
 * One cluster for the tests of a file: `setup(dir)` writes what the
 * cluster needs into the new temporary directory and returns its options;
 * the conductor and the players to start are up and reported before the
 * first test. `afterAll` stops everything, then fails if a process is left.
 */
export const sharedCluster = (prefix: string, setup: (dir: string) => SharedSetup): Shared => {
  let dir = ""
  let cluster: Cluster | undefined
  let scope: Scope.CloseableScope | undefined
  let names: ReadonlyArray<string> = []

  beforeAll(async () => {
    dir = makeTempDir(prefix)
    const s = setup(dir)
    names = s.options.players.map((p) => p.name)
    scope = Effect.runSync(Scope.make())
    const start = Effect.gen(function*() {
      const c = yield* LocalCluster.start({ ...s.options, dir })
      cluster = c
      yield* c.startConductor
      const wanted = s.start ?? names
      for (const n of wanted) yield* c.startPlayer(n)
      yield* c.waitForPlayers(wanted, Duration.seconds(60))
      return c
    })
    const exit = await Effect.runPromiseExit(start.pipe(Scope.extend(scope)))
    if (Exit.isFailure(exit)) {
      throw new Error(`the cluster did not start: ${Cause.pretty(exit.cause)}\n\n${logsOf(dir)}`)
    }
  })

  afterAll(async () => {
    if (scope !== undefined) await Effect.runPromise(Scope.close(scope, Exit.void))
    const pids = cluster?.pids() ?? []
    // daemons are stopped and reaped by the scope; give score processes a moment
    const deadline = Date.now() + 15_000
    let left = leftovers(dir, pids, names)
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200))
      left = leftovers(dir, pids, names)
    }
    const report = left.length > 0 ? `${describeProcesses(left)}\n\n${logsOf(dir)}` : ""
    for (const pid of left) {
      try {
        process.kill(pid, "SIGKILL")
      } catch {
        // gone
      }
    }
    if (dir !== "" && !keep) fs.rmSync(dir, { recursive: true, force: true })
    if (dir !== "" && keep) console.log(`kept ${dir}`)
    if (left.length > 0) throw new Error(`processes left behind by the cluster:\n${report}`)
    if (pids.length === 0 && cluster !== undefined) throw new Error("the cluster reports no pid at all")
    for (const pid of pids) if (alive(pid)) throw new Error(`pid ${pid} still alive`)
  })

  return {
    cluster: () => {
      if (cluster === undefined) throw new Error("the cluster is not started")
      return cluster
    },
    dir: () => dir,
    withLogs: (self) => withLogs(() => dir)(self)
  }
}

// ---- the orchestra binary --------------------------------------------------------------------

export interface CliResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  readonly pid: number | undefined
}

/** Run `orchestra <args>`; it is killed after `timeoutMs`. */
export const runCli = (
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string; readonly timeoutMs?: number; readonly env?: Readonly<Record<string, string>> } = {}
): Effect.Effect<CliResult> =>
  Effect.async<CliResult>((resume) => {
    const child = childProcess.spawn(process.execPath, [LocalCluster.binPath, ...args], {
      cwd: options.cwd ?? process.cwd(),
      env: { ...process.env, ...options.env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const out: Array<Buffer> = []
    const err: Array<Buffer> = []
    child.stdout.on("data", (c: Buffer) => out.push(c))
    child.stderr.on("data", (c: Buffer) => err.push(c))
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000)
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resume(Effect.succeed({
        code,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        pid: child.pid
      }))
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      child.kill("SIGKILL")
    })
  })

/** A CLI result for a failure message. */
export const showCli = (r: CliResult): string =>
  `exit ${r.code}${r.signal ? ` (${r.signal})` : ""}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`

// ---- SQLite ------------------------------------------------------------------------------------

export interface SqliteStatement {
  all(...params: ReadonlyArray<unknown>): Array<Record<string, unknown>>
  get(...params: ReadonlyArray<unknown>): Record<string, unknown> | undefined
  run(...params: ReadonlyArray<unknown>): { readonly changes: number }
}

export interface SqliteDatabase {
  prepare(sql: string): SqliteStatement
  close(): void
}

type SqliteConstructor = new(file: string, options: { readonly readonly: boolean; readonly fileMustExist: boolean }) => SqliteDatabase

/** Open the conductor's SQLite file (better-sqlite3, installed with the sqlite store); read-only unless `writable`, for a stopped conductor. */
export const openDatabase = (file: string, options: { readonly writable?: boolean } = {}): SqliteDatabase => {
  const require = createRequire(import.meta.url)
  const Database = require("better-sqlite3") as SqliteConstructor
  return new Database(file, { readonly: options.writable !== true, fileMustExist: true })
}

/** The conductor's SQLite file in a cluster directory. */
export const databaseFile = (cluster: Cluster): string => path.join(cluster.dir, "conductor", "orchestra.db")
