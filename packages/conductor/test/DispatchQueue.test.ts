import { describe, expect, it } from "@effect/vitest"
import { DispatchQueue } from "../src/DispatchQueue.js"

const names = (xs: ReadonlyArray<{ readonly value: string | number; readonly player: string }>) => xs.map((t) => `${t.value}@${t.player}`)

describe("DispatchQueue", () => {
  it("hands tasks to a player in FIFO order as its slots free", () => {
    const q = new DispatchQueue<string>()
    q.setPlayer("a", { slots: 1, online: true })
    const first = q.enqueue("t1", ["a"])
    expect(first._tag).toBe("Taken")
    expect(q.enqueue("t2", ["a"])._tag).toBe("Queued")
    expect(q.enqueue("t3", ["a"])._tag).toBe("Queued")
    expect(q.size).toBe(2)
    expect(names(q.release("a"))).toEqual(["t2@a"])
    expect(names(q.release("a"))).toEqual(["t3@a"])
    expect(q.release("a")).toEqual([])
    expect(q.running("a")).toBe(0)
    expect(q.size).toBe(0)
  })

  it("puts front entries at the head", () => {
    const q = new DispatchQueue<string>()
    q.setPlayer("a", { slots: 1, online: true })
    q.enqueue("running", ["a"])
    q.enqueue("t1", ["a"])
    q.enqueue("t2", ["a"])
    q.enqueue("urgent", ["a"], { front: true })
    expect(q.queuedFor("a").map((e) => e.value)).toEqual(["urgent", "t1", "t2"])
    expect(names(q.release("a"))).toEqual(["urgent@a"])
  })

  it("takes a task eligible for several players once", () => {
    const q = new DispatchQueue<string>()
    q.setPlayer("a", { slots: 1, online: true })
    q.setPlayer("b", { slots: 1, online: true })
    q.enqueue("busy-a", ["a"])
    q.enqueue("busy-b", ["b"])
    const e = q.enqueue("shared", ["a", "b"])
    expect(e._tag).toBe("Queued")
    expect(q.queuedFor("a").length).toBe(1)
    expect(q.queuedFor("b").length).toBe(1)
    expect(names(q.release("b"))).toEqual(["shared@b"])
    // the copy in a's deque is stale and skipped
    expect(q.queuedFor("a").length).toBe(0)
    expect(q.release("a")).toEqual([])
    expect(q.size).toBe(0)
  })

  it("offers a new task to the first eligible player with a free slot, in preference order", () => {
    const q = new DispatchQueue<string>()
    q.setPlayer("a", { slots: 1, online: true })
    q.setPlayer("b", { slots: 1, online: true })
    q.setPlayer("c", { slots: 1, online: true })
    q.enqueue("x", ["a"])
    const r = q.enqueue("y", ["a", "c", "b"])
    expect(r._tag === "Taken" && r.taken.player).toBe("c")
  })

  it("never gives a player more running tasks than its slots", () => {
    const q = new DispatchQueue<string>()
    q.setPlayer("a", { slots: 3, online: true })
    let taken = 0
    for (let i = 0; i < 10; i++) if (q.enqueue(`t${i}`, ["a"])._tag === "Taken") taken++
    expect(taken).toBe(3)
    expect(q.running("a")).toBe(3)
    expect(q.free("a")).toBe(0)
    // fewer slots on reconnect: nothing more until running drops below
    q.setPlayer("a", { slots: 1 })
    expect(q.release("a")).toEqual([])
    expect(q.release("a")).toEqual([])
    expect(names(q.release("a"))).toEqual(["t3@a"])
  })

  it("keeps tasks for offline players until they come online", () => {
    const q = new DispatchQueue<string>()
    q.setPlayer("a")
    expect(q.enqueue("t1", ["a"])._tag).toBe("Queued")
    expect(q.enqueue("t2", ["a"])._tag).toBe("Queued")
    expect(names(q.setPlayer("a", { slots: 5, online: true }))).toEqual(["t1@a", "t2@a"])
    q.setPlayer("a", { online: false })
    expect(q.enqueue("t3", ["a"])._tag).toBe("Queued")
  })

  it("removes a queued entry and reports orphans of a removed player", () => {
    const q = new DispatchQueue<string>()
    q.setPlayer("a")
    q.setPlayer("b")
    const only = q.enqueue("only-a", ["a"])
    q.enqueue("shared", ["a", "b"])
    const gone = q.enqueue("cancelled", ["a"])
    expect(gone._tag === "Queued" && q.remove(gone.entry)).toBe(true)
    expect(gone._tag === "Queued" && q.remove(gone.entry)).toBe(false)
    const orphans = q.removePlayer("a")
    expect(orphans.map((e) => e.value)).toEqual(["only-a"])
    expect(only._tag === "Queued" && only.entry.state).toBe("removed")
    expect(names(q.setPlayer("b", { slots: 1, online: true }))).toEqual(["shared@b"])
    expect(q.enqueue("z", ["a"])._tag).toBe("Orphan")
  })

  it("a re-added player is not confused by entries of its previous life", () => {
    const q = new DispatchQueue<string>()
    q.setPlayer("a")
    q.setPlayer("b")
    q.enqueue("shared", ["a", "b"])
    q.removePlayer("a")
    q.setPlayer("a", { slots: 1, online: true })
    expect(q.release("a")).toEqual([])
    expect(names(q.setPlayer("b", { slots: 1, online: true }))).toEqual(["shared@b"])
    expect(q.enqueue("new", ["a"])._tag).toBe("Taken")
  })

  it("compacts stale copies so an idle player's deque does not grow without bound", () => {
    const q = new DispatchQueue<number>()
    q.setPlayer("a", { slots: 1, online: true })
    q.setPlayer("idle") // offline: every shared task is also indexed here
    q.enqueue(-1, ["a"])
    for (let i = 0; i < 10_000; i++) {
      q.enqueue(i, ["a", "idle"])
      q.release("a")
    }
    expect(q.size).toBe(0)
    expect(q.queuedFor("idle").length).toBe(0)
    // internal deque is bounded: peek through the public view of what is queued
    const internal = (q as unknown as { players: Map<string, { deque: { length: number } }> }).players.get("idle")!
    expect(internal.deque.length).toBeLessThan(200)
  })

  /** The obvious, slow model: one global list; a player takes the first entry it may take. */
  class Reference {
    list: Array<{ value: number; players: ReadonlyArray<string> }> = []
    players = new Map<string, { slots: number; online: boolean; running: number }>()
    free(p: string) {
      const s = this.players.get(p)
      return s === undefined || !s.online ? 0 : Math.max(0, s.slots - s.running)
    }
    drain(p: string) {
      const out: Array<string> = []
      while (this.free(p) > 0) {
        const i = this.list.findIndex((e) => e.players.includes(p))
        if (i < 0) break
        const [e] = this.list.splice(i, 1)
        this.players.get(p)!.running++
        out.push(`${e!.value}@${p}`)
      }
      return out
    }
    setPlayer(p: string, u: { slots?: number; online?: boolean }) {
      const s = this.players.get(p) ?? { slots: 0, online: false, running: 0 }
      if (u.slots !== undefined) s.slots = u.slots
      if (u.online !== undefined) s.online = u.online
      this.players.set(p, s)
      return this.drain(p)
    }
    enqueue(value: number, players: ReadonlyArray<string>, front: boolean) {
      for (const p of players) {
        if (this.free(p) > 0) {
          this.players.get(p)!.running++
          return [`${value}@${p}`]
        }
      }
      if (front) this.list.unshift({ value, players })
      else this.list.push({ value, players })
      return []
    }
    release(p: string) {
      const s = this.players.get(p)
      if (s === undefined) return []
      if (s.running > 0) s.running--
      return this.drain(p)
    }
    remove(value: number) {
      const i = this.list.findIndex((e) => e.value === value)
      if (i < 0) return false
      this.list.splice(i, 1)
      return true
    }
  }

  it("matches a naive reference model on random operations", () => {
    let seed = 12345
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed % n
    }
    const all = ["a", "b", "c", "d"]
    let checks = 0
    let taken = 0
    const check = (actual: unknown) => ({
      toEqual: (expected: unknown) => {
        checks++
        if (JSON.stringify(actual) !== JSON.stringify(expected)) expect(actual).toEqual(expected)
      },
      toBe: (expected: unknown) => {
        checks++
        if (actual !== expected) expect(actual).toBe(expected)
      },
      toBeLessThanOrEqual: (expected: number) => {
        checks++
        if (!((actual as number) <= expected)) expect(actual).toBeLessThanOrEqual(expected)
      }
    })
    for (let round = 0; round < 30; round++) {
      const q = new DispatchQueue<number>()
      const ref = new Reference()
      const entries = new Map<number, ReturnType<DispatchQueue<number>["enqueue"]>>()
      for (const p of all) {
        check(names(q.setPlayer(p, { slots: 1 + rand(3), online: rand(2) === 0 }))).toEqual([])
      }
      // align the reference with the queue's initial player states
      for (const p of all) {
        const online = q.online(p)
        const slots = (q as unknown as { players: Map<string, { slots: number }> }).players.get(p)!.slots
        ref.setPlayer(p, { slots, online })
      }
      let next = 0
      for (let step = 0; step < 400; step++) {
        const op = rand(10)
        if (op < 4) {
          const k = 1 + rand(3)
          const players = [...all].sort(() => rand(3) - 1).slice(0, k)
          const front = rand(5) === 0
          const v = next++
          const r = q.enqueue(v, players, { front })
          entries.set(v, r)
          const got = r._tag === "Taken" ? [`${v}@${r.taken.player}`] : []
          if (got.length > 0) taken++
          check(got).toEqual(ref.enqueue(v, players, front))
        } else if (op < 7) {
          const p = all[rand(all.length)]!
          if (q.running(p) > 0) check(names(q.release(p))).toEqual(ref.release(p))
        } else if (op < 8) {
          const p = all[rand(all.length)]!
          const u = { online: rand(3) !== 0, slots: 1 + rand(3) }
          check(names(q.setPlayer(p, u))).toEqual(ref.setPlayer(p, u))
        } else if (op < 9 && next > 0) {
          const v = rand(next)
          const e = entries.get(v)
          const removed = e !== undefined && e._tag === "Queued" ? q.remove(e.entry) : false
          check(removed).toBe(e !== undefined && e._tag === "Queued" ? ref.remove(v) : false)
        } else {
          for (const p of all) {
            check(q.queuedFor(p).map((e) => e.value)).toEqual(ref.list.filter((e) => e.players.includes(p)).map((e) => e.value))
            check(q.running(p)).toBe(ref.players.get(p)!.running)
          }
        }
        check(q.size).toBe(ref.list.length)
        for (const p of all) check(q.running(p)).toBeLessThanOrEqual(Math.max(ref.players.get(p)!.slots, ref.players.get(p)!.running))
      }
    }
    expect(checks).toBeGreaterThan(10_000)
    expect(taken).toBeGreaterThan(100)
  })
})
