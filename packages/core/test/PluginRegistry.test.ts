/**
 * Tests of PluginRegistry: plugins by kind and name (a name taken once, an
 * unknown name a typed error listing the known ones), turning a module's
 * export into plugins, and resolving a plugin named in config — by short
 * name, or by loading a module through the PluginLoader service.
 */
import { describe, expect, it } from "@effect/vitest"
import type { Store, Transport } from "@orchestra/core"
import { Errors, Names, Policy, PluginRegistry } from "@orchestra/core"
import { Effect, Either, Exit, Schema } from "effect"

const policy = (name: string): Policy.PolicyPlugin =>
  Policy.make({
    name,
    description: `policy ${name}`,
    options: Schema.Struct({}),
    start: (c) => ({ state: 0, actions: [{ _tag: "Run", key: Names.taskKey("0"), players: c.players }] }),
    onTaskEnded: (s) => ({ state: s, actions: [], finished: { state: "OK" } })
  })

const store = (name: string): Store.StorePlugin => ({
  kind: "store",
  name,
  description: `store ${name}`,
  make: () => Effect.fail(new Errors.StoreError({ operation: "make", message: "not in this test" }))
})

const transport = (name: string): Transport.TransportPlugin => ({
  kind: "transport",
  name,
  description: `transport ${name}`,
  conductor: () => Effect.fail(new Errors.TransportError({ reason: "config", message: "not in this test" })),
  player: () => Effect.fail(new Errors.TransportError({ reason: "config", message: "not in this test" }))
})

const registry = (plugins: ReadonlyArray<PluginRegistry.Plugin>) => Either.getOrThrow(PluginRegistry.Registry.make(plugins))

describe("Registry", () => {
  it("finds plugins by kind and name, and lists names sorted", () => {
    const oneOf = policy("one-of")
    const r = registry([policy("all-of"), oneOf, store("memory"), transport("tls")])
    expect(Either.getOrThrow(r.get("policy", "one-of"))).toBe(oneOf)
    expect(Either.getOrThrow(r.get("store", "memory")).kind).toBe("store")
    expect(Either.getOrThrow(r.get("transport", "tls")).kind).toBe("transport")
    expect(r.names("policy")).toEqual(["all-of", "one-of"])
    expect(r.all("policy").map((p) => p.name).sort()).toEqual(["all-of", "one-of"])
    expect(r.policies("one-of")).toBe(oneOf)
    expect(r.policies("nope")).toBeUndefined()
  })

  it("an unknown name is an UnknownPlugin error listing the known names of that kind", () => {
    const r = registry([policy("one-of"), policy("all-of"), store("memory")])
    const e = r.get("policy", "one_of")
    expect(Either.isLeft(e)).toBe(true)
    if (Either.isLeft(e)) {
      expect(e.left).toBeInstanceOf(Errors.UnknownPlugin)
      expect(e.left.known).toEqual(["all-of", "one-of"])
      expect(e.left.message).toBe(`unknown policy plugin "one_of" (known: all-of, one-of)`)
    }
    const none = PluginRegistry.Registry.empty.get("transport", "tls")
    if (Either.isLeft(none)) expect(none.left.message).toBe(`unknown transport plugin "tls" (known: none)`)
    else throw new Error("expected an unknown plugin")
  })

  it("a name is taken once per kind, whatever the order of registration", () => {
    const dup = PluginRegistry.Registry.make([policy("one-of"), policy("one-of")])
    expect(Either.isLeft(dup)).toBe(true)
    if (Either.isLeft(dup)) {
      expect(dup.left).toBeInstanceOf(Errors.PluginLoadError)
      expect(dup.left.message).toBe(`a policy plugin named "one-of" is already registered`)
      expect(dup.left.spec).toBe("built-in")
    }
    // The same name in different kinds is fine.
    expect(Either.isRight(PluginRegistry.Registry.make([policy("memory"), store("memory"), transport("memory")]))).toBe(true)
  })

  it("add returns a new registry and leaves the old one unchanged; a clash names the source", () => {
    const base = registry([policy("one-of")])
    const more = Either.getOrThrow(base.add([policy("canary")], "./canary.js"))
    expect(more.names("policy")).toEqual(["canary", "one-of"])
    expect(base.names("policy")).toEqual(["one-of"])
    const clash = base.add([policy("one-of")], "@acme/one-of")
    expect(Either.isLeft(clash) && clash.left.spec).toBe("@acme/one-of")
  })
})

describe("isModuleSpec", () => {
  it.each([
    ["one-of", false],
    ["sqlite", false],
    ["./policies/canary.js", true],
    ["../x.mjs", true],
    ["/opt/orchestra/quorum.js", true],
    ["@acme/orchestra-quorum", true],
    ["orchestra-policy-canary/dist/index.js", true],
    ["canary.ts", true],
    ["canary.cjs", true],
    ["canary.json", false]
  ] as const)("%s → %s", (spec, isModule) => {
    expect(PluginRegistry.isModuleSpec(spec)).toBe(isModule)
  })
})

