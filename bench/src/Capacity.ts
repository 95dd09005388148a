/**
 * (a) Conductor capacity: `jobs` no-op jobs through one conductor process to
 * simulated players over real TLS, submitted by `concurrency` Unix-socket
 * clients (one connection per request, as the original protocol).
 *
 * - jobs/s: from the first submit sent to the last result durably recorded
 *   (the last `Ack` to reach a player: the conductor acknowledges a result
 *   only once its store has committed it);
 * - submit rate: from the first submit sent to the last id received;
 * - then every job's `status` is checked (untimed): all must be `OK`.
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
  readonly jobs: number
  readonly concurrency: number
  readonly players: number
  readonly slots: number
  readonly warmup: number
  readonly profileDir?: string | undefined
}

export interface Run {
  readonly jobs: number
  readonly jobsPerSecond: number
  readonly submitPerSecond: number
  readonly seconds: number
  /** First submit sent to every job's state `OK` seen by `status` (polled after the last ack). */
  readonly secondsToAllFinished: number | undefined
  readonly submitLatencyMs: Stats.Distribution
  /** Submit sent → result acknowledged, per job (under saturation: mostly queueing). */
  readonly resultLatencyMs: Stats.Distribution
  readonly notOk: number
  readonly errors: number
  readonly firstError: string | undefined
  readonly cpu: Record<string, { readonly cpuSeconds: number; readonly corePercent: number }>
  /** Conductor CPU time per job (user + system), in µs: the cost that does not depend on the machine's load. */
  readonly conductorCpuUsPerJob: number
  readonly conductorPeakRssMiB: number | undefined
  /** The engine's loops over the run: batch sizes, and the conductor's event-loop utilization. */
  readonly engine: ReturnType<typeof Setup.statsDelta>
  readonly runs: number
  readonly assignmentsPerRun: number
  readonly acks: number
  readonly load: readonly [number, number, number]
}

export const run = (options: Options): Effect.Effect<Run, unknown> =>
  Effect.scoped(
    Effect.gen(function*() {
      const { cluster, players, names } = yield* Setup.withFakePlayers(`capacity-${options.store}`, {
        store: options.store,
        count: options.players,
        slots: options.slots,
        profileDir: options.profileDir
      })
      if (options.warmup > 0) yield* Setup.fill(cluster.socket, players, names, options.warmup)
      players.reset()
      const load = Machine.loadAverage()
      const conductorPid = cluster.conductor()!.pid
      const meter = new Machine.CpuMeter([{ name: "conductor", pid: conductorPid }, { name: "bench", pid: process.pid }], options.profileDir === undefined ? [] : [conductorPid])
      const body = Setup.queueBody(names)
      const idSentAt = new Map<number, number>()
      const statsBefore = yield* Effect.promise(() => Setup.conductorStats(cluster.socket))
      meter.start()
      const submitted = yield* Effect.promise(() =>
        Clients.closedLoop({
          socketPath: cluster.socket,
          total: options.jobs,
          concurrency: options.concurrency,
          body: () => body,
          maxMs: 300_000,
          onReply: (r) => idSentAt.set(Setup.jobIdOf(r.line), r.sentAt)
        })
      )
      const allAcked = yield* Effect.promise(() => players.waitAcked(idSentAt.size, 300_000))
      const cpu = meter.stop()
      const engine = Setup.statsDelta(statsBefore, yield* Effect.promise(() => Setup.conductorStats(cluster.socket)))
      if (!allAcked) return yield* Effect.fail(new Error(`only ${players.ackedJobs()} of ${idSentAt.size} jobs acknowledged in 300 s`))
      const t0 = submitted.startedAt
      let lastAck = 0
      const resultLatency: Array<number> = []
      for (const [id, sentAt] of idSentAt) {
        const acked = players.ackTimes.get(id)!
        if (acked > lastAck) lastAck = acked
        resultLatency.push(acked - sentAt)
      }
      const lastReply = Math.max(...submitted.replies.map((r) => r.repliedAt))
      // The jobs acknowledged last: their job state becomes OK one store write later.
      const lastAcked = [...idSentAt.keys()].sort((a, b) => players.ackTimes.get(b)! - players.ackTimes.get(a)!).slice(0, 32)
      const finished = yield* Effect.promise(() => Setup.waitFinished(cluster.socket, lastAcked, { timeoutMs: 60_000, intervalMs: 2 }))
      const rss = Machine.peakRssMiB(conductorPid)
      // untimed: every job must be OK
      const check = yield* Effect.promise(() => Setup.waitFinished(cluster.socket, [...idSentAt.keys()], { timeoutMs: 120_000, concurrency: 16 }))
      const counters = players.counters()
      const seconds = (lastAck - t0) / 1000
      return {
        jobs: idSentAt.size,
        jobsPerSecond: Math.round(idSentAt.size / seconds),
        submitPerSecond: Math.round(idSentAt.size / ((lastReply - t0) / 1000)),
        seconds: Machine.round(seconds, 2),
        secondsToAllFinished: finished.doneAt === undefined ? undefined : Machine.round((finished.doneAt - t0) / 1000, 2),
        submitLatencyMs: Stats.distribution(submitted.replies.map((r) => r.repliedAt - r.sentAt)),
        resultLatencyMs: Stats.distribution(resultLatency),
        notOk: check.notOk + check.pending,
        errors: submitted.errors,
        firstError: submitted.firstError,
        cpu,
        conductorCpuUsPerJob: Math.round(((cpu["conductor"]?.cpuSeconds ?? 0) * 1e6) / idSentAt.size),
        conductorPeakRssMiB: rss,
        engine,
        runs: counters.runs,
        assignmentsPerRun: Machine.round(counters.assignments / Math.max(1, counters.runs), 1),
        acks: counters.acks,
        load
      }
    })
  )
