/**
 * The policy conformance suite: every policy plugin — built-in, sample or a
 * user's own — calls {@link policySuite} from its tests. It checks the plugin
 * shape and options, then simulates thousands of jobs (seeded, reproducible)
 * through {@link PolicyRun}, as the conductor drives them: random target
 * lists with duplicates, a random outcome for every attempt, random latency
 * (so random completion order), random player churn and random dispatch
 * choices, and checks invariants on every job.
 *
 * The seed is fixed unless `ORCHESTRA_POLICY_SEED` is set (a number, or
 * `random`); a failure names the seed and job, and
 * `ORCHESTRA_POLICY_SEED=<seed> ORCHESTRA_POLICY_JOB=<n>` replays just that job.
 *
 * @since 0.1.0
 */
import { describe, expect, it } from "@effect/vitest"
import type { Policy } from "@orchestra/core"
import { JobState, Names, Outcome, PolicyRun } from "@orchestra/core"
import type { Churn, OutcomeModel, Rng, SimulationResult, TraceEvent } from "./Simulation.js"
import { deriveSeed, makeRng, simulate, uniformLatency } from "./Simulation.js"

/** One simulated job, as handed to a policy's own invariants. */
export interface SimulatedJob {
  /** Index of the job in this suite run. */
  readonly index: number
  /** Seed of this job (derived from the suite's seed and the index). */
  readonly seed: number
  /** Targets as submitted, duplicates included. */
  readonly requested: ReadonlyArray<Names.PlayerName>
  /** Distinct targets, in the order submitted. */
  readonly targets: ReadonlyArray<Names.PlayerName>
  /** The `policy.options` the job was submitted with. */
  readonly options: unknown
  /** Whether players could go offline and come back during this job (churn on). */
  readonly churn: boolean
  /** How the simulated conductor chose among eligible players. */
  readonly pick: "first" | "random"
  readonly result: SimulationResult
}

export interface PolicySuiteOptions {
  /** Valid `policy.options` for a job with these targets, drawn at random. */
  readonly options: (rng: Rng, targets: ReadonlyArray<Names.PlayerName>) => unknown
  /** Simulated jobs. Default 10,000. */
  readonly runs?: number
  /** Default seed (the environment's `ORCHESTRA_POLICY_SEED` wins). */
  readonly seed?: number
  /** Most targets per job, duplicates included (at least 1). Default 20. */
  readonly maxPlayers?: number
  /**
   * Whether a player that got a soft outcome for a task is never offered
   * that task again (true of `one-of`). Default false.
   */
  readonly disqualifiesOnSoft?: boolean
  /** Most outcomes a job with `n` distinct targets may take to finish. Default `10 n + 10`. */
  readonly maxSteps?: (targets: number) => number
  /** Finished states that must carry a reason. Default `["FAIL"]`. */
  readonly requireReasonOn?: ReadonlyArray<JobState.FinishedJobState>
  /** Finished states that the simulated jobs must reach at least once. Default `["OK", "FAIL"]`. */
  readonly reachableStates?: ReadonlyArray<JobState.FinishedJobState>
  /** Options the policy must refuse (each fails its job at start). Default: a string and a number. */
  readonly invalidOptions?: ReadonlyArray<unknown>
  /** Other policies by name, for policies that compose others. */
  readonly policies?: Policy.PolicyLookup
  /** The policy's own invariants, checked on every simulated job: throw (or `expect`) to fail. */
  readonly invariants?: (job: SimulatedJob) => void
}

const GUARD_MARKERS = ["returned an invalid decision", "threw at start", "threw on an outcome", "threw while checking"]

/** Whether a reason is PolicyRun's, reporting a policy that misbehaved. */
export const isGuardReason = (reason: string | undefined): boolean =>
  reason !== undefined && GUARD_MARKERS.some((m) => reason.includes(m))

