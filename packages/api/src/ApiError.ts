/**
 * The errors of the HTTP audience API, each a `Schema.TaggedError` carrying
 * its HTTP status (an `HttpApiSchema` annotation), so the server encodes it
 * with that status and the client decodes it back into the same class.
 *
 * Requests refused for their content use core's `InvalidRequest` (400, every
 * issue with its path), unknown jobs core's `JobNotFound` (404) and store
 * failures core's `StoreError` (503): the API attaches those statuses where
 * it declares them (`Api.ts`).
 *
 * @since 0.1.0
 */
import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

/** No token, or a token that matches none in the conductor's config (401). */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()(
  "Unauthorized",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 401, description: "missing or invalid bearer token" })
) {}

/**
 * The token is valid but its limits do not allow this: `scores` and
 * `players` list what is outside them (403).
 */
export class Forbidden extends Schema.TaggedError<Forbidden>()(
  "Forbidden",
  {
    message: Schema.String,
    /** The token's name. */
    token: Schema.String,
    /** Scores the request uses that the token may not use. */
    scores: Schema.Array(Schema.String),
    /** Players the request uses that the token may not use. */
    players: Schema.Array(Schema.String)
  },
  HttpApiSchema.annotations({ status: 403, description: "the token's limits do not allow this score or these players" })
) {}

/** A task attempt (or its log) that the job does not have (404). */
export class AttemptNotFound extends Schema.TaggedError<AttemptNotFound>()(
  "AttemptNotFound",
  { job: Schema.Number, key: Schema.String, attempt: Schema.Number },
  HttpApiSchema.annotations({ status: 404, description: "no such attempt of a task of the job" })
) {
  override get message() {
    return `job ${this.job} has no attempt ${this.attempt} of task ${JSON.stringify(this.key)}`
  }
}

/** Cancelling a job that has already finished (409). */
export class JobFinished extends Schema.TaggedError<JobFinished>()(
  "JobFinished",
  { id: Schema.Number, state: Schema.String },
  HttpApiSchema.annotations({ status: 409, description: "the job has already finished" })
) {
  override get message() {
    return `job ${this.id} has already finished (${this.state})`
  }
}

/** No pipeline run with that id (404). */
export class PipelineRunNotFound extends Schema.TaggedError<PipelineRunNotFound>()(
  "PipelineRunNotFound",
  { id: Schema.Number },
  HttpApiSchema.annotations({ status: 404, description: "no such pipeline run" })
) {
  override get message() {
    return `no pipeline run ${this.id}`
  }
}

/** Cancelling a pipeline run that has already finished (409). */
export class PipelineRunFinished extends Schema.TaggedError<PipelineRunFinished>()(
  "PipelineRunFinished",
  { id: Schema.Number, state: Schema.String },
  HttpApiSchema.annotations({ status: 409, description: "the pipeline run has already finished" })
) {
  override get message() {
    return `pipeline run ${this.id} has already finished (${this.state})`
  }
}
