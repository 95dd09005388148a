/**
 * The pipeline run state machine: the sample release pipeline driven end
 * to end (each job run by its real policy plugin through core's PolicyRun,
 * with scripted players), data passing from build's pipe response to
 * deploy's params, replay after a "restart" at every point, failures,
 * skips, run-time template errors, cancellation.
 */
import { beforeAll, describe, expect, it } from "@effect/vitest"
import type { Catalog, Json, Outcome } from "@orchestra/core"
import { Job, Names, PolicyRun } from "@orchestra/core"
import { Either } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { Pipeline, PipelineRun } from "../src/index.js"
import { id, registry, result, sampleCatalog, samplePipelines, yaml } from "./helpers.js"

let catalog: ReadonlyArray<Catalog.ScoreInfo>
let release: Pipeline.Pipeline
beforeAll(async () => {
  catalog = await sampleCatalog()
  const file = path.join(samplePipelines, "release.yaml")
  release = Either.getOrThrow(Pipeline.validate(fs.readFileSync(file, "utf8"), file, { catalog, policies: registry.policies }))
})

const load = (text: string): Pipeline.Pipeline => {
  const r = Pipeline.validate(text, "t.yaml", { catalog, policies: registry.policies })
  if (Either.isLeft(r)) throw new Error(r.left.message)
  return r.right
}

/** How a scripted player runs a task: its outcome and response. */
type Behaviour = (player: string, request: Job.JobRequest) => readonly [Outcome.Outcome, Json.JsonObject]

/** What a sample score would answer, per the scripts in samples/scores. */
const scores: Behaviour = (player, request) => {
  if (request.score === "build") {
    const ref = String(request.params["ref"])
    return ["OK", { ref, version: "1.4.42", artifact: `build-${ref}-1.4.42.tar.gz` }]
  }
  if (request.score === "deploy") return ["OK", { deployed: String(request.params["version"]), host: `${player}.local` }]
  return ["OK", {}]
}

/**
 * Run one job the way the conductor would: its policy plugin through
 * core's PolicyRun, each task taken by the first player it may run on.
 * Returns the job's result and the players in dispatch order.
 */
const execute = (jobId: number, request: Job.JobRequest, behaviour: Behaviour) => {
  const plugin = registry.policies(request.policy.name)!
  const { run, step } = PolicyRun.PolicyRun.start(plugin, request.policy.options, {
    job: id(jobId),
    score: request.score,
    players: request.players,
    now: 0,
    policies: registry.policies
  })
  const queue = step.actions.flatMap((a) => (a._tag === "Run" ? [a] : []))
  const players: Record<string, PipelineRun.PlayerResult> = {}
  const order: Array<string> = []
  for (let guard = 0; queue.length > 0 && run.finished === undefined && guard < 1000; guard++) {
    const task = queue.shift()!
    const player = task.players[0]!
    const [outcome, response] = behaviour(player, request)
    order.push(player)
    players[player] = { outcome, response }
    const s = run.taskEnded({ key: task.key, player, attempt: 1, outcome, response }, guard + 1)
    for (const a of s.actions) if (a._tag === "Run") queue.push(a)
  }
  const finished = run.finished!
  const res: PipelineRun.JobResult = { id: id(jobId), state: finished.state, reason: finished.reason, players }
  return { result: res, order }
}

/**
 * Drive a run to its end as a conductor would, recording every fact;
 * returns the events, the states after each, and what each job ran on.
 */
const drive = (pipeline: Pipeline.Pipeline, params: Json.JsonObject, behaviour: Behaviour, runId = "run-1") => {
  const events: Array<PipelineRun.Event> = []
  const states: Array<PipelineRun.State> = []
  const submitted: Array<PipelineRun.SubmitJob> = []
  const order: Record<string, ReadonlyArray<string>> = {}
  let now = 1_000
  let nextId = 100
  let step = PipelineRun.start(pipeline, params, now, { runId })
  const todo: Array<PipelineRun.SubmitJob> = []
  const take = (s: PipelineRun.Step) => {
    for (const a of s.actions) if (a._tag === "SubmitJob") todo.push(a)
    states.push(s.state)
    return s
  }
  take(step)
  for (let guard = 0; todo.length > 0 && guard < 100; guard++) {
    const action = todo.shift()!
    submitted.push(action)
    const jobId = nextId++
    now += 10
    events.push({ _tag: "Submitted", jobName: action.jobName, id: id(jobId), at: now })
    step = take(PipelineRun.jobSubmitted(step.state, action.jobName, id(jobId), now))
    const ran = execute(jobId, action.request, behaviour)
    order[action.jobName] = ran.order
    now += 1_000
    events.push({ _tag: "Finished", jobName: action.jobName, result: ran.result, at: now })
    step = take(PipelineRun.jobFinished(step.state, action.jobName, ran.result, now))
  }
  return { step, events, states, submitted, order }
}

