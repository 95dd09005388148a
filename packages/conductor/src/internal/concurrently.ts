/**
 * Store writes of a loop turn, issued at once: through the store's batch
 * methods when it has them, else one concurrent call per write.
 *
 * `allExits` runs effects concurrently and collects their exits, in order. Each effect
 * gets its own fiber started straight on the current runtime, observed by a
 * counter: an order of magnitude cheaper per effect than
 * `Effect.forEach(…, { concurrency: "unbounded" })`, which matters when
 * every store write of a batch is issued at once so the store can group
 * them. Interrupting the caller interrupts the fibers.
 */
import { Errors } from "@orchestra/core"
import type { Fiber } from "effect"
import { Cause, Effect, Either, Exit, FiberId, Option, Runtime } from "effect"

export const allExits = <A, E>(effects: ReadonlyArray<Effect.Effect<A, E>>): Effect.Effect<ReadonlyArray<Exit.Exit<A, E>>> =>
  effects.length === 0
    ? Effect.succeed([])
    : Effect.flatMap(Effect.runtime<never>(), (runtime) =>
      Effect.async<ReadonlyArray<Exit.Exit<A, E>>>((resume) => {
        const fork = Runtime.runFork(runtime)
        const out = new Array<Exit.Exit<A, E>>(effects.length)
        const fibers: Array<Fiber.RuntimeFiber<A, E>> = []
        let left = effects.length
        effects.forEach((effect, i) => {
          const fiber = fork(effect)
          fibers.push(fiber)
          fiber.addObserver((exit) => {
            out[i] = exit
            if (--left === 0) resume(Effect.succeed(out))
          })
        })
        return Effect.sync(() => {
          for (const f of fibers) f.unsafeInterruptAsFork(FiberId.none)
        })
      }))

/**
 * Apply a store write to each item: through the store's batch method when
 * it has one (one call, one group), else through the single-write method,
 * one concurrent call per item. Each item gets its own result; a defect
 * becomes that item's `StoreError`.
 */
export const eachWrite = <I, A>(
  batch: ((items: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<Either.Either<A, Errors.StoreError>>>) | undefined,
  single: (item: I) => Effect.Effect<A, Errors.StoreError>,
  items: ReadonlyArray<I>,
  operation: string
): Effect.Effect<ReadonlyArray<Either.Either<A, Errors.StoreError>>> => {
  if (items.length === 0) return Effect.succeed([])
  if (batch !== undefined) {
    return Effect.catchAllCause(batch(items), (cause) => {
      const e = new Errors.StoreError({ operation, message: Cause.pretty(cause) })
      return Effect.succeed(items.map(() => Either.left(e)))
    })
  }
  return Effect.map(allExits(items.map(single)), (exits) =>
    exits.map((exit) =>
      Exit.isSuccess(exit)
        ? Either.right(exit.value)
        : Either.left(Option.getOrElse(Cause.failureOption(exit.cause), () =>
          new Errors.StoreError({ operation, message: Cause.pretty(exit.cause) })))
    ))
}
