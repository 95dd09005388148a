/**
 * The TLS transport: TCP + mutual TLS (X.509) between the conductor and its
 * players, carrying length-prefixed JSON frames checked against the core
 * protocol schemas, with heartbeats both ways.
 *
 * Conductor side: a `tls.Server` that requires and verifies a client
 * certificate from the configured CA (and CRL). Each connection must send a
 * `Hello` first, for a player name its certificate carries (SAN DNS names
 * and CN); then `admit` decides, in a scope of its own that closes when the
 * session ends. Refusals are sent as `Refused` and logged. A bad frame, an
 * out-of-order message or a silent peer closes that connection only.
 *
 * Player side: `connect("host:port", hello)` verifies the conductor's
 * certificate against the CA and the expected conductor name, sends the
 * `Hello` and waits for `Welcome` (or `Refused`, as `SessionRefused`).
 *
 * Time here is wall-clock time (Node timers), not the Effect `Clock`: it
 * measures real sockets.
 *
 * @since 0.1.0
 */
import { Errors, Protocol, Transport } from "@orchestra/core"
import { Inbox as CoreInbox } from "@orchestra/core"
import { Deferred, Effect, Exit, FiberId, FiberSet, Layer, Scope } from "effect"
import * as net from "node:net"
import * as path from "node:path"
import * as tls from "node:tls"
import * as Certs from "./Certs.js"
import * as Config from "./Config.js"
import * as Frame from "./Frame.js"
import type { CloseInfo, CloseKind } from "./internal/Connection.js"
import { Connection, describeSocketError } from "./internal/Connection.js"

/** Payload bytes (plus a per-message allowance) waiting for a slow consumer before the connection stops reading. */
const INBOX_HIGH_WATER = 4 * 1024 * 1024
const MESSAGE_OVERHEAD = 64
/** How long a session function may run on after its connection died, before it is interrupted. */
const SESSION_GRACE_MS = 2000

/** Counters of one connection's writes, for tests and benchmarks. */
export interface ConnectionStats {
  readonly framesWritten: number
  readonly writes: number
  readonly bytesWritten: number
  readonly framesRead: number
}

const statsBySession = new WeakMap<object, ConnectionStats>()

/** The write/read counters behind a session of this transport, if it is one. */
export const connectionStats = (session: Transport.PlayerSession | Transport.ConductorSession): ConnectionStats | undefined =>
  statsBySession.get(session)

const defaultLog: Transport.TransportContext["log"] = (level, message, fields) => {
  if (level === "info") return
  process.stderr.write(`[transport-tls] ${level}: ${message}${fields ? ` ${JSON.stringify(fields)}` : ""}\n`)
}

/** A transport context with defaults: paths relative to the working directory, warnings to stderr. */
export const context = (partial?: Partial<Transport.TransportContext>): Transport.TransportContext => ({
  baseDir: partial?.baseDir ?? process.cwd(),
  log: partial?.log ?? defaultLog
})

const sleepReal = (ms: number): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), ms)
    return Effect.sync(() => clearTimeout(timer))
  })

/** Queue a frame; wait while the peer is far behind (bounded memory per session). */
const sendFrame = <In>(conn: Connection<In>, frame: () => Buffer): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (conn.closed) return Effect.void
    conn.write(frame())
    if (!conn.congested) return Effect.void
    return Effect.async<void>((resume) => conn.whenWritable(() => resume(Effect.void)))
  })

