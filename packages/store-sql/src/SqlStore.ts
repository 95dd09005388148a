/**
 * The SQL store, written once over `@effect/sql`'s `SqlClient`: the
 * `StoreService` of core, with migrations run at start and group commit of
 * writes. A dialect plugin provides the `SqlClient` and a {@link SqlDialect}.
 *
 * Writes (`createJob`, `recordDispatch`, `recordStart`, `recordEnd`,
 * `finishJob`, `purge`) are checked and encoded in the caller's fiber, then
 * queued for a single writer fiber, which commits everything queued since
 * its last commit in one transaction with multi-row statements. A call
 * completes when its transaction has committed. A batch that fails is
 * rolled back and retried write by write, so a bad write fails only its own
 * call. The batch methods of core (`recordEnds`, ...) submit their items
 * together. A dialect whose driver blocks may apply batches on a thread of
 * its own (`Options.runBatch`). Reads go straight to the database; `getJob`
 * (behind every status poll) is one statement, so one snapshot without a
 * transaction.
 *
 * Nothing another conductor would need is kept in memory: ids come from the
 * database, idempotency keys and first-result-wins are unique keys, and
 * every guard is in the SQL. So several conductors may share one database
 * (PostgreSQL).
 *
 * Rules beyond the `StoreService` docs:
 * - writes naming a job that does not exist change nothing (`recordEnd`
 *   returns `false`);
 * - `recordStart` of an attempt not recorded yet changes nothing;
 * - an attempt first seen through its result is created then, with the
 *   result's player, and reports `dispatchedAt` = its start (or end) time
 *   until its dispatch is recorded;
 * - `seq` increases in the order results were recorded, within a job and
 *   across the database (it is not dense per job);
 * - a purged job's idempotency key is forgotten with it;
 * - pipeline runs and schedule states are written through the same writer
 *   (one by one within a batch, in call order), with the same rules: run
 *   ids never reused, a known key returns its run, events appended only to
 *   an unfinished run.
 *
 * @since 0.1.0
 */
import { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Errors, Store } from "@orchestra/core"
import type { Names } from "@orchestra/core"
import { Cause, Effect, Either, Exit, Layer, Option } from "effect"
import type { Scope } from "effect"
import * as Reads from "./internal/reads.js"
import * as Rows from "./internal/rows.js"
import * as Schema from "./internal/schema.js"
import * as Writer from "./internal/writer.js"
import * as Writes from "./internal/writes.js"
import type { SqlDialect } from "./SqlDialect.js"

const StoreError = Errors.StoreError
type StoreError = Errors.StoreError

export type BatchInfo = Writer.BatchInfo

/** One write as queued for the writer: already checked and encoded, plain data (it may cross to a worker thread). */
export type Write = Rows.Write

/** Applies a batch of writes in one transaction; one result per write, in order. */
export type BatchRunner = (writes: ReadonlyArray<Write>) => Effect.Effect<ReadonlyArray<unknown>, StoreError>

export interface Options {
  /** The most writes committed in one transaction (default 8192). */
  readonly maxBatch?: number
  /** Called after each batch (for benchmarks and tests). */
  readonly onBatch?: (info: BatchInfo) => void
  /**
   * Where batches are applied (default: {@link applyBatch} on the `SqlClient`
   * in context). A dialect whose driver blocks (SQLite) runs them on a thread
   * of its own, so the event loop goes on while a batch commits and the next
   * batch gathers everything that arrives meanwhile.
   */
  readonly runBatch?: BatchRunner
}

/** The highest schema version this code knows. */
export const schemaVersion = Schema.latestVersion

const sqlMessage = (e: SqlError): string => {
  const cause = e.cause as { readonly message?: unknown } | undefined
  return cause?.message === undefined ? e.message : `${e.message}: ${String(cause.message)}`
}

const toStoreError = (operation: string) => (e: SqlError | StoreError): StoreError =>
  e._tag === "StoreError" ? e : new StoreError({ operation, message: sqlMessage(e) })

/** Run the migrations the database lacks; fails on a database migrated by a newer version. */
export const migrate = (dialect: SqlDialect): Effect.Effect<number, StoreError, SqlClient> =>
  Schema.migrate(dialect).pipe(
    Effect.mapError((e) => new StoreError({ operation: "migrate", message: e.message })),
    // The migrator turns a failing migration into a defect.
    Effect.catchAllDefect((d) => Effect.fail(new StoreError({ operation: "migrate", message: describeDefect(d) }))),
    Effect.filterOrFail(
      (version) => version <= Schema.latestVersion,
      (version) =>
        new StoreError({
          operation: "migrate",
          message: `the ${dialect.name} database has schema version ${version}, newer than this Orchestra knows (${Schema.latestVersion})`
        })
    )
  )

const describeDefect = (d: unknown): string => {
  const message = (u: unknown) =>
    typeof u === "object" && u !== null && "message" in u ? String((u as { message: unknown }).message) : String(u)
  const cause = typeof d === "object" && d !== null && "cause" in d ? (d as { cause: unknown }).cause : undefined
  return cause === undefined ? message(d) : `${message(d)}: ${message(cause)}`
}

