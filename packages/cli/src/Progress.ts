/**
 * Live progress of one job, per player, as `submit --wait` and `wait` show
 * it while the job runs: each player's task dispatched, started, finished
 * with its outcome. On a terminal the block is redrawn in place; otherwise
 * (a pipe, a log file, a test) each change is one line.
 *
 * The model is pure (`Tracker`): updates in, rows out. The writer only
 * decides how the rows reach the screen.
 *
 * @since 0.1.0
 */
import type { OrchestraClient } from "@orchestra/client"
import type { JobState, Outcome } from "@orchestra/core"
import * as Output from "./Output.js"

/** Something that happened to a job, as progress sees it. */
export type Update =
  | { readonly _tag: "Dispatched"; readonly player: string; readonly attempt: number }
  | { readonly _tag: "Started"; readonly player: string; readonly attempt: number }
  | {
    readonly _tag: "Finished"
    readonly player: string
    readonly attempt: number
    readonly outcome: Outcome.Outcome
    readonly response?: Readonly<Record<string, unknown>> | undefined
  }
  | { readonly _tag: "JobFinished"; readonly state: JobState.JobState; readonly reason?: string | undefined }

/** What an event of job `id` tells progress (nothing for other jobs, players and resets). */
export const fromEvent = (id: number, e: OrchestraClient.Event): Update | undefined => {
  if (!("job" in e) || e.job !== id) return undefined
  switch (e.type) {
    case "task.dispatched":
      return { _tag: "Dispatched", player: e.player, attempt: e.attempt }
    case "task.started":
      return { _tag: "Started", player: e.player, attempt: e.attempt }
    case "task.finished":
      return { _tag: "Finished", player: e.player, attempt: e.attempt, outcome: e.outcome }
    case "job.finished":
      return { _tag: "JobFinished", state: e.state, reason: e.reason }
    default:
      return undefined
  }
}

/** Everything a job's detail tells progress, in order: each attempt's dispatch, start and end, then the job's end. */
export const fromDetail = (job: OrchestraClient.JobDetail): ReadonlyArray<Update> => {
  const out: Array<Update> = []
  for (const a of job.attempts) {
    out.push({ _tag: "Dispatched", player: a.player, attempt: a.attempt })
    if (a.startedAt !== undefined) out.push({ _tag: "Started", player: a.player, attempt: a.attempt })
    if (a.outcome !== undefined) out.push({ _tag: "Finished", player: a.player, attempt: a.attempt, outcome: a.outcome, response: a.response })
  }
  if (job.state !== "PENDING") out.push({ _tag: "JobFinished", state: job.state, reason: job.reason })
  return out
}

/** Where one player's task is. */
export type Phase = "dispatched" | "running" | "finished"

export interface Row {
  readonly player: string
  readonly attempt: number
  readonly phase: Phase
  readonly outcome?: Outcome.Outcome
  readonly response?: Readonly<Record<string, unknown>>
}

/** The state of the display: the job, its target count, and a row per player dispatched so far (in order of dispatch). */
export interface Tracker {
  readonly id: number
  readonly title: string
  readonly targets: number
  readonly state: JobState.JobState
  readonly reason?: string
  readonly rows: ReadonlyArray<Row>
}

export const make = (id: number, options: { readonly title?: string; readonly targets?: number } = {}): Tracker => ({
  id,
  title: options.title ?? "",
  targets: options.targets ?? 0,
  state: "PENDING",
  rows: []
})

const setRow = (rows: ReadonlyArray<Row>, row: Row): ReadonlyArray<Row> => {
  const i = rows.findIndex((r) => r.player === row.player)
  return i < 0 ? [...rows, row] : rows.map((r, j) => (j === i ? row : r))
}

/** The result of an update: the new tracker, whether the display changed, and the line that tells the news (if any). */
export interface Applied {
  readonly tracker: Tracker
  readonly changed: boolean
  readonly line?: string
}

const unchanged = (t: Tracker): Applied => ({ tracker: t, changed: false })

/**
 * Apply an update. Duplicates, and news older than what is shown (an
 * earlier attempt than the row's), change nothing; a response that arrives
 * after the outcome (events carry no responses, job details do) fills the
 * row in without a line of its own.
 */
