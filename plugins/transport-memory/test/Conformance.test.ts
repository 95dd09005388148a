/**
 * The memory transport against the transport conformance suite.
 */
import { transportSuite } from "@orchestra/core/testing/TransportSuite"
import { Effect } from "effect"
import { TransportMemory } from "../src/index.js"

transportSuite(
  "memory",
  Effect.sync(() => {
    const hub = new TransportMemory.Hub()
    return {
      conductor: hub.conductor("main"),
      unreachable: "memory://nobody",
      player: (name: string) => Effect.succeed(hub.player(() => [name]))
    }
  })
)
