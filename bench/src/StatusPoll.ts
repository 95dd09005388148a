/**
 * (d) Status polling on the Unix socket: `{"op":"status","id":N}` requests
 * per second from `concurrency` clients (closed loop, one connection per
 * request) against a conductor holding `finished` finished jobs (filled
 * through simulated players first), ids spread over all of them. Every
 * reply must be `["OK", …]` with the job `OK`.
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
  readonly finished: number
  readonly concurrency: number
  readonly requests: number
  readonly maxSeconds: number
  readonly profileDir?: string | undefined
}

export interface Run {
  /** The first status request of each job (a store read), requests/s. */
  readonly coldRequestsPerSecond: number
  readonly requests: number
  readonly requestsPerSecond: number
  readonly latencyMs: Stats.Distribution
  readonly badReplies: number
  readonly errors: number
  readonly firstError: string | undefined
  readonly cpu: Record<string, { readonly cpuSeconds: number; readonly corePercent: number }>
  /** Conductor CPU time per request, in µs. */
  readonly conductorCpuUsPerRequest: number
  readonly load: readonly [number, number, number]
}

export const run = (options: Options): Effect.Effect<Run, unknown> =>
  Effect.scoped(
    Effect.gen(function*() {
      const { cluster, players, names } = yield* Setup.withFakePlayers(`status-${options.store}`, {
        store: options.store,
        count: 4,
        slots: 64,
        profileDir: options.profileDir
      })
      const ids = yield* Setup.fill(cluster.socket, players, names, options.finished)
      // the last jobs' state becomes OK one store write after their result
      const last = yield* Effect.promise(() => Setup.waitFinished(cluster.socket, ids.slice(-64), { timeoutMs: 60_000 }))
      if (last.pending > 0) return yield* Effect.fail(new Error("the fill did not finish"))
      // cold: each job's status asked for the first time (read from the store), which also checks every job is OK
      let coldBad = 0
      const cold = yield* Effect.promise(() =>
        Clients.closedLoop({
          socketPath: cluster.socket,
          total: ids.length,
          concurrency: options.concurrency,
          body: (i) => `{"op":"status","id":${ids[i]}}`,
          maxMs: 120_000,
          onReply: (x) => {
            if (!x.line.startsWith("[\"OK\",{\"status\":\"OK\"")) coldBad++
          }
        })
      )
      if (coldBad > 0 || cold.errors > 0) return yield* Effect.fail(new Error(`${coldBad} jobs not OK, ${cold.errors} errors (${cold.firstError})`))
      const load = Machine.loadAverage()
      const meter = new Machine.CpuMeter([
        { name: "conductor", pid: cluster.conductor()!.pid },
        { name: "bench", pid: process.pid }
      ], options.profileDir === undefined ? [] : [cluster.conductor()!.pid])
      let bad = 0
      // a fixed stride walks all ids in an order unlike their insertion
      const stride = 7919
      meter.start()
      const r = yield* Effect.promise(() =>
        Clients.closedLoop({
          socketPath: cluster.socket,
          total: options.requests,
          concurrency: options.concurrency,
          body: (i) => `{"op":"status","id":${ids[(i * stride) % ids.length]}}`,
          maxMs: options.maxSeconds * 1000,
          onReply: (x) => {
            if (!x.line.startsWith("[\"OK\",{\"status\":\"OK\"")) bad++
          }
        })
      )
      const cpu = meter.stop()
      return {
        coldRequestsPerSecond: Math.round(cold.replies.length / ((cold.endedAt - cold.startedAt) / 1000)),
        requests: r.replies.length,
        requestsPerSecond: Math.round(r.replies.length / ((r.endedAt - r.startedAt) / 1000)),
        latencyMs: Stats.distribution(r.replies.map((x) => x.repliedAt - x.sentAt)),
        badReplies: bad,
        errors: r.errors,
        firstError: r.firstError,
        cpu,
        conductorCpuUsPerRequest: Math.round(((cpu["conductor"]?.cpuSeconds ?? 0) * 1e6) / Math.max(1, r.replies.length)),
        load
      }
    })
  )
