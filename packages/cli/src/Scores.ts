/**
 * `orchestra scores validate DIR`: scan a score directory the way a player
 * does and show what it would offer, or why a score is left out; and
 * `orchestra scores list`, the catalog merged from the players (in
 * `Audience.ts`, with the other commands that ask the conductor).
 *
 * @since 0.1.0
 */
import { Args, Command, Options } from "@effect/cli"
import { ScoreDirectory } from "@orchestra/manifest"
import type { Json } from "@orchestra/core"
import { Console, Effect } from "effect"
import * as path from "node:path"
import * as Audience from "./Audience.js"
import * as Exit from "./Exit.js"

/** One line per parameter: name, type, constraints, default, required. */
const describeParameters = (schema: Json.JsonObject | undefined): ReadonlyArray<string> => {
  if (schema === undefined) return ["    (no parameter schema: any string parameters, as the original)"]
  const props = (schema.properties ?? {}) as Readonly<Record<string, Json.JsonObject>>
  const required = new Set(Array.isArray(schema.required) ? (schema.required as ReadonlyArray<string>) : [])
  const names = Object.keys(props)
  if (names.length === 0) return ["    (no parameters)"]
  return names.map((name) => {
    const p = props[name] ?? {}
    const facts: Array<string> = []
    facts.push(typeof p.type === "string" ? p.type : Array.isArray(p.type) ? p.type.join("|") : "any")
    for (const k of ["pattern", "minimum", "maximum", "minLength", "maxLength", "enum", "format"] as const) {
      if (p[k] !== undefined) facts.push(`${k} ${JSON.stringify(p[k])}`)
    }
    if (p.default !== undefined) facts.push(`default ${JSON.stringify(p.default)}`)
    return `    ${name}${required.has(name) ? " (required)" : ""}: ${facts.join(", ")}`
  })
}

export const validate = Command.make(
  "validate",
  {
    dir: Args.directory({ name: "dir", exists: "yes" }).pipe(Args.withDescription("The score directory")),
    manifests: Options.directory("manifests", { exists: "yes" }).pipe(
      Options.withDescription("A further directory of <score>.yaml manifests (repeatable)"),
      Options.repeated
    ),
    json: Options.boolean("json").pipe(Options.withDescription("Print JSON for scripts"))
  },
  (a) =>
    Effect.gen(function*() {
      const dir = path.resolve(a.dir)
      const result = yield* ScoreDirectory.scan(dir, { manifestDirs: a.manifests.map((d) => path.resolve(d)) }).pipe(
        Effect.mapError((e) => new Exit.ExitWith({ code: Exit.codes.usage, message: e.message }))
      )
      if (a.json) {
        yield* Console.log(
          JSON.stringify({
            scores: result.scores.map((s) => ({
              name: s.name,
              interface: s.manifest.interface,
              source: s.source,
              manifest: s.manifestFile,
              parameters: s.manifest.parameters,
              digest: s.digest
            })),
            excluded: result.excluded
          }, null, 2)
        )
      } else {
        for (const s of result.scores) {
          const from = s.manifestFile !== undefined ? path.relative(process.cwd(), s.manifestFile) : "no manifest"
          yield* Console.log(`${s.name}  interface=${s.manifest.interface}  (${from})`)
          if (s.manifest.description !== undefined) yield* Console.log(`    ${s.manifest.description}`)
          for (const line of describeParameters(s.manifest.parameters)) yield* Console.log(line)
        }
        for (const x of result.excluded) {
          yield* Console.error(`EXCLUDED ${x.name}: ${x.reason}`)
        }
        yield* Console.log(`${result.scores.length} score(s) ok, ${result.excluded.length} excluded`)
      }
      if (result.excluded.length > 0) {
        return yield* new Exit.ExitWith({ code: Exit.codes.config })
      }
    })
).pipe(
  Command.withDescription(
    "Check a score directory as a player would: list each score with its interface and parameters; exit 78 naming file, line and field if a manifest is broken. Example: orchestra scores validate samples/scores"
  )
)

export const scores = Command.make("scores").pipe(
  Command.withDescription("Score tools"),
  Command.withSubcommands([
    validate,
    Audience.scoresList
  ])
)
