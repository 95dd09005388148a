/**
 * A seeded, pure simulator of one job under a scheduler policy: simulated
 * players (with slots, latency, outcomes and churn — going offline and
 * coming back) and a simulated conductor that drives the policy through
 * {@link PolicyRun} exactly as the real one does: start, queue each `Run`
 * (at the head when `front`), dispatch to an eligible online player with a
 * free slot, feed each ended attempt back, apply `Cancel`s, stop when the
 * job finishes.
 *
 * No clock, no I/O, no test framework: the same seed gives the same run, so
 * the policy conformance suite, `orchestra simulate` and benchmarks can all
 * use it. Time is simulated milliseconds.
 *
 * @since 0.1.0
 */
import type * as JobState from "./JobState.js"
import type { Labels } from "./Job.js"
import * as Names from "./Names.js"
import * as Outcome from "./Outcome.js"
import type * as Policy from "./Policy.js"
import * as PolicyRun from "./PolicyRun.js"

type PlayerName = Names.PlayerName
type TaskKey = Names.TaskKey
type OutcomeT = Outcome.Outcome

// ---- random numbers -------------------------------------------------------

/** A deterministic source of random numbers. */
export interface Rng {
  /** The seed this generator started from. */
  readonly seed: number
  /** A number in [0, 1). */
  readonly next: () => number
  /** An integer in [min, max], both included. */
  readonly int: (min: number, max: number) => number
  /** True with probability `p` (default 0.5). */
  readonly bool: (p?: number) => boolean
  /** One element of a non-empty array. */
  readonly pick: <A>(xs: ReadonlyArray<A>) => A
  /** An exponentially distributed number with this mean. */
  readonly exponential: (mean: number) => number
  /** A new 32-bit seed drawn from this generator (for an independent stream). */
  readonly nextSeed: () => number
}

/** Mix a 32-bit value into a well-spread 32-bit value (a splitmix32-style finalizer). */
export const hash32 = (x: number): number => {
  let t = x | 0
  t = Math.imul(t ^ (t >>> 16), 0x21f0aaad)
  t = Math.imul(t ^ (t >>> 15), 0x735a2d97)
  return (t ^ (t >>> 15)) >>> 0
}

/** The seed of the `index`-th run derived from a base seed: reproducible one run at a time. */
export const deriveSeed = (base: number, index: number): number => hash32((base >>> 0) ^ hash32(index + 0x9e3779b9))

/** A generator over 32-bit state stepped by the golden-ratio increment, each output mixed by {@link hash32}. */
export const makeRng = (seed: number): Rng => {
  let state = seed >>> 0
  const u32 = (): number => {
    state = (state + 0x9e3779b9) >>> 0
    return hash32(state)
  }
  const next = (): number => u32() / 4294967296
  return {
    seed: seed >>> 0,
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    bool: (p = 0.5) => next() < p,
    pick: <A>(xs: ReadonlyArray<A>): A => {
      if (xs.length === 0) throw new RangeError("pick from an empty array")
      return xs[Math.floor(next() * xs.length)] as A
    },
    exponential: (mean) => -Math.log(1 - next()) * mean,
    nextSeed: u32
  }
}

// ---- models of the simulated players --------------------------------------

/** One attempt of one task on one player, as the models see it. */
export interface AttemptContext {
  readonly key: TaskKey
  readonly player: PlayerName
  readonly attempt: number
  /** How many attempts (of any task) this player has been given in this job, this one included. */
  readonly playerAttempt: number
  /** Simulated time of the dispatch. */
  readonly at: number
}

/** How an attempt ends. */
export type OutcomeModel = (rng: Rng, attempt: AttemptContext) => OutcomeT
/** How long an attempt runs, in milliseconds. */
export type LatencyModel = (rng: Rng, attempt: AttemptContext) => number

/** Every attempt ends with this outcome. */
export const always = (outcome: OutcomeT): OutcomeModel => () => outcome

