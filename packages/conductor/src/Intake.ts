/**
 * Intake: the one way a job enters the conductor. A request is checked —
 * policy known and its options valid, every named player on the allowlist,
 * the label selector resolved, at least one target, the score known to the
 * targets that reported a catalog and the parameters valid against its
 * schema — and every problem is reported at once as an `InvalidRequest`
 * listing each issue. A valid request is written to the store (durable,
 * idempotency key honoured), handed to the engine, and its id returned.
 *
 * Targets that have not reported a catalog since start-up do not block a
 * submission: they validate the request themselves when it reaches them.
 *
 * `plan` is the dry run of `submit`: the same checks ({@link make}'s one
 * `validate` step), then the job's own policy asked what it would do
 * (`Plan.ofJob` of `@orchestra/pipeline`) — nothing is stored, no id is
 * allocated, nothing is dispatched.
 *
 * @since 0.1.0
 */
import type { Job, PluginRegistry, Store } from "@orchestra/core"
import { Errors, Job as JobModule, Json, Names } from "@orchestra/core"
import { Params } from "@orchestra/manifest"
import { Plan } from "@orchestra/pipeline"
import { Clock, Context, Effect, Either, Layer, ParseResult, Schema } from "effect"
import type { EngineService } from "./Engine.js"
import { Engine } from "./Engine.js"

export interface Accepted {
  readonly id: Names.JobId
  /** True when the idempotency key matched an existing job. */
  readonly existing: boolean
}

export interface IntakeService {
  /** Check, store and start a job. */
  readonly submit: (request: Job.JobRequest) => Effect.Effect<Accepted, Errors.InvalidRequest | Errors.StoreError>
  /** Decode an untrusted request (JSON), then `submit` it. */
  readonly submitUnknown: (request: unknown) => Effect.Effect<Accepted, Errors.InvalidRequest | Errors.StoreError>
  /** Only the checks: the resolved targets, or every issue. */
  readonly check: (request: Job.JobRequest, now: number) => Either.Either<Resolved, Errors.InvalidRequest>
  /** The checks of `submit` at the current time: what `submit` would store, or every issue. Nothing is stored. */
  readonly validate: (request: Job.JobRequest) => Effect.Effect<Validated, Errors.InvalidRequest>
  /** The dry run of `submit`: the same checks, then what the job's policy would do. Nothing is stored. */
  readonly plan: (request: Job.JobRequest) => Effect.Effect<JobPlanView, Errors.InvalidRequest>
  /** Decode an untrusted request (JSON), then `plan` it. */
  readonly planUnknown: (request: unknown) => Effect.Effect<JobPlanView, Errors.InvalidRequest>
}

export class Intake extends Context.Tag("@orchestra/conductor/Intake")<Intake, IntakeService>() {}

/** What a valid request resolves to. */
export interface Resolved {
  /** Named players (duplicates kept; policies collapse them), then selector matches not named. */
  readonly targets: ReadonlyArray<Names.PlayerName>
  readonly targetLabels: Readonly<Record<string, Job.Labels>>
  /**
   * The params as the score's parameter schema makes them (defaults
   * applied), on the first target (in target order) that reported the
   * score; the request's own when no target has reported its catalog. The
   * request is stored with its own params: each player applies its
   * version's defaults.
   */
  readonly params: Json.JsonObject
}

/** A request that passed every check, and when: what `submit` stores. */
export interface Validated extends Resolved {
  readonly request: Job.JobRequest
  readonly now: number
}

/** The dry run of one job: what `submit` would store and what its policy would do if every task ended `OK`. */
export interface JobPlanView {
  readonly score: Names.ScoreName
  readonly policy: Job.PolicyRef
  /** Named players, then selector matches, as the job would target them. */
  readonly targets: ReadonlyArray<Names.PlayerName>
  readonly targetLabels: Readonly<Record<string, Job.Labels>>
  /** The validated params, defaults applied (see {@link Resolved.params}). */
  readonly params: Json.JsonObject
  /** Targets that have not reported their catalog: they check the score and params themselves when the job reaches them. */
  readonly unchecked: ReadonlyArray<Names.PlayerName>
  /** Targets not online now: their tasks would wait for them (the plan assumes every player online). */
  readonly offline: ReadonlyArray<Names.PlayerName>
  /** The batches of tasks, from the policy's own decisions. */
  readonly plan: Plan.JobPlan
}

