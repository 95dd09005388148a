/**
 * The player's durable outbox: an append-only journal of every task the
 * player accepted, started and finished, so that no result is lost and no
 * started score is forgotten — across lost connections, conductor restarts
 * and player crashes.
 *
 * One JSON record per line in `<state>/outbox.journal`:
 *
 * - `accept` — a `Run` assignment was accepted (queued);
 * - `start`  — the task is about to be spawned (written BEFORE the spawn);
 * - `pid`    — its process id and /proc start time, just after the spawn;
 * - `result` — how it ended; written BEFORE the result is ever sent;
 * - `ack`    — the conductor stored the result: the task is forgotten.
 *
 * Writes go through one writer fiber with group commit: every record that
 * arrives while a write is in flight joins the next batch, and a batch costs
 * one `write` and one `fdatasync` (none for a batch of acks only — losing an
 * ack just means a result is sent once more, and the conductor keeps each
 * result once). When dead records dominate, the journal is compacted: the
 * live state is written to a new file, fsynced, and renamed over the old
 * one. A torn last line (a crash during a write) is ignored on replay.
 *
 * On open, the replayed journal tells the player which tasks were still
 * queued (they run again) and which were running when it stopped (it kills
 * what is left of them and reports them as `UNKNOWN_FAILURE`).
 *
 * @since 0.1.0
 */
import { Names, Protocol } from "@orchestra/core"
import type { Scope } from "effect"
import { Context, Data, Deferred, Duration, Effect, Either, Layer, Option, Queue, Schema } from "effect"
import * as fs from "node:fs"
import * as fsp from "node:fs/promises"
import * as path from "node:path"
import * as Proc from "./internal/proc.js"

/** The journal could not be opened, read or written. */
export class OutboxError extends Data.TaggedError("OutboxError")<{
  readonly operation: "open" | "lock" | "write" | "compact"
  readonly path: string
  readonly message: string
}> {}

/** A task accepted and waiting for a slot. */
export interface Queued {
  readonly phase: "queued"
  readonly assignment: Protocol.Assignment
  readonly acceptedAt: number
}

/** A task whose process was (about to be) started. */
export interface Running {
  readonly phase: "running"
  readonly assignment: Protocol.Assignment
  readonly acceptedAt: number
  readonly startedAt: number
  /** Absent when the player stopped between the `start` record and the spawn. */
  readonly pid?: number | undefined
  readonly startTime?: string | undefined
}

/** A task that ended; its result waits for the conductor's `Ack`. */
export interface Done {
  readonly phase: "done"
  readonly result: Protocol.TaskResult
}

export type Entry = Queued | Running | Done
export type Phase = Entry["phase"]

/** What the journal held when it was opened. */
export interface Recovered {
  readonly queued: ReadonlyArray<Queued>
  readonly running: ReadonlyArray<Running>
  /** Unacknowledged results, oldest first. */
  readonly results: ReadonlyArray<Protocol.TaskResult>
  /** Lines that could not be read (a torn last line, corruption), for the log. */
  readonly warnings: ReadonlyArray<string>
}

export interface Stats {
  /** Tasks in the journal. */
  readonly live: number
  /** Records appended since the last compaction. */
  readonly appended: number
  /** Batches written (each one write and at most one fdatasync). */
  readonly commits: number
  readonly fsyncs: number
  readonly compactions: number
  readonly bytes: number
}

export interface OutboxService {
  readonly file: string
  readonly recovered: Recovered
  /** Journal accepted assignments (durable when this succeeds). */
  readonly accept: (assignments: ReadonlyArray<Protocol.Assignment>, at: number) => Effect.Effect<void>
  /** Journal that a task is about to be spawned (durable when this succeeds). */
  readonly start: (ref: Names.TaskRef, at: number) => Effect.Effect<void>
  /** Journal the process of a started task (durable when this succeeds). */
  readonly spawned: (ref: Names.TaskRef, pid: number, startTime: string | undefined) => Effect.Effect<void>
  /** Journal results (durable when this succeeds); from then on they are pending until acked. */
  readonly finish: (results: ReadonlyArray<Protocol.TaskResult>) => Effect.Effect<void>
  /** Forget acknowledged results; returns the refs that were pending. */
  readonly ack: (refs: ReadonlyArray<Names.TaskRef>) => Effect.Effect<ReadonlyArray<Names.TaskRef>>
  /** Where a task is, as far as the journal knows (including records not yet on disk). */
  readonly phase: (ref: Names.TaskRef) => Phase | undefined
  /** The durable result of a task, if it has one that is not acknowledged. */
  readonly result: (ref: Names.TaskRef) => Option.Option<Protocol.TaskResult>
  /** Every durable, unacknowledged result, in the order they were finished. */
  readonly pending: Effect.Effect<ReadonlyArray<Protocol.TaskResult>>
  readonly stats: Effect.Effect<Stats>
}