describe("the sample release pipeline, end to end", () => {
  it("build one-of → canary on one player → rolling over three; build's pipe output becomes deploy's param", () => {
    // violin has no build score: one-of fails over to viola
    const behaviour: Behaviour = (player, request) =>
      request.score === "build" && player === "violin" ? ["UNK_SCORE", {}] : scores(player, request)
    const { order, step, submitted } = drive(release, { ref: "main" }, behaviour)
    expect(submitted.map((s) => s.jobName)).toEqual(["build", "canary", "rollout"])
    const [build, canary, rollout] = submitted.map((s) => s.request)
    expect(build).toBeInstanceOf(Job.JobRequest)
    expect(build?.params).toEqual({ ref: "main" })
    expect(build?.policy).toEqual({ name: "one-of", options: {} })
    expect(build?.deadline).toBe(1_000 + 600_000)
    expect(build?.idempotencyKey).toBe("pipeline/run-1/build")
    expect(build?.labels).toEqual({ "orchestra/pipeline": "release", "orchestra/pipeline-job": "build", "orchestra/pipeline-run": "run-1" })
    // the one-of winner's pipe response feeds the canary's json params
    expect(canary?.params).toEqual({ version: "1.4.42" })
    expect(canary?.players).toEqual(["viola"])
    // the canary player's response feeds the rollout
    expect(rollout?.params).toEqual({ version: "1.4.42" })
    expect(rollout?.policy).toEqual({ name: "rolling", options: { batch: 1 } })
    expect(order).toEqual({ build: ["violin", "viola"], canary: ["viola"], rollout: ["violin", "viola", "cello"] })
    expect(step.finished).toEqual({ state: "OK", reason: undefined, at: step.state.finished!.at })
    expect(PipelineRun.stateOf(step.state)).toBe("OK")
    expect(Object.values(step.state.jobs).map((j) => j.status)).toEqual(["finished", "finished", "finished"])
  })

  it("replay after a restart at any point gives the same state and never re-submits a job", () => {
    const { events, states, submitted } = drive(release, { ref: "v2" }, scores, "r-7")
    expect(events.length).toBe(6)
    // states[0] after start, then one state per event
    for (let k = 0; k <= events.length; k++) {
      const replayed = PipelineRun.replay(release, { ref: "v2" }, 1_000, { runId: "r-7" }, events.slice(0, k))
      expect(replayed.state).toStrictEqual(states[k])
      const outstanding = replayed.actions
      if (k % 2 === 0 && k < events.length) {
        // crashed after the job became ready and before its submission was recorded:
        // submit it again, the very same request (same idempotency key)
        expect(outstanding).toEqual([submitted[k / 2]])
      } else {
        // every job started was recorded as submitted: nothing to submit again
        expect(outstanding).toEqual([])
      }
    }
    // after a real restart the pipeline is parsed again from the recorded text (no catalog needed)
    const reparsed = Either.getOrThrow(Pipeline.parse(release.text, release.file))
    expect(reparsed).not.toBe(release)
    const fromText = PipelineRun.replay(reparsed, { ref: "v2" }, 1_000, { runId: "r-7" }, events.slice(0, 3))
    expect(fromText.state).toStrictEqual(states[3])
    expect(fromText.actions).toEqual([])
    // submissions replayed before the finishes that made the jobs ready: same end state
    const reordered = [...events.filter((e) => e._tag === "Submitted"), ...events.filter((e) => e._tag === "Finished")]
    const again = PipelineRun.replay(release, { ref: "v2" }, 1_000, { runId: "r-7" }, reordered)
    expect(again.state).toStrictEqual(states[states.length - 1])
    expect(again.finished?.state).toBe("OK")
    expect(again.actions).toEqual([])
  })

  it("duplicate and stray facts change nothing", () => {
    const s0 = PipelineRun.start(release, { ref: "main" }, 0).state
    const s1 = PipelineRun.jobSubmitted(s0, "build", id(5)).state
    expect(PipelineRun.jobSubmitted(s1, "build", id(6)).state).toBe(s1)
    expect(PipelineRun.jobSubmitted(s1, "nope", id(6)).state).toBe(s1)
    const wrongId = PipelineRun.jobFinished(s1, "build", result(6, "OK", { viola: ["OK", { version: "1.4.1" }] }), 10)
    expect(wrongId.state).toBe(s1)
    expect(wrongId.actions).toEqual([])
    const s2 = PipelineRun.jobFinished(s1, "build", result(5, "OK", { viola: ["OK", { version: "1.4.1" }] }), 10)
    expect(s2.actions.map((a) => a._tag === "SubmitJob" && a.jobName)).toEqual(["canary"])
    const twice = PipelineRun.jobFinished(s2.state, "build", result(5, "OK", { viola: ["OK", { version: "1.4.1" }] }), 11)
    expect(twice.state).toBe(s2.state)
    expect(twice.actions).toEqual([])
    // a result for a job still waiting is not taken
    expect(PipelineRun.jobFinished(s1, "rollout", result(9, "OK", {}), 10).state).toBe(s1)
  })
})

