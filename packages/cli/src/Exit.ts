/**
 * Exit codes of the `orchestra` command, and the typed ways a command ends
 * with one.
 *
 * 0 the job (or command) is OK, 1 the job FAILed, 2 PARTIAL_FAIL, 3 the job
 * was CANCELLED, 4 still pending when a wait timed out, 64 usage error
 * (bad flags or input), 69 cannot reach the conductor or it refused the
 * request, 70 internal error, 77 the conductor did not accept the token
 * (unauthorized or forbidden), 78 bad configuration. `docs/cli.md` lists
 * them for users.
 *
 * @since 0.1.0
 */
import { Data } from "effect"
import type { JobState } from "@orchestra/core"

export const codes = {
  ok: 0,
  fail: 1,
  partialFail: 2,
  cancelled: 3,
  pending: 4,
  usage: 64,
  unavailable: 69,
  internal: 70,
  unauthorized: 77,
  config: 78
} as const

/** End the command with this exit code, after printing `message` (if any) to stderr. */
export class ExitWith extends Data.TaggedError("ExitWith")<{
  readonly code: number
  readonly message?: string
}> {}

/** The exit code that tells a job's final state. */
export const ofJobState = (state: JobState.JobState): number => {
  switch (state) {
    case "OK":
      return codes.ok
    case "FAIL":
      return codes.fail
    case "PARTIAL_FAIL":
      return codes.partialFail
    case "CANCELLED":
      return codes.cancelled
    case "PENDING":
      return codes.pending
  }
}
