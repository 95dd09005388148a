/**
 * Group commit: a single writer fiber takes every write queued since its
 * last commit and applies them in one transaction.
 *
 * - Each caller's effect completes when the transaction holding its write
 *   has committed (or failed).
 * - Writes are taken in the order they were submitted; a batch is applied
 *   by `run`, which keeps that order where it matters.
 * - A batch that fails is rolled back and its writes are retried one by one,
 *   each in its own transaction, in submission order: a bad write fails only
 *   its own caller, and when the database itself is failing every caller
 *   gets the error.
 * - Closing (the scope) stops new writes (they fail with a `StoreError`),
 *   lets the writer commit what was already submitted, then ends it.
 *
 * @since 0.1.0
 */
import { Errors } from "@orchestra/core"
import type { Scope } from "effect"
import { Cause, Effect, Exit, Fiber } from "effect"

type StoreError = Errors.StoreError
const StoreError = Errors.StoreError

export interface BatchInfo {
  /** Writes in the batch. */
  readonly size: number
  /** Whether the batch committed in one transaction (false: it was retried write by write). */
  readonly committed: boolean
  readonly millis: number
}

export interface WriterOptions<W> {
  /** Apply writes in one transaction; returns one result per write, in order. */
  readonly run: (writes: ReadonlyArray<W>) => Effect.Effect<ReadonlyArray<unknown>, StoreError>
  /** The store operation a write belongs to, for errors. */
  readonly operation: (write: W) => string
  /** The most writes in one transaction. */
  readonly maxBatch: number
  readonly onBatch?: ((info: BatchInfo) => void) | undefined
}

export interface Writer<W> {
  readonly submit: (write: W) => Effect.Effect<unknown, StoreError>
  /** Submit several writes at once; each gets its own result (they usually commit in one transaction). */
  readonly submitMany: (writes: ReadonlyArray<W>) => Effect.Effect<ReadonlyArray<Exit.Exit<unknown, StoreError>>>
}

interface Pending<W> {
  readonly write: W
  readonly resume: (exit: Exit.Exit<unknown, StoreError>) => void
}

const describeCause = (cause: Cause.Cause<unknown>): string => {
  const e = Cause.squash(cause)
  if (e instanceof Error) return e.message
  if (typeof e === "object" && e !== null && "message" in e) return String((e as { message: unknown }).message)
  return String(e)
}

export const make = <W>(options: WriterOptions<W>): Effect.Effect<Writer<W>, never, Scope.Scope> =>
  Effect.gen(function*() {
    // Plain arrays and callbacks rather than a Queue and Deferreds: this is
    // the per-write path, and it runs hundreds of thousands of times.
    let pending: Array<Pending<W>> = []
    let closed = false
    let wake: (() => void) | undefined

    const signal = () => {
      const w = wake
      wake = undefined
      w?.()
    }

    const runBatch = (batch: ReadonlyArray<Pending<W>>) =>
      Effect.gen(function*() {
        const started = Date.now()
        const exit = yield* Effect.exit(options.run(batch.map((p) => p.write)))
        if (Exit.isSuccess(exit)) {
          batch.forEach((p, i) => p.resume(Exit.succeed(exit.value[i])))
          options.onBatch?.({ size: batch.length, committed: true, millis: Date.now() - started })
          return
        }
        // Rolled back: retry each write alone so only the bad ones fail.
        for (const p of batch) {
          const one = batch.length === 1 ? exit : yield* Effect.exit(options.run([p.write]))
          if (Exit.isSuccess(one)) p.resume(Exit.succeed(one.value[0]))
          else {
            p.resume(Exit.fail(new StoreError({ operation: options.operation(p.write), message: describeCause(one.cause) })))
          }
        }
        options.onBatch?.({ size: batch.length, committed: false, millis: Date.now() - started })
      })

    const idle = Effect.async<void>((resume) => {
      if (pending.length > 0 || closed) resume(Effect.void)
      else wake = () => resume(Effect.void)
    })

    const loop: Effect.Effect<void> = Effect.gen(function*() {
      while (true) {
        if (pending.length === 0) {
          // `closed` is set before the last wake-up, and nothing is queued after it.
          if (closed) return
          yield* idle
          continue
        }
        let batch: Array<Pending<W>>
        if (pending.length <= options.maxBatch) {
          batch = pending
          pending = []
        } else {
          batch = pending.slice(0, options.maxBatch)
          pending = pending.slice(options.maxBatch)
        }
        yield* runBatch(batch)
      }
    })

    const fiber = yield* Effect.forkDaemon(loop)
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        signal()
        return Fiber.await(fiber)
      })
    )

    return {
      submit: (write) =>
        Effect.async<unknown, StoreError>((resume) => {
          // Checked and queued in one synchronous step, so nothing is queued once closed.
          if (closed) {
            resume(Effect.fail(new StoreError({ operation: options.operation(write), message: "the store is closed" })))
            return
          }
          pending.push({ write, resume })
          signal()
        }),
      submitMany: (writes) =>
        Effect.async<ReadonlyArray<Exit.Exit<unknown, StoreError>>>((resume) => {
          const out = new Array<Exit.Exit<unknown, StoreError>>(writes.length)
          if (writes.length === 0) {
            resume(Effect.succeed(out))
            return
          }
          if (closed) {
            for (let i = 0; i < writes.length; i++) {
              out[i] = Exit.fail(new StoreError({ operation: options.operation(writes[i]!), message: "the store is closed" }))
            }
            resume(Effect.succeed(out))
            return
          }
          let left = writes.length
          writes.forEach((write, i) => {
            pending.push({
              write,
              resume: (exit) => {
                out[i] = exit
                if (--left === 0) resume(Effect.succeed(out))
              }
            })
          })
          signal()
        })
    }
  })
