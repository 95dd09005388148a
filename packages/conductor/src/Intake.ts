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
 * @since 0.1.0
 */
import type { Job, Names, PluginRegistry, Store } from "@orchestra/core"
import { Errors, Job as JobModule } from "@orchestra/core"
import { Params } from "@orchestra/manifest"
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
}

export class Intake extends Context.Tag("@orchestra/conductor/Intake")<Intake, IntakeService>() {}

/** What a valid request resolves to. */
export interface Resolved {
  /** Named players (duplicates kept; policies collapse them), then selector matches not named. */
  readonly targets: ReadonlyArray<Names.PlayerName>
  readonly targetLabels: Readonly<Record<string, Job.Labels>>
}

export interface IntakeOptions {
  readonly store: Store.StoreService
  readonly engine: EngineService
  /** The registry the policies are looked up in. */
  readonly registry: () => PluginRegistry.Registry
}

/** Build an `InvalidRequest` whose message names every issue. */
export const invalid = (issues: ReadonlyArray<Errors.Issue>): Errors.InvalidRequest =>
  new Errors.InvalidRequest({
    message: `invalid job request: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
    issues: [...issues]
  })

const decodeRequest = Schema.decodeUnknownEither(JobModule.JobRequest, { errors: "all", onExcessProperty: "error" })

/** Decode an untrusted job request, listing every issue. */
export const decode = (u: unknown): Either.Either<Job.JobRequest, Errors.InvalidRequest> =>
  Either.mapLeft(decodeRequest(u), (e) =>
    invalid(
      ParseResult.ArrayFormatter.formatErrorSync(e).map((i) => ({
        path: i.path.length === 0 ? "request" : i.path.map(String).join("."),
        message: i._tag === "Unexpected" ? "unknown key" : i._tag === "Missing" ? "is required" : i.message
      }))
    ))

const VALIDATOR_CACHE_LIMIT = 1024

/** Compiled validators by score digest and interface. */
class ValidatorCache {
  private readonly cache = new Map<string, Either.Either<Params.ParamsValidator, ReadonlyArray<Errors.Issue>>>()

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
    for (const score of having.values()) {
      const validator = validators.get(score)
      const result = Either.flatMap(validator, (v) => v.validate(request.params))
      if (Either.isLeft(result)) {
        for (const i of result.left) paramIssues.set(`${i.path}\u0000${i.message}`, i)
      }
    }
    issues.push(...paramIssues.values())

    return issues.length > 0 ? Either.left(invalid(issues)) : Either.right({ targets, targetLabels })
  }

  const submit = (request: Job.JobRequest): Effect.Effect<Accepted, Errors.InvalidRequest | Errors.StoreError> =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const resolved = yield* check(request, now)
      const created = yield* store.createJob({
        request,
        targets: resolved.targets,
        targetLabels: resolved.targetLabels,
        createdAt: now
      })
      if (!created.existing) {
        yield* engine.submit({
          id: created.id,
          request,
          targets: resolved.targets,
          targetLabels: resolved.targetLabels,
          createdAt: now
        })
      }
      return { id: created.id, existing: created.existing }
    })

  return {
    check,
    submit,
    submitUnknown: (u) => Effect.flatMap(decode(u), submit)
  }
}

/** The intake as a layer over the engine. */
export const layer = (options: Omit<IntakeOptions, "engine">): Layer.Layer<Intake, never, Engine> =>
  Layer.effect(Intake, Effect.map(Engine, (engine) => make({ ...options, engine })))
