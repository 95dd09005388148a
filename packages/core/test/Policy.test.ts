/**
 * Tests of Policy: `make` turns a typed policy into a plugin whose options
 * are checked by the policy's own schema (all errors, excess keys refused),
 * and `isPolicyPlugin` recognises plugins loaded from user code.
 */
import { describe, expect, it } from "@effect/vitest"
import { Errors, Names, Policy } from "@orchestra/core"
import { Either, Schema } from "effect"

const Options = Schema.Struct({
  batch: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 1 }),
  maxFailures: Schema.optional(Schema.Int.pipe(Schema.nonNegative())),
  timeout: Schema.optionalWith(Schema.NumberFromString, { default: () => 30 })
})
type Options = typeof Options.Type

const seen: Array<Options> = []
const rolling = Policy.make<Options, typeof Options.Encoded, { readonly ended: number }>({
  name: "rolling-test",
  description: "a policy with options",
  options: Options,
  start: (context) => {
    seen.push(context.options)
    return { state: { ended: 0 }, actions: [{ _tag: "Run", key: Names.taskKey("0"), players: context.players }] }
  },
  onTaskEnded: (state) => ({ state: { ended: state.ended + 1 }, actions: [], finished: { state: "OK" } })
})

const context = {
  job: Names.jobId(1),
  score: Names.scoreName("s"),
  players: [Names.playerName("a")],
  labels: new Map(),
  now: 0,
  policies: () => undefined
}

const decodeLeft = (u: unknown): Errors.PolicyError => {
  const d = rolling.decodeOptions(u)
  if (Either.isRight(d)) throw new Error(`expected ${JSON.stringify(u)} to be refused`)
  return d.left
}

describe("Policy.make", () => {
  it("makes a policy plugin with the policy's name and description", () => {
    expect(rolling.kind).toBe("policy")
    expect(rolling.name).toBe("rolling-test")
    expect(rolling.description).toBe("a policy with options")
    expect(Policy.isPolicyPlugin(rolling)).toBe(true)
  })

  it("decodes options, with defaults and transformations, and hands them to start", () => {
    seen.length = 0
    const d = rolling.decodeOptions({ batch: 5, timeout: "12" })
    expect(Either.isRight(d)).toBe(true)
    const options = Either.getOrThrow(d)
    expect(options.policy).toBe("rolling-test")
    const decision = options.start(context)
    expect(seen).toEqual([{ batch: 5, timeout: 12 }])
    expect(decision.actions).toEqual([{ _tag: "Run", key: "0", players: ["a"] }])
    expect(options.onTaskEnded(decision.state, { key: Names.taskKey("0"), player: Names.playerName("a"), attempt: 1, outcome: "OK", response: {} }, 1))
      .toEqual({ state: { ended: 1 }, actions: [], finished: { state: "OK" } })
  })

  it("treats absent options (undefined or null) as an empty object", () => {
    seen.length = 0
    Either.getOrThrow(rolling.decodeOptions(undefined)).start(context)
    Either.getOrThrow(rolling.decodeOptions(null)).start(context)
    expect(seen).toEqual([{ batch: 1, timeout: 30 }, { batch: 1, timeout: 30 }])
  })

  it("refuses bad options with a PolicyError naming the policy and every problem", () => {
    const e = decodeLeft({ batch: 0, maxFailures: -1 })
    expect(e).toBeInstanceOf(Errors.PolicyError)
    expect(e.policy).toBe("rolling-test")
    expect(e.reason).toBe("options")
    expect(e.message).toMatch(/^invalid options for policy "rolling-test": /)
    expect(e.message).toContain("batch")
    expect(e.message).toContain("maxFailures")
  })

  it("refuses keys the schema does not know", () => {
    expect(decodeLeft({ batch: 2, bacth: 3 }).message).toContain("bacth")
  })

  it("refuses options that are not an object", () => {
    for (const u of ["fast", 3, true, [1]]) expect(decodeLeft(u).reason).toBe("options")
  })

  it("each decode binds its own options: two jobs of the same policy do not share them", () => {
    seen.length = 0
    const a = Either.getOrThrow(rolling.decodeOptions({ batch: 2 }))
    const b = Either.getOrThrow(rolling.decodeOptions({ batch: 3 }))
    b.start(context)
    a.start(context)
    expect(seen.map((o) => o.batch)).toEqual([3, 2])
  })
})

describe("Policy.isPolicyPlugin", () => {
  it.each([
    ["null", null],
    ["a string", "one-of"],
    ["an empty object", {}],
    ["a store plugin", { kind: "store", name: "memory", make: () => undefined }],
    ["a policy without decodeOptions", { kind: "policy", name: "x" }],
    ["a policy without a name", { kind: "policy", decodeOptions: (): unknown => undefined }],
    ["a policy with a numeric name", { kind: "policy", name: 1, decodeOptions: (): unknown => undefined }]
  ])("%s is not a policy plugin", (_, u) => {
    expect(Policy.isPolicyPlugin(u)).toBe(false)
  })

  it("a hand-made object with kind, name and decodeOptions is one", () => {
    expect(Policy.isPolicyPlugin({ kind: "policy", name: "mine", description: "", decodeOptions: () => undefined })).toBe(true)
  })
})
