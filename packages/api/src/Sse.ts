/**
 * Server-Sent Events on the wire (the WHATWG `text/event-stream` format):
 * how the conductor writes audience events, and an incremental parser for
 * clients reading them.
 *
 * ```
 * id: lq3x9k2a-42
 * event: task.finished
 * data: {"type":"task.finished","id":"lq3x9k2a-42","at":1767225600000,"job":17,...}
 *
 * ```
 *
 * Lines starting with `:` are comments (the conductor sends `: keep-alive`
 * every 15 s so idle connections stay open through proxies).
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import * as Events from "./Events.js"

/** The content type of an event stream. */
export const contentType = "text/event-stream"

/** One event as written: `id`, `event` (its type) and `data` (its JSON). */
export const encode = (event: Events.Event): string =>
  `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`

/** A comment line (ignored by clients; keeps the connection alive). */
export const comment = (text: string): string => `: ${text.replace(/[\r\n]+/g, " ")}\n\n`

/** Tell clients how long to wait before reconnecting. */
export const retry = (ms: number): string => `retry: ${Math.max(0, Math.floor(ms))}\n\n`

/** One message as a client parses it. */
export interface Message {
  /** The `id:` of this message, if it had one. */
  readonly id: string | undefined
  /** The `event:` field (default `message`). */
  readonly event: string
  readonly data: string
}

/**
 * An incremental parser: feed it text as it arrives (any split), get back
 * the messages completed so far. `lastEventId` is what a client sends as
 * `Last-Event-ID` to resume.
 */
export class Parser {
  private buffer = ""
  private id: string | undefined
  private event = ""
  private data: Array<string> = []
  private hasData = false
  lastEventId: string | undefined = undefined

  /** Feed a piece of the stream; returns the messages it completed. */
  feed(chunk: string): ReadonlyArray<Message> {
    this.buffer += chunk
    const out: Array<Message> = []
    for (;;) {
      const nl = this.buffer.search(/\r\n|\r|\n/)
      if (nl < 0) break
      const eol = this.buffer[nl] === "\r" && this.buffer[nl + 1] === "\n" ? 2 : 1
      // a lone "\r" at the end may be the first half of "\r\n": wait for more
      if (this.buffer[nl] === "\r" && eol === 1 && nl === this.buffer.length - 1) break
      const line = this.buffer.slice(0, nl)
      this.buffer = this.buffer.slice(nl + eol)
      const message = this.line(line)
      if (message !== undefined) out.push(message)
    }
    return out
  }

  private line(line: string): Message | undefined {
    if (line === "") {
      if (!this.hasData) {
        this.event = ""
        return undefined
      }
      const message: Message = { id: this.id, event: this.event === "" ? "message" : this.event, data: this.data.join("\n") }
      this.event = ""
      this.data = []
      this.hasData = false
      this.id = undefined
      return message
    }
    if (line.startsWith(":")) return undefined
    const colon = line.indexOf(":")
    const field = colon < 0 ? line : line.slice(0, colon)
    let value = colon < 0 ? "" : line.slice(colon + 1)
    if (value.startsWith(" ")) value = value.slice(1)
    switch (field) {
      case "id":
        if (!value.includes("\u0000")) {
          this.id = value
          this.lastEventId = value
        }
        break
      case "event":
        this.event = value
        break
      case "data":
        this.data.push(value)
        this.hasData = true
        break
      default:
        break
    }
    return undefined
  }
}

const decodeEvent = Schema.decodeUnknownEither(Schema.parseJson(Events.Event))

/** The audience event a message carries, or undefined when it is not one. */
export const toEvent = (message: Message): Events.Event | undefined => {
  const r = decodeEvent(message.data)
  return r._tag === "Right" ? r.right : undefined
}
