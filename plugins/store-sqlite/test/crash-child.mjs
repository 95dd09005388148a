// Child process of the crash test (test/Crash.test.ts). Uses the built store
// (`npx tsc -b` first). Opens the database at argv[2] and, until killed,
// runs job lifecycles on 24 fibers at once, printing one line per
// acknowledged (committed) write:
//
//   C <id>            createJob committed
//   E <id> <outcome>  recordEnd committed and won
//   D <id> <won>      a duplicate recordEnd of the same attempt (must be false)
//   F <id> <state>    finishJob committed
//
// stdout is a pipe, written synchronously, so a line printed is a line the
// parent will read even if this process is killed right after.
import { Job, Names } from "@orchestra/core"
import { StoreSqlite } from "@orchestra/store-sqlite"
import { Effect, Schema } from "effect"
import { writeSync } from "node:fs"

const file = process.argv[2]
const round = Number(process.argv[3] ?? 0)
const say = (line) => writeSync(1, line + "\n")
const deadline = Date.now() + 60_000
const request = Schema.decodeUnknownSync(Job.JobRequest)({
  score: "crash-test",
  policy: { name: "all-of" },
  params: { round, note: "ünïcødé 😀" }
})
const outcomes = ["OK", "FAIL", "TIMEOUT"]

const lifecycle = (store, worker, n) =>
  Effect.gen(function*() {
    const player = Names.playerName(`p${worker}`)
    const { id } = yield* store.createJob({ request, targets: [player], createdAt: Date.now() })
    say(`C ${id}`)
    const ref = { job: id, key: Names.taskKey(player), attempt: 1 }
    yield* store.recordDispatch({ ref, player, at: Date.now() })
    const outcome = outcomes[(id + n) % outcomes.length]
    const ended = { ref, player, outcome, response: { id: String(id), note: "ü😀" }, log: `log of ${id}`, finishedAt: Date.now() }
    if (yield* store.recordEnd(ended)) say(`E ${id} ${outcome}`)
    const again = yield* store.recordEnd({ ...ended, outcome: "CANCELLED", response: {} })
    say(`D ${id} ${again}`)
    const state = outcome === "OK" ? "OK" : "FAIL"
    yield* store.finishJob(id, state, Date.now())
    say(`F ${id} ${state}`)
  })

const worker = (store, w) =>
  Effect.gen(function*() {
    for (let n = 0; n < 100_000 && Date.now() < deadline; n++) yield* lifecycle(store, w, n)
  })

const main = Effect.gen(function*() {
  const store = yield* StoreSqlite.make({ path: file })
  say("READY")
  yield* Effect.all(Array.from({ length: 24 }, (_, w) => worker(store, w)), { concurrency: "unbounded", discard: true })
})

Effect.runPromise(Effect.scoped(main)).then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(String(e) + "\n")
    process.exit(1)
  }
)
