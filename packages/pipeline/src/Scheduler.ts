/**
 * The scheduler: fires schedules at their times, on Effect's `Clock` (so
 * tests drive it with `TestClock`). One fiber per schedule, living in the
 * scope it was made in. What firing means — submit a job, start a
 * pipeline run — is the caller's `fire`; whether a run is still going is
 * its `isRunning`.
 *
 * Per schedule:
 *
 * - the first time a schedule is seen (nothing in `ScheduleState`), the
 *   current time is recorded: fire times count from then;
 * - at each wake-up, {@link Schedule.due} decides; a fire time that comes
 *   while the previous run is still going is skipped (`overlap: skip`) or
 *   queued (`overlap: queue`; checked every `pollMs`, at most one queued);
 * - after a restart, fire times missed since the recorded one are skipped
 *   or run once (`missed`);
 * - the latest fire time handled is recorded in `ScheduleState` when it is
 *   fired or skipped — a queued time only once it fires, so a queued run
 *   lost in a crash counts as missed after the restart;
 * - a `fire` that fails (or dies) is reported as an event and the schedule
 *   goes on.
 *
 * @since 0.1.0
 */
import type { Errors } from "@orchestra/core"
import type { Scope } from "effect"
import { Cause, Clock, Context, Duration, Effect, Either, Layer, Option, Ref } from "effect"
import * as Schedule from "./Schedule.js"
import { ScheduleState } from "./ScheduleState.js"

/** What the scheduler did, for logs and tests. */
export type SchedulerEvent =
  | {
    readonly _tag: "Fired"
    readonly schedule: string
    readonly at: Date
    /** Other fire times this run stands for (missed ones with `run-once`, queued ones joined). */
    readonly folded: number
  }
  | { readonly _tag: "SkippedOverlap"; readonly schedule: string; readonly at: Date }
  | { readonly _tag: "Queued"; readonly schedule: string; readonly at: Date }
  | {
    readonly _tag: "Missed"
    readonly schedule: string
    readonly policy: Schedule.Missed
    /** The missed times (at most `Schedule.MISSED_LIST_LIMIT` listed). */
    readonly times: ReadonlyArray<Date>
    readonly count: number
  }
  | { readonly _tag: "FireFailed"; readonly schedule: string; readonly at: Date; readonly error: string }
  | { readonly _tag: "StateFailed"; readonly schedule: string; readonly error: string }

export interface SchedulerOptions<H, E> {
  readonly schedules: ReadonlyArray<Schedule.Schedule>
  /** Start a run of the schedule for fire time `at`; returns a handle for `isRunning`. */
  readonly fire: (schedule: Schedule.Schedule, at: Date) => Effect.Effect<H, E>
  /** Whether the run behind a handle is still going. */
  readonly isRunning: (handle: H) => Effect.Effect<boolean>
  readonly onEvent?: ((event: SchedulerEvent) => Effect.Effect<void>) | undefined
  /** How late a fire time may be and not count as missed. Default `Schedule.DEFAULT_GRACE_MS`. */
  readonly graceMs?: number | undefined
  /** How often a queued fire checks whether the previous run ended. Default 5 s. */
  readonly pollMs?: number | undefined
}

/** Where one schedule stands. */
export interface ScheduleStatus {
  readonly name: string
  readonly next: Date | undefined
  /** The latest fire time handled (recorded). */
  readonly lastHandled: Date | undefined
  readonly lastFired: Date | undefined
  readonly queued: Date | undefined
}

export interface SchedulerService {
  readonly status: Effect.Effect<ReadonlyArray<ScheduleStatus>>
}

export class Scheduler extends Context.Tag("@orchestra/pipeline/Scheduler")<Scheduler, SchedulerService>() {}

const describe = (u: unknown): string => {
  if (typeof u === "string") return u
  if (u instanceof Error) return u.message
  if (typeof u === "object" && u !== null && "message" in u && typeof (u as { message: unknown }).message === "string") {
    return (u as { message: string }).message
  }
  try {
    return JSON.stringify(u) ?? String(u)
  } catch {
    return String(u)
  }
}

/**
 * Start firing `schedules`; the fibers live as long as the scope. Fails
 * only when the state cannot be read (or the first-seen time recorded) at
 * start.
 */
