/**
 * The conductor's in-process event log: every audience event (`job.*`,
 * `task.*`, `player.*`, see `@orchestra/api` `Events`) gets the next id of
 * this run and goes into a ring buffer of the latest `capacity` events
 * (100,000 by default).
 *
 * Readers are cursors into the ring, not queues: a subscriber remembers the
 * last sequence number it delivered and reads what follows, waiting when it
 * has caught up. Publishing is synchronous and O(1) (store the event, wake
 * the readers that are waiting), nothing is copied per subscriber, and a
 * reader resuming from an id gets exactly the events after it — none lost,
 * none twice — as long as the ring still holds them. A reader whose position
 * is gone (older than the ring, from another run of the conductor, or not an
 * id of ours) gets a `reset` event first and continues from the oldest event
 * kept; the `reset`'s id is the position it continues from.
 *
 * Synchronous observers (`observe`) see every event as it is published
 * (metrics, players' last-seen times, waiters of `wait`).
 *
 * @since 0.1.0
 */
import { Events as ApiEvents } from "@orchestra/api"
import { Chunk, Effect, Option, Stream } from "effect"

export type Event = ApiEvents.Event
export type Body = ApiEvents.Body
export type Reset = Extract<Event, { readonly type: "reset" }>

/** The default number of events kept. */
export const DEFAULT_CAPACITY = 100_000

export interface Options {
  /** Events kept for readers that resume (default 100,000). */
  readonly capacity?: number
  /** When this run started (ms), which names its ids (default now). */
  readonly startedAt?: number
}

/** Where a reader starts: after `cursor`, with `reset` first when events are missing. */
export interface Position {
  readonly cursor: number
  readonly reset: Reset | undefined
}

export class EventLog {
  readonly capacity: number
  readonly boot: string
  readonly startedAt: number
  private readonly ring: Array<Event | undefined>
  private seq = 0
  private waiters = new Set<() => void>()
  private readonly observers = new Set<(event: Event) => void>()

  constructor(options: Options = {}) {
    this.capacity = Math.max(1, Math.floor(options.capacity ?? DEFAULT_CAPACITY))
    this.startedAt = options.startedAt ?? Date.now()
    this.boot = ApiEvents.bootId(this.startedAt)
    this.ring = new Array<Event | undefined>(this.capacity)
  }

  /** The sequence number of the newest event (0 before the first). */
  get last(): number {
    return this.seq
  }

  /** The sequence number of the oldest event kept (`last + 1` when none is). */
  get oldest(): number {
    return Math.max(1, this.seq - this.capacity + 1)
  }

  /** The id of the newest event: resuming from it gives only what follows. */
  get lastId(): string {
    return ApiEvents.formatId(this.boot, this.seq)
  }

  /** The id of a position. */
  idOf(cursor: number): string {
    return ApiEvents.formatId(this.boot, cursor)
  }

  /** How many readers are waiting for the next event. */
  get waiting(): number {
    return this.waiters.size
  }

  /** Give an event the next id, keep it, wake the readers and tell the observers. */
  publish(body: Body): Event {
    const seq = ++this.seq
    const event = { ...body, id: ApiEvents.formatId(this.boot, seq) } as Event
    this.ring[seq % this.capacity] = event
    for (const observe of this.observers) {
      try {
        observe(event)
      } catch {
        // an observer's bug must not stop the engine
      }
    }
    if (this.waiters.size > 0) {
      const woken = this.waiters
      this.waiters = new Set()
      for (const wake of woken) wake()
    }
    return event
  }

  /** Call `f` with every event published from now on; returns how to stop. */
  observe(f: (event: Event) => void): () => void {
    this.observers.add(f)
    return () => {
      this.observers.delete(f)
    }
  }

  /** The event with this sequence number, if kept. */
  get(seq: number): Event | undefined {
    if (seq < this.oldest || seq > this.seq) return undefined
    return this.ring[seq % this.capacity]
  }

