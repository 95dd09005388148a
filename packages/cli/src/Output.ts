/**
 * Plain-text output helpers: aligned tables, for people; `--json` output
 * is printed as JSON by each command.
 *
 * @since 0.1.0
 */

/** Format rows as an aligned table with a header line. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd()
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n")
}

/** A response object as `k=v, k=v` (JSON values kept short). */
export const response = (r: Readonly<Record<string, unknown>>, max = 60): string => {
  const text = Object.entries(r)
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(", ")
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}

/** A time as `2026-11-22 04:01:02Z` (UTC, to the second). */
export const time = (ms: number): string => {
  const d = new Date(ms)
  return Number.isNaN(d.getTime()) ? String(ms) : `${d.toISOString().slice(0, 19).replace("T", " ")}Z`
}

/** A duration for people: `850 ms`, `12.3 s`, `4 m 05 s`, `2 h 03 m`. */
export const duration = (ms: number): string => {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  const s = Math.round(ms / 1000)
  if (s < 3600) return `${Math.floor(s / 60)} m ${String(s % 60).padStart(2, "0")} s`
  const m = Math.round(s / 60)
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} m`
}

/** A list of names joined by commas, cut to about `max` characters: `a,b,c,… (+7)`. */
export const names = (list: ReadonlyArray<string>, max = 40): string => {
  const all = list.join(",")
  if (all.length <= max) return all
  const shown: Array<string> = []
  let length = 0
  for (const name of list) {
    if (length + name.length + 1 > max - 8) break
    shown.push(name)
    length += name.length + 1
  }
  return `${shown.map((n) => `${n},`).join("")}… (+${list.length - shown.length})`
}
