/**
 * Queries of the SQL store: one job, a page of jobs, the unfinished jobs.
 * Multi-statement reads run in one read transaction so they see one state.
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Errors, Store } from "@orchestra/core"
import type { Job, Names } from "@orchestra/core"
import { Effect, Option, ParseResult, Schema } from "effect"
import type { SqlDialect } from "../SqlDialect.js"
import type { AttemptRow, JobRow, SummaryRow } from "./rows.js"
import type { JobWithAttemptRow } from "./rows.js"
import { ATTEMPT_SELECT, JOB_COLUMNS, JOB_WITH_ATTEMPTS_SELECT, jobRowOf, num, toRecord, toSummary } from "./rows.js"

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
