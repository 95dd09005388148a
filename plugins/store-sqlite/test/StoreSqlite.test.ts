import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { describe, expect, it } from "@effect/vitest"
import { Job, Names, PluginRegistry, Store } from "@orchestra/core"
import { storeSuite } from "@orchestra/core/testing/StoreSuite"
import type { SqlStore } from "@orchestra/store-sql"
import { Deferred, Effect, Either, Exit, Fiber, Option, Schema, Scope } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import storeSqliteDefault, { StoreSqlite, storeSqlite } from "../src/index.js"

/** A temp directory removed with the scope. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "orchestra-sqlite-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

storeSuite("sqlite", () =>
  Effect.flatMap(tempDir, (baseDir) => storeSqlite().make({ path: "state/orchestra.db" }, { baseDir })))

const request = Schema.decodeUnknownSync(Job.JobRequest)({ score: "s", policy: { name: "one-of" } })
const newJob = (score = "s"): Store.NewJob => ({
  request: score === "s" ? request : Schema.decodeUnknownSync(Job.JobRequest)({ score, policy: { name: "one-of" } }),
  targets: [Names.playerName("p1")],
  createdAt: 1
})

/** A raw connection to the file, for looking under the store. */
const raw = (file: string) =>
  SqliteClient.make({ filename: file }).pipe(Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make))

/** Open the store at `file` in its own scope, run `f`, close it. */
const withStore = <A, E>(
  file: string,
  f: (store: Store.StoreService) => Effect.Effect<A, E>,
  options?: StoreSqlite.Options
) => Effect.scoped(Effect.flatMap(StoreSqlite.make({ path: file }, options), f))

