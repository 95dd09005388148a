/**
 * The `orchestra` command tree: daemons, audience commands, score and
 * certificate tools, and the demo.
 *
 * @since 0.1.0
 */
import { Command } from "@effect/cli"
import * as Audience from "./Audience.js"
import * as Certs from "./Certs.js"
import * as Daemons from "./Daemons.js"
import * as Demo from "./Demo.js"
import * as Pipelines from "./Pipelines.js"
import * as Schedules from "./Schedules.js"
import * as Scores from "./Scores.js"
import * as Simulate from "./Simulate.js"
import * as Token from "./Token.js"

export const root = Command.make("orchestra", {}).pipe(
  Command.withDescription(
    "Orchestra runs predefined scores reliably and securely on many hosts: a conductor dispatches jobs from the audience to players."
  ),
  Command.withSubcommands([
    Daemons.conductor,
    Daemons.player,
    Audience.submit,
    Audience.status,
    Audience.wait,
    Audience.watch,
    Audience.cancel,
    Audience.jobs,
    Audience.players,
    Scores.scores,
    Command.make("pipeline").pipe(
      Command.withDescription("Declarative pipelines of jobs: validate a document, plan or start a run, follow it"),
      Command.withSubcommands([
        Pipelines.validate,
        Pipelines.run,
        Pipelines.status,
        Pipelines.list,
        Pipelines.cancel
      ])
    ),
    Schedules.schedules,
    Certs.certs,
    Token.token,
    Simulate.simulate,
    Demo.demo
  ])
)

export const run = Command.run(root, { name: "orchestra", version: "0.1.0" })
