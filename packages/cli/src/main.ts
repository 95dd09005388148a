/**
 * Entry point of the `orchestra` command.
 *
 * @since 0.1.0
 */
import "reflect-metadata"
import { ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Console, Effect } from "effect"
import * as Cli from "./Cli.js"
import * as Exit from "./Exit.js"

const program = Cli.run(process.argv).pipe(
  Effect.catchIf(ValidationError.isValidationError, () =>
    Effect.sync(() => {
      // @effect/cli has already printed what was wrong.
      process.exitCode = Exit.codes.usage
    })),
  Effect.catchTag("ExitWith", (e) =>
    Effect.gen(function*() {
      if (e.message !== undefined && e.message.length > 0) yield* Console.error(`orchestra: ${e.message}`)
      process.exitCode = e.code
    })),
  Effect.catchAllCause((cause) =>
    Cause.isInterruptedOnly(cause)
      ? Effect.void
      : Effect.gen(function*() {
        yield* Console.error(`orchestra: internal error\n${Cause.pretty(cause)}`)
        process.exitCode = Exit.codes.internal
      })
  ),
  Effect.provide(NodeContext.layer)
)

NodeRuntime.runMain(program, { disableErrorReporting: true, disablePrettyLogger: true })
