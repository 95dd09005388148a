/**
 * Following an event stream across dropped connections, the same for both
 * transports: reconnect from the last event id seen (the conductor answers
 * with a `reset` event when it cannot give everything since), a bounded
 * number of times in a row with a growing pause. A job's stream ends after
 * its `job.finished`, or when the job turns out to be finished already.
 */
import type { Events } from "@orchestra/api"
import { Duration, Effect, Stream } from "effect"
import type { ClientError } from "../ClientError.js"
import { make as clientError } from "../ClientError.js"
import type { EventsOptions } from "../OrchestraClient.js"

/** One connection from `lastEventId`; calls `onConnected` once the conductor has accepted it. */
export type Connect = (lastEventId: string | undefined, onConnected: () => void) => Stream.Stream<Events.Event, ClientError>

export interface Retry {
  /** Reconnections in a row without an event in between before giving up (default 5). */
  readonly max?: number
  /** First pause; doubled each time (default 200 ms, at most 5 s). */
  readonly initial?: Duration.DurationInput
}

/**
 * The stream of `target`'s events over as many connections as it takes.
 * The first connection failing fails the stream (nothing to resume); later
 * ones are retried. `finished` tells whether a job whose stream ended
 * without its `job.finished` has finished all the same.
 */
export const reconnecting = (
  target: number | "all",
  options: EventsOptions,
  connect: Connect,
  finished: (id: number) => Effect.Effect<boolean, ClientError> = () => Effect.succeed(false),
  retry: Retry = {}
): Stream.Stream<Events.Event, ClientError> =>
  Stream.suspend(() => {
    const max = retry.max ?? 5
    const initial = Duration.toMillis(Duration.decode(retry.initial ?? Duration.millis(200)))
    let lastEventId = options.lastEventId
    let connected = false
    let failures = 0
    let done = false
    const isEnd = (e: Events.Event) => target !== "all" && e.type === "job.finished" && e.job === target

    const next = (): Stream.Stream<Events.Event, ClientError> =>
      Stream.suspend(() => {
        if (done) return Stream.empty
        failures++
        if (failures > max) {
          return Stream.fail(clientError("connect", `the event stream broke ${max} times in a row; giving up`))
        }
        const pause = Duration.millis(Math.min(5000, initial * 2 ** (failures - 1)))
        const check = typeof target === "number" ? finished(target) : Effect.succeed(false)
        return Stream.unwrap(
          Effect.gen(function*() {
            if (yield* check.pipe(Effect.orElseSucceed(() => false))) return Stream.empty
            yield* Effect.sleep(pause)
            return once()
          })
        )
      })

    const once = (): Stream.Stream<Events.Event, ClientError> =>
      connect(lastEventId, () => {
        connected = true
      }).pipe(
        Stream.tap((e) =>
          Effect.sync(() => {
            lastEventId = e.id
            failures = 0
            if (isEnd(e)) done = true
          })
        ),
        Stream.takeUntil(isEnd),
        Stream.catchAll((e) => (connected && e.reason === "connect" ? Stream.empty : Stream.fail(e))),
        Stream.concat(next())
      )

    return once()
  })