export interface IntakeOptions {
  readonly store: Store.StoreService
  readonly engine: EngineService
  /** The registry the policies are looked up in. */
  readonly registry: () => PluginRegistry.Registry
}

/** Build an `InvalidRequest` whose message names every issue. */
export const invalid = (issues: ReadonlyArray<Errors.Issue>, what = "job request"): Errors.InvalidRequest =>
  new Errors.InvalidRequest({
    message: `invalid ${what}: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
    issues: [...issues]
  })

const decodeRequest = Schema.decodeUnknownEither(JobModule.JobRequest, { errors: "all", onExcessProperty: "error" })

/** `Schema.is` of a name schema, remembering names that passed: the same few scores and players come back all the time. */
const memoIs = (schema: Schema.Schema<string, string>, max = 4096): (u: unknown) => u is string => {
  const is = Schema.is(schema)
  const ok = new Set<string>()
  return (u): u is string => {
    if (typeof u !== "string") return false
    if (ok.has(u)) return true
    if (!is(u)) return false
    if (ok.size >= max) ok.clear()
    ok.add(u)
    return true
  }
}
const isScoreName = memoIs(Names.ScoreName as unknown as Schema.Schema<string, string>)
const isPlayerName = memoIs(Names.PlayerName as unknown as Schema.Schema<string, string>)
const MAX_PLAYERS = 100_000
const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** The keys a request may have to take the fast path (all others go through the schema). */
const FAST_KEYS: ReadonlySet<string> = new Set(["score", "players", "policy", "params"])

/**
 * The request as the schema would decode it, for the common shape — `score`,
 * `players`, `policy` (`name`, `options`) and `params`, nothing else — when
 * every field passes the schema's own checks; otherwise undefined, and the
 * schema decodes it (with every issue listed). The schema costs tens of
 * microseconds per request; this, one or two.
 */
const decodeCommon = (u: unknown): Job.JobRequest | undefined => {
  if (!isRecord(u)) return undefined
  for (const k in u) if (!FAST_KEYS.has(k)) return undefined
  const { score, players, policy, params } = u
  if (!isScoreName(score)) return undefined
  if (players !== undefined) {
    if (!Array.isArray(players) || players.length > MAX_PLAYERS) return undefined
    for (const p of players) if (!isPlayerName(p)) return undefined
  }
  if (!isRecord(policy)) return undefined
  for (const k in policy) if (k !== "name" && k !== "options") return undefined
  const { name, options } = policy
  if (typeof name !== "string" || name.length < 1 || name.length > 256) return undefined
  if (options !== undefined && !Json.isJson(options)) return undefined
  if (params !== undefined && !Json.isJsonObject(params)) return undefined
  return new JobModule.JobRequest({
    score: score as Names.ScoreName,
    players: (players as ReadonlyArray<Names.PlayerName> | undefined) ?? [],
    policy: { name, options: options ?? {} },
    params: params ?? {},
    labels: {}
  }, { disableValidation: true })
}

/** A decoding failure as issues, each with its dotted path (`root` for the value itself). */
export const parseIssues = (e: ParseResult.ParseError, root = "request"): Array<Errors.Issue> =>
  ParseResult.ArrayFormatter.formatErrorSync(e).map((i) => ({
    path: i.path.length === 0 ? root : i.path.map(String).join("."),
    message: i._tag === "Unexpected" ? "unknown key" : i._tag === "Missing" ? "is required" : i.message
  }))

/** Decode an untrusted job request, listing every issue. */
export const decode = (u: unknown): Either.Either<Job.JobRequest, Errors.InvalidRequest> => {
  const common = decodeCommon(u)
  if (common !== undefined) return Either.right(common)
  return Either.mapLeft(decodeRequest(u), (e) => invalid(parseIssues(e)))
}

const VALIDATOR_CACHE_LIMIT = 1024
/** Params this short (as JSON) have their verdict remembered per validator: the same few come back all the time. */
const VERDICT_MAX_CHARS = 256
const VERDICT_CACHE_LIMIT = 1024

/** Compiled validators by score digest and interface, and their verdicts on small params. */
class ValidatorCache {
  private readonly cache = new Map<string, Either.Either<Params.ParamsValidator, ReadonlyArray<Errors.Issue>>>()
  private readonly verdicts = new Map<string, Either.Either<Json.JsonObject, ReadonlyArray<Errors.Issue>>>()

  /**
   * Whether `params` pass the score's parameter schema (the issues if not).
   * Validation is a pure function of the schema and the params, so the
   * verdict on small params is kept (a validator clones and coerces the
   * params it checks, which is most of the cost of a submission's checks).
   */
  check(
    score: { readonly digest: string; readonly interface: "env" | "pipe" | "json"; readonly parameters?: Job.Response | undefined },
    params: Job.Response
  ): Either.Either<Json.JsonObject, ReadonlyArray<Errors.Issue>> {
    const json = JSON.stringify(params)
    const key = json.length <= VERDICT_MAX_CHARS ? `${score.digest}\u0000${score.interface}\u0000${json}` : undefined
    if (key !== undefined) {
      const hit = this.verdicts.get(key)
      if (hit !== undefined) return hit
    }
    const verdict = Either.flatMap(this.get(score), (v) => v.validate(params))
    if (key !== undefined) {
      this.verdicts.set(key, verdict)
      if (this.verdicts.size > VERDICT_CACHE_LIMIT) {
        const oldest = this.verdicts.keys().next()
        if (oldest.done !== true) this.verdicts.delete(oldest.value)
      }
    }
    return verdict
  }

  get(score: { readonly digest: string; readonly interface: "env" | "pipe" | "json"; readonly parameters?: Job.Response | undefined }) {
    const key = `${score.digest}\u0000${score.interface}`
    const hit = this.cache.get(key)
    if (hit !== undefined) return hit
    const built = Params.compile(score.parameters, { interface: score.interface })
    this.cache.set(key, built)
    if (this.cache.size > VALIDATOR_CACHE_LIMIT) {
      const oldest = this.cache.keys().next()
      if (oldest.done !== true) this.cache.delete(oldest.value)
    }
    return built
  }
}

const list = (xs: ReadonlyArray<string>, limit = 20): string =>
  xs.length <= limit ? xs.join(", ") : `${xs.slice(0, limit).join(", ")} and ${xs.length - limit} more`

/** Make the intake over a store and an engine. */
export const make = (options: IntakeOptions): IntakeService => {
  const validators = new ValidatorCache()
  const { engine, store } = options

  const check = (request: Job.JobRequest, now: number): Either.Either<Resolved, Errors.InvalidRequest> => {
    const issues: Array<Errors.Issue> = []
    const registry = options.registry()

    const policy = registry.get("policy", request.policy.name)
    if (Either.isLeft(policy)) {
      issues.push({ path: "policy.name", message: policy.left.message })
    } else {
      let decoded: ReturnType<typeof policy.right.decodeOptions>
      try {
        decoded = policy.right.decodeOptions(request.policy.options)
      } catch (e) {
        decoded = Either.left(
          new Errors.PolicyError({ policy: request.policy.name, reason: "threw", message: e instanceof Error ? e.message : String(e) })
        )
      }
      if (Either.isLeft(decoded)) issues.push({ path: "policy.options", message: decoded.left.message })
    }

    const unknown = new Set<string>()
    for (const p of request.players) if (!engine.isAllowed(p)) unknown.add(p)
    if (unknown.size > 0) issues.push({ path: "players", message: `not on the allowlist: ${list([...unknown])}` })

    const targets: Array<Names.PlayerName> = [...request.players]
    const named = new Set<string>(request.players)
    if (request.selector !== undefined) {
      const selector = Object.entries(request.selector)
      const matched: Array<Names.PlayerName> = []
      for (const info of engine.players()) {
        if (!info.allowlisted || named.has(info.name)) continue
        if (selector.every(([k, v]) => info.labels[k] === v)) matched.push(info.name)
      }
      matched.sort()
      targets.push(...matched)
      if (matched.length === 0 && request.players.length === 0) {
        issues.push({
          path: "selector",
          message: `no known player has the labels ${selector.map(([k, v]) => `${k}=${v}`).join(", ") || "(none)"}`
        })
      }
    }
    if (targets.length === 0 && request.selector === undefined) {
      issues.push({ path: "players", message: "the job targets no player: name players or give a selector" })
    }

    if (request.deadline !== undefined && request.deadline <= now) {
      issues.push({ path: "deadline", message: `is in the past (${new Date(request.deadline).toISOString()})` })
    }

    const targetLabels: Record<string, Job.Labels> = {}
    const reporting: Array<string> = []
    const having = new Map<string, { readonly digest: string; readonly interface: "env" | "pipe" | "json"; readonly parameters?: Job.Response | undefined }>()
    const seen = new Set<string>()
    for (const name of targets) {
      if (seen.has(name)) continue
      seen.add(name)
      const info = engine.player(name)
      if (info === undefined || !info.allowlisted) continue
      targetLabels[name] = info.labels
      if (info.catalog === undefined) continue
      reporting.push(name)
      const score = info.catalog.get(request.score)
      if (score !== undefined) having.set(`${score.digest}\u0000${score.interface}`, score)
    }
    if (reporting.length > 0 && having.size === 0) {
      issues.push({
        path: "score",
        message: `unknown score "${request.score}" on every target player that reported its catalog (${list(reporting)})`
      })
    }
    const paramIssues = new Map<string, Errors.Issue>()
    let params: Json.JsonObject | undefined
    for (const score of having.values()) {
      const result = validators.check(score, request.params)
      if (Either.isLeft(result)) {
        for (const i of result.left) paramIssues.set(`${i.path}\u0000${i.message}`, i)
      } else if (params === undefined) params = result.right
    }
    issues.push(...paramIssues.values())

    return issues.length > 0
      ? Either.left(invalid(issues))
      : Either.right({ targets, targetLabels, params: params ?? request.params })
  }

  const validate = (request: Job.JobRequest): Effect.Effect<Validated, Errors.InvalidRequest> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => Either.map(check(request, now), (resolved): Validated => ({ ...resolved, request, now })))

  const planOf = ({ params, request, targetLabels, targets }: Validated): JobPlanView => {
    const registry = options.registry()
    // `validate` found the policy: a registry swapped in between (a reload) is the only way to miss it here
    const plugin = registry.policies(request.policy.name)
    const plan: Plan.JobPlan = plugin === undefined
      ? { policy: request.policy.name, batches: [], finished: { state: "FAIL", reason: `unknown policy "${request.policy.name}"` }, truncated: false }
      : Plan.ofJob(plugin, request.policy.options, targets, targetLabels, { policies: registry.policies, score: request.score })
    const unchecked: Array<Names.PlayerName> = []
    const offline: Array<Names.PlayerName> = []
    for (const name of new Set(targets)) {
      const info = engine.player(name)
      if (info?.catalog === undefined) unchecked.push(name)
      if (info?.online !== true) offline.push(name)
    }
    return { score: request.score, policy: request.policy, targets, targetLabels, params, unchecked, offline, plan }
  }

  const plan = (request: Job.JobRequest): Effect.Effect<JobPlanView, Errors.InvalidRequest> => Effect.map(validate(request), planOf)

  const submit = (request: Job.JobRequest): Effect.Effect<Accepted, Errors.InvalidRequest | Errors.StoreError> =>
    Effect.flatMap(validate(request), ({ now, targetLabels, targets }) =>
      Effect.flatMap(store.createJob({ request, targets, targetLabels, createdAt: now }), (created) => {
        const accepted: Accepted = { id: created.id, existing: created.existing }
        return created.existing
          ? Effect.succeed(accepted)
          : Effect.as(engine.submit({ id: created.id, request, targets, targetLabels, createdAt: now }), accepted)
      }))

  return {
    check,
    validate,
    submit,
    submitUnknown: (u) => Effect.flatMap(decode(u), submit),
    plan,
    planUnknown: (u) => Effect.flatMap(decode(u), plan)
  }
}

/** The intake as a layer over the engine. */
export const layer = (options: Omit<IntakeOptions, "engine">): Layer.Layer<Intake, never, Engine> =>
  Layer.effect(Intake, Effect.map(Engine, (engine) => make({ ...options, engine })))
