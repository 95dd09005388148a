/**
 * A single-consumer buffer of received messages exposed as a Stream, fed
 * from socket callbacks. Ending it keeps what is buffered: the stream
 * delivers every message offered before `end`, then ends. Each message has
 * a weight (its size in bytes, say); when the waiting weight reaches
 * `highWater`, `onFull` is called (the connection pauses reading); once the
 * consumer has taken them, `onDrained` is called. Shared by the
 * transports, whose sessions expose what they received this way.
 *
 * @since 0.1.0
 */
import { Chunk, Effect, Option, Stream } from "effect"

export class Inbox<A> {
  private items: Array<A> = []
  private weight = 0
  private ended = false
  private full = false
  private wake: (() => void) | undefined

  constructor(
    private readonly highWater: number = Number.POSITIVE_INFINITY,
    private readonly onFull: () => void = () => {},
    private readonly onDrained: () => void = () => {}
  ) {}

  get size(): number {
    return this.items.length
  }

  get isEnded(): boolean {
    return this.ended
  }

  offer(item: A, weight = 1): void {
    if (this.ended) return
    this.items.push(item)
    this.weight += weight
    if (!this.full && this.weight >= this.highWater) {
      this.full = true
      this.onFull()
    }
    this.notify()
  }

  end(): void {
    if (this.ended) return
    this.ended = true
    this.notify()
  }

  private notify(): void {
    const w = this.wake
    if (w !== undefined) {
      this.wake = undefined
      w()
    }
  }

  private readonly pull: Effect.Effect<Chunk.Chunk<A>, Option.Option<never>> = Effect.suspend(() => {
    if (this.items.length > 0) {
      const out = this.items
      this.items = []
      this.weight = 0
      if (this.full) {
        this.full = false
        this.onDrained()
      }
      return Effect.succeed(Chunk.unsafeFromArray(out))
    }
    if (this.ended) return Effect.fail(Option.none())
    return Effect.async<Chunk.Chunk<A>, Option.Option<never>>((resume) => {
      this.wake = () => resume(this.pull)
      return Effect.sync(() => {
        this.wake = undefined
      })
    })
  })

  /** The messages, in order; ends after `end`. */
  readonly stream: Stream.Stream<A> = Stream.repeatEffectChunkOption(this.pull)
}
