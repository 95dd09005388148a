/**
 * Summarize a V8 CPU profile (`node --cpu-prof`, or `npm run bench -- <name>
 * --profile`): the functions with the most self time, and self time by
 * package / file. `node bench/dist/ProfileSummary.js <file.cpuprofile> [top]`.
 *
 * @since 0.1.0
 */
import * as fs from "node:fs"

interface Node {
  readonly id: number
  readonly callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number }
  readonly children?: ReadonlyArray<number>
}

interface Profile {
  readonly nodes: ReadonlyArray<Node>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
  readonly startTime: number
  readonly endTime: number
}

// ---- source maps (the CLI is bundled: map bundle positions back to the packages' files) ----

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

/** Decode a source map's mappings: per generated line, segments [column, source, line]. */
const decodeMappings = (mappings: string): Array<Array<readonly [number, number, number]>> => {
  const lines: Array<Array<readonly [number, number, number]>> = []
  let source = 0
  let origLine = 0
  let origCol = 0
  let name = 0
  for (const lineText of mappings.split(";")) {
    const segs: Array<readonly [number, number, number]> = []
    let col = 0
    for (const seg of lineText.split(",")) {
      if (seg === "") continue
      const values: Array<number> = []
      let value = 0
      let shift = 0
      for (const ch of seg) {
        const digit = B64.indexOf(ch)
        value += (digit & 31) << shift
        if ((digit & 32) !== 0) shift += 5
        else {
          values.push(value & 1 ? -(value >>> 1) : value >>> 1)
          value = 0
          shift = 0
        }
      }
      col += values[0] ?? 0
      if (values.length >= 4) {
        source += values[1]!
        origLine += values[2]!
        origCol += values[3]!
        if (values.length >= 5) name += values[4]!
        segs.push([col, source, origLine])
      }
    }
    lines.push(segs)
  }
  void origCol
  void name
  return lines
}

const maps = new Map<string, { readonly sources: ReadonlyArray<string>; readonly lines: ReturnType<typeof decodeMappings> } | null>()

/** Rewrite a frame in a bundle with a source map to the original file and line. */
const remap = (frame: Node["callFrame"]): void => {
  if (!frame.url.startsWith("file://")) return
  const file = frame.url.slice("file://".length)
  let map = maps.get(file)
  if (map === undefined) {
    map = null
    try {
      const raw = JSON.parse(fs.readFileSync(`${file}.map`, "utf8")) as { sources: Array<string>; mappings: string; sourceRoot?: string }
      const dir = file.slice(0, file.lastIndexOf("/"))
      map = { sources: raw.sources.map((s) => new URL(s, `file://${dir}/`).pathname), lines: decodeMappings(raw.mappings) }
    } catch {
      map = null
    }
    maps.set(file, map)
  }
  if (map === null) return
  const segs = map.lines[frame.lineNumber]
  if (segs === undefined || segs.length === 0) return
  let best = segs[0]!
  for (const seg of segs) {
    if (seg[0] <= frame.columnNumber) best = seg
    else break
  }
  frame.url = `file://${map.sources[best[1]] ?? file}`
  frame.lineNumber = best[2]
}