/** Outcomes drawn with these relative weights (missing outcomes have weight 0). */
export const weighted = (weights: Partial<Record<OutcomeT, number>>): OutcomeModel => {
  const entries = Outcome.all
    .map((o) => [o, Math.max(0, weights[o] ?? 0)] as const)
    .filter(([, w]) => w > 0 && Number.isFinite(w))
  const total = entries.reduce((s, [, w]) => s + w, 0)
  if (entries.length === 0 || total <= 0) throw new RangeError("weighted outcomes need at least one positive weight")
  return (rng) => {
    let r = rng.next() * total
    for (const [o, w] of entries) {
      r -= w
      if (r < 0) return o
    }
    return entries[entries.length - 1]![0]
  }
}

/**
 * Outcomes by player: a fixed outcome, or one per successive attempt on that
 * player (the last one repeats). Players not listed use `otherwise`.
 */
export const byPlayer = (
  table: Readonly<Record<string, OutcomeT | ReadonlyArray<OutcomeT>>>,
  otherwise: OutcomeModel = always("OK")
): OutcomeModel => {
  return (rng, attempt) => {
    const entry = table[attempt.player]
    if (entry === undefined) return otherwise(rng, attempt)
    if (typeof entry === "string") return entry
    const list = entry as ReadonlyArray<OutcomeT>
    return list[Math.min(attempt.playerAttempt - 1, list.length - 1)] ?? otherwise(rng, attempt)
  }
}

/** Every attempt takes this long. */
export const fixedLatency = (ms: number): LatencyModel => () => ms

/** Latency uniform in [min, max]. */
export const uniformLatency = (min: number, max: number): LatencyModel => (rng) => min + rng.next() * (max - min)

/** Latency `min` plus an exponential tail of this mean. */
export const exponentialLatency = (mean: number, min = 0): LatencyModel => (rng) => min + rng.exponential(mean)

/**
 * Players going offline and coming back. An offline player is not given
 * new tasks; what it runs keeps running and its result reaches the
 * conductor when it is back online.
 */
export interface Churn {
  /** Probability that a player is offline when the job starts. */
  readonly offlineAtStart: number
  /** Mean time a player stays online (exponential). */
  readonly meanOnlineMs: number
  /** Mean time a player stays offline (exponential, capped by `maxOfflineMs`). */
  readonly meanOfflineMs: number
  /** Longest time a player stays offline, so every job can end. */
  readonly maxOfflineMs: number
}

// ---- the simulation -------------------------------------------------------

/** What happened, in order; kept when `trace` is set. */
export type TraceEvent =
  | { readonly _tag: "Run"; readonly at: number; readonly key: TaskKey; readonly players: ReadonlyArray<PlayerName>; readonly front: boolean }
  | { readonly _tag: "Cancel"; readonly at: number; readonly key: TaskKey }
  | { readonly _tag: "Dispatch"; readonly at: number; readonly key: TaskKey; readonly attempt: number; readonly player: PlayerName }
  | {
    readonly _tag: "Ended"
    readonly at: number
    readonly key: TaskKey
    readonly attempt: number
    readonly player: PlayerName
    readonly outcome: OutcomeT
    /** False for a task cancelled while still queued (it never reached a player). */
    readonly dispatched: boolean
  }
  | { readonly _tag: "Online" | "Offline"; readonly at: number; readonly player: PlayerName }
  | { readonly _tag: "Finished"; readonly at: number; readonly state: JobState.FinishedJobState; readonly reason?: string }

