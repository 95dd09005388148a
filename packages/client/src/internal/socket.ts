/**
 * The client over the conductor's Unix socket: the original's `queue`, and
 * the extension ops `get`, `cancel`, `jobs`, `wait`, `players`, `scores`
 * (one request, one JSON line back) and `events` (a first line
 * `["OK",{"from":…}]`, then one event per line). Replies are checked
 * against the `@orchestra/api` schemas, the same the HTTP API uses.
 */
import { Events, Views } from "@orchestra/api"
import { Duration, Effect, Either, ParseResult, Schema, Stream } from "effect"
import * as net from "node:net"
import type { ClientError } from "../ClientError.js"
import { make as clientError } from "../ClientError.js"
import type { EventsOptions, Service, SocketOptions, SubmitRequest } from "../OrchestraClient.js"
import * as UnixSocket from "../UnixSocket.js"
import { reconnecting } from "./events.js"
import { longPoll } from "./poll.js"

const DEFAULT_TIMEOUT = Duration.seconds(30)
/** How often a pipeline run is read while waiting for it over the socket. */
const RUN_POLL_MS = 250

/** The `players` op's reply: players by name (the shape of the original's extension). */
const PlayersByName = Schema.Record({ key: Schema.String, value: UnixSocket.PlayerState })

/** The `players` reply in the HTTP API's shape (`idle` and the summary computed; no address or last-seen time). */
const playersView = (byName: typeof PlayersByName.Type): Views.PlayersView => {
  const players = Object.entries(byName).map(([name, p]): Views.PlayerView => ({
    name,
    online: p.online,
    allowlisted: p.allowlisted,
    slots: p.slots,
    running: p.running,
    idle: p.online ? Math.max(0, p.slots - p.running) : 0,
    labels: p.labels,
    ...(p.scores === undefined ? {} : { scores: p.scores })
  }))
  const online = players.filter((p) => p.online)
  const slots = online.reduce((n, p) => n + p.slots, 0)
  const running = online.reduce((n, p) => n + p.running, 0)
  return {
    players,
    summary: {
      total: players.length,
      online: online.length,
      busy: online.filter((p) => p.running > 0).length,
      idle: online.filter((p) => p.running === 0).length,
      slots,
      running,
      free: Math.max(0, slots - running)
    }
  }
}

const knownTypes: ReadonlySet<string> = new Set(Events.types)
const decodeEvent = Schema.decodeUnknownEither(Events.Event)

/** One event line: the event; `undefined` for a type this client does not know (a newer conductor); a protocol error otherwise. */
const eventOfLine = (line: string): Either.Either<Events.Event | undefined, ClientError> => {
  let parsed: unknown
  try {
    parsed = JSON.parse(line)
  } catch {
    return Either.left(clientError("protocol", `the conductor sent an event line that is not JSON: ${line.slice(0, 200)}`))
  }
  const type = typeof parsed === "object" && parsed !== null ? (parsed as { type?: unknown }).type : undefined
  if (typeof type === "string" && !knownTypes.has(type)) return Either.right(undefined)
  return Either.mapLeft(
    decodeEvent(parsed),
    (e) => clientError("protocol", `unexpected event from the conductor: ${ParseResult.TreeFormatter.formatErrorSync(e)}`)
  )
}

/** A submission as the socket's `queue` (and `plan`) op takes it: the original's fields and the extensions. */
const queueFields = (request: SubmitRequest) => ({
  score: request.score,
  players: request.players ?? [],
  policy: request.policy.name,
  ...(request.policy.options === undefined ? {} : { options: request.policy.options }),
  ...(request.params === undefined ? {} : { params: request.params }),
  ...(request.selector === undefined ? {} : { selector: request.selector }),
  ...(request.deadline === undefined ? {} : { deadline: request.deadline }),
  ...(request.retry === undefined ? {} : { retry: request.retry }),
  ...(request.idempotencyKey === undefined ? {} : { idempotencyKey: request.idempotencyKey }),
  ...(request.labels === undefined ? {} : { labels: request.labels })
})

