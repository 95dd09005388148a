/**
 * @orchestra/api — the conductor's HTTP audience API, defined once with
 * `@effect/platform`'s `HttpApi`: endpoints, request and response schemas,
 * typed errors with their statuses, bearer-token security, the audience
 * events and their Server-Sent Events wire format. The conductor serves
 * it; the client calls it; the OpenAPI document is generated from it.
 *
 * @since 0.1.0
 */
export * as Api from "./Api.js"
export * as ApiError from "./ApiError.js"
export * as Events from "./Events.js"
export * as Security from "./Security.js"
export * as Sse from "./Sse.js"
export * as Views from "./Views.js"
