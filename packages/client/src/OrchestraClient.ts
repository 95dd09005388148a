/**
 * The typed audience client: one interface, `OrchestraClient`, over the
 * conductor's HTTP API (bearer token) or its Unix socket (the original's
 * protocol and its extensions). Both speak the shapes of `@orchestra/api`
 * (`Views`, `Events`), and both fail with one `ClientError`.
 *
 * ```ts
 * const program = Effect.gen(function*() {
 *   const client = yield* OrchestraClient.OrchestraClient
 *   const { id } = yield* client.submit({ score: "echo", players: ["web1"], policy: { name: "one-of" }, params: { message: "hi" } })
 *   const job = yield* client.wait(id)
 *   console.log(job.state, job.players)
 * })
 * program.pipe(Effect.provide(OrchestraClient.layerHttp({ url: "http://127.0.0.1:7080", token })))
 * ```
 *
 * @since 0.1.0
 */
import type { Events, Views } from "@orchestra/api"
import type { ConfigError, Duration, Redacted, Stream } from "effect"
import { Config, Context, Effect, Layer, Option } from "effect"
import type { ClientError } from "./ClientError.js"
import * as Http from "./internal/http.js"
import * as Socket from "./internal/socket.js"

/** A job as submitted: `Views.SubmitRequest`. */
export type SubmitRequest = Views.SubmitRequest
/** The reply to a submission: its id, and whether an idempotency key matched a job submitted before. */
export type Submitted = Views.Submitted
export type JobDetail = Views.JobDetail
export type JobPage = Views.JobPage
export type JobSummary = Views.JobSummary
export type Players = Views.PlayersView
export type Scores = Views.ScoresView
export type Event = Events.Event

export type JobPlan = Views.JobPlan
export type Schedules = Views.SchedulesView
export type PipelineRunRequest = Views.PipelineRunRequest
export type PipelineRunDetail = Views.PipelineRunDetail
export type PipelineRunPage = Views.PipelineRunPage
/** Filters and paging of `pipelines.list`: the `GET /v1/pipelines` parameters. */
export type PipelineListQuery = Views.PipelineListParams

/** Filters and paging of `list`: the `GET /v1/jobs` parameters. */
export type ListQuery = Views.ListParams

/** One attempt of one task of a job: whose log to read. */
export interface AttemptRef {
  readonly job: number
  readonly key: string
  readonly attempt: number
}

export interface EventsOptions {
  /** Resume after this event id (the last one seen); a `reset` event first says when events were lost. */
  readonly lastEventId?: string | undefined
  /** Only these types (`reset` always comes through). */
  readonly types?: ReadonlyArray<Events.EventType> | undefined
}

/** The audience client. */
export interface Service {
  /** Which transport this client speaks. */
  readonly transport: "http" | "socket"
  /** Where it connects: the URL or the socket's path. */
  readonly address: string
  /** Submit a job. Refused requests fail with reason `refused` and every issue. */
  readonly submit: (request: SubmitRequest) => Effect.Effect<Submitted, ClientError>
  /** The dry run of a job: refused as `submit` would be, else its batches; nothing is stored or run. */
  readonly plan: (request: SubmitRequest) => Effect.Effect<JobPlan, ClientError>
  /** The schedules the conductor runs, with their next and latest fire times. */
  readonly schedules: () => Effect.Effect<Schedules, ClientError>
  /** A job in detail; `not-found` for an unknown id. */
  readonly get: (id: number) => Effect.Effect<JobDetail, ClientError>
  /** Jobs, newest first, filtered; pass a page's `next` as `before` for the next page. */
  readonly list: (query?: ListQuery) => Effect.Effect<JobPage, ClientError>
  /**
   * The job once it has finished, or, when `timeout` passes first, as it is
   * then (still `PENDING`). Without a timeout, waits as long as it takes.
   */
  readonly wait: (id: number, timeout?: Duration.DurationInput) => Effect.Effect<JobDetail, ClientError>
  /**
   * Events of one job (the stream ends after its `job.finished`) or of
   * everything (`"all"`: the stream does not end). A dropped connection is
   * resumed from the last event seen.
   */
  readonly events: (target: number | "all", options?: EventsOptions) => Stream.Stream<Event, ClientError>
  /** Cancel a job: it ends `CANCELLED`, running scores are stopped. A finished job is `refused`. */
  readonly cancel: (id: number, reason?: string) => Effect.Effect<JobDetail, ClientError>
  /** Every player the conductor knows. */
  readonly players: () => Effect.Effect<Players, ClientError>
  /** The score catalog merged from the players. */
  readonly scores: () => Effect.Effect<Scores, ClientError>
  /** The log (stderr) of one attempt. */
  readonly log: (ref: AttemptRef) => Effect.Effect<string, ClientError>
  /** Pipeline runs (a token with score or player limits is `forbidden` over HTTP). */
  readonly pipelines: PipelinesService
}

