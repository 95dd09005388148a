/**
 * The client over the conductor's HTTP API: `HttpApiClient` of the
 * `@orchestra/api` definition for the request/reply endpoints, and a
 * streaming request read as Server-Sent Events for `events`. Every failure
 * becomes a `ClientError`.
 */
import { FetchHttpClient, HttpClient, HttpClientRequest } from "@effect/platform"
import type { HttpClientResponse } from "@effect/platform"
import { HttpApiClient } from "@effect/platform"
import { Api, Sse } from "@orchestra/api"
import type { Events } from "@orchestra/api"
import { Duration, Effect, Redacted, Stream } from "effect"
import { ClientError, make as clientError } from "../ClientError.js"
import type { EventsOptions, HttpOptions, Service } from "../OrchestraClient.js"
import { reconnecting } from "./events.js"
import { longPoll } from "./poll.js"

const DEFAULT_TIMEOUT = Duration.seconds(30)

/** The innermost message of an error chain (fetch hides the reason: `fetch failed` ← `connect ECONNREFUSED ...`). */
const rootMessage = (u: unknown): string => {
  let current: unknown = u
  let message = "unknown error"
  for (let i = 0; i < 8 && current !== undefined && current !== null; i++) {
    if (typeof current === "object") {
      const m = (current as { message?: unknown }).message
      if (typeof m === "string" && m.length > 0) message = m
      current = (current as { cause?: unknown }).cause
    } else {
      message = String(current)
      break
    }
  }
  return message
}

const pathOf = (path: ReadonlyArray<PropertyKey>): string => path.map((p) => String(p)).join(".")

/** A reply with a status the API does not declare (a proxy, another server, a body this client cannot read). */
const fromStatus = (address: string, status: number, body: unknown): ClientError => {
  const message = typeof body === "object" && body !== null && typeof (body as { message?: unknown }).message === "string"
    ? (body as { message: string }).message
    : undefined
  if (status === 401) return clientError("unauthorized", message ?? `the conductor at ${address} did not accept the token (HTTP 401)`)
  if (status === 403) return clientError("forbidden", message ?? `the token may not do this (HTTP 403)`)
  if (status === 404 && message !== undefined) return clientError("not-found", message)
  if (status === 502 || status === 503 || status === 504) {
    return clientError("connect", `the conductor at ${address} is unavailable (HTTP ${status})${message === undefined ? "" : `: ${message}`}`)
  }
  return clientError("protocol", `unexpected reply from ${address}: HTTP ${status}${message === undefined ? "" : `: ${message}`}`)
}

/** Any failure of a call to the API, as a `ClientError`. */
export const fromHttp = (address: string) => (e: unknown): ClientError => {
  if (e instanceof ClientError) return e
  const tag = typeof e === "object" && e !== null ? (e as { _tag?: unknown })._tag : undefined
  const message = rootMessage(e)
  switch (tag) {
    case "Unauthorized":
      return clientError("unauthorized", `the conductor at ${address} did not accept the token: ${message}`)
    case "Forbidden":
      return clientError("forbidden", message)
    case "InvalidRequest": {
      const issues = (e as { issues?: ReadonlyArray<{ path: string; message: string }> }).issues ?? []
      return clientError("refused", message, issues)
    }
    case "HttpApiDecodeError": {
      const issues = (e as { issues?: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }> }).issues ?? []
      return clientError("refused", message, issues.map((i) => ({ path: pathOf(i.path), message: i.message })))
    }
    case "JobNotFound":
    case "AttemptNotFound":
    case "PipelineRunNotFound":
      return clientError("not-found", message)
    case "JobFinished":
    case "PipelineRunFinished":
      return clientError("refused", message)
    case "StoreError":
      return clientError("refused", `the conductor's store failed: ${message}`)
    case "RequestError":
      return clientError("connect", `cannot reach the conductor at ${address}: ${message}`)
    case "ResponseError": {
      const r = e as { reason: string; response: HttpClientResponse.HttpClientResponse }
      const status = r.response.status
      return r.reason === "StatusCode" || status === 401 || status === 403 || status >= 502
        ? fromStatus(address, status, undefined)
        : clientError("protocol", `unexpected reply from ${address} (HTTP ${status}): ${message}`)
    }
    case "ParseError":
      return clientError("protocol", `unexpected reply from ${address}: ${message}`)
    default:
      return clientError("protocol", `unexpected failure talking to ${address}: ${message}`)
  }
}

/** The base URL without a trailing slash; fails for anything but http(s). */
const parseUrl = (url: string | URL): Effect.Effect<URL, ClientError> =>
  Effect.try({
    try: () => new URL(String(url)),
    catch: () => clientError("connect", `not a URL: ${JSON.stringify(String(url))}`)
  }).pipe(
    Effect.filterOrFail(
      (u) => u.protocol === "http:" || u.protocol === "https:",
      (u) => clientError("connect", `not an http(s) URL: ${u.href}`)
    )
  )

