import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { endOfValue, serve } from "../src/AudienceSocket.js"
import { FakePlayer, harness, p, waitFor, waitJob } from "./support.js"

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "orchestra-audience-"))

/** Send raw bytes (in pieces, optionally half-closing), return every byte of the reply. */
const ask = (socket: string, pieces: ReadonlyArray<string>, halfClose = false) =>
  Effect.async<string, Error>((resume) => {
    const c = net.connect(socket)
    let out = ""
    c.setEncoding("utf8")
    c.on("connect", () => {
      let i = 0
      const next = () => {
        if (i < pieces.length) {
          c.write(pieces[i++]!)
          setTimeout(next, 5)
        } else if (halfClose) c.end()
      }
      next()
    })
    c.on("data", (d: string) => (out += d))
    c.on("end", () => resume(Effect.succeed(out)))
    c.on("error", (e) => resume(Effect.fail(e)))
  })

const setup = Effect.gen(function*() {
  const dir = tempDir()
  yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
  const socket = path.join(dir, "run", "conductor.sock")
  const h = yield* harness({ allowlist: ["p1", "p2"], audienceSocket: { path: socket, mode: 0o600 } })
  return { h, socket, dir }
})

describe("AudienceSocket", () => {
  it.scopedLive("queue and status replies, byte for byte", () =>
    Effect.gen(function*() {
      const { h, socket } = yield* setup
      expect(fs.statSync(socket).mode & 0o777).toBe(0o600)
      yield* new FakePlayer(p("p1"), () => ({ outcome: "OK", response: { used: "42%" } })).connect(h.hub)
      yield* new FakePlayer(p("p2"), () => ({ outcome: "FAIL", response: { why: "disk" } })).connect(h.hub)
      expect(yield* ask(socket, [`{"op":"queue","score":"noop","players":["p1"],"scope":"one","params":{"a":"1"}}\n`])).toBe(`["OK",1]\n`)
      yield* waitJob(h.store, 1 as never)
      expect(yield* ask(socket, [`{"op":"status","id":1}`])).toBe(
        `["OK",{"status":"OK","players":{"p1":{"status":"OK","response":{"used":"42%"}}}}]\n`
      )
      // keys are matched case-insensitively; scope all is all-of
      expect(yield* ask(socket, [`{"Op":"queue","SCORE":"noop","Players":["p1","p2"],"Scope":"all"}`])).toBe(`["OK",2]\n`)
      yield* waitJob(h.store, 2 as never)
      expect(yield* ask(socket, [`{"op":"status","Id":2}`])).toBe(
        `["OK",{"status":"PARTIAL_FAIL","players":{"p1":{"status":"OK","response":{"used":"42%"}},"p2":{"status":"FAIL","response":{"why":"disk"}}}}]\n`
      )
      // a request split over several writes, without a newline, then half-closed
      expect(yield* ask(socket, [`{"op":"sta`, `tus","id":`, `1}`], true)).toBe(
        `["OK",{"status":"OK","players":{"p1":{"status":"OK","response":{"used":"42%"}}}}]\n`
      )
    }))

  it.scopedLive("a pending job's status lists only players with a result", () =>
    Effect.gen(function*() {
      const { h, socket } = yield* setup
      const p1 = new FakePlayer(p("p1"), () => ({ outcome: "OK" }))
      yield* p1.connect(h.hub)
      expect(yield* ask(socket, [`{"op":"queue","score":"noop","players":["p1","p2"],"scope":"all"}`])).toBe(`["OK",1]\n`)
      yield* waitFor("p1's result", Effect.map(h.store.getJob(1 as never), (o) => o._tag === "Some" && o.value.attempts.some((a) => a.outcome === "OK")))
      expect(yield* ask(socket, [`{"op":"status","id":1}`])).toBe(`["OK",{"status":"PENDING","players":{"p1":{"status":"OK","response":{}}}}]\n`)
    }))

  it.scopedLive("refusals and errors", () =>
    Effect.gen(function*() {
      const { socket } = yield* setup
      const cases: ReadonlyArray<readonly [string, string]> = [
        [`{"op":"queue","players":["p1"],"scope":"one"}`, `["Error","Missing Score"]\n`],
        [`{"op":"queue","score":"noop","players":["p1"]}`, `["Error","Missing Scope"]\n`],
        [`{"op":"queue","score":"noop","scope":"one"}`, `["Error","Missing Players"]\n`],
        [`{"op":"queue","score":"noop","players":[],"scope":"one"}`, `["Error","Missing Players"]\n`],
        [`{"op":"queue","score":"noop","players":["p1","intruder"],"scope":"one"}`, `["Error","Invalid Player"]\n`],
        [`{"op":"queue","score":"noop","players":["p1"],"scope":"some"}`, `["Error","Invalid Scope \\"some\\": expected \\"one\\" or \\"all\\""]\n`],
        [`{"op":"status","id":99}`, `["Error",null]\n`],
        [`{"op":"status","id":0}`, `["Error",null]\n`],
        [`{"op":"status"}`, `["Error","Missing Id"]\n`],
        [`{"op":"dance"}`, `["Error","Unknown Op \\"dance\\""]\n`],
        [`{"score":"noop"}`, `["Error","Missing Op"]\n`],
        [`[1,2]`, `["Error","Invalid request: expected a JSON object"]\n`]
      ]
      for (const [request, reply] of cases) expect(yield* ask(socket, [request])).toBe(reply)
      const bad = yield* ask(socket, [`{"op": nope}`])
      expect(bad.startsWith(`["Error","Invalid JSON: `)).toBe(true)
      expect(bad.endsWith(`"]\n`)).toBe(true)
      const garbage = yield* ask(socket, [`hello\n`])
      expect(garbage.startsWith(`["Error","Invalid JSON: `)).toBe(true)
      // other refusals name every issue
      const policy = yield* ask(socket, [`{"op":"queue","score":"noop","players":["p1"],"policy":"fastest","options":{"x":1}}`])
      expect(policy).toBe(`["Error","invalid job request: policy.name: unknown policy plugin \\"fastest\\" (known: all-of, one-of)"]\n`)
      const params = yield* ask(socket, [`{"op":"queue","score":"noop","players":["p1"],"scope":"one","params":[1]}`])
      expect(params.startsWith(`["Error","invalid job request: params: `)).toBe(true)
    }))

  it.scopedLive("plan: the dry run of queue — the plan for the same fields, the same refusals, and nothing stored", () =>
    Effect.gen(function*() {
      const { h, socket } = yield* setup
      const p1 = new FakePlayer(p("p1"))
      yield* p1.connect(h.hub)
      yield* waitFor("p1 online", Effect.sync(() => h.conductor.engine.player(p("p1"))?.online === true))
      const reply = JSON.parse(yield* ask(socket, [`{"op":"plan","score":"noop","players":["p1","p2"],"scope":"all","params":{"a":"1"}}`])) as [string, Record<string, unknown>]
      expect(reply[0]).toBe("OK")
      expect(reply[1]).toEqual({
        score: "noop",
        policy: { name: "all-of", options: {} },
        targets: ["p1", "p2"],
        targetLabels: { p1: {}, p2: {} },
        params: { a: "1" },
        unchecked: ["p2"],
        offline: ["p2"],
        plan: {
          policy: "all-of",
          batches: [[{ key: "p1", player: "p1", candidates: ["p1"] }, { key: "p2", player: "p2", candidates: ["p2"] }]],
          finished: { state: "OK" },
          truncated: false
        }
      })
      // keys case-insensitive, scope one is one-of
      const one = JSON.parse(yield* ask(socket, [`{"OP":"plan","Score":"noop","PLAYERS":["p1","p2"],"scope":"one"}`])) as [string, { plan: { batches: unknown } }]
      expect(one[1].plan.batches).toEqual([[{ key: "0", player: "p1", candidates: ["p1", "p2"] }]])
      // the refusals of queue, byte for byte
      for (
        const body of [
          `"players":["p1"],"scope":"one"`,
          `"score":"noop","players":["p1"]`,
          `"score":"noop","scope":"one"`,
          `"score":"noop","players":["p1","intruder"],"scope":"one"`,
          `"score":"noop","players":["p1"],"policy":"fastest","options":{"x":1}`,
          `"score":"noop","players":["p1"],"scope":"one","params":[1]`
        ]
      ) {
        const refused = yield* ask(socket, [`{"op":"plan",${body}}`])
        expect(refused.startsWith(`["Error",`)).toBe(true)
        expect(refused).toBe(yield* ask(socket, [`{"op":"queue",${body}}`]))
      }
      expect((yield* h.store.listJobs({})).jobs).toEqual([])
      expect(p1.received).toEqual([])
      expect(yield* ask(socket, [`{"op":"queue","score":"noop","players":["p1"],"scope":"one"}`])).toBe(`["OK",1]\n`)
    }))

  it.scopedLive("replaces a stale socket file, refuses a live one and a file that is not a socket", () =>
    Effect.gen(function*() {
      const { h, socket, dir } = yield* setup
      const deps = { intake: h.conductor.intake, engine: h.conductor.engine, store: h.store }
      // live: the conductor's own socket is listening there
      const live = yield* Effect.flip(Effect.scoped(serve({ path: socket }, deps)))
      expect(live.message).toContain("another process is listening")
      // stale: the socket file of a process killed with SIGKILL
      const stale = path.join(dir, "stale.sock")
      const child = spawn(process.execPath, [
        "-e",
        "require('net').createServer().listen(process.argv[1], () => console.log('ready'))",
        stale
      ], { stdio: ["ignore", "pipe", "inherit"] })
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
        })
      )
      yield* Effect.async<void>((resume) => {
        child.stdout.once("data", () => resume(Effect.void))
      })
      child.kill("SIGKILL")
      yield* Effect.async<void>((resume) => {
        if (child.exitCode !== null || child.signalCode !== null) resume(Effect.void)
        else child.once("exit", () => resume(Effect.void))
      })
      const scope = yield* Scope.make()
      expect(fs.lstatSync(stale).isSocket()).toBe(true)
      const served = yield* serve({ path: stale }, deps).pipe(Scope.extend(scope))
      expect(served.path).toBe(stale)
      expect(yield* ask(stale, [`{"op":"status","id":5}`])).toBe(`["Error",null]\n`)
      yield* Scope.close(scope, Exit.void)
      expect(fs.existsSync(stale)).toBe(false)
      // not a socket
      const plain = path.join(dir, "plain")
      fs.writeFileSync(plain, "x")
      const notSocket = yield* Effect.flip(Effect.scoped(serve({ path: plain }, deps)))
      expect(notSocket.message).toContain("not a socket")
      expect(fs.readFileSync(plain, "utf8")).toBe("x")
    }))

  it("endOfValue finds where the first JSON value ends", () => {
    expect(endOfValue(`{"a":"}"}rest`)).toBe(9)
    expect(endOfValue(`{"a":[1,{"b":2}]`)).toBe(-1)
    expect(endOfValue(`  [1,2] `)).toBe(7)
    expect(endOfValue(`"x\\"y" `)).toBe(6)
    expect(endOfValue(`123`)).toBe(-1)
    expect(endOfValue(`123 `)).toBe(3)
    expect(endOfValue(`{"a":"\\\\"}`)).toBe(10)
  })
})
