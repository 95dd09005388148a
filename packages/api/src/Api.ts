/**
 * The HTTP audience API of the conductor, defined once: the conductor
 * serves it (`HttpApiBuilder`), `@orchestra/client` calls it
 * (`HttpApiClient`), and its OpenAPI document (`/v1/openapi.json`) is
 * generated from it.
 *
 * | method | path | |
 * | --- | --- | --- |
 * | POST | `/v1/jobs` | submit (201 `{id, existing}`) |
 * | POST | `/v1/jobs/plan` | dry run of a job: its batches, nothing stored |
 * | GET | `/v1/jobs` | list, filter, page |
 * | GET | `/v1/jobs/:id` | a job in detail |
 * | POST | `/v1/jobs/:id/cancel` | cancel |
 * | GET | `/v1/jobs/:id/wait?timeout=30s` | long poll until the job finishes |
 * | GET | `/v1/jobs/:id/events` | SSE of one job (ends after `job.finished`) |
 * | GET | `/v1/jobs/:id/tasks/:key/attempts/:attempt/log` | an attempt's log (text) |
 * | GET | `/v1/events` | SSE of everything |
 * | GET | `/v1/schedules` | the schedules and their next and latest fire times |
 * | POST | `/v1/pipelines` | start a pipeline run (201 `{id, existing}`) |
 * | GET | `/v1/pipelines` | list pipeline runs, filter, page |
 * | GET | `/v1/pipelines/:id` | a run: each job's status, id and state |
 * | POST | `/v1/pipelines/:id/cancel` | cancel a run |
 * | GET | `/v1/pipelines/:id/wait?timeout=30s` | long poll until the run finishes |
 * | GET | `/v1/players` | players |
 * | GET | `/v1/scores` | the score catalog merged from the players |
 * | GET | `/v1/openapi.json` | this API as OpenAPI 3.1 (no token) |
 * | GET | `/healthz` | health (no token) |
 * | GET | `/metrics` | Prometheus text (no token) |
 *
 * @since 0.1.0
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Errors } from "@orchestra/core"
import { Schema } from "effect"
import { AttemptNotFound, Forbidden, JobFinished, PipelineRunFinished, PipelineRunNotFound } from "./ApiError.js"
import { Authorization } from "./Security.js"
import * as Views from "./Views.js"

const id = HttpApiSchema.param("id", Views.IntParam("id"))
const key = HttpApiSchema.param("key", Schema.String)
const attempt = HttpApiSchema.param("attempt", Views.IntParam("attempt"))

/** Refused for its content: every issue, with its path (400). */
export const InvalidRequest = Errors.InvalidRequest.annotations(HttpApiSchema.annotations({ status: 400 }))
/** No job with that id (404). */
export const JobNotFound = Errors.JobNotFound.annotations(HttpApiSchema.annotations({ status: 404 }))
/** The store failed (503): try again. */
export const StoreError = Errors.StoreError.annotations(HttpApiSchema.annotations({ status: 503 }))

/** An event stream (`text/event-stream`); see `Events` and `Sse`. */
export const EventStream = HttpApiSchema.Text({ contentType: "text/event-stream" }).annotations({
  description: "Server-Sent Events: `id:`, `event:` (the type) and `data:` (the event as JSON) per event"
})