/** Pipeline runs on the conductor. */
export interface PipelinesService {
  /**
   * Start a run of a pipeline document (its YAML text). The conductor checks
   * it as a whole first: a bad one is `refused` with every issue and its line.
   */
  readonly run: (request: PipelineRunRequest) => Effect.Effect<Submitted, ClientError>
  /** A run: each job's status, id and state; `not-found` for an unknown id. */
  readonly get: (id: number) => Effect.Effect<PipelineRunDetail, ClientError>
  /** Runs, newest first. */
  readonly list: (query?: PipelineListQuery) => Effect.Effect<PipelineRunPage, ClientError>
  /** The run once it has finished, or as it is when `timeout` passes first; without one, as long as it takes. */
  readonly wait: (id: number, timeout?: Duration.DurationInput) => Effect.Effect<PipelineRunDetail, ClientError>
  /** Cancel a run: nothing more starts, its running jobs are cancelled. A finished run is `refused`. */
  readonly cancel: (id: number, reason?: string) => Effect.Effect<PipelineRunDetail, ClientError>
}

export class OrchestraClient extends Context.Tag("@orchestra/client/OrchestraClient")<OrchestraClient, Service>() {}

export interface HttpOptions {
  /** The conductor's HTTP address, e.g. `http://127.0.0.1:7080` (a path prefix is kept). */
  readonly url: string | URL
  /** The bearer token (absent: requests carry none, and the conductor answers `unauthorized`). */
  readonly token?: string | Redacted.Redacted<string> | undefined
  /** Longest wait for an ordinary request (default 30 s). */
  readonly requestTimeout?: Duration.DurationInput | undefined
}

export interface SocketOptions {
  /** Path of the conductor's audience socket. */
  readonly path: string
  /** Longest wait for an ordinary request (default 30 s). */
  readonly requestTimeout?: Duration.DurationInput | undefined
}

/** A client over HTTP; fails with `ClientError` (`connect`) for a URL that is not one. */
export const makeHttp = (options: HttpOptions): Effect.Effect<Service, ClientError> => Http.make(options)

/** A client over the Unix socket. */
export const makeSocket = (options: SocketOptions): Service => Socket.make(options)

export const layerHttp = (options: HttpOptions): Layer.Layer<OrchestraClient, ClientError> =>
  Layer.effect(OrchestraClient, makeHttp(options))

export const layerSocket = (options: SocketOptions): Layer.Layer<OrchestraClient> =>
  Layer.succeed(OrchestraClient, makeSocket(options))

/** Where the socket is when nothing says otherwise. */
export const defaultSocketPath = "/run/orchestra/conductor.sock"

/**
 * From the environment: `ORCHESTRA_URL` (with `ORCHESTRA_TOKEN`) for HTTP;
 * otherwise `ORCHESTRA_SOCKET` (default `/run/orchestra/conductor.sock`).
 */
export const layerConfig: Layer.Layer<OrchestraClient, ClientError | ConfigError.ConfigError> = Layer.effect(
  OrchestraClient,
  Effect.gen(function*() {
    const url = yield* Config.option(Config.nonEmptyString("ORCHESTRA_URL"))
    if (Option.isSome(url)) {
      const token = yield* Config.option(Config.redacted("ORCHESTRA_TOKEN"))
      return yield* makeHttp({ url: url.value, token: Option.getOrUndefined(token) })
    }
    const path = yield* Config.string("ORCHESTRA_SOCKET").pipe(Config.withDefault(defaultSocketPath))
    return makeSocket({ path })
  })
)
