/**
 * Scan a score directory the way a player does: which executables are
 * scores, which manifest belongs to each (`<name>.yaml`/`.yml` beside it,
 * then in the extra manifest directories, then a legacy `<name>.conf`), and
 * what was left out and why — a broken manifest excludes its score with the
 * reason, never silently.
 *
 * @since 0.1.0
 */
import { FileSystem } from "@effect/platform"
import { Effect, Either, Option, Schema } from "effect"
import type { Catalog, Names } from "@orchestra/core"
import * as crypto from "node:crypto"
import * as path from "node:path"
import * as Manifest from "./Manifest.js"

/** The directory itself could not be read. */
export class ScanError extends Schema.TaggedError<ScanError>()("ScanError", {
  dir: Schema.String,
  message: Schema.String
}) {}

/** One runnable score. */
export interface ScoreEntry {
  readonly name: Names.ScoreName
  /** Absolute path of the executable (a symlink is kept as is). */
  readonly executable: string
  /** The manifest file used (YAML or legacy `.conf`), when there is one. */
  readonly manifestFile?: string | undefined
  readonly source: Manifest.Source
  readonly manifest: Manifest.ScoreManifest
  /** sha256 (hex) of the executable's bytes followed by the manifest's text. */
  readonly digest: string
  /** What a player reports for this score. */
  readonly info: Catalog.ScoreInfo
}

/** A file left out of the catalog, and why. */
export interface Excluded {
  readonly name: string
  readonly file: string
  readonly reason: string
}

export interface ScanResult {
  /** Sorted by name. */
  readonly scores: ReadonlyArray<ScoreEntry>
  /** Sorted by name, then file. */
  readonly excluded: ReadonlyArray<Excluded>
}

export interface ScanOptions {
  /** Further directories holding `<name>.yaml` manifests, searched after the score directory. */
  readonly manifestDirs?: ReadonlyArray<string> | undefined
}

const MANIFEST_EXT = /\.(ya?ml|conf)$/

/** Names that are never candidates: dotfiles, editor backups and autosaves, manifests. */
export const isIgnoredName = (name: string): boolean =>
  name.startsWith(".") || name.endsWith("~") || name.startsWith("#") || MANIFEST_EXT.test(name)

/** sha256 of the executable bytes followed by the manifest text. */
export const digestOf = (executable: Uint8Array, manifestText: string | undefined): string => {
  const h = crypto.createHash("sha256")
  h.update(executable)
  if (manifestText !== undefined) h.update(manifestText, "utf8")
  return h.digest("hex")
}

const describeError = (e: { readonly message: string }): string => e.message

/**
 * Scan `dir`. Candidates are executable (any exec bit) regular files, or
 * symlinks to them; dotfiles, `*~`, `#*`, `*.conf`, `*.yaml`, `*.yml`,
 * directories, sockets and other special files are skipped. Excluded, with
 * a reason: invalid score names, broken symlinks, scores whose manifest is
 * broken or ambiguous, manifests without an executable, and non-executable
 * files or directories that have a manifest.
 */
