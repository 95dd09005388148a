import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { Units, Yaml } from "../src/index.js"

describe("Units", () => {
  it("parses durations", () => {
    expect(Units.parseDuration("250ms")).toEqual(Either.right(250))
    expect(Units.parseDuration("30s")).toEqual(Either.right(30_000))
    expect(Units.parseDuration("5m")).toEqual(Either.right(300_000))
    expect(Units.parseDuration("1h")).toEqual(Either.right(3_600_000))
    expect(Units.parseDuration("1.5s")).toEqual(Either.right(1500))
    expect(Units.parseDuration("2d")).toEqual(Either.right(172_800_000))
    expect(Units.parseDuration(10)).toEqual(Either.right(10_000))
    expect(Units.parseDuration(0.25)).toEqual(Either.right(250))
    for (const bad of ["30", "5 minutes", "-1s", "s", "", "1x"]) {
      expect(Either.isLeft(Units.parseDuration(bad)), bad).toBe(true)
    }
    expect(Either.isLeft(Units.parseDuration(-1))).toBe(true)
    expect(Either.isLeft(Units.parseDuration(Number.NaN))).toBe(true)
  })

  it("parses sizes", () => {
    expect(Units.parseSize("1MiB")).toEqual(Either.right(1024 * 1024))
    expect(Units.parseSize("64KiB")).toEqual(Either.right(65536))
    expect(Units.parseSize("1000")).toEqual(Either.right(1000))
    expect(Units.parseSize("10MB")).toEqual(Either.right(10_000_000))
    expect(Units.parseSize("2G")).toEqual(Either.right(2 * 1024 ** 3))
    expect(Units.parseSize(4096)).toEqual(Either.right(4096))
    for (const bad of ["1 TB", "-1", "MiB", "1.5.2K"]) expect(Either.isLeft(Units.parseSize(bad)), bad).toBe(true)
    expect(Either.isLeft(Units.parseSize(1.5))).toBe(true)
  })

  it("formats back", () => {
    expect(Units.formatDuration(30_000)).toBe("30s")
    expect(Units.formatDuration(3_600_000)).toBe("1h")
    expect(Units.formatDuration(1500)).toBe("1500ms")
    expect(Units.formatSize(1024 * 1024)).toBe("1MiB")
    expect(Units.formatSize(1000)).toBe("1000")
  })

  it("Schemas decode in configs with located messages", () => {
    const S = Schema.Struct({ timeout: Units.DurationMs, max: Units.ByteSize })
    expect(Yaml.decode(S, "timeout: 5m\nmax: 64KiB\n", "c.yaml")).toEqual(Either.right({ timeout: 300_000, max: 65536 }))
    const r = Yaml.decode(S, "timeout: soon\nmax: lots\n", "c.yaml")
    expect(Either.isLeft(r)).toBe(true)
    if (Either.isLeft(r)) {
      expect(r.left.issues[0]!.path).toBe("c.yaml:1: timeout")
      expect(r.left.issues[0]!.message).toMatch(/invalid duration "soon"/)
      expect(r.left.issues[1]!.path).toBe("c.yaml:2: max")
      expect(r.left.issues[1]!.message).toMatch(/invalid size "lots"/)
    }
    expect(Schema.encodeSync(S)({ timeout: 60_000, max: 2048 })).toEqual({ timeout: "1m", max: "2KiB" })
  })
})