export class Outbox extends Context.Tag("@orchestra/player/Outbox")<Outbox, OutboxService>() {}

// ---- records ----------------------------------------------------------------

/**
 * Params and responses come back from `JSON.parse`, so they are JSON by
 * construction: checking them value by value (the recursive `Json` schema
 * costs ~10 µs per value — 50 ms for a 5,000-key response) buys nothing
 * here. The journal's schemas check their shape only.
 */
const ShallowObject: Schema.Schema<Protocol.TaskResult["response"]> = Schema.declare(
  (u: unknown): u is Protocol.TaskResult["response"] => typeof u === "object" && u !== null && !Array.isArray(u),
  { identifier: "JsonObject" }
)
const JournalAssignment = Schema.Struct({ ...Protocol.Assignment.fields, params: ShallowObject })
const JournalResult = Schema.Struct({ ...Protocol.TaskResult.fields, response: ShallowObject })

const Rec = Schema.Union(
  Schema.Struct({ t: Schema.Literal("accept"), a: JournalAssignment, at: Schema.Number }),
  Schema.Struct({ t: Schema.Literal("start"), r: Names.TaskRef, at: Schema.Number }),
  Schema.Struct({
    t: Schema.Literal("pid"),
    r: Names.TaskRef,
    pid: Schema.Int,
    st: Schema.optional(Schema.String)
  }),
  Schema.Struct({ t: Schema.Literal("result"), res: JournalResult }),
  Schema.Struct({ t: Schema.Literal("ack"), r: Names.TaskRef })
)
type Rec = typeof Rec.Type

const encodeRec = Schema.encodeSync(Rec)
const decodeRec = Schema.decodeUnknownEither(Rec)
const line = (rec: Rec): string => JSON.stringify(encodeRec(rec)) + "\n"

const key = Names.taskRefString
const refOf = (rec: Rec): Names.TaskRef =>
  rec.t === "accept" ? rec.a.ref : rec.t === "result" ? rec.res.ref : rec.r

/**
 * Apply one record to a table. Replaying is idempotent and tolerant of
 * order: a record that does not fit the task's phase is ignored.
 */
const apply = (table: Map<string, Entry>, rec: Rec): void => {
  const k = key(refOf(rec))
  const cur = table.get(k)
  switch (rec.t) {
    case "accept":
      if (cur === undefined) table.set(k, { phase: "queued", assignment: rec.a, acceptedAt: rec.at })
      return
    case "start":
      if (cur?.phase === "queued") {
        table.set(k, { phase: "running", assignment: cur.assignment, acceptedAt: cur.acceptedAt, startedAt: rec.at })
      }
      return
    case "pid":
      if (cur?.phase === "running") table.set(k, { ...cur, pid: rec.pid, startTime: rec.st })
      return
    case "result":
      if (cur?.phase !== "done") {
        // keep results in the order they finished
        table.delete(k)
        table.set(k, { phase: "done", result: rec.res })
      }
      return
    case "ack":
      if (cur?.phase === "done") table.delete(k)
      return
  }
}

/** The records that recreate one entry. */
const recordsOf = (entry: Entry): Array<Rec> => {
  switch (entry.phase) {
    case "queued":
      return [{ t: "accept", a: entry.assignment, at: entry.acceptedAt }]
    case "running": {
      const out: Array<Rec> = [
        { t: "accept", a: entry.assignment, at: entry.acceptedAt },
        { t: "start", r: entry.assignment.ref, at: entry.startedAt }
      ]
      if (entry.pid !== undefined) {
        out.push({ t: "pid", r: entry.assignment.ref, pid: entry.pid, ...(entry.startTime === undefined ? {} : { st: entry.startTime }) })
      }
      return out
    }
    case "done":
      return [{ t: "result", res: entry.result }]
  }
}

/** Parse journal text; the table it describes, and what could not be read. */
export const replay = (text: string): { readonly table: Map<string, Entry>; readonly warnings: Array<string> } => {
  const table = new Map<string, Entry>()
  const warnings: Array<string> = []
  const lines = text.split("\n")
  const last = lines.length - 1
  lines.forEach((raw, i) => {
    if (raw.trim() === "") return
    let json: unknown
    try {
      json = JSON.parse(raw)
    } catch {
      warnings.push(
        i === last
          ? `line ${i + 1}: incomplete last record ignored (the player stopped while writing it)`
          : `line ${i + 1}: not JSON, ignored`
      )
      return
    }
    const rec = decodeRec(json)
    if (Either.isLeft(rec)) {
      warnings.push(`line ${i + 1}: not a journal record, ignored`)
      return
    }
    apply(table, rec.right)
  })
  return { table, warnings }
}

