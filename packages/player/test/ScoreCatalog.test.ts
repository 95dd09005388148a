import { NodeFileSystem } from "@effect/platform-node"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Either, Exit, Logger } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { ScoreCatalog } from "../src/index.js"
import { quiet } from "./support/conductor.js"
import { cleanup, tempDir, writeScore } from "./support/fixtures.js"

afterEach(cleanup)

/** Run with a logger that keeps its lines. */
const withLines = <A, E>(effect: Effect.Effect<A, E, never>) => {
  const lines: Array<string> = []
  const logger = Logger.make(({ annotations, logLevel, message }) => {
    const fields = [...annotations].map(([k, v]) => `${k}=${String(v)}`).join(" ")
    lines.push(`${logLevel.label} ${String(message)} ${fields}`)
  })
  return Effect.map(Effect.provide(effect, Logger.replace(Logger.defaultLogger, logger)), (a) => ({ a, lines }))
}

describe("ScoreCatalog", () => {
  it.effect("scans the score directory; excluded scores are logged with their reasons, never silently", () =>
    Effect.gen(function*() {
      const dir = tempDir("scores")
      writeScore(dir, "good", "true", "interface: pipe\nenvironment:\n  timeout: 30s\n  workdir: /tmp\n  variables: { LANG: C }")
      writeScore(dir, "broken", "true", "interface: telepathy")
      fs.writeFileSync(path.join(dir, "orphan.yaml"), "name: orphan\n")
      writeScore(dir, "legacy", "true")
      fs.writeFileSync(path.join(dir, "legacy.conf"), "interface=pipe\n")
      const { a: catalog, lines } = yield* withLines(ScoreCatalog.make({ dir }).pipe(Effect.provide(NodeFileSystem.layer)))
      const snap = yield* catalog.snapshot
      expect(snap.catalog.map((s) => [s.name, s.interface, s.source])).toEqual([
        ["good", "pipe", "manifest"],
        ["legacy", "pipe", "legacy-conf"]
      ])
      const good = snap.scores.get("good")!
      expect(good.spec).toMatchObject({
        executable: path.join(dir, "good"),
        interface: "pipe",
        workdir: "/tmp",
        timeoutMs: 30_000,
        variables: { LANG: "C" },
        maxOutputBytes: 1024 * 1024
      })
      expect(snap.excluded.map((e) => e.name).sort()).toEqual(["broken", "orphan"])
      const warned = lines.filter((l) => l.startsWith("WARN score excluded"))
      expect(warned).toHaveLength(2)
      expect(warned.some((l) => l.includes("score=broken") && l.includes("interface"))).toBe(true)
      expect(warned.some((l) => l.includes("score=orphan") && l.includes("without an executable"))).toBe(true)
      // params are validated against the manifest (none: a flat map)
      expect(Either.isRight(snap.scores.get("legacy")!.validate({ a: "1", n: 2 }))).toBe(true)
      expect(Either.isLeft(snap.scores.get("legacy")!.validate({ nested: { a: 1 } }))).toBe(true)
    }))

  it.effect("reload says whether the catalog changed; a vanished directory keeps the previous catalog", () =>
    Effect.gen(function*() {
      const dir = tempDir("scores")
      writeScore(dir, "one", "true")
      const catalog = yield* ScoreCatalog.make({ dir })
      expect((yield* catalog.reload).changed).toBe(false)
      writeScore(dir, "one", "echo changed")
      const r = yield* catalog.reload
      expect(r.changed).toBe(true)
      fs.rmSync(dir, { recursive: true })
      const failed = yield* Effect.exit(catalog.reload)
      expect(Exit.isFailure(failed)).toBe(true)
      expect((yield* catalog.snapshot).catalog.map((s) => s.name)).toEqual(["one"])
    }).pipe(Effect.provide(NodeFileSystem.layer), Effect.provide(quiet)))
})
