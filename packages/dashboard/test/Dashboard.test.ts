/**
 * The dashboard's routes, called as a web handler (real requests and
 * responses, no socket): what each path serves, with which headers; ETag
 * revalidation; unknown and traversal paths; a missing asset directory; and
 * the page's own consistency (every element the script looks up exists, no
 * inline script or style, nothing loaded from another origin).
 */
import { HttpApp } from "@effect/platform"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Dashboard } from "../src/index.js"

const assets = fileURLToPath(new URL("../assets/", import.meta.url))
const read = (name: string) => fs.readFileSync(path.join(assets, name), "utf8")

const handler = (router = Dashboard.router) => HttpApp.toWebHandler(router)
const get = (url: string, headers: Record<string, string> = {}, router = Dashboard.router) =>
  handler(router)(new Request(`http://127.0.0.1${url}`, { headers }))

describe("Dashboard routes", () => {
  it("serves the page at /, /dashboard and /dashboard/ with a strict content security policy", async () => {
    for (const url of ["/", "/dashboard", "/dashboard/"]) {
      const res = await get(url)
      expect(res.status, url).toBe(200)
      expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8")
      expect(res.headers.get("content-security-policy")).toContain("script-src 'self'")
      expect(res.headers.get("x-content-type-options")).toBe("nosniff")
      const body = await res.text()
      expect(body).toBe(read("index.html"))
      expect(body).toContain(`<script type="module" src="/dashboard/dashboard.js"></script>`)
    }
  })

  it("serves each asset with its content type, byte for byte", async () => {
    for (const [name, type] of Object.entries(Dashboard.assetTypes)) {
      const res = await get(`/dashboard/${name}`)
      expect(res.status, name).toBe(200)
      expect(res.headers.get("content-type")).toBe(type)
      expect(res.headers.get("cache-control")).toBe("no-cache")
      expect(await res.text()).toBe(read(name))
    }
  })

  it("answers 304 to a matching If-None-Match and 200 to a stale one", async () => {
    const first = await get("/dashboard/dashboard.js")
    const etag = first.headers.get("etag")
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{27}"$/)
    const again = await get("/dashboard/dashboard.js", { "if-none-match": etag! })
    expect(again.status).toBe(304)
    expect(await again.text()).toBe("")
    const stale = await get("/dashboard/dashboard.js", { "if-none-match": `"stale"` })
    expect(stale.status).toBe(200)
  })

  it("answers 404 for anything that is not an asset, traversals included", async () => {
    for (const url of ["/dashboard/nope.js", "/dashboard/..%2Fpackage.json", "/dashboard/%2E%2E/package.json", "/dashboard/assets/index.html"]) {
      const res = await get(url)
      expect(res.status, url).toBe(404)
      expect(await res.text()).not.toContain("@orchestra/dashboard")
    }
  })

  it("serves another directory when told to, and 500 when its files are missing", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "orchestra-dashboard-"))
    try {
      for (const name of Object.keys(Dashboard.assetTypes)) fs.copyFileSync(path.join(assets, name), path.join(dir, name))
      fs.writeFileSync(path.join(dir, "dashboard.css"), "body { color: red }\n")
      const custom = Dashboard.makeRouter({ dir })
      const css = await get("/dashboard/dashboard.css", {}, custom)
      expect(await css.text()).toBe("body { color: red }\n")

      const empty = fs.mkdtempSync(path.join(os.tmpdir(), "orchestra-dashboard-empty-"))
      try {
        const broken = Dashboard.makeRouter({ dir: empty })
        const res = await get("/", {}, broken)
        expect(res.status).toBe(500)
        expect(await res.text()).toContain("missing")
        const loaded = await Effect.runPromise(Effect.either(Dashboard.loadAssets(empty)))
        expect(loaded._tag).toBe("Left")
      } finally {
        fs.rmSync(empty, { recursive: true, force: true })
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("finds its assets beside the module, and through the package when bundled elsewhere", () => {
    expect(path.resolve(Dashboard.assetsDir())).toBe(path.resolve(assets))
    // What a bundle in another package (e.g. the `orchestra` command) resolves.
    const fromCli = createRequire(fileURLToPath(new URL("../../cli/package.json", import.meta.url)))
    const resolved = fs.realpathSync(fromCli.resolve("@orchestra/dashboard/assets/index.html"))
    expect(path.dirname(resolved)).toBe(fs.realpathSync(assets))
  })
})

describe("the page", () => {
  const html = read("index.html")
  const js = read("dashboard.js")

  it("has every element the script looks up by id", () => {
    const wanted = new Set([...js.matchAll(/\$\("([A-Za-z0-9_-]+)"\)/g)].map((m) => m[1]!))
    expect(wanted.size).toBeGreaterThan(20)
    const present = new Set([...html.matchAll(/\sid="([A-Za-z0-9_-]+)"/g)].map((m) => m[1]!))
    expect([...wanted].filter((id) => !present.has(id))).toEqual([])
  })

  it("has no inline script or style and loads nothing from another origin", () => {
    expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/)
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i)
    for (const name of Object.keys(Dashboard.assetTypes)) {
      const text = read(name).replace(/xmlns="http:\/\/www\.w3\.org\/2000\/svg"/g, "")
      expect(text, name).not.toMatch(/https?:\/\//)
    }
  })

  it("listens to every audience event type the API publishes", () => {
    for (const type of ["job.submitted", "task.dispatched", "task.started", "task.finished", "job.finished", "player.connected", "player.disconnected", "reset"]) {
      expect(js).toContain(`"${type}"`)
    }
  })
})