describe("store-sqlite", () => {
  it.effect("is a store plugin named sqlite, the default export", () =>
    Effect.gen(function*() {
      const plugin = storeSqliteDefault()
      expect(Store.isStorePlugin(plugin)).toBe(true)
      expect(plugin.name).toBe("sqlite")
      const registry = yield* PluginRegistry.Registry.make([plugin])
      expect(registry.names("store")).toEqual(["sqlite"])
    }))

  it.scopedLive("creates the file and its directories, relative to baseDir, in WAL mode", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const store = yield* storeSqlite().make({ path: "a/b/c/jobs.db" }, { baseDir: dir })
      yield* store.createJob(newJob())
      const file = path.join(dir, "a/b/c/jobs.db")
      expect(fs.existsSync(file)).toBe(true)
      const sql = yield* raw(file)
      const mode = yield* sql<{ readonly journal_mode: string }>`PRAGMA journal_mode`
      expect(mode[0]?.journal_mode).toBe("wal")
      const version = yield* sql<{ readonly v: number }>`SELECT MAX(migration_id) AS v FROM orchestra_migrations`
      expect(version[0]?.v).toBe(2)
    }))

  it.scopedLive("refuses a bad config or a path it cannot open, naming the operation", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      fs.mkdirSync(path.join(dir, "adir"))
      fs.writeFileSync(path.join(dir, "afile"), "")
      const bad: ReadonlyArray<[unknown, string]> = [
        [{}, "path"],
        [{ path: "" }, "path"],
        [{ path: "x.db", synchronous: "OFF" }, "synchronous"],
        [{ path: "x.db", pth: "typo" }, "pth"],
        ["x.db", "Expected"],
        [{ path: "adir" }, "adir"],
        [{ path: "afile/x.db" }, "afile"]
      ]
      for (const [config, mention] of bad) {
        const result = yield* Effect.either(Effect.scoped(storeSqlite().make(config, { baseDir: dir })))
        expect(Either.isLeft(result), JSON.stringify(config)).toBe(true)
        if (Either.isLeft(result)) {
          expect(result.left._tag).toBe("StoreError")
          expect(result.left.operation).toBe("open")
          expect(result.left.message).toContain(mention)
        }
      }
    }))

  it.scopedLive("keeps jobs across restarts and never reuses an id, even with every job purged", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = path.join(dir, "jobs.db")
      const first = yield* withStore(file, (s) =>
        Effect.gen(function*() {
          const a = yield* s.createJob(newJob())
          const b = yield* s.createJob({ ...newJob(), request: Schema.decodeUnknownSync(Job.JobRequest)({ score: "s", policy: { name: "one-of" }, idempotencyKey: "k" }) })
          yield* s.recordDispatch({ ref: { job: a.id, key: Names.taskKey("0"), attempt: 1 }, player: Names.playerName("p1"), at: 5 })
          return [a.id, b.id] as const
        }))
      const second = yield* withStore(file, (s) =>
        Effect.gen(function*() {
          const job = yield* s.getJob(first[0])
          expect(Option.map(job, (j) => j.attempts.length)).toEqual(Option.some(1))
          expect((yield* s.createJob({ ...newJob(), request: Schema.decodeUnknownSync(Job.JobRequest)({ score: "s", policy: { name: "one-of" }, idempotencyKey: "k" }) })).id).toBe(first[1])
          const c = yield* s.createJob(newJob())
          expect(c.id).toBeGreaterThan(first[1])
          for (const id of [...first, c.id]) yield* s.finishJob(id, "OK", 10)
          expect(yield* s.purge(100)).toBe(3)
          return c.id
        }))
      const third = yield* withStore(file, (s) => Effect.map(s.createJob(newJob()), (c) => c.id))
      expect(third).toBeGreaterThan(second)
    }))

  it.scopedLive("keeps pipeline runs and schedule states across restarts; run ids are never reused", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = path.join(dir, "jobs.db")
      const run: Store.NewPipelineRun = { pipeline: "release", file: "release.yaml", document: "name: release\n", params: { ref: "main" }, createdAt: 1 }
      const first = yield* withStore(file, (s) =>
        Effect.gen(function*() {
          const a = yield* s.createPipelineRun({ ...run, key: "nightly@1" })
          const b = yield* s.createPipelineRun(run)
          yield* s.recordPipelineEvent(a.id, { _tag: "Submitted", jobName: "build", id: Names.jobId(3), at: 2 })
          yield* s.setScheduleState("nightly", 1234)
          return [a.id, b.id] as const
        }))
      const second = yield* withStore(file, (s) =>
        Effect.gen(function*() {
          const open = yield* s.unfinishedPipelineRuns
          expect(open.map((r) => r.id)).toEqual([...first])
          expect(open[0]!.events).toEqual([{ _tag: "Submitted", jobName: "build", id: 3, at: 2 }])
          expect(yield* s.getScheduleState("nightly")).toEqual(Option.some(1234))
          expect(yield* s.createPipelineRun({ ...run, key: "nightly@1" })).toEqual({ id: first[0], existing: true })
          for (const id of first) yield* s.finishPipelineRun(id, "OK", 10)
          expect(yield* s.purgePipelineRuns(100)).toBe(2)
          return (yield* s.createPipelineRun(run)).id
        }))
      expect(second).toBeGreaterThan(first[1])
      const third = yield* withStore(file, (s) =>
        Effect.gen(function*() {
          yield* s.finishPipelineRun(second, "OK", 10)
          expect(yield* s.purgePipelineRuns(100)).toBe(1)
          return (yield* s.createPipelineRun(run)).id
        }))
      expect(third).toBeGreaterThan(second)
    }))

  it.scopedLive("migrates a database of schema version 1 to version 2, keeping its jobs", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = path.join(dir, "jobs.db")
      const id = yield* withStore(file, (s) => Effect.map(s.createJob(newJob()), (c) => c.id))
      // back to version 1: without the pipelines migration
      yield* Effect.scoped(Effect.flatMap(raw(file), (sql) =>
        Effect.gen(function*() {
          for (const t of ["orchestra_pipeline_runs", "orchestra_pipeline_events", "orchestra_schedules"]) yield* sql.unsafe(`DROP TABLE ${t}`)
          yield* sql`DELETE FROM orchestra_migrations WHERE migration_id = 2`
          yield* sql`DELETE FROM sqlite_sequence WHERE name = 'orchestra_pipeline_runs'`
        })))
      yield* withStore(file, (s) =>
        Effect.gen(function*() {
          expect(Option.isSome(yield* s.getJob(id))).toBe(true)
          const run = yield* s.createPipelineRun({ pipeline: "p", file: "p.yaml", document: "name: p\n", params: {}, createdAt: 1 })
          expect(run).toEqual({ id: 1, existing: false })
          yield* s.setScheduleState("s", 5)
          expect(yield* s.getScheduleState("s")).toEqual(Option.some(5))
        }))
      const version = yield* Effect.scoped(Effect.flatMap(raw(file), (sql) =>
        sql<{ readonly v: number }>`SELECT MAX(migration_id) AS v FROM orchestra_migrations`))
      expect(version[0]?.v).toBe(2)
    }))

  it.scopedLive("refuses a database migrated by a newer version", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = path.join(dir, "jobs.db")
      yield* withStore(file, (s) => s.createJob(newJob()))
      yield* Effect.scoped(Effect.flatMap(raw(file), (sql) =>
        sql`INSERT INTO orchestra_migrations (migration_id, name) VALUES (99, 'from_the_future')`))
      const result = yield* Effect.either(withStore(file, () => Effect.void))
      expect(Either.isLeft(result) && result.left.operation).toBe("migrate")
      expect(Either.isLeft(result) && result.left.message).toContain("99")
    }))

  it.scopedLive("commits concurrent writes in batches (group commit)", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const batches: Array<SqlStore.BatchInfo> = []
      yield* withStore(path.join(dir, "jobs.db"), (s) =>
        Effect.gen(function*() {
          const created = yield* Effect.all(Array.from({ length: 1000 }, () => s.createJob(newJob())), {
            concurrency: "unbounded"
          })
          yield* Effect.all(
            created.map((c) =>
              s.recordEnd({
                ref: { job: c.id, key: Names.taskKey("0"), attempt: 1 },
                player: Names.playerName("p1"),
                outcome: "OK",
                response: {},
                finishedAt: 2
              })
            ),
            { concurrency: "unbounded" }
          )
        }), { onBatch: (b) => batches.push(b) })
      const writes = batches.reduce((n, b) => n + b.size, 0)
      expect(writes).toBe(2000)
      expect(batches.every((b) => b.committed)).toBe(true)
      // Far fewer transactions than writes.
      expect(batches.length).toBeLessThan(100)
      expect(Math.max(...batches.map((b) => b.size))).toBeGreaterThan(100)
    }))

  it.scopedLive("a write the database refuses fails alone; the rest of its batch commits", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = path.join(dir, "jobs.db")
      yield* withStore(file, (s) => s.createJob(newJob()))
      // A trigger stands in for any database-side refusal.
      yield* Effect.scoped(Effect.flatMap(raw(file), (sql) =>
        sql`CREATE TRIGGER poison BEFORE INSERT ON orchestra_jobs WHEN NEW.score = 'poison'
            BEGIN SELECT RAISE(ABORT, 'poisoned job'); END`))
      const batches: Array<SqlStore.BatchInfo> = []
      const results = yield* withStore(file, (s) =>
        Effect.gen(function*() {
          const results = yield* Effect.all(
            Array.from({ length: 60 }, (_, i) => Effect.either(s.createJob(newJob(i === 30 ? "poison" : "s")))),
            { concurrency: "unbounded" }
          )
          const listed = yield* s.listJobs({ limit: 1000 })
          return { results, listed }
        }), { onBatch: (b) => batches.push(b) })
      const failed = results.results.filter(Either.isLeft)
      expect(failed.length).toBe(1)
      expect(Either.isLeft(results.results[30]!)).toBe(true)
      if (Either.isLeft(results.results[30]!)) {
        expect(results.results[30]!.left.operation).toBe("createJob")
        expect(results.results[30]!.left.message).toContain("poisoned job")
      }
      expect(results.listed.jobs.length).toBe(60)
      expect(batches.some((b) => !b.committed)).toBe(true)
      const ids = results.results.filter(Either.isRight).map((r) => r.right.id)
      expect(new Set(ids).size).toBe(59)
    }))

  it.scopedLive("closing commits what was submitted, then refuses new writes", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = path.join(dir, "jobs.db")
      const scope = yield* Scope.make()
      const store = yield* Effect.provideService(StoreSqlite.make({ path: file }), Scope.Scope, scope)
      const submitted = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(
        Effect.all(
          Array.from({ length: 300 }, (_, i) =>
            i === 150 ?
              Effect.zipRight(Deferred.succeed(submitted, undefined), Effect.either(store.createJob(newJob()))) :
              Effect.either(store.createJob(newJob()))),
          { concurrency: "unbounded" }
        )
      )
      yield* Deferred.await(submitted)
      yield* Scope.close(scope, Exit.void)
      const results = yield* Fiber.join(fiber)
      // Each call either committed or was refused because the store closed: none is lost or left hanging.
      const ok = results.filter(Either.isRight).map((r) => r.right.id)
      const refused = results.filter(Either.isLeft)
      expect(ok.length + refused.length).toBe(300)
      expect(ok.length).toBeGreaterThanOrEqual(150)
      for (const r of refused) expect(r.left.message).toContain("closed")
      const after = yield* Effect.either(store.createJob(newJob()))
      expect(Either.isLeft(after) && after.left.message).toContain("closed")
      const count = yield* withStore(file, (s) =>
        Effect.map(Effect.forEach(ok, (id) => s.getJob(id)), (jobs) => jobs.filter(Option.isSome).length))
      expect(count).toBe(ok.length)
      expect((yield* withStore(file, (s) => s.listJobs({ limit: 1000 }))).jobs.length).toBe(ok.length)
    }))

  it.scopedLive("layer provides the core Store", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = path.join(dir, "jobs.db")
      const id = yield* Effect.provide(
        Effect.flatMap(Store.Store, (s) => Effect.map(s.createJob(newJob()), (c) => c.id)),
        StoreSqlite.layer({ path: file })
      )
      const found = yield* withStore(file, (s) => s.getJob(id))
      expect(Option.isSome(found)).toBe(true)
    }))
})