export const make = (options: HttpOptions): Effect.Effect<Service, ClientError> =>
  Effect.gen(function*() {
    const url = yield* parseUrl(options.url)
    const base = url.href.replace(/\/+$/, "")
    const address = base
    const token = options.token === undefined ? undefined : Redacted.isRedacted(options.token) ? options.token : Redacted.make(options.token)
    const requestTimeout = Duration.decode(options.requestTimeout ?? DEFAULT_TIMEOUT)
    const authorize = (r: HttpClientRequest.HttpClientRequest) => (token === undefined ? r : HttpClientRequest.bearerToken(r, token))
    const http = yield* HttpClient.HttpClient.pipe(Effect.provide(FetchHttpClient.layer))
    const authorized = http.pipe(HttpClient.mapRequest(authorize))
    const api = yield* HttpApiClient.makeWith(Api.OrchestraApi, { httpClient: authorized, baseUrl: base })
    const toClient = fromHttp(address)

    /** One call: errors mapped, bounded in time. */
    const call = <A, E>(self: Effect.Effect<A, E>, timeout: Duration.Duration = requestTimeout): Effect.Effect<A, ClientError> =>
      self.pipe(
        Effect.mapError(toClient),
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => clientError("timeout", `no reply from the conductor at ${address} in ${Duration.format(timeout)}`)
        })
      )

    const get = (id: number) => call(api.jobs.get({ path: { id } }))

    const wait: Service["wait"] = (id, timeout) =>
      longPoll(timeout, () => get(id), (poll) =>
        call(api.jobs.wait({ path: { id }, urlParams: { timeout: poll } }), Duration.sum(Duration.millis(poll), requestTimeout)))

    const getRun = (id: number) => call(api.pipelines.get({ path: { id } }))
    const pipelines: Service["pipelines"] = {
      run: (request) => call(api.pipelines.run({ payload: request })),
      get: getRun,
      list: (query = {}) => call(api.pipelines.list({ urlParams: query })),
      wait: (id, timeout) =>
        longPoll(timeout, () => getRun(id), (poll) =>
          call(api.pipelines.wait({ path: { id }, urlParams: { timeout: poll } }), Duration.sum(Duration.millis(poll), requestTimeout))),
      cancel: (id, reason) => call(api.pipelines.cancel({ path: { id }, urlParams: reason === undefined ? {} : { reason } }))
    }

    /** One connection to an event stream, from `lastEventId`; `onConnected` runs once the conductor has said yes. */
    const connect = (target: number | "all", options: EventsOptions, lastEventId: string | undefined, onConnected: () => void) =>
      Stream.unwrap(
        Effect.gen(function*() {
          let request = HttpClientRequest.get(target === "all" ? `${base}/v1/events` : `${base}/v1/jobs/${target}/events`).pipe(
            HttpClientRequest.accept(Sse.contentType)
          )
          if (lastEventId !== undefined) request = HttpClientRequest.setHeader(request, "last-event-id", lastEventId)
          if (options.types !== undefined && options.types.length > 0) {
            request = HttpClientRequest.setUrlParam(request, "types", options.types.join(","))
          }
          const response = yield* call(authorized.execute(request))
          if (response.status !== 200) {
            const body = yield* response.json.pipe(Effect.orElseSucceed(() => undefined))
            const tag = typeof body === "object" && body !== null ? (body as { _tag?: unknown })._tag : undefined
            return yield* Effect.fail(typeof tag === "string" ? toClient(body) : fromStatus(address, response.status, body))
          }
          onConnected()
          const parser = new Sse.Parser()
          return response.stream.pipe(
            Stream.decodeText(),
            Stream.mapConcat((text) => parser.feed(text)),
            Stream.map((m) => Sse.toEvent(m)),
            Stream.filter((e): e is Events.Event => e !== undefined),
            Stream.mapError((e) => clientError("connect", `the event stream from ${address} broke: ${rootMessage(e)}`))
          )
        })
      )

    const service: Service = {
      transport: "http",
      address,
      submit: (request) => call(api.jobs.submit({ payload: request })),
      plan: (request) => call(api.jobs.plan({ payload: request })),
      schedules: () => call(api.schedules.list()),
      get,
      list: (query = {}) => call(api.jobs.list({ urlParams: query })),
      wait,
      events: (target, options = {}) =>
        reconnecting(
          target,
          options,
          (lastId, onConnected) => connect(target, options, lastId, onConnected),
          (id) => Effect.map(get(id), (job) => job.state !== "PENDING")
        ),
      cancel: (id, reason) => call(api.jobs.cancel({ path: { id }, urlParams: reason === undefined ? {} : { reason } })),
      players: () => call(api.players.list()),
      scores: () => call(api.scores.list()),
      log: (ref) => call(api.jobs.log({ path: { id: ref.job, key: ref.key, attempt: ref.attempt } })),
      pipelines
    }
    return service
  })
