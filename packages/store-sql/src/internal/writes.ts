/**
 * Applies a batch of writes inside one transaction, with multi-row
 * statements.
 *
 * A batch is cut at each purge (purges apply in their place). Within a
 * stretch between purges, writes are applied by kind in the order a job
 * lives — creates, dispatches, starts, ends, finishes — and in call order
 * within each kind. That is the same as applying them in call order:
 *
 * - a create can not be referred to by another write of its batch (its id
 *   is not known before it commits);
 * - a dispatch and the end of the same attempt leave the same row whichever
 *   comes first (the dispatch's player and time win, the end's result is
 *   kept), and so do a start and an end;
 * - a finish touches only the job's state, which no other write reads.
 *
 * Writes of pipeline runs and schedules touch none of the job tables: they
 * are applied after the job writes, one by one in call order.
 *
 * First-wins rules are kept inside a batch by keeping only the first
 * write of each kind per attempt (or per job) and, across batches, by the
 * database: unique keys with `ON CONFLICT DO NOTHING`, and updates guarded
 * by `IS NULL` / `state = 'PENDING'`.
 *
 * @since 0.1.0
 */
import type { SqlClient } from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Errors, Names } from "@orchestra/core"
import type { Store } from "@orchestra/core"
import { Effect } from "effect"
import type { ColumnType, SqlDialect } from "../SqlDialect.js"
import type { PipelineWrite, Write } from "./rows.js"
import { isPipelineWrite, num } from "./rows.js"

const StoreError = Errors.StoreError
type StoreError = Errors.StoreError

type Of<T extends Write["_tag"]> = Extract<Write, { readonly _tag: T }>
type Indexed<T extends Write["_tag"]> = { readonly i: number; readonly w: Of<T> }

/** Rows per statement at most; a fixed size lets the statement be prepared once and reused. */
const MAX_ROWS = 500

const refKey = (job: number, key: string, attempt: number) => `${job}\u0000${key}\u0000${attempt}`

type Row = Record<string, unknown>

/**
 * Run `render(values)` for each chunk of rows, where `values` is the SQL text
 * `(?, ?), (?, ?)` of the chunk's rows; returns the rows of every chunk.
 */
const multiRow = <A>(
  sql: SqlClient,
  dialect: SqlDialect,
  rows: ReadonlyArray<A>,
  types: ReadonlyArray<ColumnType>,
  values: (row: A) => ReadonlyArray<unknown>,
  render: (values: string) => string
): Effect.Effect<ReadonlyArray<Row>, SqlError> => {
  if (rows.length === 0) return Effect.succeed([])
  const perChunk = Math.max(1, Math.min(MAX_ROWS, Math.floor(dialect.maxParams / types.length)))
  const chunks: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < rows.length; i += perChunk) chunks.push(rows.slice(i, i + perChunk))
  return Effect.map(
    Effect.forEach(chunks, (chunk) => {
      const params: Array<unknown> = []
      for (const row of chunk) {
        const vs = values(row)
        for (let j = 0; j < types.length; j++) params.push(vs[j])
      }
      return sql.unsafe<Row>(render(tuplesText(dialect, types, chunk.length)), params)
    }),
    (results) => results.flat()
  )
}

/** `(?, ?), (?, ?)` for `rows` rows of `types`; the same few texts come back for every batch, so they are kept. */
const tuplesCache = new WeakMap<SqlDialect, Map<string, string>>()
const tuplesText = (dialect: SqlDialect, types: ReadonlyArray<ColumnType>, rows: number): string => {
  let byShape = tuplesCache.get(dialect)
  if (byShape === undefined) {
    byShape = new Map()
    tuplesCache.set(dialect, byShape)
  }
  const key = `${types.join(",")}/${rows}`
  const cached = byShape.get(key)
  if (cached !== undefined) return cached
  const tuples: Array<string> = []
  let index = 0
  for (let r = 0; r < rows; r++) tuples.push(`(${types.map((t) => dialect.placeholder(++index, t)).join(", ")})`)
  const text = tuples.join(", ")
  // Only the full-size chunks repeat; do not keep every odd size seen.
  if (byShape.size < 256) byShape.set(key, text)
  return text
}

