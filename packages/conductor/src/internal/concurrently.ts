/**
 * Run effects concurrently and collect their exits, in order. Each effect
 * gets its own fiber started straight on the current runtime, observed by a
 * counter: an order of magnitude cheaper per effect than
 * `Effect.forEach(…, { concurrency: "unbounded" })`, which matters when
 * every store write of a batch is issued at once so the store can group
 * them. Interrupting the caller interrupts the fibers.
 */
import type { Exit, Fiber } from "effect"
import { Effect, FiberId, Runtime } from "effect"

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

/** Run effects concurrently for their effects only (failures are the effects' own business). */
export const allDiscard = <E>(effects: ReadonlyArray<Effect.Effect<unknown, E>>): Effect.Effect<void> =>
  Effect.asVoid(allExits(effects))
