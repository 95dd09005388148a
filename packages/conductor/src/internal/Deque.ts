/**
 * A double-ended queue on a growable ring buffer: O(1) push at both ends
 * and pop at the front, plus an in-place filter used to compact away stale
 * entries.
 */
export class Deque<A> {
  private buffer: Array<A | undefined>
  private head = 0
  private count = 0

  constructor(capacity = 8) {
    this.buffer = new Array<A | undefined>(Math.max(2, capacity))
  }

  get length(): number {
    return this.count
  }

  pushBack(value: A): void {
    if (this.count === this.buffer.length) this.grow()
    this.buffer[(this.head + this.count) % this.buffer.length] = value
    this.count++
  }

  pushFront(value: A): void {
    if (this.count === this.buffer.length) this.grow()
    this.head = (this.head - 1 + this.buffer.length) % this.buffer.length
    this.buffer[this.head] = value
    this.count++
  }

  peekFront(): A | undefined {
    return this.count === 0 ? undefined : this.buffer[this.head]
  }

  popFront(): A | undefined {
    if (this.count === 0) return undefined
    const value = this.buffer[this.head]
    this.buffer[this.head] = undefined
    this.head = (this.head + 1) % this.buffer.length
    this.count--
    return value
  }

  /** Keep only the values satisfying `keep`, in order. */
  retain(keep: (value: A) => boolean): void {
    const kept: Array<A | undefined> = []
    for (let i = 0; i < this.count; i++) {
      const v = this.buffer[(this.head + i) % this.buffer.length] as A
      if (keep(v)) kept.push(v)
    }
    const size = kept.length
    kept.length = Math.max(8, size * 2)
    this.buffer = kept
    this.head = 0
    this.count = size
  }

  *[Symbol.iterator](): IterableIterator<A> {
    for (let i = 0; i < this.count; i++) yield this.buffer[(this.head + i) % this.buffer.length] as A
  }

  private grow(): void {
    const next = new Array<A | undefined>(this.buffer.length * 2)
    for (let i = 0; i < this.count; i++) next[i] = this.buffer[(this.head + i) % this.buffer.length]
    this.buffer = next
    this.head = 0
  }
}