/** Jobs: submit, list, get, cancel, wait, events, logs. */
export class Jobs extends HttpApiGroup.make("jobs")
  .add(
    HttpApiEndpoint.post("submit", "/jobs")
      .setPayload(Views.SubmitRequest)
      .addSuccess(Views.Submitted, { status: 201 })
      .addError(InvalidRequest)
      .addError(Forbidden)
      .addError(StoreError)
      .annotate(OpenApi.Summary, "Submit a job")
      .annotate(
        OpenApi.Description,
        "Checked as the Unix socket checks it (policy and options, players on the allowlist, score and params against the players' catalogs); every issue is listed. The same idempotencyKey returns the same job with existing: true."
      )
  )
  .add(
    HttpApiEndpoint.post("plan", "/jobs/plan")
      .setPayload(Views.SubmitRequest)
      .addSuccess(Views.JobPlan)
      .addError(InvalidRequest)
      .addError(Forbidden)
      .annotate(OpenApi.Summary, "Dry run of a job: who would run what, in which batches")
      .annotate(
        OpenApi.Description,
        "The checks of a submission (the same 400 and 403), then the job's own policy asked for its batches with every player assumed to succeed. Nothing is stored or run."
      )
  )
  .add(
    HttpApiEndpoint.get("list", "/jobs")
      .setUrlParams(Views.ListParams)
      .addSuccess(Views.JobPage)
      .addError(InvalidRequest)
      .addError(StoreError)
      .annotate(OpenApi.Summary, "List jobs, newest first")
  )
  .add(
    HttpApiEndpoint.get("get")`/jobs/${id}`
      .addSuccess(Views.JobDetail)
      .addError(JobNotFound)
      .addError(Forbidden)
      .addError(StoreError)
      .annotate(OpenApi.Summary, "A job: per-player outcomes, responses, every attempt with its timings")
  )
  .add(
    HttpApiEndpoint.post("cancel")`/jobs/${id}/cancel`
      .setUrlParams(Views.CancelParams)
      .addSuccess(Views.JobDetail)
      .addError(InvalidRequest)
      .addError(JobNotFound)
      .addError(JobFinished)
      .addError(Forbidden)
      .addError(StoreError)
      .annotate(OpenApi.Summary, "Cancel a job")
      .annotate(
        OpenApi.Description,
        "The job ends CANCELLED; queued tasks end CANCELLED at once and running scores are stopped on their players (their outcomes, CANCELLED, follow)."
      )
  )
  .add(
    HttpApiEndpoint.get("wait")`/jobs/${id}/wait`
      .setUrlParams(Views.WaitParams)
      .addSuccess(Views.JobDetail)
      .addError(JobNotFound)
      .addError(Forbidden)
      .addError(StoreError)
      .annotate(OpenApi.Summary, "Long poll: the job as soon as it finishes, or still PENDING at the timeout")
  )
  .add(
    HttpApiEndpoint.get("events")`/jobs/${id}/events`
      .setUrlParams(Views.EventsParams)
      .setHeaders(Views.EventsHeaders)
      .addSuccess(EventStream)
      .addError(InvalidRequest)
      .addError(JobNotFound)
      .addError(Forbidden)
      .addError(StoreError)
      .annotate(OpenApi.Summary, "Server-Sent Events of one job; the stream ends after its job.finished")
  )
  .add(
    HttpApiEndpoint.get("log")`/jobs/${id}/tasks/${key}/attempts/${attempt}/log`
      .addSuccess(HttpApiSchema.Text({ contentType: "text/plain; charset=utf-8" }))
      .addError(JobNotFound)
      .addError(AttemptNotFound)
      .addError(Forbidden)
      .addError(StoreError)
      .annotate(OpenApi.Summary, "The log (stderr) of one attempt of a task")
  )
  .middleware(Authorization)
  .prefix("/v1")
{}

/** Every event of the conductor. */
export class EventsGroup extends HttpApiGroup.make("events")
  .add(
    HttpApiEndpoint.get("all", "/events")
      .setUrlParams(Views.EventsParams)
      .setHeaders(Views.EventsHeaders)
      .addSuccess(EventStream)
      .addError(InvalidRequest)
      .annotate(OpenApi.Summary, "Server-Sent Events of every job and player, resumable with Last-Event-ID")
  )
  .middleware(Authorization)
  .prefix("/v1")
{}

/**
 * Pipeline runs: start, list, get, cancel, wait. A run's jobs are submitted
 * by the conductor on its behalf, so a token with score or player limits may
 * not use these (403).
 */