describe("failures and skips", () => {
  const threeJobs = (when = "") =>
    yaml(
      "name: t",
      "jobs:",
      "  build: { score: build, players: [violin, viola], policy: all-of, params: { ref: main } }",
      '  canary: { needs: [build], score: deploy, players: [viola], policy: all-of, params: { version: "${{ jobs.build.output.version }}" } }',
      `  rollout: { needs: [canary], score: deploy, players: [violin, cello], policy: all-of, params: { version: "1.0.0" }${when} }`,
      "  cleanup: { needs: [canary], score: noop, players: [cello], policy: one-of, when: [FAIL] }"
    )

  it("a job whose need failed is skipped, and says why; the run is FAIL", () => {
    const p = load(threeJobs())
    const behaviour: Behaviour = (player, request) => (request.score === "deploy" ? ["FAIL", {}] : scores(player, request))
    const { step, submitted } = drive(p, {}, behaviour)
    expect(submitted.map((s) => s.jobName)).toEqual(["build", "canary", "cleanup"])
    expect(step.state.jobs["rollout"]).toMatchObject({
      status: "skipped",
      reason: "not run: canary ended FAIL (it runs when its needs end OK)"
    })
    expect(step.finished?.state).toBe("FAIL")
    expect(step.finished?.reason).toMatch(/^canary ended FAIL \(1 of 1 players did not end OK \(1 FAIL\): viola: FAIL\); rollout skipped: canary ended FAIL/)
  })

  it("when everything is OK, a failure handler is skipped and the run is still OK", () => {
    const { step, submitted } = drive(load(threeJobs()), {}, scores)
    expect(submitted.map((s) => s.jobName)).toEqual(["build", "canary", "rollout"])
    expect(step.state.jobs["cleanup"]?.reason).toBe("not run: canary ended OK (it runs when its needs end FAIL)")
    expect(step.finished).toMatchObject({ state: "OK", reason: "cleanup skipped: canary ended OK (it runs when its needs end FAIL)" })
  })

  it("`when: [OK, PARTIAL_FAIL]` lets a job run after a partial failure; the run is PARTIAL_FAIL", () => {
    const p = load(threeJobs(", when: [OK, PARTIAL_FAIL]").replace("players: [viola], policy: all-of, params: { version", "players: [viola, cello], policy: all-of, params: { version"))
    const behaviour: Behaviour = (player, request) =>
      request.score === "deploy" && player === "cello" && request.params["version"] !== "1.0.0" ? ["FAIL", {}] : scores(player, request)
    const { step, submitted } = drive(p, {}, behaviour)
    expect(submitted.map((s) => s.jobName)).toEqual(["build", "canary", "rollout"])
    expect(step.state.jobs["canary"]?.result?.state).toBe("PARTIAL_FAIL")
    expect(step.finished?.state).toBe("PARTIAL_FAIL")
  })

  it("a key missing from a response fails the submission at run time, and the run ends FAIL", () => {
    const p = load(threeJobs())
    const behaviour: Behaviour = (player, request) => (request.score === "build" ? ["OK", { ref: "main" }] : scores(player, request))
    const { step, submitted } = drive(p, {}, behaviour)
    expect(submitted.map((s) => s.jobName)).toEqual(["build"])
    expect(step.state.jobs["canary"]).toMatchObject({
      status: "failed",
      reason: 'params.version: ${{ jobs.build.output.version }}: player violin ended OK in job "build" (job 100) but its response has no "version"'
    })
    expect(step.finished?.state).toBe("FAIL")
    expect(step.finished?.reason).toBe(
      'job "canary" could not be submitted: params.version: ${{ jobs.build.output.version }}: player violin ended OK in job "build" (job 100) but its response has no "version"'
    )
    expect(step.state.jobs["rollout"]?.status).toBe("skipped")
    expect(step.state.jobs["rollout"]?.reason).toMatch(/^not run: job "canary" could not be submitted/)
  })

  it("players of a job that disagree on an output: a run-time error naming the job and the key", () => {
    const p = load(threeJobs())
    const behaviour: Behaviour = (player, request) =>
      request.score === "build" ? ["OK", { version: player === "violin" ? "1.4.1" : "1.4.2" }] : scores(player, request)
    const { step } = drive(p, {}, behaviour)
    expect(step.finished?.reason).toBe(
      'job "canary" could not be submitted: params.version: ${{ jobs.build.output.version }}: the players of job "build" (job 100) that ended OK reported different values of "version" (violin: "1.4.1", viola: "1.4.2"): name one with jobs.build.players.<player>.response.version'
    )
    // players that did not end OK do not count
    const agree: Behaviour = (player, request) =>
      request.score === "build" ? (player === "violin" ? ["FAIL", { version: "0.0.0" }] : ["OK", { version: "1.4.2" }]) : scores(player, request)
    const p2 = load(threeJobs().replace("players: [viola], policy: all-of, params: { version", "players: [viola], policy: all-of, when: [PARTIAL_FAIL], params: { version"))
    const second = drive(p2, {}, agree)
    expect(second.submitted[1]?.request.params).toEqual({ version: "1.4.2" })
  })

  it("a submission the conductor refuses stops the run; jobs running are let finish first", () => {
    const p = load(yaml(
      "name: t",
      "jobs:",
      "  a: { score: noop, players: [violin], policy: one-of }",
      "  b: { score: noop, players: [viola], policy: one-of }",
      "  c: { needs: [a], score: noop, players: [viola], policy: one-of }"
    ))
    let s = PipelineRun.start(p, {}, 0)
    expect(s.actions.map((a) => a._tag === "SubmitJob" && a.jobName)).toEqual(["a", "b"])
    s = PipelineRun.jobSubmitted(s.state, "a", id(1))
    s = PipelineRun.submissionFailed(s.state, "b", "invalid job request: players: not on the allowlist: viola", 5)
    expect(s.finished).toBeUndefined() // a is still running
    expect(s.state.stopping?.cause).toBe("failed")
    s = PipelineRun.jobFinished(s.state, "a", result(1, "OK", { violin: ["OK"] }), 9)
    expect(s.actions).toEqual([]) // c is not started
    expect(s.finished).toEqual({
      state: "FAIL",
      reason: 'job "b" could not be submitted: invalid job request: players: not on the allowlist: viola',
      at: 9
    })
    expect(s.state.jobs["c"]?.status).toBe("skipped")
  })

  it("cancel: the jobs running are cancelled, nothing else starts, the run ends CANCELLED", () => {
    let s = PipelineRun.start(release, { ref: "main" }, 0)
    s = PipelineRun.jobSubmitted(s.state, "build", id(3))
    s = PipelineRun.cancel(s.state, "cancelled by alice", 5)
    expect(s.actions).toEqual([{ _tag: "CancelJob", jobName: "build", id: id(3) }])
    expect(PipelineRun.outstanding(s.state)).toEqual([{ _tag: "CancelJob", jobName: "build", id: id(3) }])
    expect(s.finished).toBeUndefined()
    s = PipelineRun.jobFinished(s.state, "build", result(3, "CANCELLED", { violin: ["CANCELLED"] }), 7)
    expect(s.actions).toEqual([])
    expect(s.finished).toEqual({ state: "CANCELLED", reason: "cancelled by alice", at: 7 })
    expect(Object.values(s.state.jobs).map((j) => j.status)).toEqual(["finished", "skipped", "skipped"])
    // a job ready but not yet submitted when the run is cancelled is cancelled once its id is known
    let t = PipelineRun.start(release, { ref: "main" }, 0)
    t = PipelineRun.cancel(t.state, "stop", 1)
    expect(t.finished).toBeUndefined()
    t = PipelineRun.jobSubmitted(t.state, "build", id(4))
    expect(t.actions).toEqual([{ _tag: "CancelJob", jobName: "build", id: id(4) }])
  })

  it("params are checked at start: invalid params finish the run FAIL at once", () => {
    const s = PipelineRun.start(release, { ref: "" }, 0)
    expect(s.actions).toEqual([])
    expect(s.finished?.state).toBe("FAIL")
    expect(s.finished?.reason).toMatch(/^invalid params: .*params\.ref: must NOT have fewer than 1 characters/)
    expect(Either.isLeft(PipelineRun.checkParams(release, { ref: "main", other: 1 }))).toBe(true)
  })

  it("a whole-string template keeps its type; params given as strings are converted to the declared type", () => {
    const p = load(yaml(
      "name: t",
      "params: { type: object, properties: { seconds: { type: number }, n: { type: integer, default: 7 } } }",
      "jobs:",
      '  a: { score: sleep, players: [violin], policy: one-of, params: { seconds: "${{ params.seconds }}" } }',
      '  b: { score: echo, players: [violin], policy: one-of, params: { message: "slept ${{ params.seconds }}s, n=${{ params.n }}" } }'
    ))
    const s = PipelineRun.start(p, { seconds: "2.5" }, 0)
    const params = s.actions.map((a) => (a._tag === "SubmitJob" ? a.request.params : undefined))
    expect(params).toEqual([{ seconds: 2.5 }, { message: "slept 2.5s, n=7" }])
  })

  it("retry, deadline (from the job's start), labels and selector pass into the request", () => {
    const p = load(yaml(
      "name: t",
      "jobs:",
      "  a: { score: noop, selector: { role: web }, policy: all-of, retry: { max: 2 }, deadline: 30s, labels: { team: ops } }"
    ))
    const s = PipelineRun.start(p, {}, 5_000, { runId: "nightly@1" })
    expect(s.actions).toHaveLength(1)
    const request = (s.actions[0] as PipelineRun.SubmitJob).request
    expect(request.selector).toEqual({ role: "web" })
    expect(request.players).toEqual([])
    expect(request.retry).toEqual({ max: 2, backoffMs: 1000, factor: 2, maxBackoffMs: 300_000 })
    expect(request.deadline).toBe(35_000)
    expect(request.idempotencyKey).toBe("pipeline/nightly@1/a")
    expect(request.labels).toEqual({ team: "ops", "orchestra/pipeline": "t", "orchestra/pipeline-job": "a", "orchestra/pipeline-run": "nightly@1" })
  })

  it("output: the one OK player's value; jobs.J.state", () => {
    const r = result(1, "OK", { a: ["UNK_SCORE"], b: ["OK", { v: "1", nested: { k: [1, 2] } }] })
    expect(PipelineRun.output("build", r, ["v"])).toEqual(Either.right("1"))
    expect(PipelineRun.output("build", r, ["nested", "k", "1"])).toEqual(Either.right(2))
    expect(PipelineRun.output("build", result(1, "FAIL", { a: ["FAIL", { v: "1" }] }), ["v"])).toEqual(
      Either.left('no player of job "build" (job 1, FAIL) ended OK, so it has no output "v"')
    )
    const p = load(yaml(
      "name: t",
      "jobs:",
      "  a: { score: noop, players: [violin], policy: one-of }",
      '  b: { needs: [a], when: [FAIL], score: echo, players: [violin], policy: one-of, params: { message: "a ended ${{ jobs.a.state }}" } }'
    ))
    let s = PipelineRun.start(p, {}, 0)
    s = PipelineRun.jobFinished(s.state, "a", result(1, "FAIL", { violin: ["FAIL"] }), 1)
    expect(s.actions).toMatchObject([{ _tag: "SubmitJob", jobName: "b", request: { params: { message: "a ended FAIL" } } }])
  })

  it("resultOf reads a job record: each player's latest finished attempt", () => {
    const record = new Job.JobRecord({
      id: id(12),
      request: new Job.JobRequest({ score: Names.scoreName("build"), policy: { name: "one-of", options: {} } }),
      targets: [Names.playerName("violin"), Names.playerName("viola")],
      state: "OK",
      createdAt: 0,
      attempts: [
        new Job.AttemptRecord({ key: Names.taskKey("0"), attempt: 1, player: Names.playerName("violin"), dispatchedAt: 1, outcome: "HOST_ERROR", seq: 1 }),
        new Job.AttemptRecord({ key: Names.taskKey("0"), attempt: 2, player: Names.playerName("viola"), dispatchedAt: 2, outcome: "OK", response: { version: "1.4.9" }, seq: 2 })
      ]
    })
    expect(PipelineRun.resultOf(record)).toEqual({
      id: id(12),
      state: "OK",
      reason: undefined,
      players: { violin: { outcome: "HOST_ERROR", response: {} }, viola: { outcome: "OK", response: { version: "1.4.9" } } }
    })
    expect(PipelineRun.resultOf(new Job.JobRecord({ ...record, state: "PENDING" }))).toBeUndefined()
  })
})
