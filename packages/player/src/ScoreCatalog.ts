/**
 * The player's score catalog: what `ScoreDirectory.scan` finds in the score
 * directory (YAML manifests, legacy `.conf`, extra manifest directories),
 * with each score's compiled parameter validator and how to run it. The
 * catalog is reported to the conductor in `Hello`, and again as
 * `CatalogChanged` after a reload (SIGHUP). Scores left out — a broken
 * manifest, a bad name, a manifest without executable — are logged with
 * their reasons on every scan, never dropped silently.
 *
 * @since 0.1.0
 */
import type { FileSystem } from "@effect/platform"
import type { Catalog, Errors, Json } from "@orchestra/core"
import { Params, ScoreDirectory } from "@orchestra/manifest"
import { Context, Effect, Either, Layer, Ref } from "effect"
import * as path from "node:path"
import type * as Execution from "./Execution.js"
import * as Env from "./internal/env.js"

/** One runnable score. */
export interface Score {
  readonly entry: ScoreDirectory.ScoreEntry
  /** How to run it. */
  readonly spec: Execution.ScoreSpec
  /** Check params: the params with defaults applied, or every violation. */
  readonly validate: (params: Json.JsonObject) => Either.Either<Json.JsonObject, ReadonlyArray<Errors.Issue>>
}

/** The catalog at one point in time. */
export interface Snapshot {
  readonly catalog: Catalog.Catalog
  readonly scores: ReadonlyMap<string, Score>
  /** Scores left out, and why. */
  readonly excluded: ReadonlyArray<ScoreDirectory.Excluded>
}

export interface Reloaded {
  readonly snapshot: Snapshot
  /** Whether the catalog differs from the previous one (names, digests, problems). */
  readonly changed: boolean
}

export interface ScoreCatalogService {
  readonly snapshot: Effect.Effect<Snapshot>
  /** Scan again; on a scan error the previous catalog stays. */
  readonly reload: Effect.Effect<Reloaded, ScoreDirectory.ScanError>
}

export class ScoreCatalog extends Context.Tag("@orchestra/player/ScoreCatalog")<ScoreCatalog, ScoreCatalogService>() {}

export interface Options {
  /** The score directory. */
  readonly dir: string
  /** Further manifest directories. */
  readonly manifestDirs?: ReadonlyArray<string> | undefined
}

/** How to run a scanned score. */
export const specOf = (entry: ScoreDirectory.ScoreEntry): Execution.ScoreSpec => {
  const env = entry.manifest.environment
  const dir = path.dirname(entry.executable)
  return {
    name: entry.name,
    executable: entry.executable,
    interface: entry.manifest.interface,
    path: env.path,
    workdir: env.workdir === undefined ? undefined : path.resolve(dir, env.workdir),
    user: env.user,
    variables: env.variables,
    timeoutMs: env.timeoutMs,
    maxOutputBytes: env.maxOutputBytes
  }
}

/** Turn a scan into a snapshot; a score whose parameter schema does not compile is excluded. */
export const fromScan = (scan: ScoreDirectory.ScanResult): Snapshot => {
  const scores = new Map<string, Score>()
  const excluded = [...scan.excluded]
  for (const entry of scan.scores) {
    const compiled = Params.compile(entry.manifest.parameters, { interface: entry.manifest.interface })
    if (Either.isLeft(compiled)) {
      excluded.push({
        name: entry.name,
        file: entry.manifestFile ?? entry.executable,
        reason: `parameters schema: ${compiled.left.map((i) => `${i.path}: ${i.message}`).join("; ")}`
      })
      continue
    }
    const validator = compiled.right
    const envParams = entry.manifest.interface !== "json"
    scores.set(entry.name, {
      entry,
      spec: specOf(entry),
      validate: (params) =>
        Either.flatMap(validator.validate(params), (valid) => {
          // names the player itself sets (ORC_TASK_ID, ...) cannot be parameters
          const reserved = envParams ? Env.paramViolations(valid) : []
          return reserved.length === 0
            ? Either.right(valid)
            : Either.left(reserved.map((v) => {
              const at = v.indexOf(": ")
              return { path: v.slice(0, at), message: v.slice(at + 2) }
            }))
        })
    })
  }
  const catalog = [...scores.values()].map((s) => s.entry.info)
  return { catalog, scores, excluded }
}

const fingerprint = (s: Snapshot): string =>
  JSON.stringify([s.catalog.map((i) => [i.name, i.digest]), s.excluded.map((e) => [e.file, e.reason])])

const logScan = (s: Snapshot, what: string) =>
  Effect.gen(function*() {
    for (const e of s.excluded) {
      yield* Effect.logWarning("score excluded").pipe(Effect.annotateLogs({ score: e.name, file: e.file, reason: e.reason }))
    }
    yield* Effect.logInfo(what).pipe(
      Effect.annotateLogs({ scores: s.catalog.length, excluded: s.excluded.length })
    )
  })

/** Scan the score directory now and keep the result; `reload` scans again. */
export const make = (
  options: Options
): Effect.Effect<ScoreCatalogService, ScoreDirectory.ScanError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<FileSystem.FileSystem>()
    const scan = ScoreDirectory.scan(options.dir, { manifestDirs: options.manifestDirs }).pipe(
      Effect.map(fromScan),
      Effect.provide(context)
    )
    const first = yield* scan
    yield* logScan(first, "score catalog loaded")
    const current = yield* Ref.make(first)
    return {
      snapshot: Ref.get(current),
      reload: Effect.gen(function*() {
        const next = yield* scan.pipe(
          Effect.tapError((e) => Effect.logError("score catalog reload failed; keeping the previous catalog").pipe(
            Effect.annotateLogs({ reason: e.message })
          ))
        )
        const previous = yield* Ref.getAndSet(current, next)
        const changed = fingerprint(previous) !== fingerprint(next)
        yield* logScan(next, changed ? "score catalog reloaded: changed" : "score catalog reloaded: unchanged")
        return { snapshot: next, changed }
      })
    }
  })

export const layer = (options: Options): Layer.Layer<ScoreCatalog, ScoreDirectory.ScanError, FileSystem.FileSystem> =>
  Layer.effect(ScoreCatalog, make(options))