const formatAddress = (host: string, port: number): string => (host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`)

/** The names a peer certificate carries: SAN DNS names, then the CN. */
export const identitiesOf = (cert: tls.PeerCertificate | undefined): ReadonlyArray<string> => {
  if (cert === undefined || cert === null || Object.keys(cert).length === 0) return []
  const names = new Set<string>()
  for (const part of (cert.subjectaltname ?? "").split(", ")) {
    if (!part.startsWith("DNS:")) continue
    let value = part.slice(4)
    if (value.startsWith("\"")) {
      try {
        value = String(JSON.parse(value))
      } catch {
        continue
      }
    }
    if (value.length > 0) names.add(value)
  }
  const cn: unknown = (cert.subject as unknown as Record<string, unknown> | undefined)?.["CN"]
  for (const c of Array.isArray(cn) ? cn : [cn]) if (typeof c === "string" && c.length > 0) names.add(c)
  return [...names]
}

const isTlsError = (message: string): boolean => /ERR_SSL|ERR_TLS|SSL routines|certificate|CERT_|alert/i.test(message)

const transportReason = (kind: CloseKind, message: string): Errors.TransportError["reason"] => {
  switch (kind) {
    case "error":
      return isTlsError(message) ? "tls" : "connect"
    case "frame":
      return "frame"
    case "protocol":
      return "protocol"
    case "heartbeat":
      return "heartbeat"
    default:
      return "closed"
  }
}

/** A certificate serial as lowercase hex without leading zeros, for comparison. */
const normalizeSerial = (serial: string): string => serial.toLowerCase().replace(/[^0-9a-f]/g, "").replace(/^0+(?=.)/, "")

// ---- conductor ------------------------------------------------------------------

/** Build the conductor side from the transport's config block. */
export const makeConductor = (
  rawConfig: unknown,
  ctx: Transport.TransportContext
): Effect.Effect<Transport.ConductorTransportService, Errors.TransportError, Scope.Scope> =>
  Effect.gen(function*() {
    const config = yield* Config.decodeConductor(rawConfig)
    let material = yield* Config.loadMaterial(ctx.baseDir, config.tls)
    const servers = new Set<tls.Server>()
    const conductorName = config.name ?? material.commonName ?? "conductor"
    const log = ctx.log
    /** Admitted sessions with the serial of their certificate, so a revocation can end them. */
    const live = new Set<{ readonly serial: string; readonly player: string; readonly address: string; readonly conn: Connection<Protocol.FromPlayer> }>()
    /** Peer addresses by raw socket, kept from the moment of connection for handshake failures. */
    const rawAddresses = new WeakMap<net.Socket, string>()
    const welcomeFrame = Frame.toPlayer.encode(new Protocol.Welcome({ protocol: Protocol.PROTOCOL_VERSION, conductor: conductorName }))
    const refusedFrame = (reason: string) => Frame.toPlayer.encode(new Protocol.Refused({ reason }))

    /** Everything about one accepted connection, set up synchronously when it arrives. */
    const accept = (socket: tls.TLSSocket) => {
      const address = formatAddress(socket.remoteAddress ?? "?", socket.remotePort ?? 0)
      const peerCertificate = socket.getPeerCertificate(false)
      const identities = identitiesOf(peerCertificate)
      const serial = normalizeSerial(peerCertificate.serialNumber ?? "")
      let hello: Protocol.Hello | undefined
      let player: string | undefined
      const helloD = Deferred.unsafeMake<Protocol.Hello, CloseInfo>(FiberId.none)
      const closedD = Deferred.unsafeMake<CloseInfo>(FiberId.none)
      const inbox: CoreInbox.Inbox<Protocol.FromPlayer> = new CoreInbox.Inbox(
        INBOX_HIGH_WATER,
        () => conn.pauseReading(),
        () => conn.resumeReading()
      )
      const conn: Connection<Protocol.FromPlayer> = new Connection({
        socket,
        codec: Frame.fromPlayer,
        maxFrameBytes: config.maxFrameBytes,
        heartbeat: config.heartbeat,
        onMessage: (m, size) => {
          if (hello === undefined) {
            if (m._tag !== "Hello") return `expected Hello as the first message, got ${m._tag}`
            hello = m
            clearTimeout(helloTimer)
            Deferred.unsafeDone(helloD, Exit.succeed(m))
            return undefined
          }
          if (m._tag === "Hello") return "a second Hello in the same session"
          inbox.offer(m, size + MESSAGE_OVERHEAD)
          return undefined
        },
        onClose: (info) => {
          clearTimeout(helloTimer)
          inbox.end()
          Deferred.unsafeDone(helloD, Exit.fail(info))
          Deferred.unsafeDone(closedD, Exit.succeed(info))
          if (info.kind === "local") return
          const who = player !== undefined ? `player "${player}" (${address})` : `connection from ${address}`
          if (info.kind === "remote") {
            log("info", `${who} closed: ${info.message}`, { address, ...(player ? { player } : {}) })
          } else {
            log("warn", `${who} closed: ${info.message}`, { address, reason: info.kind, ...(player ? { player } : {}) })
          }
        },
        farewell: refusedFrame
      })
      const helloTimer = setTimeout(() => {
        if (hello === undefined) conn.fail({ kind: "protocol", message: `no Hello within ${config.helloTimeoutMs} ms` })
      }, config.helloTimeoutMs)
      helloTimer.unref()
      return { address, identities, serial, conn, inbox, helloD, closedD, setPlayer: (p: string) => (player = p) }
    }

    const refuse = (
      c: ReturnType<typeof accept>,
      claimed: string,
      reason: string
    ) => {
      log("warn", `refused player "${claimed}" from ${c.address}: ${reason}`, { address: c.address, player: claimed, reason })
      c.conn.end(`refused: ${reason}`, refusedFrame(reason))
    }

    const runConnection = (c: ReturnType<typeof accept>, admit: Transport.Admit): Effect.Effect<void> =>
      Effect.gen(function*() {
        const helloE = yield* Effect.either(Deferred.await(c.helloD))
        if (helloE._tag === "Left") return
        const hello = helloE.right
        const peer: Transport.Peer = { address: c.address, identities: c.identities }
        if (!c.identities.includes(hello.player)) {
          refuse(
            c,
            hello.player,
            `the certificate presented carries ${c.identities.length > 0 ? c.identities.map((n) => `"${n}"`).join(", ") : "no name"}, not "${hello.player}"`
          )
          return
        }
        const admitted = yield* Effect.either(admit(hello, peer))
        if (admitted._tag === "Left") {
          refuse(c, hello.player, admitted.left.reason)
          return
        }
        c.setPlayer(hello.player)
        const conn = c.conn
        conn.write(welcomeFrame)
        const session: Transport.PlayerSession = {
          player: hello.player,
          hello,
          peer,
          send: (message) => sendFrame(conn, () => Frame.toPlayer.encode(message)),
          incoming: c.inbox.stream,
          close: (reason) =>
            Effect.sync(() => {
              if (!conn.closed) log("info", `closing the session of player "${hello.player}": ${reason}`, { player: hello.player, reason })
              conn.end(`closed by the conductor: ${reason}`, refusedFrame(reason))
            })
        }
        statsBySession.set(session, conn.stats)
        const entry = { serial: c.serial, player: hello.player, address: c.address, conn }
        live.add(entry)
        yield* Effect.addFinalizer(() => Effect.sync(() => live.delete(entry)))
        log("info", `player "${hello.player}" connected from ${c.address}`, { player: hello.player, address: c.address })
        const ran = admitted.right(session).pipe(
          Effect.catchAllCause((cause) =>
            Effect.sync(() =>
              log("error", `the session of player "${hello.player}" failed: ${String(cause)}`, { player: hello.player })
            )
          )
        )
        const died = Deferred.await(c.closedD).pipe(
          Effect.zipRight(sleepReal(SESSION_GRACE_MS)),
          Effect.tap(() =>
            log("warn", `the session of player "${hello.player}" did not end within ${SESSION_GRACE_MS} ms of its connection closing; interrupting it`, {
              player: hello.player
            })
          )
        )
        yield* Effect.raceFirst(ran, died)
      }).pipe(
        // The connection closes first (on return, failure or interruption), then the admit scope.
        Effect.onExit((exit) =>
          Effect.sync(() =>
            Exit.isInterrupted(exit)
              ? c.conn.end("the conductor stopped serving", refusedFrame("the conductor is shutting down"))
              : c.conn.end("session ended")
          )
        ),
        Effect.scoped
      )

    const serve = (admit: Transport.Admit): Effect.Effect<{ readonly address: string }, Errors.TransportError, Scope.Scope> =>
      Effect.gen(function*() {
        const run = yield* FiberSet.makeRuntime<never, void, never>()
        const server = tls.createServer({
          ...Config.secureContextOptions(material),
          requestCert: true,
          rejectUnauthorized: true,
          handshakeTimeout: config.helloTimeoutMs
        })
        server.on("secureConnection", (socket: tls.TLSSocket) => {
          const c = accept(socket)
          run(runConnection(c, admit))
        })
        server.on("connection", (raw: net.Socket) => {
          rawAddresses.set(raw, formatAddress(raw.remoteAddress ?? "?", raw.remotePort ?? 0))
        })
        server.on("tlsClientError", (error: Error, socket: tls.TLSSocket) => {
          // The socket is gone by now: its address was kept when it connected.
          const parent = (socket as tls.TLSSocket & { readonly _parent?: net.Socket })._parent
          const address = (parent !== undefined ? rawAddresses.get(parent) : undefined) ??
            formatAddress(socket.remoteAddress ?? "?", socket.remotePort ?? 0)
          const why = socket.authorizationError !== undefined && socket.authorizationError !== null
            ? `client certificate refused: ${String(socket.authorizationError)}`
            : describeSocketError(error)
          log("warn", `TLS handshake with ${address} failed: ${why}`, { address, reason: "tls" })
        })
        yield* Effect.async<void, Errors.TransportError>((resume) => {
          const onError = (e: Error) =>
            resume(
              Effect.fail(
                new Errors.TransportError({
                  reason: "connect",
                  message: `cannot listen on ${formatAddress(config.listen.host, config.listen.port)}: ${describeSocketError(e)}`
                })
              )
            )
          server.once("error", onError)
          server.listen(config.listen.port, config.listen.host, () => {
            server.removeListener("error", onError)
            server.on("error", (e) => log("error", `the TLS server failed: ${describeSocketError(e)}`))
            resume(Effect.void)
          })
        })
        servers.add(server)
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            servers.delete(server)
            server.close()
          })
        )
        const bound = server.address()
        const port = typeof bound === "object" && bound !== null ? bound.port : config.listen.port
        const address = formatAddress(config.listen.host, port)
        log("info", `listening for players on ${address}`, { address })
        return { address }
      })

    const reload: Effect.Effect<void, Errors.TransportError> = Effect.gen(function*() {
      const next = yield* Config.loadMaterial(ctx.baseDir, config.tls)
      const options = Config.secureContextOptions(next)
      for (const server of servers) {
        yield* Effect.try({
          try: () => server.setSecureContext(options),
          catch: (e) =>
            new Errors.TransportError({
              reason: "config",
              message: `cannot apply the reloaded TLS material: ${e instanceof Error ? e.message : String(e)}`
            })
        })
      }
      material = next
      log("info", "reloaded the TLS material (CA, certificate, key, CRL) for new connections")
      // A revocation also ends the sessions already open with a revoked certificate.
      if (config.tls.crl !== undefined && live.size > 0) {
        const crlFile = path.resolve(ctx.baseDir, config.tls.crl)
        const revoked = yield* Certs.revokedSerials(crlFile).pipe(
          Effect.mapError((e) => new Errors.TransportError({ reason: "config", message: e.message }))
        )
        const serials = new Set(revoked.map(normalizeSerial))
        for (const s of [...live]) {
          if (s.serial.length > 0 && serials.has(s.serial)) {
            log("warn", `closing the session of player "${s.player}" (${s.address}): its certificate was revoked`, {
              player: s.player,
              address: s.address,
              reason: "revoked"
            })
            s.conn.end("certificate revoked", refusedFrame("your certificate was revoked"))
          }
        }
      }
    })

    return { serve, reload }
  })

// ---- player ---------------------------------------------------------------------

/** `host:port`, `[v6]:port`, optionally prefixed with `tls://`. */
export const parseAddress = (address: string): Effect.Effect<{ readonly host: string; readonly port: number }, Errors.TransportError> => {
  const a = address.startsWith("tls://") ? address.slice("tls://".length) : address
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(a) ?? /^([^:[\]]+):(\d{1,5})$/.exec(a)
  const port = m ? Number(m[2]) : NaN
  if (m === null || !(port >= 1 && port <= 65535)) {
    return Effect.fail(
      new Errors.TransportError({ reason: "config", message: `invalid conductor address ${JSON.stringify(address)} (expected "host:port")` })
    )
  }
  return Effect.succeed({ host: m[1]!, port })
}

interface Opened {
  readonly conn: Connection<Protocol.ToPlayer>
  readonly inbox: CoreInbox.Inbox<Protocol.ToPlayer>
  readonly welcome: Protocol.Welcome
}

/** Build the player side from the transport's config block. */
export const makePlayer = (
  rawConfig: unknown,
  ctx: Transport.TransportContext
): Effect.Effect<Transport.PlayerTransportService, Errors.TransportError, Scope.Scope> =>
  Effect.gen(function*() {
    const config = yield* Config.decodePlayer(rawConfig)
    const material = yield* Config.loadMaterial(ctx.baseDir, config.tls)
    const secureContext = yield* Effect.try({
      try: () => tls.createSecureContext(Config.secureContextOptions(material)),
      catch: (e) =>
        new Errors.TransportError({ reason: "config", message: `invalid TLS material: ${e instanceof Error ? e.message : String(e)}` })
    })
    const log = ctx.log

    const open = (address: string, host: string, port: number, hello: Protocol.Hello) =>
      Effect.async<Opened, Errors.TransportError | Errors.SessionRefused>((resume) => {
        const servername = config.conductorName ?? host
        let tcpConnected = false
        let settled = false
        let welcome: Protocol.Welcome | undefined
        let conn: Connection<Protocol.ToPlayer> | undefined
        const settle = (result: Effect.Effect<Opened, Errors.TransportError | Errors.SessionRefused>) => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          resume(result)
        }
        const fail = (reason: Errors.TransportError["reason"], message: string) =>
          settle(Effect.fail(new Errors.TransportError({ reason, message })))
        const socket = tls.connect({
          host,
          port,
          secureContext,
          minVersion: "TLSv1.2",
          ...(net.isIP(servername) === 0 ? { servername } : {}),
          checkServerIdentity: (_host, cert) => tls.checkServerIdentity(servername, cert)
        })
        // Errors after a failed connect must never go unhandled.
        socket.on("error", () => {})
        const timer = setTimeout(() => {
          socket.destroy()
          fail("connect", `no session with the conductor at ${address} within ${config.connectTimeoutMs} ms`)
        }, config.connectTimeoutMs)
        const onEarlyError = (e: Error) => {
          socket.destroy()
          const d = describeSocketError(e)
          fail(tcpConnected && isTlsError(d) ? "tls" : "connect", `cannot connect to the conductor at ${address}: ${d}`)
        }
        socket.once("connect", () => (tcpConnected = true))
        socket.once("error", onEarlyError)
        socket.once("secureConnect", () => {
          socket.removeListener("error", onEarlyError)
          const inbox: CoreInbox.Inbox<Protocol.ToPlayer> = new CoreInbox.Inbox(
            INBOX_HIGH_WATER,
            () => c.pauseReading(),
            () => c.resumeReading()
          )
          const c: Connection<Protocol.ToPlayer> = new Connection({
            socket,
            codec: Frame.toPlayer,
            maxFrameBytes: config.maxFrameBytes,
            heartbeat: config.heartbeat,
            onMessage: (m, size) => {
              if (welcome === undefined) {
                if (m._tag === "Welcome") {
                  welcome = m
                  settle(Effect.succeed({ conn: c, inbox, welcome: m }))
                  return undefined
                }
                if (m._tag === "Refused") {
                  settle(Effect.fail(new Errors.SessionRefused({ reason: m.reason })))
                  c.end(`refused: ${m.reason}`)
                  return undefined
                }
                return `expected Welcome or Refused as the first message, got ${m._tag}`
              }
              if (m._tag === "Welcome") return "a second Welcome in the same session"
              inbox.offer(m, size + MESSAGE_OVERHEAD)
              return undefined
            },
            onClose: (info) => {
              inbox.end()
              if (welcome === undefined) {
                const hint = info.kind === "remote" ? " (the conductor may have refused this certificate)" : ""
                fail(
                  transportReason(info.kind, info.message),
                  `the conductor at ${address} closed the connection before Welcome: ${info.message}${hint}`
                )
                return
              }
              if (info.kind !== "local" && info.kind !== "remote") {
                log("warn", `the session with the conductor at ${address} closed: ${info.message}`, { address, reason: info.kind })
              }
            }
          })
          conn = c
          c.write(Frame.fromPlayer.encode(hello))
        })
        return Effect.sync(() => {
          clearTimeout(timer)
          if (conn !== undefined) conn.end("connect interrupted")
          else socket.destroy()
        })
      })

    const connect = (
      address: string,
      hello: Protocol.Hello
    ): Effect.Effect<Transport.ConductorSession, Errors.TransportError | Errors.SessionRefused, Scope.Scope> =>
      Effect.gen(function*() {
        const { host, port } = yield* parseAddress(address)
        const opened = yield* Effect.acquireRelease(
          open(address, host, port, hello),
          (o) => Effect.sync(() => o.conn.end("closed by the player"))
        )
        const conn = opened.conn
        const session: Transport.ConductorSession = {
          address,
          welcome: opened.welcome,
          send: (message: Protocol.FromPlayer) => sendFrame(conn, () => Frame.fromPlayer.encode(message)),
          incoming: opened.inbox.stream,
          close: Effect.sync(() => conn.end("closed by the player"))
        }
        statsBySession.set(session, conn.stats)
        return session
      })

    return { connect }
  })

// ---- plugin and layers ------------------------------------------------------------

/** The TLS transport plugin (`transport: { plugin: tls, ... }`). */
export const transportTls = (): Transport.TransportPlugin => ({
  kind: "transport",
  name: "tls",
  description: "TCP + mutual TLS (X.509, CRL), length-prefixed JSON frames checked by schema, heartbeats",
  conductor: makeConductor,
  player: makePlayer
})

/** The conductor side as a layer (config as in `conductor.yaml`'s transport block). */
export const layerConductor = (
  config: Config.ConductorConfigInput | unknown,
  ctx?: Partial<Transport.TransportContext>
): Layer.Layer<Transport.ConductorTransport, Errors.TransportError> =>
  Layer.scoped(Transport.ConductorTransport, makeConductor(config, context(ctx)))

/** The player side as a layer (config as in `player.yaml`'s transport block). */
export const layerPlayer = (
  config: Config.PlayerConfigInput | unknown,
  ctx?: Partial<Transport.TransportContext>
): Layer.Layer<Transport.PlayerTransport, Errors.TransportError> =>
  Layer.scoped(Transport.PlayerTransport, makePlayer(config, context(ctx)))
