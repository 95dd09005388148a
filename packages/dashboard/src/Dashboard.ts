/**
 * The conductor's live dashboard: a static page (`assets/index.html`), its
 * style sheet and one plain ES module, served as they are — no build step,
 * nothing fetched from elsewhere — and the HTTP routes that serve them:
 * `GET /`, `GET /dashboard` and `GET /dashboard/` (the page), and
 * `GET /dashboard/<asset>`. The page itself talks to the conductor's HTTP
 * API (bearer token) and follows its server-sent events.
 *
 * The routes form an `HttpRouter` (which is also an `HttpApp`): concatenate
 * it with the API's router, e.g. `HttpRouter.concat(apiRouter, Dashboard.router)`.
 *
 * @since 0.1.0
 */
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Data, Effect } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** The dashboard's assets could not be read. */
export class DashboardError extends Data.TaggedError("DashboardError")<{ readonly message: string }> {}

/** One static file of the dashboard, read into memory. */
export interface Asset {
  /** File name under `assets/`, e.g. `dashboard.js`. */
  readonly name: string
  readonly contentType: string
  readonly body: Uint8Array
  /** Strong validator: a digest of the body, quoted. */
  readonly etag: string
}

/** The files the dashboard is made of, with their content types. */
export const assetTypes: Readonly<Record<string, string>> = {
  "index.html": "text/html; charset=utf-8",
  "dashboard.css": "text/css; charset=utf-8",
  "dashboard.js": "text/javascript; charset=utf-8",
  "favicon.svg": "image/svg+xml"
}

/** Where the page may load and connect from: only this origin, no inline script or style. */
export const contentSecurityPolicy =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'"

/**
 * The directory of the assets: `../assets` beside this module when it runs
 * from the package (dist/ or src/), otherwise — when it was bundled into
 * another program — the installed `@orchestra/dashboard` package.
 */
export const assetsDir = (): string => {
  const own = fileURLToPath(new URL("../assets/", import.meta.url))
  if (fs.existsSync(path.join(own, "dashboard.js"))) return own
  const require = createRequire(import.meta.url)
  return path.dirname(require.resolve("@orchestra/dashboard/assets/index.html"))
}

/** Read every asset of `dir` (default: {@link assetsDir}). */
export const loadAssets = (dir?: string): Effect.Effect<ReadonlyMap<string, Asset>, DashboardError> =>
  Effect.try({
    try: () => {
      const base = dir ?? assetsDir()
      const out = new Map<string, Asset>()
      for (const [name, contentType] of Object.entries(assetTypes)) {
        const body = fs.readFileSync(path.join(base, name))
        const etag = `"${crypto.createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`
        out.set(name, { name, contentType, body: new Uint8Array(body), etag })
      }
      return out as ReadonlyMap<string, Asset>
    },
    catch: (e) => new DashboardError({ message: `dashboard assets: ${e instanceof Error ? e.message : String(e)}` })
  })

export interface Options {
  /** Directory to serve the assets from (default: {@link assetsDir}). */
  readonly dir?: string
}

const securityHeaders = {
  "content-security-policy": contentSecurityPolicy,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  // Revalidate every time (cheap: the ETag answers 304), so an upgraded
  // conductor serves its new page at once.
  "cache-control": "no-cache"
}

/** The dashboard's routes; the assets are read on the first request and kept. */
export const makeRouter = (options: Options = {}): HttpRouter.HttpRouter => {
  let cached: ReadonlyMap<string, Asset> | undefined
  const assets = Effect.suspend(() =>
    cached !== undefined ? Effect.succeed(cached) : Effect.tap(loadAssets(options.dir), (a) => {
      cached = a
    })
  )
  const serve = (name: string) =>
    Effect.gen(function*() {
      const all = yield* assets
      const asset = all.get(name)
      if (asset === undefined) return HttpServerResponse.text("Not Found\n", { status: 404 })
      const request = yield* HttpServerRequest.HttpServerRequest
      const headers = { ...securityHeaders, etag: asset.etag }
      if (request.headers["if-none-match"] === asset.etag) return HttpServerResponse.empty({ status: 304, headers })
      return HttpServerResponse.uint8Array(asset.body, { contentType: asset.contentType, headers })
    }).pipe(
      Effect.catchTag("DashboardError", (e) =>
        Effect.logError("the dashboard cannot be served").pipe(
          Effect.annotateLogs({ error: e.message }),
          Effect.as(HttpServerResponse.text("the dashboard's files are missing on this conductor\n", { status: 500 }))
        ))
    )
  const page = serve("index.html")
  return HttpRouter.empty.pipe(
    HttpRouter.get("/", page),
    // also `/dashboard/`: the router ignores a trailing slash
    HttpRouter.get("/dashboard", page),
    HttpRouter.get(
      "/dashboard/:file",
      Effect.flatMap(HttpRouter.params, (params) => serve(params["file"] ?? ""))
    )
  )
}

/** The dashboard's routes, serving the package's own assets. */
export const router: HttpRouter.HttpRouter = makeRouter()
