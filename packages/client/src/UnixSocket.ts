/**
 * The audience's Unix-socket client, speaking the original Orchestra JSON:
 * one JSON request per connection, one JSON line back, then the socket
 * closes. Existing tools talk to the conductor the same way.
 *
 * @since 0.1.0
 */
import { Duration, Effect, Either, Option, ParseResult, Schema } from "effect"
import { JobState, Json, Names, Outcome } from "@orchestra/core"
import * as net from "node:net"
import { ClientError } from "./ClientError.js"

/** Talking to the conductor failed, or it refused the request (the client's one error). */
export { ClientError }

/** One player's result in a status reply. */
export const PlayerStatus = Schema.Struct({
  status: Outcome.Outcome,
  response: Schema.optionalWith(Json.JsonObject, { default: () => ({}) })
})

/** The reply to `status`: the job's state and its players' results so far. */
export const JobStatus = Schema.Struct({
  status: JobState.JobState,
  players: Schema.Record({ key: Schema.String, value: PlayerStatus })
})
export type JobStatus = typeof JobStatus.Type

/** A job in the original's terms (`scope`), or with any policy. */
export interface QueueRequest {
  readonly score: string
  readonly players: ReadonlyArray<string>
  /** `"one"` (one-of) or `"all"` (all-of), as the original. */
  readonly scope?: "one" | "all"
  /** Any registered policy, instead of `scope`. */
  readonly policy?: string
  readonly options?: Json.Json
  readonly params?: Json.JsonObject
  /** Target players by labels, besides (or instead of) `players`. */
  readonly selector?: Readonly<Record<string, string>>
  /** Epoch milliseconds after which unfinished tasks end `TIMEOUT`. */
  readonly deadline?: number
  /** Retries of failed tasks. */
  readonly retry?: { readonly max: number; readonly backoffMs?: number | undefined; readonly factor?: number | undefined; readonly maxBackoffMs?: number | undefined }
  /** The same key returns the same job. */
  readonly idempotencyKey?: string
  readonly labels?: Readonly<Record<string, string>>
}

const Reply = Schema.Tuple(Schema.Literal("OK", "Error"), Schema.Unknown)
const decodeReply = Schema.decodeUnknownEither(Reply)
const decodeStatus = Schema.decodeUnknownEither(JobStatus)

/** Send one request and read the one-line reply. */
export const request = (
  socketPath: string,
  body: unknown,
  options: { readonly timeout?: Duration.DurationInput } = {}
): Effect.Effect<readonly ["OK" | "Error", unknown], ClientError> =>
  Effect.async<string, ClientError>((resume) => {
    const socket = net.createConnection({ path: socketPath })
    const chunks: Array<Buffer> = []
    let done = false
    const finish = (result: Effect.Effect<string, ClientError>) => {
      if (done) return
      done = true
      socket.destroy()
      resume(result)
    }
    socket.on("connect", () => socket.end(JSON.stringify(body)))
    socket.on("data", (chunk) => chunks.push(chunk))
    socket.on("error", (err: NodeJS.ErrnoException) =>
      finish(
        Effect.fail(
          new ClientError({
            reason: "connect",
            message: `cannot talk to the conductor at ${socketPath}: ${err.code === "ENOENT" ? "no socket there (is the conductor running?)" : err.message}`
          })
        )
      )
    )
    socket.on("close", () => finish(Effect.succeed(Buffer.concat(chunks).toString("utf8"))))
    return Effect.sync(() => socket.destroy())
  }).pipe(
    Effect.timeoutFail({
      duration: options.timeout ?? Duration.seconds(30),
      onTimeout: () => new ClientError({ reason: "timeout", message: `no reply from the conductor at ${socketPath}` })
    }),
    Effect.flatMap((text) => {
      const line = text.split("\n")[0] ?? ""
      if (line.length === 0) {
        return Effect.fail(new ClientError({ reason: "protocol", message: "the conductor closed the socket without a reply" }))
      }
      let parsed: unknown
      try {
        parsed = JSON.parse(line)
      } catch {
        return Effect.fail(new ClientError({ reason: "protocol", message: `the conductor sent a reply that is not JSON: ${line.slice(0, 200)}` }))
      }
      return Either.match(decodeReply(parsed), {
        onLeft: (e) =>
          Effect.fail(new ClientError({ reason: "protocol", message: `unexpected reply: ${ParseResult.TreeFormatter.formatErrorSync(e)}` })),
        onRight: (reply) => Effect.succeed(reply)
      })
    })
  )

