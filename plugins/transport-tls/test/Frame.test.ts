/**
 * The frame codec: round trips under random splitting and coalescing of
 * chunks, size limits, and the payload checks (UTF-8, JSON, schema,
 * heartbeats).
 */
import { describe, expect, it } from "@effect/vitest"
import { Names, Protocol } from "@orchestra/core"
import { Either } from "effect"
import { Frame } from "../src/index.js"

/** A small seeded PRNG (mulberry32), so failures reproduce. */
const prng = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const randomPayload = (rand: () => number): Buffer => {
  const kind = Math.floor(rand() * 5)
  switch (kind) {
    case 0:
      return Buffer.alloc(0)
    case 1:
      return Buffer.from(JSON.stringify({ text: "é€😀".repeat(Math.floor(rand() * 50)), n: rand() }), "utf8")
    case 2: {
      const b = Buffer.allocUnsafe(Math.floor(rand() * 300_000))
      for (let i = 0; i < b.length; i += 4096) b[i] = Math.floor(rand() * 256)
      return b
    }
    default: {
      const b = Buffer.allocUnsafe(Math.floor(rand() * 64))
      for (let i = 0; i < b.length; i++) b[i] = Math.floor(rand() * 256)
      return b
    }
  }
}

/** Cut a buffer into chunks: single bytes, small pieces, or big ones spanning frames. */
const randomChunks = (data: Buffer, rand: () => number): Array<Buffer> => {
  const chunks: Array<Buffer> = []
  let at = 0
  while (at < data.length) {
    const mode = rand()
    const size = mode < 0.2 ? 1 : mode < 0.6 ? 1 + Math.floor(rand() * 16) : 1 + Math.floor(rand() * 200_000)
    // Copy, so that nothing depends on the chunks sharing one buffer.
    chunks.push(Buffer.from(data.subarray(at, at + size)))
    at += size
  }
  return chunks
}

describe("FrameDecoder", () => {
  it("round-trips frames under random splitting and coalescing (200 runs)", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rand = prng(seed)
      const payloads = Array.from({ length: 1 + Math.floor(rand() * 40) }, () => randomPayload(rand))
      const stream = Buffer.concat(payloads.map((p) => Frame.encode(p)))
      const decoder = new Frame.FrameDecoder(1024 * 1024)
      const out: Array<Buffer> = []
      for (const chunk of randomChunks(stream, rand)) {
        const { error, frames } = decoder.push(chunk)
        expect(error).toBeUndefined()
        out.push(...frames)
      }
      expect(decoder.buffered).toBe(0)
      expect(out.length).toBe(payloads.length)
      for (let i = 0; i < payloads.length; i++) {
        if (!out[i]!.equals(payloads[i]!)) throw new Error(`seed ${seed}: frame ${i} differs`)
      }
    }
  })

  it("returns frames inside one chunk as views, without copying", () => {
    const chunk = Buffer.concat([Frame.encode("{\"a\":1}"), Frame.encode("[2]"), Frame.encode("\"x\"")])
    const { frames } = new Frame.FrameDecoder().push(chunk)
    expect(frames.map((f) => f.toString())).toEqual(["{\"a\":1}", "[2]", "\"x\""])
    for (const f of frames) expect(f.buffer).toBe(chunk.buffer)
  })

  it("reassembles a 4 MiB frame fed one 1 KiB chunk at a time", () => {
    const payload = Buffer.alloc(4 * 1024 * 1024, 7)
    const data = Frame.encode(payload)
    const decoder = new Frame.FrameDecoder()
    const frames: Array<Buffer> = []
    for (let at = 0; at < data.length; at += 1024) frames.push(...decoder.push(data.subarray(at, at + 1024)).frames)
    expect(frames.length).toBe(1)
    expect(frames[0]!.equals(payload)).toBe(true)
  })

  it("rejects a declared length over the maximum as soon as the header arrives, and stays failed", () => {
    const decoder = new Frame.FrameDecoder(1000)
    const header = Buffer.alloc(4)
    header.writeUInt32BE(1001)
    const first = decoder.push(header.subarray(0, 3))
    expect(first.error).toBeUndefined()
    const second = decoder.push(header.subarray(3))
    expect(second.error?.reason).toBe("oversized")
    expect(second.error?.message).toContain("1001 bytes exceeds the maximum of 1000")
    expect(decoder.push(Frame.encode("{}")).error?.reason).toBe("oversized")
    expect(decoder.push(Frame.encode("{}")).frames.length).toBe(0)
  })

  it("accepts a frame of exactly the maximum, and keeps frames decoded before an oversized one", () => {
    const decoder = new Frame.FrameDecoder(1024)
    const ok = Buffer.alloc(1024, 0x20)
    const big = Buffer.alloc(4)
    big.writeUInt32BE(0xffffffff)
    const { error, frames } = decoder.push(Buffer.concat([Frame.encode(ok), big]))
    expect(frames.length).toBe(1)
    expect(frames[0]!.length).toBe(1024)
    expect(error?.reason).toBe("oversized")
  })
})

