/**
 * `npm run bench [-- <name>... ] [--repeat N] [--jobs N] [--profile]`:
 * Orchestra's benchmarks, run on demand. Each benchmark starts what it
 * measures (a real conductor process, simulated or real players) in a
 * temporary directory, is bounded in count and time, and records its
 * result in `bench/results/<name>.json` and `bench/RESULTS.md`.
 *
 * Names: `capacity-memory`, `capacity-sqlite`, `capacity-sqlite-normal`,
 * `drain-memory`, `drain-sqlite`, `latency-memory`, `latency-sqlite`, `players`, `status`, `store-memory`,
 * `store-sqlite`; groups `capacity`, `drain`, `latency`, `store`, `all` (the
 * default). `--profile` writes CPU profiles of the daemons over each
 * measured window to `bench/out/profiles/<name>/` (summarize one with
 * `node bench/dist/ProfileSummary.js <file>`); profiled numbers are not
 * recorded.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import * as path from "node:path"
import * as Capacity from "./Capacity.js"
import * as Drain from "./Drain.js"
import * as Latency from "./Latency.js"
import * as Machine from "./Machine.js"
import * as RealPlayers from "./RealPlayers.js"
import * as Results from "./Results.js"
import type * as Setup from "./Setup.js"
import * as Stats from "./Stats.js"
import * as StatusPoll from "./StatusPoll.js"
import * as StoreBench from "./StoreBench.js"

interface Args {
  readonly names: ReadonlyArray<string>
  readonly repeat: number | undefined
  readonly jobs: number | undefined
  readonly profile: boolean
}

const parseArgs = (argv: ReadonlyArray<string>): Args => {
  const names: Array<string> = []
  let repeat: number | undefined
  let jobs: number | undefined
  let profile = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === "--repeat") repeat = Number(argv[++i])
    else if (a === "--jobs") jobs = Number(argv[++i])
    else if (a === "--profile") profile = true
    else if (a.startsWith("--")) throw new Error(`unknown option ${a}`)
    else names.push(a)
  }
  if (repeat !== undefined && !(Number.isInteger(repeat) && repeat >= 1 && repeat <= 20)) throw new Error("--repeat takes 1 to 20")
  if (jobs !== undefined && !(Number.isInteger(jobs) && jobs >= 1 && jobs <= 1_000_000)) throw new Error("--jobs takes 1 to 1000000")
  return { names, repeat, jobs, profile }
}

const fmt = (n: number | undefined, unit = ""): string => (n === undefined || Number.isNaN(n) ? "n/a" : `${n.toLocaleString("en-US")}${unit}`)
const cpuText = (cpu: Record<string, { readonly corePercent: number }>): string =>
  Object.entries(cpu).map(([k, v]) => `${k} ${v.corePercent}%`).join(", ")

interface Bench<P, R> {
  readonly name: string
  readonly title: string
  readonly repeats: number
  readonly params: (args: Args) => P
  readonly run: (params: P, profileDir: string | undefined) => Effect.Effect<R, unknown>
  /** Which number of a run the median is taken on. */
  readonly key: (r: R) => number
  readonly headline: (median: R, runs: ReadonlyArray<R>) => ReadonlyArray<{ readonly label: string; readonly value: string }>
  readonly notes?: ReadonlyArray<string>
}

