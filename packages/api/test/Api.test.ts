/**
 * The API definition as clients see it: the OpenAPI document generated
 * from it (every endpoint, the bearer scheme, the submit body's schema),
 * and the event-stream format — what the conductor writes, the parser
 * reads back, in any split of the bytes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { Api, Events, Sse, Views } from "../src/index.js"

describe("the OpenAPI document", () => {
  const doc = Api.openApi() as unknown as {
    paths: Record<string, Record<string, { security?: ReadonlyArray<Record<string, unknown>> }>>
    components: { securitySchemes?: Record<string, { type: string; scheme?: string }>; schemas: Record<string, unknown> }
  }

  it("lists every endpoint of the audience API with its method", () => {
    const endpoints = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`)).sort()
    expect(endpoints).toEqual([
      "GET /healthz",
      "GET /metrics",
      "GET /v1/events",
      "GET /v1/jobs",
      "GET /v1/jobs/{id}",
      "GET /v1/jobs/{id}/events",
      "GET /v1/jobs/{id}/tasks/{key}/attempts/{attempt}/log",
      "GET /v1/jobs/{id}/wait",
      "GET /v1/openapi.json",
      "GET /v1/pipelines",
      "GET /v1/pipelines/{id}",
      "GET /v1/pipelines/{id}/wait",
      "GET /v1/players",
      "GET /v1/schedules",
      "GET /v1/scores",
      "POST /v1/jobs",
      "POST /v1/jobs/plan",
      "POST /v1/jobs/{id}/cancel",
      "POST /v1/pipelines",
      "POST /v1/pipelines/{id}/cancel"
    ])
  })

  it("describes the pipeline run body: the document is required", () => {
    const run = doc.components.schemas["PipelineRunRequest"] as { required: ReadonlyArray<string>; properties: Record<string, unknown> }
    expect([...run.required]).toEqual(["document"])
    expect(Object.keys(run.properties).sort()).toEqual(["document", "file", "idempotencyKey", "params"])
  })

  it("asks for a bearer token on /v1 and not on the health check", () => {
    const schemes = Object.values(doc.components.securitySchemes ?? {})
    expect(schemes.some((s) => s.type === "http" && s.scheme === "bearer")).toBe(true)
    expect(doc.paths["/v1/jobs"]?.["post"]?.security?.length ?? 0).toBeGreaterThan(0)
    expect(doc.paths["/healthz"]?.["get"]?.security ?? []).toEqual([])
  })

  it("describes the submit body", () => {
    const submit = doc.components.schemas["SubmitRequest"] as { required: ReadonlyArray<string>; properties: Record<string, unknown> }
    expect([...submit.required].sort()).toEqual(["policy", "score"])
    expect(Object.keys(submit.properties)).toEqual(expect.arrayContaining(["players", "selector", "params", "idempotencyKey", "deadline", "retry"]))
  })

  it("refuses a submit body without a policy, naming the field", () => {
    const r = Schema.decodeUnknownEither(Views.SubmitRequest)({ score: "echo" })
    expect(r._tag).toBe("Left")
    if (r._tag === "Left") expect(String(r.left)).toContain("policy")
  })
})

describe("server-sent events", () => {
  const events: ReadonlyArray<Events.Event> = [
    { type: "job.submitted", id: "b-1", at: 1, job: 7, score: "echo", policy: "all-of", targets: ["a", "b"] },
    { type: "task.finished", id: "b-2", at: 2, job: 7, score: "echo", key: "a", player: "a", attempt: 1, outcome: "OK" },
    { type: "job.finished", id: "b-3", at: 3, job: 7, score: "echo", targets: ["a", "b"], state: "PARTIAL_FAIL" }
  ]
  const wire = Sse.comment("hello\nthere") + events.map(Sse.encode).join("") + Sse.retry(1500)

  it("reads back what is written, whatever the chunking, with the last event id", () => {
    for (const size of [1, 2, 3, 7, 64, wire.length]) {
      const parser = new Sse.Parser()
      const got: Array<Sse.Message> = []
      for (let i = 0; i < wire.length; i += size) got.push(...parser.feed(wire.slice(i, i + size)))
      expect(got.map((m) => m.id)).toEqual(["b-1", "b-2", "b-3"])
      expect(got.map((m) => m.event)).toEqual(["job.submitted", "task.finished", "job.finished"])
      expect(got.map((m) => Sse.toEvent(m))).toEqual(events)
      expect(parser.lastEventId).toBe("b-3")
    }
  })

  it("event ids order by boot, then sequence", () => {
    const id = Events.formatId(Events.bootId(1_700_000_000_000), 42)
    expect(Events.parseId(id)).toEqual({ boot: Events.bootId(1_700_000_000_000), seq: 42 })
    expect(Events.parseId("no-dash-number-x")).toBeUndefined()
  })
})