/** Which of `ids` are jobs. */
const knownJobs = (sql: SqlClient, dialect: SqlDialect, ids: ReadonlyArray<number>) =>
  Effect.map(
    multiRow(
      sql,
      dialect,
      [...new Set(ids)],
      ["integer"],
      (id) => [id],
      (v) => `SELECT j.id AS id FROM orchestra_jobs j JOIN (VALUES ${v}) AS v ON j.id = v.column1`
    ),
    (rows) => new Set(rows.map((r) => num(r.id)!))
  )

const jobsByKey = (sql: SqlClient, dialect: SqlDialect, keys: ReadonlyArray<string>) =>
  Effect.map(
    multiRow(
      sql,
      dialect,
      keys,
      ["text"],
      (k) => [k],
      (v) =>
        `SELECT j.id AS id, j.idempotency_key AS k FROM orchestra_jobs j JOIN (VALUES ${v}) AS v ON j.idempotency_key = v.column1`
    ),
    (rows) => new Map(rows.map((r) => [String(r.k), num(r.id)!]))
  )

const applyCreates = (
  sql: SqlClient,
  dialect: SqlDialect,
  creates: ReadonlyArray<Indexed<"Create">>,
  out: Array<unknown>
) =>
  Effect.gen(function*() {
    if (creates.length === 0) return
    // Only the first create of each idempotency key in the batch may insert.
    const firstOfKey = new Map<string, Indexed<"Create">>()
    const candidates: Array<Indexed<"Create">> = []
    const repeats: Array<Indexed<"Create">> = []
    for (const c of creates) {
      if (c.w.key === null) candidates.push(c)
      else if (firstOfKey.has(c.w.key)) repeats.push(c)
      else {
        firstOfKey.set(c.w.key, c)
        candidates.push(c)
      }
    }
    const byKey = firstOfKey.size === 0 ? new Map<string, number>() : yield* jobsByKey(sql, dialect, [...firstOfKey.keys()])
    const fresh = candidates.filter((c) => c.w.key === null || !byKey.has(c.w.key))
    const ids = yield* dialect.allocateJobIds(sql, fresh.length)
    const rows = fresh.map((c, n) => ({ id: ids[n]!, c }))
    const inserted = yield* multiRow(
      sql,
      dialect,
      rows,
      ["integer", "text", "text", "text", "json", "json", "json", "text", "time"],
      ({ c, id }) => [id, c.w.key, c.w.score, c.w.policy, c.w.request, c.w.targetsJson, c.w.targetLabels, "PENDING", c.w.createdAt],
      (v) =>
        `INSERT INTO orchestra_jobs (id, idempotency_key, score, policy, request, targets, target_labels, state, created_at) VALUES ${v} ${
          dialect.onConflict(["idempotency_key"], { _tag: "Nothing" })
        } RETURNING id`
    )
    const insertedIds = new Set(inserted.map((r) => num(r.id)!))
    // A create that lost a race on its key (another conductor inserted it first) returns that job.
    const lost = rows.filter((r) => !insertedIds.has(r.id))
    if (lost.length > 0) {
      const keys = lost.map((r) => r.c.w.key).filter((k): k is string => k !== null)
      if (keys.length !== lost.length) {
        return yield* new StoreError({ operation: "createJob", message: "a job without idempotency key was not inserted" })
      }
      const found = yield* jobsByKey(sql, dialect, keys)
      for (const [k, id] of found) byKey.set(k, id)
    }
    const targets: Array<{ readonly player: string; readonly job: number }> = []
    for (const r of rows) {
      if (!insertedIds.has(r.id)) continue
      for (const player of new Set(r.c.w.targets)) targets.push({ player, job: r.id })
    }
    yield* multiRow(
      sql,
      dialect,
      targets,
      ["text", "integer"],
      (t) => [t.player, t.job],
      (v) => `INSERT INTO orchestra_job_targets (player, job_id) VALUES ${v} ${dialect.onConflict(["player", "job_id"], { _tag: "Nothing" })}`
    )
    // Ids come from `allocateJobIds`: positive integers by construction.
    const result = (id: number, existing: boolean): Store.Created => ({ id: id as Names.JobId, existing })
    for (const r of rows) {
      if (insertedIds.has(r.id)) out[r.c.i] = result(r.id, false)
    }
    for (const c of [...candidates, ...repeats]) {
      if (out[c.i] !== undefined) continue
      const id = c.w.key === null ? undefined : byKey.get(c.w.key)
      if (id === undefined) {
        return yield* new StoreError({ operation: "createJob", message: `job with idempotency key ${c.w.key} vanished` })
      }
      out[c.i] = result(id, true)
    }
  })

