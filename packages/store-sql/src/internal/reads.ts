/**
 * Queries of the SQL store: one job, a page of jobs, the unfinished jobs;
 * the same for pipeline runs; the state of a schedule.
 * Multi-statement reads run in one read transaction so they see one state.
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Errors, JobState, Store } from "@orchestra/core"
import type { Job, Names } from "@orchestra/core"
import { Effect, Option, ParseResult, Schema } from "effect"
import type { SqlDialect } from "../SqlDialect.js"
import type { AttemptRow, JobRow, RunRow, SummaryRow } from "./rows.js"
import type { JobWithAttemptRow } from "./rows.js"
import { ATTEMPT_SELECT, JOB_COLUMNS, JOB_WITH_ATTEMPTS_SELECT, jobRowOf, num, RUN_COLUMNS, toRecord, toRun, toSummary } from "./rows.js"

const StoreError = Errors.StoreError
type StoreError = Errors.StoreError

const storeError = (operation: string) => (e: SqlError) =>
  new StoreError({ operation, message: `${e.message}: ${String((e.cause as { message?: unknown } | undefined)?.message ?? e.cause)}` })

const getJobText = new WeakMap<SqlDialect, string>()

export const getJob = (
  sql: SqlClient,
  dialect: SqlDialect,
  id: Names.JobId
): Effect.Effect<Option.Option<Job.JobRecord>, StoreError> => {
  let text = getJobText.get(dialect)
  if (text === undefined) {
    text = `${JOB_WITH_ATTEMPTS_SELECT} WHERE j.id = ${dialect.placeholder(1, "integer")} ORDER BY a.ord`
    getJobText.set(dialect, text)
  }
  // One statement: one consistent snapshot without a transaction (this is the read behind every status poll).
  return sql.unsafe<JobWithAttemptRow>(text, [id]).pipe(
    Effect.mapError(storeError("getJob")),
    Effect.flatMap((rows) => {
      const first = rows[0]
      if (first === undefined) return Effect.succeed(Option.none<Job.JobRecord>())
      const attempts = first.job_id === null || first.job_id === undefined ? [] : rows
      return Effect.map(toRecord("getJob", jobRowOf(first), attempts), Option.some)
    })
  )
}

const decodeQuery = Schema.decodeUnknown(Store.JobQuery)

export const listJobs = (
  sql: SqlClient,
  query: Store.JobQuery
): Effect.Effect<Store.JobPage, StoreError> =>
  Effect.gen(function*() {
    const q = yield* Effect.mapError(decodeQuery(query), (e) =>
      new StoreError({ operation: "listJobs", message: `invalid query: ${ParseResult.TreeFormatter.formatErrorSync(e)}` }))
    const where = [
      ...(q.state === undefined ? [] : [sql`state = ${q.state}`]),
      ...(q.score === undefined ? [] : [sql`score = ${q.score}`]),
      ...(q.player === undefined ? [] : [sql`id IN (SELECT job_id FROM orchestra_job_targets WHERE player = ${q.player})`]),
      ...(q.since === undefined ? [] : [sql`created_at >= ${q.since}`]),
      ...(q.until === undefined ? [] : [sql`created_at < ${q.until}`]),
      ...(q.before === undefined ? [] : [sql`id < ${q.before}`])
    ]
    const rows = yield* Effect.mapError(
      sql<SummaryRow>`SELECT id, score, policy, state, targets, created_at, finished_at FROM orchestra_jobs
        WHERE ${sql.and(where)} ORDER BY id DESC LIMIT ${q.limit + 1}`,
      storeError("listJobs")
    )
    const page = rows.slice(0, q.limit)
    const jobs = yield* Effect.forEach(page, toSummary)
    const last = jobs[jobs.length - 1]
    return rows.length > q.limit && last !== undefined ? { jobs, next: last.id } : { jobs }
  })

export const unfinishedJobs = (
  sql: SqlClient,
  dialect: SqlDialect
): Effect.Effect<ReadonlyArray<Job.JobRecord>, StoreError> =>
  dialect.readTransaction(
    sql,
    Effect.gen(function*() {
      const jobs = yield* sql<JobRow>`SELECT ${sql.literal(JOB_COLUMNS)} FROM orchestra_jobs WHERE state = 'PENDING' ORDER BY id`
      if (jobs.length === 0) return [jobs, []] as const
      const attempts = yield* sql<AttemptRow>`${sql.literal(ATTEMPT_SELECT)}
        JOIN orchestra_jobs j ON j.id = a.job_id WHERE j.state = 'PENDING' ORDER BY a.job_id, a.ord`
      return [jobs, attempts] as const
    })
  ).pipe(
    Effect.mapError(storeError("unfinishedJobs")),
    Effect.flatMap(([jobs, attempts]) => {
      const byJob = new Map<number, Array<AttemptRow>>()
      for (const a of attempts) {
        const id = num(a.job_id)!
        const list = byJob.get(id)
        if (list === undefined) byJob.set(id, [a])
        else list.push(a)
      }
      return Effect.forEach(jobs, (job) => toRecord("unfinishedJobs", job, byJob.get(num(job.id)!) ?? []))
    })
  )

// ---- pipeline runs -------------------------------------------------------------------

interface EventRow {
  readonly run_id: unknown
  readonly event: unknown
}

export const getPipelineRun = (
  sql: SqlClient,
  dialect: SqlDialect,
  id: Store.PipelineRunId
): Effect.Effect<Option.Option<Store.PipelineRunRecord>, StoreError> =>
  dialect.readTransaction(
    sql,
    Effect.gen(function*() {
      const runs = yield* sql<RunRow>`SELECT ${sql.literal(RUN_COLUMNS)} FROM orchestra_pipeline_runs WHERE id = ${id}`
      if (runs.length === 0) return [undefined, []] as const
      const events = yield* sql<EventRow>`SELECT run_id, event FROM orchestra_pipeline_events WHERE run_id = ${id} ORDER BY seq`
      return [runs[0], events] as const
    })
  ).pipe(
    Effect.mapError(storeError("getPipelineRun")),
    Effect.flatMap(([run, events]) =>
      run === undefined
        ? Effect.succeed(Option.none<Store.PipelineRunRecord>())
        : Effect.map(toRun("getPipelineRun", run, events.map((e) => e.event)), Option.some)
    )
  )

const decodeRunQuery = Schema.decodeUnknown(Store.PipelineRunQuery)

interface RunSummaryRow {
  readonly id: unknown
  readonly pipeline: unknown
  readonly state: unknown
  readonly created_at: unknown
  readonly finished_at: unknown
  readonly reason: unknown
}

const RunSummary = Schema.Struct({
  id: Store.PipelineRunId,
  pipeline: Schema.String,
  state: JobState.JobState,
  createdAt: Schema.Number,
  finishedAt: Schema.optional(Schema.Number),
  reason: Schema.optional(Schema.String)
})
const decodeRunSummary = Schema.decodeUnknown(RunSummary)

export const listPipelineRuns = (
  sql: SqlClient,
  query: Store.PipelineRunQuery
): Effect.Effect<Store.PipelineRunPage, StoreError> =>
  Effect.gen(function*() {
    const q = yield* Effect.mapError(decodeRunQuery(query), (e) =>
      new StoreError({ operation: "listPipelineRuns", message: `invalid query: ${ParseResult.TreeFormatter.formatErrorSync(e)}` }))
    const where = [
      ...(q.state === undefined ? [] : [sql`state = ${q.state}`]),
      ...(q.pipeline === undefined ? [] : [sql`pipeline = ${q.pipeline}`]),
      ...(q.before === undefined ? [] : [sql`id < ${q.before}`])
    ]
    const rows = yield* Effect.mapError(
      sql<RunSummaryRow>`SELECT id, pipeline, state, created_at, finished_at, reason FROM orchestra_pipeline_runs
        WHERE ${sql.and(where)} ORDER BY id DESC LIMIT ${q.limit + 1}`,
      storeError("listPipelineRuns")
    )
    const runs = yield* Effect.forEach(rows.slice(0, q.limit), (row) =>
      Effect.mapError(
        decodeRunSummary({
          id: num(row.id),
          pipeline: row.pipeline,
          state: row.state,
          createdAt: num(row.created_at),
          ...(row.finished_at === null || row.finished_at === undefined ? {} : { finishedAt: num(row.finished_at) }),
          ...(row.reason === null || row.reason === undefined ? {} : { reason: String(row.reason) })
        }),
        (e) =>
          new StoreError({
            operation: "listPipelineRuns",
            message: `pipeline run ${String(row.id)} is unreadable: ${ParseResult.TreeFormatter.formatErrorSync(e)}`
          })
      ))
    const last = runs[runs.length - 1]
    return rows.length > q.limit && last !== undefined ? { runs, next: last.id } : { runs }
  })

export const unfinishedPipelineRuns = (
  sql: SqlClient,
  dialect: SqlDialect
): Effect.Effect<ReadonlyArray<Store.PipelineRunRecord>, StoreError> =>
  dialect.readTransaction(
    sql,
    Effect.gen(function*() {
      const runs = yield* sql<RunRow>`SELECT ${sql.literal(RUN_COLUMNS)} FROM orchestra_pipeline_runs WHERE state = 'PENDING' ORDER BY id`
      if (runs.length === 0) return [runs, []] as const
      const events = yield* sql<EventRow>`SELECT e.run_id AS run_id, e.event AS event FROM orchestra_pipeline_events e
        JOIN orchestra_pipeline_runs r ON r.id = e.run_id WHERE r.state = 'PENDING' ORDER BY e.run_id, e.seq`
      return [runs, events] as const
    })
  ).pipe(
    Effect.mapError(storeError("unfinishedPipelineRuns")),
    Effect.flatMap(([runs, events]) => {
      const byRun = new Map<number, Array<unknown>>()
      for (const e of events) {
        const id = num(e.run_id)!
        const list = byRun.get(id)
        if (list === undefined) byRun.set(id, [e.event])
        else list.push(e.event)
      }
      return Effect.forEach(runs, (run) => toRun("unfinishedPipelineRuns", run, byRun.get(num(run.id)!) ?? []))
    })
  )

export const getScheduleState = (sql: SqlClient, name: string): Effect.Effect<Option.Option<number>, StoreError> =>
  sql<{ readonly last_fired: unknown }>`SELECT last_fired FROM orchestra_schedules WHERE name = ${name}`.pipe(
    Effect.mapError(storeError("getScheduleState")),
    Effect.map((rows) => Option.fromNullable(num(rows[0]?.last_fired)))
  )
