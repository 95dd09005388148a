/**
 * The `needs` graph of a pipeline: cycles, ancestors, topological levels.
 * Nodes are job names; edges point from a job to the jobs it needs.
 * Unknown names in `needs` are left out (reported elsewhere).
 *
 * @internal
 */

export type Graph = ReadonlyMap<string, ReadonlyArray<string>>

/**
 * Every cycle found by a depth-first search in node order, each once (as
 * the list of its jobs, starting from the job first met, not repeated at
 * the end).
 */
export const cycles = (graph: Graph): ReadonlyArray<ReadonlyArray<string>> => {
  const color = new Map<string, "grey" | "black">()
  const stack: Array<string> = []
  const found: Array<ReadonlyArray<string>> = []
  const seen = new Set<string>()
  const visit = (node: string) => {
    color.set(node, "grey")
    stack.push(node)
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue
      const c = color.get(next)
      if (c === "grey") {
        const cycle = stack.slice(stack.indexOf(next))
        const key = [...cycle].sort().join("\u0000")
        if (!seen.has(key)) {
          seen.add(key)
          found.push(cycle)
        }
      } else if (c === undefined) {
        visit(next)
      }
    }
    stack.pop()
    color.set(node, "black")
  }
  for (const node of graph.keys()) if (!color.has(node)) visit(node)
  return found
}

/** Every job reachable through `needs` from each job (itself excluded unless on a cycle). */
export const ancestors = (graph: Graph): ReadonlyMap<string, ReadonlySet<string>> => {
  const out = new Map<string, ReadonlySet<string>>()
  for (const node of graph.keys()) {
    const seen = new Set<string>()
    const todo = [...(graph.get(node) ?? [])]
    while (todo.length > 0) {
      const n = todo.pop()!
      if (seen.has(n) || !graph.has(n)) continue
      seen.add(n)
      for (const m of graph.get(n) ?? []) todo.push(m)
    }
    out.set(node, seen)
  }
  return out
}

/**
 * Topological levels of an acyclic graph: level 0 needs nothing, level n
 * needs something of level n-1. Within a level, nodes keep graph order.
 */
export const levels = (graph: Graph): ReadonlyArray<ReadonlyArray<string>> => {
  const level = new Map<string, number>()
  const depth = (node: string, guard: number): number => {
    const known = level.get(node)
    if (known !== undefined) return known
    if (guard > graph.size) return 0 // a cycle: not expected here
    let l = 0
    for (const n of graph.get(node) ?? []) if (graph.has(n)) l = Math.max(l, depth(n, guard + 1) + 1)
    level.set(node, l)
    return l
  }
  const out: Array<Array<string>> = []
  for (const node of graph.keys()) {
    const l = depth(node, 0)
    while (out.length <= l) out.push([])
    out[l]!.push(node)
  }
  return out
}