export const make = <H, E>(
  options: SchedulerOptions<H, E>
): Effect.Effect<SchedulerService, Errors.StoreError, Scope.Scope | ScheduleState> =>
  Effect.gen(function*() {
    const state = yield* ScheduleState
    const emit = options.onEvent ?? (() => Effect.void)
    const graceMs = options.graceMs ?? Schedule.DEFAULT_GRACE_MS
    const pollMs = Math.max(1, options.pollMs ?? 5_000)
    const statuses = yield* Ref.make<ReadonlyMap<string, ScheduleStatus>>(new Map())
    const setStatus = (s: ScheduleStatus) => Ref.update(statuses, (m) => new Map(m).set(s.name, s))

    const starts: Array<{ readonly schedule: Schedule.Schedule; readonly cursor: Date }> = []
    for (const schedule of options.schedules) {
      const recorded = yield* state.get(schedule.name)
      let cursor: Date
      if (Option.isSome(recorded)) {
        cursor = recorded.value
      } else {
        cursor = new Date(yield* Clock.currentTimeMillis)
        yield* state.set(schedule.name, cursor)
      }
      starts.push({ schedule, cursor })
    }

    const loop = (schedule: Schedule.Schedule, initial: Date) =>
      Effect.gen(function*() {
        const name = schedule.name
        let cursor = initial // in memory: handled up to here (queued times included)
        let recorded: Date | undefined = initial
        let lastFired: Date | undefined
        let handle: { readonly value: H } | undefined
        let queued: { at: Date; folded: number } | undefined

        const record = (at: Date) =>
          Effect.gen(function*() {
            if (recorded !== undefined && recorded.getTime() >= at.getTime()) return
            recorded = at
            const r = yield* Effect.either(state.set(name, at))
            if (Either.isLeft(r)) yield* emit({ _tag: "StateFailed", schedule: name, error: r.left.message })
          })

        const fireNow = (at: Date, folded: number) =>
          Effect.gen(function*() {
            const r = yield* Effect.either(Effect.catchAllDefect(options.fire(schedule, at), (d) => Effect.fail({ defect: d })))
            if (Either.isRight(r)) {
              handle = { value: r.right }
              lastFired = at
              yield* emit({ _tag: "Fired", schedule: name, at, folded })
            } else {
              const e = r.left
              const error = typeof e === "object" && e !== null && "defect" in e ? `died: ${describe((e as { defect: unknown }).defect)}` : describe(e)
              yield* emit({ _tag: "FireFailed", schedule: name, at, error })
            }
            yield* record(at)
          })

        const running = Effect.suspend(() => (handle === undefined ? Effect.succeed(false) : options.isRunning(handle.value)))

        for (;;) {
          const now = yield* Clock.currentTimeMillis
          if (queued !== undefined && !(yield* running)) {
            const q = queued
            queued = undefined
            yield* fireNow(q.at, q.folded)
          }
          const d = Schedule.due(schedule, Option.some(cursor), new Date(now), { graceMs })
          if (d.missedCount > 0) {
            yield* emit({ _tag: "Missed", schedule: name, policy: schedule.missed, times: d.missed, count: d.missedCount })
          }
          // with run-once, the run fired stands for every missed time but itself
          const folded = schedule.missed === "run-once" ? d.missedCount - (d.onTime ? 0 : 1) : 0
          for (const at of d.fire) {
            if (yield* running) {
              if (schedule.overlap === "skip") {
                yield* emit({ _tag: "SkippedOverlap", schedule: name, at })
                yield* record(at)
              } else {
                queued = queued === undefined ? { at, folded } : { at, folded: queued.folded + 1 + folded }
                yield* emit({ _tag: "Queued", schedule: name, at })
              }
            } else {
              yield* fireNow(at, folded)
            }
          }
          if (d.handledUpTo !== undefined) {
            if (d.fire.length === 0) yield* record(d.handledUpTo)
            if (d.handledUpTo.getTime() > cursor.getTime()) cursor = d.handledUpTo
          }
          const wakeAt = queued === undefined ? d.next.getTime() : Math.min(d.next.getTime(), now + pollMs)
          yield* setStatus({ name, next: d.next, lastHandled: recorded, lastFired, queued: queued?.at })
          yield* Effect.sleep(Duration.millis(Math.max(1, wakeAt - now)))
        }
      }).pipe(
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause)
            ? Effect.failCause(cause)
            : emit({ _tag: "StateFailed", schedule: schedule.name, error: `scheduler loop died: ${Cause.pretty(cause)}` })
        )
      )

    for (const { cursor, schedule } of starts) {
      yield* setStatus({ name: schedule.name, next: undefined, lastHandled: cursor, lastFired: undefined, queued: undefined })
      yield* Effect.forkScoped(loop(schedule, cursor))
    }
    return {
      status: Effect.map(Ref.get(statuses), (m) => options.schedules.flatMap((s) => {
        const st = m.get(s.name)
        return st === undefined ? [] : [st]
      }))
    }
  })

/** The scheduler as a layer (its fibers live as long as the layer). */
export const layer = <H, E>(options: SchedulerOptions<H, E>): Layer.Layer<Scheduler, Errors.StoreError, ScheduleState> =>
  Layer.scoped(Scheduler, make(options))
