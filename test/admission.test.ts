/**
 * Who may connect, on one cluster: certificates for another name, from
 * another CA, none at all, revoked (`orchestra certs revoke` + SIGHUP), and
 * names not on the allowlist are refused — the player never comes online
 * and the conductor's log names the reason; clients claiming a connected
 * player's name cannot take over its session. Then SIGHUP reloads of the
 * allowlist: a removed player's running one-of task ends `HOST_ERROR` and
 * fails over; its queued tasks go to the players left, or end `HOST_ERROR`
 * when there is none.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import {
  outcomes,
  players,
  pollUntil,
  runCli,
  sharedCluster,
  showCli,
  statusOf,
  submit,
  tail,
  waitForLog,
  waitJob
} from "./support/Harness.js"
import { probe } from "./support/TlsProbe.js"

const tlsOf = (cert: string) => ({ ca: "../pki/ca.pem", cert: `${cert}.pem`, key: `${cert}-key.pem` })

const everyone = ["oboe", "flute", "piccolo", "wrongname", "foreign", "bassoon", "horn", "impostor", "probe"]

const shared = sharedCluster("admission", () => ({
  options: {
    players: [
      { name: "oboe" },
      { name: "flute", slots: 1 },
      { name: "piccolo", slots: 1 },
      // presents the certificate of "stranger"
      { name: "wrongname", config: { tls: tlsOf("../pki/stranger") } },
      // a certificate from another CA
      { name: "foreign", config: { tls: tlsOf("../other-pki/foreign") } },
      { name: "bassoon" },
      { name: "horn" },
      { name: "outsider" },
      // claims oboe's name with a valid certificate of its own name
      { name: "impostor", config: { name: "oboe", tls: tlsOf("../pki/impostor") } }
    ],
    extraCertificates: ["stranger", "probe"],
    // everyone but "outsider"
    allow: everyone
  },
  start: ["oboe", "flute", "piccolo"]
}))
const c = shared.cluster

const conductorLog = () => path.join(c().dir, "conductor", "conductor.log")
const playerLog = (name: string) => path.join(c().dir, name, `${name}.log`)
const countLines = (file: string, ...needles: ReadonlyArray<string>) =>
  fs.readFileSync(file, "utf8").split("\n").filter((l) => needles.every((n) => l.includes(n))).length

/** New lines in the conductor's log containing every needle, after `from` lines. */
const waitForNewLine = (from: number, ...needles: ReadonlyArray<string>) =>
  pollUntil(
    `a new conductor log line with ${needles.join(" & ")}`,
    Effect.sync(() => {
      const lines = fs.readFileSync(conductorLog(), "utf8").split("\n").slice(from)
      const hit = lines.find((l) => needles.every((n) => l.includes(n)))
      return hit === undefined ? Option.none() : Option.some(hit)
    }),
    { timeout: 20_000, describe: () => tail(conductorLog(), 15) }
  )

const lineCount = () => fs.readFileSync(conductorLog(), "utf8").split("\n").length - 1

/** The player stays offline for a while (several reconnection attempts). */
const staysOffline = (name: string, ms = 1500) =>
  Effect.gen(function*() {
    const deadline = Date.now() + ms
    while (Date.now() < deadline) {
      const ps = yield* players(c())
      expect(ps[name]?.online ?? false, `${name} came online`).toBe(false)
      yield* Effect.sleep(Duration.millis(250))
    }
  })

/** oboe is online, was never disconnected since `connectedBefore`, and runs a job. */
const oboeStillWorks = (connectedBefore: number) =>
  Effect.gen(function*() {
    const ps = yield* players(c())
    expect(ps["oboe"]?.online).toBe(true)
    expect(countLines(conductorLog(), "player connected", "player=oboe")).toBe(connectedBefore)
    expect(countLines(conductorLog(), "player disconnected", "player=oboe")).toBe(0)
    const id = yield* submit(c(), { score: "echo", players: ["oboe"], scope: "one", params: { message: "still oboe" } })
    const s = yield* waitJob(c(), id, Duration.seconds(30))
    expect(s).toEqual({ status: "OK", players: { oboe: { status: "OK", response: { message: "still oboe", length: "10" } } } })
  })

const setAllowlist = (names: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const from = lineCount()
    yield* c().writeAllowlist(names)
    yield* c().signal(c().conductor()!, "SIGHUP")
    yield* waitForNewLine(from, "players allowlist reloaded")
  })

