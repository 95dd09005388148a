/**
 * Entry point of the SQLite writer thread (see `writerThread.ts`): opens
 * its own connection to the database (WAL, the configured `synchronous`
 * and busy timeout) and applies each batch it is sent with the SQL store's
 * `applyBatch`, one transaction per batch, answering once it committed.
 *
 * @since 0.1.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient } from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { SqlStore } from "@orchestra/store-sql"
import { Cause, Effect, Exit, Scope } from "effect"
import { parentPort, workerData } from "node:worker_threads"
import { dialect } from "./dialect.js"
import type { FromWorker, Init, ToWorker } from "./writerThread.js"

const describe = (u: unknown): string =>
  typeof u === "object" && u !== null && "message" in u ? String((u as { message: unknown }).message) : String(u)

const main = async () => {
  const port = parentPort
  if (port === null) return
  const post = (m: FromWorker) => port.postMessage(m)
  const init = workerData as Init
  const scope = Effect.runSync(Scope.make())
  const opened = await Effect.runPromiseExit(
    Effect.gen(function*() {
      const client = yield* SqliteClient.make({ filename: init.filename }).pipe(
        Effect.provideService(Reactivity.Reactivity, yield* Reactivity.make)
      )
      yield* client.unsafe(`PRAGMA busy_timeout = ${init.busyTimeoutMs}`)
      yield* client.unsafe(`PRAGMA synchronous = ${init.synchronous}`)
      return client
    }).pipe(Scope.extend(scope))
  )
  if (Exit.isFailure(opened)) {
    post({ _tag: "Failed", message: `cannot open ${init.filename} for writing: ${describe(Cause.squash(opened.cause))}` })
    return
  }
  const client = opened.value
  post({ _tag: "Ready" })

  // Batches come one at a time (the writer waits for each), in order.
  port.on("message", async (m: ToWorker) => {
    if (m._tag === "Close") {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      port.close()
      return
    }
    const exit = await Effect.runPromiseExit(Effect.provideService(SqlStore.applyBatch(dialect, m.writes), SqlClient, client))
    if (Exit.isSuccess(exit)) {
      post({ _tag: "Done", id: m.id, results: exit.value })
    } else {
      const failure = Cause.failureOption(exit.cause)
      post(
        failure._tag === "Some"
          ? { _tag: "Refused", id: m.id, operation: failure.value.operation, message: failure.value.message }
          : { _tag: "Refused", id: m.id, operation: "write batch", message: describe(Cause.squash(exit.cause)) }
      )
    }
  })
}

void main()