const envSeed = (fallback: number): number => {
  const raw = typeof process === "undefined" ? undefined : process.env.ORCHESTRA_POLICY_SEED
  if (raw === undefined || raw === "") return fallback >>> 0
  if (raw === "random") return (Date.now() ^ Math.floor(Math.random() * 4294967296)) >>> 0
  const n = Number(raw)
  if (!Number.isInteger(n)) throw new Error(`ORCHESTRA_POLICY_SEED must be an integer or "random" (got ${JSON.stringify(raw)})`)
  return n >>> 0
}

const envJob = (): number | undefined => {
  const raw = typeof process === "undefined" ? undefined : process.env.ORCHESTRA_POLICY_JOB
  if (raw === undefined || raw === "") return undefined
  const n = Number(raw)
  return Number.isInteger(n) && n >= 0 ? n : undefined
}

/**
 * Time allowed to the simulation tests: they are bounded by their number of
 * jobs and take seconds, but machines running many suites at once are slow.
 */
const TIMEOUT_MS = 120_000

/** Simulated epoch milliseconds at which every job starts. */
const START_AT = 1_700_000_000_000

/** A pool of player names bigger than a job, so lists have duplicates and differ. */
const POOL: ReadonlyArray<Names.PlayerName> = Array.from({ length: 26 }, (_, i) => Names.playerName(`player-${String.fromCharCode(97 + i)}`))

const HARD_FAILURES: ReadonlyArray<Outcome.Outcome> = Outcome.all.filter((o) => Outcome.isHard(o) && !Outcome.isOk(o))

/**
 * A per-job outcome profile: the chances of a soft outcome and of `OK` are
 * themselves random per job, so all-soft, all-OK, all-failed and mixed jobs
 * all occur; every one of the 8 outcomes is drawn.
 */
const randomOutcomes = (rng: Rng): OutcomeModel => {
  const pSoft = rng.next()
  const pOk = rng.next()
  return (r) => {
    if (r.next() < pSoft) return r.bool() ? "UNK_SCORE" : "HOST_ERROR"
    if (r.next() < pOk) return "OK"
    return r.pick(HARD_FAILURES)
  }
}

const randomChurn = (rng: Rng): Churn => ({
  offlineAtStart: rng.next() * 0.8,
  meanOnlineMs: rng.int(10, 2000),
  meanOfflineMs: rng.int(10, 2000),
  maxOfflineMs: 5000
})

/** Draw one simulated job and run it. */
const simulateJob = (
  plugin: Policy.PolicyPlugin,
  suite: PolicySuiteOptions,
  baseSeed: number,
  index: number
): SimulatedJob => {
  const seed = deriveSeed(baseSeed, index)
  const rng = makeRng(seed)
  const size = rng.int(1, Math.max(1, suite.maxPlayers ?? 20))
  const requested = Array.from({ length: size }, () => rng.pick(POOL))
  const targets = [...new Set(requested)]
  const options = suite.options(rng, targets)
  const churn = rng.bool(0.5)
  const pick = rng.bool(0.5) ? "first" : "random"
  const maxLatency = rng.pick([0, 1, 10, 1000])
  const result = simulate(plugin, {
    seed: rng.nextSeed(),
    players: requested,
    options,
    outcome: randomOutcomes(rng),
    latency: uniformLatency(0, maxLatency),
    ...(churn ? { churn: randomChurn(rng) } : {}),
    slots: rng.int(1, 3),
    pick,
    trace: true,
    maxEvents: 200_000,
    startAt: START_AT,
    ...(suite.policies === undefined ? {} : { policies: suite.policies })
  })
  return { index, seed, requested, targets, options, churn, pick, result }
}

