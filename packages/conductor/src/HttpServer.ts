/**
 * The HTTP audience API (`@orchestra/api`) served by the conductor: the
 * API's handlers over the `Audience` operations, bearer-token
 * authentication against the config's hashed tokens (`Tokens`), Server-Sent
 * Events for the event streams, Prometheus metrics, the OpenAPI document
 * and a health check, on a Node HTTP server at the configured host and port
 * (port 0: any free port; the address is returned).
 *
 * `/healthz`, `/metrics` and `/v1/openapi.json` need no token (metrics are
 * counts, no job data: bind the listener to an internal address, or keep
 * `/metrics` behind your proxy, if that matters); everything under `/v1`
 * else does.
 *
 * @since 0.1.0
 */
import { HttpApiBuilder, HttpIncomingMessage, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Api, ApiError, Events as ApiEvents, Security, Sse, Views } from "@orchestra/api"
import type { Errors } from "@orchestra/core"
import { Dashboard } from "@orchestra/dashboard"
import type { Scope } from "effect"
import { Context, Data, Duration, Effect, Either, Layer, Option, Redacted, Schema, Stream } from "effect"
import * as http from "node:http"
import type { AudienceService, Subscription } from "./Audience.js"
import type { EngineService } from "./Engine.js"
import * as Intake from "./Intake.js"
import type { PipelineRunView, PipelinesService } from "./Pipelines.js"
import type { Metrics } from "./Metrics.js"
import type { SchedulesService } from "./Schedules.js"
import * as Tokens from "./Tokens.js"

/** The HTTP server could not start (the port is taken, the host is not ours). */
export class HttpServerError extends Data.TaggedError("HttpServerError")<{
  readonly address: string
  readonly message: string
}> {}

export interface Options {
  /** Address to listen on (default 127.0.0.1). */
  readonly host?: string
  /** Port (0: any free one). */
  readonly port: number
  /** The tokens accepted (hashed). */
  readonly tokens: ReadonlyArray<Tokens.TokenEntry>
  /** A `: keep-alive` comment on idle event streams this often (default 15 s). */
  readonly keepAliveMs?: number
  /** Largest request body (default 1 MiB). */
  readonly maxBodyBytes?: number
}

export interface Dependencies {
  readonly audience: AudienceService
  readonly engine: EngineService
  readonly metrics: Metrics
  readonly pipelines: PipelinesService
  readonly schedules: SchedulesService
}

/** Where the server listens. */
export interface Address {
  readonly host: string
  readonly port: number
  /** `http://host:port`. */
  readonly url: string
}

const parseTypes = (raw: string | undefined): Either.Either<ReadonlySet<string> | undefined, Errors.InvalidRequest> => {
  if (raw === undefined || raw.trim() === "") return Either.right(undefined)
  const wanted = raw.split(",").map((t) => t.trim()).filter((t) => t !== "")
  const known = new Set<string>(ApiEvents.types)
  const unknown = wanted.filter((t) => !known.has(t))
  if (unknown.length > 0) {
    return Either.left(
      Intake.invalid([{ path: "types", message: `unknown event type ${unknown.map((t) => JSON.stringify(t)).join(", ")} (known: ${ApiEvents.types.join(", ")})` }])
    )
  }
  return Either.right(new Set(wanted))
}

/** An event stream as a `text/event-stream` response, with keep-alive comments while idle. */
const sseResponse = (sub: Subscription, keepAliveMs: number): HttpServerResponse.HttpServerResponse => {
  const keepAlive = Stream.tick(Duration.millis(keepAliveMs)).pipe(Stream.drop(1), Stream.as(Sse.comment("keep-alive")))
  const body = Stream.concat(
    Stream.succeed(`${Sse.retry(1000)}${Sse.comment(`after ${sub.from}`)}`),
    sub.stream.pipe(Stream.map(Sse.encode))
  ).pipe(Stream.merge(keepAlive, { haltStrategy: "left" }), Stream.encodeText)
  return HttpServerResponse.stream(body, {
    contentType: Sse.contentType,
    headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
  })
}

const unauthorized = (message: string) => new ApiError.Unauthorized({ message })

const decodeRunRequest = Schema.decodeUnknownEither(Views.PipelineRunRequest, { errors: "all", onExcessProperty: "error" })

/**
 * Pipeline runs need a token without limits: a run's jobs are submitted by
 * the conductor on its behalf (their targets resolved as each is submitted,
 * stage policies naming their own players), so a token's score and player
 * limits could not hold over them.
 */
const unlimited: Effect.Effect<void, ApiError.Forbidden, Security.Principal> = Effect.flatMap(Security.Principal, (p) =>
  p.scores === undefined && p.players === undefined
    ? Effect.void
    : Effect.fail(
      new ApiError.Forbidden({
        message: `token ${JSON.stringify(p.name)} has score or player limits: pipeline runs and schedules need a token without limits`,
        token: p.name,
        scores: [],
        players: []
      })
    ))

