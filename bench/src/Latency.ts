/**
 * (b) Submit → result latency at a steady rate: `rate` jobs/s, open loop
 * (each submission at its scheduled time, whether or not earlier ones were
 * answered), for `seconds`, to simulated players over real TLS.
 *
 * Latency of a job: from the moment its `queue` request is started (the
 * client connects to the audience socket) to the moment the player holding
 * its task receives the `Ack` of its result. The conductor sends that `Ack`
 * only after the store committed the result, so from then on `status` of the
 * job shows the player's result. Measured in one process, on one clock.
 *
 * Also reported: the submit latency (request → id received) and the part
 * from the `Run` reaching the player to the `Ack` (the result's round trip:
 * the player's reply, the conductor's ingest and store commit).
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import * as Clients from "./Clients.js"
import * as Machine from "./Machine.js"
import * as Setup from "./Setup.js"
import * as Stats from "./Stats.js"

export interface Options {
  readonly store: Setup.StoreKind
  readonly rate: number
  readonly seconds: number
  readonly players: number
  readonly slots: number
  readonly warmup: number
  readonly profileDir?: string | undefined
}

export interface Run {
  readonly jobs: number
  readonly rate: number
  readonly achievedRate: number
  readonly latencyMs: Stats.Distribution
  readonly submitMs: Stats.Distribution
  readonly runToAckMs: Stats.Distribution
  readonly generatorLagMs: Stats.Distribution
  readonly engine: ReturnType<typeof Setup.statsDelta>
  readonly errors: number
  readonly firstError: string | undefined
  readonly cpu: Record<string, { readonly cpuSeconds: number; readonly corePercent: number }>
  /** Conductor CPU time per job, in µs. */
  readonly conductorCpuUsPerJob: number
  readonly load: readonly [number, number, number]
}

export const run = (options: Options): Effect.Effect<Run, unknown> =>
  Effect.scoped(
    Effect.gen(function*() {
      const { cluster, players, names } = yield* Setup.withFakePlayers(`latency-${options.store}`, {
        store: options.store,
        count: options.players,
        slots: options.slots,
        profileDir: options.profileDir
      })
      if (options.warmup > 0) yield* Setup.fill(cluster.socket, players, names, options.warmup)
      players.reset()
      const load = Machine.loadAverage()
      const meter = new Machine.CpuMeter([
        { name: "conductor", pid: cluster.conductor()!.pid },
        { name: "bench", pid: process.pid }
      ], options.profileDir === undefined ? [] : [cluster.conductor()!.pid])
      const body = Setup.queueBody(names)
      const sent = new Map<number, { readonly sentAt: number; readonly repliedAt: number }>()
      const total = Math.round(options.rate * options.seconds)
      const statsBefore = yield* Effect.promise(() => Setup.conductorStats(cluster.socket))
      meter.start()
      const r = yield* Effect.promise(() =>
        Clients.openLoop({
          socketPath: cluster.socket,
          total,
          ratePerSecond: options.rate,
          body: () => body,
          onReply: (x) => sent.set(Setup.jobIdOf(x.line), { sentAt: x.sentAt, repliedAt: x.repliedAt })
        })
      )
      const acked = yield* Effect.promise(() => players.waitAcked(sent.size, 60_000))
      const cpu = meter.stop()
      const engine = Setup.statsDelta(statsBefore, yield* Effect.promise(() => Setup.conductorStats(cluster.socket)))
      if (!acked) return yield* Effect.fail(new Error(`only ${players.ackedJobs()} of ${sent.size} jobs acknowledged`))
      const latency: Array<number> = []
      const submit: Array<number> = []
      const runToAck: Array<number> = []
      for (const [id, s] of sent) {
        const ack = players.ackTimes.get(id)!
        latency.push(ack - s.sentAt)
        submit.push(s.repliedAt - s.sentAt)
        const runAt = players.runTimes.get(id)
        if (runAt !== undefined) runToAck.push(ack - runAt)
      }
      return {
        jobs: sent.size,
        rate: options.rate,
        achievedRate: Math.round(sent.size / ((r.endedAt - r.startedAt) / 1000)),
        latencyMs: Stats.distribution(latency),
        submitMs: Stats.distribution(submit),
        runToAckMs: Stats.distribution(runToAck),
        generatorLagMs: Stats.distribution(r.lagMs),
        engine,
        errors: r.errors,
        firstError: r.firstError,
        cpu,
        conductorCpuUsPerJob: Math.round(((cpu["conductor"]?.cpuSeconds ?? 0) * 1e6) / Math.max(1, sent.size)),
        load
      }
    })
  )
