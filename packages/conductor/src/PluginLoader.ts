/**
 * The Node implementation of core's `PluginLoader`: imports a user plugin
 * module with dynamic `import()`. A path (`./policies/canary.js`,
 * `/opt/…`) is relative to the config file's directory; a package name is
 * resolved from that directory first, then from the conductor itself.
 *
 * @since 0.1.0
 */
import { Errors, PluginRegistry } from "@orchestra/core"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { pathToFileURL } from "node:url"

const isPath = (spec: string): boolean =>
  spec.startsWith(".") || spec.startsWith("/") || /\.(m?[jt]s|cjs)$/.test(spec) && !spec.startsWith("@")

const describe = (e: unknown): string => (e instanceof Error ? e.message : String(e))

const importUrl = (spec: string, url: string) =>
  Effect.tryPromise({
    try: () => import(url) as Promise<Record<string, unknown>>,
    catch: (e) => new Errors.PluginLoadError({ spec, message: `cannot import ${url}: ${describe(e)}` })
  })

/** Import `spec` relative to `baseDir` and return its default export (or the module itself when it has none). */
export const load = (spec: string, baseDir: string): Effect.Effect<unknown, Errors.PluginLoadError> =>
  Effect.gen(function*() {
    let mod: Record<string, unknown>
    if (isPath(spec)) {
      const file = path.resolve(baseDir, spec)
      if (!fs.existsSync(file)) {
        return yield* new Errors.PluginLoadError({ spec, message: `no such file: ${file}` })
      }
      mod = yield* importUrl(spec, pathToFileURL(file).href)
    } else {
      let resolved: string | undefined
      try {
        resolved = createRequire(path.join(baseDir, "package.json")).resolve(spec)
      } catch {
        resolved = undefined
      }
      mod = resolved !== undefined
        ? yield* importUrl(spec, pathToFileURL(resolved).href)
        : yield* Effect.tryPromise({
          try: () => import(spec) as Promise<Record<string, unknown>>,
          catch: (e) => new Errors.PluginLoadError({ spec, message: `cannot find or import the package: ${describe(e)}` })
        })
    }
    return "default" in mod && mod["default"] !== undefined ? mod["default"] : mod
  })

/** The loader as core's `PluginLoader` service. */
export const layer: Layer.Layer<PluginRegistry.PluginLoader> = Layer.succeed(PluginRegistry.PluginLoader, { load })
