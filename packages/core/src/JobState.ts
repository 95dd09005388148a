/**
 * The aggregate state of a job.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import type { Outcome } from "./Outcome.js"

export const JobState = Schema.Literal("PENDING", "OK", "PARTIAL_FAIL", "FAIL", "CANCELLED")
export type JobState = typeof JobState.Type

/** The states a finished job can be in. */
export const FinishedJobState = Schema.Literal("OK", "PARTIAL_FAIL", "FAIL", "CANCELLED")
export type FinishedJobState = typeof FinishedJobState.Type

export const isFinished = (state: JobState): state is FinishedJobState => state !== "PENDING"

/**
 * The usual aggregate of a set of final outcomes: `OK` if all are OK, `FAIL`
 * if none is, `PARTIAL_FAIL` otherwise. An empty set is `OK`.
 */
export const aggregate = (outcomes: Iterable<Outcome>): FinishedJobState => {
  let ok = 0
  let failed = 0
  for (const o of outcomes) {
    if (o === "OK") ok++
    else failed++
  }
  if (failed === 0) return "OK"
  if (ok === 0) return "FAIL"
  return "PARTIAL_FAIL"
}
