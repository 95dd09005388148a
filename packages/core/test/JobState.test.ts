/**
 * Tests of JobState and Outcome: the finished states, the usual aggregate
 * of outcomes, and which outcomes are soft, hard, OK and retryable.
 */
import { describe, expect, it } from "@effect/vitest"
import { JobState, Outcome } from "@orchestra/core"
import { Schema } from "effect"
import { makeRng } from "./conformance/Simulation.js"

describe("JobState", () => {
  it("PENDING is the only unfinished state", () => {
    expect(JobState.JobState.literals.filter((s) => !JobState.isFinished(s))).toEqual(["PENDING"])
    expect(JobState.FinishedJobState.literals).toEqual(["OK", "PARTIAL_FAIL", "FAIL", "CANCELLED"])
    expect(() => Schema.decodeUnknownSync(JobState.FinishedJobState)("PENDING")).toThrow()
    expect(() => Schema.decodeUnknownSync(JobState.JobState)("DONE")).toThrow()
  })

  it.each([
    [[], "OK"],
    [["OK"], "OK"],
    [["OK", "OK", "OK"], "OK"],
    [["FAIL"], "FAIL"],
    [["UNK_SCORE", "HOST_ERROR", "TIMEOUT"], "FAIL"],
    [["OK", "FAIL"], "PARTIAL_FAIL"],
    [["CANCELLED", "OK"], "PARTIAL_FAIL"],
    [["OK", "OK", "INVALID_PARAMS"], "PARTIAL_FAIL"]
  ] as const)("aggregate(%j) is %s", (outcomes, state) => {
    expect(JobState.aggregate(outcomes)).toBe(state)
  })

  it("aggregate is OK iff every outcome is OK, FAIL iff none is (1,000 random lists)", () => {
    const rng = makeRng(2011)
    for (let i = 0; i < 1000; i++) {
      const outcomes = Array.from({ length: rng.int(1, 12) }, () => rng.pick(Outcome.all))
      const ok = outcomes.filter((o) => o === "OK").length
      const expected = ok === outcomes.length ? "OK" : ok === 0 ? "FAIL" : "PARTIAL_FAIL"
      expect(JobState.aggregate(outcomes)).toBe(expected)
      // Order does not matter, and it takes any iterable.
      expect(JobState.aggregate(new Set(outcomes))).toBe(expected)
      expect(JobState.aggregate([...outcomes].reverse())).toBe(expected)
    }
  })
})

describe("Outcome", () => {
  it("has the 8 outcomes; the soft ones are UNK_SCORE and HOST_ERROR", () => {
    expect(Outcome.all).toHaveLength(8)
    expect(Outcome.all.filter(Outcome.isSoft)).toEqual(["UNK_SCORE", "HOST_ERROR"])
    expect(Outcome.all.filter(Outcome.isHard)).toEqual(["OK", "FAIL", "UNKNOWN_FAILURE", "INVALID_PARAMS", "TIMEOUT", "CANCELLED"])
    expect(Outcome.all.filter(Outcome.isOk)).toEqual(["OK"])
  })

  it("only failures of the score itself are retryable", () => {
    expect(Outcome.all.filter(Outcome.isRetryable)).toEqual(["FAIL", "UNKNOWN_FAILURE", "TIMEOUT"])
    expect(Outcome.all.filter(Outcome.isRetryable).every(Outcome.isHard)).toBe(true)
  })
})
