import { describe, expect, it } from "@effect/vitest"
import { Errors } from "@orchestra/core"
import { policyRolling } from "@orchestra/policy-rolling"
import { policyStages } from "@orchestra/policy-stages"
import { Effect, Either } from "effect"
import type { JobPlanView } from "../src/Intake.js"
import { decode } from "../src/Intake.js"
import { FakePlayer, harness, p, registry, score, submit, waitFor, waitJob } from "./support.js"

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

/** The players of each batch of a plan. */
const batchesOf = (view: JobPlanView) => view.plan.batches.map((b) => b.map((t) => t.player))

const withDefault = {
  ...thresholdSchema,
  properties: { ...thresholdSchema.properties, threshold: { type: "integer", minimum: 1, maximum: 100, default: 90 } }
}

describe("Intake.plan (the dry run of submit)", () => {
  const trio = (labels: Record<string, Record<string, string>> = {}) =>
    Effect.gen(function*() {
      const h = yield* harness({ allowlist: ["violin", "viola", "cello", "ghost"], registry: registry(policyRolling(), policyStages()) })
      const fakes = ["violin", "viola", "cello"].map((n) =>
        new FakePlayer(p(n), undefined, { catalog: [score("noop"), score("disk", withDefault)], labels: labels[n] ?? {} })
      )
      for (const f of fakes) yield* f.connect(h.hub)
      for (const n of ["violin", "viola", "cello"]) yield* online(h, n)
      return { h, fakes }
    })

  it.scopedLive("one-of, all-of and rolling show their batches, with the params validated and defaults applied; nothing is stored or dispatched", () =>
    Effect.gen(function*() {
      const { fakes, h } = yield* trio()
      const players = ["violin", "viola", "cello"]
      const one = yield* h.conductor.intake.planUnknown({ score: "disk", players, policy: { name: "one-of" }, params: { path: "/var" } })
      expect(one.plan.batches).toEqual([[{ key: "0", player: "violin", candidates: ["violin", "viola", "cello"] }]])
      expect(one.plan.finished).toEqual({ state: "OK" })
      expect(one.params).toEqual({ path: "/var", threshold: 90 })
      expect(one.score).toBe("disk")
      expect(one.policy).toEqual({ name: "one-of", options: {} })
      expect(one.targets).toEqual(players)
      expect(one.unchecked).toEqual([])
      expect(one.offline).toEqual([])

      const all = yield* h.conductor.intake.planUnknown({ score: "disk", players, policy: { name: "all-of" }, params: { path: "/", threshold: 50 } })
      expect(batchesOf(all)).toEqual([players])
      expect(all.params).toEqual({ path: "/", threshold: 50 })

      const rolling = yield* h.conductor.intake.planUnknown({ score: "noop", players, policy: { name: "rolling", options: { batch: 1 } } })
      expect(batchesOf(rolling)).toEqual([["violin"], ["viola"], ["cello"]])
      expect(rolling.plan.policy).toBe("rolling")
      expect(rolling.plan.finished?.state).toBe("OK")

      // a named player that never connected: it would check the params itself, and its task would wait for it
      const ghost = yield* h.conductor.intake.planUnknown({ score: "noop", players: ["ghost", "violin"], policy: { name: "all-of" } })
      expect(batchesOf(ghost)).toEqual([["ghost", "violin"]])
      expect(ghost.unchecked).toEqual(["ghost"])
      expect(ghost.offline).toEqual(["ghost"])

      // nothing stored, no id allocated, nothing sent to a player
      expect((yield* h.store.listJobs({})).jobs).toEqual([])
      expect(fakes.map((f) => f.received.length)).toEqual([0, 0, 0])
      const id = yield* submit(h, { score: "noop", players: ["violin"] })
      expect(id).toBe(1)
    }))

  it.scopedLive("resolves a label selector as submit does (named players first, then matches sorted), and stages by label", () =>
    Effect.gen(function*() {
      const { h } = yield* trio({ violin: { section: "strings" }, viola: { section: "strings", canary: "yes" }, cello: { section: "strings" } })
      const bySelector = yield* h.conductor.intake.planUnknown({ score: "noop", selector: { section: "strings" }, policy: { name: "all-of" } })
      expect(bySelector.targets).toEqual(["cello", "viola", "violin"])
      expect(bySelector.targetLabels).toEqual({
        cello: { section: "strings" },
        viola: { section: "strings", canary: "yes" },
        violin: { section: "strings" }
      })
      const named = yield* h.conductor.intake.planUnknown({ score: "noop", players: ["violin"], selector: { section: "strings" }, policy: { name: "one-of" } })
      expect(named.targets).toEqual(["violin", "cello", "viola"])
      const staged = yield* h.conductor.intake.planUnknown({
        score: "noop",
        selector: { section: "strings" },
        policy: {
          name: "stages",
          options: { stages: [{ selector: { canary: "yes" }, policy: { name: "all-of" } }, { policy: { name: "rolling", options: { batch: 1 } } }] }
        }
      })
      expect(batchesOf(staged)).toEqual([["viola"], ["cello"], ["violin"]])
      const none = yield* Effect.flip(h.conductor.intake.planUnknown({ score: "noop", selector: { section: "brass" }, policy: { name: "all-of" } }))
      expect(none.issues).toEqual([{ path: "selector", message: "no known player has the labels section=brass" }])
      expect((yield* h.store.listJobs({})).jobs).toEqual([])
    }))

  it.scopedLive("refuses what submit refuses, with every violation, and stores nothing", () =>
    Effect.gen(function*() {
      const { h } = yield* trio()
      const bad = { score: "disk", players: ["violin", "intruder"], policy: { name: "rolling", options: { batch: 0 } }, params: { path: "tmp", threshold: 150, colour: "red" } }
      const planned = yield* Effect.flip(h.conductor.intake.planUnknown(bad))
      const submitted = yield* Effect.flip(h.conductor.intake.submitUnknown(bad))
      expect(planned).toBeInstanceOf(Errors.InvalidRequest)
      expect(planned.message).toBe(submitted.message)
      const paths = planned.issues.map((i) => i.path)
      expect(paths).toEqual(expect.arrayContaining(["policy.options", "players", "params.path", "params.threshold"]))
      expect(planned.issues.some((i) => i.message.includes("colour"))).toBe(true)
      expect(planned.issues.length).toBeGreaterThanOrEqual(5)
      const malformed = yield* Effect.flip(h.conductor.intake.planUnknown({ score: "a/b", policy: {} }))
      expect(malformed.issues.map((i) => i.path)).toEqual(expect.arrayContaining(["score", "policy.name"]))
      expect((yield* h.store.listJobs({})).jobs).toEqual([])
    }))
})