export const make = (options: SocketOptions): Service => {
  const path = options.path
  const requestTimeout = Duration.decode(options.requestTimeout ?? DEFAULT_TIMEOUT)

  /** One request; its `OK` value decoded by `schema`; `["Error",null]` is `notFound`, any other error a refusal. */
  const ask = <A, I>(
    body: Record<string, unknown>,
    schema: Schema.Schema<A, I>,
    notFound: string,
    timeout: Duration.Duration = requestTimeout
  ): Effect.Effect<A, ClientError> =>
    UnixSocket.request(path, body, { timeout }).pipe(
      Effect.flatMap(([tag, value]) => {
        if (tag === "Error") {
          return Effect.fail(
            value === null ? clientError("not-found", notFound) : clientError("refused", typeof value === "string" ? value : JSON.stringify(value))
          )
        }
        return Either.match(Schema.decodeUnknownEither(schema)(value), {
          onLeft: (e) =>
            Effect.fail(clientError("protocol", `unexpected reply to ${String(body["op"])}: ${ParseResult.TreeFormatter.formatErrorSync(e)}`)),
          onRight: (a) => Effect.succeed(a)
        })
      })
    )

  const get = (id: number) => ask({ op: "get", id }, Views.JobDetail, `job ${id} not found`)

  const wait: Service["wait"] = (id, timeout) =>
    longPoll(timeout, () => get(id), (poll) =>
      ask({ op: "wait", id, timeout: `${poll}ms` }, Views.JobDetail, `job ${id} not found`, Duration.sum(Duration.millis(poll), requestTimeout)))

  const getRun = (id: number) => ask({ op: "pipeline.get", id }, Views.PipelineRunDetail, `no pipeline run ${id}`)
  /** The socket has no long poll for runs: read the run every `RUN_POLL_MS` until it ends or the time is up. */
  const waitRun = (id: number, timeout: Duration.DurationInput | undefined) =>
    longPoll(timeout, () => getRun(id), (ms) =>
      Effect.tap(getRun(id), (run) => (run.state === "PENDING" ? Effect.sleep(Duration.millis(Math.min(ms, RUN_POLL_MS))) : Effect.void)))
  const pipelines: Service["pipelines"] = {
    run: (request) =>
      ask({
        op: "pipeline.run",
        document: request.document,
        ...(request.file === undefined ? {} : { file: request.file }),
        params: request.params ?? {},
        ...(request.idempotencyKey === undefined ? {} : { key: request.idempotencyKey })
      }, Views.Submitted, "no pipeline runs"),
    get: getRun,
    list: (query = {}) => ask({ op: "pipeline.list", ...query }, Views.PipelineRunPage, "no pipeline runs"),
    wait: waitRun,
    cancel: (id, reason) =>
      Effect.gen(function*() {
        const before = yield* getRun(id)
        const finished = () => clientError("refused", `pipeline run ${id} has already finished (${before.state})`)
        if (before.state !== "PENDING") return yield* finished()
        yield* ask({ op: "pipeline.cancel", id, ...(reason === undefined ? {} : { reason }) }, Schema.Boolean, `pipeline run ${id} has already finished`)
        // the cancellation is recorded by the run before it acts: wait briefly for it to show
        return yield* waitRun(id, Duration.seconds(2))
      })
  }

  /** One `events` connection: the first line says yes or no, then an event per line. */
  const connect = (target: number | "all", o: EventsOptions, from: string | undefined, onConnected: () => void) =>
    Stream.async<Events.Event, ClientError>((emit) => {
      const body: Record<string, unknown> = { op: "events" }
      if (target !== "all") {
        body["id"] = target
        body["until"] = "finished"
      }
      if (from !== undefined) body["from"] = from
      if (o.types !== undefined && o.types.length > 0) body["types"] = o.types
      const socket = net.createConnection({ path })
      socket.setEncoding("utf8")
      let buffer = ""
      let accepted = false
      let over = false
      const fail = (e: ClientError) => {
        if (over) return
        over = true
        socket.destroy()
        void emit.fail(e)
      }
      const onLine = (line: string) => {
        if (line.trim() === "") return
        if (!accepted) {
          let reply: unknown
          try {
            reply = JSON.parse(line)
          } catch {
            return fail(clientError("protocol", `the conductor sent a reply that is not JSON: ${line.slice(0, 200)}`))
          }
          if (!Array.isArray(reply) || (reply[0] !== "OK" && reply[0] !== "Error")) {
            return fail(clientError("protocol", `unexpected reply to events: ${line.slice(0, 200)}`))
          }
          if (reply[0] === "Error") {
            const why = reply[1]
            return fail(
              why === null
                ? clientError("not-found", `job ${String(target)} not found`)
                : clientError("refused", typeof why === "string" ? why : JSON.stringify(why))
            )
          }
          accepted = true
          onConnected()
          return
        }
        const event = eventOfLine(line)
        if (Either.isLeft(event)) return fail(event.left)
        if (event.right !== undefined) void emit.single(event.right)
      }
      socket.on("connect", () => socket.end(JSON.stringify(body)))
      socket.on("data", (chunk: string) => {
        buffer += chunk
        for (let nl = buffer.indexOf("\n"); nl >= 0 && !over; nl = buffer.indexOf("\n")) {
          const line = buffer.slice(0, nl)
          buffer = buffer.slice(nl + 1)
          onLine(line)
        }
      })
      socket.on("error", (err: NodeJS.ErrnoException) =>
        fail(
          clientError(
            "connect",
            `cannot talk to the conductor at ${path}: ${err.code === "ENOENT" ? "no socket there (is the conductor running?)" : err.message}`
          )
        ))
      socket.on("close", () => {
        if (over) return
        if (buffer.trim() !== "") onLine(buffer)
        if (over) return
        over = true
        if (!accepted) void emit.fail(clientError("protocol", "the conductor closed the socket without a reply"))
        else void emit.end()
      })
      return Effect.sync(() => {
        over = true
        socket.destroy()
      })
    }, "unbounded")

  const service: Service = {
    transport: "socket",
    address: path,
    submit: (request) => UnixSocket.queue(path, queueFields(request)).pipe(Effect.map((id) => ({ id, existing: false }))),
    plan: (request) => ask({ op: "plan", ...queueFields(request) }, Views.JobPlan, "no plan"),
    schedules: () => Effect.map(ask({ op: "schedule.list" }, Schema.Array(Views.ScheduleView), "no schedules"), (schedules) => ({ schedules })),
    get,
    list: (query = {}) => ask({ op: "jobs", ...query }, Views.JobPage, "no such jobs"),
    wait,
    events: (target, o = {}) =>
      reconnecting(
        target,
        o,
        (from, onConnected) => connect(target, o, from, onConnected),
        (id) => Effect.map(get(id), (job) => job.state !== "PENDING")
      ),
    cancel: (id, reason) => ask({ op: "cancel", id, ...(reason === undefined ? {} : { reason }) }, Views.JobDetail, `job ${id} not found`),
    players: () => Effect.map(ask({ op: "players" }, PlayersByName, "no players"), playersView),
    scores: () => ask({ op: "scores" }, Views.ScoresView, "no scores"),
    log: (ref) =>
      Effect.fail(
        clientError(
          "refused",
          `the conductor's socket has no op for logs (job ${ref.job}, task ${ref.key}, attempt ${ref.attempt}): use the HTTP API (--url)`
        )
      ),
    pipelines
  }
  return service
}