/** The run, or `PipelineRunNotFound`. */
const runOf = <E>(
  found: Effect.Effect<Option.Option<PipelineRunView>, E>,
  id: number
): Effect.Effect<Views.PipelineRunDetail, E | ApiError.PipelineRunNotFound> =>
  Effect.flatMap(found, Option.match({
    onNone: () => Effect.fail(new ApiError.PipelineRunNotFound({ id })),
    onSome: Effect.succeed
  }))

/** Serve the API until the scope closes; returns where it listens. */
export const serve = (options: Options, deps: Dependencies): Effect.Effect<Address, HttpServerError, Scope.Scope> =>
  Effect.gen(function*() {
    const { audience, engine, metrics, pipelines, schedules } = deps
    const host = options.host ?? "127.0.0.1"
    const keepAliveMs = Math.max(10, options.keepAliveMs ?? 15_000)
    const maxBody = options.maxBodyBytes ?? 1024 * 1024
    const tokens = new Tokens.TokenSet(options.tokens)
    if (tokens.size === 0) {
      yield* Effect.logWarning("the HTTP API has no tokens configured: every request under /v1 will be refused (401)")
    }
    let openApi: unknown
    const document = () => (openApi ??= Api.openApi())

    /** The request's body as JSON: at most `maxBody` bytes, else `InvalidRequest` naming `body`. */
    const readJson = (request: HttpServerRequest.HttpServerRequest): Effect.Effect<unknown, Errors.InvalidRequest> =>
      Effect.flatMap(
        request.text.pipe(
          HttpIncomingMessage.withMaxBodySize(Option.some(maxBody)),
          Effect.mapError(() => Intake.invalid([{ path: "body", message: `could not be read (at most ${maxBody} bytes)` }]))
        ),
        (text) =>
          Effect.try({
            try: (): unknown => JSON.parse(text),
            catch: (e) => Intake.invalid([{ path: "body", message: `is not valid JSON: ${e instanceof Error ? e.message : String(e)}` }])
          })
      )

    const verify = (token: string): Effect.Effect<Security.PrincipalService, ApiError.Unauthorized> => {
      if (token === "") return Effect.fail(unauthorized("missing token: send Authorization: Bearer <token>"))
      const principal = tokens.verify(token)
      return principal === undefined ? Effect.fail(unauthorized("invalid token")) : Effect.succeed(principal)
    }
    const AuthLive = Layer.succeed(
      Security.Authorization,
      Security.Authorization.of({
        bearer: (token) => verify(Redacted.value(token)),
        // tried when the bearer token failed: report on the bearer token if there was one
        accessToken: (token) =>
          Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
            const value = Redacted.value(token)
            if (value !== "") return verify(value)
            return Effect.fail(
              unauthorized(request.headers["authorization"] === undefined ? "missing token: send Authorization: Bearer <token>" : "invalid token")
            )
          })
      })
    )

    const JobsLive = HttpApiBuilder.group(Api.OrchestraApi, "jobs", (handlers) =>
      handlers
        .handleRaw("submit", ({ request }) =>
          Effect.gen(function*() {
            const principal = yield* Security.Principal
            return yield* audience.submit(yield* readJson(request), principal)
          }))
        .handleRaw("plan", ({ request }) =>
          Effect.gen(function*() {
            const principal = yield* Security.Principal
            return yield* audience.plan(yield* readJson(request), principal)
          }))
        .handle("list", ({ urlParams }) => Effect.flatMap(Security.Principal, (p) => audience.list(urlParams, p)))
        .handle("get", ({ path }) => Effect.flatMap(Security.Principal, (p) => audience.get(path.id, p)))
        .handle("cancel", ({ path, urlParams }) => Effect.flatMap(Security.Principal, (p) => audience.cancel(path.id, urlParams.reason, p)))
        .handle("wait", ({ path, urlParams }) =>
          Effect.flatMap(Security.Principal, (p) => audience.wait(path.id, urlParams.timeout ?? 30_000, p)))
        .handle("events", ({ headers, path, urlParams }) =>
          Effect.gen(function*() {
            const principal = yield* Security.Principal
            const types = yield* parseTypes(urlParams.types)
            const from = headers["last-event-id"] ?? urlParams.lastEventId
            const sub = yield* audience.jobEvents(path.id, { from, types, untilFinished: true }, principal)
            return sseResponse(sub, keepAliveMs)
          }))
        .handle("log", ({ path }) => Effect.flatMap(Security.Principal, (p) => audience.log(path.id, path.key, path.attempt, p)))
    )

    const EventsLive = HttpApiBuilder.group(Api.OrchestraApi, "events", (handlers) =>
      handlers.handle("all", ({ headers, urlParams }) =>
        Effect.gen(function*() {
          const principal = yield* Security.Principal
          const types = yield* parseTypes(urlParams.types)
          const from = headers["last-event-id"] ?? urlParams.lastEventId
          return sseResponse(audience.allEvents({ from, types }, principal), keepAliveMs)
        }))
    )

    const PipelinesLive = HttpApiBuilder.group(Api.OrchestraApi, "pipelines", (handlers) =>
      handlers
        .handleRaw("run", ({ request }) =>
          Effect.gen(function*() {
            yield* unlimited
            const body = yield* Either.mapLeft(decodeRunRequest(yield* readJson(request)), (e) => Intake.invalid(Intake.parseIssues(e, "body"), "pipeline run request"))
            return yield* pipelines.run({
              document: body.document,
              file: body.file,
              params: body.params ?? {},
              key: body.idempotencyKey
            })
          }))
        .handle("list", ({ urlParams }) => Effect.zipRight(unlimited, pipelines.list(urlParams)))
        .handle("get", ({ path }) => Effect.zipRight(unlimited, runOf(pipelines.get(path.id), path.id)))
        .handle("wait", ({ path, urlParams }) =>
          Effect.zipRight(unlimited, runOf(pipelines.wait(path.id, urlParams.timeout ?? Views.DEFAULT_WAIT_MS), path.id)))
        .handle("cancel", ({ path, urlParams }) =>
          Effect.gen(function*() {
            yield* unlimited
            const run = yield* runOf(pipelines.get(path.id), path.id)
            if (run.state !== "PENDING") return yield* new ApiError.PipelineRunFinished({ id: run.id, state: run.state })
            const cancelled = yield* pipelines.cancel(path.id, urlParams.reason)
            if (!cancelled) {
              const now = yield* runOf(pipelines.get(path.id), path.id)
              return yield* new ApiError.PipelineRunFinished({ id: now.id, state: now.state })
            }
            // the cancellation is a fact the run records before it acts: wait briefly for it to show
            return yield* runOf(pipelines.wait(path.id, 2_000), path.id)
          }))
    )

    const SchedulesLive = HttpApiBuilder.group(Api.OrchestraApi, "schedules", (handlers) =>
      handlers.handle("list", () => Effect.zipRight(unlimited, Effect.map(schedules.list, (views) => ({ schedules: views })))))

    const PlayersLive = HttpApiBuilder.group(Api.OrchestraApi, "players", (handlers) =>
      handlers.handle("list", () => Effect.map(Security.Principal, (p) => audience.players(p))))

    const ScoresLive = HttpApiBuilder.group(Api.OrchestraApi, "scores", (handlers) =>
      handlers.handle("list", () => Effect.map(Security.Principal, (p) => audience.scores(p))))

    const SystemLive = HttpApiBuilder.group(Api.OrchestraApi, "system", (handlers) =>
      handlers
        .handle("health", () => audience.health)
        .handle("metrics", () =>
          Effect.map(engine.stats, (stats) =>
            metrics.render({ stats, players: engine.players(), events: audience.events, subscribers: audience.openStreams() })))
        .handle("openapi", () => Effect.sync(document)))

    const ApiLive = HttpApiBuilder.api(Api.OrchestraApi).pipe(
      Layer.provide(Layer.mergeAll(JobsLive, EventsLive, PipelinesLive, SchedulesLive, PlayersLive, ScoresLive, SystemLive)),
      Layer.provide(AuthLive)
    )
    // The dashboard's page and assets beside the API, on the same router (no token: the page asks for one).
    const DashboardLive = HttpApiBuilder.Router.use((router) => router.concat(Dashboard.router))
    const server = http.createServer()
    const ServerLive = HttpApiBuilder.serve().pipe(
      Layer.provide(ApiLive),
      Layer.provide(DashboardLive),
      Layer.provideMerge(NodeHttpServer.layer(() => server, { host, port: options.port }))
    )
    const context = yield* Layer.build(ServerLive).pipe(
      Effect.mapError((e) => new HttpServerError({ address: `${host}:${options.port}`, message: describeServeError(e) }))
    )
    // Keep-alive sockets would hold `server.close` open at shutdown: end them with the scope.
    yield* Effect.addFinalizer(() => Effect.sync(() => server.closeAllConnections()))
    const address = Context.get(context, HttpServer.HttpServer).address
    const port = address._tag === "TcpAddress" ? address.port : options.port
    const shown = host.includes(":") ? `[${host}]` : host
    const url = `http://${shown}:${port}`
    yield* Effect.logInfo("HTTP API listening").pipe(Effect.annotateLogs({ url, tokens: tokens.size }))
    return { host, port, url }
  })

const describeServeError = (e: unknown): string => {
  const cause = (e as { cause?: unknown }).cause
  if (cause instanceof Error) return cause.message
  return e instanceof Error ? e.message : String(e)
}
