/**
 * Audience clients for load generation, speaking the original Unix-socket
 * protocol as existing tools do: one connection per request, the JSON
 * request written and the write side closed, one JSON line back, then the
 * conductor closes. Plain `net` callbacks (no Effect) so that the load
 * generator costs as little CPU as possible next to the conductor.
 *
 * - {@link closedLoop}: `concurrency` clients, each sending its next request
 *   as soon as the previous reply came (the most the conductor accepts);
 * - {@link openLoop}: requests at a fixed rate whatever the replies
 *   (arrivals do not wait for the system: latency is not hidden).
 *
 * @since 0.1.0
 */
import * as net from "node:net"

/** One request; resolves with the reply line, rejects on a socket error or after `timeoutMs`. */
export const request = (socketPath: string, body: string, timeoutMs = 30_000): Promise<string> =>
  new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath)
    let text = ""
    let done = false
    const timer = setTimeout(() => finish(new Error(`no reply in ${timeoutMs} ms`)), timeoutMs)
    const finish = (error: Error | undefined) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      if (error !== undefined) reject(error)
      else resolve(text)
    }
    socket.setEncoding("utf8")
    socket.on("connect", () => socket.end(body))
    socket.on("data", (chunk: string) => {
      text += chunk
      if (text.includes("\n")) finish(undefined)
    })
    socket.on("error", (e) => finish(e))
    socket.on("close", () => finish(text.length > 0 ? undefined : new Error("closed without a reply")))
  })

/** `["OK", value]` or `["Error", reason]`, parsed. */
export const parseReply = (line: string): { readonly ok: boolean; readonly value: unknown } => {
  const parsed: unknown = JSON.parse(line)
  if (!Array.isArray(parsed) || parsed.length !== 2) throw new Error(`unexpected reply ${line.slice(0, 200)}`)
  return { ok: parsed[0] === "OK", value: parsed[1] }
}

export interface Reply {
  readonly index: number
  /** performance.now() when the request was started (connect). */
  readonly sentAt: number
  readonly repliedAt: number
  readonly line: string
}

export interface LoopResult {
  readonly replies: ReadonlyArray<Reply>
  readonly errors: number
  readonly firstError: string | undefined
  readonly startedAt: number
  readonly endedAt: number
}

/**
 * Send `total` requests (`body(i)`) with `concurrency` clients, each waiting
 * for its reply before the next; stops early after `maxMs`.
 */
export const closedLoop = (options: {
  readonly socketPath: string
  readonly total: number
  readonly concurrency: number
  readonly body: (index: number) => string
  readonly maxMs: number
  readonly onReply?: (reply: Reply) => void
}): Promise<LoopResult> =>
  new Promise((resolve) => {
    const replies: Array<Reply> = []
    let next = 0
    let inFlight = 0
    let errors = 0
    let firstError: string | undefined
    const startedAt = performance.now()
    const deadline = startedAt + options.maxMs
    let finished = false
    const maybeEnd = () => {
      if (finished || inFlight > 0) return
      if (next < options.total && performance.now() < deadline) return
      finished = true
      resolve({ replies, errors, firstError, startedAt, endedAt: performance.now() })
    }
    const launch = () => {
      while (inFlight < options.concurrency && next < options.total && performance.now() < deadline) {
        const index = next++
        inFlight++
        const sentAt = performance.now()
        request(options.socketPath, options.body(index)).then(
          (line) => {
            const reply = { index, sentAt, repliedAt: performance.now(), line }
            replies.push(reply)
            options.onReply?.(reply)
          },
          (e: unknown) => {
            errors++
            firstError ??= e instanceof Error ? e.message : String(e)
          }
        ).finally(() => {
          inFlight--
          launch()
          maybeEnd()
        })
      }
    }
    launch()
    maybeEnd()
  })

/**
 * Send `total` requests at `ratePerSecond`, each at its scheduled time
 * whether or not earlier ones were answered. `lag` of a reply is how late
 * it was sent against its schedule (the generator's own delay).
 */
export const openLoop = (options: {
  readonly socketPath: string
  readonly total: number
  readonly ratePerSecond: number
  readonly body: (index: number) => string
  readonly onReply?: (reply: Reply) => void
  readonly timeoutMs?: number
}): Promise<LoopResult & { readonly lagMs: ReadonlyArray<number> }> =>
  new Promise((resolve) => {
    const replies: Array<Reply> = []
    const lagMs: Array<number> = []
    let next = 0
    let outstanding = 0
    let errors = 0
    let firstError: string | undefined
    const interval = 1000 / options.ratePerSecond
    const startedAt = performance.now()
    let finished = false
    const maybeEnd = () => {
      if (finished || next < options.total || outstanding > 0) return
      finished = true
      resolve({ replies, errors, firstError, startedAt, endedAt: performance.now(), lagMs })
    }
    const tick = () => {
      const now = performance.now()
      while (next < options.total && startedAt + next * interval <= now) {
        const index = next++
        const sentAt = performance.now()
        lagMs.push(sentAt - (startedAt + index * interval))
        outstanding++
        request(options.socketPath, options.body(index), options.timeoutMs).then(
          (line) => {
            const reply = { index, sentAt, repliedAt: performance.now(), line }
            replies.push(reply)
            options.onReply?.(reply)
          },
          (e: unknown) => {
            errors++
            firstError ??= e instanceof Error ? e.message : String(e)
          }
        ).finally(() => {
          outstanding--
          maybeEnd()
        })
      }
      if (next < options.total) {
        const wait = startedAt + next * interval - performance.now()
        setTimeout(tick, Math.max(0, Math.floor(wait)))
      } else {
        maybeEnd()
      }
    }
    tick()
  })