describe("payloads", () => {
  it("tells heartbeats from messages", () => {
    expect(Either.getOrThrow(Frame.parsePayload(Frame.PING.subarray(4)))).toEqual({ _tag: "Ping" })
    expect(Either.getOrThrow(Frame.parsePayload(Frame.PONG.subarray(4)))).toEqual({ _tag: "Pong" })
    const other = Either.getOrThrow(Frame.parsePayload(Buffer.from("{\"_tag\":\"Ping\",\"x\":1}")))
    expect(other._tag).toBe("Message")
  })

  it("rejects invalid UTF-8, and text that is not JSON", () => {
    const utf8 = Frame.parsePayload(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))
    expect(Either.isLeft(utf8) && utf8.left.reason).toBe("utf8")
    const overlong = Frame.parsePayload(Buffer.from([0x22, 0xc0, 0xaf, 0x22]))
    expect(Either.isLeft(overlong) && overlong.left.reason).toBe("utf8")
    const json = Frame.parsePayload(Buffer.from("{\"a\":"))
    expect(Either.isLeft(json) && json.left.reason).toBe("json")
    const empty = Frame.parsePayload(Buffer.alloc(0))
    expect(Either.isLeft(empty) && empty.left.reason).toBe("json")
  })

  it("round-trips every protocol message through the codecs", () => {
    const ref = { job: Names.jobId(7), key: Names.taskKey("web-1"), attempt: 2 }
    const toPlayer: ReadonlyArray<Protocol.ToPlayer> = [
      new Protocol.Welcome({ protocol: 1, conductor: "c" }),
      new Protocol.Run({ tasks: [{ ref, score: Names.scoreName("disk"), params: { path: "/", deep: { a: [1, null, "é"] } }, deadline: 5 }] }),
      new Protocol.Ack({ refs: [ref] }),
      new Protocol.Cancel({ refs: [ref] }),
      new Protocol.Refused({ reason: "no" })
    ]
    for (const m of toPlayer) {
      const frame = Frame.toPlayer.encode(m)
      expect(frame.readUInt32BE(0)).toBe(frame.length - 4)
      const back = Either.getOrThrow(Frame.decodePayload(Frame.toPlayer, frame.subarray(4)))
      expect(back).toEqual({ _tag: "Message", message: m })
    }
    const fromPlayer: ReadonlyArray<Protocol.FromPlayer> = [
      new Protocol.Hello({ protocol: 1, player: Names.playerName("p1"), slots: 3, labels: { a: "b" }, catalog: [], running: [ref] }),
      new Protocol.CatalogChanged({ catalog: [] }),
      new Protocol.Started({ tasks: [{ ref, at: 1 }] }),
      new Protocol.Results({ results: [{ ref, outcome: "FAIL", response: { k: "v" }, log: "oops", startedAt: 1, finishedAt: 2 }] })
    ]
    for (const m of fromPlayer) {
      const back = Either.getOrThrow(Frame.decodePayload(Frame.fromPlayer, Frame.fromPlayer.encode(m).subarray(4)))
      expect(back).toEqual({ _tag: "Message", message: m })
    }
  })

  it("reports every schema issue, and messages of the other direction are refused", () => {
    const bad = Frame.decodePayload(
      Frame.fromPlayer,
      Buffer.from(JSON.stringify({ _tag: "Hello", protocol: 2, player: "a b", slots: 0, catalog: [] }))
    )
    expect(Either.isLeft(bad)).toBe(true)
    if (Either.isLeft(bad)) {
      expect(bad.left.reason).toBe("schema")
      expect(bad.left.message).toContain("protocol")
      expect(bad.left.message).toContain("player")
      expect(bad.left.message).toContain("slots")
    }
    const wrongWay = Frame.decodePayload(Frame.fromPlayer, Frame.toPlayer.encode(new Protocol.Welcome({ protocol: 1, conductor: "c" })).subarray(4))
    expect(Either.isLeft(wrongWay) && wrongWay.left.reason).toBe("schema")
    const noTag = Frame.decodePayload(Frame.toPlayer, Buffer.from("[1,2]"))
    expect(Either.isLeft(noTag) && noTag.left.reason).toBe("schema")
  })
})
