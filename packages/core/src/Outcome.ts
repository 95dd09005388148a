/**
 * How one task ended.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * - `OK`: the score exited 0.
 * - `FAIL`: the score exited non-zero.
 * - `UNK_SCORE`: the player has no such score (soft).
 * - `HOST_ERROR`: the player could not start the score, or was removed (soft).
 * - `UNKNOWN_FAILURE`: the score died of a signal, or the player lost track of it.
 * - `INVALID_PARAMS`: the parameters did not pass the score's manifest.
 * - `TIMEOUT`: the score ran past its timeout, or the job's deadline passed.
 * - `CANCELLED`: the job (or its policy) cancelled the task.
 */
export const Outcome = Schema.Literal(
  "OK",
  "FAIL",
  "UNK_SCORE",
  "HOST_ERROR",
  "UNKNOWN_FAILURE",
  "INVALID_PARAMS",
  "TIMEOUT",
  "CANCELLED"
)
export type Outcome = typeof Outcome.Type

/** Every outcome, in declaration order. */
export const all: ReadonlyArray<Outcome> = Outcome.literals

/**
 * Soft outcomes mean "this player could not even try": a one-of job
 * disqualifies the player and requeues the task for another.
 */
export const isSoft = (outcome: Outcome): boolean => outcome === "UNK_SCORE" || outcome === "HOST_ERROR"

/** Hard outcomes are final for the task (unless the job asked for retries). */
export const isHard = (outcome: Outcome): boolean => !isSoft(outcome)

/** Whether the outcome is a success. */
export const isOk = (outcome: Outcome): boolean => outcome === "OK"

/**
 * Whether a hard outcome may be retried when the job asked for retries:
 * failures of the score itself, not refusals or cancellations.
 */
export const isRetryable = (outcome: Outcome): boolean =>
  outcome === "FAIL" || outcome === "UNKNOWN_FAILURE" || outcome === "TIMEOUT"
