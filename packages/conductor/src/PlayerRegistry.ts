/**
 * The players the conductor knows: the allowlist, and for each player what
 * it reported in its `Hello` (slots, labels, catalog) and whether it has a
 * live session. Catalogs and labels are kept after a player disconnects:
 * they are what it reported since start-up, which intake validates against.
 *
 * @since 0.1.0
 */
import type { Catalog, Job, Names, Protocol, Transport } from "@orchestra/core"

/** What the conductor knows about one player. */
export interface PlayerInfo {
  readonly name: Names.PlayerName
  readonly allowlisted: boolean
  readonly online: boolean
  /** Slots from its last `Hello` (0 before it ever connected). */
  readonly slots: number
  /** Unfinished attempts assigned to it. */
  readonly running: number
  /** Labels from its last `Hello` (empty before it ever connected). */
  readonly labels: Job.Labels
  /** Its catalog by score name, once it reported one since start-up. */
  readonly catalog: ReadonlyMap<string, Catalog.ScoreInfo> | undefined
  /** Network address of its live session, for logs and status. */
  readonly address: string | undefined
}

/** The mutable record the engine keeps per player. */
export class PlayerEntry {
  allowlisted = true
  slots = 0
  labels: Job.Labels = {}
  catalog: ReadonlyMap<string, Catalog.ScoreInfo> | undefined = undefined
  hello: Protocol.Hello | undefined = undefined
  /** The live session, once running. */
  session: Transport.PlayerSession | undefined = undefined
  /** A session was admitted and has not ended yet (set before `session`). */
  claim: object | undefined = undefined
  address: string | undefined = undefined

  constructor(readonly name: Names.PlayerName) {}

  setCatalog(catalog: Catalog.Catalog): void {
    const m = new Map<string, Catalog.ScoreInfo>()
    for (const s of catalog) m.set(s.name, s)
    this.catalog = m
  }
}

/** The players by name; the allowlist is the set of entries marked allowlisted. */
export class PlayerRegistry {
  private readonly entries = new Map<Names.PlayerName, PlayerEntry>()

  constructor(allowlist: Iterable<Names.PlayerName>) {
    for (const name of allowlist) this.entries.set(name, new PlayerEntry(name))
  }

  get(name: Names.PlayerName): PlayerEntry | undefined {
    return this.entries.get(name)
  }

  isAllowed(name: string): boolean {
    return this.entries.get(name as Names.PlayerName)?.allowlisted === true
  }

  /** Every allowlisted player name. */
  get allowlist(): ReadonlyArray<Names.PlayerName> {
    return [...this.entries.values()].filter((e) => e.allowlisted).map((e) => e.name)
  }

  entriesList(): ReadonlyArray<PlayerEntry> {
    return [...this.entries.values()]
  }

  /** Compare with a new allowlist: which names are added and which removed. */
  diff(next: Iterable<Names.PlayerName>): { readonly added: ReadonlyArray<Names.PlayerName>; readonly removed: ReadonlyArray<Names.PlayerName> } {
    const wanted = new Set(next)
    const added: Array<Names.PlayerName> = []
    const removed: Array<Names.PlayerName> = []
    for (const name of wanted) if (!this.isAllowed(name)) added.push(name)
    for (const e of this.entries.values()) if (e.allowlisted && !wanted.has(e.name)) removed.push(e.name)
    return { added, removed }
  }

  add(name: Names.PlayerName): PlayerEntry {
    const e = this.entries.get(name) ?? new PlayerEntry(name)
    e.allowlisted = true
    this.entries.set(name, e)
    return e
  }

  /** Forget a player; returns its entry (its session, if any, is the caller's to close). */
  remove(name: Names.PlayerName): PlayerEntry | undefined {
    const e = this.entries.get(name)
    if (e === undefined) return undefined
    e.allowlisted = false
    this.entries.delete(name)
    return e
  }
}
