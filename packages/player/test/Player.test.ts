import { Names, Protocol } from "@orchestra/core"
import { TransportMemory } from "@orchestra/transport-memory"
import { afterEach, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Queue, Ref, Scope } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Conductor from "./support/conductor.js"
import { alive, assignment, cleanup, readPid, ref, tempDir, track, trackPidFiles, waitFor, writeScore } from "./support/fixtures.js"

afterEach(cleanup)

const env = Layer.merge(TransportMemory.layer(), Conductor.quiet)

/** A conductor, score and state directories, and a started player. */
const setup = (options: Partial<Omit<Conductor.PlayerOptions, "address">> = {}) =>
  Effect.gen(function*() {
    const conductor = yield* Conductor.make
    const scores = options.scores ?? tempDir("scores")
    const state = options.state ?? tempDir("state")
    const started = yield* Conductor.startPlayer({ scores, state, address: conductor.address, ...options })
    return { conductor, scores, state, ...started }
  })

const run = (...tasks: ReadonlyArray<Protocol.Assignment>) => new Protocol.Run({ tasks })

describe("Player", () => {
  it.scopedLive("Hello carries name, slots, labels and the catalog; Run → Started → Results → Ack empties the outbox", () =>
    Effect.gen(function*() {
      const scores = tempDir("scores")
      writeScore(scores, "hello", `echo greeting=hi; echo "p=$ORC_who"`, "interface: pipe\nparameters:\n  type: object\n  properties:\n    who: { type: string }")
      fs.writeFileSync(path.join(scores, "broken.yaml"), "name: broken\ninterface: nope\n")
      writeScore(scores, "broken", "true")
      const { conductor, outbox } = yield* setup({ scores, slots: 3 })
      const s = yield* Conductor.nextSession(conductor)
      expect(s.hello.player).toBe("p1")
      expect(s.hello.slots).toBe(3)
      expect(s.hello.labels).toEqual({ role: "test" })
      expect(s.hello.catalog.map((c) => c.name)).toEqual(["hello"])
      expect(s.hello.catalog[0]!.interface).toBe("pipe")
      expect(s.hello.running).toEqual([])
      const a = assignment("hello", { who: "you" })
      yield* s.send(run(a))
      const started = yield* Conductor.nextMessage(s, Conductor.isStarted)
      expect(started.tasks[0]!.ref).toEqual(a.ref)
      const { byRef } = yield* Conductor.collectResults(s, [a.ref])
      const r = byRef.get(Names.taskRefString(a.ref))!
      expect(r.outcome).toBe("OK")
      expect(r.response).toEqual({ greeting: "hi", p: "you" })
      expect(yield* outbox.pending).toHaveLength(1)
      yield* s.send(new Protocol.Ack({ refs: [a.ref] }))
      expect(yield* Effect.promise(() => waitFor(() => Effect.runSync(outbox.pending).length === 0))).toBe(true)
    }).pipe(Effect.provide(env)))

  it.scopedLive("UNK_SCORE and INVALID_PARAMS (every violation listed) never spawn the score", () =>
    Effect.gen(function*() {
      const scores = tempDir("scores")
      const marker = path.join(scores, "marker")
      writeScore(
        scores,
        "guarded",
        `touch ${marker}`,
        [
          "interface: env",
          "parameters:",
          "  type: object",
          "  required: [path]",
          "  additionalProperties: false",
          "  properties:",
          "    path: { type: string, pattern: '^/' }",
          "    threshold: { type: integer, minimum: 1, maximum: 100 }"
        ].join("\n")
      )
      writeScore(scores, "open", `touch ${marker}`)
      const { conductor } = yield* setup({ scores })
      const s = yield* Conductor.nextSession(conductor)
      const unknown = assignment("nope")
      const invalid = assignment("guarded", { path: "relative", threshold: 500, extra: 1 })
      const missing = assignment("guarded", {})
      const reserved = assignment("open", { TASK_ID: "spoof" })
      yield* s.send(run(unknown, invalid, missing, reserved))
      const { byRef } = yield* Conductor.collectResults(s, [unknown.ref, invalid.ref, missing.ref, reserved.ref])
      const get = (a: Protocol.Assignment) => byRef.get(Names.taskRefString(a.ref))!
      expect(get(unknown).outcome).toBe("UNK_SCORE")
      expect(get(unknown).response.error).toBe('unknown score "nope"')
      expect(get(invalid).outcome).toBe("INVALID_PARAMS")
      expect(get(invalid).response.error).toBe("invalid params")
      const violations = get(invalid).response.violations as ReadonlyArray<string>
      expect(violations.length).toBeGreaterThanOrEqual(3)
      expect(violations.some((v) => v.startsWith("params.threshold:"))).toBe(true)
      expect(violations.some((v) => v.startsWith("params.path:"))).toBe(true)
      expect(violations.some((v) => v.includes("extra"))).toBe(true)
      expect(get(missing).outcome).toBe("INVALID_PARAMS")
      expect(get(reserved).outcome).toBe("INVALID_PARAMS")
      expect(get(reserved).response.violations).toEqual([
        "params.TASK_ID: name is reserved (ORC_TASK_ID is set by the player)"
      ])
      // the score is still runnable with good params, proving the marker works
      expect(fs.existsSync(marker)).toBe(false)
      const good = assignment("guarded", { path: "/tmp", threshold: 5 })
      yield* s.send(run(good))
      const ok = yield* Conductor.collectResults(s, [good.ref])
      expect(ok.byRef.get(Names.taskRefString(good.ref))!.outcome).toBe("OK")
      expect(fs.existsSync(marker)).toBe(true)
    }).pipe(Effect.provide(env)))

  it.scopedLive("never more than `slots` tasks at once, measured by the scores; extra tasks wait in FIFO order", () =>
    Effect.gen(function*() {
      const scores = tempDir("scores")
      const runDir = tempDir("running")
      const order = path.join(runDir, "order.log")
      writeScore(
        scores,
        "busy",
        [
          `echo "$ORC_n" >> ${order}`,
          `touch ${runDir}/r.$ORC_n`,
          `echo "max=$(ls ${runDir} | grep -c '^r\\.')"`,
          `sleep 0.15`,
          `echo "max2=$(ls ${runDir} | grep -c '^r\\.')"`,
          `rm ${runDir}/r.$ORC_n`
        ].join("\n"),
        "interface: pipe"
      )
      const { conductor } = yield* setup({ scores, slots: 2 })
      const s = yield* Conductor.nextSession(conductor)
      const tasks = Array.from({ length: 8 }, (_, i) => assignment("busy", { n: i }))
      yield* s.send(run(...tasks))
      const { byRef } = yield* Conductor.collectResults(s, tasks.map((t) => t.ref), { ms: 20_000 })
      const seen = tasks.flatMap((t) => {
        const r = byRef.get(Names.taskRefString(t.ref))!
        expect(r.outcome).toBe("OK")
        return [Number(r.response.max), Number(r.response.max2)]
      })
      expect(Math.max(...seen)).toBeLessThanOrEqual(2)
      expect(Math.max(...seen)).toBe(2)
      // FIFO: a task never starts before one queued ahead of it by two (2 slots)
      const started = fs.readFileSync(order, "utf8").trim().split("\n").map(Number)
      expect(started).toHaveLength(8)
      started.forEach((n, position) => expect(Math.abs(n - position)).toBeLessThanOrEqual(1))
    }).pipe(Effect.provide(env)))

  it.scopedLive("with one slot tasks run strictly in the order assigned", () =>
    Effect.gen(function*() {
      const scores = tempDir("scores")
      const order = path.join(tempDir("order"), "order.log")
      writeScore(scores, "seq", `echo "$ORC_n" >> ${order}`)
      const { conductor } = yield* setup({ scores, slots: 1 })
      const s = yield* Conductor.nextSession(conductor)
      const tasks = Array.from({ length: 10 }, (_, i) => assignment("seq", { n: i }))
      yield* s.send(run(...tasks.slice(0, 5)))
      yield* s.send(run(...tasks.slice(5)))
      yield* Conductor.collectResults(s, tasks.map((t) => t.ref))
      expect(fs.readFileSync(order, "utf8").trim().split("\n").map(Number)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    }).pipe(Effect.provide(env)))

  it.scopedLive("dedup: a re-sent Run is not run again, while running or after it ended (its result is sent again)", () =>
    Effect.gen(function*() {
      const scores = tempDir("scores")
      const count = path.join(tempDir("count"), "runs")
      writeScore(scores, "once", `echo x >> ${count}; sleep 0.3; echo v=1`, "interface: pipe")
      const { conductor } = yield* setup({ scores })
      const s = yield* Conductor.nextSession(conductor)
      const a = assignment("once")
      yield* s.send(run(a, a))
      yield* Conductor.nextMessage(s, Conductor.isStarted)
      yield* s.send(run(a))
      const first = yield* Conductor.collectResults(s, [a.ref])
      expect(first.all).toHaveLength(1)
      yield* s.send(run(a))
      const again = yield* Conductor.collectResults(s, [a.ref])
      expect(again.all).toHaveLength(1)
      expect(again.all[0]).toEqual(first.all[0])
      expect(fs.readFileSync(count, "utf8").trim().split("\n")).toHaveLength(1)
    }).pipe(Effect.provide(env)))

  it.scopedLive("cancel: running → group killed, CANCELLED; queued → CANCELLED at once, never runs; unknown → CANCELLED", () =>
    Effect.gen(function*() {
      const scores = tempDir("scores")
      const pids = tempDir("pids")
      writeScore(scores, "long", `sleep 30 & echo $! > ${pids}/$ORC_n.gc.pid; echo $$ > ${pids}/$ORC_n.pid; wait`)
      const { conductor, player } = yield* setup({ scores, slots: 1 })
      const s = yield* Conductor.nextSession(conductor)
      const running = assignment("long", { n: 1 })
      const queued = assignment("long", { n: 2 })
      const unknown = ref()
      yield* s.send(run(running, queued))
      yield* Conductor.nextMessage(s, Conductor.isStarted)
      yield* Effect.promise(() => waitFor(() => fs.existsSync(path.join(pids, "1.gc.pid"))))
      trackPidFiles(pids)
      const pid = readPid(path.join(pids, "1.pid"))!
      const gc = readPid(path.join(pids, "1.gc.pid"))!
      const status = yield* player.status
      expect(status.running).toEqual([running.ref])
      expect(status.queued).toEqual([queued.ref])
      yield* s.send(new Protocol.Cancel({ refs: [queued.ref, unknown, running.ref] }))
      const { byRef } = yield* Conductor.collectResults(s, [running.ref, queued.ref, unknown])
      expect(byRef.get(Names.taskRefString(running.ref))!.outcome).toBe("CANCELLED")
      expect(byRef.get(Names.taskRefString(queued.ref))!.outcome).toBe("CANCELLED")
      expect(byRef.get(Names.taskRefString(unknown))!.outcome).toBe("CANCELLED")
      expect(yield* Effect.promise(() => waitFor(() => !alive(pid) && !alive(gc), 3000))).toBe(true)
      // the queued one never ran
      yield* Effect.sleep("200 millis")
      expect(fs.existsSync(path.join(pids, "2.pid"))).toBe(false)
    }).pipe(Effect.provide(env)))

  it.scopedLive("deadline: passed before start → TIMEOUT without spawning; reached while running → TIMEOUT, killed", () =>
    Effect.gen(function*() {
      const scores = tempDir("scores")
      const pids = tempDir("pids")
      writeScore(scores, "sleepy", `echo $$ > ${pids}/$ORC_n.pid; exec sleep 30`)
      const { conductor } = yield* setup({ scores, slots: 1 })
      const s = yield* Conductor.nextSession(conductor)
      const late = assignment("sleepy", { n: 1 }, { deadline: Date.now() - 1000 })
      const soon = assignment("sleepy", { n: 2 }, { deadline: Date.now() + 500 })
      yield* s.send(run(late, soon))
      const { byRef } = yield* Conductor.collectResults(s, [late.ref, soon.ref])
      trackPidFiles(pids)
      expect(byRef.get(Names.taskRefString(late.ref))!.outcome).toBe("TIMEOUT")
      expect(fs.existsSync(path.join(pids, "1.pid"))).toBe(false)
      expect(byRef.get(Names.taskRefString(soon.ref))!.outcome).toBe("TIMEOUT")
      const pid = readPid(path.join(pids, "2.pid"))!
      expect(alive(pid)).toBe(false)
    }).pipe(Effect.provide(env)))

  it.scopedLive("a lost session: the task keeps running; its result comes after the reconnect", () =>
    Effect.gen(function*() {
      const scores = tempDir("scores")
      writeScore(scores, "slowish", `sleep 0.5; echo done=yes`, "interface: pipe")
      const { conductor } = yield* setup({ scores })
      const s1 = yield* Conductor.nextSession(conductor)
      const a = assignment("slowish")
      yield* s1.send(run(a))
      yield* Conductor.nextMessage(s1, Conductor.isStarted)
      yield* s1.close("test drops the session")
      const s2 = yield* Conductor.nextSession(conductor)
      // still running when it reconnected (or already done: then it is in the outbox)
      const { byRef } = yield* Conductor.collectResults(s2, [a.ref])
      expect(byRef.get(Names.taskRefString(a.ref))!.response).toEqual({ done: "yes" })
    }).pipe(Effect.provide(env)))

  it.scopedLive("unacknowledged results are sent again after resendInterval, until acked", () =>
    Effect.gen(function*() {
      const scores = tempDir("scores")
      writeScore(scores, "quick", `echo a=1`, "interface: pipe")
      const { conductor, outbox } = yield* setup({ scores, resendIntervalMs: 200 })
      const s = yield* Conductor.nextSession(conductor)
      const a = assignment("quick")
      yield* s.send(run(a))
      yield* Conductor.collectResults(s, [a.ref])
      const again = yield* Conductor.collectResults(s, [a.ref], { ms: 3000 })
      expect(again.all[0]!.response).toEqual({ a: "1" })
      yield* s.send(new Protocol.Ack({ refs: [a.ref] }))
      yield* Effect.promise(() => waitFor(() => Effect.runSync(outbox.pending).length === 0))
      // drain what was in flight, then nothing more arrives
      yield* Effect.sleep("150 millis")
      yield* Queue.takeAll(s.messages)
      yield* Effect.sleep("600 millis")
      const later = yield* Queue.takeAll(s.messages)
      expect([...later].filter((m) => m._tag === "Results")).toEqual([])
    }).pipe(Effect.provide(env)))

  it.scopedLive("the outbox survives a restart of the player: re-sent after Welcome until acked, then gone", () =>
    Effect.gen(function*() {
      const scores = tempDir("scores")
      const state = tempDir("state")
      writeScore(scores, "val", `echo "v=$ORC_n"`, "interface: pipe")
      const conductor = yield* Conductor.make
      const tasks = Array.from({ length: 5 }, (_, i) => assignment("val", { n: i }))

      // first life: results arrive, nothing is acked
      const scope1 = yield* Scope.make()
      yield* Conductor.startPlayer({ scores, state, address: conductor.address }).pipe(Scope.extend(scope1))
      const s1 = yield* Conductor.nextSession(conductor)
      yield* s1.send(run(...tasks))
      yield* Conductor.collectResults(s1, tasks.map((t) => t.ref))
      yield* Scope.close(scope1, Exit.void)

      // second life, same state directory: everything is sent again after Welcome
      const scope2 = yield* Scope.make()
      const second = yield* Conductor.startPlayer({ scores, state, address: conductor.address }).pipe(Scope.extend(scope2))
      const s2 = yield* Conductor.nextSession(conductor)
      const { byRef } = yield* Conductor.collectResults(s2, tasks.map((t) => t.ref), { ack: true })
      tasks.forEach((t, i) => expect(byRef.get(Names.taskRefString(t.ref))!.response).toEqual({ v: String(i) }))
      yield* Effect.promise(() => waitFor(() => Effect.runSync(second.outbox.pending).length === 0))
      yield* Scope.close(scope2, Exit.void)

      // third life: nothing left
      const third = yield* Conductor.startPlayer({ scores, state, address: conductor.address })
      expect(third.outbox.recovered.results).toEqual([])
      const s3 = yield* Conductor.nextSession(conductor)
      yield* Effect.sleep("300 millis")
      const msgs = yield* Queue.takeAll(s3.messages)
      expect([...msgs].filter((m) => m._tag === "Results")).toEqual([])
    }).pipe(Effect.provide(env)))

  it.scopedLive("results are sent in messages bounded by count and size", () =>
    Effect.gen(function*() {
      const scores = tempDir("scores")
      const state = tempDir("state")
      writeScore(scores, "sized", `echo "pad=$(printf '%*s' 3000 '' | tr ' ' x)"`, "interface: pipe")
      const conductor = yield* Conductor.make
      const tasks = Array.from({ length: 7 }, () => assignment("sized"))
      const scope1 = yield* Scope.make()
      yield* Conductor.startPlayer({ scores, state, address: conductor.address }).pipe(Scope.extend(scope1))
      const s1 = yield* Conductor.nextSession(conductor)
      yield* s1.send(run(...tasks))
      yield* Conductor.collectResults(s1, tasks.map((t) => t.ref))
      yield* Scope.close(scope1, Exit.void)
      // 7 unacknowledged results of ~3 KB, sent again after Welcome: at most 3 per message by count...
      const scope2 = yield* Scope.make()
      yield* Conductor.startPlayer({ scores, state, address: conductor.address, maxResultsPerMessage: 3 }).pipe(Scope.extend(scope2))
      const s2 = yield* Conductor.nextSession(conductor)
      const sizes: Array<number> = []
      while (sizes.reduce((a, b) => a + b, 0) < 7) sizes.push((yield* Conductor.nextMessage(s2, Conductor.isResults)).results.length)
      expect(sizes).toEqual([3, 3, 1])
      yield* Scope.close(scope2, Exit.void)
      // ...and by size: ~3.3 KB each with a 7 KB bound → two per message
      yield* Conductor.startPlayer({ scores, state, address: conductor.address, maxMessageBytes: 7000 })
      const s3 = yield* Conductor.nextSession(conductor)
      const bySize: Array<number> = []
      while (bySize.reduce((a, b) => a + b, 0) < 7) bySize.push((yield* Conductor.nextMessage(s3, Conductor.isResults)).results.length)
      expect(bySize).toEqual([2, 2, 2, 1])
    }).pipe(Effect.provide(env)))

  it.scopedLive("tasks queued when the player stopped run after the restart", () =>
    Effect.gen(function*() {
      const scores = tempDir("scores")
      const state = tempDir("state")
      const pids = tempDir("pids")
      writeScore(scores, "blocker", `echo $$ > ${pids}/b.pid; exec sleep 30`)
      writeScore(scores, "after", `echo ran=yes`, "interface: pipe")
      const conductor = yield* Conductor.make
      const scope1 = yield* Scope.make()
      yield* Conductor.startPlayer({ scores, state, address: conductor.address, slots: 1 }).pipe(Scope.extend(scope1))
      const s1 = yield* Conductor.nextSession(conductor)
      const blocker = assignment("blocker")
      const waiting = assignment("after")
      yield* s1.send(run(blocker, waiting))
      yield* Conductor.nextMessage(s1, Conductor.isStarted)
      trackPidFiles(pids)
      yield* Scope.close(scope1, Exit.void)

      yield* Conductor.startPlayer({ scores, state, address: conductor.address, slots: 1 })
      const s2 = yield* Conductor.nextSession(conductor)
      expect(s2.hello.running).toEqual([waiting.ref])
      const { byRef } = yield* Conductor.collectResults(s2, [blocker.ref, waiting.ref])
      // stopped with the player: reported at the next start
      expect(byRef.get(Names.taskRefString(blocker.ref))!.outcome).toBe("UNKNOWN_FAILURE")
      expect(byRef.get(Names.taskRefString(waiting.ref))!.response).toEqual({ ran: "yes" })
    }).pipe(Effect.provide(env)))

  it.scopedLive("a refused session is retried with backoff until the conductor accepts", () =>
    Effect.gen(function*() {
      const conductor = yield* Conductor.make
      yield* Ref.set(conductor.refuse, "not on the allowlist")
      yield* Conductor.startPlayer({ scores: tempDir("scores"), state: tempDir("state"), address: conductor.address })
      yield* Effect.promise(() => waitFor(() => Effect.runSync(Ref.get(conductor.refused)) >= 3, 5000))
      yield* Ref.set(conductor.refuse, undefined)
      const s = yield* Conductor.nextSession(conductor)
      expect(s.hello.player).toBe("p1")
      expect(yield* Ref.get(conductor.refused)).toBeGreaterThanOrEqual(3)
    }).pipe(Effect.provide(env)))

  it.scopedLive("reload: a changed catalog is sent as CatalogChanged", () =>
    Effect.gen(function*() {
      const scores = tempDir("scores")
      writeScore(scores, "one", "true")
      const { conductor, player } = yield* setup({ scores })
      const s = yield* Conductor.nextSession(conductor)
      expect(s.hello.catalog.map((c) => c.name)).toEqual(["one"])
      writeScore(scores, "two", "true", "interface: json")
      yield* player.reload
      const changed = yield* Conductor.nextMessage(s, Conductor.isCatalogChanged)
      expect(changed.catalog.map((c) => [c.name, c.interface])).toEqual([["one", "env"], ["two", "json"]])
      // the new score runs
      const a = assignment("two")
      writeScore(scores, "two", `echo '{"n":2}'`, "interface: json")
      yield* player.reload
      yield* s.send(run(a))
      const { byRef } = yield* Conductor.collectResults(s, [a.ref])
      expect(byRef.get(Names.taskRefString(a.ref))!.response).toEqual({ n: 2 })
    }).pipe(Effect.provide(env)))

  it.scopedLive("recovery: a journal left with a live orphan → its group is killed, reported UNKNOWN_FAILURE", () =>
    Effect.gen(function*() {
      const { spawn } = yield* Effect.promise(() => import("node:child_process"))
      const { Outbox } = yield* Effect.promise(() => import("../src/index.js"))
      const Proc = yield* Effect.promise(() => import("../src/internal/proc.js"))
      const scores = tempDir("scores")
      const state = tempDir("state")
      writeScore(scores, "long", "exec sleep 30")
      const withPid = assignment("long")
      const markerOnly = assignment("long")
      // an orphan process group with a grandchild, as a crashed player would leave it
      const orphan = spawn("/bin/sh", ["-c", "sleep 30 & exec sleep 30"], {
        detached: true,
        stdio: "ignore",
        env: { ORC_TASK_ID: Names.taskRefString(withPid.ref), ORC_PLAYER: "p1" }
      })
      track(orphan.pid!)
      // a process whose pid was never journaled: found by its environment marker
      const unjournaled = spawn("/bin/sleep", ["30"], {
        detached: true,
        stdio: "ignore",
        env: { ORC_TASK_ID: Names.taskRefString(markerOnly.ref), ORC_PLAYER: "p1" }
      })
      track(unjournaled.pid!)
      yield* Effect.promise(() => waitFor(() => Proc.groupMembers(orphan.pid!).length === 2, 3000))
      const members = Proc.groupMembers(orphan.pid!).map((m) => m.pid)
      expect(members).toHaveLength(2)
      yield* Effect.scoped(
        Effect.gen(function*() {
          const o = yield* Outbox.make({ dir: state })
          yield* o.accept([withPid, markerOnly], Date.now())
          yield* o.start(withPid.ref, Date.now())
          yield* o.spawned(withPid.ref, orphan.pid!, Proc.readStat(orphan.pid!)!.startTime)
          yield* o.start(markerOnly.ref, Date.now())
        })
      )
      const { conductor } = yield* setup({ scores, state })
      const s = yield* Conductor.nextSession(conductor)
      expect(s.hello.running).toEqual([])
      const { byRef } = yield* Conductor.collectResults(s, [withPid.ref, markerOnly.ref])
      for (const a of [withPid, markerOnly]) {
        const r = byRef.get(Names.taskRefString(a.ref))!
        expect(r.outcome).toBe("UNKNOWN_FAILURE")
        expect(r.response).toEqual({ error: "player restarted while the score was running" })
        expect(r.log).toMatch(/stopped \d leftover process/)
      }
      for (const pid of [...members, unjournaled.pid!]) expect(alive(pid)).toBe(false)
    }).pipe(Effect.provide(env)))

  it.scopedLive("recovery never signals a recycled pid (start time differs)", () =>
    Effect.gen(function*() {
      const { spawn } = yield* Effect.promise(() => import("node:child_process"))
      const { Outbox } = yield* Effect.promise(() => import("../src/index.js"))
      const state = tempDir("state")
      const bystander = spawn("/bin/sleep", ["30"], { detached: true, stdio: "ignore", env: {} })
      track(bystander.pid!)
      const a = assignment("long")
      yield* Effect.scoped(
        Effect.gen(function*() {
          const o = yield* Outbox.make({ dir: state })
          yield* o.accept([a], Date.now())
          yield* o.start(a.ref, Date.now())
          yield* o.spawned(a.ref, bystander.pid!, "1")
        })
      )
      const { conductor } = yield* setup({ state })
      const s = yield* Conductor.nextSession(conductor)
      const { byRef } = yield* Conductor.collectResults(s, [a.ref])
      expect(byRef.get(Names.taskRefString(a.ref))!.outcome).toBe("UNKNOWN_FAILURE")
      expect(alive(bystander.pid!)).toBe(true)
    }).pipe(Effect.provide(env)))
})
