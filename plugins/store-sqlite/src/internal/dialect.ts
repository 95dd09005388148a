/**
 * The SQLite dialect of the SQL store.
 *
 * - Job ids: `INTEGER PRIMARY KEY AUTOINCREMENT`, whose high-water mark in
 *   `sqlite_sequence` only grows (it survives deleted rows and is part of
 *   each commit), so ids are never reused, not after a purge nor after a
 *   crash. New ids are read from it inside the batch transaction and
 *   inserted explicitly (which moves the mark).
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
  allocateJobIds: (sql: SqlClient, count: number) =>
    count === 0 ?
      Effect.succeed([]) :
      Effect.map(
        sql<{ readonly top: number | null }>`SELECT MAX(x) AS top FROM (
          SELECT seq AS x FROM sqlite_sequence WHERE name = 'orchestra_jobs'
          UNION ALL SELECT MAX(id) AS x FROM orchestra_jobs)`,
        (rows) => {
          const top = Number(rows[0]?.top ?? 0)
          return Array.from({ length: count }, (_, i) => top + 1 + i)
        }
      ),
  placeholder: () => "?",
  onConflict: SqlDialect.onConflict,
  // SQLITE_MAX_VARIABLE_NUMBER of SQLite 3.32 and later.
  maxParams: 32766,
  writeTransaction: (sql, effect) => sql.withTransaction(effect),
  readTransaction: (sql, effect) => sql.withTransaction(effect)
}