/** Queue a job; returns its id, or fails with the conductor's reason. */
export const queue = (socketPath: string, job: QueueRequest): Effect.Effect<Names.JobId, ClientError> =>
  request(socketPath, { op: "queue", ...job }).pipe(
    Effect.flatMap(([tag, value]) => {
      if (tag === "OK" && typeof value === "number" && Number.isInteger(value) && value > 0) {
        return Effect.succeed(value as Names.JobId)
      }
      return Effect.fail(
        new ClientError({ reason: tag === "Error" ? "refused" : "protocol", message: typeof value === "string" ? value : JSON.stringify(value) })
      )
    })
  )

/** A job's status, or none for an unknown id. */
export const status = (socketPath: string, id: number): Effect.Effect<Option.Option<JobStatus>, ClientError> =>
  request(socketPath, { op: "status", id }).pipe(
    Effect.flatMap(([tag, value]) => {
      if (tag === "Error") {
        return value === null
          ? Effect.succeed(Option.none())
          : Effect.fail(new ClientError({ reason: "refused", message: String(value) }))
      }
      return Either.match(decodeStatus(value), {
        onLeft: (e) =>
          Effect.fail(new ClientError({ reason: "protocol", message: `unexpected status: ${ParseResult.TreeFormatter.formatErrorSync(e)}` })),
        onRight: (s) => Effect.succeed(Option.some(s))
      })
    })
  )

/**
 * Poll a job until it is no longer `PENDING`. `onProgress` sees every status
 * that differs from the previous one.
 */
export const wait = (
  socketPath: string,
  id: number,
  options: {
    readonly interval?: Duration.DurationInput
    readonly timeout?: Duration.DurationInput
    readonly onProgress?: (status: JobStatus) => Effect.Effect<void>
  } = {}
): Effect.Effect<JobStatus, ClientError> => {
  let last = ""
  const once = status(socketPath, id).pipe(
    Effect.flatMap(
      Option.match({
        onNone: () => Effect.fail(new ClientError({ reason: "refused", message: `job ${id} not found` })),
        onSome: (s) => {
          const key = JSON.stringify(s)
          const report = key !== last && options.onProgress ? options.onProgress(s) : Effect.void
          last = key
          return Effect.as(report, s)
        }
      })
    )
  )
  const loop: Effect.Effect<JobStatus, ClientError> = Effect.flatMap(once, (s) =>
    JobState.isFinished(s.status) ? Effect.succeed(s) : Effect.zipRight(Effect.sleep(options.interval ?? Duration.millis(200)), loop)
  )
  return loop.pipe(
    Effect.timeoutFail({
      duration: options.timeout ?? Duration.infinity,
      onTimeout: () => new ClientError({ reason: "timeout", message: `job ${id} still pending after the timeout` })
    })
  )
}

/** One player as the conductor knows it (the `players` extension of the socket protocol). */
export const PlayerState = Schema.Struct({
  online: Schema.Boolean,
  allowlisted: Schema.Boolean,
  slots: Schema.Number,
  running: Schema.Number,
  labels: Schema.Record({ key: Schema.String, value: Schema.String }),
  scores: Schema.optional(Schema.Array(Schema.String))
})
export type PlayerState = typeof PlayerState.Type

const decodePlayers = Schema.decodeUnknownEither(Schema.Record({ key: Schema.String, value: PlayerState }))

/** Every player on the allowlist or connected, by name. */
export const players = (socketPath: string): Effect.Effect<Readonly<Record<string, PlayerState>>, ClientError> =>
  request(socketPath, { op: "players" }).pipe(
    Effect.flatMap(([tag, value]) =>
      tag === "Error"
        ? Effect.fail(new ClientError({ reason: "refused", message: String(value) }))
        : Either.match(decodePlayers(value), {
          onLeft: (e) =>
            Effect.fail(new ClientError({ reason: "protocol", message: `unexpected players reply: ${ParseResult.TreeFormatter.formatErrorSync(e)}` })),
          onRight: (p) => Effect.succeed(p)
        })
    )
  )
