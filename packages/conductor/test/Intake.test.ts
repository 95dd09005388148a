import { describe, expect, it } from "@effect/vitest"
import { Errors } from "@orchestra/core"
import { Effect, Either } from "effect"
import { decode } from "../src/Intake.js"
import { FakePlayer, harness, p, score, submit, waitFor, waitJob } from "./support.js"

const thresholdSchema = {
  type: "object",
  required: ["path"],
  additionalProperties: false,
  properties: {
    path: { type: "string", pattern: "^/" },
    threshold: { type: "integer", minimum: 1, maximum: 100 }
  }
}

const online = (h: { readonly conductor: { readonly engine: { readonly player: (n: never) => { readonly online: boolean } | undefined } } }, name: string) =>
  waitFor(`${name} online`, Effect.sync(() => h.conductor.engine.player(p(name) as never)?.online === true))

describe("Intake", () => {
  it.scopedLive("refuses with every issue named: unknown policy, unknown player, unknown score", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["p1"] })
      yield* new FakePlayer(p("p1")).connect(h.hub)
      yield* online(h, "p1")
      const e = yield* Effect.flip(h.conductor.intake.submitUnknown({
        score: "nope",
        players: ["p1", "ghost", "phantom", "ghost"],
        policy: { name: "some-of" }
      }))
      expect(e).toBeInstanceOf(Errors.InvalidRequest)
      const issues = (e as Errors.InvalidRequest).issues
      expect(issues.map((i) => i.path)).toEqual(["policy.name", "players", "score"])
      expect(issues[0]!.message).toContain(`unknown policy plugin "some-of" (known: all-of, one-of)`)
      expect(issues[1]!.message).toBe("not on the allowlist: ghost, phantom")
      expect(issues[2]!.message).toBe(`unknown score "nope" on every target player that reported its catalog (p1)`)
      expect(e.message).toContain("policy.name: ")
      expect(e.message).toContain("players: not on the allowlist: ghost, phantom")
      expect(e.message).toContain("score: unknown score")
      expect((yield* h.store.listJobs({})).jobs).toEqual([])
    }))

  it.scopedLive("refuses bad policy options and lists every parameter violation", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["p1"] })
      yield* new FakePlayer(p("p1"), undefined, { catalog: [score("disk", thresholdSchema)] }).connect(h.hub)
      yield* online(h, "p1")
      const e = yield* Effect.flip(h.conductor.intake.submitUnknown({
        score: "disk",
        players: ["p1"],
        policy: { name: "one-of", options: { batch: 3 } },
        params: { path: "relative", threshold: 500, extra: "x" }
      }))
      const issues = (e as Errors.InvalidRequest).issues
      expect(issues.map((i) => i.path)).toEqual(expect.arrayContaining(["policy.options", "params.path", "params.threshold"]))
      expect(issues.find((i) => i.path === "policy.options")!.message).toContain("batch")
      expect(issues.some((i) => i.message.includes("extra"))).toBe(true)
      expect(issues.length).toBeGreaterThanOrEqual(4)
    }))

  it.scopedLive("accepts valid params and a score known to only some targets", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["p1", "p2"] })
      yield* new FakePlayer(p("p1"), () => ({ outcome: "UNK_SCORE" }), { catalog: [] }).connect(h.hub)
      yield* new FakePlayer(p("p2"), undefined, { catalog: [score("disk", thresholdSchema)] }).connect(h.hub)
      yield* online(h, "p1")
      yield* online(h, "p2")
      const id = yield* h.conductor.intake.submitUnknown({
        score: "disk",
        players: ["p1", "p2"],
        policy: { name: "one-of" },
        params: { path: "/var", threshold: 90 }
      }).pipe(Effect.map((a) => a.id))
      expect((yield* waitJob(h.store, id)).state).toBe("OK")
    }))

  it.scopedLive("targets that have not reported a catalog do not block a submission", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["p1"] })
      const id = yield* submit(h, { score: "whatever", players: ["p1"], params: { any: "thing" } })
      expect(id).toBe(1)
    }))

  it.scopedLive("resolves a label selector against the players' labels, and records targets and labels", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["web1", "web2", "db1"] })
      yield* new FakePlayer(p("web1"), undefined, { labels: { role: "web" } }).connect(h.hub)
      yield* new FakePlayer(p("web2"), undefined, { labels: { role: "web", zone: "b" } }).connect(h.hub)
      yield* new FakePlayer(p("db1"), undefined, { labels: { role: "db" } }).connect(h.hub)
      for (const n of ["web1", "web2", "db1"]) yield* online(h, n)
      const { id } = yield* h.conductor.intake.submitUnknown({
        score: "noop",
        selector: { role: "web" },
        policy: { name: "all-of" }
      })
      const job = yield* waitJob(h.store, id)
      expect(job.state).toBe("OK")
      expect(job.targets).toEqual(["web1", "web2"])
      expect(job.targetLabels).toEqual({ web1: { role: "web" }, web2: { role: "web", zone: "b" } })
      const none = yield* Effect.flip(h.conductor.intake.submitUnknown({ score: "noop", selector: { role: "cache" }, policy: { name: "all-of" } }))
      expect((none as Errors.InvalidRequest).issues).toEqual([{ path: "selector", message: "no known player has the labels role=cache" }])
      const empty = yield* Effect.flip(h.conductor.intake.submitUnknown({ score: "noop", players: [], policy: { name: "all-of" } }))
      expect((empty as Errors.InvalidRequest).issues[0]!.path).toBe("players")
    }))

  it.scopedLive("honours the idempotency key: the same key returns the same job, started once", () =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["p1"] })
      const p1 = new FakePlayer(p("p1"))
      yield* p1.connect(h.hub)
      const req = { score: "noop", players: ["p1"], policy: { name: "one-of" }, idempotencyKey: "k-1" }
      const a = yield* h.conductor.intake.submitUnknown(req)
      const b = yield* h.conductor.intake.submitUnknown(req)
      expect(a).toEqual({ id: a.id, existing: false })
      expect(b).toEqual({ id: a.id, existing: true })
      yield* waitJob(h.store, a.id)
      yield* Effect.sleep(20)
      expect(p1.received.length).toBe(1)
    }))

  it("decode lists every schema issue of a malformed request", () => {
    const r = decode({ score: "a/b", players: "p1", policy: {}, surprise: 1 })
    expect(Either.isLeft(r)).toBe(true)
    if (Either.isLeft(r)) {
      const paths = r.left.issues.map((i) => i.path)
      expect(paths).toEqual(expect.arrayContaining(["score", "players", "policy.name", "surprise"]))
    }
  })
})
