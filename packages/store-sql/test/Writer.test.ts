import { describe, expect, it } from "@effect/vitest"
import { Errors } from "@orchestra/core"
import { Deferred, Effect, Either, Exit, Fiber, Scope } from "effect"
import * as Writer from "../src/internal/writer.js"

type W = { readonly n: number; readonly bad?: boolean; readonly die?: boolean }

/** A writer over a fake database that records every transaction it was given. */
const fake = (options: { readonly down?: boolean; readonly maxBatch?: number; readonly gate?: Deferred.Deferred<void> } = {}) =>
  Effect.gen(function*() {
    const transactions: Array<ReadonlyArray<number>> = []
    const committed: Array<number> = []
    const writer = yield* Writer.make<W>({
      run: (writes) =>
        Effect.gen(function*() {
          if (options.gate !== undefined) yield* Deferred.await(options.gate)
          transactions.push(writes.map((w) => w.n))
          if (options.down) return yield* new Errors.StoreError({ operation: "write batch", message: "disk on fire" })
          if (writes.some((w) => w.die)) return yield* Effect.dieMessage("bug in apply")
          if (writes.some((w) => w.bad)) return yield* new Errors.StoreError({ operation: "write batch", message: "constraint failed" })
          committed.push(...writes.map((w) => w.n))
          return writes.map((w) => w.n * 10)
        }),
      operation: (w) => `op${w.n}`,
      maxBatch: options.maxBatch ?? 1000
    })
    return { writer, transactions, committed }
  })

describe("group commit writer", () => {
  it.scoped("commits concurrent writes together, in submission order, each caller getting its own result", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const { transactions, writer } = yield* fake({ gate })
      // The first write holds the writer while the others queue up behind it.
      const first = yield* Effect.fork(writer.submit({ n: 0 }))
      yield* Effect.yieldNow()
      const rest = yield* Effect.fork(
        Effect.all(Array.from({ length: 99 }, (_, i) => writer.submit({ n: i + 1 })), { concurrency: "unbounded" })
      )
      yield* Effect.repeatN(Effect.yieldNow(), 10)
      yield* Deferred.succeed(gate, undefined)
      expect(yield* Fiber.join(first)).toBe(0)
      expect(yield* Fiber.join(rest)).toEqual(Array.from({ length: 99 }, (_, i) => (i + 1) * 10))
      expect(transactions.length).toBe(2)
      expect(transactions.flat()).toEqual(Array.from({ length: 100 }, (_, i) => i))
    }))

  it.scoped("caps a batch at maxBatch writes", () =>
    Effect.gen(function*() {
      const { transactions, writer } = yield* fake({ maxBatch: 7 })
      yield* Effect.all(Array.from({ length: 50 }, (_, i) => writer.submit({ n: i })), { concurrency: "unbounded" })
      expect(Math.max(...transactions.map((t) => t.length))).toBeLessThanOrEqual(7)
      expect(transactions.flat()).toEqual(Array.from({ length: 50 }, (_, i) => i))
    }))

  it.scoped("a failed batch is retried write by write: only the bad write fails, with its own operation", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const { committed, transactions, writer } = yield* fake({ gate })
      const fiber = yield* Effect.fork(
        Effect.all(
          Array.from({ length: 10 }, (_, i) => Effect.either(writer.submit({ n: i, bad: i === 4 }))),
          { concurrency: "unbounded" }
        )
      )
      yield* Effect.repeatN(Effect.yieldNow(), 10)
      yield* Deferred.succeed(gate, undefined)
      const results = yield* Fiber.join(fiber)
      expect(results.map(Either.isRight)).toEqual(Array.from({ length: 10 }, (_, i) => i !== 4))
      const bad = results[4]!
      expect(Either.isLeft(bad) && bad.left.operation).toBe("op4")
      expect(Either.isLeft(bad) && bad.left.message).toContain("constraint failed")
      expect(committed).toEqual([0, 1, 2, 3, 5, 6, 7, 8, 9])
      // One failed attempt at the batch holding the bad write, then each of its writes alone, in order.
      const failed = transactions.findIndex((t) => t.length > 1 && t.includes(4))
      expect(failed).toBeGreaterThanOrEqual(0)
      expect(transactions.slice(failed + 1)).toEqual(transactions[failed]!.map((n) => [n]))
    }))

  it.scoped("a defect while applying becomes a StoreError of that write", () =>
    Effect.gen(function*() {
      const { writer } = yield* fake()
      const results = yield* Effect.all([Effect.either(writer.submit({ n: 1, die: true })), Effect.either(writer.submit({ n: 2 }))], {
        concurrency: "unbounded"
      })
      expect(Either.isLeft(results[0]!) && results[0]!.left.message).toContain("bug in apply")
      expect(Either.isRight(results[1]!) && results[1]!.right).toBe(20)
    }))

  it.scoped("when the database fails, every caller gets the error", () =>
    Effect.gen(function*() {
      const { writer } = yield* fake({ down: true })
      const results = yield* Effect.all(Array.from({ length: 5 }, (_, i) => Effect.either(writer.submit({ n: i }))), {
        concurrency: "unbounded"
      })
      expect(results.every((r) => Either.isLeft(r) && r.left._tag === "StoreError" && r.left.message === "disk on fire")).toBe(true)
    }))

  it.effect("closing commits what was submitted before it, then refuses writes", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const gate = yield* Deferred.make<void>()
      const { committed, writer } = yield* Effect.provideService(fake({ gate }), Scope.Scope, scope)
      const fibers = yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => i), (n) => Effect.fork(writer.submit({ n })))
      yield* Effect.repeatN(Effect.yieldNow(), 10)
      const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
      yield* Effect.repeatN(Effect.yieldNow(), 10)
      // Closing waits for the writer.
      expect(closing.unsafePoll()).toBe(null)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(closing)
      expect(committed).toEqual(Array.from({ length: 20 }, (_, i) => i))
      expect(yield* Effect.forEach(fibers, Fiber.join)).toEqual(Array.from({ length: 20 }, (_, i) => i * 10))
      const late = yield* Effect.either(writer.submit({ n: 99 }))
      expect(Either.isLeft(late) && late.left.message).toBe("the store is closed")
    }))
})
