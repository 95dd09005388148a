/**
 * What differs between the SQL databases the store runs on. The store's
 * logic (`SqlStore`) is written once; a dialect plugin (`store-sqlite`,
 * later `store-postgres`) supplies one of these:
 *
 * - column types for the migrations (JSON column type, the job id column);
 * - how new job and pipeline run ids are allocated (SQLite: the
 *   `AUTOINCREMENT` high-water mark in `sqlite_sequence`; PostgreSQL: a
 *   sequence);
 * - how a parameter is written into SQL text (placeholder style, and the
 *   casts PostgreSQL needs where it can not infer a type);
 * - the upsert clause (SQLite and PostgreSQL share `ON CONFLICT`, which
 *   {@link onConflict} writes; another database would supply its own);
 * - the transactions that wrap a batch of writes and a multi-statement read.
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { Effect } from "effect"

/** The logical type of a column or parameter. */
export type ColumnType = "integer" | "time" | "text" | "json"

/** How a conflicting insert is resolved. */
export type ConflictAction =
  | { readonly _tag: "Nothing" }
  | {
    readonly _tag: "Update"
    /** `column = excluded.column, ...`: `excluded` names the row that was refused. */
    readonly set: string
    /** Only update the existing row when this holds (`table.column IS NULL`). */
    readonly where?: string
  }

export interface SqlDialect {
  /** For messages: `sqlite`, `postgres`. */
  readonly name: string
  /** Column types, as written in `CREATE TABLE`. */
  readonly types: {
    /** The job id column: an integer primary key whose values {@link allocateJobIds} hands out and that is never reused. */
    readonly jobId: string
    /** An integer primary key assigned in insertion order (attempt order, result `seq`). */
    readonly serial: string
    readonly integer: string
    /** Epoch milliseconds. */
    readonly time: string
    readonly text: string
    /** A JSON document; values are written as JSON text and may come back as text or parsed. */
    readonly json: string
  }
  /** Statements run by the first migration before the tables are created (a PostgreSQL sequence). */
  readonly setup: ReadonlyArray<string>
  /** Statements run by the pipelines migration (version 2) before its tables are created. */
  readonly setupPipelines: ReadonlyArray<string>
  /**
   * Allocate `count` new job ids, increasing, greater than every id ever
   * allocated (even of jobs since deleted). Runs inside the write
   * transaction of a batch.
   */
  readonly allocateJobIds: (sql: SqlClient, count: number) => Effect.Effect<ReadonlyArray<number>, SqlError>
  /** Allocate `count` new pipeline run ids, as {@link allocateJobIds} does for jobs (table `orchestra_pipeline_runs`). */
  readonly allocatePipelineRunIds: (sql: SqlClient, count: number) => Effect.Effect<ReadonlyArray<number>, SqlError>
  /**
   * The SQL text of parameter number `index` (from 1) of a statement, of
   * the given type: `?` for SQLite, `$3::bigint` for PostgreSQL.
   */
  readonly placeholder: (index: number, type: ColumnType) => string
  /** The clause that follows `INSERT ... VALUES ...` to resolve a conflict on `target` columns. */
  readonly onConflict: (target: ReadonlyArray<string>, action: ConflictAction) => string
  /** The most parameters one statement may carry. */
  readonly maxParams: number
  /** Run one batch of writes atomically. */
  readonly writeTransaction: <A, E, R>(sql: SqlClient, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | SqlError, R>
  /** Run several reads against one consistent snapshot. */
  readonly readTransaction: <A, E, R>(sql: SqlClient, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | SqlError, R>
}

/** The `ON CONFLICT` clause shared by SQLite (3.24+) and PostgreSQL (9.5+). */
export const onConflict = (target: ReadonlyArray<string>, action: ConflictAction): string => {
  const head = `ON CONFLICT (${target.join(", ")})`
  switch (action._tag) {
    case "Nothing":
      return `${head} DO NOTHING`
    case "Update":
      return `${head} DO UPDATE SET ${action.set}${action.where === undefined ? "" : ` WHERE ${action.where}`}`
  }
}
