/**
 * The store alone, in this process: `jobs` jobs each created, dispatched,
 * ended and finished, in waves of `wave` jobs whose writes of one kind are
 * issued at once — the way the conductor's loops issue them, so the store
 * can commit each kind of a wave as one group.
 *
 * @since 0.1.0
 */
import type { Names, Store } from "@orchestra/core"
import { Job } from "@orchestra/core"
import { StoreMemory } from "@orchestra/store-memory"
import { StoreSqlite } from "@orchestra/store-sqlite"
import { Effect, Either } from "effect"
import * as Machine from "./Machine.js"
import * as Setup from "./Setup.js"

export interface Options {
  readonly kind: "memory" | "sqlite"
  readonly jobs: number
  readonly wave: number
}

export interface Run {
  readonly jobs: number
  readonly jobsPerSecond: number
  readonly seconds: number
  readonly load: readonly [number, number, number]
}

const request = Job.JobRequest.make({
  score: "noop" as Names.ScoreName,
  players: ["p1", "p2", "p3", "p4"] as Array<Names.PlayerName>,
  policy: { name: "one-of", options: {} },
  params: {},
  labels: {}
})
const targets = request.players

const wave = (store: Store.StoreService, n: number): Effect.Effect<void, unknown> =>
  Effect.gen(function*() {
    const now = Date.now()
    const created = yield* Effect.all(
      Array.from({ length: n }, () => store.createJob({ request, targets, createdAt: now })),
      { concurrency: "unbounded" }
    )
    const refs = created.map((c, i): Names.TaskRef => ({ job: c.id, key: "0" as Names.TaskKey, attempt: 1 + (i % 1) }))
    const dispatched = refs.map((ref, i): Store.Dispatched => ({ ref, player: targets[i % 4]!, at: now }))
    const ended = refs.map((ref, i): Store.Ended => ({
      ref,
      player: targets[i % 4]!,
      outcome: "OK",
      response: {},
      log: "",
      startedAt: now,
      finishedAt: now
    }))
    const finished = created.map((c) => ({ id: c.id, state: "OK" as const, at: now }))
    // as the conductor's loops do: one batch per kind when the store takes batches, else one call per write
    const each = <I, A>(
      batch: ((xs: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<Either.Either<A, unknown>>>) | undefined,
      single: (x: I) => Effect.Effect<A, unknown>,
      xs: ReadonlyArray<I>
    ): Effect.Effect<ReadonlyArray<A>, unknown> =>
      batch !== undefined
        ? Effect.flatMap(batch(xs), (rs) => Effect.all(rs))
        : Effect.all(xs.map(single), { concurrency: "unbounded" })
    // (read loosely, so this also runs against a store from before the batch methods existed)
    const batches = store as unknown as Partial<Record<"recordDispatches" | "recordEnds" | "finishJobs", (xs: ReadonlyArray<never>) => Effect.Effect<ReadonlyArray<Either.Either<never, unknown>>>>>
    yield* each(batches.recordDispatches as never, store.recordDispatch, dispatched)
    const won = yield* each<Store.Ended, boolean>(batches.recordEnds as never, store.recordEnd, ended)
    if (won.some((w) => !w)) return yield* Effect.fail(new Error("a result was not recorded"))
    yield* each(batches.finishJobs as never, (f: (typeof finished)[number]) => store.finishJob(f.id, f.state, f.at), finished)
  })

export const run = (options: Options): Effect.Effect<Run, unknown> =>
  Effect.scoped(
    Effect.gen(function*() {
      const dir = yield* Setup.tempDir("store")
      const store = options.kind === "memory"
        ? yield* StoreMemory.make
        : yield* StoreSqlite.make({ path: "orchestra.db" }, { baseDir: dir })
      yield* wave(store, Math.min(options.wave, 500))
      const load = Machine.loadAverage()
      const t0 = performance.now()
      for (let done = 0; done < options.jobs; done += options.wave) {
        yield* wave(store, Math.min(options.wave, options.jobs - done))
      }
      const seconds = (performance.now() - t0) / 1000
      return { jobs: options.jobs, jobsPerSecond: Math.round(options.jobs / seconds), seconds: Machine.round(seconds, 2), load }
    })
  )
