/**
 * Small statistics for benchmark samples: percentiles (nearest rank) and
 * medians of repeated runs.
 *
 * @since 0.1.0
 */

/** The p-th percentile (0–100) of samples, by nearest rank; NaN when empty. */
export const percentile = (sorted: ReadonlyArray<number>, p: number): number => {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

export interface Distribution {
  readonly count: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly p999: number
  readonly max: number
  readonly mean: number
}

const r2 = (x: number) => Math.round(x * 100) / 100

/** Summarize samples (milliseconds, say). */
export const distribution = (samples: ReadonlyArray<number>): Distribution => {
  const sorted = [...samples].sort((a, b) => a - b)
  const sum = sorted.reduce((a, b) => a + b, 0)
  return {
    count: sorted.length,
    p50: r2(percentile(sorted, 50)),
    p90: r2(percentile(sorted, 90)),
    p99: r2(percentile(sorted, 99)),
    p999: r2(percentile(sorted, 99.9)),
    max: r2(sorted[sorted.length - 1] ?? NaN),
    mean: r2(sorted.length === 0 ? NaN : sum / sorted.length)
  }
}

/** The median of numbers (the lower middle for an even count, so it is one of the runs). */
export const median = (xs: ReadonlyArray<number>): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? NaN
}

/** The run whose `key` is the median of all runs. */
export const medianRun = <A>(runs: ReadonlyArray<A>, key: (a: A) => number): A => {
  const m = median(runs.map(key))
  return runs.find((r) => key(r) === m) ?? runs[0]!
}
