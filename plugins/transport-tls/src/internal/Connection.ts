/**
 * One framed, heartbeated TLS connection, shared by both sides of the
 * transport. It reads frames (answering pings itself), hands decoded
 * messages to its owner, writes queued frames in batches that respect
 * socket backpressure, and closes on the first bad frame, a protocol
 * violation reported by the owner, a silent peer, or a socket error —
 * telling the owner once, with the reason.
 *
 * This is callback code on purpose: it runs for every chunk and frame, and
 * the Effect-facing parts (sessions, streams) are built on top of it.
 *
 * @since 0.1.0
 */
import { Either } from "effect"
import type * as tls from "node:tls"
import * as Frame from "../Frame.js"

export interface Heartbeat {
  readonly intervalMs: number
  readonly timeoutMs: number
}

export type CloseKind = "local" | "remote" | "error" | "frame" | "protocol" | "heartbeat"

export interface CloseInfo {
  readonly kind: CloseKind
  readonly message: string
}

export interface ConnectionOptions<In> {
  readonly socket: tls.TLSSocket
  readonly codec: Frame.Codec<In>
  readonly maxFrameBytes: number
  readonly heartbeat: Heartbeat
  /** Route a message (`size`: its payload bytes); return a reason to close the connection (a protocol violation). */
  readonly onMessage: (message: In, size: number) => string | undefined
  /** Called once, when the connection closes for whatever reason. */
  readonly onClose: (info: CloseInfo) => void
  /** A frame to send before closing on a bad frame or protocol violation (the conductor tells the player why). */
  readonly farewell?: (reason: string) => Buffer | undefined
}

/** How long a closing connection may take to say goodbye before it is destroyed. */
const LINGER_MS = 2000
/** Queued bytes that are written at once rather than on the next turn of the event loop. */
const FLUSH_BYTES = 256 * 1024
/** Bytes waiting (queued here or in the socket) above which senders wait for the peer to read. */
const SEND_HIGH_WATER = 8 * 1024 * 1024

export class Connection<In> {
  private closed_ = false
  private closeInfo: CloseInfo | undefined
  private queue: Array<Buffer> = []
  private queuedBytes = 0
  private scheduled = false
  private blocked = false
  private paused = false
  private lastReceived = Date.now()
  private lastSent = Date.now()
  private readonly decoder: Frame.FrameDecoder
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined
  private lingerTimer: ReturnType<typeof setTimeout> | undefined
  private socketError: Error | undefined
  private readonly tickMs: number
  private lastTick = Date.now()

  /** Counters, for tests and benchmarks. */
  readonly stats = { framesWritten: 0, writes: 0, bytesWritten: 0, framesRead: 0 }

  constructor(private readonly options: ConnectionOptions<In>) {
    this.decoder = new Frame.FrameDecoder(options.maxFrameBytes)
    const socket = options.socket
    socket.setNoDelay(true)
    socket.on("data", this.onData)
    socket.on("end", this.onEnd)
    socket.on("error", this.onError)
    socket.on("close", this.onSocketClose)
    const { intervalMs, timeoutMs } = options.heartbeat
    this.tickMs = Math.max(10, Math.min(intervalMs, Math.floor(timeoutMs / 4)))
    this.heartbeatTimer = setInterval(this.onTick, this.tickMs)
    this.heartbeatTimer.unref()
  }

  get closed(): boolean {
    return this.closed_
  }

  /** Why the connection closed, once it has. */
  get closeReason(): CloseInfo | undefined {
    return this.closeInfo
  }

  get remoteAddress(): string {
    const s = this.options.socket
    const host = s.remoteAddress ?? "?"
    return `${host.includes(":") ? `[${host}]` : host}:${s.remotePort ?? "?"}`
  }

  /** Queue a frame; written with others on the next turn of the event loop. Dropped once closed. */
  write(frame: Buffer): void {
    if (this.closed_) return
    this.enqueue(frame)
  }

  private enqueue(frame: Buffer): void {
    this.queue.push(frame)
    this.queuedBytes += frame.length
    if (this.blocked) return
    if (this.queuedBytes >= FLUSH_BYTES) {
      this.flush()
    } else if (!this.scheduled) {
      this.scheduled = true
      setImmediate(this.flushScheduled)
    }
  }

  /** Whether so much waits for the peer that senders should wait (see {@link whenWritable}). */
  get congested(): boolean {
    return !this.closed_ && this.queuedBytes + this.options.socket.writableLength > SEND_HIGH_WATER
  }

  private writableWaiters: Array<() => void> = []

  /** Call `f` once the connection is no longer congested (or has closed). */
  whenWritable(f: () => void): void {
    if (!this.congested) f()
    else this.writableWaiters.push(f)
  }

  private wakeWriters(): void {
    if (this.writableWaiters.length === 0 || this.congested) return
    const waiters = this.writableWaiters
    this.writableWaiters = []
    for (const w of waiters) w()
  }

  private readonly flush = (): void => {
    if (this.blocked || this.queue.length === 0 || this.options.socket.destroyed) return
    const ok = this.writeQueued()
    if (!ok) {
      this.blocked = true
      this.options.socket.once("drain", this.onDrain)
    }
  }

