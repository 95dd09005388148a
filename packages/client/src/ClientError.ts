/**
 * The one error of the audience client, over either transport, with the
 * reason it failed: the conductor could not be reached (`connect`), did not
 * accept the token (`unauthorized`), does not let the token do this
 * (`forbidden`), refused the request (`refused`, with every issue when the
 * request itself was wrong), has no such job or attempt (`not-found`), did
 * not answer in time (`timeout`), or answered something this client cannot
 * read (`protocol`).
 *
 * @since 0.1.0
 */
import { Errors } from "@orchestra/core"
import { Schema } from "effect"

export const Reason = Schema.Literal("connect", "unauthorized", "forbidden", "refused", "not-found", "timeout", "protocol")
export type Reason = typeof Reason.Type

/** Talking to the conductor failed, or it refused the request. */
export class ClientError extends Schema.TaggedError<ClientError>()("ClientError", {
  reason: Reason,
  message: Schema.String,
  /** What was wrong with a refused request, each with its path (`params.threshold`). */
  issues: Schema.optional(Schema.Array(Errors.Issue))
}) {}

/** Make a `ClientError`. */
export const make = (reason: Reason, message: string, issues?: ReadonlyArray<Errors.Issue>): ClientError =>
  new ClientError(issues === undefined || issues.length === 0 ? { reason, message } : { reason, message, issues })