const capacity = (store: Setup.StoreKind): Bench<Capacity.Options, Capacity.Run> => ({
  name: `capacity-${store}`,
  title: `Conductor capacity, ${store === "memory" ? "memory store" : store === "sqlite" ? "SQLite store (synchronous=FULL)" : "SQLite store (synchronous=NORMAL)"}`,
  repeats: 3,
  params: (args) => ({ store, jobs: args.jobs ?? 20_000, concurrency: 64, players: 4, slots: 128, warmup: 2000 }),
  run: (p, profileDir) => Capacity.run({ ...p, profileDir }),
  key: (r) => r.jobsPerSecond,
  headline: (m, runs) => [
    { label: "jobs/s, first submit → last result durable (median)", value: fmt(m.jobsPerSecond) },
    { label: "jobs/s of each run", value: runs.map((r) => fmt(r.jobsPerSecond)).join(", ") },
    { label: "submit rate (ids/s, 64 clients)", value: fmt(m.submitPerSecond) },
    { label: "seconds for all jobs / to every job OK in status", value: `${m.seconds} / ${fmt(m.secondsToAllFinished)}` },
    { label: "submit latency p50 / p99 (ms)", value: `${m.submitLatencyMs.p50} / ${m.submitLatencyMs.p99}` },
    { label: "CPU (share of one core)", value: cpuText(m.cpu) },
    { label: "conductor CPU per job (µs, user + system)", value: fmt(m.conductorCpuUsPerJob) },
    { label: "conductor peak RSS", value: fmt(m.conductorPeakRssMiB, " MiB") },
    { label: "assignments per Run message / per dispatch turn; results per ingest turn", value: `${fmt(m.assignmentsPerRun)} / ${fmt(m.engine.assignmentsPerDispatchTurn)}; ${fmt(m.engine.endsPerIngestTurn)}` },
    { label: "conductor event-loop utilization", value: `${m.engine.eventLoopUtilization}` },
    { label: "jobs not OK / submit errors", value: `${m.notOk} / ${m.errors}` },
    { label: "load average at the run's start", value: m.load.join(" / ") }
  ],
  notes: [
    "4 simulated players (in the bench process, real TLS sessions) with 128 slots each answer every Run at once with Started + Results OK.",
    "Jobs are one-of over the 4 players, submitted by 64 concurrent Unix-socket clients, one connection per request; 2,000 jobs warm the conductor up first.",
    "\"Result durable\" is the player receiving the Ack of the result: the conductor acknowledges only after its store committed it."
  ]
})

const drain = (store: Setup.StoreKind): Bench<Drain.Options, Drain.Run> => ({
  name: `drain-${store}`,
  title: `Dispatch capacity without submissions (a queue of jobs drained by 4 players), ${store === "memory" ? "memory store" : "SQLite store (synchronous=FULL)"}`,
  repeats: 3,
  params: (args) => ({ store, jobs: args.jobs ?? 20_000, players: 4, slots: 128, warmup: 2000 }),
  run: (p, profileDir) => Drain.run({ ...p, profileDir }),
  key: (r) => r.jobsPerSecond,
  headline: (m, runs) => [
    { label: "jobs/s, players connect → last result durable (median)", value: fmt(m.jobsPerSecond) },
    { label: "jobs/s of each run", value: runs.map((r) => fmt(r.jobsPerSecond)).join(", ") },
    { label: "seconds", value: `${m.seconds}` },
    { label: "CPU (share of one core)", value: cpuText(m.cpu) },
    { label: "conductor CPU per job (µs, user + system)", value: fmt(m.conductorCpuUsPerJob) },
    { label: "assignments per dispatch turn; results per ingest turn", value: `${fmt(m.engine.assignmentsPerDispatchTurn)}; ${fmt(m.engine.endsPerIngestTurn)}` },
    { label: "submit rate while no player was connected (ids/s)", value: fmt(m.submitPerSecond) },
    { label: "jobs not OK", value: `${m.notOk}` },
    { label: "load average at the run's start", value: m.load.join(" / ") }
  ],
  notes: [
    "The jobs are submitted (64 clients) while no player is connected, so they wait in the conductor's queue; then 4 simulated players (128 slots each) connect and the queue is drained. This is the engine, store and TLS path alone, without submissions competing for the event loop."
  ]
})