export interface SimulationConfig {
  readonly seed: number
  /** The job's targets as submitted (duplicates allowed), or a number of players named `p1`..`pN`. */
  readonly players: ReadonlyArray<string> | number
  /** The job's `policy.options`, as submitted (decoded by the policy). */
  readonly options?: unknown
  /** Default: every attempt `OK`. */
  readonly outcome?: OutcomeModel
  /** Default: uniform in [1, 100] ms. */
  readonly latency?: LatencyModel
  /** Default: no churn, everyone online throughout. */
  readonly churn?: Churn
  /** Tasks a player runs at once. Default 1. */
  readonly slots?: number
  /** Which eligible player takes a task: the first in the task's preference order, or any. Default `"first"`. */
  readonly pick?: "first" | "random"
  /** Stop after this many simulated events (outcomes fed to the policy, completions, churn). Default 1,000,000. */
  readonly maxEvents?: number
  /** Keep the trace. Default false. */
  readonly trace?: boolean
  /** Simulated epoch milliseconds at the start. Default 0. */
  readonly startAt?: number
  /** Other policies by name, for policies that compose others (`stages`). */
  readonly policies?: Policy.PolicyLookup
  /** Labels of the targets, by player name (for policies that select players by label). */
  readonly labels?: Readonly<Record<string, Labels>>
  readonly job?: Names.JobId
  readonly score?: Names.ScoreName
}

export interface SimulationResult {
  readonly seed: number
  /** The distinct targets, in the order submitted. */
  readonly targets: ReadonlyArray<PlayerName>
  /** `finished`, or why the simulation stopped without the job finishing. */
  readonly status: "finished" | "event-limit" | "stalled"
  readonly finished?: Policy.Finished
  /** Simulated milliseconds from the start to the finish (or to where it stopped). */
  readonly durationMs: number
  /** Ended attempts fed to the policy. */
  readonly steps: number
  /** Attempts handed to players. */
  readonly dispatches: number
  /** The most tasks live at once. */
  readonly maxLive: number
  /** Outcomes of the ended attempts fed to the policy. */
  readonly outcomes: Readonly<Record<OutcomeT, number>>
  readonly trace: ReadonlyArray<TraceEvent>
}

interface SimTask {
  readonly key: TaskKey
  readonly players: ReadonlyArray<PlayerName>
  readonly seq: number
  phase: "queued" | "running" | "gone"
  attempt: number
  player?: SimPlayer
}

interface SimPlayer {
  readonly name: PlayerName
  online: boolean
  free: number
  given: number
  readonly queued: Set<SimTask>
  readonly outbox: Array<Delivery>
}

interface Delivery {
  readonly key: TaskKey
  readonly player: PlayerName
  readonly attempt: number
  readonly outcome: OutcomeT
  readonly dispatched: boolean
}

type SimEvent =
  | { readonly _tag: "Done"; readonly task: SimTask; readonly attempt: number; readonly outcome: OutcomeT }
  | { readonly _tag: "Toggle"; readonly player: SimPlayer }

const emptyCounts = (): Record<OutcomeT, number> => {
  const out = {} as Record<OutcomeT, number>
  for (const o of Outcome.all) out[o] = 0
  return out
}

/** Names already checked, so thousands of simulations do not check the same names again. */
const checkedNames = new Map<string, PlayerName>()
const playerName = (s: string): PlayerName => {
  let name = checkedNames.get(s)
  if (name === undefined) {
    name = Names.playerName(s)
    if (checkedNames.size < 100_000) checkedNames.set(s, name)
  }
  return name
}

const targetsOf = (players: ReadonlyArray<string> | number): ReadonlyArray<PlayerName> => {
  if (typeof players === "number") return Array.from({ length: players }, (_, i) => playerName(`p${i + 1}`))
  return players.map(playerName)
}

const labelsOf = (labels: Readonly<Record<string, Labels>> | undefined): ReadonlyMap<PlayerName, Labels> => {
  const out = new Map<PlayerName, Labels>()
  if (labels !== undefined) for (const [name, l] of Object.entries(labels)) out.set(playerName(name), l)
  return out
}

const defaultJob = Names.jobId(1)
const defaultScore = Names.scoreName("simulated")