const showEvent = (event: TraceEvent): string => {
  const e = { ...event, at: `t+${(event.at - START_AT).toFixed(1)}ms` }
  switch (e._tag) {
    case "Run":
      return `${e.at} Run ${e.key} [${e.players.join(" ")}]${e.front ? " front" : ""}`
    case "Cancel":
      return `${e.at} Cancel ${e.key}`
    case "Dispatch":
      return `${e.at} Dispatch ${e.key}#${e.attempt} -> ${e.player}`
    case "Ended":
      return `${e.at} Ended ${e.key}#${e.attempt} on ${e.player}: ${e.outcome}${e.dispatched ? "" : " (never dispatched)"}`
    case "Finished":
      return `${e.at} Finished ${e.state}${e.reason === undefined ? "" : `: ${e.reason}`}`
    default:
      return `${e.at} ${e._tag} ${e.player}`
  }
}

const show = (u: unknown): string => {
  try {
    return JSON.stringify(u) ?? String(u)
  } catch {
    return String(u)
  }
}

/** An invariant's failure, with the values compared when it is an assertion error. */
const describeFailure = (e: unknown): string => {
  if (!(e instanceof Error)) return String(e)
  const a = e as Error & { readonly actual?: unknown; readonly expected?: unknown }
  return "actual" in a && "expected" in a && !a.message.includes("\n")
    ? `${a.message} (actual ${show(a.actual)}, expected ${show(a.expected)})`
    : a.message
}

/** A readable account of a simulated job, for failure messages. */
export const describeJob = (job: SimulatedJob): string => {
  const trace = job.result.trace.filter((e) => e._tag !== "Online" && e._tag !== "Offline")
  const shown = trace.slice(0, 200).map((e) => `    ${showEvent(e)}`)
  if (trace.length > shown.length) shown.push(`    … ${trace.length - shown.length} more events`)
  return [
    `  requested: [${job.requested.join(" ")}]`,
    `  options: ${JSON.stringify(job.options)}`,
    `  churn: ${job.churn}, pick: ${job.pick}, status: ${job.result.status}, steps: ${job.result.steps}`,
    `  trace:`,
    ...shown
  ].join("\n")
}

/** Check the invariants every policy must keep on one simulated job; returns the first broken one. */
export const checkJob = (suite: PolicySuiteOptions, job: SimulatedJob): string | undefined => {
  const { result, targets } = job
  const targetSet = new Set<string>(targets)
  const bound = (suite.maxSteps ?? ((n: number) => 10 * n + 10))(targets.length)

  // Every job ends, within a bounded number of steps.
  if (result.status !== "finished" || result.finished === undefined) return `the job did not finish (${result.status})`
  if (result.steps > bound) return `the job took ${result.steps} outcomes to finish, more than the bound of ${bound}`

  // The finished state is a valid finished state, and not PolicyRun's verdict on a misbehaving policy.
  const finished = result.finished
  if (!(JobState.FinishedJobState.literals as ReadonlyArray<string>).includes(finished.state)) {
    return `the job finished in an invalid state ${JSON.stringify(finished.state)}`
  }
  if (isGuardReason(finished.reason)) return `PolicyRun failed the job because the policy misbehaved: ${finished.reason}`
  const needsReason = suite.requireReasonOn ?? ["FAIL"]
  if (needsReason.includes(finished.state) && (finished.reason === undefined || finished.reason.trim() === "")) {
    return `the job finished ${finished.state} with no reason`
  }

  const offered = new Map<string, ReadonlySet<string>>()
  const soft = new Map<string, Set<string>>()
  const live = new Set<string>()
  let finishedEvents = 0
  for (const e of result.trace) {
    switch (e._tag) {
      case "Run": {
        // No task is offered to a player the job does not target, nor twice while live.
        for (const p of e.players) {
          if (!targetSet.has(p)) return `task ${e.key} was offered to ${p}, which the job does not target`
          if (suite.disqualifiesOnSoft === true && soft.get(e.key)?.has(p) === true) {
            return `task ${e.key} was offered again to ${p}, after ${p} could not run it`
          }
        }
        if (e.players.length === 0) return `task ${e.key} was offered to no player`
        if (live.has(e.key)) return `task ${e.key} was planned again while live`
        live.add(e.key)
        offered.set(e.key, new Set(e.players))
        break
      }
      case "Dispatch": {
        // No task runs on a player the job does not target, nor on one it was not offered to.
        if (!targetSet.has(e.player)) return `task ${e.key} ran on ${e.player}, which the job does not target`
        if (offered.get(e.key)?.has(e.player) !== true) return `task ${e.key} ran on ${e.player}, which it was not offered to`
        if (suite.disqualifiesOnSoft === true && soft.get(e.key)?.has(e.player) === true) {
          return `task ${e.key} ran again on ${e.player}, after ${e.player} could not run it`
        }
        break
      }
      case "Ended": {
        if (!live.delete(e.key)) return `an outcome reached the policy for task ${e.key}, which was not live`
        if (Outcome.isSoft(e.outcome)) {
          const s = soft.get(e.key) ?? new Set<string>()
          s.add(e.player)
          soft.set(e.key, s)
        }
        break
      }
      case "Finished":
        finishedEvents++
        break
    }
  }
  if (finishedEvents !== 1) return `the job finished ${finishedEvents} times`
  return undefined
}