const shortUrl = (url: string): string => {
  const nm = url.lastIndexOf("node_modules/")
  if (nm >= 0) return url.slice(nm + "node_modules/".length)
  const m = /\/(packages|plugins|bench)\/(.+)$/.exec(url)
  if (m !== null) return `${m[1]}/${m[2]}`
  return url === "" ? "(native)" : url.replace(/^file:\/\//, "")
}

const packageOf = (url: string): string => {
  const s = shortUrl(url)
  if (s.startsWith("@")) return s.split("/").slice(0, 2).join("/")
  if (s.startsWith("packages/") || s.startsWith("plugins/")) return s.split("/").slice(0, 2).join("/")
  if (s.startsWith("node:")) return "node:*"
  return s.split("/")[0] ?? s
}

/** Self time (ms) per function and per package, largest first. */
export const summarize = (profile: Profile) => {
  for (const n of profile.nodes) remap(n.callFrame)
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000))
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  const fns = new Map<string, number>()
  const pkgs = new Map<string, number>()
  for (const [id, ms] of self) {
    const n = byId.get(id)!
    const f = n.callFrame
    const key = `${f.functionName || "(anonymous)"} ${shortUrl(f.url)}:${f.lineNumber + 1}`
    fns.set(key, (fns.get(key) ?? 0) + ms)
    const pkg = f.url === "" ? `(${f.functionName || "native"})` : packageOf(f.url)
    pkgs.set(pkg, (pkgs.get(pkg) ?? 0) + ms)
  }
  // inclusive time per function: each sample counted once per distinct function on its stack
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const keyOf = (n: Node) => `${n.callFrame.functionName || "(anonymous)"} ${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`
  const inclusive = new Map<string, number>()
  for (const [id, ms] of self) {
    const seen = new Set<string>()
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const k = keyOf(byId.get(cur)!)
      if (seen.has(k)) continue
      seen.add(k)
      inclusive.set(k, (inclusive.get(k) ?? 0) + ms)
    }
  }
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1])
  /** Self time of the samples whose stack goes through a function matching `needle`, by self function. */
  const under = (needle: string) => {
    const out = new Map<string, number>()
    let sum = 0
    for (const [id, ms] of self) {
      let inside = false
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        if (keyOf(byId.get(cur)!).includes(needle)) {
          inside = true
          break
        }
      }
      if (!inside) continue
      sum += ms
      const k = keyOf(byId.get(id)!)
      out.set(k, (out.get(k) ?? 0) + ms)
    }
    return { sum, functions: sorted(out) }
  }
  return { totalMs: total, functions: sorted(fns), packages: sorted(pkgs), inclusive: sorted(inclusive), under }
}

const isMain = process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, "/"))

if (isMain) {
  const file = process.argv[2]
  if (file === undefined) {
    process.stderr.write("usage: node bench/dist/ProfileSummary.js <file.cpuprofile> [top]\n")
    process.exit(2)
  }
  const top = Number(process.argv[3] ?? 40)
  const s = summarize(JSON.parse(fs.readFileSync(file, "utf8")) as Profile)
  const needle = process.env["UNDER"]
  if (needle !== undefined) {
    const u = s.under(needle)
    process.stdout.write(`under ${needle}: ${u.sum.toFixed(0)} ms of ${s.totalMs.toFixed(0)}\n`)
    for (const [k, ms] of u.functions.slice(0, top)) process.stdout.write(`${((ms / u.sum) * 100).toFixed(1).padStart(5)}% ${ms.toFixed(0).padStart(7)} ms  ${k}\n`)
    process.exit(0)
  }
  const pct = (ms: number) => `${((ms / s.totalMs) * 100).toFixed(1).padStart(5)}%`
  process.stdout.write(`total sampled ${s.totalMs.toFixed(0)} ms\n\nby package:\n`)
  for (const [k, ms] of s.packages.slice(0, 25)) process.stdout.write(`${pct(ms)} ${ms.toFixed(0).padStart(7)} ms  ${k}\n`)
  const filter = process.argv[4]
  process.stdout.write("\nby function (inclusive, orchestra code):\n")
  for (const [k, ms] of s.inclusive.filter(([k]) => filter === undefined ? /packages\/|plugins\//.test(k) : k.includes(filter)).slice(0, top)) {
    process.stdout.write(`${pct(ms)} ${ms.toFixed(0).padStart(7)} ms  ${k}\n`)
  }
  process.stdout.write("\nby function (self):\n")
  for (const [k, ms] of s.functions.slice(0, top)) process.stdout.write(`${pct(ms)} ${ms.toFixed(0).padStart(7)} ms  ${k}\n`)
}
