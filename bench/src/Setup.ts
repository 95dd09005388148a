/**
 * The system under test: a real `orchestra conductor` process (started by
 * `LocalCluster` over mutual TLS on 127.0.0.1, in a temporary directory),
 * with either simulated players in this process or real player processes.
 * Optionally the conductor runs with `--cpu-prof`, its profile written when
 * it stops.
 *
 * @since 0.1.0
 */
import { LocalCluster } from "@orchestra/cli"
import type { Scope } from "effect"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Clients from "./Clients.js"
import * as FakePlayers from "./FakePlayers.js"

export type StoreKind = "memory" | "sqlite" | "sqlite-normal"

export interface ConductorOptions {
  readonly store: StoreKind
  /** Write a CPU profile of the conductor into this directory. */
  readonly profileDir?: string | undefined
  readonly logLevel?: string
}

/** A temporary directory, removed with the scope (unless `ORCHESTRA_BENCH_KEEP=1`). */
export const tempDir = (prefix: string): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), `orchestra-bench-${prefix}-`))),
    (dir) =>
      Effect.sync(() => {
        if (process.env["ORCHESTRA_BENCH_KEEP"] !== "1") fs.rmSync(dir, { recursive: true, force: true })
        else process.stderr.write(`kept ${dir}\n`)
      })
  )

const storeConfig = (store: StoreKind): Record<string, unknown> =>
  store === "memory"
    ? { store: { plugin: "memory" } }
    : { store: { plugin: "sqlite", path: "orchestra.db", synchronous: store === "sqlite-normal" ? "NORMAL" : "FULL" } }

/** The preload that profiles a daemon (`--cpu-prof` is not allowed in NODE_OPTIONS). */
const preload = fileURLToPath(new URL("./CpuProfile.js", import.meta.url))

const profileEnv = (dir: string | undefined): Record<string, string> =>
  dir === undefined ? {} : { NODE_OPTIONS: `--import ${preload}`, ORCHESTRA_CPU_PROF_DIR: dir }

/** A conductor and the names of (not started) players with certificates and on its allowlist. */
export const cluster = (
  prefix: string,
  options: ConductorOptions & {
    readonly players: ReadonlyArray<LocalCluster.PlayerSpec>
  }
): Effect.Effect<LocalCluster.Cluster, LocalCluster.ClusterError, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = yield* tempDir(prefix)
    if (options.profileDir !== undefined) fs.mkdirSync(options.profileDir, { recursive: true })
    const c = yield* LocalCluster.start({
      dir,
      players: options.players,
      store: options.store === "memory" ? "memory" : "sqlite",
      conductorConfig: storeConfig(options.store),
      logLevel: options.logLevel ?? "info",
      env: profileEnv(options.profileDir)
    })
    yield* c.startConductor
    return c
  })

/** A conductor with `count` simulated players connected and reporting the `noop` score. */
export const withFakePlayers = (
  prefix: string,
  options: ConductorOptions & { readonly count: number; readonly slots: number }
): Effect.Effect<{ readonly cluster: LocalCluster.Cluster; readonly players: FakePlayers.FakePlayers; readonly names: ReadonlyArray<string> }, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const names = Array.from({ length: options.count }, (_, i) => `p${i + 1}`)
    const c = yield* cluster(prefix, { ...options, players: names.map((name) => ({ name })) })
    const players = yield* FakePlayers.start({
      pki: c.pki,
      address: `127.0.0.1:${c.port}`,
      conductorName: c.conductorName,
      names,
      slots: options.slots
    })
    yield* c.waitForPlayers(names)
    return { cluster: c, players, names }
  })

/** The body of a one-of `noop` job over `players`. */
export const queueBody = (players: ReadonlyArray<string>, score = "noop"): string =>
  JSON.stringify({ op: "queue", score, players, scope: "one" })

/** The job id of a `queue` reply; throws on a refusal. */
export const jobIdOf = (line: string): number => {
  const r = Clients.parseReply(line)
  if (!r.ok || typeof r.value !== "number") throw new Error(`queue refused: ${line.trim().slice(0, 300)}`)
  return r.value
}

/** A job's `status` reply: its state and how many players have a result. */
export const statusOf = (line: string): { readonly state: string; readonly results: number } | undefined => {
  const r = Clients.parseReply(line)
  if (!r.ok) return undefined
  const v = r.value as { readonly status: string; readonly players: Record<string, unknown> }
  return { state: v.status, results: Object.keys(v.players).length }
}

