/**
 * Plugins by name. Built-in plugins and users' own are registered the same
 * way; a name may be taken once (so nothing depends on registration order),
 * and an unknown name is a typed error listing the known ones.
 *
 * A plugin named in config is either a registered short name (`sqlite`,
 * `one-of`), or a package name or file path that a {@link PluginLoader}
 * imports; the module's default export is a plugin, an array of plugins, or
 * a function returning either.
 *
 * @since 0.1.0
 */
import { Context, Effect, Either } from "effect"
import { PluginLoadError, UnknownPlugin } from "./Errors.js"
import type { PolicyLookup, PolicyPlugin } from "./Policy.js"
import { isPolicyPlugin } from "./Policy.js"
import type { StorePlugin } from "./Store.js"
import { isStorePlugin } from "./Store.js"
import type { TransportPlugin } from "./Transport.js"
import { isTransportPlugin } from "./Transport.js"

export type Plugin = PolicyPlugin | StorePlugin | TransportPlugin
export type PluginKind = Plugin["kind"]

type ByKind = {
  readonly policy: PolicyPlugin
  readonly store: StorePlugin
  readonly transport: TransportPlugin
}

export const isPlugin = (u: unknown): u is Plugin => isPolicyPlugin(u) || isStorePlugin(u) || isTransportPlugin(u)

/** An immutable set of plugins, by kind and name. */
export class Registry {
  private constructor(private readonly byKind: { readonly [K in PluginKind]: ReadonlyMap<string, ByKind[K]> }) {}

  static readonly empty = new Registry({ policy: new Map(), store: new Map(), transport: new Map() })

  /** Register plugins; a name already taken in its kind is an error. */
  static make(plugins: Iterable<Plugin>): Either.Either<Registry, PluginLoadError> {
    return Registry.empty.add(plugins, "built-in")
  }

  /** A registry with more plugins; `source` names where they came from, for errors. */
  add(plugins: Iterable<Plugin>, source: string): Either.Either<Registry, PluginLoadError> {
    const policy = new Map(this.byKind.policy)
    const store = new Map(this.byKind.store)
    const transport = new Map(this.byKind.transport)
    const maps = { policy, store, transport } as { [K in PluginKind]: Map<string, ByKind[K]> }
    for (const p of plugins) {
      const m = maps[p.kind] as Map<string, Plugin>
      if (m.has(p.name)) {
        return Either.left(
          new PluginLoadError({ spec: source, message: `a ${p.kind} plugin named "${p.name}" is already registered` })
        )
      }
      m.set(p.name, p)
    }
    return Either.right(new Registry(maps))
  }

  get<K extends PluginKind>(kind: K, name: string): Either.Either<ByKind[K], UnknownPlugin> {
    const found = this.byKind[kind].get(name)
    return found === undefined
      ? Either.left(new UnknownPlugin({ kind, name, known: [...this.byKind[kind].keys()].sort() }))
      : Either.right(found)
  }

  names(kind: PluginKind): ReadonlyArray<string> {
    return [...this.byKind[kind].keys()].sort()
  }

  all<K extends PluginKind>(kind: K): ReadonlyArray<ByKind[K]> {
    return [...this.byKind[kind].values()]
  }

  /** Policies by name, for policies that compose others. */
  readonly policies: PolicyLookup = (name) => this.byKind.policy.get(name)
}

/** Imports user plugin modules; the Node implementation lives with the daemons. */
export interface PluginLoaderService {
  /** Import the module named by `spec` (package name, or path relative to `baseDir`) and return its default export. */
  readonly load: (spec: string, baseDir: string) => Effect.Effect<unknown, PluginLoadError>
}

export class PluginLoader extends Context.Tag("@orchestra/core/PluginLoader")<PluginLoader, PluginLoaderService>() {}

/** Whether a plugin spec names a module rather than a registered short name. */
export const isModuleSpec = (spec: string): boolean =>
  spec.startsWith(".") || spec.startsWith("/") || spec.startsWith("@") || spec.includes("/") || /\.(m?[jt]s|cjs)$/.test(spec)

/** Turn a module's default export into plugins, or say why it is not one. */
export const pluginsOf = (spec: string, exported: unknown): Either.Either<ReadonlyArray<Plugin>, PluginLoadError> => {
  let value: unknown = exported
  if (typeof value === "function") {
    try {
      value = (value as () => unknown)()
    } catch (e) {
      return Either.left(
        new PluginLoadError({ spec, message: `the plugin factory threw: ${e instanceof Error ? e.message : String(e)}` })
      )
    }
  }
  const list = Array.isArray(value) ? value : [value]
  const out: Array<Plugin> = []
  for (const [i, p] of list.entries()) {
    if (!isPlugin(p)) {
      return Either.left(
        new PluginLoadError({
          spec,
          message: `export ${Array.isArray(value) ? `[${i}] ` : ""}is not an Orchestra plugin (expected an object with kind "policy", "store" or "transport" and a name)`
        })
      )
    }
    out.push(p)
  }
  if (out.length === 0) return Either.left(new PluginLoadError({ spec, message: "the module exports no plugin" }))
  return Either.right(out)
}

/**
 * Resolve a plugin of one kind from config: a registered name, or a module
 * to load. Returns the plugin and the registry extended with what the
 * module brought (so a loaded policy can be found again by name).
 */
export const resolve = <K extends PluginKind>(
  registry: Registry,
  kind: K,
  spec: string,
  baseDir: string
): Effect.Effect<{ readonly plugin: ByKind[K]; readonly registry: Registry }, UnknownPlugin | PluginLoadError, PluginLoader> =>
  Effect.gen(function*() {
    const known = registry.get(kind, spec)
    if (Either.isRight(known)) return { plugin: known.right, registry }
    if (!isModuleSpec(spec)) return yield* known.left
    const loader = yield* PluginLoader
    const exported = yield* loader.load(spec, baseDir)
    const plugins = yield* pluginsOf(spec, exported)
    const ofKind = plugins.filter((p): p is ByKind[K] => p.kind === kind)
    if (ofKind.length !== 1) {
      return yield* new PluginLoadError({
        spec,
        message: `expected exactly one ${kind} plugin in the module, found ${ofKind.length}`
      })
    }
    const next = yield* registry.add(plugins, spec)
    return { plugin: ofKind[0]!, registry: next }
  })