/**
 * Run the conformance suite of a policy plugin: `describe` block with the
 * shape checks, the options checks, determinism and the simulation of
 * `runs` jobs.
 */
export const policySuite = (plugin: Policy.PolicyPlugin, suite: PolicySuiteOptions): void => {
  const runs = suite.runs ?? 10_000
  const seed = envSeed(suite.seed ?? 0x0c4e5)
  const only = envJob()
  const where = (index: number) =>
    `(seed ${seed}, job ${index}; replay with ORCHESTRA_POLICY_SEED=${seed} ORCHESTRA_POLICY_JOB=${index})`

  describe(`policy "${plugin.name}" conformance`, () => {
    it("is a policy plugin with a name and a description", () => {
      expect(plugin.kind).toBe("policy")
      expect(plugin.name).toMatch(/^\S{1,256}$/)
      expect(plugin.description.length).toBeGreaterThan(0)
      expect(typeof plugin.decodeOptions).toBe("function")
    })

    it("accepts the options the suite generates", () => {
      const rng = makeRng(seed)
      for (let i = 0; i < 100; i++) {
        const targets = POOL.slice(0, rng.int(1, POOL.length))
        const options = suite.options(rng, targets)
        const decoded = plugin.decodeOptions(options)
        if (decoded._tag === "Left") throw new Error(`generated options ${JSON.stringify(options)} refused: ${decoded.left.message}`)
      }
    })

    it("fails only the job, with a clear reason, on invalid options", () => {
      const invalid = suite.invalidOptions ?? ["not an options object", 42]
      for (const options of invalid) {
        const decoded = plugin.decodeOptions(options)
        expect(decoded._tag, `options ${JSON.stringify(options)} should be refused`).toBe("Left")
        if (decoded._tag === "Left") {
          expect(decoded.left.policy).toBe(plugin.name)
          expect(decoded.left.reason).toBe("options")
        }
        const { run, step } = PolicyRun.PolicyRun.start(plugin, options, {
          job: Names.jobId(1),
          score: Names.scoreName("conformance"),
          players: POOL.slice(0, 3),
          now: 0,
          policies: suite.policies ?? (() => undefined)
        })
        expect(step.actions).toEqual([])
        expect(step.finished?.state).toBe("FAIL")
        expect(step.finished?.reason).toContain(plugin.name)
        expect(run.live.size).toBe(0)
      }
    })

    it("finishes at once a job that targets no player", () => {
      const options = suite.options(makeRng(seed), [])
      const { step } = PolicyRun.PolicyRun.start(plugin, options, {
        job: Names.jobId(1),
        score: Names.scoreName("conformance"),
        players: [],
        now: 0,
        policies: suite.policies ?? (() => undefined)
      })
      expect(step.actions).toEqual([])
      expect(step.finished).toBeDefined()
      expect(isGuardReason(step.finished?.reason), step.finished?.reason).toBe(false)
    })

    it("is deterministic: the same job replayed gives the same decisions", () => {
      for (let i = 0; i < Math.min(runs, 200); i++) {
        const a = simulateJob(plugin, suite, seed, i)
        const b = simulateJob(plugin, suite, seed, i)
        if (JSON.stringify(a.result) !== JSON.stringify(b.result)) {
          throw new Error(`policy "${plugin.name}" decided differently on the same job ${where(i)}\n${describeJob(a)}`)
        }
      }
    }, TIMEOUT_MS)

    it(`keeps its invariants over ${only === undefined ? runs : 1} simulated jobs (outcomes, completion order, churn)`, () => {
      const reached = new Set<string>()
      const outcomesSeen = new Set<string>()
      let churned = 0
      const indices = only === undefined ? Array.from({ length: runs }, (_, i) => i) : [only]
      for (const index of indices) {
        const job = simulateJob(plugin, suite, seed, index)
        let broken = checkJob(suite, job)
        if (broken === undefined && suite.invariants !== undefined) {
          try {
            suite.invariants(job)
          } catch (e) {
            broken = describeFailure(e)
          }
        }
        if (broken === undefined) {
          // Once finished, the run ignores late outcomes.
          const { result } = job
          const after = replayAfterFinish(plugin, suite, job)
          if (after !== undefined) broken = after
          else {
            reached.add(result.finished!.state)
            for (const o of Outcome.all) if (result.outcomes[o] > 0) outcomesSeen.add(o)
            if (job.churn && result.trace.some((e) => e._tag === "Offline" || e._tag === "Online")) churned++
          }
        }
        if (broken !== undefined) {
          throw new Error(`policy "${plugin.name}" broke an invariant ${where(index)}: ${broken}\n${describeJob(job)}`)
        }
      }
      if (only !== undefined) return
      // The simulation covered what it claims to cover.
      expect([...outcomesSeen].sort(), `outcomes drawn ${where(0)}`).toEqual([...Outcome.all].sort())
      for (const state of suite.reachableStates ?? ["OK", "FAIL"]) {
        expect(reached.has(state), `no simulated job finished ${state} ${where(0)}`).toBe(true)
      }
      expect(churned, "jobs with player churn").toBeGreaterThan(0)
    }, TIMEOUT_MS)
  })
}

