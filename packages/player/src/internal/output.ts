/**
 * Bounded capture of a score's output: the task log (stderr and stdout that
 * is not protocol), the `key=value` lines of the `pipe` interface and the
 * JSON document of the `json` interface. Every collector keeps reading past
 * its limit (so the score never blocks on a full pipe) but stops keeping.
 */
import { StringDecoder } from "node:string_decoder"

/** The task log: raw bytes up to a limit, with the count of bytes dropped. */
export class LogCapture {
  private readonly chunks: Array<Buffer> = []
  private kept = 0
  dropped = 0

  constructor(readonly maxBytes: number) {}

  append(chunk: Buffer): void {
    const room = this.maxBytes - this.kept
    if (room <= 0) {
      this.dropped += chunk.length
      return
    }
    if (chunk.length <= room) {
      this.chunks.push(chunk)
      this.kept += chunk.length
    } else {
      this.chunks.push(chunk.subarray(0, room))
      this.kept += room
      this.dropped += chunk.length - room
    }
  }

  appendLine(line: string): void {
    this.append(Buffer.from(line + "\n", "utf8"))
  }

  /** The kept text; a note is added when bytes were dropped. */
  text(notes: ReadonlyArray<string> = []): string {
    let out = Buffer.concat(this.chunks).toString("utf8")
    const all = this.dropped > 0
      ? [`log truncated: ${this.dropped} more bytes beyond maxOutputBytes (${this.maxBytes}) were dropped`, ...notes]
      : notes
    for (const note of all) {
      if (out.length > 0 && !out.endsWith("\n")) out += "\n"
      out += `[orchestra] ${note}\n`
    }
    return out
  }
}

/**
 * The stdout of a `pipe` score: lines `key=value` (split at the first `=`,
 * key not empty) become the response, other lines go to the log. Stops
 * keeping after `maxBytes` of stdout and says so.
 */
export class PipeParser {
  private readonly decoder = new StringDecoder("utf8")
  private partial = ""
  private seen = 0
  readonly response: Record<string, string> = {}
  overflow = false

  constructor(readonly maxBytes: number, private readonly log: LogCapture) {}

  write(chunk: Buffer): void {
    this.seen += chunk.length
    if (this.overflow) return
    if (this.seen > this.maxBytes) {
      this.overflow = true
      return
    }
    const text = this.partial + this.decoder.write(chunk)
    let start = 0
    for (;;) {
      const nl = text.indexOf("\n", start)
      if (nl < 0) break
      this.line(text.slice(start, nl))
      start = nl + 1
    }
    this.partial = text.slice(start)
  }

  /** Call once stdout has ended. */
  end(): void {
    if (this.overflow) return
    const rest = this.partial + this.decoder.end()
    this.partial = ""
    if (rest.length > 0) this.line(rest)
  }

  get bytes(): number {
    return this.seen
  }

  private line(raw: string): void {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw
    const eq = line.indexOf("=")
    if (eq > 0) {
      this.response[line.slice(0, eq)] = line.slice(eq + 1)
    } else {
      this.log.appendLine(line)
    }
  }
}

/** The stdout of a `json` score: kept whole up to `maxBytes`. */
export class JsonCollector {
  private readonly chunks: Array<Buffer> = []
  private seen = 0
  overflow = false

  constructor(readonly maxBytes: number) {}

  write(chunk: Buffer): void {
    this.seen += chunk.length
    if (this.overflow) return
    if (this.seen > this.maxBytes) {
      this.overflow = true
      this.chunks.length = 0
      return
    }
    this.chunks.push(chunk)
  }

  get bytes(): number {
    return this.seen
  }

  text(): string {
    return Buffer.concat(this.chunks).toString("utf8")
  }
}
