/**
 * The store: job records, task attempts and their outcomes, id allocation,
 * queries, recovery of unfinished jobs and retention. Implementations are
 * plugins (`store-memory`, `store-sqlite`, ...) and all pass the same
 * conformance suite.
 *
 * Writes are durable when their effect succeeds. Implementations are
 * expected to batch concurrent writes (group commit), so callers should
 * issue independent writes concurrently rather than one after another.
 *
 * @since 0.1.0
 */
import type { Effect, Option, Scope } from "effect"
import { Context, Schema } from "effect"
import type { StoreError } from "./Errors.js"
import type { Labels, Response } from "./Job.js"
import { JobRecord, JobRequest } from "./Job.js"
import { FinishedJobState, JobState } from "./JobState.js"
import { PlayerName, ScoreName } from "./Names.js"
import type { JobId, TaskRef } from "./Names.js"
import type { Outcome } from "./Outcome.js"

/** A job to create. */
export interface NewJob {
  readonly request: JobRequest
  readonly targets: ReadonlyArray<PlayerName>
  /** Labels of the targets at submission, for policies that select by label. */
  readonly targetLabels?: Readonly<Record<string, Labels>>
  readonly createdAt: number
}

/** The result of creating a job. */
export interface Created {
  readonly id: JobId
  /** True when the idempotency key matched an existing job, which is returned instead. */
  readonly existing: boolean
}

/** An attempt of a task was handed to a player. */
export interface Dispatched {
  readonly ref: TaskRef
  readonly player: PlayerName
  readonly at: number
}

/** An attempt of a task ended. */
export interface Ended {
  readonly ref: TaskRef
  readonly player: PlayerName
  readonly outcome: Outcome
  readonly response: Response
  readonly log?: string
  readonly startedAt?: number
  readonly finishedAt: number
}

/** A page of jobs, newest first. */
export const JobQuery = Schema.Struct({
  state: Schema.optional(JobState),
  score: Schema.optional(ScoreName),
  player: Schema.optional(PlayerName),
  /** Created at or after (epoch ms). */
  since: Schema.optional(Schema.Number),
  /** Created before (epoch ms). */
  until: Schema.optional(Schema.Number),
  /** Only jobs with an id below this (paging cursor: the last id of the previous page). */
  before: Schema.optional(Schema.Int),
  limit: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 1000)), { default: () => 50 })
})
export type JobQuery = Schema.Schema.Encoded<typeof JobQuery>

export interface JobSummary {
  readonly id: JobId
  readonly score: string
  readonly policy: string
  readonly state: JobState
  readonly targets: ReadonlyArray<PlayerName>
  readonly createdAt: number
  readonly finishedAt?: number
}

export interface JobPage {
  readonly jobs: ReadonlyArray<JobSummary>
  /** Pass as `before` to get the next page; absent on the last page. */
  readonly next?: number
}

/** The store service. */
export interface StoreService {
  /**
   * Create a job with a new id, never used before (not even by a job that
   * was purged, nor after a crash). With an idempotency key already known,
   * returns that job instead.
   */
  readonly createJob: (job: NewJob) => Effect.Effect<Created, StoreError>
  /** Record that an attempt was handed to a player. Recording it twice is one record. */
  readonly recordDispatch: (dispatched: Dispatched) => Effect.Effect<void, StoreError>
  /** Record that a player started an attempt. */
  readonly recordStart: (ref: TaskRef, at: number) => Effect.Effect<void, StoreError>
  /**
   * Record how an attempt ended. The same attempt recorded twice is one
   * result: the first one wins, and the second returns `false`.
   */
  readonly recordEnd: (ended: Ended) => Effect.Effect<boolean, StoreError>
  /** Mark a job finished. Finishing a finished job changes nothing. */
  readonly finishJob: (id: JobId, state: FinishedJobState, at: number, reason?: string) => Effect.Effect<void, StoreError>
  readonly getJob: (id: JobId) => Effect.Effect<Option.Option<JobRecord>, StoreError>
  readonly listJobs: (query: JobQuery) => Effect.Effect<JobPage, StoreError>
  /** Every job still `PENDING`, oldest first, with its attempts: what a conductor resumes at start-up. */
  readonly unfinishedJobs: Effect.Effect<ReadonlyArray<JobRecord>, StoreError>
  /** Delete finished jobs that finished before `before`; returns how many. Ids stay used. */
  readonly purge: (before: number) => Effect.Effect<number, StoreError>
}

export class Store extends Context.Tag("@orchestra/core/Store")<Store, StoreService>() {}

/** What a store plugin provides: a factory of store layers from its own config. */
export interface StorePlugin {
  readonly kind: "store"
  readonly name: string
  readonly description: string
  /**
   * Build the store from its config block (already parsed YAML; paths are
   * resolved against `baseDir`). The store lives as long as the scope.
   */
  readonly make: (config: unknown, context: { readonly baseDir: string }) => Effect.Effect<StoreService, StoreError, Scope.Scope>
}

export const isStorePlugin = (u: unknown): u is StorePlugin =>
  typeof u === "object" && u !== null && (u as { kind?: unknown }).kind === "store" &&
  typeof (u as { name?: unknown }).name === "string" && typeof (u as { make?: unknown }).make === "function"

export { JobRecord, JobRequest }
