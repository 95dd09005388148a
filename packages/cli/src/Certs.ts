/**
 * `orchestra certs init|issue|revoke`: a development CA and certificates,
 * so a newcomer never needs openssl.
 *
 * @since 0.1.0
 */
import { Args, Command, Options } from "@effect/cli"
import { Certs } from "@orchestra/transport-tls"
import { Console, Effect } from "effect"
import * as Exit from "./Exit.js"

const dirOption = Options.directory("dir").pipe(Options.withDescription("The certificate directory"))

const failed = (e: Certs.CertsError) => new Exit.ExitWith({ code: Exit.codes.usage, message: e.message })

export const init = Command.make(
  "init",
  {
    dir: dirOption,
    conductor: Options.text("conductor").pipe(Options.withDescription("The conductor's name")),
    players: Options.text("player").pipe(Options.withDescription("A player's name (repeatable)"), Options.repeated),
    days: Options.integer("days").pipe(Options.withDescription("Validity of the certificates in days"), Options.withDefault(365))
  },
  (a) =>
    Certs.init({ dir: a.dir, conductor: a.conductor, players: a.players, days: a.days }).pipe(
      Effect.mapError(failed),
      Effect.flatMap((r) => Effect.forEach(r.messages, (m) => Console.log(m), { discard: true }))
    )
).pipe(
  Command.withDescription(
    "Create a dev CA (DIR/ca.pem, DIR/ca-key.pem) and certificates DIR/<name>.pem + DIR/<name>-key.pem; the conductor's also covers localhost and 127.0.0.1. An existing CA is reused. Example: orchestra certs init --dir ./pki --conductor conductor --player web1 --player web2"
  )
)

export const issue = Command.make(
  "issue",
  {
    dir: dirOption,
    kind: Options.choice("kind", ["player", "conductor"]).pipe(Options.withDefault("player" as const)),
    name: Args.text({ name: "name" }),
    days: Options.integer("days").pipe(Options.withDefault(365))
  },
  (a) =>
    Certs.issue({ dir: a.dir, name: a.name, kind: a.kind, days: a.days }).pipe(
      Effect.mapError(failed),
      Effect.flatMap((r) => Console.log(`created the certificate of ${r.kind} "${r.name}": ${r.cert} (key ${r.key}), serial ${r.serial}`))
    )
).pipe(Command.withDescription("Issue one more certificate from the CA in DIR. Example: orchestra certs issue --dir ./pki web3"))

export const revoke = Command.make(
  "revoke",
  { dir: dirOption, name: Args.text({ name: "name" }) },
  (a) =>
    Certs.revoke({ dir: a.dir, name: a.name }).pipe(
      Effect.mapError(failed),
      Effect.flatMap((r) =>
        Console.log(
          r.alreadyRevoked
            ? `"${r.name}" (serial ${r.serial}) was already revoked in ${r.crl}`
            : `revoked "${r.name}" (serial ${r.serial}); ${r.crl} now lists ${r.revokedSerials.length} certificate(s). Send SIGHUP to the conductor to apply it.`
        )
      )
    )
).pipe(Command.withDescription("Revoke DIR/<name>.pem: add it to DIR/crl.pem. Example: orchestra certs revoke --dir ./pki web2"))

export const certs = Command.make("certs").pipe(
  Command.withDescription("Development certificates"),
  Command.withSubcommands([init, issue, revoke])
)