const distinct = <A>(xs: ReadonlyArray<A>): ReadonlyArray<A> => [...new Set(xs)]

/** Simulate one job of `plugin` to its end. */
export const simulate = (plugin: Policy.PolicyPlugin, config: SimulationConfig): SimulationResult => {
  const rng = makeRng(config.seed)
  const startAt = config.startAt ?? 0
  const requested = targetsOf(config.players)
  const targets = distinct(requested)
  const outcomeModel = config.outcome ?? always("OK")
  const latencyModel = config.latency ?? uniformLatency(1, 100)
  const slots = Math.max(1, Math.floor(config.slots ?? 1))
  const pick = config.pick ?? "first"
  const maxEvents = config.maxEvents ?? 1_000_000
  const churn = config.churn
  const trace: Array<TraceEvent> = []
  const record = config.trace === true ? (e: TraceEvent) => void trace.push(e) : () => undefined

  const heap = new EventHeap<SimEvent>()
  const deliveries: Array<Delivery> = []
  let deliveryHead = 0
  const tasks = new Map<TaskKey, SimTask>()
  const attempts = new Map<TaskKey, number>()
  let frontSeq = 0
  let backSeq = 0
  let now = startAt
  let steps = 0
  let dispatches = 0
  let maxLive = 0
  const outcomes = emptyCounts()

  const players = new Map<PlayerName, SimPlayer>()
  for (const name of targets) {
    const online = churn === undefined ? true : !rng.bool(churn.offlineAtStart)
    const p: SimPlayer = { name, online, free: slots, given: 0, queued: new Set(), outbox: [] }
    players.set(name, p)
    if (churn !== undefined) heap.push(now + stay(rng, churn, online), { _tag: "Toggle", player: p })
  }

  const start = PolicyRun.PolicyRun.start(plugin, config.options, {
    job: config.job ?? defaultJob,
    score: config.score ?? defaultScore,
    players: requested,
    now,
    labels: labelsOf(config.labels),
    policies: config.policies ?? (() => undefined)
  })
  const run = start.run

  const available = (p: SimPlayer | undefined): p is SimPlayer => p !== undefined && p.online && p.free > 0

  const dispatchTo = (task: SimTask, player: SimPlayer) => {
    for (const name of task.players) players.get(name)?.queued.delete(task)
    const attempt = (attempts.get(task.key) ?? 0) + 1
    attempts.set(task.key, attempt)
    task.phase = "running"
    task.attempt = attempt
    task.player = player
    player.free--
    player.given++
    dispatches++
    record({ _tag: "Dispatch", at: now, key: task.key, attempt, player: player.name })
    const context: AttemptContext = { key: task.key, player: player.name, attempt, playerAttempt: player.given, at: now }
    const outcome = outcomeModel(rng, context)
    const latency = latencyModel(rng, context)
    heap.push(now + (Number.isFinite(latency) && latency > 0 ? latency : 0), { _tag: "Done", task, attempt, outcome })
  }

  // Dispatch happens in rounds, after the policy has seen every outcome
  // that arrived (as the conductor records a result, asks the policy, then
  // dispatches). Between rounds, no queued task has an available player;
  // so a round need only look at new tasks and at the tasks of players that
  // became available, in queue order.
  const fresh: Array<SimTask> = []
  const touched = new Set<SimPlayer>()
  const round = () => {
    const candidates = new Set<SimTask>(fresh)
    for (const p of touched) if (available(p)) for (const t of p.queued) candidates.add(t)
    fresh.length = 0
    touched.clear()
    if (candidates.size === 0) return
    const ordered = candidates.size === 1 ? candidates : [...candidates].sort((a, b) => a.seq - b.seq)
    for (const task of ordered) {
      if (task.phase !== "queued") continue
      if (pick === "first") {
        const first = task.players.find((n) => available(players.get(n)))
        if (first !== undefined) dispatchTo(task, players.get(first)!)
      } else {
        const eligible = task.players.map((n) => players.get(n)).filter(available)
        if (eligible.length > 0) dispatchTo(task, rng.pick(eligible))
      }
    }
  }

  const report = (player: SimPlayer, d: Delivery) => {
    if (player.online) deliveries.push(d)
    else player.outbox.push(d)
  }

  const queue = (key: TaskKey, offered: ReadonlyArray<PlayerName>, front: boolean) => {
    const task: SimTask = { key, players: offered, seq: front ? --frontSeq : ++backSeq, phase: "queued", attempt: 0 }
    tasks.set(key, task)
    for (const n of offered) players.get(n)?.queued.add(task)
    fresh.push(task)
  }

  const cancel = (key: TaskKey) => {
    const task = tasks.get(key)
    if (task === undefined || task.phase === "gone") return
    if (task.phase === "queued") {
      for (const n of task.players) players.get(n)?.queued.delete(task)
      task.phase = "gone"
      tasks.delete(key)
      deliveries.push({
        key,
        player: task.players[0]!,
        attempt: (attempts.get(key) ?? 0) + 1,
        outcome: "CANCELLED",
        dispatched: false
      })
      return
    }
    // Running: the player stops it and reports CANCELLED (when it is next online).
    const player = task.player!
    task.phase = "gone"
    tasks.delete(key)
    player.free++
    report(player, { key, player: player.name, attempt: task.attempt, outcome: "CANCELLED", dispatched: true })
    touched.add(player)
  }

  const applyStep = (step: PolicyRun.Step) => {
    for (const action of step.actions) {
      if (action._tag === "Run") {
        record({ _tag: "Run", at: now, key: action.key, players: action.players, front: action.front === true })
        queue(action.key, action.players, action.front === true)
      } else {
        record({ _tag: "Cancel", at: now, key: action.key })
        cancel(action.key)
      }
    }
    maxLive = Math.max(maxLive, run.live.size)
    if (step.finished !== undefined) {
      record(
        step.finished.reason === undefined
          ? { _tag: "Finished", at: now, state: step.finished.state }
          : { _tag: "Finished", at: now, state: step.finished.state, reason: step.finished.reason }
      )
    }
  }

  applyStep(start.step)
  let status: SimulationResult["status"] = "finished"
  let events = 0
  while (run.finished === undefined) {
    if (++events > maxEvents) {
      status = "event-limit"
      break
    }
    if (deliveryHead < deliveries.length) {
      const d = deliveries[deliveryHead++]!
      steps++
      outcomes[d.outcome]++
      record({ _tag: "Ended", at: now, ...d })
      applyStep(run.taskEnded({ key: d.key, player: d.player, attempt: d.attempt, outcome: d.outcome, response: {} }, now))
      continue
    }
    if (fresh.length > 0 || touched.size > 0) {
      round()
      continue
    }
    const next = heap.pop()
    if (next === undefined) {
      status = "stalled"
      break
    }
    now = next.at
    const ev = next.value
    if (ev._tag === "Done") {
      const task = ev.task
      if (task.phase !== "running" || task.attempt !== ev.attempt) continue // cancelled meanwhile
      task.phase = "gone"
      if (tasks.get(task.key) === task) tasks.delete(task.key)
      const player = task.player!
      player.free++
      report(player, { key: task.key, player: player.name, attempt: ev.attempt, outcome: ev.outcome, dispatched: true })
      touched.add(player)
    } else {
      const player = ev.player
      player.online = !player.online
      record({ _tag: player.online ? "Online" : "Offline", at: now, player: player.name })
      if (player.online) {
        for (const d of player.outbox) deliveries.push(d)
        player.outbox.length = 0
        touched.add(player)
      }
      heap.push(now + stay(rng, churn!, player.online), { _tag: "Toggle", player })
    }
  }

  const finished = run.finished
  return {
    seed: config.seed,
    targets,
    status,
    ...(finished === undefined ? {} : { finished }),
    durationMs: now - startAt,
    steps,
    dispatches,
    maxLive,
    outcomes,
    trace
  }
}

