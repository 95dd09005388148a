/**
 * Retention: finished jobs older than the configured age are purged from
 * the store, once at start-up and then periodically.
 *
 * @since 0.1.0
 */
import type { Store } from "@orchestra/core"
import { Clock, Duration, Effect, Schedule } from "effect"

export interface Options {
  /** Purge finished jobs that finished more than this long ago. */
  readonly retentionMs: number
  /** How often to purge (default: a tenth of the retention, between 1 s and 1 h). */
  readonly intervalMs?: number
}

/** The interval used when none is given. */
export const defaultInterval = (retentionMs: number): number => Math.min(3_600_000, Math.max(1000, Math.floor(retentionMs / 10)))

/** Purge once; returns how many jobs were removed. */
export const purgeOnce = (store: Store.StoreService, retentionMs: number): Effect.Effect<number, never> =>
  Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const removed = yield* store.purge(now - retentionMs).pipe(
      Effect.catchAll((e) => Effect.logError("purge failed").pipe(Effect.annotateLogs({ error: e.message }), Effect.as(0)))
    )
    if (removed > 0) yield* Effect.logInfo("purged finished jobs").pipe(Effect.annotateLogs({ jobs: removed }))
    return removed
  })

/** Purge now and then every interval, forever (fork it in a scope). */
export const run = (store: Store.StoreService, options: Options): Effect.Effect<never> =>
  purgeOnce(store, options.retentionMs).pipe(
    Effect.repeat(Schedule.spaced(Duration.millis(options.intervalMs ?? defaultInterval(options.retentionMs)))),
    Effect.zipRight(Effect.never)
  )
