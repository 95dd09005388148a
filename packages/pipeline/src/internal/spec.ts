/**
 * The document formats shared by pipelines and schedules: a job as written
 * in YAML (score, targets, policy, params, retry, deadline, labels), and
 * the names of pipelines, schedules and pipeline jobs.
 *
 * @internal
 */
import { Job, JobState, Json, Names } from "@orchestra/core"
import { Units } from "@orchestra/manifest"
import { Schema } from "effect"

/** A policy as written: its name alone, or `{ name, options }`. */
export const PolicySpec = Schema.Union(
  Schema.String.pipe(Schema.minLength(1), Schema.maxLength(256)),
  Schema.Struct({
    name: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(256)),
    options: Schema.optional(Json.Json)
  })
)
export type PolicySpec = typeof PolicySpec.Type

const ScoreName = Names.ScoreName.annotations({ identifier: "ScoreName" })
const PlayerName = Names.PlayerName.annotations({ identifier: "PlayerName" })

/** The fields of a job request as written in a pipeline or schedule document. */
export const jobFields = {
  description: Schema.optional(Schema.String),
  score: ScoreName,
  /** Target players by name. */
  players: Schema.optional(Schema.Array(PlayerName).pipe(Schema.maxItems(100_000))),
  /** Target players by labels. */
  selector: Schema.optional(Job.Labels),
  policy: PolicySpec,
  params: Schema.optional(Json.JsonObject),
  retry: Schema.optional(Job.RetryPolicy),
  /** How long the job may take, from its submission (`30s`, `10m`, `2h`). */
  deadline: Schema.optional(Units.DurationMs),
  labels: Schema.optional(Job.Labels)
}

/** A job of a schedule. */
export const JobSpec = Schema.Struct(jobFields)
export type JobSpec = typeof JobSpec.Type

/** A job of a pipeline: a job request, plus what it needs and when it runs. */
export const PipelineJobSpec = Schema.Struct({
  ...jobFields,
  /** Jobs that must have finished before this one starts. */
  needs: Schema.optional(Schema.Array(Schema.String)),
  /** States every need must have ended in for this job to run (default `[OK]`). */
  when: Schema.optional(Schema.Array(JobState.FinishedJobState).pipe(Schema.minItems(1)))
})
export type PipelineJobSpec = typeof PipelineJobSpec.Type

/** The `{ name, options }` form of a policy spec. */
export const policyRef = (spec: PolicySpec): Job.PolicyRef =>
  typeof spec === "string" ? { name: spec, options: {} } : { name: spec.name, options: spec.options ?? {} }

/** Where the policy name is written, below the job. */
export const policyNamePath = (spec: PolicySpec): ReadonlyArray<string> => (typeof spec === "string" ? ["policy"] : ["policy", "name"])

/** Names of pipelines and schedules: what labels and idempotency keys carry. */
export const DOCUMENT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/
export const documentNameProblem = (name: string): string | undefined =>
  DOCUMENT_NAME.test(name)
    ? undefined
    : `must be 1-128 letters, digits, "_", "." or "-", starting with a letter or digit (got ${JSON.stringify(name)})`

/** Names of pipeline jobs: usable in templates (`jobs.<name>.output`). */
export const JOB_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/
export const jobNameProblem = (name: string): string | undefined =>
  JOB_NAME.test(name)
    ? undefined
    : `invalid job name ${JSON.stringify(name)}: use 1-64 letters, digits, "_" or "-", starting with a letter or "_"`

/** Label keys set on the jobs a pipeline or schedule submits. */
export const LABEL_PIPELINE = "orchestra/pipeline"
export const LABEL_PIPELINE_RUN = "orchestra/pipeline-run"
export const LABEL_PIPELINE_JOB = "orchestra/pipeline-job"
export const LABEL_SCHEDULE = "orchestra/schedule"

const decodeRequest = Schema.decodeUnknownEither(Job.JobRequest)

/** Build a job request, or say why it is not one. */
export const makeRequest = (fields: {
  readonly score: Names.ScoreName
  readonly players: ReadonlyArray<Names.PlayerName>
  readonly selector: Job.Labels | undefined
  readonly policy: Job.PolicyRef
  readonly params: Json.Json
  readonly deadline: number | undefined
  readonly idempotencyKey: string | undefined
  readonly retry: Job.RetryPolicy | undefined
  readonly labels: Job.Labels
}): { readonly _tag: "Right"; readonly request: Job.JobRequest } | { readonly _tag: "Left"; readonly reason: string } => {
  const encoded: Record<string, unknown> = {
    score: fields.score,
    players: fields.players,
    policy: fields.policy,
    params: fields.params,
    labels: fields.labels
  }
  if (fields.selector !== undefined) encoded["selector"] = fields.selector
  if (fields.deadline !== undefined) encoded["deadline"] = Math.ceil(fields.deadline)
  if (fields.idempotencyKey !== undefined) encoded["idempotencyKey"] = fields.idempotencyKey
  if (fields.retry !== undefined) encoded["retry"] = fields.retry
  const decoded = decodeRequest(encoded)
  return decoded._tag === "Right"
    ? { _tag: "Right", request: decoded.right }
    : { _tag: "Left", reason: `not a valid job request: ${decoded.left.message}` }
}
