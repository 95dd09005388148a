/**
 * A raw TLS client for the conductor's player port: connect with whatever
 * certificate (or none), send a `Hello` frame (4-byte big-endian length +
 * JSON), and report what came back — the frames received, whether the
 * handshake completed, and the error that ended the connection.
 */
import { Protocol } from "@orchestra/core"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as tls from "node:tls"

export interface ProbeOptions {
  readonly port: number
  /** The CA that issued the conductor's certificate. */
  readonly ca: string
  /** The client certificate and key (PEM files); none: no client certificate. */
  readonly cert?: string
  readonly key?: string
  /** The name the conductor's certificate must carry. */
  readonly servername: string
  /** The player name claimed in Hello. */
  readonly player: string
  /** How long to wait for the conductor's answer (default 5 s). */
  readonly waitMs?: number
}

export interface ProbeResult {
  readonly handshake: boolean
  readonly frames: ReadonlyArray<{ readonly _tag?: string; readonly reason?: string }>
  readonly error: string | undefined
  readonly closedByPeer: boolean
}

const frame = (message: unknown): Buffer => {
  const body = Buffer.from(JSON.stringify(message), "utf8")
  const head = Buffer.alloc(4)
  head.writeUInt32BE(body.length, 0)
  return Buffer.concat([head, body])
}

const parseFrames = (buf: Buffer): Array<{ _tag?: string; reason?: string }> => {
  const out: Array<{ _tag?: string; reason?: string }> = []
  let at = 0
  while (at + 4 <= buf.length) {
    const len = buf.readUInt32BE(at)
    if (at + 4 + len > buf.length) break
    try {
      out.push(JSON.parse(buf.subarray(at + 4, at + 4 + len).toString("utf8")) as { _tag?: string })
    } catch {
      out.push({ _tag: "(not JSON)" })
    }
    at += 4 + len
  }
  return out
}

/** Connect, say Hello, collect the answer until the connection ends or `waitMs` passes. */
export const probe = (o: ProbeOptions): Effect.Effect<ProbeResult> =>
  Effect.async<ProbeResult>((resume) => {
    const chunks: Array<Buffer> = []
    let handshake = false
    let error: string | undefined
    let closedByPeer = false
    let done = false
    const socket = tls.connect({
      host: "127.0.0.1",
      port: o.port,
      ca: fs.readFileSync(o.ca),
      servername: o.servername,
      ...(o.cert === undefined ? {} : { cert: fs.readFileSync(o.cert) }),
      ...(o.key === undefined ? {} : { key: fs.readFileSync(o.key) })
    })
    const finish = () => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resume(Effect.succeed({ handshake, frames: parseFrames(Buffer.concat(chunks)), error, closedByPeer }))
    }
    const timer = setTimeout(finish, o.waitMs ?? 5000)
    socket.on("secureConnect", () => {
      handshake = true
      socket.write(
        frame({
          _tag: "Hello",
          protocol: Protocol.PROTOCOL_VERSION,
          player: o.player,
          slots: 1,
          labels: {},
          catalog: [],
          running: []
        })
      )
    })
    socket.on("data", (c: Buffer) => {
      chunks.push(c)
      // an answer from the conductor: no need to wait longer
      if (parseFrames(Buffer.concat(chunks)).some((f) => f._tag === "Welcome" || f._tag === "Refused")) finish()
    })
    socket.on("error", (e: NodeJS.ErrnoException) => {
      error = `${e.code ?? ""} ${e.message}`.trim()
    })
    socket.on("end", () => {
      closedByPeer = true
    })
    socket.on("close", finish)
    return Effect.sync(() => {
      clearTimeout(timer)
      socket.destroy()
    })
  })