export const apply = (t: Tracker, u: Update): Applied => {
  const prefix = `job ${t.id}:`
  if (u._tag === "JobFinished") {
    if (t.state === u.state) return unchanged(t)
    const next: Tracker = { ...t, state: u.state, ...(u.reason === undefined ? {} : { reason: u.reason }) }
    return { tracker: next, changed: true, line: `${prefix} ${u.state}${u.reason === undefined ? "" : ` (${u.reason})`}` }
  }
  const current = t.rows.find((r) => r.player === u.player)
  if (current !== undefined && current.attempt > u.attempt) return unchanged(t)
  const sameAttempt = current !== undefined && current.attempt === u.attempt
  const attemptText = u.attempt > 1 ? ` (attempt ${u.attempt})` : ""
  switch (u._tag) {
    case "Dispatched": {
      if (sameAttempt) return unchanged(t)
      const rows = setRow(t.rows, { player: u.player, attempt: u.attempt, phase: "dispatched" })
      return { tracker: { ...t, rows }, changed: true, line: `${prefix} ${u.player} dispatched${attemptText}` }
    }
    case "Started": {
      if (sameAttempt && current.phase !== "dispatched") return unchanged(t)
      const rows = setRow(t.rows, { player: u.player, attempt: u.attempt, phase: "running" })
      return { tracker: { ...t, rows }, changed: true, line: `${prefix} ${u.player} started${attemptText}` }
    }
    case "Finished": {
      const response = u.response === undefined || Object.keys(u.response).length === 0 ? undefined : u.response
      const row: Row = { player: u.player, attempt: u.attempt, phase: "finished", outcome: u.outcome, ...(response === undefined ? {} : { response }) }
      if (sameAttempt && current.phase === "finished") {
        if (current.response !== undefined || response === undefined) return unchanged(t)
        return { tracker: { ...t, rows: setRow(t.rows, { ...current, response }) }, changed: true }
      }
      const text = response === undefined ? "" : `  ${Output.response(response)}`
      return { tracker: { ...t, rows: setRow(t.rows, row) }, changed: true, line: `${prefix} ${u.player} ${u.outcome}${attemptText}${text}` }
    }
  }
}

/** Counts shown in the header. */
export const counts = (t: Tracker): { readonly dispatched: number; readonly running: number; readonly finished: number; readonly ok: number } => {
  let running = 0
  let finished = 0
  let ok = 0
  for (const r of t.rows) {
    if (r.phase === "running") running++
    if (r.phase === "finished") {
      finished++
      if (r.outcome === "OK") ok++
    }
  }
  return { dispatched: t.rows.length, running, finished, ok }
}

/** The block drawn on a terminal: a header, then one row per player. */
export const render = (t: Tracker): ReadonlyArray<string> => {
  const c = counts(t)
  const of = t.targets > 0 ? `/${t.targets}` : ""
  const header = `job ${t.id}${t.title.length > 0 ? ` ${t.title}` : ""}: ${t.state}  ` +
    `${c.dispatched}${of} dispatched, ${c.running} running, ${c.finished} done (${c.ok} OK)`
  if (t.rows.length === 0) return [header, "  (waiting for a player)"]
  const table = Output.table(
    ["  player", "task", "response"],
    t.rows.map((r) => [
      `  ${r.player}`,
      (r.phase === "finished" ? (r.outcome ?? "") : r.phase) + (r.attempt > 1 ? ` #${r.attempt}` : ""),
      r.response === undefined ? "" : Output.response(r.response)
    ])
  ).split("\n")
  // The header and the rows; the dashes under the column names are left out to save lines.
  return [header, table[0] ?? "", ...table.slice(2)]
}

/** Where progress goes: a terminal (redrawn in place) or a stream of lines. */
export interface Sink {
  readonly write: (text: string) => void
  readonly tty: boolean
  /** Width of the terminal; longer lines are cut so that redrawing stays in place. */
  readonly columns?: number
}

/** A live display: feed it updates; `finish` leaves the last state on screen. */
export interface Display {
  readonly update: (u: Update) => void
  readonly tracker: () => Tracker
  readonly finish: () => void
}

const cut = (line: string, columns: number | undefined) =>
  columns === undefined || columns <= 1 || line.length < columns ? line : `${line.slice(0, columns - 2)}…`

export const display = (initial: Tracker, sink: Sink): Display => {
  let t = initial
  let drawn = 0
  let finished = false
  const draw = () => {
    const lines = render(t).map((l) => cut(l, sink.columns))
    // Up to the first line of the previous block, clear to the end of the screen, draw again.
    const up = drawn > 0 ? `\x1b[${drawn}A\r\x1b[J` : ""
    sink.write(`${up}${lines.join("\n")}\n`)
    drawn = lines.length
  }
  if (sink.tty) draw()
  return {
    update: (u) => {
      if (finished) return
      const r = apply(t, u)
      t = r.tracker
      if (sink.tty) {
        if (r.changed) draw()
      } else if (r.line !== undefined) {
        sink.write(`${r.line}\n`)
      }
    },
    tracker: () => t,
    finish: () => {
      finished = true
    }
  }
}