const stay = (rng: Rng, churn: Churn, online: boolean): number =>
  online
    ? Math.max(1, rng.exponential(churn.meanOnlineMs))
    : Math.max(1, Math.min(churn.maxOfflineMs, rng.exponential(churn.meanOfflineMs)))

/** Several simulated jobs, summed up. */
export interface Summary {
  readonly runs: number
  /** Jobs by finished state; `unfinished` counts simulations that stopped early. */
  readonly states: Readonly<Record<JobState.FinishedJobState | "unfinished", number>>
  readonly outcomes: Readonly<Record<OutcomeT, number>>
  readonly steps: number
  readonly dispatches: number
  /** Simulated completion times, in ms. */
  readonly durationMs: { readonly min: number; readonly mean: number; readonly p50: number; readonly p95: number; readonly max: number }
}

/** Sum up simulation results. */
export const summarize = (results: ReadonlyArray<SimulationResult>): Summary => {
  const states: Record<JobState.FinishedJobState | "unfinished", number> = {
    OK: 0,
    PARTIAL_FAIL: 0,
    FAIL: 0,
    CANCELLED: 0,
    unfinished: 0
  }
  const outcomes = emptyCounts()
  let steps = 0
  let dispatches = 0
  const durations: Array<number> = []
  for (const r of results) {
    states[r.finished?.state ?? "unfinished"]++
    for (const o of Outcome.all) outcomes[o] += r.outcomes[o]
    steps += r.steps
    dispatches += r.dispatches
    durations.push(r.durationMs)
  }
  durations.sort((a, b) => a - b)
  const at = (q: number) => durations.length === 0 ? 0 : durations[Math.min(durations.length - 1, Math.floor(q * durations.length))]!
  const mean = durations.length === 0 ? 0 : durations.reduce((s, d) => s + d, 0) / durations.length
  return {
    runs: results.length,
    states,
    outcomes,
    steps,
    dispatches,
    durationMs: { min: at(0), mean, p50: at(0.5), p95: at(0.95), max: durations.length === 0 ? 0 : durations[durations.length - 1]! }
  }
}

