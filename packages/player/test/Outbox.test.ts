import { Protocol } from "@orchestra/core"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Option } from "effect"
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { Outbox } from "../src/index.js"
import * as Proc from "../src/internal/proc.js"
import { assignment, cleanup, ref, tempDir, track } from "./support/fixtures.js"
import { quiet } from "./support/conductor.js"

afterEach(cleanup)

const result = (r = ref(), response: Protocol.TaskResult["response"] = { a: "1" }): Protocol.TaskResult => ({
  ref: r,
  outcome: "OK",
  response,
  log: "",
  finishedAt: 1_700_000_000_000
})

const open = (dir: string, extra: Partial<Outbox.Options> = {}) => Outbox.make({ dir, ...extra })

describe("Outbox", () => {
  it.scopedLive("journals the phases of a task and replays them", () =>
    Effect.gen(function*() {
      const dir = tempDir("outbox")
      const queued = assignment("s")
      const running = assignment("s")
      const done = assignment("s")
      const acked = assignment("s")
      yield* Effect.scoped(
        Effect.gen(function*() {
          const o = yield* open(dir)
          yield* o.accept([queued, running, done, acked], 1)
          expect(o.phase(queued.ref)).toBe("queued")
          yield* o.start(running.ref, 2)
          yield* o.spawned(running.ref, 4242, "777")
          expect(o.phase(running.ref)).toBe("running")
          yield* o.start(done.ref, 2)
          yield* o.finish([result(done.ref), result(acked.ref, { big: "x".repeat(10) })])
          expect(o.phase(done.ref)).toBe("done")
          expect(Option.getOrThrow(o.result(done.ref)).response).toEqual({ a: "1" })
          const dropped = yield* o.ack([acked.ref, ref()])
          expect(dropped).toEqual([acked.ref])
          expect(o.phase(acked.ref)).toBeUndefined()
          expect((yield* o.pending).map((r) => r.ref)).toEqual([done.ref])
        })
      )
      const o = yield* open(dir)
      expect(o.recovered.queued.map((q) => q.assignment)).toEqual([queued])
      expect(o.recovered.running).toHaveLength(1)
      expect(o.recovered.running[0]).toMatchObject({ pid: 4242, startTime: "777", startedAt: 2, acceptedAt: 1 })
      expect(o.recovered.running[0]!.assignment).toEqual(running)
      expect(o.recovered.results.map((r) => r.ref)).toEqual([done.ref])
      expect(o.recovered.warnings).toEqual([])
    }).pipe(Effect.provide(quiet)))

  it.scopedLive("a torn last line and a corrupt line are reported and ignored; the rest is kept", () =>
    Effect.gen(function*() {
      const dir = tempDir("outbox")
      const a = result()
      const b = result()
      yield* Effect.scoped(Effect.flatMap(open(dir), (o) => o.finish([a, b])))
      const file = path.join(dir, "outbox.journal")
      const lines = fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "")
      expect(lines).toHaveLength(2)
      fs.writeFileSync(file, `${lines[0]}\n{"t":"nonsense"}\n${lines[1]}\n{"t":"result","res":{"ref":`)
      const o = yield* open(dir)
      expect(o.recovered.results.map((r) => r.ref)).toEqual([a.ref, b.ref])
      expect(o.recovered.warnings).toEqual([
        "line 2: not a journal record, ignored",
        "line 4: incomplete last record ignored (the player stopped while writing it)"
      ])
      // the journal was rewritten without them, so new records never glue onto a torn line
      expect(fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "")).toHaveLength(2)
    }).pipe(Effect.provide(quiet)))

  it.scopedLive("group commit: many concurrent results cost far fewer fsyncs, all durable", () =>
    Effect.gen(function*() {
      const dir = tempDir("outbox")
      const results = Array.from({ length: 500 }, () => result())
      yield* Effect.scoped(
        Effect.gen(function*() {
          const o = yield* open(dir)
          yield* Effect.forEach(results, (r) => o.finish([r]), { concurrency: "unbounded" })
          const stats = yield* o.stats
          expect(stats.fsyncs).toBeLessThan(results.length / 2)
          expect(stats.commits).toBe(stats.fsyncs)
        })
      )
      const o = yield* open(dir)
      expect(o.recovered.results).toHaveLength(500)
    }).pipe(Effect.provide(quiet)))

  it.scopedLive("acks alone are written without an fsync", () =>
    Effect.gen(function*() {
      const dir = tempDir("outbox")
      const o = yield* open(dir)
      const r = result()
      yield* o.finish([r])
      const before = yield* o.stats
      yield* o.ack([r.ref])
      // the ack is queued; wait until the writer took it
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 50)))
      const after = yield* o.stats
      expect(after.commits).toBe(before.commits + 1)
      expect(after.fsyncs).toBe(before.fsyncs)
      expect(fs.readFileSync(o.file, "utf8")).toContain('"t":"ack"')
    }).pipe(Effect.provide(quiet)))

  it.scopedLive("compaction: when acknowledged records dominate, the journal is rewritten with the live ones", () =>
    Effect.gen(function*() {
      const dir = tempDir("outbox")
      const keep = [result(), result()]
      yield* Effect.scoped(
        Effect.gen(function*() {
          const o = yield* open(dir, { compactMinDead: 50, compactRatio: 2 })
          yield* o.finish(keep)
          for (let round = 0; round < 10; round++) {
            const batch = Array.from({ length: 20 }, () => result(ref(), { pad: "p".repeat(200) }))
            yield* o.finish(batch)
            yield* o.ack(batch.map((r) => r.ref))
          }
          yield* o.finish([result()]) // flushes the last acks
          const stats = yield* o.stats
          expect(stats.compactions).toBeGreaterThanOrEqual(1)
          expect(stats.live).toBe(3)
          // 200 acked results of ~250 bytes would be ~100 KB uncompacted
          expect(fs.statSync(o.file).size).toBeLessThan(30_000)
        })
      )
      const o = yield* open(dir)
      expect(o.recovered.results.slice(0, 2).map((r) => r.ref)).toEqual(keep.map((r) => r.ref))
      expect(o.recovered.results).toHaveLength(3)
    }).pipe(Effect.provide(quiet)))

  it.scopedLive("a state directory in use by another live process is refused", () =>
    Effect.gen(function*() {
      const dir = tempDir("outbox")
      const other = ChildProcess.spawn("/bin/sleep", ["30"], { detached: true, stdio: "ignore" })
      track(other.pid!)
      fs.writeFileSync(path.join(dir, "player.lock"), `${other.pid} ${Proc.readStat(other.pid!)!.startTime}\n`)
      const exit = yield* Effect.exit(Effect.scoped(open(dir)))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) expect(String(exit.cause)).toMatch(/in use by another player \(pid \d+\)/)
      // a stale lock (dead process, or recycled pid) is taken over
      fs.writeFileSync(path.join(dir, "player.lock"), `${other.pid} 1\n`)
      const o = yield* open(dir)
      expect(o.recovered.results).toEqual([])
    }).pipe(Effect.provide(quiet)))
})
