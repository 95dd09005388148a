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