/** Apply a batch of writes in one transaction on the `SqlClient` in context; one result per write, in order. */
export const applyBatch = (
  dialect: SqlDialect,
  writes: ReadonlyArray<Write>
): Effect.Effect<ReadonlyArray<unknown>, StoreError, SqlClient> =>
  Effect.flatMap(SqlClient, (sql) =>
    dialect.writeTransaction(sql, Writes.apply(sql, dialect, writes)).pipe(
      Effect.mapError(toStoreError(writes.length === 1 ? Rows.operationOf(writes[0]!) : "write batch"))
    ))

/**
 * Make the store on the `SqlClient` in context (reads, and writes unless
 * `options.runBatch` applies them); migrates first. The writer stops with
 * the scope.
 */
export const make = (
  dialect: SqlDialect,
  options: Options = {}
): Effect.Effect<Store.StoreService, StoreError, SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient
    yield* migrate(dialect)
    const runBatch: BatchRunner = options.runBatch ??
      ((writes) => Effect.provideService(applyBatch(dialect, writes), SqlClient, sql))
    const writer = yield* Writer.make<Write>({
      run: runBatch,
      operation: Rows.operationOf,
      maxBatch: options.maxBatch ?? 8192,
      onBatch: options.onBatch
    })
    const submit = <A>(write: Either.Either<Write, StoreError>) =>
      (Either.isLeft(write) ? Effect.fail(write.left) : writer.submit(write.right)) as Effect.Effect<A, StoreError>

    /** Items checked and encoded one by one, the valid ones submitted together; one result per item. */
    const submitMany = <I, A>(items: ReadonlyArray<I>, toWrite: (item: I) => Either.Either<Write, StoreError>) =>
      Effect.suspend(() => {
        const out = new Array<Either.Either<A, StoreError>>(items.length)
        const writes: Array<Write> = []
        const at: Array<number> = []
        items.forEach((item, i) => {
          const w = toWrite(item)
          if (Either.isLeft(w)) out[i] = Either.left(w.left)
          else {
            writes.push(w.right)
            at.push(i)
          }
        })
        return Effect.map(writer.submitMany(writes), (exits) => {
          exits.forEach((exit, j) => {
            out[at[j]!] = Exit.isSuccess(exit)
              ? Either.right(exit.value as A)
              : Either.left(Cause.failureOption(exit.cause).pipe(
                Option.getOrElse(() => new StoreError({ operation: "write batch", message: Cause.pretty(exit.cause) }))
              ))
          })
          return out
        })
      })

    const service: Store.StoreService = {
      createJob: (job) => Effect.suspend(() => submit<Store.Created>(Rows.createWrite(job))),
      recordDispatch: (d) => Effect.suspend(() => submit<void>(Rows.dispatchWrite(d))),
      recordStart: (ref, at) => Effect.suspend(() => submit<void>(Rows.startWrite(ref, at))),
      recordEnd: (ended) => Effect.suspend(() => submit<boolean>(Rows.endWrite(ended))),
      finishJob: (id, state, at, reason) => Effect.suspend(() => submit<void>(Rows.finishWrite(id, state, at, reason))),
      getJob: (id: Names.JobId) => Reads.getJob(sql, dialect, id),
      listJobs: (query) => Reads.listJobs(sql, query),
      unfinishedJobs: Reads.unfinishedJobs(sql, dialect),
      purge: (before) => Effect.suspend(() => submit<number>(Rows.purgeWrite(before))),
      createPipelineRun: (run) => Effect.suspend(() => submit<Store.CreatedPipelineRun>(Rows.createRunWrite(run))),
      recordPipelineEvent: (id, event) => Effect.suspend(() => submit<boolean>(Rows.runEventWrite(id, event))),
      finishPipelineRun: (id, state, at, reason) => Effect.suspend(() => submit<void>(Rows.finishRunWrite(id, state, at, reason))),
      getPipelineRun: (id) => Reads.getPipelineRun(sql, dialect, id),
      listPipelineRuns: (query) => Reads.listPipelineRuns(sql, query),
      unfinishedPipelineRuns: Reads.unfinishedPipelineRuns(sql, dialect),
      purgePipelineRuns: (before) => Effect.suspend(() => submit<number>(Rows.purgeRunsWrite(before))),
      getScheduleState: (name) => Reads.getScheduleState(sql, name),
      setScheduleState: (name, at) => Effect.suspend(() => submit<void>(Rows.scheduleWrite(name, at)))
    }
    return Store.withBatches(service, {
      recordDispatches: (ds) => submitMany<Store.Dispatched, void>(ds, Rows.dispatchWrite),
      recordStarts: (ss) => submitMany<Store.Start, void>(ss, (s) => Rows.startWrite(s.ref, s.at)),
      recordEnds: (es) => submitMany<Store.Ended, boolean>(es, Rows.endWrite),
      finishJobs: (fs) => submitMany<Store.Finish, void>(fs, (f) => Rows.finishWrite(f.id, f.state, f.at, f.reason))
    })
  })

/** The store as the core `Store` service, on the `SqlClient` the layer is given. */
export const layer = (dialect: SqlDialect, options?: Options): Layer.Layer<Store.Store, StoreError, SqlClient> =>
  Layer.scoped(Store.Store, make(dialect, options))