const otherCa = Effect.gen(function*() {
  const dir = path.join(c().dir, "other-pki")
  if (fs.existsSync(path.join(dir, "ca.pem"))) return dir
  const r = yield* runCli(["certs", "init", "--dir", dir, "--conductor", "conductor", "--player", "foreign", "--player", "oboe"])
  expect(r.code, showCli(r)).toBe(0)
  return dir
})

describe("certificates", () => {
  it.live("a raw client with a valid certificate gets Welcome (the probe works); without a certificate, or with one from another CA, the handshake fails", () =>
    Effect.gen(function*() {
      const pki = c().pki
      const base = { port: c().port, ca: path.join(pki, "ca.pem"), servername: c().conductorName }
      const ok = yield* probe({ ...base, player: "probe", cert: path.join(pki, "probe.pem"), key: path.join(pki, "probe-key.pem") })
      expect(ok.frames.map((f) => f._tag), JSON.stringify(ok)).toContain("Welcome")

      const from = lineCount()
      const none = yield* probe({ ...base, player: "probe" })
      expect(none.frames, JSON.stringify(none)).toEqual([])
      expect(none.error ?? (none.closedByPeer ? "closed" : undefined), JSON.stringify(none)).toBeDefined()
      yield* waitForNewLine(from, "TLS handshake with", "failed")

      const other = yield* otherCa
      const from2 = lineCount()
      const foreign = yield* probe({ ...base, player: "foreign", cert: path.join(other, "foreign.pem"), key: path.join(other, "foreign-key.pem") })
      expect(foreign.frames, JSON.stringify(foreign)).toEqual([])
      expect(foreign.error ?? (foreign.closedByPeer ? "closed" : undefined), JSON.stringify(foreign)).toBeDefined()
      const line = yield* waitForNewLine(from2, "TLS handshake with", "failed")
      expect(line).toMatch(/certificate/i)
      const ps = yield* players(c())
      expect(ps["foreign"]?.online ?? false).toBe(false)
    }).pipe(shared.withLogs))

  it.live("a handshake refused for its certificate is logged with the peer's address", () =>
    Effect.gen(function*() {
      const other = yield* otherCa
      const from = lineCount()
      const r = yield* probe({
        port: c().port,
        ca: path.join(c().pki, "ca.pem"),
        servername: c().conductorName,
        player: "foreign",
        cert: path.join(other, "foreign.pem"),
        key: path.join(other, "foreign-key.pem")
      })
      expect(r.frames).toEqual([])
      const line = yield* waitForNewLine(from, "TLS handshake with", "failed")
      expect(line).toMatch(/TLS handshake with 127\.0\.0\.1:[0-9]+ failed/)
    }).pipe(shared.withLogs))

  it.live("a player presenting a certificate for another name is refused, and the log names both names", () =>
    Effect.gen(function*() {
      const from = lineCount()
      yield* c().startPlayer("wrongname")
      const line = yield* waitForNewLine(from, "refused player \\\"wrongname\\\"")
      expect(line).toContain("stranger")
      yield* staysOffline("wrongname")
      yield* waitForLog(playerLog("wrongname"), "session refused")
      yield* c().stopPlayer("wrongname")
    }).pipe(shared.withLogs))

  it.live("a player whose certificate comes from another CA never comes online", () =>
    Effect.gen(function*() {
      yield* otherCa
      const from = lineCount()
      yield* c().startPlayer("foreign")
      const line = yield* waitForNewLine(from, "TLS handshake with", "failed")
      expect(line).toMatch(/certificate/i)
      yield* staysOffline("foreign")
      // the player's own log says why it cannot connect
      yield* waitForLog(playerLog("foreign"), "cannot connect")
      yield* c().stopPlayer("foreign")
    }).pipe(shared.withLogs))

  it.live("a player not on the allowlist is refused, and the log says so", () =>
    Effect.gen(function*() {
      const from = lineCount()
      yield* c().startPlayer("outsider")
      yield* waitForNewLine(from, "outsider", "not on the allowlist")
      yield* staysOffline("outsider")
      yield* waitForLog(playerLog("outsider"), "not on the allowlist")
      yield* c().stopPlayer("outsider")
    }).pipe(shared.withLogs))

  it.live("a revoked certificate (orchestra certs revoke + SIGHUP) is refused, though it was accepted before", () =>
    Effect.gen(function*() {
      const pki = c().pki
      const base = { port: c().port, ca: path.join(pki, "ca.pem"), servername: c().conductorName, player: "bassoon" }
      const withCert = { ...base, cert: path.join(pki, "bassoon.pem"), key: path.join(pki, "bassoon-key.pem") }
      const before = yield* probe(withCert)
      expect(before.frames.map((f) => f._tag), JSON.stringify(before)).toEqual(["Welcome"])
      const r = yield* runCli(["certs", "revoke", "--dir", pki, "bassoon"])
      expect(r.code, showCli(r)).toBe(0)
      expect(r.stdout).toContain("revoked \"bassoon\"")
      const reload = lineCount()
      yield* c().signal(c().conductor()!, "SIGHUP")
      yield* waitForNewLine(reload, "reloaded the TLS material")
      const from = lineCount()
      const after = yield* probe(withCert)
      expect(after.frames, JSON.stringify(after)).toEqual([])
      expect(yield* waitForNewLine(from, "TLS handshake with", "failed")).toMatch(/revoked/i)
      // the player itself never comes online again
      const from2 = lineCount()
      yield* c().startPlayer("bassoon")
      expect(yield* waitForNewLine(from2, "TLS handshake with", "failed")).toMatch(/revoked/i)
      yield* staysOffline("bassoon")
      yield* c().stopPlayer("bassoon")
    }).pipe(shared.withLogs))

  it.live("revoking the certificate of a connected player (certs revoke + SIGHUP) ends its session", () =>
    Effect.gen(function*() {
      yield* c().startPlayer("horn")
      yield* c().waitForPlayers(["horn"])
      const r = yield* runCli(["certs", "revoke", "--dir", c().pki, "horn"])
      expect(r.code, showCli(r)).toBe(0)
      const reload = lineCount()
      yield* c().signal(c().conductor()!, "SIGHUP")
      yield* waitForNewLine(reload, "reloaded the TLS material")
      yield* pollUntil(
        "horn to be disconnected after its certificate was revoked",
        Effect.map(players(c()), (ps) => (ps["horn"]?.online === true ? Option.none() : Option.some(true))),
        { timeout: 5000 }
      )
    }).pipe(Effect.ensuring(c().stopPlayer("horn")), shared.withLogs))

  it.live("clients claiming a connected player's name cannot take over its session; the original keeps working", () =>
    Effect.gen(function*() {
      const other = yield* otherCa
      const connectedBefore = countLines(conductorLog(), "player connected", "player=oboe")
      expect(connectedBefore).toBe(1)

      // a player process with a valid certificate for another name ("impostor") that says it is oboe
      const from = lineCount()
      yield* c().startPlayer("impostor")
      const wrongCert = yield* waitForNewLine(from, "refused player \\\"oboe\\\"", "impostor")
      expect(wrongCert).toContain("the certificate presented carries")
      yield* waitForLog(playerLog("impostor"), "session refused")
      yield* oboeStillWorks(connectedBefore)
      yield* c().stopPlayer("impostor")

      const pki = c().pki
      const base = { port: c().port, ca: path.join(pki, "ca.pem"), servername: c().conductorName, player: "oboe" }
      // oboe's name from another CA: the handshake fails
      const fromCa = lineCount()
      const foreignOboe = yield* probe({ ...base, cert: path.join(other, "oboe.pem"), key: path.join(other, "oboe-key.pem") })
      expect(foreignOboe.frames, JSON.stringify(foreignOboe)).toEqual([])
      yield* waitForNewLine(fromCa, "TLS handshake with", "failed")
      // another valid certificate (probe's): refused, naming the certificate's name
      const claimed = yield* probe({ ...base, cert: path.join(pki, "probe.pem"), key: path.join(pki, "probe-key.pem") })
      expect(claimed.frames.map((f) => f._tag), JSON.stringify(claimed)).toEqual(["Refused"])
      expect(claimed.frames[0]?.reason).toContain("\"probe\"")
      // even oboe's own certificate: a second session is refused while the first is live
      const twin = yield* probe({ ...base, cert: path.join(pki, "oboe.pem"), key: path.join(pki, "oboe-key.pem") })
      expect(twin.frames.map((f) => f._tag), JSON.stringify(twin)).toEqual(["Refused"])
      expect(twin.frames[0]?.reason).toContain("already has a live session")
      yield* oboeStillWorks(connectedBefore)
    }).pipe(shared.withLogs))
})

