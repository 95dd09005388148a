/**
 * The conductor's metrics in the Prometheus text exposition format
 * (`GET /metrics`): counters fed by the event log (jobs submitted and
 * finished by state, task outcomes, the dispatch-latency histogram) and
 * gauges read from the engine when scraped (jobs pending, tasks queued and
 * running, players connected, slots). Counters start at zero when the
 * conductor starts, as Prometheus expects.
 *
 * Dispatch latency is the time from a job's submission to the dispatch of
 * each of its tasks' first attempt (recorded in the store): how long work
 * waits for a player.
 *
 * @since 0.1.0
 */
import { JobState, Outcome } from "@orchestra/core"
import type { EngineStats } from "./Engine.js"
import type { Event, EventLog } from "./Events.js"
import type { PlayerInfo } from "./PlayerRegistry.js"

/** Upper bounds (seconds) of the dispatch-latency histogram's buckets. */
export const LATENCY_BUCKETS: ReadonlyArray<number> = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]

/** The most jobs whose submission time is remembered for the histogram. */
const MAX_TRACKED = 1_000_000

/** A cumulative histogram. */
class Histogram {
  readonly counts: Array<number>
  count = 0
  sum = 0
  constructor(readonly bounds: ReadonlyArray<number>) {
    this.counts = bounds.map(() => 0)
  }
  observe(v: number): void {
    this.count++
    this.sum += v
    for (let i = 0; i < this.bounds.length; i++) if (v <= this.bounds[i]!) this.counts[i]!++
  }
}

const fmt = (n: number): string => (Number.isFinite(n) ? String(n) : n > 0 ? "+Inf" : n < 0 ? "-Inf" : "NaN")
const label = (v: string): string => v.replace(/\\/g, "\\\\").replace(/"/g, "\\\"").replace(/\n/g, "\\n")

export class Metrics {
  jobsSubmitted = 0
  readonly jobsFinished = new Map<string, number>(JobState.FinishedJobState.literals.map((s) => [s, 0]))
  readonly tasksFinished = new Map<string, number>(Outcome.all.map((o) => [o, 0]))
  tasksDispatched = 0
  playerConnections = 0
  readonly latency = new Histogram(LATENCY_BUCKETS)
  private readonly submittedAt = new Map<number, number>()

  constructor(readonly startedAt: number = Date.now()) {}

  /** Count one event. */
  readonly observe = (e: Event): void => {
    switch (e.type) {
      case "job.submitted":
        this.jobsSubmitted++
        if (this.submittedAt.size >= MAX_TRACKED) this.submittedAt.clear()
        this.submittedAt.set(e.job, e.at)
        break
      case "job.finished":
        this.jobsFinished.set(e.state, (this.jobsFinished.get(e.state) ?? 0) + 1)
        this.submittedAt.delete(e.job)
        break
      case "task.dispatched": {
        this.tasksDispatched++
        const t = this.submittedAt.get(e.job)
        if (e.attempt === 1 && t !== undefined) this.latency.observe(Math.max(0, e.at - t) / 1000)
        break
      }
      case "task.finished":
        this.tasksFinished.set(e.outcome, (this.tasksFinished.get(e.outcome) ?? 0) + 1)
        break
      case "player.connected":
        this.playerConnections++
        break
      default:
        break
    }
  }

  /** Count every event of `log` from now on; returns how to stop. */
  attach(log: EventLog): () => void {
    return log.observe(this.observe)
  }

  /** The text exposition of everything, with the engine's gauges as of now. */
  render(input: {
    readonly stats: EngineStats
    readonly players: ReadonlyArray<PlayerInfo>
    readonly events?: EventLog
    readonly subscribers?: number
  }): string {
    const out: Array<string> = []
    const metric = (name: string, type: "counter" | "gauge" | "histogram", help: string, samples: ReadonlyArray<readonly [string, number]>) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
      for (const [labels, v] of samples) out.push(`${name}${labels} ${fmt(v)}`)
    }
    const { stats, players } = input
    metric("orchestra_jobs_submitted_total", "counter", "Jobs submitted (new jobs; idempotent resubmissions not counted).", [["", this.jobsSubmitted]])
    metric(
      "orchestra_jobs_finished_total",
      "counter",
      "Jobs finished, by final state.",
      [...this.jobsFinished].map(([s, n]) => [`{state="${label(s)}"}`, n] as const)
    )
    metric(
      "orchestra_jobs",
      "gauge",
      "Jobs the conductor is running, by state (PENDING: not finished).",
      [[`{state="PENDING"}`, stats.unfinishedJobs]]
    )
    metric("orchestra_tasks_queued", "gauge", "Tasks waiting in the dispatch queue for a player.", [["", stats.queued]])
    metric("orchestra_tasks_running", "gauge", "Attempts dispatched and not ended.", [["", stats.openAttempts]])
    metric("orchestra_tasks_dispatched_total", "counter", "Attempts dispatched to players (recorded).", [["", this.tasksDispatched]])
    metric(
      "orchestra_tasks_finished_total",
      "counter",
      "Attempts ended, by outcome.",
      [...this.tasksFinished].map(([o, n]) => [`{outcome="${label(o)}"}`, n] as const)
    )
    out.push(
      "# HELP orchestra_dispatch_latency_seconds Time from a job's submission to the dispatch of each task's first attempt.",
      "# TYPE orchestra_dispatch_latency_seconds histogram"
    )
    this.latency.bounds.forEach((b, i) => out.push(`orchestra_dispatch_latency_seconds_bucket{le="${b}"} ${this.latency.counts[i]}`))
    out.push(
      `orchestra_dispatch_latency_seconds_bucket{le="+Inf"} ${this.latency.count}`,
      `orchestra_dispatch_latency_seconds_sum ${fmt(this.latency.sum)}`,
      `orchestra_dispatch_latency_seconds_count ${this.latency.count}`
    )
    const online = players.filter((p) => p.online)
    metric("orchestra_players_connected", "gauge", "Players with a live session.", [["", online.length]])
    metric("orchestra_players_allowlisted", "gauge", "Players on the allowlist.", [["", players.filter((p) => p.allowlisted).length]])
    metric("orchestra_player_connections_total", "counter", "Player sessions started.", [["", this.playerConnections]])
    metric("orchestra_player_slots", "gauge", "Slots of the connected players.", [["", online.reduce((n, p) => n + p.slots, 0)]])
    metric("orchestra_player_slots_used", "gauge", "Slots of the connected players running an attempt.", [["", online.reduce((n, p) => n + Math.min(p.slots, p.running), 0)]])
    if (input.events !== undefined) {
      metric("orchestra_events_total", "counter", "Audience events published.", [["", input.events.last]])
    }
    if (input.subscribers !== undefined) {
      metric("orchestra_event_streams", "gauge", "Open event streams (SSE and socket).", [["", input.subscribers]])
    }
    metric("orchestra_start_time_seconds", "gauge", "When the conductor started (seconds since the epoch).", [["", this.startedAt / 1000]])
    return `${out.join("\n")}\n`
  }
}