/**
 * Replay a finished job's outcomes, in order, into a fresh run (as a
 * conductor recovering from a crash does): it must finish the same way.
 * Then feed one more outcome for every task still live: a finished run
 * must ignore them.
 */
const replayAfterFinish = (plugin: Policy.PolicyPlugin, suite: PolicySuiteOptions, job: SimulatedJob): string | undefined => {
  const { run } = PolicyRun.PolicyRun.start(plugin, job.options, {
    job: Names.jobId(1),
    score: Names.scoreName("simulated"),
    players: job.requested,
    now: START_AT,
    policies: suite.policies ?? (() => undefined)
  })
  for (const e of job.result.trace) {
    if (e._tag !== "Ended") continue
    run.taskEnded({ key: e.key, player: e.player, attempt: e.attempt, outcome: e.outcome, response: {} }, e.at)
  }
  if (run.finished === undefined) return "replaying the job's outcomes in order did not finish it again"
  if (run.finished.state !== job.result.finished?.state) {
    return `replaying the job's outcomes finished it ${run.finished.state}, not ${job.result.finished?.state}`
  }
  for (const [key, players] of run.live) {
    const step = run.taskEnded({ key, player: players[0]!, attempt: 1, outcome: "OK", response: {} }, 0)
    if (step.actions.length > 0 || step.finished !== undefined) return `an outcome after the finish changed the job (task ${key})`
  }
  return undefined
}