const latency = (store: Setup.StoreKind): Bench<Latency.Options, Latency.Run> => ({
  name: `latency-${store}`,
  title: `Submit → result latency at 500 jobs/s, ${store === "memory" ? "memory store" : "SQLite store (synchronous=FULL)"}`,
  repeats: 1,
  params: () => ({ store, rate: 500, seconds: 25, players: 4, slots: 128, warmup: 1000 }),
  run: (p, profileDir) => Latency.run({ ...p, profileDir }),
  key: (r) => r.latencyMs.p99,
  headline: (m) => [
    { label: "latency p50 / p99 / p99.9 / max (ms)", value: `${m.latencyMs.p50} / ${m.latencyMs.p99} / ${m.latencyMs.p999} / ${m.latencyMs.max}` },
    { label: "submit (request → id) p50 / p99 (ms)", value: `${m.submitMs.p50} / ${m.submitMs.p99}` },
    { label: "Run at the player → Ack p50 / p99 (ms)", value: `${m.runToAckMs.p50} / ${m.runToAckMs.p99}` },
    { label: "jobs / achieved rate (jobs/s)", value: `${fmt(m.jobs)} / ${fmt(m.achievedRate)}` },
    { label: "generator lag p99 (ms)", value: `${m.generatorLagMs.p99}` },
    { label: "conductor CPU per job (µs)", value: fmt(m.conductorCpuUsPerJob) },
    { label: "conductor event-loop utilization", value: `${m.engine.eventLoopUtilization}` },
    { label: "CPU (share of one core)", value: cpuText(m.cpu) },
    { label: "errors", value: `${m.errors}` },
    { label: "load average at the run's start", value: m.load.join(" / ") }
  ],
  notes: [
    "Open loop: request i is started at t0 + i × 2 ms whatever happened to earlier ones (no coordinated omission); 25 s, 12,500 jobs.",
    "Latency of a job = from starting its `queue` request (connect to the audience socket) to the player receiving the Ack of its result. The Ack is sent only after the store committed the result, so from that moment `status` shows it. Both ends are timed in the bench process, on one clock.",
    "4 simulated players with 128 slots, answering each Run at once."
  ]
})

const players: Bench<RealPlayers.Options, RealPlayers.Run> = {
  name: "players",
  title: "Real players running the noop score, against the raw spawn rate",
  repeats: 3,
  params: (args) => ({ jobs: args.jobs ?? 2000, players: 2, slots: 4, store: "sqlite" }),
  run: (p, profileDir) => RealPlayers.run({ ...p, profileDir }),
  key: (r) => r.tasksPerSecond,
  headline: (m, runs) => [
    { label: "tasks/s through conductor + players (median)", value: fmt(m.tasksPerSecond) },
    { label: "tasks/s of each run", value: runs.map((r) => fmt(r.tasksPerSecond)).join(", ") },
    { label: "raw spawn rate, same concurrency (spawns/s)", value: fmt(m.rawSpawnsPerSecond) },
    { label: "raw spawn rate of each run", value: runs.map((r) => fmt(r.rawSpawnsPerSecond)).join(", ") },
    { label: "tasks/s ÷ raw spawns/s", value: `${m.ratio}` },
    { label: "concurrency (players × slots)", value: `${m.concurrency}` },
    { label: "CPU (share of one core)", value: cpuText(m.cpu) },
    { label: "jobs not OK", value: `${m.notOk}` },
    { label: "load average at the run's start", value: m.load.join(" / ") }
  ],
  notes: [
    "2 real `orchestra player` processes with 4 slots each, the SQLite store; jobs are one-of over both players, submitted by 16 clients.",
    "The raw spawn rate is measured just before, in the same run: child_process.spawn of the same noop script, 8 at once, detached (own process group), stderr piped, waiting for each child's close."
  ]
}

const status: Bench<StatusPoll.Options, StatusPoll.Run> = {
  name: "status",
  title: "Status polling on the Unix socket",
  repeats: 3,
  params: () => ({ store: "sqlite", finished: 5000, concurrency: 32, requests: 200_000, maxSeconds: 10 }),
  run: (p, profileDir) => StatusPoll.run({ ...p, profileDir }),
  key: (r) => r.requestsPerSecond,
  headline: (m, runs) => [
    { label: "status requests/s (median)", value: fmt(m.requestsPerSecond) },
    { label: "requests/s of each run", value: runs.map((r) => fmt(r.requestsPerSecond)).join(", ") },
    { label: "latency p50 / p99 (ms)", value: `${m.latencyMs.p50} / ${m.latencyMs.p99}` },
    { label: "first request of each job (read from the store), requests/s", value: fmt(m.coldRequestsPerSecond) },
    { label: "requests", value: fmt(m.requests) },
    { label: "conductor CPU per request (µs)", value: fmt(m.conductorCpuUsPerRequest) },
    { label: "CPU (share of one core)", value: cpuText(m.cpu) },
    { label: "bad replies / errors", value: `${m.badReplies} / ${m.errors}` },
    { label: "load average at the run's start", value: m.load.join(" / ") }
  ],
  notes: [
    "A conductor with the SQLite store holding 5,000 finished jobs; 32 concurrent clients, one connection per request, each `{\"op\":\"status\",\"id\":N}` over all ids; at most 10 s per run.",
    "The headline rate is steady polling; the \"first request\" rate is one pass over all jobs asked for the first time, read from the store (the conductor keeps the replies of finished jobs it no longer holds)."
  ]
}