describe("pluginsOf", () => {
  it("takes a plugin, an array of plugins, or a factory returning either", () => {
    const p = policy("canary")
    const q = policy("quorum")
    expect(Either.getOrThrow(PluginRegistry.pluginsOf("m", p))).toEqual([p])
    expect(Either.getOrThrow(PluginRegistry.pluginsOf("m", [p, q]))).toEqual([p, q])
    expect(Either.getOrThrow(PluginRegistry.pluginsOf("m", () => p))).toEqual([p])
    expect(Either.getOrThrow(PluginRegistry.pluginsOf("m", () => [p, store("s")])).map((x) => x.kind)).toEqual(["policy", "store"])
  })

  it.each([
    ["a string", "one-of", "export is not an Orchestra plugin"],
    ["an object without kind", { name: "x" }, "export is not an Orchestra plugin"],
    ["a bad element in an array", [policy("a"), { kind: "policy" }], "export [1] is not an Orchestra plugin"],
    ["an empty array", [], "the module exports no plugin"],
    ["a factory returning nothing", () => undefined, "export is not an Orchestra plugin"]
  ])("refuses %s", (_, exported, message) => {
    const r = PluginRegistry.pluginsOf("./m.js", exported)
    expect(Either.isLeft(r)).toBe(true)
    if (Either.isLeft(r)) {
      expect(r.left.spec).toBe("./m.js")
      expect(r.left.message).toContain(message)
    }
  })

  it("a factory that throws is a load error with its message", () => {
    const r = PluginRegistry.pluginsOf("./m.js", () => {
      throw new Error("missing env")
    })
    expect(Either.isLeft(r) && r.left.message).toBe("the plugin factory threw: missing env")
  })
})

describe("resolve", () => {
  /** A loader over a fixed table of modules, recording what it was asked. */
  const loader = (modules: Readonly<Record<string, unknown>>, asked: Array<readonly [string, string]>) =>
    Effect.provideService(PluginRegistry.PluginLoader, {
      load: (spec, baseDir) => {
        asked.push([spec, baseDir])
        return spec in modules
          ? Effect.succeed(modules[spec])
          : Effect.fail(new Errors.PluginLoadError({ spec, message: "cannot find module" }))
      }
    })
  const base = registry([policy("one-of"), policy("all-of"), store("memory")])

  it.effect("a registered short name resolves without loading anything", () =>
    Effect.gen(function*() {
      const asked: Array<readonly [string, string]> = []
      const r = yield* PluginRegistry.resolve(base, "policy", "one-of", "/etc/orchestra").pipe(loader({}, asked))
      expect(r.plugin.name).toBe("one-of")
      expect(r.registry).toBe(base)
      expect(asked).toEqual([])
    }))

  it.effect("an unknown short name fails with UnknownPlugin, without loading", () =>
    Effect.gen(function*() {
      const asked: Array<readonly [string, string]> = []
      const exit = yield* PluginRegistry.resolve(base, "policy", "canary", "/etc").pipe(loader({}, asked), Effect.exit)
      expect(Exit.isFailure(exit)).toBe(true)
      const e = yield* PluginRegistry.resolve(base, "policy", "canary", "/etc").pipe(loader({}, asked), Effect.flip)
      expect(e._tag).toBe("UnknownPlugin")
      if (e._tag === "UnknownPlugin") expect(e.known).toEqual(["all-of", "one-of"])
      expect(asked).toEqual([])
    }))

  it.effect("a module spec is loaded from the base dir, and its plugins join the registry", () =>
    Effect.gen(function*() {
      const asked: Array<readonly [string, string]> = []
      const canary = policy("canary")
      const r = yield* PluginRegistry.resolve(base, "policy", "./canary.js", "/srv/conf").pipe(
        loader({ "./canary.js": () => [canary, store("canary-store")] }, asked)
      )
      expect(asked).toEqual([["./canary.js", "/srv/conf"]])
      expect(r.plugin).toBe(canary)
      expect(r.registry.names("policy")).toEqual(["all-of", "canary", "one-of"])
      expect(r.registry.names("store")).toEqual(["canary-store", "memory"])
      expect(r.registry.policies("canary")).toBe(canary)
    }))

  it.effect("a module must bring exactly one plugin of the kind asked for", () =>
    Effect.gen(function*() {
      const asked: Array<readonly [string, string]> = []
      const modules = { "@acme/two": [policy("a"), policy("b")], "@acme/none": [store("s")] }
      const two = yield* PluginRegistry.resolve(base, "policy", "@acme/two", "/").pipe(loader(modules, asked), Effect.flip)
      expect(two.message).toBe("expected exactly one policy plugin in the module, found 2")
      const none = yield* PluginRegistry.resolve(base, "policy", "@acme/none", "/").pipe(loader(modules, asked), Effect.flip)
      expect(none.message).toBe("expected exactly one policy plugin in the module, found 0")
    }))

  it.effect("a loaded plugin may not take a registered name; load errors pass through", () =>
    Effect.gen(function*() {
      const asked: Array<readonly [string, string]> = []
      const clash = yield* PluginRegistry.resolve(base, "policy", "./mine.js", "/").pipe(
        loader({ "./mine.js": policy("one-of") }, asked),
        Effect.flip
      )
      expect(clash._tag).toBe("PluginLoadError")
      expect(clash.message).toBe(`a policy plugin named "one-of" is already registered`)
      const missing = yield* PluginRegistry.resolve(base, "policy", "./missing.js", "/").pipe(loader({}, asked), Effect.flip)
      expect(missing.message).toBe("cannot find module")
      const notAPlugin = yield* PluginRegistry.resolve(base, "policy", "./junk.js", "/").pipe(
        loader({ "./junk.js": { hello: "world" } }, asked),
        Effect.flip
      )
      expect(notAPlugin.message).toContain("is not an Orchestra plugin")
    }))
})
