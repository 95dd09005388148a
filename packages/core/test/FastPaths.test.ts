/**
 * The hand-written fast paths (protocol decoders, job-record decoding) must
 * agree with the schemas they shortcut: whatever a fast path accepts, the
 * schema accepts with an equal value, and whatever the schema refuses, the
 * fast path refuses too (it falls back to the schema, which says why).
 */
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck as fc, Schema } from "effect"
import { Job, Protocol, Store } from "../src/index.js"

const RUNS = 800

/** Random changes to a valid value: drop, retype or add a field, anywhere. */
const mutate = (value: unknown, rng: () => number): unknown => {
  if (Array.isArray(value)) {
    if (value.length === 0 || rng() < 0.2) return [...value, rng() < 0.5 ? null : "x"]
    const i = Math.floor(rng() * value.length)
    return value.map((v, j) => (j === i ? mutate(v, rng) : v))
  }
  if (typeof value === "object" && value !== null) {
    const keys = Object.keys(value)
    const o: Record<string, unknown> = { ...(value as Record<string, unknown>) }
    const r = rng()
    if (keys.length === 0 || r < 0.15) o[`extra${Math.floor(rng() * 3)}`] = 1
    else {
      const k = keys[Math.floor(rng() * keys.length)]!
      if (r < 0.35) delete o[k]
      else o[k] = mutate(o[k], rng)
    }
    return o
  }
  const choices: ReadonlyArray<unknown> = [null, -1, 0, 1.5, "", "a b", "x/y", true, {}, [], 2 ** 60, "OK", "9".repeat(300)]
  return choices[Math.floor(rng() * choices.length)]
}

const seeded = (seed: number) => {
  let s = seed >>> 0
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0
    return s / 2 ** 32
  }
}

const agree = <A, I>(name: string, schema: Schema.Schema<A, I>, fast: (u: unknown) => A | undefined) =>
  it(`${name}: the fast decoder agrees with the schema on valid and mutated messages`, () => {
    const decode = Schema.decodeUnknownEither(schema)
    const encode = Schema.encodeSync(schema)
    const rng = seeded(42)
    let fastHits = 0
    fc.assert(
      fc.property(Arbitrary.make(schema), (value) => {
        const encoded = JSON.parse(JSON.stringify(encode(value))) as unknown
        for (const input of [encoded, mutate(encoded, rng), mutate(mutate(encoded, rng), rng)]) {
          const viaSchema = decode(input)
          const viaFast = fast(input)
          if (viaFast !== undefined) {
            fastHits++
            expect(Either.isRight(viaSchema), `fast path accepted what the schema refuses: ${JSON.stringify(input)}`).toBe(true)
            if (Either.isRight(viaSchema)) expect(encode(viaFast)).toEqual(encode(viaSchema.right))
          }
        }
      }),
      { numRuns: RUNS, seed: 7 }
    )
    // The fast path is actually taken for the common shapes.
    expect(fastHits).toBeGreaterThan(RUNS / 2)
  }, 120_000)

describe("protocol fast decoders", () => {
  agree("Started", Protocol.Started, Protocol.fastDecoders.Started)
  agree("Results", Protocol.Results, Protocol.fastDecoders.Results)
  agree("Run", Protocol.Run, Protocol.fastDecoders.Run)
  agree("Ack", Protocol.Ack, Protocol.fastDecoders.Ack)

  it("a message's JSON is its schema encoding, for every protocol message", () => {
    for (const schema of [Protocol.FromPlayer, Protocol.ToPlayer] as const) {
      const encode = Schema.encodeSync(schema as Schema.Schema<unknown, unknown>)
      fc.assert(
        fc.property(Arbitrary.make(schema as Schema.Schema<unknown, unknown>), (m) => {
          expect(JSON.parse(JSON.stringify(m))).toEqual(JSON.parse(JSON.stringify(encode(m))))
        }),
        { numRuns: 1000, seed: 3 }
      )
    }
  })
})

describe("Store.decodeRecord", () => {
  it("agrees with the JobRecord schema on valid and mutated records", () => {
    const decode = Schema.decodeUnknownEither(Job.JobRecord)
    const encode = Schema.encodeSync(Job.JobRecord)
    const rng = seeded(9)
    fc.assert(
      fc.property(Arbitrary.make(Job.JobRecord), (record) => {
        const encoded = JSON.parse(JSON.stringify(encode(record))) as unknown
        for (const input of [encoded, mutate(encoded, rng), mutate(mutate(encoded, rng), rng)]) {
          const a = Store.decodeRecord(input)
          const b = decode(input)
          expect(Either.isRight(a), `decodeRecord and the schema disagree on ${JSON.stringify(input)}`).toBe(Either.isRight(b))
          if (Either.isRight(a) && Either.isRight(b)) expect(encode(a.right)).toEqual(encode(b.right))
        }
      }),
      { numRuns: 400, seed: 11 }
    )
  }, 120_000)
})