/**
 * Submit `count` jobs (closed loop) and wait until every one is acknowledged
 * to the simulated players: a warm-up, or the fill of a status benchmark.
 */
export const fill = (
  socket: string,
  players: FakePlayers.FakePlayers,
  names: ReadonlyArray<string>,
  count: number,
  concurrency = 32
): Effect.Effect<ReadonlyArray<number>, Error> =>
  Effect.tryPromise({
    try: async () => {
      const before = players.ackedJobs()
      const body = queueBody(names)
      const r = await Clients.closedLoop({ socketPath: socket, total: count, concurrency, body: () => body, maxMs: 300_000 })
      if (r.errors > 0) throw new Error(`${r.errors} submissions failed: ${r.firstError}`)
      const ids = r.replies.map((x) => jobIdOf(x.line))
      if (!(await players.waitAcked(before + count, 300_000))) throw new Error("jobs were not all acknowledged in 300 s")
      return ids
    },
    catch: (e) => (e instanceof Error ? e : new Error(String(e)))
  })

/**
 * Poll `status` of `ids`, in order, until every job has finished (not
 * `PENDING`) or `timeoutMs`: one request per job while they are finished,
 * and one per `intervalMs` while the next one is pending (jobs finish about
 * in the order they were submitted, so this asks little of the conductor).
 * With `concurrency` above 1 the ids are checked in slices of that many at
 * once (a bulk check once everything is done). Returns the time the last
 * was seen finished (undefined on a timeout) and how many are not `OK`.
 */
export const waitFinished = async (
  socket: string,
  ids: ReadonlyArray<number>,
  options: { readonly timeoutMs: number; readonly concurrency?: number; readonly intervalMs?: number }
): Promise<{ readonly doneAt: number | undefined; readonly notOk: number; readonly pending: number }> => {
  const deadline = performance.now() + options.timeoutMs
  const width = Math.max(1, options.concurrency ?? 1)
  let notOk = 0
  let doneAt: number | undefined
  let i = 0
  while (i < ids.length && performance.now() < deadline) {
    const slice = ids.slice(i, i + width)
    const states = await Promise.all(slice.map(async (id) => statusOf(await Clients.request(socket, JSON.stringify({ op: "status", id })))))
    let advanced = 0
    for (const s of states) {
      if (s === undefined || s.state === "PENDING") break
      if (s.state !== "OK") notOk++
      advanced++
    }
    if (advanced > 0) doneAt = performance.now()
    i += advanced
    if (advanced < slice.length) await new Promise((r) => setTimeout(r, options.intervalMs ?? 20))
  }
  return { doneAt: i === ids.length ? doneAt : undefined, notOk, pending: ids.length - i }
}

export interface ConductorStats {
  readonly dispatchTurns: number
  readonly assignmentsSent: number
  readonly ingestTurns: number
  readonly endsRecorded: number
  readonly eventLoop: { readonly activeMs: number; readonly idleMs: number }
}

/** The conductor's counters (the `stats` op); undefined from a conductor without it (an older build). */
export const conductorStats = async (socket: string): Promise<ConductorStats | undefined> => {
  const r = Clients.parseReply(await Clients.request(socket, `{"op":"stats"}`))
  return r.ok ? (r.value as ConductorStats) : undefined
}

/** What happened between two `stats`: batch sizes of the engine's loops and the event loop's utilization. */
export const statsDelta = (a: ConductorStats | undefined, b: ConductorStats | undefined) => {
  if (a === undefined || b === undefined) {
    return { dispatchTurns: NaN, assignmentsPerDispatchTurn: NaN, ingestTurns: NaN, endsPerIngestTurn: NaN, eventLoopUtilization: NaN }
  }
  const turns = b.dispatchTurns - a.dispatchTurns
  const ingest = b.ingestTurns - a.ingestTurns
  const active = b.eventLoop.activeMs - a.eventLoop.activeMs
  const idle = b.eventLoop.idleMs - a.eventLoop.idleMs
  return {
    dispatchTurns: turns,
    assignmentsPerDispatchTurn: Math.round(((b.assignmentsSent - a.assignmentsSent) / Math.max(1, turns)) * 10) / 10,
    ingestTurns: ingest,
    endsPerIngestTurn: Math.round(((b.endsRecorded - a.endsRecorded) / Math.max(1, ingest)) * 10) / 10,
    eventLoopUtilization: Math.round((active / Math.max(1, active + idle)) * 100) / 100
  }
}
