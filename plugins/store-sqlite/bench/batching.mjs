// Group-commit benchmark of the SQLite store (run on demand, never as a test):
//
//   npx tsc -b && node bench/batching.mjs [jobs=20000] [FULL|NORMAL]
//
// Issues, concurrently, the whole life of `jobs` jobs — createJob,
// recordDispatch, recordEnd, finishJob, one after the other within each
// job, all jobs at once — against a fresh database file, and reports the
// wall and CPU time, the batches the writer committed, and a check that
// every job ended as recorded. For scale it first runs the same fibers
// against a store that does nothing (`floor`): what the caller's own fibers
// cost on this machine at this moment, whatever the store.
import { Job, Names } from "@orchestra/core"
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { StoreSqlite } from "../dist/index.js"

const jobs = Number(process.argv[2] ?? 20_000)
const synchronous = process.argv[3] ?? "FULL"
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchestra-bench-"))
const batches = []

const request = Schema.decodeUnknownSync(Job.JobRequest)({
  score: "disk-usage",
  policy: { name: "one-of" },
  params: { path: "/var", threshold: 90 }
})

const lifecycle = (store, i) =>
  Effect.gen(function*() {
    const player = Names.playerName(`player-${i % 50}`)
    const { id } = yield* store.createJob({ request, targets: [player], createdAt: 1_700_000_000_000 + i })
    const ref = { job: id, key: Names.taskKey("0"), attempt: 1 }
    yield* store.recordDispatch({ ref, player, at: 1_700_000_000_000 + i })
    const won = yield* store.recordEnd({
      ref,
      player,
      outcome: "OK",
      response: { used_percent: "42" },
      log: "",
      finishedAt: 1_700_000_000_100 + i
    })
    if (!won) return yield* Effect.dieMessage(`result of job ${id} refused`)
    yield* store.finishJob(id, "OK", 1_700_000_000_200 + i)
    return id
  })

/** The same calls against a store that does nothing: the cost of the calling fibers alone. */
const floor = Effect.gen(function*() {
  let n = 0
  const store = {
    createJob: () => Effect.sync(() => ({ id: Names.jobId(++n), existing: false })),
    recordDispatch: () => Effect.void,
    recordEnd: () => Effect.succeed(true),
    finishJob: () => Effect.void
  }
  yield* Effect.all(Array.from({ length: 500 }, (_, i) => lifecycle(store, i)), { concurrency: "unbounded" })
  const cpu = process.cpuUsage()
  const started = performance.now()
  yield* Effect.all(Array.from({ length: jobs }, (_, i) => lifecycle(store, i)), { concurrency: "unbounded" })
  const used = process.cpuUsage(cpu)
  return { millis: Math.round(performance.now() - started), cpuMillis: Math.round((used.user + used.system) / 1000) }
})

const main = Effect.gen(function*() {
  const noop = yield* floor
  const store = yield* StoreSqlite.make(
    { path: "bench.db", synchronous },
    { baseDir: dir, onBatch: (b) => batches.push(b) }
  )
  // Warm up (JIT, prepared statements), then measure on a clean slate of batches.
  yield* Effect.all(Array.from({ length: 500 }, (_, i) => lifecycle(store, i)), { concurrency: "unbounded" })
  batches.length = 0
  const cpu = process.cpuUsage()
  const started = performance.now()
  const ids = yield* Effect.all(Array.from({ length: jobs }, (_, i) => lifecycle(store, i)), { concurrency: "unbounded" })
  const millis = performance.now() - started
  const used = process.cpuUsage(cpu)
  const unfinished = yield* store.unfinishedJobs
  const sample = yield* store.getJob(ids[ids.length - 1])
  const ok = unfinished.length === 0 && new Set(ids).size === jobs && sample._tag === "Some" && sample.value.state === "OK"
  const sizes = batches.map((b) => b.size)
  const writes = sizes.reduce((a, b) => a + b, 0)
  const inBatches = batches.reduce((a, b) => a + b.millis, 0)
  console.log(
    JSON.stringify({
      jobs,
      synchronous,
      writes,
      millis: Math.round(millis),
      cpuMillis: Math.round((used.user + used.system) / 1000),
      writesPerSecond: Math.round(writes / (millis / 1000)),
      batches: batches.length,
      largestBatch: Math.max(...sizes),
      meanBatch: Math.round(writes / batches.length),
      millisInTransactions: Math.round(inBatches),
      allRetriedBatches: batches.filter((b) => !b.committed).length,
      consistent: ok,
      floor: noop
    })
  )
})

Effect.runPromise(Effect.scoped(main)).then(
  () => fs.rmSync(dir, { recursive: true, force: true }),
  (e) => {
    console.error(e)
    fs.rmSync(dir, { recursive: true, force: true })
    process.exitCode = 1
  }
)
