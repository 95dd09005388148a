/**
 * (c) Real players: `jobs` one-of jobs of the `noop` sample score (a `/bin/sh`
 * script that exits 0) through one conductor and `players` real
 * `orchestra player` processes of `slots` slots each, over mutual TLS, with
 * the SQLite store — against the raw spawn rate of the same executable on
 * the same machine in the same run: `child_process.spawn` in a bounded loop
 * with the same concurrency (`players × slots`), each child in its own
 * process group with stderr piped, as the player spawns scores.
 *
 * tasks/s: from the first submit sent to the last job seen finished by
 * `status` (polled every few ms as the jobs finish).
 *
 * @since 0.1.0
 */
import { LocalCluster } from "@orchestra/cli"
import { Effect } from "effect"
import * as childProcess from "node:child_process"
import * as path from "node:path"
import * as Clients from "./Clients.js"
import * as Machine from "./Machine.js"
import * as Setup from "./Setup.js"

export interface Options {
  readonly jobs: number
  readonly players: number
  readonly slots: number
  readonly store: Setup.StoreKind
  readonly profileDir?: string | undefined
}

export interface Run {
  readonly jobs: number
  readonly concurrency: number
  readonly tasksPerSecond: number
  readonly rawSpawnsPerSecond: number
  /** tasks/s as a share of the raw spawn rate. */
  readonly ratio: number
  readonly seconds: number
  readonly notOk: number
  readonly cpu: Record<string, { readonly cpuSeconds: number; readonly corePercent: number }>
  readonly rawCpu: Record<string, { readonly cpuSeconds: number; readonly corePercent: number }>
  readonly load: readonly [number, number, number]
  readonly rawLoad: readonly [number, number, number]
}

/** The noop sample score's executable. */
export const noopExecutable = path.join(LocalCluster.sampleScores, "noop")

/** Spawn `executable` `total` times, `concurrency` at once; spawns per second. */
export const rawSpawnRate = (executable: string, total: number, concurrency: number, maxMs = 120_000): Promise<{ readonly perSecond: number; readonly failures: number }> =>
  new Promise((resolve) => {
    let started = 0
    let done = 0
    let failures = 0
    const t0 = performance.now()
    const deadline = t0 + maxMs
    const launch = () => {
      while (started - done < concurrency && started < total && performance.now() < deadline) {
        started++
        const child = childProcess.spawn(executable, [], {
          stdio: ["ignore", "ignore", "pipe"],
          detached: true,
          env: { PATH: "/usr/bin:/bin" },
          cwd: path.dirname(executable)
        })
        child.stderr?.resume()
        child.once("error", () => failures++)
        child.once("close", (code) => {
          if (code !== 0) failures++
          done++
          if (done === started && (started === total || performance.now() >= deadline)) {
            resolve({ perSecond: Math.round(done / ((performance.now() - t0) / 1000)), failures })
          } else {
            launch()
          }
        })
      }
    }
    launch()
  })

export const run = (options: Options): Effect.Effect<Run, unknown> =>
  Effect.scoped(
    Effect.gen(function*() {
      const concurrency = options.players * options.slots
      const rawLoad = Machine.loadAverage()
      const rawMeter = new Machine.CpuMeter([{ name: "bench", pid: process.pid }])
      rawMeter.start()
      const raw = yield* Effect.promise(() => rawSpawnRate(noopExecutable, options.jobs, concurrency))
      const rawCpu = rawMeter.stop()
      if (raw.failures > 0) return yield* Effect.fail(new Error(`${raw.failures} raw spawns failed`))

      const names = Array.from({ length: options.players }, (_, i) => `r${i + 1}`)
      const cluster = yield* Setup.cluster("players", {
        store: options.store,
        players: names.map((name) => ({ name, slots: options.slots })),
        profileDir: options.profileDir
      })
      yield* Effect.forEach(names, (n) => cluster.startPlayer(n), { discard: true })
      yield* cluster.waitForPlayers(names)
      const body = Setup.queueBody(names)
      // warm-up: a few jobs through every player
      yield* Effect.promise(async () => {
        const r = await Clients.closedLoop({ socketPath: cluster.socket, total: concurrency * 4, concurrency, body: () => body, maxMs: 60_000 })
        await Setup.waitFinished(cluster.socket, r.replies.map((x) => Setup.jobIdOf(x.line)), { timeoutMs: 60_000 })
      })
      const load = Machine.loadAverage()
      const meter = new Machine.CpuMeter([
        { name: "conductor", pid: cluster.conductor()!.pid },
        ...names.map((n) => ({ name: n, pid: cluster.player(n)!.pid })),
        { name: "bench", pid: process.pid }
      ], options.profileDir === undefined ? [] : [cluster.conductor()!.pid, ...names.map((n) => cluster.player(n)!.pid)])
      meter.start()
      const t0 = performance.now()
      const ids: Array<number> = []
      const submitted = yield* Effect.promise(() =>
        Clients.closedLoop({
          socketPath: cluster.socket,
          total: options.jobs,
          concurrency: 16,
          body: () => body,
          maxMs: 120_000,
          onReply: (r) => ids.push(Setup.jobIdOf(r.line))
        })
      )
      if (submitted.errors > 0) return yield* Effect.fail(new Error(`${submitted.errors} submissions failed: ${submitted.firstError}`))
      ids.sort((a, b) => a - b)
      const finished = yield* Effect.promise(() => Setup.waitFinished(cluster.socket, ids, { timeoutMs: 300_000, intervalMs: 5 }))
      const cpu = meter.stop()
      if (finished.doneAt === undefined) return yield* Effect.fail(new Error(`${finished.pending} jobs not finished in time`))
      const seconds = (finished.doneAt - t0) / 1000
      const tasksPerSecond = Math.round(ids.length / seconds)
      return {
        jobs: ids.length,
        concurrency,
        tasksPerSecond,
        rawSpawnsPerSecond: raw.perSecond,
        ratio: Machine.round(tasksPerSecond / raw.perSecond, 2),
        seconds: Machine.round(seconds, 2),
        notOk: finished.notOk,
        cpu,
        rawCpu,
        load,
        rawLoad
      }
    })
  )
