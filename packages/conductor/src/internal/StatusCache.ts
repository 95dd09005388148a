/**
 * Replies to `status` of finished jobs, kept so that polling them costs no
 * store read. A finished job's record no longer changes once the engine has
 * let go of it (every attempt ended and recorded; a late result is
 * acknowledged without being recorded), except by a purge: the conductor
 * clears the cache after each purge, and entries expire after `ttlMs`
 * (a purge by another conductor sharing the database is seen then).
 *
 * Only a reply read while the engine did not hold the job, of a job in a
 * finished state, may be kept: the caller checks `engine.holds(id)` before
 * reading the store.
 *
 * @since 0.1.0
 */

export class StatusCache {
  private readonly entries = new Map<number, { readonly reply: string; readonly at: number }>()
  private generation_ = 0

  constructor(
    private readonly capacity = 65_536,
    private readonly ttlMs = 60_000
  ) {}

  /** Changes at each `clear`: a reply read before a clear (a purge) is not kept after it. */
  get generation(): number {
    return this.generation_
  }

  get size(): number {
    return this.entries.size
  }

  get(id: number, now: number): string | undefined {
    const e = this.entries.get(id)
    if (e === undefined) return undefined
    if (now - e.at > this.ttlMs) {
      this.entries.delete(id)
      return undefined
    }
    return e.reply
  }

  /** Keep a reply read while the cache was at `generation`. */
  set(id: number, reply: string, now: number, generation: number): void {
    if (generation !== this.generation_) return
    this.entries.delete(id)
    this.entries.set(id, { reply, at: now })
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next()
      if (oldest.done !== true) this.entries.delete(oldest.value)
    }
  }

  clear(): void {
    this.generation_++
    this.entries.clear()
  }
}
