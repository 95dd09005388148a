/**
 * Quick throughput measurement of one TLS session (not a test): small Run
 * messages conductor → player, small Results player → conductor, and both
 * at once, through the built package (run `npx tsc -b` first).
 *
 *   node scripts/throughput.mjs [messages]
 */
import { Names, Protocol } from "@orchestra/core"
import { Deferred, Effect, Fiber, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Certs, TransportTls } from "../dist/index.js"

const N = Number(process.argv[2] ?? 50_000)
const ref = (i) => ({ job: Names.jobId(i), key: Names.taskKey("0"), attempt: 1 })
const run = (i) => new Protocol.Run({ tasks: [{ ref: ref(i), score: Names.scoreName("echo"), params: { n: i } }] })
const results = (i) =>
  new Protocol.Results({ results: [{ ref: ref(i), outcome: "OK", response: { i: String(i) }, log: "", finishedAt: i }] })
const hello = new Protocol.Hello({ protocol: 1, player: Names.playerName("p1"), slots: 4, catalog: [] })
const ctx = (dir) => ({ baseDir: dir, log: () => {} })

const program = Effect.gen(function*() {
  // Messages are built before connecting: constructing a TaggedClass validates it, and that (not
  // the transport) costs most for these shapes (see the output).
  const t0 = performance.now()
  const runs = Array.from({ length: N }, (_, i) => run(i + 1))
  const res = Array.from({ length: N }, (_, i) => results(i + 1))
  const built = performance.now() - t0
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchestra-bench-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
  yield* Certs.init({ dir, conductor: "conductor", players: ["p1"] })
  const conductor = yield* TransportTls.makeConductor(
    { listen: { host: "127.0.0.1", port: 0 }, tls: { ca: "ca.pem", cert: "conductor.pem", key: "conductor-key.pem" } },
    ctx(dir)
  )
  const sessionD = yield* Deferred.make()
  const { address } = yield* conductor.serve(() =>
    Effect.succeed((s) => Deferred.succeed(sessionD, s).pipe(Effect.zipRight(Effect.never)))
  )
  const player = yield* TransportTls.makePlayer(
    { tls: { ca: "ca.pem", cert: "p1.pem", key: "p1-key.pem" }, conductorName: "conductor" },
    ctx(dir)
  )
  const s = yield* player.connect(address, hello)
  const cs = yield* Deferred.await(sessionD)
  const report = (what, count, received, ms, stats) => {
    if (received !== count) throw new Error(`${what}: received ${received} of ${count}`)
    console.log(
      `${what}: ${count} frames in ${ms.toFixed(0)} ms = ${Math.round(count / ms * 1000)} frames/s` +
        (stats ? ` (${stats.writes} socket writes for ${stats.framesWritten} frames)` : "")
    )
  }

  let t = 0
  // 1. conductor → player: Run
  t = performance.now()
  const recv1 = yield* s.incoming.pipe(Stream.take(N), Stream.runCount, Effect.fork)
  for (let i = 0; i < N; i++) yield* cs.send(runs[i])
  const got1 = yield* Fiber.join(recv1)
  report("Run, conductor → player", N, got1, performance.now() - t, TransportTls.connectionStats(cs))

  // 2. player → conductor: Results
  t = performance.now()
  const recv2 = yield* cs.incoming.pipe(Stream.take(N), Stream.runCount, Effect.fork)
  for (let i = 0; i < N; i++) yield* s.send(res[i])
  const got2 = yield* Fiber.join(recv2)
  report("Results, player → conductor", N, got2, performance.now() - t, { ...TransportTls.connectionStats(s) })

  // 3. both at once
  t = performance.now()
  const a = yield* s.incoming.pipe(Stream.take(N), Stream.runCount, Effect.fork)
  const b = yield* cs.incoming.pipe(Stream.take(N), Stream.runCount, Effect.fork)
  yield* Effect.all([
    Effect.forEach(runs, (m) => cs.send(m), { discard: true }),
    Effect.forEach(res, (m) => s.send(m), { discard: true })
  ], { concurrency: 2 })
  const got3 = (yield* Fiber.join(a)) + (yield* Fiber.join(b))
  report("Run + Results both ways at once", 2 * N, got3, performance.now() - t)
  console.log(`(building the ${2 * N} messages with validating constructors took ${built.toFixed(0)} ms = ${Math.round(2 * N / built * 1000)} messages/s)`)
  console.log(`(frame sizes: Run ${JSON.stringify(run(1)).length + 4} B, Results ${JSON.stringify(results(1)).length + 4} B; load average ${os.loadavg().map((x) => x.toFixed(1)).join(" ")})`)
})

Effect.runPromise(Effect.scoped(program)).then(() => process.exit(0), (e) => {
  console.error(e)
  process.exit(1)
})
