/**
 * Shared test fixtures: the sample catalog (the ScoreInfo of every score in
 * samples/scores, scanned as a player would), the built-in policies, and
 * small builders of job results.
 */
import { NodeFileSystem } from "@effect/platform-node"
import type { Catalog, JobState, Json, Outcome } from "@orchestra/core"
import { Names, PluginRegistry } from "@orchestra/core"
import { ScoreDirectory } from "@orchestra/manifest"
import { policyAllOf } from "@orchestra/policy-all-of"
import { policyOneOf } from "@orchestra/policy-one-of"
import { policyRolling } from "@orchestra/policy-rolling"
import { policyStages } from "@orchestra/policy-stages"
import { Effect, Either } from "effect"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { PipelineRun } from "../src/index.js"

const here = path.dirname(fileURLToPath(import.meta.url))
export const repo = path.resolve(here, "../../..")
export const samplePipelines = path.join(repo, "samples/pipelines")
export const sampleSchedules = path.join(repo, "samples/schedules")

/** The ScoreInfo of every sample score, as a player reports them. */
export const sampleCatalog = (): Promise<ReadonlyArray<Catalog.ScoreInfo>> =>
  Effect.runPromise(
    ScoreDirectory.scan(path.join(repo, "samples/scores")).pipe(
      Effect.map((r) => r.scores.map((s) => s.info)),
      Effect.provide(NodeFileSystem.layer)
    )
  )

export const registry = Either.getOrThrow(PluginRegistry.Registry.make([policyOneOf(), policyAllOf(), policyRolling(), policyStages()]))

export const p = Names.playerName
export const id = Names.jobId

/** A job result: every listed player with its outcome and response. */
export const result = (
  jobId: number,
  state: JobState.FinishedJobState,
  players: Readonly<Record<string, readonly [Outcome.Outcome, Json.JsonObject?]>>,
  reason?: string
): PipelineRun.JobResult => ({
  id: id(jobId),
  state,
  reason,
  players: Object.fromEntries(Object.entries(players).map(([name, [outcome, response]]) => [name, { outcome, response: response ?? {} }]))
})

/** A YAML document from lines (line n is `lines[n - 1]`). */
export const yaml = (...lines: ReadonlyArray<string>): string => lines.join("\n") + "\n"