/** Simulate `runs` jobs with the same config, each with its own seed derived from `config.seed`. */
export const simulateMany = (plugin: Policy.PolicyPlugin, config: SimulationConfig, runs: number): Summary => {
  const results: Array<SimulationResult> = []
  for (let i = 0; i < runs; i++) results.push(simulate(plugin, { ...config, seed: deriveSeed(config.seed, i), trace: false }))
  return summarize(results)
}

// ---- a binary min-heap of timed events, ties broken by insertion order ------

class EventHeap<A> {
  private readonly items: Array<{ readonly at: number; readonly seq: number; readonly value: A }> = []
  private seq = 0

  push(at: number, value: A): void {
    const items = this.items
    items.push({ at, seq: this.seq++, value })
    let i = items.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.less(i, parent)) break
      this.swap(i, parent)
      i = parent
    }
  }

  pop(): { readonly at: number; readonly value: A } | undefined {
    const items = this.items
    const top = items[0]
    if (top === undefined) return undefined
    const last = items.pop()!
    if (items.length > 0) {
      items[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < items.length && this.less(l, m)) m = l
        if (r < items.length && this.less(r, m)) m = r
        if (m === i) break
        this.swap(i, m)
        i = m
      }
    }
    return top
  }

  private less(a: number, b: number): boolean {
    const x = this.items[a]!
    const y = this.items[b]!
    return x.at < y.at || (x.at === y.at && x.seq < y.seq)
  }

  private swap(a: number, b: number): void {
    const t = this.items[a]!
    this.items[a] = this.items[b]!
    this.items[b] = t
  }
}
