/**
 * The SQLite dialect of the SQL store.
 *
 * - Job ids: `INTEGER PRIMARY KEY AUTOINCREMENT`, whose high-water mark in
 *   `sqlite_sequence` only grows (it survives deleted rows and is part of
 *   each commit), so ids are never reused, not after a purge nor after a
 *   crash. New ids are read from it inside the batch transaction and
 *   inserted explicitly (which moves the mark). Pipeline run ids the same
 *   way, in their own table.
 * - JSON is stored as TEXT; times as INTEGER (epoch ms).
 * - One connection: `@effect/sql-sqlite-node` serializes statements and
 *   holds the connection for a whole transaction, so a read never sees a
 *   batch half-written.
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import { SqlDialect } from "@orchestra/store-sql"
import { Effect } from "effect"

/** `count` ids above the high-water mark of an `AUTOINCREMENT` table (and above its rows). */
const allocateIds = (sql: SqlClient, table: "orchestra_jobs" | "orchestra_pipeline_runs", count: number) =>
  count === 0 ?
    Effect.succeed([]) :
    Effect.map(
      sql<{ readonly top: number | null }>`SELECT MAX(x) AS top FROM (
        SELECT seq AS x FROM sqlite_sequence WHERE name = ${table}
        UNION ALL SELECT MAX(id) AS x FROM ${sql(table)})`,
      (rows) => {
        const top = Number(rows[0]?.top ?? 0)
        return Array.from({ length: count }, (_, i) => top + 1 + i)
      }
    )

export const dialect: SqlDialect.SqlDialect = {
  name: "sqlite",
  types: {
    jobId: "INTEGER PRIMARY KEY AUTOINCREMENT",
    serial: "INTEGER PRIMARY KEY",
    integer: "INTEGER",
    time: "INTEGER",
    text: "TEXT",
    json: "TEXT"
  },
  setup: [],
  setupPipelines: [],
  allocateJobIds: (sql: SqlClient, count: number) => allocateIds(sql, "orchestra_jobs", count),
  allocatePipelineRunIds: (sql: SqlClient, count: number) => allocateIds(sql, "orchestra_pipeline_runs", count),
  placeholder: () => "?",
  onConflict: SqlDialect.onConflict,
  // SQLITE_MAX_VARIABLE_NUMBER of SQLite 3.32 and later.
  maxParams: 32766,
  writeTransaction: (sql, effect) => sql.withTransaction(effect),
  readTransaction: (sql, effect) => sql.withTransaction(effect)
}
