/**
 * Where the scheduler keeps, per schedule, the latest fire time it has
 * handled (fired, skipped, or folded into a run), so that after a restart
 * it knows which fire times were missed. The conductor backs it with its
 * store; {@link layerMemory} keeps it in memory (tests, embedded use).
 *
 * @since 0.1.0
 */
import type { Errors } from "@orchestra/core"
import { Context, Effect, Layer, Option, Ref } from "effect"

export interface ScheduleStateService {
  /** The latest fire time handled for the schedule, if any. */
  readonly get: (schedule: string) => Effect.Effect<Option.Option<Date>, Errors.StoreError>
  /** Record the latest fire time handled (durably, when the effect succeeds). */
  readonly set: (schedule: string, at: Date) => Effect.Effect<void, Errors.StoreError>
}

export class ScheduleState extends Context.Tag("@orchestra/pipeline/ScheduleState")<ScheduleState, ScheduleStateService>() {}

/** A state kept in memory, optionally starting from `initial`. */
export const makeMemory = (
  initial?: Iterable<readonly [string, Date]>
): Effect.Effect<ScheduleStateService & { readonly snapshot: Effect.Effect<ReadonlyMap<string, Date>> }> =>
  Effect.map(Ref.make<ReadonlyMap<string, Date>>(new Map(initial ?? [])), (ref) => ({
    get: (schedule) => Effect.map(Ref.get(ref), (m) => Option.fromNullable(m.get(schedule))),
    set: (schedule, at) => Ref.update(ref, (m) => new Map(m).set(schedule, at)),
    snapshot: Ref.get(ref)
  }))

/** The in-memory state as a layer. */
export const layerMemory: Layer.Layer<ScheduleState> = Layer.effect(ScheduleState, makeMemory())
