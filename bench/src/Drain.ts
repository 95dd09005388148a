/**
 * Dispatch capacity with submission out of the way: `jobs` no-op jobs are
 * submitted while no player is connected (they wait in the conductor's
 * queue, durably stored), then 4 simulated players connect (real TLS, 128
 * slots each, answering every `Run` at once) and the conductor drains the
 * queue. jobs/s: from the players starting to connect to the last result
 * durably recorded (the last `Ack`). This is the engine, store and
 * transport path alone; the `capacity-*` benchmarks add the submissions
 * (one Unix-socket connection each) competing for the same event loop.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import * as Clients from "./Clients.js"
import * as FakePlayers from "./FakePlayers.js"
import * as Machine from "./Machine.js"
import * as Setup from "./Setup.js"

export interface Options {
  readonly store: Setup.StoreKind
  readonly jobs: number
  readonly players: number
  readonly slots: number
  readonly warmup: number
  readonly profileDir?: string | undefined
}

export interface Run {
  readonly jobs: number
  readonly jobsPerSecond: number
  readonly seconds: number
  readonly submitPerSecond: number
  readonly cpu: Record<string, { readonly cpuSeconds: number; readonly corePercent: number }>
  readonly conductorCpuUsPerJob: number
  readonly engine: ReturnType<typeof Setup.statsDelta>
  readonly notOk: number
  readonly load: readonly [number, number, number]
}

export const run = (options: Options): Effect.Effect<Run, unknown> =>
  Effect.scoped(
    Effect.gen(function*() {
      const names = Array.from({ length: options.players }, (_, i) => `p${i + 1}`)
      const cluster = yield* Setup.cluster(`drain-${options.store}`, {
        store: options.store,
        players: names.map((name) => ({ name })),
        profileDir: options.profileDir
      })
      const connect = FakePlayers.start({
        pki: cluster.pki,
        address: `127.0.0.1:${cluster.port}`,
        conductorName: cluster.conductorName,
        names,
        slots: options.slots
      })
      // warm-up with the players, then they leave (the conductor keeps their catalogs)
      yield* Effect.scoped(Effect.gen(function*() {
        const players = yield* connect
        yield* cluster.waitForPlayers(names)
        if (options.warmup > 0) yield* Setup.fill(cluster.socket, players, names, options.warmup)
      }))
      yield* Effect.promise(async () => {
        for (let i = 0; i < 200; i++) {
          const r = Clients.parseReply(await Clients.request(cluster.socket, `{"op":"players"}`))
          const ps = r.value as Record<string, { readonly online: boolean }>
          if (names.every((n) => ps[n]?.online === false)) return
          await new Promise((res) => setTimeout(res, 50))
        }
        throw new Error("the players did not go offline")
      })
      // the jobs queue up, durably, with nobody to run them
      const body = Setup.queueBody(names)
      const submitted = yield* Effect.promise(() =>
        Clients.closedLoop({ socketPath: cluster.socket, total: options.jobs, concurrency: 64, body: () => body, maxMs: 300_000 })
      )
      if (submitted.errors > 0) return yield* Effect.fail(new Error(`${submitted.errors} submissions failed: ${submitted.firstError}`))
      const ids = submitted.replies.map((r) => Setup.jobIdOf(r.line)).sort((a, b) => a - b)
      const load = Machine.loadAverage()
      const conductorPid = cluster.conductor()!.pid
      const meter = new Machine.CpuMeter(
        [{ name: "conductor", pid: conductorPid }, { name: "bench", pid: process.pid }],
        options.profileDir === undefined ? [] : [conductorPid]
      )
      const statsBefore = yield* Effect.promise(() => Setup.conductorStats(cluster.socket))
      meter.start()
      const t0 = performance.now()
      const players = yield* connect
      const acked = yield* Effect.promise(() => players.waitAcked(ids.length, 300_000))
      const cpu = meter.stop()
      if (!acked) return yield* Effect.fail(new Error(`only ${players.ackedJobs()} of ${ids.length} jobs acknowledged`))
      let last = 0
      for (const t of players.ackTimes.values()) if (t > last) last = t
      const engine = Setup.statsDelta(statsBefore, yield* Effect.promise(() => Setup.conductorStats(cluster.socket)))
      const check = yield* Effect.promise(() => Setup.waitFinished(cluster.socket, ids, { timeoutMs: 120_000, concurrency: 16 }))
      const seconds = (last - t0) / 1000
      return {
        jobs: ids.length,
        jobsPerSecond: Math.round(ids.length / seconds),
        seconds: Machine.round(seconds, 2),
        submitPerSecond: Math.round(ids.length / ((submitted.endedAt - submitted.startedAt) / 1000)),
        cpu,
        conductorCpuUsPerJob: Math.round(((cpu["conductor"]?.cpuSeconds ?? 0) * 1e6) / ids.length),
        engine,
        notOk: check.notOk + check.pending,
        load
      }
    })
  )
