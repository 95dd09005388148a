import { describe, expect, it } from "@effect/vitest"
import { Job, Names, PluginRegistry } from "@orchestra/core"
import { StoreMemory } from "@orchestra/store-memory"
import { Cause, Effect, Either, Fiber, HashMap, Layer, Logger, LogLevel, Option, TestClock } from "effect"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Logging from "../src/Logging.js"
import * as PluginLoader from "../src/PluginLoader.js"
import * as Retention from "../src/Retention.js"

const here = path.dirname(fileURLToPath(import.meta.url))

describe("Retention", () => {
  it.scoped("purges finished jobs older than the retention, at start and then periodically", () =>
    Effect.gen(function*() {
      const store = yield* StoreMemory.make
      const request = new Job.JobRequest({
        score: Names.scoreName("noop"),
        players: [Names.playerName("a")],
        policy: { name: "one-of", options: {} },
        params: {},
        labels: {}
      })
      const make = (at: number, finish: boolean) =>
        Effect.gen(function*() {
          const { id } = yield* store.createJob({ request, targets: [Names.playerName("a")], createdAt: at })
          if (finish) yield* store.finishJob(id, "OK", at)
          return id
        })
      const old = yield* make(0, true)
      const pending = yield* make(0, false)
      yield* TestClock.setTime(10_000)
      const fiber = yield* Effect.fork(Retention.run(store, { retentionMs: 5_000, intervalMs: 1_000 }))
      yield* TestClock.adjust(0)
      yield* Effect.yieldNow()
      expect(Option.isNone(yield* store.getJob(old))).toBe(true)
      expect(Option.isSome(yield* store.getJob(pending))).toBe(true)
      const recent = yield* make(9_000, true)
      yield* TestClock.adjust(1_000)
      expect(Option.isSome(yield* store.getJob(recent))).toBe(true)
      yield* TestClock.adjust(4_000)
      expect(Option.isNone(yield* store.getJob(recent))).toBe(true)
      expect(Option.isSome(yield* store.getJob(pending))).toBe(true)
      yield* Fiber.interrupt(fiber)
      expect(Retention.defaultInterval(30 * 86_400_000)).toBe(3_600_000)
      expect(Retention.defaultInterval(2_000)).toBe(1_000)
    }))
})

describe("Logging", () => {
  it("formats logfmt lines with quoted values where needed", () => {
    const line = Logging.formatLine({
      date: new Date(0),
      logLevel: LogLevel.Warning,
      message: ["player refused"],
      annotations: HashMap.make(["player", "web-1"], ["reason", "not on the allowlist"], ["n", 3]),
      cause: Cause.empty
    })
    expect(line.startsWith(`ts=1970-01-01T00:00:00.000Z level=warn msg="player refused"`)).toBe(true)
    expect(line).toContain(" player=web-1")
    expect(line).toContain(` reason="not on the allowlist"`)
    expect(line).toContain(" n=3")
  })

  it.effect("writes through the logger at the configured level", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      yield* Effect.gen(function*() {
        yield* Effect.logInfo("shown").pipe(Effect.annotateLogs({ k: "v" }))
        yield* Effect.logDebug("hidden")
        yield* Effect.logError("broken", Cause.fail("boom"))
      }).pipe(
        Effect.provide(Layer.merge(Logger.replace(Logger.defaultLogger, Logging.logfmt((l) => lines.push(l))), Logger.minimumLogLevel(Logging.toLogLevel("info"))))
      )
      expect(lines.length).toBe(2)
      expect(lines[0]).toMatch(/^ts=\S+ level=info msg="shown" k=v$/)
      expect(lines[1]).toContain(`level=error msg="broken"`)
      expect(lines[1]).toContain("cause=")
      expect(lines[1]).toContain("boom")
    }))
})

describe("PluginLoader", () => {
  it.effect("loads a plugin by path relative to a directory, and by package name", () =>
    Effect.gen(function*() {
      const byPath = yield* PluginLoader.load("./fixtures/first-ok-policy.mjs", here)
      const plugins = Either.getOrThrow(PluginRegistry.pluginsOf("first-ok", byPath))
      expect(plugins.map((p) => `${p.kind}:${p.name}`)).toEqual(["policy:first-ok"])
      const byName = yield* PluginLoader.load("@orchestra/policy-one-of", here)
      expect(Either.getOrThrow(PluginRegistry.pluginsOf("@orchestra/policy-one-of", byName)).map((p) => p.name)).toEqual(["one-of"])
      const missing = yield* Effect.flip(PluginLoader.load("./fixtures/nope.mjs", here))
      expect(missing.message).toContain(path.join(here, "fixtures", "nope.mjs"))
      const noPackage = yield* Effect.flip(PluginLoader.load("@orchestra/no-such-plugin", here))
      expect(noPackage._tag).toBe("PluginLoadError")
    }))
})
