/**
 * Tests of Names: what makes a valid score or player name, job id, task key,
 * attempt and task reference, and the errors for invalid ones.
 */
import { describe, expect, it } from "@effect/vitest"
import { Names } from "@orchestra/core"
import { Either, ParseResult, Schema } from "effect"

const problem = <A, I>(schema: Schema.Schema<A, I>, u: unknown): string | undefined => {
  const r = Schema.decodeUnknownEither(schema)(u)
  return Either.isLeft(r) ? ParseResult.TreeFormatter.formatErrorSync(r.left) : undefined
}

describe("ScoreName and PlayerName", () => {
  it.each(["disk-usage", "web-01.example.org", "a", "x".repeat(128), "UPPER_lower.123", "é"])("%s is a valid name", (s) => {
    expect(Names.scoreName(s)).toBe(s)
    expect(Names.playerName(s)).toBe(s)
  })

  it.each([
    ["", "must not be empty"],
    ["x".repeat(129), "must be at most 128 characters (got 129)"],
    ["a/b", `must not contain "/"`],
    ["../etc", `must not contain "/"`],
    ["two words", "must not contain whitespace or control characters"],
    ["tab\there", "must not contain whitespace or control characters"],
    ["nl\n", "must not contain whitespace or control characters"],
    ["nul\u0000", "must not contain whitespace or control characters"],
    ["del\u007f", "must not contain whitespace or control characters"],
    [".", `must not be "." or ".."`],
    ["..", `must not be "." or ".."`]
  ])("%j is refused: %s", (s, why) => {
    expect(problem(Names.ScoreName, s)).toContain(`score name ${why}`)
    expect(problem(Names.PlayerName, s)).toContain(`player name ${why}`)
    expect(() => Names.playerName(s)).toThrow()
  })

  it("refuses non-strings", () => {
    expect(problem(Names.PlayerName, 42)).toBeDefined()
    expect(problem(Names.ScoreName, null)).toBeDefined()
  })
})

describe("JobId", () => {
  it("is a positive integer", () => {
    expect(Names.jobId(1)).toBe(1)
    expect(Names.jobId(2 ** 40)).toBe(2 ** 40)
    for (const bad of [0, -1, 1.5, Number.NaN, "3"]) expect(problem(Names.JobId, bad)).toBeDefined()
  })
})

describe("TaskKey", () => {
  it("is a string of 1 to 256 characters", () => {
    expect(Names.taskKey("0")).toBe("0")
    expect(Names.taskKey("k".repeat(256))).toHaveLength(256)
    expect(Names.taskKey("web-01/stage 2")).toBe("web-01/stage 2")
    expect(problem(Names.TaskKey, "")).toBeDefined()
    expect(problem(Names.TaskKey, "k".repeat(257))).toBeDefined()
    expect(problem(Names.TaskKey, 0)).toBeDefined()
  })

  it("accepts every valid player name (all-of keys tasks by player name)", () => {
    expect(problem(Names.TaskKey, "x".repeat(128))).toBeUndefined()
  })
})

describe("Attempt and TaskRef", () => {
  it("an attempt is an integer from 1", () => {
    expect(problem(Names.Attempt, 1)).toBeUndefined()
    expect(problem(Names.Attempt, 0)).toBeDefined()
    expect(problem(Names.Attempt, 1.5)).toBeDefined()
  })

  it("a task reference decodes from JSON and prints as job/key/attempt", () => {
    const ref = Schema.decodeUnknownSync(Names.TaskRef)({ job: 12, key: "web-01", attempt: 3 })
    expect(Names.taskRefString(ref)).toBe("12/web-01/3")
    expect(problem(Names.TaskRef, { job: 12, key: "", attempt: 3 })).toContain("key")
    expect(problem(Names.TaskRef, { job: 12, key: "k" })).toContain("attempt")
  })
})
