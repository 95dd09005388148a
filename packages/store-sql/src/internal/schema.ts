/**
 * The tables of the SQL store and their versioned migrations, run at start
 * with `@effect/sql`'s migrator (table `orchestra_migrations`; PostgreSQL
 * locks it, so conductors starting together migrate once).
 *
 * - `orchestra_jobs`: one row per job; `request`, `targets` and
 *   `target_labels` are the encoded JSON of the core schemas; a unique
 *   index on `idempotency_key` makes idempotency the database's business.
 * - `orchestra_job_targets`: (player, job) pairs, for listing by player.
 * - `orchestra_attempts`: one row per (job, task key, attempt); `ord` is the
 *   order attempts were first recorded (dispatch order).
 * - `orchestra_results`: at most one row per attempt (a unique key: the
 *   first result wins); `seq` is the order results were recorded.
 *
 * Version 2 (pipelines and schedules):
 *
 * - `orchestra_pipeline_runs`: one row per pipeline run (the document's
 *   text, the params as JSON); ids are allocated like job ids (never
 *   reused); a unique index on `idempotency_key`.
 * - `orchestra_pipeline_events`: the facts of each run, as JSON; `seq` is
 *   the order they were recorded.
 * - `orchestra_schedules`: per schedule, the latest fire time handled.
 *
 * @since 0.1.0
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"
import type { SqlDialect } from "../SqlDialect.js"

export const MIGRATIONS_TABLE = "orchestra_migrations"

const statements = (d: SqlDialect): Record<string, ReadonlyArray<string>> => {
  const t = d.types
  return {
    "1_init": [
      ...d.setup,
      `CREATE TABLE orchestra_jobs (
        id ${t.jobId},
        idempotency_key ${t.text} UNIQUE,
        score ${t.text} NOT NULL,
        policy ${t.text} NOT NULL,
        request ${t.json} NOT NULL,
        targets ${t.json} NOT NULL,
        target_labels ${t.json} NOT NULL,
        state ${t.text} NOT NULL,
        created_at ${t.time} NOT NULL,
        finished_at ${t.time},
        reason ${t.text}
      )`,
      `CREATE INDEX orchestra_jobs_state ON orchestra_jobs (state, id)`,
      `CREATE INDEX orchestra_jobs_score ON orchestra_jobs (score, id)`,
      `CREATE INDEX orchestra_jobs_created ON orchestra_jobs (created_at)`,
      `CREATE INDEX orchestra_jobs_finished ON orchestra_jobs (finished_at)`,
      `CREATE TABLE orchestra_job_targets (
        player ${t.text} NOT NULL,
        job_id ${t.integer} NOT NULL,
        PRIMARY KEY (player, job_id)
      )`,
      `CREATE INDEX orchestra_job_targets_job ON orchestra_job_targets (job_id)`,
      `CREATE TABLE orchestra_attempts (
        ord ${t.serial},
        job_id ${t.integer} NOT NULL,
        task_key ${t.text} NOT NULL,
        attempt ${t.integer} NOT NULL,
        player ${t.text} NOT NULL,
        dispatched_at ${t.time},
        started_at ${t.time},
        UNIQUE (job_id, task_key, attempt)
      )`,
      `CREATE TABLE orchestra_results (
        seq ${t.serial},
        job_id ${t.integer} NOT NULL,
        task_key ${t.text} NOT NULL,
        attempt ${t.integer} NOT NULL,
        outcome ${t.text} NOT NULL,
        response ${t.json} NOT NULL,
        log ${t.text},
        started_at ${t.time},
        finished_at ${t.time} NOT NULL,
        UNIQUE (job_id, task_key, attempt)
      )`
    ],
    "2_pipelines": [
      ...d.setupPipelines,
      `CREATE TABLE orchestra_pipeline_runs (
        id ${t.jobId},
        idempotency_key ${t.text} UNIQUE,
        pipeline ${t.text} NOT NULL,
        file ${t.text} NOT NULL,
        document ${t.text} NOT NULL,
        params ${t.json} NOT NULL,
        state ${t.text} NOT NULL,
        created_at ${t.time} NOT NULL,
        finished_at ${t.time},
        reason ${t.text}
      )`,
      `CREATE INDEX orchestra_pipeline_runs_state ON orchestra_pipeline_runs (state, id)`,
      `CREATE INDEX orchestra_pipeline_runs_pipeline ON orchestra_pipeline_runs (pipeline, id)`,
      `CREATE TABLE orchestra_pipeline_events (
        seq ${t.serial},
        run_id ${t.integer} NOT NULL,
        event ${t.json} NOT NULL
      )`,
      `CREATE INDEX orchestra_pipeline_events_run ON orchestra_pipeline_events (run_id, seq)`,
      `CREATE TABLE orchestra_schedules (
        name ${t.text} PRIMARY KEY,
        last_fired ${t.time} NOT NULL
      )`
    ]
  }
}

/** The highest migration this code knows. */
export const latestVersion = 2

/** Run the migrations not yet applied; fails if the database was migrated by a newer version. */
export const migrate = (dialect: SqlDialect) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const migrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {}
    for (const [name, list] of Object.entries(statements(dialect))) {
      migrations[name] = Effect.forEach(list, (s) => sql.unsafe(s), { discard: true })
    }
    yield* Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: MIGRATIONS_TABLE })
    const rows = yield* sql<{ readonly v: unknown }>`SELECT MAX(migration_id) AS v FROM ${sql(MIGRATIONS_TABLE)}`
    return Number(rows[0]?.v ?? 0)
  })
