/**
 * Order statistics for benchmark samples. Medians and quartiles, never means:
 * on a noisy shared machine one round that lands on a busy neighbour would
 * drag a mean anywhere, while the median of the rounds stays put.
 */

/** Linear-interpolated quantile (the "type 7" rule of R and NumPy), `q` in [0, 1]. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const pos = (sorted.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  const a = sorted[lo]!
  const b = sorted[hi]!
  return a + (b - a) * (pos - lo)
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5)
}

/** Where a set of samples sits and how far it spreads. */
export interface Summary {
  readonly n: number
  readonly median: number
  readonly min: number
  readonly max: number
  /** First quartile. */
  readonly q1: number
  /** Third quartile. */
  readonly q3: number
}

export function summarize(values: readonly number[]): Summary {
  return {
    n: values.length,
    median: median(values),
    min: values.length === 0 ? Number.NaN : Math.min(...values),
    max: values.length === 0 ? Number.NaN : Math.max(...values),
    q1: quantile(values, 0.25),
    q3: quantile(values, 0.75),
  }
}
