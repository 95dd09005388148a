/**
 * Waiting for something to finish by long polls of at most the API's
 * maximum each, until it is no longer `PENDING` or the caller's time is up
 * (then it is read once more, as it is). Both transports wait this way for
 * jobs and pipeline runs.
 */
import { Views } from "@orchestra/api"
import { Clock, Duration, Effect } from "effect"

export const longPoll = <A extends { readonly state: string }, E>(
  timeout: Duration.DurationInput | undefined,
  current: () => Effect.Effect<A, E>,
  poll: (ms: number) => Effect.Effect<A, E>
): Effect.Effect<A, E> =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    const limit = timeout === undefined ? Infinity : Duration.toMillis(Duration.decode(timeout))
    for (;;) {
      const left = limit - ((yield* Clock.currentTimeMillis) - start)
      if (left < 1) return yield* current()
      const value = yield* poll(Math.max(1, Math.floor(Math.min(left, Views.MAX_WAIT_MS))))
      if (value.state !== "PENDING") return value
    }
  })