  /** A `reset` whose id is the position `cursor`, saying why. */
  reset(cursor: number, reason: string): Reset {
    return { type: "reset", id: this.idOf(cursor), at: Date.now(), reason }
  }

  /**
   * Where a reader resuming after `id` starts. No id: after the newest
   * event (only what comes next). An id of this run still in the ring:
   * right after it. Otherwise a `reset` and the oldest event kept.
   */
  resume(id: string | undefined): Position {
    if (id === undefined || id.trim() === "") return { cursor: this.seq, reset: undefined }
    const parsed = ApiEvents.parseId(id)
    const from = this.oldest - 1
    if (parsed === undefined) {
      return { cursor: from, reset: this.reset(from, `${JSON.stringify(id)} is not an event id of this conductor`) }
    }
    if (parsed.boot !== this.boot) {
      return { cursor: from, reset: this.reset(from, `event ${id} is from another run of the conductor (it restarted): events may have been missed`) }
    }
    if (parsed.seq > this.seq) {
      return { cursor: this.seq, reset: this.reset(this.seq, `event ${id} has not happened yet (the newest is ${this.lastId})`) }
    }
    if (parsed.seq < from) {
      return {
        cursor: from,
        reset: this.reset(from, `events after ${id} are no longer kept (the conductor keeps the last ${this.capacity}): events were missed`)
      }
    }
    return { cursor: parsed.seq, reset: undefined }
  }

  /**
   * Up to `max` events after `cursor`; `"lagged"` when the ones right after
   * it are no longer kept (the reader fell more than `capacity` behind).
   */
  read(cursor: number, max = 1024): ReadonlyArray<Event> | "lagged" {
    if (cursor >= this.seq) return []
    if (cursor < this.oldest - 1) return "lagged"
    const end = Math.min(this.seq, cursor + max)
    const out = new Array<Event>(end - cursor)
    for (let s = cursor + 1; s <= end; s++) out[s - cursor - 1] = this.ring[s % this.capacity]!
    return out
  }

  /** Resumes as soon as there is an event after `cursor`. */
  wait(cursor: number): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      if (this.seq > cursor) {
        resume(Effect.void)
        return
      }
      const wake = () => resume(Effect.void)
      this.waiters.add(wake)
      return Effect.sync(() => {
        this.waiters.delete(wake)
      })
    })
  }

  /** The first kept event (oldest first) that satisfies `predicate`, with its sequence number. */
  find(predicate: (event: Event) => boolean): { readonly seq: number; readonly event: Event } | undefined {
    for (let s = this.oldest; s <= this.seq; s++) {
      const e = this.ring[s % this.capacity]!
      if (predicate(e)) return { seq: s, event: e }
    }
    return undefined
  }

  /**
   * Every event after `position` (its `reset` first), then each new one as
   * it is published, forever. A reader that falls out of the ring gets a
   * `reset` and continues from the oldest event kept.
   */
  stream(position: Position): Stream.Stream<Event> {
    const self = this
    let cursor = position.cursor
    const pull: Effect.Effect<Chunk.Chunk<Event>, Option.Option<never>> = Effect.suspend(() => {
      const got = self.read(cursor)
      if (got === "lagged") {
        const from = self.oldest - 1
        const reset = self.reset(from, `this reader fell more than ${self.capacity} events behind: events were missed`)
        cursor = from
        return Effect.succeed(Chunk.of<Event>(reset))
      }
      if (got.length > 0) {
        cursor += got.length
        return Effect.succeed(Chunk.unsafeFromArray(got as Array<Event>))
      }
      return Effect.zipRight(self.wait(cursor), pull)
    })
    const live = Stream.repeatEffectChunkOption(pull)
    return position.reset === undefined ? live : Stream.concat(Stream.succeed<Event>(position.reset), live)
  }
}

/** Make an event log. */
export const make = (options: Options = {}): EventLog => new EventLog(options)
