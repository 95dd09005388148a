import { describe, expect, it } from "vitest"
import * as Progress from "../src/Progress.js"

const updates: ReadonlyArray<Progress.Update> = [
  { _tag: "Dispatched", player: "lute", attempt: 1 },
  { _tag: "Dispatched", player: "lyre", attempt: 1 },
  { _tag: "Started", player: "lute", attempt: 1 },
  { _tag: "Finished", player: "lute", attempt: 1, outcome: "OK", response: { message: "hi" } },
  { _tag: "Started", player: "lyre", attempt: 1 },
  { _tag: "Finished", player: "lyre", attempt: 1, outcome: "FAIL" },
  { _tag: "JobFinished", state: "PARTIAL_FAIL" }
]

const collect = (tty: boolean, list: ReadonlyArray<Progress.Update>) => {
  const written: Array<string> = []
  const d = Progress.display(Progress.make(7, { title: "echo (all-of)", targets: 2 }), { tty, write: (t) => written.push(t), columns: 80 })
  list.forEach(d.update)
  d.finish()
  return { written, tracker: d.tracker() }
}

describe("Progress", () => {
  it("as lines: one line per change, in order", () => {
    const { written } = collect(false, updates)
    expect(written.join("")).toBe(
      [
        "job 7: lute dispatched",
        "job 7: lyre dispatched",
        "job 7: lute started",
        "job 7: lute OK  message=hi",
        "job 7: lyre started",
        "job 7: lyre FAIL",
        "job 7: PARTIAL_FAIL",
        ""
      ].join("\n")
    )
  })

  it("duplicates and older attempts change nothing; a later response fills the row silently", () => {
    const { tracker, written } = collect(false, [
      ...updates,
      ...updates,
      { _tag: "Dispatched", player: "lyre", attempt: 1 },
      { _tag: "Finished", player: "lyre", attempt: 1, outcome: "FAIL", response: { error: "boom" } }
    ])
    expect(written).toHaveLength(7)
    expect(tracker.rows.find((r) => r.player === "lyre")?.response).toEqual({ error: "boom" })
  })

  it("a new attempt replaces the row and says which attempt", () => {
    const { written, tracker } = collect(false, [
      { _tag: "Dispatched", player: "lute", attempt: 1 },
      { _tag: "Finished", player: "lute", attempt: 1, outcome: "TIMEOUT" },
      { _tag: "Dispatched", player: "lute", attempt: 2 },
      { _tag: "Finished", player: "lute", attempt: 1, outcome: "OK" }
    ])
    expect(written.at(-1)).toBe("job 7: lute dispatched (attempt 2)\n")
    expect(tracker.rows).toEqual([{ player: "lute", attempt: 2, phase: "dispatched" }])
  })

  it("on a terminal: the block is redrawn in place, and ends with every player's outcome", () => {
    const { written } = collect(true, updates)
    // first draw has nothing to move over; each later one goes back up over the previous block
    expect(written[0]).not.toContain("\x1b[")
    expect(written.length).toBe(updates.length + 1)
    const last = written.at(-1)!
    const previous = written.at(-2)!.split("\n").length - 1
    expect(last.startsWith(`\x1b[${previous}A\r\x1b[J`)).toBe(true)
    const screen = last.slice(last.indexOf("\x1b[J") + 3)
    expect(screen).toMatch(/^job 7 echo \(all-of\): PARTIAL_FAIL {2}2\/2 dispatched, 0 running, 2 done \(1 OK\)\n/)
    expect(screen).toMatch(/\n {2}lute\s+OK\s+message=hi\n/)
    expect(screen).toMatch(/\n {2}lyre\s+FAIL\n$/)
  })

  it("lines longer than the terminal are cut, so that redrawing stays in place", () => {
    const written: Array<string> = []
    const d = Progress.display(Progress.make(1), { tty: true, write: (t) => written.push(t), columns: 20 })
    d.update({ _tag: "Finished", player: "p", attempt: 1, outcome: "OK", response: { k: "x".repeat(100) } })
    for (const line of written.at(-1)!.split("\n")) expect(line.replace(/\x1b\[[0-9]*[A-Za-z]|\r/g, "").length).toBeLessThan(20)
  })

  it("reads a job's detail and its events", () => {
    const fromDetail = Progress.fromDetail({
      id: 3,
      score: "echo",
      policy: "one-of",
      state: "OK",
      createdAt: 1,
      targets: ["a", "b"],
      players: {},
      request: { score: "echo", policy: { name: "one-of" } },
      attempts: [
        { key: "0", attempt: 1, player: "a", dispatchedAt: 1, finishedAt: 2, outcome: "UNK_SCORE", logBytes: 0 },
        { key: "0", attempt: 2, player: "b", dispatchedAt: 2, startedAt: 3, finishedAt: 4, outcome: "OK", response: { x: "1" }, logBytes: 0 }
      ]
    })
    expect(fromDetail.map((u) => u._tag)).toEqual(["Dispatched", "Finished", "Dispatched", "Started", "Finished", "JobFinished"])
    expect(Progress.fromEvent(3, { type: "task.started", id: "a-1", at: 1, job: 3, score: "echo", key: "0", attempt: 2, player: "b" }))
      .toEqual({ _tag: "Started", player: "b", attempt: 2 })
    expect(Progress.fromEvent(4, { type: "task.started", id: "a-1", at: 1, job: 3, score: "echo", key: "0", attempt: 2, player: "b" }))
      .toBeUndefined()
    expect(Progress.fromEvent(3, { type: "player.connected", id: "a-2", at: 1, player: "b", slots: 4 })).toBeUndefined()
  })
})