export class Pipelines extends HttpApiGroup.make("pipelines")
  .add(
    HttpApiEndpoint.post("run", "/pipelines")
      .setPayload(Views.PipelineRunRequest)
      .addSuccess(Views.Submitted, { status: 201 })
      .addError(InvalidRequest)
      .addError(Forbidden)
      .addError(StoreError)
      .annotate(OpenApi.Summary, "Start a pipeline run")
      .annotate(
        OpenApi.Description,
        "The document is validated as a whole before anything runs (cycles, unknown scores and references, template types against the scores' outputs and parameters): every issue is listed with its line. The same idempotencyKey returns the same run with existing: true."
      )
  )
  .add(
    HttpApiEndpoint.get("list", "/pipelines")
      .setUrlParams(Views.PipelineListParams)
      .addSuccess(Views.PipelineRunPage)
      .addError(Forbidden)
      .addError(StoreError)
      .annotate(OpenApi.Summary, "List pipeline runs, newest first")
  )
  .add(
    HttpApiEndpoint.get("get")`/pipelines/${id}`
      .addSuccess(Views.PipelineRunDetail)
      .addError(PipelineRunNotFound)
      .addError(Forbidden)
      .addError(StoreError)
      .annotate(OpenApi.Summary, "A pipeline run: each job's status, job id and state")
  )
  .add(
    HttpApiEndpoint.post("cancel")`/pipelines/${id}/cancel`
      .setUrlParams(Views.CancelParams)
      .addSuccess(Views.PipelineRunDetail)
      .addError(PipelineRunNotFound)
      .addError(PipelineRunFinished)
      .addError(Forbidden)
      .addError(StoreError)
      .annotate(OpenApi.Summary, "Cancel a pipeline run: nothing more starts, its running jobs are cancelled")
  )
  .add(
    HttpApiEndpoint.get("wait")`/pipelines/${id}/wait`
      .setUrlParams(Views.WaitParams)
      .addSuccess(Views.PipelineRunDetail)
      .addError(PipelineRunNotFound)
      .addError(Forbidden)
      .addError(StoreError)
      .annotate(OpenApi.Summary, "Long poll: the run as soon as it finishes, or still PENDING at the timeout")
  )
  .middleware(Authorization)
  .prefix("/v1")
{}

/** The schedules the conductor runs (from its config). Tokens with limits get 403, as for pipeline runs. */
export class Schedules extends HttpApiGroup.make("schedules")
  .add(
    HttpApiEndpoint.get("list", "/schedules")
      .addSuccess(Views.SchedulesView)
      .addError(Forbidden)
      .annotate(OpenApi.Summary, "The schedules: cron, zone, what each runs, the next and latest fire times")
  )
  .middleware(Authorization)
  .prefix("/v1")
{}

/** The players. */
export class Players extends HttpApiGroup.make("players")
  .add(
    HttpApiEndpoint.get("list", "/players")
      .addSuccess(Views.PlayersView)
      .annotate(OpenApi.Summary, "Players: online, slots, running, labels, last seen")
  )
  .middleware(Authorization)
  .prefix("/v1")
{}

/** The score catalog. */
export class Scores extends HttpApiGroup.make("scores")
  .add(
    HttpApiEndpoint.get("list", "/scores")
      .addSuccess(Views.ScoresView)
      .annotate(OpenApi.Summary, "Scores merged from the players' catalogs; differing versions flagged")
  )
  .middleware(Authorization)
  .prefix("/v1")
{}

/** What needs no token: health, metrics, this document. */
export class System extends HttpApiGroup.make("system")
  .add(
    HttpApiEndpoint.get("health", "/healthz")
      .addSuccess(Views.Health)
      .annotate(OpenApi.Summary, "Health")
  )
  .add(
    HttpApiEndpoint.get("metrics", "/metrics")
      .addSuccess(HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" }))
      .annotate(OpenApi.Summary, "Prometheus metrics (text exposition format)")
  )
  .add(
    HttpApiEndpoint.get("openapi", "/v1/openapi.json")
      .addSuccess(Schema.Unknown)
      .annotate(OpenApi.Summary, "This API as an OpenAPI 3.1 document")
  )
{}

/** The whole API. */
export class OrchestraApi extends HttpApi.make("orchestra")
  .add(Jobs)
  .add(EventsGroup)
  .add(Pipelines)
  .add(Schedules)
  .add(Players)
  .add(Scores)
  .add(System)
  .annotate(OpenApi.Title, "Orchestra conductor")
  .annotate(OpenApi.Version, "1")
  .annotate(
    OpenApi.Description,
    "The audience API of an Orchestra conductor: submit jobs, follow them, cancel them; players, scores, events, metrics."
  )
{}

/** The OpenAPI document of the API. */
export const openApi = (): OpenApi.OpenAPISpec => OpenApi.fromApi(OrchestraApi)