const fsyncDir = (dir: string): void => {
  try {
    const fd = fs.openSync(dir, "r")
    try {
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
  } catch {
    // some filesystems cannot fsync a directory; the rename is still atomic
  }
}

/** Write the live records of `table` to a new journal and rename it over `file`. */
const writeCompacted = (file: string, table: ReadonlyMap<string, Entry>): number => {
  const tmp = `${file}.tmp`
  const text = [...table.values()].flatMap(recordsOf).map(line).join("")
  const fd = fs.openSync(tmp, "w", 0o600)
  try {
    fs.writeSync(fd, text)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
  fs.renameSync(tmp, file)
  fsyncDir(path.dirname(file))
  return Buffer.byteLength(text)
}

// ---- the lock -----------------------------------------------------------------

const acquireLock = (dir: string): Effect.Effect<string, OutboxError, never> =>
  Effect.try({
    try: () => {
      const lock = path.join(dir, "player.lock")
      try {
        const [pidText, startTime] = fs.readFileSync(lock, "utf8").trim().split(" ")
        const pid = Number(pidText)
        if (pid !== process.pid && startTime !== undefined && Proc.isSameProcess(pid, startTime)) {
          throw new OutboxError({
            operation: "lock",
            path: lock,
            message: `the state directory ${dir} is in use by another player (pid ${pid})`
          })
        }
      } catch (e) {
        if (e instanceof OutboxError) throw e
        // no lock, or an unreadable one: take it
      }
      const me = Proc.readStat(process.pid)
      fs.writeFileSync(lock, `${process.pid} ${me?.startTime ?? ""}\n`, { mode: 0o644 })
      return lock
    },
    catch: (e) =>
      e instanceof OutboxError
        ? e
        : new OutboxError({ operation: "lock", path: dir, message: e instanceof Error ? e.message : String(e) })
  })

// ---- the service ----------------------------------------------------------------

export interface Options {
  /** The state directory; created if missing. */
  readonly dir: string
  /** Compact when at least this many records are dead… (default 10,000) */
  readonly compactMinDead?: number
  /** …and dead records outnumber live ones this many times (default 2). */
  readonly compactRatio?: number
}

interface Pending {
  readonly text: string
  readonly records: ReadonlyArray<Rec>
  readonly durable: boolean
  readonly done: Deferred.Deferred<void>
}

/** Open (or create) the outbox in a state directory; the writer runs until the scope closes. */
export const make = (options: Options): Effect.Effect<OutboxService, OutboxError, Scope.Scope> =>
  Effect.gen(function*() {
    const dir = path.resolve(options.dir)
    const file = path.join(dir, "outbox.journal")
    const compactMinDead = options.compactMinDead ?? 10_000
    const compactRatio = options.compactRatio ?? 2

    yield* Effect.try({
      try: () => fs.mkdirSync(dir, { recursive: true, mode: 0o700 }),
      catch: (e) => new OutboxError({ operation: "open", path: dir, message: e instanceof Error ? e.message : String(e) })
    })
    const lock = yield* acquireLock(dir)
    yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(lock, { force: true })))

    // Replay, then compact at once: that drops a torn tail and dead records.
    const opened = yield* Effect.try({
      try: () => {
        const text = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : ""
        const { table, warnings } = replay(text)
        const bytes = writeCompacted(file, table)
        return { table, warnings, bytes }
      },
      catch: (e) => new OutboxError({ operation: "open", path: file, message: e instanceof Error ? e.message : String(e) })
    })
    const disk = opened.table
    const view = new Map(disk)
    const durableDone = new Set<string>()
    for (const [k, e] of disk) if (e.phase === "done") durableDone.add(k)

    const recovered: Recovered = {
      queued: [...disk.values()].filter((e): e is Queued => e.phase === "queued"),
      running: [...disk.values()].filter((e): e is Running => e.phase === "running"),
      results: [...disk.values()].flatMap((e) => (e.phase === "done" ? [e.result] : [])),
      warnings: opened.warnings
    }

    let handle = yield* Effect.tryPromise({
      try: () => fsp.open(file, "a", 0o600),
      catch: (e) => new OutboxError({ operation: "open", path: file, message: e instanceof Error ? e.message : String(e) })
    })
    yield* Effect.addFinalizer(() => Effect.promise(() => handle.close().catch(() => undefined)))

    let size = opened.bytes
    let appended = 0
    let commits = 0
    let fsyncs = 0
    let compactions = 0

    const queue = yield* Queue.unbounded<Pending>()

    const writeBatch = (batch: ReadonlyArray<Pending>) =>
      Effect.tryPromise({
        try: async () => {
          const buf = Buffer.from(batch.map((p) => p.text).join(""), "utf8")
          let off = 0
          try {
            while (off < buf.length) {
              const { bytesWritten } = await handle.write(buf, off, buf.length - off)
              off += bytesWritten
            }
            if (batch.some((p) => p.durable)) {
              await handle.datasync()
              fsyncs++
            }
          } catch (e) {
            // never leave half a batch behind: the next batch would glue onto it
            await handle.truncate(size).catch(() => undefined)
            throw e
          }
          size += buf.length
        },
        catch: (e) => new OutboxError({ operation: "write", path: file, message: e instanceof Error ? e.message : String(e) })
      })

    const maybeCompact = Effect.gen(function*() {
      let live = 0
      for (const e of disk.values()) live += e.phase === "running" ? 3 : 1
      const dead = appended - live
      if (dead < compactMinDead || dead < live * compactRatio) return
      yield* Effect.tryPromise({
        try: async () => {
          await handle.close()
          size = writeCompacted(file, disk)
          handle = await fsp.open(file, "a", 0o600)
        },
        catch: (e) => new OutboxError({ operation: "compact", path: file, message: e instanceof Error ? e.message : String(e) })
      })
      appended = 0
      compactions++
      yield* Effect.logDebug("outbox compacted").pipe(Effect.annotateLogs({ live: disk.size, bytes: size }))
    })

    const writer = Effect.gen(function*() {
      const batch = [...(yield* Queue.takeBetween(queue, 1, 4096))]
      let delay = 100
      for (;;) {
        const written = yield* Effect.either(writeBatch(batch))
        if (Either.isRight(written)) break
        yield* Effect.logError("cannot write the outbox journal; retrying").pipe(
          Effect.annotateLogs({ file, error: written.left.message })
        )
        yield* Effect.sleep(Duration.millis(delay))
        delay = Math.min(delay * 2, 5000)
      }
      commits++
      for (const p of batch) {
        for (const rec of p.records) {
          apply(disk, rec)
          appended++
          if (rec.t === "result") durableDone.add(key(rec.res.ref))
          if (rec.t === "ack") durableDone.delete(key(rec.r))
        }
      }
      for (const p of batch) yield* Deferred.succeed(p.done, undefined)
      const compacted = yield* Effect.either(maybeCompact)
      if (Either.isLeft(compacted)) {
        yield* Effect.logError("cannot compact the outbox journal").pipe(
          Effect.annotateLogs({ file, error: compacted.left.message })
        )
      }
    })
    yield* Effect.forkScoped(Effect.forever(writer))
    // On close, let the writer finish what is queued (acks are not awaited by their callers).
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        const done = yield* Deferred.make<void>()
        yield* Queue.offer(queue, { text: "", records: [], durable: false, done })
        yield* Deferred.await(done).pipe(Effect.timeout(Duration.seconds(5)), Effect.ignore)
      })
    )

    const submit = (records: ReadonlyArray<Rec>, durable: boolean) =>
      Effect.gen(function*() {
        if (records.length === 0) return
        for (const rec of records) apply(view, rec)
        const done = yield* Deferred.make<void>()
        yield* Queue.offer(queue, { text: records.map(line).join(""), records, durable, done })
        if (durable) yield* Deferred.await(done)
      })

    const service: OutboxService = {
      file,
      recovered,
      accept: (assignments, at) => submit(assignments.map((a) => ({ t: "accept", a, at }) as const), true),
      start: (ref, at) => submit([{ t: "start", r: ref, at }], true),
      spawned: (ref, pid, startTime) =>
        submit([{ t: "pid", r: ref, pid, ...(startTime === undefined ? {} : { st: startTime }) }], true),
      finish: (results) => submit(results.map((res) => ({ t: "result", res }) as const), true),
      ack: (refs) =>
        Effect.suspend(() => {
          const known = refs.filter((r) => view.get(key(r))?.phase === "done")
          return Effect.as(submit(known.map((r) => ({ t: "ack", r }) as const), false), known)
        }),
      phase: (ref) => view.get(key(ref))?.phase,
      result: (ref) => {
        const k = key(ref)
        const e = view.get(k)
        return e?.phase === "done" && durableDone.has(k) ? Option.some(e.result) : Option.none()
      },
      pending: Effect.sync(() => {
        const out: Array<Protocol.TaskResult> = []
        for (const [k, e] of view) if (e.phase === "done" && durableDone.has(k)) out.push(e.result)
        return out
      }),
      stats: Effect.sync(() => ({ live: view.size, appended, commits, fsyncs, compactions, bytes: size }))
    }
    return service
  })

/** The outbox as a layer. */
export const layer = (options: Options): Layer.Layer<Outbox, OutboxError> => Layer.scoped(Outbox, make(options))
