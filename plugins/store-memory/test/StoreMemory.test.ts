import { describe, expect, it } from "@effect/vitest"
import { Names, PluginRegistry, Store } from "@orchestra/core"
import { storeSuite } from "@orchestra/core/testing/StoreSuite"
import { Effect, Either, Option, Schema } from "effect"
import { Job } from "@orchestra/core"
import storeMemoryDefault, { layer, make, storeMemory } from "../src/index.js"

storeSuite("memory", () => make)

storeSuite("memory (through the plugin)", () => storeMemory().make({}, { baseDir: "/" }))

describe("store-memory plugin", () => {
  it.effect("is a store plugin named memory, the default export", () =>
    Effect.gen(function*() {
      const plugin = storeMemoryDefault()
      expect(Store.isStorePlugin(plugin)).toBe(true)
      expect(plugin.name).toBe("memory")
      const registry = yield* PluginRegistry.Registry.make([plugin])
      expect(registry.names("store")).toEqual(["memory"])
    }))

  it.scoped("refuses options it does not know", () =>
    Effect.gen(function*() {
      const result = yield* Effect.either(storeMemory().make({ path: "x" }, { baseDir: "/" }))
      expect(Either.isLeft(result) && result.left.operation).toBe("open")
      expect(Either.isRight(yield* Effect.either(storeMemory().make(undefined, { baseDir: "/" })))).toBe(true)
    }))

  it.effect("layer provides a fresh store each build", () =>
    Effect.gen(function*() {
      const req = Schema.decodeUnknownSync(Job.JobRequest)({ score: "s", policy: { name: "one-of" } })
      const first = yield* Effect.provide(
        Effect.flatMap(Store.Store, (s) => s.createJob({ request: req, targets: [Names.playerName("p")], createdAt: 1 })),
        layer
      )
      const seen = yield* Effect.provide(Effect.flatMap(Store.Store, (s) => s.getJob(first.id)), layer)
      expect(first.id).toBe(1)
      expect(Option.isNone(seen)).toBe(true)
    }))
})
