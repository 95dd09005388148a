/**
 * The dispatch queue: tasks waiting for a player slot, in FIFO order, with
 * indexes so that no event scans the whole queue.
 *
 * Each player has a deque of the entries it may take. A task that several
 * players may take (one-of) is indexed under each of them and is taken once:
 * the first player to pop it marks it taken, and the copies left in the
 * other players' deques are skipped when reached (and compacted away when
 * they pile up). A `front` entry goes to the head of every deque it is in.
 *
 * A player takes work only while it is online and has fewer running
 * attempts than its slots. An entry is offered, in the task's preference
 * order, to the first eligible player with a free slot when it is queued;
 * otherwise it waits until one of its players frees a slot or comes online.
 * Because a player with a free slot always drains its deque, per-player
 * order is the order of one global FIFO list filtered by eligibility.
 *
 * Pure data structure: no Effect, no clock, no I/O.
 *
 * @since 0.1.0
 */
import { Deque } from "./internal/Deque.js"

/** A queued task, as handed back by the queue. */
export interface Entry<T> {
  readonly value: T
  /** The players that may take it, in preference order, without duplicates. */
  readonly players: ReadonlyArray<string>
  readonly state: "queued" | "taken" | "removed"
}

/** A task handed to a player. */
export interface Taken<T> {
  readonly value: T
  readonly player: string
  readonly entry: Entry<T>
}

/** What happened to an entry offered to the queue. */
export type Enqueued<T> =
  | { readonly _tag: "Taken"; readonly taken: Taken<T> }
  | { readonly _tag: "Queued"; readonly entry: Entry<T> }
  /** None of its players is known to the queue (or enabled): nothing was queued. */
  | { readonly _tag: "Orphan" }

export interface PlayerUpdate {
  readonly slots?: number
  readonly online?: boolean
}

interface MutableEntry<T> {
  readonly value: T
  readonly players: ReadonlyArray<string>
  state: "queued" | "taken" | "removed"
  /** The deques it was pushed into. */
  indexed: Array<PlayerState<T>>
}

class PlayerState<T> {
  slots = 0
  online = false
  running = 0
  /** Entries in `deque` still queued. */
  live = 0
  readonly deque = new Deque<MutableEntry<T>>()

  get free(): number {
    return this.online ? Math.max(0, this.slots - this.running) : 0
  }
}

const COMPACT_MIN = 64

export class DispatchQueue<T> {
  private readonly players = new Map<string, PlayerState<T>>()
  private queuedCount = 0

  /** Players known to the queue. */
  get playerNames(): ReadonlyArray<string> {
    return [...this.players.keys()]
  }

  /** How many entries are queued (not taken, not removed). */
  get size(): number {
    return this.queuedCount
  }

  has(player: string): boolean {
    return this.players.has(player)
  }

  running(player: string): number {
    return this.players.get(player)?.running ?? 0
  }

  free(player: string): number {
    return this.players.get(player)?.free ?? 0
  }

  online(player: string): boolean {
    return this.players.get(player)?.online ?? false
  }

  /** Entries a player may take, in the order it would take them. */
  queuedFor(player: string): ReadonlyArray<Entry<T>> {
    const p = this.players.get(player)
    if (p === undefined) return []
    const out: Array<Entry<T>> = []
    for (const e of p.deque) if (e.state === "queued") out.push(e)
    return out
  }

  /**
   * Add a player, or change its slots or whether it is online. A player that
   * gains free slots takes what waits for it; those are returned.
   */
  setPlayer(name: string, update: PlayerUpdate = {}): ReadonlyArray<Taken<T>> {
    let p = this.players.get(name)
    if (p === undefined) {
      p = new PlayerState<T>()
      this.players.set(name, p)
    }
    if (update.slots !== undefined) p.slots = Math.max(0, Math.floor(update.slots))
    if (update.online !== undefined) p.online = update.online
    return this.drain(name, p)
  }

  /**
   * Forget a player. Entries that no other known player may take are removed
   * and returned (the caller ends them); entries others may take stay queued
   * for those others.
   */
  removePlayer(name: string): ReadonlyArray<Entry<T>> {
    const p = this.players.get(name)
    if (p === undefined) return []
    this.players.delete(name)
    const orphans: Array<Entry<T>> = []
    for (const e of p.deque) {
      if (e.state !== "queued") continue
      if (e.players.some((other) => other !== name && this.players.has(other))) continue
      this.markGone(e, "removed", undefined)
      orphans.push(e)
    }
    return orphans
  }

  /**
   * Queue a task for any of `players` (in preference order). It is taken at
   * once by the first of them with a free slot, if any.
   */
  enqueue(value: T, players: ReadonlyArray<string>, options: { readonly front?: boolean } = {}): Enqueued<T> {
    const unique = dedupe(players)
    const known = unique.filter((p) => this.players.has(p))
    if (known.length === 0) return { _tag: "Orphan" }
    const entry: MutableEntry<T> = { value, players: unique, state: "queued", indexed: [] }
    for (const name of known) {
      const p = this.players.get(name)!
      if (p.free > 0) {
        entry.state = "taken"
        p.running++
        return { _tag: "Taken", taken: { value, player: name, entry } }
      }
    }
    for (const name of known) {
      const p = this.players.get(name)!
      if (options.front === true) p.deque.pushFront(entry)
      else p.deque.pushBack(entry)
      p.live++
      entry.indexed.push(p)
    }
    this.queuedCount++
    return { _tag: "Queued", entry }
  }

  /** Take a queued entry out (cancelled). Returns false if it was not queued. */
  remove(entry: Entry<T>): boolean {
    const e = entry as MutableEntry<T>
    if (e.state !== "queued") return false
    this.markGone(e, "removed", undefined)
    return true
  }

  /** Count an attempt as running on a player without taking it from the queue (recovery). */
  occupy(player: string): void {
    let p = this.players.get(player)
    if (p === undefined) {
      p = new PlayerState<T>()
      this.players.set(player, p)
    }
    p.running++
  }

  /**
   * An attempt running on `player` ended: free its slot and hand the player
   * what waits for it.
   */
  release(player: string): ReadonlyArray<Taken<T>> {
    const p = this.players.get(player)
    if (p === undefined) return []
    if (p.running > 0) p.running--
    return this.drain(player, p)
  }

  private drain(name: string, p: PlayerState<T>): ReadonlyArray<Taken<T>> {
    if (p.free === 0 || p.live === 0) return []
    const out: Array<Taken<T>> = []
    while (p.free > 0 && p.live > 0) {
      const e = p.deque.popFront()
      if (e === undefined) break
      if (e.state !== "queued") continue
      this.markGone(e, "taken", p)
      p.running++
      out.push({ value: e.value, player: name, entry: e })
    }
    return out
  }

  /** An entry leaves the queued state; the copies in other deques become stale. */
  private markGone(e: MutableEntry<T>, state: "taken" | "removed", poppedFrom: PlayerState<T> | undefined): void {
    e.state = state
    this.queuedCount--
    const indexed = e.indexed
    e.indexed = []
    for (const p of indexed) {
      p.live--
      if (p === poppedFrom) continue
      if (p.deque.length >= COMPACT_MIN && p.live * 2 < p.deque.length) {
        p.deque.retain((x) => x.state === "queued")
      }
    }
  }
}

const dedupe = (xs: ReadonlyArray<string>): ReadonlyArray<string> => {
  if (xs.length < 2) return xs
  const seen = new Set<string>()
  const out: Array<string> = []
  for (const x of xs) {
    if (!seen.has(x)) {
      seen.add(x)
      out.push(x)
    }
  }
  return out
}