const store = (kind: "memory" | "sqlite"): Bench<StoreBench.Options, StoreBench.Run> => ({
  name: `store-${kind}`,
  title: `Store alone (in process), ${kind}`,
  repeats: 3,
  params: (args) => ({ kind, jobs: args.jobs ?? 20_000, wave: 1000 }),
  run: (p) => StoreBench.run(p),
  key: (r) => r.jobsPerSecond,
  headline: (m, runs) => [
    { label: "jobs/s (create, dispatch, end, finish each; median)", value: fmt(m.jobsPerSecond) },
    { label: "jobs/s of each run", value: runs.map((r) => fmt(r.jobsPerSecond)).join(", ") },
    { label: "seconds", value: `${m.seconds}` },
    { label: "load average at the run's start", value: m.load.join(" / ") }
  ],
  notes: ["Waves of 1,000 jobs: their creates at once, then their dispatches at once (one `recordDispatches` batch), their ends (one `recordEnds` batch), their finishes — as the conductor's loops issue them."]
})

const all: ReadonlyArray<Bench<any, any>> = [
  capacity("memory"),
  capacity("sqlite"),
  capacity("sqlite-normal"),
  drain("memory"),
  drain("sqlite"),
  latency("memory"),
  latency("sqlite"),
  players,
  status,
  store("memory"),
  store("sqlite")
]

const groups: Record<string, ReadonlyArray<string>> = {
  all: all.map((b) => b.name),
  capacity: ["capacity-memory", "capacity-sqlite", "capacity-sqlite-normal"],
  drain: ["drain-memory", "drain-sqlite"],
  latency: ["latency-memory", "latency-sqlite"],
  store: ["store-memory", "store-sqlite"]
}

const HEADER = `# Orchestra benchmark results

Generated by \`npm run bench\` (see bench/src/main.ts). Each section is the latest result of one benchmark.
`

const main = async () => {
  const args = parseArgs(process.argv.slice(2))
  const wanted = (args.names.length === 0 ? ["all"] : args.names).flatMap((n) => groups[n] ?? [n])
  const benches = wanted.map((n) => {
    const b = all.find((x) => x.name === n)
    if (b === undefined) throw new Error(`unknown benchmark ${n} (known: ${[...Object.keys(groups), ...all.map((x) => x.name)].join(", ")})`)
    return b
  })
  const machine = Machine.describe()
  process.stderr.write(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}\n`)
  for (const b of benches) {
    const params = b.params(args)
    const repeats = args.repeat ?? b.repeats
    const loadAtStart = Machine.loadAverage()
    const date = new Date().toISOString()
    const runs: Array<unknown> = []
    process.stderr.write(`\n== ${b.name}: ${b.title}\n   load ${loadAtStart.join(" / ")}; params ${JSON.stringify(params)}\n`)
    for (let i = 0; i < repeats; i++) {
      const profileDir = args.profile ? path.join(Results.benchDir, "out", "profiles", b.name) : undefined
      const r = await Effect.runPromise(b.run(params, profileDir))
      runs.push(r)
      process.stderr.write(`   run ${i + 1}/${repeats}: ${JSON.stringify(r)}\n`)
    }
    const m = Stats.medianRun(runs, b.key)
    const recorded: Results.Recorded = {
      name: b.name,
      title: b.title,
      date,
      machine,
      loadAtStart,
      command: `npm run bench -- ${b.name}${args.repeat === undefined ? "" : ` --repeat ${args.repeat}`}${args.jobs === undefined ? "" : ` --jobs ${args.jobs}`}`,
      parameters: params as Record<string, unknown>,
      repeats,
      headline: b.headline(m, runs),
      runs,
      median: m,
      ...(b.notes === undefined ? {} : { notes: b.notes })
    }
    for (const h of recorded.headline) process.stderr.write(`   ${h.label}: ${h.value}\n`)
    if (args.profile) {
      process.stderr.write("   (profiled: the numbers are slower than an unprofiled run and are not recorded)\n")
      continue
    }
    Results.save(recorded)
    Results.render(all.map((x) => x.name), HEADER)
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`)
    process.exit(1)
  }
)
