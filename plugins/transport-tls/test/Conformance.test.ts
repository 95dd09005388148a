/**
 * The TLS transport against the transport conformance suite: real mutual
 * TLS on 127.0.0.1, certificates issued on demand by the Certs module.
 */
import { transportSuite } from "@orchestra/core/testing/TransportSuite"
import { Effect } from "effect"
import * as fs from "node:fs"
import { Certs, TransportTls } from "../src/index.js"
import { fixture, quietContext } from "./fixture.js"

const ca = fixture()

transportSuite(
  "tls",
  Effect.gen(function*() {
    const dir = yield* ca
    const ctx = quietContext(dir)
    const conductor = yield* TransportTls.makeConductor(
      {
        listen: { host: "127.0.0.1", port: 0 },
        tls: { ca: "ca.pem", cert: "conductor.pem", key: "conductor-key.pem", crl: "crl.pem" }
      },
      ctx
    )
    return {
      conductor,
      unreachable: "127.0.0.1:1",
      player: (name: string) =>
        Effect.gen(function*() {
          if (!fs.existsSync(Certs.files(dir).cert(name))) yield* Certs.issue({ dir, name, kind: "player" })
          return yield* TransportTls.makePlayer(
            { tls: { ca: "ca.pem", cert: `${name}.pem`, key: `${name}-key.pem` }, conductorName: "conductor" },
            ctx
          )
        })
    }
  })
)
