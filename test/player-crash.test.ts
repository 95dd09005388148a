/**
 * kill -9 of a player mid-task: the score's processes (the group leader and
 * a background child) are orphaned by the crash; the restarted player stops
 * them and reports the task `UNKNOWN_FAILURE` ("player restarted while the
 * score was running"), then keeps taking work. If the player does not come
 * back, its watchdog stops the orphans at their timeout.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Option } from "effect"
import * as path from "node:path"
import {
  alive,
  describeProcesses,
  manifest,
  pollUntil,
  processesWithEnv,
  sharedCluster,
  submit,
  waitJob,
  writeScoreDir
} from "./support/Harness.js"

/** A score that leaves a background child and then sleeps: two processes carrying its marker. */
const linger = (name: string, timeout: string) => ({
  script: `#!/bin/sh\nsleep 30 &\nexec sleep 30\n`,
  manifest: manifest({
    name,
    interface: "env",
    parameters: { type: "object", additionalProperties: false, properties: {} },
    environment: { timeout }
  })
})

const shared = sharedCluster("player-crash", (dir) => {
  const scores = writeScoreDir(path.join(dir, "scores"), {
    linger: linger("linger", "10m"),
    "linger-4s": linger("linger-4s", "4s")
  })
  return {
    options: {
      players: [
        { name: "drum", scores, slots: 2, config: { killGrace: "1s" } },
        { name: "tabla", scores, slots: 2, config: { killGrace: "1s" } }
      ]
    }
  }
})
const c = shared.cluster

const scoreProcesses = (player: string, id: number) => processesWithEnv([`ORC_TASK_ID=${id}/0/1`, `ORC_PLAYER=${player}`]).filter(alive)

const waitForProcesses = (player: string, id: number, n: number) =>
  pollUntil(
    `${n} processes of task ${id}/0/1 on ${player}`,
    Effect.sync(() => {
      const ps = scoreProcesses(player, id)
      return ps.length >= n ? Option.some(ps) : Option.none()
    })
  )

const waitGone = (player: string, id: number, timeout: number) =>
  pollUntil(
    `the processes of task ${id}/0/1 on ${player} to be gone`,
    Effect.sync(() => (scoreProcesses(player, id).length === 0 ? Option.some(true) : Option.none())),
    { timeout, interval: 200, describe: () => describeProcesses(scoreProcesses(player, id)) }
  )

describe("player crash", () => {
  it.live("the restarted player stops the orphaned score and reports UNKNOWN_FAILURE, then keeps working", () =>
    Effect.gen(function*() {
      const id = yield* submit(c(), { score: "linger", players: ["drum"], scope: "one", params: {} })
      const procs = yield* waitForProcesses("drum", id, 2)
      yield* c().stopPlayer("drum", "SIGKILL")
      // the crash leaves them running: orphans
      yield* Effect.sleep(Duration.seconds(1))
      expect(procs.filter(alive)).toEqual(procs)
      expect((yield* c().status(id)).pipe(Option.map((s) => s.status), Option.getOrUndefined)).toBe("PENDING")
      yield* c().startPlayer("drum")
      yield* waitGone("drum", id, 15_000)
      const s = yield* waitJob(c(), id, Duration.seconds(30))
      expect(s.status).toBe("FAIL")
      expect(s.players).toEqual({
        drum: { status: "UNKNOWN_FAILURE", response: { error: "player restarted while the score was running" } }
      })
      const next = yield* submit(c(), { score: "echo", players: ["drum"], scope: "one", params: { message: "still here" } })
      const n = yield* waitJob(c(), next, Duration.seconds(30))
      expect(n.status).toBe("OK")
      expect(n.players["drum"]?.response["message"]).toBe("still here")
    }).pipe(shared.withLogs))

  it.live("if the player does not come back, its watchdog stops the orphans at their timeout", () =>
    Effect.gen(function*() {
      const id = yield* submit(c(), { score: "linger-4s", players: ["tabla"], scope: "one", params: {} })
      const procs = yield* waitForProcesses("tabla", id, 2)
      const spawnedAt = Date.now()
      yield* c().stopPlayer("tabla", "SIGKILL")
      yield* Effect.sleep(Duration.millis(500))
      expect(procs.filter(alive)).toEqual(procs)
      // limit: timeout 4 s + 2 × killGrace 1 s after the spawn; `sleep 30` would outlive it
      yield* waitGone("tabla", id, 20_000)
      const goneAfter = Date.now() - spawnedAt
      expect(goneAfter).toBeLessThan(25_000)
      yield* c().startPlayer("tabla")
      const s = yield* waitJob(c(), id, Duration.seconds(30))
      expect(s.players["tabla"]?.status).toBe("UNKNOWN_FAILURE")
      expect(s.status).toBe("FAIL")
    }).pipe(shared.withLogs))
})