export const scan = (
  dir: string,
  options?: ScanOptions
): Effect.Effect<ScanResult, ScanError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const root = path.resolve(dir)
    const names = yield* fs.readDirectory(root).pipe(
      Effect.mapError((e) => new ScanError({ dir: root, message: `cannot read score directory ${root}: ${describeError(e)}` }))
    )
    names.sort()
    const present = new Set(names)
    const manifestDirs = (options?.manifestDirs ?? []).map((d) => path.resolve(d))

    const exists = (p: string) => fs.exists(p).pipe(Effect.orElseSucceed(() => false))
    const localManifests = (name: string) => ["yaml", "yml", "conf"].map((ext) => `${name}.${ext}`).filter((f) => present.has(f))

    const scores: Array<ScoreEntry> = []
    const excluded: Array<Excluded> = []

    type Found = { file: string; source: "manifest" | "legacy-conf" } | { ambiguous: ReadonlyArray<string> } | undefined
    const findManifest = (name: string): Effect.Effect<Found> =>
      Effect.gen(function*() {
        const yamls = ["yaml", "yml"].filter((ext) => present.has(`${name}.${ext}`)).map((ext) => path.join(root, `${name}.${ext}`))
        if (yamls.length > 1) return { ambiguous: yamls }
        if (yamls[0] !== undefined) return { file: yamls[0], source: "manifest" as const }
        for (const d of manifestDirs) {
          const found: Array<string> = []
          for (const ext of ["yaml", "yml"]) {
            const p = path.join(d, `${name}.${ext}`)
            if (yield* exists(p)) found.push(p)
          }
          if (found.length > 1) return { ambiguous: found }
          if (found[0] !== undefined) return { file: found[0], source: "manifest" as const }
        }
        if (present.has(`${name}.conf`)) return { file: path.join(root, `${name}.conf`), source: "legacy-conf" as const }
        return undefined
      })

    for (const name of names) {
      if (isIgnoredName(name)) continue
      const file = path.join(root, name)
      const statResult = yield* Effect.either(fs.stat(file))
      if (Either.isLeft(statResult)) {
        const link = yield* Effect.option(fs.readLink(file))
        excluded.push({
          name,
          file,
          reason: Option.isSome(link)
            ? `broken symbolic link (to ${link.value})`
            : `cannot stat: ${describeError(statResult.left)}`
        })
        continue
      }
      const info = statResult.right
      const withManifest = localManifests(name)
      if (info.type !== "File") {
        if (withManifest.length > 0) {
          excluded.push({
            name,
            file,
            reason: `not a regular file (${info.type}) but has a manifest (${withManifest.join(", ")})`
          })
        }
        continue
      }
      if ((info.mode & 0o111) === 0) {
        if (withManifest.length > 0) {
          excluded.push({
            name,
            file,
            reason: `not executable (mode ${(info.mode & 0o777).toString(8).padStart(3, "0")}) but has a manifest (${withManifest.join(", ")})`
          })
        }
        continue
      }
      const problem = Manifest.scoreNameProblem(name)
      if (problem !== undefined) {
        excluded.push({ name, file, reason: `invalid score name: ${problem}` })
        continue
      }
      const found = yield* findManifest(name)
      if (found !== undefined && "ambiguous" in found) {
        excluded.push({ name, file, reason: `several manifests, keep one: ${found.ambiguous.join(", ")}` })
        continue
      }
      const bytes = yield* Effect.either(fs.readFile(file))
      if (Either.isLeft(bytes)) {
        excluded.push({ name, file, reason: `cannot read executable: ${describeError(bytes.left)}` })
        continue
      }
      let manifest: Manifest.ScoreManifest
      let text: string | undefined
      if (found === undefined) {
        manifest = Manifest.none(name as Names.ScoreName)
      } else {
        const read = yield* Effect.either(fs.readFileString(found.file, "utf8"))
        if (Either.isLeft(read)) {
          excluded.push({ name, file, reason: `cannot read manifest ${found.file}: ${describeError(read.left)}` })
          continue
        }
        text = read.right
        const parsed = Manifest.parseFile(text, found.file, { scoreName: name })
        if (Either.isLeft(parsed)) {
          excluded.push({ name, file, reason: parsed.left.message })
          continue
        }
        manifest = parsed.right
      }
      const source: Manifest.Source = found === undefined ? "none" : found.source
      const digest = digestOf(bytes.right, text)
      scores.push({
        name: manifest.name,
        executable: file,
        manifestFile: found?.file,
        source,
        manifest,
        digest,
        info: Manifest.toScoreInfo(manifest, { digest, source })
      })
    }

    // manifests in the score directory with no file of their name
    for (const name of names) {
      if (name.startsWith(".") || !MANIFEST_EXT.test(name)) continue
      const score = name.replace(MANIFEST_EXT, "")
      if (!present.has(score)) {
        excluded.push({ name: score, file: path.join(root, name), reason: `manifest without an executable (no file ${JSON.stringify(score)})` })
      }
    }

    excluded.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.file < b.file ? -1 : a.file > b.file ? 1 : 0))
    return { scores, excluded }
  })
