/**
 * Test fixtures: a certificate directory made once per test file (a CA, a
 * conductor named "conductor", players issued on demand), removed when the
 * process exits, and a transport context that records log lines.
 */
import type { Transport } from "@orchestra/core"
import { Effect } from "effect"
import { afterAll } from "vitest"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as tlsModule from "node:tls"
import { Certs } from "../src/index.js"

const made: Array<string> = []

// Every temp dir of a test file goes when the file's tests are done.
afterAll(() => {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true })
})

export const tempDir = (prefix: string): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `orchestra-tls-${prefix}-`))
  made.push(dir)
  return dir
}

/** A lazily created certificate directory, shared by the tests of one file. */
export const fixture = (players: ReadonlyArray<string> = []): Effect.Effect<string> => {
  let made: Promise<string> | undefined
  return Effect.promise(() => {
    made ??= Effect.runPromise(
      Effect.gen(function*() {
        const dir = tempDir("certs")
        yield* Certs.init({ dir, conductor: "conductor", players })
        return dir
      })
    )
    return made
  })
}

export interface LogLine {
  readonly level: "info" | "warn" | "error"
  readonly message: string
  readonly fields: Readonly<Record<string, unknown>> | undefined
}

/** A context whose log lines are kept (and not printed). */
export const recordingContext = (baseDir: string): Transport.TransportContext & { readonly lines: Array<LogLine> } => {
  const lines: Array<LogLine> = []
  return { baseDir, lines, log: (level, message, fields) => void lines.push({ level, message, fields }) }
}

export const quietContext = (baseDir: string): Transport.TransportContext => ({ baseDir, log: () => {} })

/** A TLS client that speaks raw frames, for feeding the conductor what a real player never would. */
export interface RawClient {
  readonly socket: tlsModule.TLSSocket
  /** Every byte received so far. */
  readonly received: () => Buffer
  /** The JSON payloads of the frames received so far (heartbeats included). */
  readonly frames: () => ReadonlyArray<{ readonly _tag?: string; readonly reason?: string }>
  /** Resolves when the connection has closed. */
  readonly closed: Promise<void>
  readonly isClosed: () => boolean
}

export const rawConnect = (options: tlsModule.ConnectionOptions): Promise<RawClient> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    let closed = false
    const socket = tlsModule.connect(options)
    const closedP = new Promise<void>((r) => socket.once("close", () => {
      closed = true
      r()
    }))
    socket.on("data", (d: Buffer) => void chunks.push(d))
    const onError = (e: Error) => reject(e)
    socket.once("error", onError)
    socket.once("secureConnect", () => {
      socket.removeListener("error", onError)
      socket.on("error", () => {})
      resolve({
        socket,
        received: () => Buffer.concat(chunks),
        frames: () => parseFrames(Buffer.concat(chunks)),
        closed: closedP,
        isClosed: () => closed
      })
    })
  })

/** Split bytes into frames and parse each as JSON (unparsable ones become `{}`). */
export const parseFrames = (data: Buffer): Array<{ readonly _tag?: string; readonly reason?: string }> => {
  const out: Array<{ readonly _tag?: string; readonly reason?: string }> = []
  let at = 0
  while (at + 4 <= data.length) {
    const n = data.readUInt32BE(at)
    if (at + 4 + n > data.length) break
    try {
      out.push(JSON.parse(data.subarray(at + 4, at + 4 + n).toString("utf8")))
    } catch {
      out.push({})
    }
    at += 4 + n
  }
  return out
}

