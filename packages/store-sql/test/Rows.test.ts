import { describe, expect, it } from "@effect/vitest"
import { Job, Names } from "@orchestra/core"
import { Effect, Either, Schema } from "effect"
import * as Rows from "../src/internal/rows.js"

const decode = Schema.decodeUnknownSync(Job.JobRequest)
const encode = Schema.encodeSync(Job.JobRequest)

const rich = decode({
  score: "disk-usage",
  players: ["p1", "p2"],
  selector: { role: "web" },
  policy: { name: "rolling", options: { batch: "10%", nested: [1, { a: null }] } },
  params: { path: "/var", n: 1.5, deep: { list: ["ü", "😀", true, null] } },
  deadline: 1_900_000_000_000,
  idempotencyKey: "k-1",
  retry: { max: 3 },
  labels: { team: "ops" }
})

describe("rows", () => {
  it("a JobRequest's own JSON is its encoded form (the fast path of createJob relies on it)", () => {
    for (const request of [rich, decode({ score: "s", policy: { name: "one-of" } })]) {
      expect(JSON.parse(JSON.stringify(request))).toEqual(encode(request))
    }
  })

  it.effect("createJob's row holds the encoded request, whether it came as an instance or not", () =>
    Effect.gen(function*() {
      const job = { request: rich, targets: [Names.playerName("p1")], createdAt: 5 }
      const fromInstance = yield* Rows.createWrite(job)
      const fromPlain = yield* Rows.createWrite({ ...job, request: { ...encode(rich) } as unknown as Job.JobRequest })
      expect(fromInstance).toEqual(fromPlain)
      expect(fromInstance._tag === "Create" && JSON.parse(fromInstance.request)).toEqual(encode(rich))
      const bad = yield* Effect.either(
        Rows.createWrite({ ...job, request: { ...encode(rich), score: "a/b" } as unknown as Job.JobRequest })
      )
      expect(Either.isLeft(bad) && bad.left.operation).toBe("createJob")
    }))
})
