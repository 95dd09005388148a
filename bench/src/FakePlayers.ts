/**
 * Simulated players: real sessions of the TLS transport's player side
 * (mutual TLS with certificates from `Certs.init`, the real frames and
 * schemas) that spawn nothing. Like a queue benchmark's no-op worker, each
 * answers every `Run` at once with `Started` and `Results` (outcome `OK`,
 * empty response).
 *
 * The conductor sends an `Ack` only once a result is durably in its store,
 * so the time an `Ack` arrives here is the time that result became durable
 * (and visible to `status`), as seen from this process.
 *
 * @since 0.1.0
 */
import type { Names } from "@orchestra/core"
import { Catalog, Protocol } from "@orchestra/core"
import { TransportTls } from "@orchestra/transport-tls"
import type { Scope } from "effect"
import { Effect, Stream } from "effect"

export interface Options {
  /** The directory of `ca.pem`, `<name>.pem`, `<name>-key.pem`. */
  readonly pki: string
  /** `host:port` of the conductor. */
  readonly address: string
  readonly conductorName: string
  readonly names: ReadonlyArray<string>
  readonly slots: number
  /** The score the players report (the `noop` sample's manifest). */
  readonly score?: string
}

export interface FakePlayers {
  /** Distinct job ids whose result was acknowledged. */
  readonly ackedJobs: () => number
  /** performance.now() of the first `Ack` of each job's result. */
  readonly ackTimes: ReadonlyMap<number, number>
  /** performance.now() of the first `Run` naming each job. */
  readonly runTimes: ReadonlyMap<number, number>
  /** Messages seen: `Run`s, assignments, `Ack`s. */
  readonly counters: () => { readonly runs: number; readonly assignments: number; readonly acks: number; readonly ackedRefs: number }
  /** Resolves once `n` distinct jobs are acknowledged, or after `timeoutMs` (false). */
  readonly waitAcked: (n: number, timeoutMs: number) => Promise<boolean>
  /** Forget the times recorded so far (between runs). */
  readonly reset: () => void
}

const trusted = { disableValidation: true } as const

/** The noop sample's manifest as a player reports it. */
const noopInfo = (name: string) =>
  new Catalog.ScoreInfo({
    name: name as Names.ScoreName,
    interface: "env",
    description: "Do nothing, successfully. For benchmarks.",
    parameters: { type: "object", additionalProperties: false, properties: {} },
    idempotent: true,
    digest: "bench-noop",
    source: "manifest"
  }, trusted)

/** Open one session per name; they run until the scope closes. */
export const start = (options: Options): Effect.Effect<FakePlayers, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const ackTimes = new Map<number, number>()
    const runTimes = new Map<number, number>()
    let runs = 0
    let assignments = 0
    let acks = 0
    let ackedRefs = 0
    let waiters: Array<{ readonly n: number; readonly resolve: (ok: boolean) => void }> = []
    const notify = () => {
      if (waiters.length === 0) return
      const keep: typeof waiters = []
      for (const w of waiters) {
        if (ackTimes.size >= w.n) w.resolve(true)
        else keep.push(w)
      }
      waiters = keep
    }

    for (const name of options.names) {
      const player = yield* TransportTls.makePlayer(
        {
          tls: { ca: "ca.pem", cert: `${name}.pem`, key: `${name}-key.pem` },
          conductorName: options.conductorName,
          heartbeat: { intervalMs: 1000, timeoutMs: 4000 }
        },
        TransportTls.context({ baseDir: options.pki })
      )
      const hello = new Protocol.Hello({
        protocol: Protocol.PROTOCOL_VERSION,
        player: name as Names.PlayerName,
        slots: options.slots,
        labels: {},
        catalog: [noopInfo(options.score ?? "noop")],
        running: []
      }, trusted)
      const session = yield* player.connect(options.address, hello)
      const handle = (message: Protocol.ToPlayer): Effect.Effect<void> => {
        if (message._tag === "Run") {
          runs++
          const now = Date.now()
          const t = performance.now()
          const started: Array<{ readonly ref: Names.TaskRef; readonly at: number }> = []
          const results: Array<Protocol.TaskResult> = []
          for (const a of message.tasks) {
            assignments++
            if (!runTimes.has(a.ref.job)) runTimes.set(a.ref.job, t)
            started.push({ ref: a.ref, at: now })
            results.push({ ref: a.ref, outcome: "OK", response: {}, log: "", startedAt: now, finishedAt: now })
          }
          return Effect.zipRight(
            session.send(new Protocol.Started({ tasks: started }, trusted)),
            session.send(new Protocol.Results({ results }, trusted))
          )
        }
        if (message._tag === "Ack") {
          acks++
          const t = performance.now()
          for (const ref of message.refs) {
            ackedRefs++
            if (!ackTimes.has(ref.job)) ackTimes.set(ref.job, t)
          }
          notify()
        }
        return Effect.void
      }
      yield* Effect.forkScoped(Stream.runForEach(session.incoming, handle))
    }

    return {
      ackedJobs: () => ackTimes.size,
      ackTimes,
      runTimes,
      counters: () => ({ runs, assignments, acks, ackedRefs }),
      waitAcked: (n, timeoutMs) =>
        new Promise<boolean>((resolve) => {
          if (ackTimes.size >= n) return resolve(true)
          const timer = setTimeout(() => {
            waiters = waiters.filter((w) => w.resolve !== done)
            resolve(false)
          }, timeoutMs)
          const done = (ok: boolean) => {
            clearTimeout(timer)
            resolve(ok)
          }
          waiters.push({ n, resolve: done })
        }),
      reset: () => {
        ackTimes.clear()
        runTimes.clear()
        runs = 0
        assignments = 0
        acks = 0
        ackedRefs = 0
      }
    }
  })
