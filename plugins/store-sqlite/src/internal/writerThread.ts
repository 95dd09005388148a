/**
 * The thread that writes the SQLite database. better-sqlite3 is
 * synchronous: a commit with `synchronous=FULL` blocks its thread for the
 * fsync (milliseconds). On the event loop that would stop everything else
 * and defeat group commit — nothing can arrive while the commit blocks, so
 * each batch would hold the one or two writes that came since the last.
 * Here batches are applied on a worker thread with its own connection: the
 * event loop goes on while a batch commits, and the next batch gathers
 * everything that arrived meanwhile.
 *
 * The worker (`writerWorker.js`) runs the SQL store's own `applyBatch` on
 * its connection; the main thread keeps a connection for reads (WAL: readers
 * see the last commit and never wait for the writer).
 *
 * @since 0.1.0
 */
import { Errors } from "@orchestra/core"
import type { SqlStore } from "@orchestra/store-sql"
import type { Scope } from "effect"
import { Effect } from "effect"
import { Worker } from "node:worker_threads"

const StoreError = Errors.StoreError
type StoreError = Errors.StoreError

/** What the worker is started with. */
export interface Init {
  readonly filename: string
  readonly synchronous: "FULL" | "NORMAL"
  readonly busyTimeoutMs: number
}

/** Messages from the worker. */
export type FromWorker =
  | { readonly _tag: "Ready" }
  | { readonly _tag: "Failed"; readonly message: string }
  | { readonly _tag: "Done"; readonly id: number; readonly results: ReadonlyArray<unknown> }
  | { readonly _tag: "Refused"; readonly id: number; readonly operation: string; readonly message: string }

/** Messages to the worker. */
export type ToWorker =
  | { readonly _tag: "Batch"; readonly id: number; readonly writes: ReadonlyArray<SqlStore.Write> }
  | { readonly _tag: "Close" }

/**
 * The compiled worker script. Run from the sources (the package's tests),
 * this module is `src/internal/writerThread.ts` and the worker is taken
 * from the build (`dist/internal/writerWorker.js`): a worker thread runs
 * JavaScript only.
 */
const workerUrl = (): URL =>
  import.meta.url.endsWith(".ts")
    ? new URL("../../dist/internal/writerWorker.js", import.meta.url)
    : new URL("./writerWorker.js", import.meta.url)

const CLOSE_TIMEOUT_MS = 10_000

/** Start the writer thread; it stops (after its current batch) when the scope closes. */
export const start = (init: Init): Effect.Effect<SqlStore.BatchRunner, StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const pending = new Map<number, (result: Effect.Effect<ReadonlyArray<unknown>, StoreError>) => void>()
    let nextId = 0
    let stopped: string | undefined

    const worker = yield* Effect.acquireRelease(
      Effect.async<Worker, StoreError>((resume) => {
        let w: Worker
        try {
          w = new Worker(workerUrl(), { workerData: init })
        } catch (e) {
          resume(Effect.fail(new StoreError({ operation: "open", message: `cannot start the SQLite writer thread: ${String(e)}` })))
          return
        }
        const onEarly = (m: FromWorker) => {
          if (m._tag === "Ready") {
            w.off("message", onEarly)
            w.off("error", onError)
            w.off("exit", onExit)
            resume(Effect.succeed(w))
          } else if (m._tag === "Failed") {
            w.off("message", onEarly)
            void w.terminate()
            resume(Effect.fail(new StoreError({ operation: "open", message: m.message })))
          }
        }
        const onError = (e: Error) =>
          resume(Effect.fail(new StoreError({ operation: "open", message: `the SQLite writer thread failed: ${e.message}` })))
        const onExit = (code: number) =>
          resume(Effect.fail(new StoreError({ operation: "open", message: `the SQLite writer thread exited (code ${code})` })))
        w.on("message", onEarly)
        w.once("error", onError)
        w.once("exit", onExit)
      }),
      (w) =>
        Effect.async<void>((resume) => {
          if (stopped !== undefined) {
            resume(Effect.void)
            return
          }
          const timer = setTimeout(() => void w.terminate(), CLOSE_TIMEOUT_MS)
          w.once("exit", () => {
            clearTimeout(timer)
            resume(Effect.void)
          })
          w.postMessage({ _tag: "Close" } satisfies ToWorker)
        })
    )

    const stop = (why: string) => {
      if (stopped !== undefined) return
      stopped = why
      const waiting = [...pending.values()]
      pending.clear()
      for (const resume of waiting) resume(Effect.fail(new StoreError({ operation: "write batch", message: why })))
    }
    worker.on("message", (m: FromWorker) => {
      if (m._tag !== "Done" && m._tag !== "Refused") return
      const resume = pending.get(m.id)
      if (resume === undefined) return
      pending.delete(m.id)
      resume(
        m._tag === "Done"
          ? Effect.succeed(m.results)
          : Effect.fail(new StoreError({ operation: m.operation, message: m.message }))
      )
    })
    worker.on("error", (e) => stop(`the SQLite writer thread failed: ${e.message}`))
    worker.on("exit", (code) => stop(`the SQLite writer thread stopped (code ${code})`))

    const runBatch: SqlStore.BatchRunner = (writes) =>
      Effect.async<ReadonlyArray<unknown>, StoreError>((resume) => {
        if (stopped !== undefined) {
          resume(Effect.fail(new StoreError({ operation: "write batch", message: stopped })))
          return
        }
        const id = nextId++
        pending.set(id, resume)
        worker.postMessage({ _tag: "Batch", id, writes } satisfies ToWorker)
      })
    return runBatch
  })
