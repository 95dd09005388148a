/**
 * The SQLite store plugin: the embedded default. One database file (WAL)
 * holding the SQL store of `@orchestra/store-sql`, with group commit.
 *
 * Config (YAML block of the conductor, paths relative to its directory):
 *
 * ```yaml
 * store:
 *   plugin: sqlite
 *   path: state/orchestra.db     # created with its directory if missing
 *   synchronous: FULL            # or NORMAL
 * ```
 *
 * Durability. The database runs in WAL mode: a commit appends to the
 * `-wal` file. With `synchronous=NORMAL` the WAL is not fsynced at commit,
 * which is enough to survive the process being killed (`kill -9`: the
 * written pages are in the OS and reach the disk anyway) but not a power
 * loss or kernel crash, which may lose the last commits. With `FULL` (the
 * default) every commit fsyncs the WAL, so what was acknowledged survives
 * power loss too. Orchestra acknowledges a result to the player only once
 * stored, and the player then forgets it, so a lost commit is a lost
 * result: FULL is the default. Group commit makes it cheap: one fsync per
 * batch, however many writes the batch holds.
 *
 * Writes are applied on a thread of their own (`internal/writerThread.ts`)
 * with its own connection, so a commit's fsync never blocks the event loop
 * and group commit really groups; reads use a connection on the caller's
 * thread (WAL: they see the last commit and never wait for the writer).
 *
 * A busy timeout (5 s) makes a second process reading the file (the
 * `sqlite3` shell, a backup) wait instead of failing. One conductor owns a
 * SQLite store; sharing a store between conductors is what PostgreSQL is for.
 *
 * @since 0.1.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import { SqlClient } from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Errors, Store } from "@orchestra/core"
import { SqlStore } from "@orchestra/store-sql"
import { Effect, Layer, ParseResult, Schema } from "effect"
import type { Scope } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { dialect } from "./internal/dialect.js"
import * as WriterThread from "./internal/writerThread.js"

const StoreError = Errors.StoreError
type StoreError = Errors.StoreError

/** The plugin's config block. */
export const Config = Schema.Struct({
  /** The database file, relative to the config's directory. */
  path: Schema.String.pipe(Schema.minLength(1)),
  /** `FULL` (default): commits survive power loss. `NORMAL`: they survive a process crash only. */
  synchronous: Schema.optionalWith(Schema.Literal("FULL", "NORMAL"), { default: () => "FULL" as const }),
  /** How long to wait for another process holding the database, in ms. */
  busyTimeoutMs: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 600_000)), { default: () => 5000 })
})
export type Config = Schema.Schema.Encoded<typeof Config>

const decodeConfig = Schema.decodeUnknown(Config, { errors: "all", onExcessProperty: "error" })

export interface Options extends SqlStore.Options {
  /** Directory that a relative `path` is relative to (default: the working directory). */
  readonly baseDir?: string
}

const openError = (message: string) => new StoreError({ operation: "open", message })

const describe = (u: unknown): string =>
  typeof u === "object" && u !== null && "message" in u ? String((u as { message: unknown }).message) : String(u)

/** Open (creating if needed) the database and the store on it; both close with the scope. */
export const make = (config: unknown, options: Options = {}): Effect.Effect<Store.StoreService, StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const cfg = yield* Effect.mapError(decodeConfig(config), (e) =>
      openError(`invalid sqlite store config: ${ParseResult.TreeFormatter.formatErrorSync(e)}`))
    const file = path.resolve(options.baseDir ?? process.cwd(), cfg.path)
    yield* Effect.try({
      try: () => fs.mkdirSync(path.dirname(file), { recursive: true }),
      catch: (e) => openError(`cannot create the directory of ${file}: ${describe(e)}`)
    })
    const client = yield* SqliteClient.make({ filename: file }).pipe(
      Effect.provideServiceEffect(Reactivity.Reactivity, Reactivity.make),
      // better-sqlite3 throws from its constructor (a directory, no permission): a defect of `make`.
      Effect.catchAllDefect((d) => Effect.fail(openError(`cannot open ${file}: ${describe(d)}`)))
    )
    const setup = Effect.gen(function*() {
      const mode = yield* client<{ readonly journal_mode: string }>`PRAGMA journal_mode`
      if (mode[0]?.journal_mode !== "wal") {
        return yield* openError(`cannot put ${file} in WAL mode (journal_mode is ${String(mode[0]?.journal_mode)})`)
      }
      yield* client.unsafe(`PRAGMA busy_timeout = ${cfg.busyTimeoutMs}`)
      yield* client.unsafe(`PRAGMA synchronous = ${cfg.synchronous}`)
    })
    yield* Effect.catchTag(setup, "SqlError", (e) => Effect.fail(openError(`cannot set up ${file}: ${describe(e.cause)}`)))
    // Migrate on this connection first, then hand writes to the writer thread; this one reads.
    yield* SqlStore.migrate(dialect).pipe(Effect.provideService(SqlClient, client))
    const runBatch = yield* WriterThread.start({ filename: file, synchronous: cfg.synchronous, busyTimeoutMs: cfg.busyTimeoutMs })
    return yield* SqlStore.make(dialect, { ...options, runBatch }).pipe(Effect.provideService(SqlClient, client))
  })

/** The store as the core `Store` service. */
export const layer = (config: Config, options?: Options): Layer.Layer<Store.Store, StoreError> =>
  Layer.scoped(Store.Store, make(config, options))

/** The plugin: `store: { plugin: sqlite, path: ... }`. */
export const storeSqlite = (): Store.StorePlugin => ({
  kind: "store",
  name: "sqlite",
  description: "Embedded SQLite database (WAL, group commit): one file in the state directory",
  make: (config, context) => make(config, { baseDir: context.baseDir })
})