/** Keep the first of each group, in order. */
const firstBy = <A>(xs: ReadonlyArray<A>, key: (a: A) => string): { readonly first: Array<A>; readonly rest: Array<A> } => {
  const seen = new Set<string>()
  const first: Array<A> = []
  const rest: Array<A> = []
  for (const x of xs) {
    const k = key(x)
    if (seen.has(k)) rest.push(x)
    else {
      seen.add(k)
      first.push(x)
    }
  }
  return { first, rest }
}

const applyStretch = (sql: SqlClient, dialect: SqlDialect, stretch: ReadonlyArray<{ readonly i: number; readonly w: Write }>, out: Array<unknown>) =>
  Effect.gen(function*() {
    const of = <T extends Write["_tag"]>(tag: T) => stretch.filter((x): x is Indexed<T> => x.w._tag === tag)
    yield* applyCreates(sql, dialect, of("Create"), out)

    const dispatches = of("Dispatch")
    const starts = of("Start")
    const ends = of("End")
    const finishes = of("Finish")
    const referenced = [...dispatches, ...starts, ...ends, ...finishes].map((x) => x.w.job)
    const known = referenced.length === 0 ? new Set<number>() : yield* knownJobs(sql, dialect, referenced)
    for (const x of [...dispatches, ...starts, ...finishes]) out[x.i] = undefined

    // Dispatches: the first record of an attempt wins (an attempt first seen through its result takes the dispatch's player and time).
    const d = firstBy(dispatches.filter((x) => known.has(x.w.job)), (x) => refKey(x.w.job, x.w.key, x.w.attempt))
    yield* multiRow(
      sql,
      dialect,
      d.first,
      ["integer", "text", "integer", "text", "time"],
      ({ w }) => [w.job, w.key, w.attempt, w.player, w.at],
      (v) =>
        `INSERT INTO orchestra_attempts (job_id, task_key, attempt, player, dispatched_at) VALUES ${v} ${
          dialect.onConflict(["job_id", "task_key", "attempt"], {
            _tag: "Update",
            set: "player = excluded.player, dispatched_at = excluded.dispatched_at",
            where: "orchestra_attempts.dispatched_at IS NULL"
          })
        }`
    )

    // Starts: the first start of a recorded attempt wins.
    const s = firstBy(starts.filter((x) => known.has(x.w.job)), (x) => refKey(x.w.job, x.w.key, x.w.attempt))
    yield* multiRow(
      sql,
      dialect,
      s.first,
      ["integer", "text", "integer", "time"],
      ({ w }) => [w.job, w.key, w.attempt, w.at],
      (v) =>
        `UPDATE orchestra_attempts SET started_at = v.column4 FROM (VALUES ${v}) AS v
         WHERE orchestra_attempts.job_id = v.column1 AND orchestra_attempts.task_key = v.column2
         AND orchestra_attempts.attempt = v.column3 AND orchestra_attempts.started_at IS NULL`
    )

    // Ends: make sure the attempt exists, then the first result wins by the unique key.
    const e = firstBy(ends, (x) => refKey(x.w.job, x.w.key, x.w.attempt))
    const endable = e.first.filter((x) => known.has(x.w.job))
    yield* multiRow(
      sql,
      dialect,
      endable,
      ["integer", "text", "integer", "text", "time"],
      ({ w }) => [w.job, w.key, w.attempt, w.player, w.startedAt],
      (v) =>
        `INSERT INTO orchestra_attempts (job_id, task_key, attempt, player, started_at) VALUES ${v} ${
          dialect.onConflict(["job_id", "task_key", "attempt"], { _tag: "Nothing" })
        }`
    )
    const won = yield* multiRow(
      sql,
      dialect,
      endable,
      ["integer", "text", "integer", "text", "json", "text", "time", "time"],
      ({ w }) => [w.job, w.key, w.attempt, w.outcome, w.response, w.log, w.startedAt, w.finishedAt],
      (v) =>
        `INSERT INTO orchestra_results (job_id, task_key, attempt, outcome, response, log, started_at, finished_at) VALUES ${v} ${
          dialect.onConflict(["job_id", "task_key", "attempt"], { _tag: "Nothing" })
        } RETURNING job_id, task_key, attempt`
    )
    const winners = new Set(won.map((r) => refKey(num(r.job_id)!, String(r.task_key), num(r.attempt)!)))
    for (const x of ends) out[x.i] = false
    for (const x of endable) out[x.i] = winners.has(refKey(x.w.job, x.w.key, x.w.attempt))

    // Finishes: only a pending job finishes; the first finish wins.
    const f = firstBy(finishes.filter((x) => known.has(x.w.job)), (x) => String(x.w.job))
    yield* multiRow(
      sql,
      dialect,
      f.first,
      ["integer", "text", "time", "text"],
      ({ w }) => [w.job, w.state, w.at, w.reason],
      (v) =>
        `UPDATE orchestra_jobs SET state = v.column2, finished_at = v.column3, reason = v.column4 FROM (VALUES ${v}) AS v
         WHERE orchestra_jobs.id = v.column1 AND orchestra_jobs.state = 'PENDING'`
    )
  })