describe("allowlist reload (SIGHUP)", () => {
  it.live("removing a player with a running one-of task: HOST_ERROR there, then OK on another player", () =>
    Effect.gen(function*() {
      const id = yield* submit(c(), { score: "sleep", players: ["flute", "piccolo"], scope: "one", params: { seconds: 3 } })
      yield* pollUntil(
        "flute to run the task",
        Effect.map(players(c()), (ps) => (ps["flute"]?.running === 1 ? Option.some(true) : Option.none()))
      )
      yield* setAllowlist(everyone.filter((n) => n !== "flute"))
      const s = yield* waitJob(c(), id, Duration.seconds(30))
      expect(s.status).toBe("OK")
      expect(outcomes(s)).toEqual({ flute: "HOST_ERROR", piccolo: "OK" })
      const ps = yield* players(c())
      expect(ps["flute"]?.online ?? false).toBe(false)
      expect(ps["flute"]?.allowlisted ?? false).toBe(false)
      yield* waitForLog(conductorLog(), /player removed from the allowlist.*flute/)
      yield* waitForLog(playerLog("flute"), "not on the allowlist")
      // a new job naming flute is refused at once
      const refusedNow = yield* Effect.flip(c().queue({ score: "echo", players: ["flute"], scope: "one", params: { message: "x" } }))
      expect(refusedNow.message).toBe("Invalid Player")

      // back on the list: flute reconnects; its late result for the old task changes nothing; it takes work
      yield* setAllowlist(everyone)
      yield* c().waitForPlayers(["flute"])
      const again = yield* submit(c(), { score: "echo", players: ["flute"], scope: "one", params: { message: "back" } })
      expect((yield* waitJob(c(), again, Duration.seconds(30))).status).toBe("OK")
      yield* Effect.sleep(Duration.seconds(1))
      const after = yield* statusOf(c(), id)
      expect(outcomes(after)).toEqual({ flute: "HOST_ERROR", piccolo: "OK" })
    }).pipe(shared.withLogs))

  it.live("removing a player with queued tasks: a one-of task goes to the player left; a task only it could take ends HOST_ERROR", () =>
    Effect.gen(function*() {
      // both players have one slot: occupy them
      const busyFlute = yield* submit(c(), { score: "sleep", players: ["flute"], scope: "all", params: { seconds: 4 } })
      const busyPiccolo = yield* submit(c(), { score: "sleep", players: ["piccolo"], scope: "all", params: { seconds: 4 } })
      yield* pollUntil(
        "flute and piccolo to be busy",
        Effect.map(players(c()), (ps) => (ps["flute"]?.running === 1 && ps["piccolo"]?.running === 1 ? Option.some(true) : Option.none()))
      )
      const either = yield* submit(c(), { score: "echo", players: ["flute", "piccolo"], scope: "one", params: { message: "either" } })
      const fluteOnly = yield* submit(c(), { score: "echo", players: ["flute"], scope: "one", params: { message: "flute only" } })
      yield* Effect.sleep(Duration.millis(300))
      expect((yield* statusOf(c(), either)).players).toEqual({})
      yield* setAllowlist(everyone.filter((n) => n !== "flute"))

      const only = yield* waitJob(c(), fluteOnly, Duration.seconds(30))
      expect(only.status).toBe("FAIL")
      expect(outcomes(only)).toEqual({ flute: "HOST_ERROR" })
      const bf = yield* waitJob(c(), busyFlute, Duration.seconds(30))
      expect(outcomes(bf)).toEqual({ flute: "HOST_ERROR" })
      const e = yield* waitJob(c(), either, Duration.seconds(30))
      expect(e.status).toBe("OK")
      expect(e.players["piccolo"]).toEqual({ status: "OK", response: { message: "either", length: "6" } })
      // flute never ran it: at most a HOST_ERROR for it
      expect(["HOST_ERROR", undefined]).toContain(e.players["flute"]?.status)
      expect((yield* waitJob(c(), busyPiccolo, Duration.seconds(30))).status).toBe("OK")

      yield* setAllowlist(everyone)
      yield* c().waitForPlayers(["flute"])
      const again = yield* submit(c(), { score: "echo", players: ["flute", "piccolo"], scope: "all", params: { message: "both" } })
      expect(outcomes(yield* waitJob(c(), again, Duration.seconds(30)))).toEqual({ flute: "OK", piccolo: "OK" })
    }).pipe(shared.withLogs))
})
