/**
 * Authentication of the HTTP audience API: a bearer token
 * (`Authorization: Bearer <token>`), or the same token as the `access_token`
 * query parameter for clients that cannot set headers (a browser's
 * `EventSource`). The conductor provides the middleware; a handler sees the
 * token that passed as the `Principal`: its name and its limits.
 *
 * @since 0.1.0
 */
import { HttpApiMiddleware, HttpApiSecurity } from "@effect/platform"
import { Context } from "effect"
import { Unauthorized } from "./ApiError.js"

/** The token a request authenticated with. */
export interface PrincipalService {
  /** The token's name in the conductor's config. */
  readonly name: string
  /** Scores it may use; absent: any. */
  readonly scores?: ReadonlyArray<string> | undefined
  /** Players it may use; absent: any. */
  readonly players?: ReadonlyArray<string> | undefined
}

export class Principal extends Context.Tag("@orchestra/api/Principal")<Principal, PrincipalService>() {}

/** The query parameter a token may be passed in. */
export const accessTokenParam = "access_token"

/** Bearer token, or `?access_token=`; fails with `Unauthorized` (401). */
export class Authorization extends HttpApiMiddleware.Tag<Authorization>()("@orchestra/api/Authorization", {
  failure: Unauthorized,
  provides: Principal,
  security: {
    bearer: HttpApiSecurity.bearer,
    accessToken: HttpApiSecurity.apiKey({ key: accessTokenParam, in: "query" })
  }
}) {}