  private readonly flushScheduled = (): void => {
    this.scheduled = false
    this.flush()
  }

  private writeQueued(): boolean {
    const frames = this.queue
    const data = frames.length === 1 ? frames[0]! : Buffer.concat(frames, this.queuedBytes)
    this.stats.framesWritten += frames.length
    this.stats.writes++
    this.stats.bytesWritten += data.length
    this.queue = []
    this.queuedBytes = 0
    this.lastSent = Date.now()
    return this.options.socket.write(data)
  }

  private readonly onDrain = (): void => {
    this.blocked = false
    this.flush()
    this.wakeWriters()
  }

  /** Stop reading (the consumer is behind); heartbeat timeouts are suspended meanwhile. */
  pauseReading(): void {
    if (this.paused || this.closed_) return
    this.paused = true
    this.options.socket.pause()
  }

  resumeReading(): void {
    if (!this.paused) return
    this.paused = false
    this.lastReceived = Date.now()
    if (!this.closed_) this.options.socket.resume()
  }

  /** Close gracefully: write what is queued (and a last frame), then end the connection. */
  end(reason: string, last?: Buffer): void {
    this.closeWith({ kind: "local", message: reason }, last)
  }

  /** Close because of something wrong; `info.kind` says what. */
  fail(info: CloseInfo): void {
    if (this.closed_) return
    const last = info.kind === "frame" || info.kind === "protocol" ? this.options.farewell?.(info.message) : undefined
    this.closeWith(info, last)
  }

  private closeWith(info: CloseInfo, last: Buffer | undefined): void {
    if (this.closed_) return
    const socket = this.options.socket
    if (last !== undefined) this.enqueue(last)
    this.markClosed(info)
    if (socket.destroyed) return
    if (info.kind === "heartbeat" || info.kind === "error") {
      socket.destroy()
      return
    }
    if (this.queue.length > 0) this.writeQueued()
    socket.end()
    this.lingerTimer = setTimeout(() => socket.destroy(), LINGER_MS)
    this.lingerTimer.unref()
  }

  private markClosed(info: CloseInfo): void {
    if (this.closed_) return
    this.closed_ = true
    this.closeInfo = info
    if (this.heartbeatTimer !== undefined) clearInterval(this.heartbeatTimer)
    this.heartbeatTimer = undefined
    this.wakeWriters()
    this.options.onClose(info)
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.closed_) return
    this.lastReceived = Date.now()
    const { error, frames } = this.decoder.push(chunk)
    for (const payload of frames) {
      if (this.closed_) return
      this.stats.framesRead++
      const decoded = Frame.decodePayload(this.options.codec, payload)
      if (Either.isLeft(decoded)) {
        this.fail({ kind: "frame", message: `bad frame: ${decoded.left.message}` })
        return
      }
      const p = decoded.right
      if (p._tag === "Ping") {
        this.write(Frame.PONG)
      } else if (p._tag === "Message") {
        const violation = this.options.onMessage(p.message, payload.length)
        if (violation !== undefined) {
          this.fail({ kind: "protocol", message: violation })
          return
        }
      }
    }
    if (error !== undefined) this.fail({ kind: "frame", message: `bad frame: ${error.message}` })
  }

  private readonly onEnd = (): void => {
    if (this.decoder.buffered > 0) {
      this.markClosed({ kind: "frame", message: `connection closed by the peer inside a frame (${this.decoder.buffered} bytes pending)` })
    } else {
      this.markClosed({ kind: "remote", message: "connection closed by the peer" })
    }
  }

  private readonly onError = (error: Error): void => {
    this.socketError = error
    this.markClosed({ kind: "error", message: describeSocketError(error) })
    this.options.socket.destroy()
  }

  private readonly onSocketClose = (): void => {
    if (this.lingerTimer !== undefined) clearTimeout(this.lingerTimer)
    this.lingerTimer = undefined
    this.markClosed(
      this.socketError !== undefined
        ? { kind: "error", message: describeSocketError(this.socketError) }
        : { kind: "remote", message: "connection closed by the peer" }
    )
  }

  private readonly onTick = (): void => {
    if (this.closed_) return
    const now = Date.now()
    const stalled = now - this.lastTick - this.tickMs
    this.lastTick = now
    if (stalled > this.tickMs) {
      // This process did not run for a while (timers fire before pending I/O is read): that time
      // is not the peer's silence.
      this.lastReceived += stalled
    }
    const { intervalMs, timeoutMs } = this.options.heartbeat
    if (!this.paused && now - this.lastReceived > timeoutMs) {
      this.fail({ kind: "heartbeat", message: `no frame from the peer for ${now - this.lastReceived} ms (timeout ${timeoutMs} ms)` })
      return
    }
    if (now - this.lastSent >= intervalMs && !this.blocked) this.write(Frame.PING)
  }
}

/** A socket error as one line, with its code. */
export const describeSocketError = (error: Error): string => {
  const code = (error as { code?: unknown }).code
  return typeof code === "string" && !error.message.includes(code) ? `${code}: ${error.message}` : error.message
}
