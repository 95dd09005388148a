import { Names, Protocol, Transport } from "@orchestra/core"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Queue } from "effect"
import * as Conductor from "./support/conductor.js"
import { assignment, cleanup, tempDir, writeScore } from "./support/fixtures.js"

afterEach(cleanup)

const RUNS = 200
const LINES = 5000

describe("pipe output is read completely", () => {
  it.scopedLive(`a score printing ${LINES} key=value lines and exiting at once: complete in all of ${RUNS} runs`, () =>
    Effect.gen(function*() {
      const scores = tempDir("scores")
      // awk writes everything and exits immediately: the output is still in the pipe when the process is gone
      writeScore(
        scores,
        "many",
        `exec awk -v n=${LINES} -v t="$ORC_TASK_ID" 'BEGIN { for (i = 1; i <= n; i++) print "k" i "=v" i; print "task=" t; print "a line that is not protocol" }'`,
        "interface: pipe"
      )
      const { sessions, transport } = yield* Conductor.direct
      yield* Conductor.startPlayer({ scores, state: tempDir("state"), address: "direct", slots: 8 }).pipe(
        Effect.provideService(Transport.PlayerTransport, transport)
      )
      const s = yield* Queue.take(sessions)
      const tasks = Array.from({ length: RUNS }, () => assignment("many"))
      // in batches, as a conductor would dispatch them
      for (let i = 0; i < RUNS; i += 25) yield* s.send(new Protocol.Run({ tasks: tasks.slice(i, i + 25) }))
      const { byRef } = yield* Conductor.collectResults(s, tasks.map((t) => t.ref), { ack: true, ms: 120_000 })
      let complete = 0
      for (const t of tasks) {
        const r = byRef.get(Names.taskRefString(t.ref))!
        expect(r.outcome).toBe("OK")
        const keys = Object.keys(r.response)
        expect(keys).toHaveLength(LINES + 1)
        expect(r.response[`k1`]).toBe("v1")
        expect(r.response[`k${LINES}`]).toBe(`v${LINES}`)
        expect(r.response.task).toBe(Names.taskRefString(t.ref))
        expect(r.log).toBe("a line that is not protocol\n")
        let ok = true
        for (let i = 1; i <= LINES; i++) if (r.response[`k${i}`] !== `v${i}`) ok = false
        if (ok) complete++
      }
      expect(complete).toBe(RUNS)
    }).pipe(Effect.provide(Conductor.quiet)), 120_000)
})
