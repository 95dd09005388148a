/**
 * The Node implementation of core's `PluginLoader`: imports a user's plugin
 * module named in the config — a path (relative to the config's directory)
 * or a package name (resolved from the config's directory first, then from
 * the player's own installation) — and returns its default export.
 *
 * @since 0.1.0
 */
import { Errors, PluginRegistry } from "@orchestra/core"
import { Effect, Layer } from "effect"
import { createRequire } from "node:module"
import * as path from "node:path"
import { pathToFileURL } from "node:url"

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e))

/** The URL or specifier `import()` should load for `spec`. */
export const resolveSpec = (spec: string, baseDir: string): string => {
  if (spec.startsWith(".") || spec.startsWith("/")) return pathToFileURL(path.resolve(baseDir, spec)).href
  try {
    return pathToFileURL(createRequire(path.join(baseDir, "noop.js")).resolve(spec)).href
  } catch {
    // an ESM-only package, or one installed beside the player rather than the config
    return spec
  }
}

export const make = (): PluginRegistry.PluginLoaderService => ({
  load: (spec, baseDir) =>
    Effect.tryPromise({
      try: () => import(resolveSpec(spec, baseDir)) as Promise<Record<string, unknown>>,
      catch: (e) => new Errors.PluginLoadError({ spec, message: `cannot import: ${message(e)}` })
    }).pipe(
      Effect.flatMap((mod) =>
        mod.default === undefined
          ? Effect.fail(new Errors.PluginLoadError({ spec, message: "the module has no default export" }))
          : Effect.succeed(mod.default)
      )
    )
})

export const layer: Layer.Layer<PluginRegistry.PluginLoader> = Layer.succeed(PluginRegistry.PluginLoader, make())