const applyPurge = (sql: SqlClient, dialect: SqlDialect, before: number) =>
  Effect.gen(function*() {
    const p = dialect.placeholder(1, "time")
    const doomed = `SELECT id FROM orchestra_jobs WHERE state <> 'PENDING' AND finished_at < ${p}`
    const counted = yield* sql.unsafe<Row>(`SELECT COUNT(*) AS n FROM (${doomed}) AS d`, [before])
    const n = num(counted[0]?.n) ?? 0
    if (n === 0) return 0
    for (const table of ["orchestra_results", "orchestra_attempts", "orchestra_job_targets"]) {
      yield* sql.unsafe(`DELETE FROM ${table} WHERE job_id IN (${doomed})`, [before])
    }
    yield* sql.unsafe(`DELETE FROM orchestra_jobs WHERE state <> 'PENDING' AND finished_at < ${p}`, [before])
    return n
  })

/**
 * One write of a pipeline run or a schedule. These are few (a handful per
 * job of a pipeline), so each is its own statements, in call order; they
 * touch no table the job writes touch.
 */
const applyPipelineWrite = (sql: SqlClient, dialect: SqlDialect, w: PipelineWrite): Effect.Effect<unknown, SqlError | StoreError> =>
  Effect.gen(function*() {
    const ph = (i: number, t: ColumnType) => dialect.placeholder(i, t)
    switch (w._tag) {
      case "CreateRun": {
        const byKey = (key: string) =>
          Effect.map(
            sql.unsafe<Row>(`SELECT id FROM orchestra_pipeline_runs WHERE idempotency_key = ${ph(1, "text")}`, [key]),
            (rows) => num(rows[0]?.id)
          )
        if (w.key !== null) {
          const known = yield* byKey(w.key)
          if (known !== undefined) return { id: known, existing: true }
        }
        const [id] = yield* dialect.allocatePipelineRunIds(sql, 1)
        if (id === undefined) return yield* new StoreError({ operation: "createPipelineRun", message: "no run id was allocated" })
        const inserted = yield* sql.unsafe<Row>(
          `INSERT INTO orchestra_pipeline_runs (id, idempotency_key, pipeline, file, document, params, state, created_at) VALUES (${
            ph(1, "integer")
          }, ${ph(2, "text")}, ${ph(3, "text")}, ${ph(4, "text")}, ${ph(5, "text")}, ${ph(6, "json")}, 'PENDING', ${ph(7, "time")}) ${
            dialect.onConflict(["idempotency_key"], { _tag: "Nothing" })
          } RETURNING id`,
          [id, w.key, w.pipeline, w.file, w.document, w.params, w.createdAt]
        )
        if (inserted.length > 0) return { id, existing: false }
        // Lost a race on the key (another conductor inserted it first): that run.
        const other = w.key === null ? undefined : yield* byKey(w.key)
        if (other === undefined) return yield* new StoreError({ operation: "createPipelineRun", message: "the run was not inserted" })
        return { id: other, existing: true }
      }
      case "RunEvent": {
        const open = yield* sql.unsafe<Row>(
          `SELECT id FROM orchestra_pipeline_runs WHERE id = ${ph(1, "integer")} AND state = 'PENDING'`,
          [w.run]
        )
        if (open.length === 0) return false
        yield* sql.unsafe(`INSERT INTO orchestra_pipeline_events (run_id, event) VALUES (${ph(1, "integer")}, ${ph(2, "json")})`, [
          w.run,
          w.event
        ])
        return true
      }
      case "FinishRun":
        yield* sql.unsafe(
          `UPDATE orchestra_pipeline_runs SET state = ${ph(1, "text")}, finished_at = ${ph(2, "time")}, reason = ${ph(3, "text")}
           WHERE id = ${ph(4, "integer")} AND state = 'PENDING'`,
          [w.state, w.at, w.reason, w.run]
        )
        return undefined
      case "PurgeRuns": {
        const doomed = `SELECT id FROM orchestra_pipeline_runs WHERE state <> 'PENDING' AND finished_at < ${ph(1, "time")}`
        const counted = yield* sql.unsafe<Row>(`SELECT COUNT(*) AS n FROM (${doomed}) AS d`, [w.before])
        const n = num(counted[0]?.n) ?? 0
        if (n === 0) return 0
        yield* sql.unsafe(`DELETE FROM orchestra_pipeline_events WHERE run_id IN (${doomed})`, [w.before])
        yield* sql.unsafe(`DELETE FROM orchestra_pipeline_runs WHERE state <> 'PENDING' AND finished_at < ${ph(1, "time")}`, [w.before])
        return n
      }
      case "SetSchedule":
        yield* sql.unsafe(
          `INSERT INTO orchestra_schedules (name, last_fired) VALUES (${ph(1, "text")}, ${ph(2, "time")}) ${
            dialect.onConflict(["name"], { _tag: "Update", set: "last_fired = excluded.last_fired" })
          }`,
          [w.name, w.at]
        )
        return undefined
    }
  })

/** Apply `writes` (in a transaction the caller opens); one result per write. */
export const apply = (
  sql: SqlClient,
  dialect: SqlDialect,
  writes: ReadonlyArray<Write>
): Effect.Effect<ReadonlyArray<unknown>, SqlError | StoreError> =>
  Effect.gen(function*() {
    const out: Array<unknown> = new Array(writes.length)
    let stretch: Array<{ readonly i: number; readonly w: Write }> = []
    const pipelineWrites: Array<{ readonly i: number; readonly w: PipelineWrite }> = []
    for (let i = 0; i <= writes.length; i++) {
      const w = writes[i]
      if (w !== undefined && isPipelineWrite(w)) {
        pipelineWrites.push({ i, w })
      } else if (w === undefined || w._tag === "Purge") {
        if (stretch.length > 0) yield* applyStretch(sql, dialect, stretch, out)
        stretch = []
        if (w !== undefined && w._tag === "Purge") out[i] = yield* applyPurge(sql, dialect, w.before)
      } else {
        stretch.push({ i, w })
      }
    }
    for (const { i, w } of pipelineWrites) out[i] = yield* applyPipelineWrite(sql, dialect, w)
    return out
  })
