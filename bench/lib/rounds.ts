/**
 * Interleaved rounds: the one measurement protocol every bench here uses.
 *
 * On this kind of machine (2 shared cores) the same setup swings 2x between
 * runs and drifts by up to 50% within one. Comparing "variant A for a minute,
 * then variant B for a minute" would mostly measure the drift. Instead each
 * round measures every variant once, back to back, and the comparison is made
 * inside the round (variant / baseline), where both saw nearly the same
 * machine. The order changes each round (see williamsOrders) so no variant
 * always runs first, last, or after the same neighbour; the median of the
 * per-round ratios then discards the rounds a neighbour spoiled, and the
 * spread says how far to trust it.
 */
import { type Summary, summarize } from './stats.js'

/** One measurement of one variant: the headline figure plus any context figures. */
export interface Measurement {
  /** The figure ratios are computed from (requests/s, ops/s, ns/op...). */
  readonly value: number
  /** Context reported in the absolute table only (p99 latency, CPU share...). */
  readonly extra?: Readonly<Record<string, number>>
}

/** Whether a bigger `value` is better (throughput) or worse (latency). */
export type Direction = 'higher-is-better' | 'lower-is-better'

export interface RoundsOptions<V extends string> {
  readonly variants: readonly V[]
  readonly rounds: number
  readonly measure: (variant: V, round: number) => Promise<Measurement>
  /** Progress hook, called after each measurement (benches print a line). */
  readonly onMeasured?: (variant: V, round: number, m: Measurement) => void
}

export interface RoundsResult<V extends string> {
  readonly variants: readonly V[]
  /** `samples[variant][round]`. */
  readonly samples: Readonly<Record<V, readonly Measurement[]>>
  /** The order each round ran in, for the record. */
  readonly orders: readonly (readonly V[])[]
}

/**
 * Round orders from a Williams design: every variant runs once in every
 * position, and directly after every other variant equally often. Plain
 * rotation (round r starts at variant r) balances positions but keeps the
 * cyclic order, so the same variant always runs right after the same other
 * one, and any carry-over from one measurement to the next (kernel socket
 * state, a core's caches or clock) lands on the same pair in every round.
 * `n` variants give n orders when n is even, 2n (each with its mirror) when
 * odd; run a multiple of that many rounds for full balance.
 */
export function williamsOrders<V>(variants: readonly V[]): V[][] {
  const n = variants.length
  // First row 0, 1, n-1, 2, n-2, ...; row r adds r (mod n) to each entry.
  const first = [0]
  for (let lo = 1, hi = n - 1; first.length < n; ) {
    first.push(lo++)
    if (first.length < n) first.push(hi--)
  }
  const rows: number[][] = []
  for (let r = 0; r < n; r++) rows.push(first.map((x) => (x + r) % n))
  if (n % 2 === 1) for (let r = 0; r < n; r++) rows.push([...rows[r]!].reverse())
  return rows.map((row) => row.map((i) => variants[i]!))
}

/** The order of round `round`: the Williams orders, cycled. */
export function roundOrder<V>(variants: readonly V[], round: number): V[] {
  const orders = williamsOrders(variants)
  return orders[round % orders.length]!
}

export async function runRounds<V extends string>(
  options: RoundsOptions<V>,
): Promise<RoundsResult<V>> {
  const { variants, rounds, measure } = options
  const samples = Object.fromEntries(variants.map((v) => [v, [] as Measurement[]])) as Record<
    V,
    Measurement[]
  >
  const orders: V[][] = []
  for (let round = 0; round < rounds; round++) {
    const order = roundOrder(variants, round)
    orders.push(order)
    for (const variant of order) {
      const m = await measure(variant, round)
      samples[variant][round] = m
      options.onMeasured?.(variant, round, m)
    }
  }
  return { variants, samples, orders }
}

/** A ratio to report: `variant` against `baseline` (ours vs bare, ours vs the peer...). */
export interface Comparison<V extends string> {
  readonly label: string
  readonly variant: V
  readonly baseline: V
  /** The ratio the variant should reach; the report counts the rounds that do. */
  readonly goal?: number
}

export interface ComparisonResult {
  readonly label: string
  readonly variant: string
  readonly baseline: string
  readonly goal: number | undefined
  /** One ratio per round, in round order; > 1 always means the variant was faster. */
  readonly ratios: readonly number[]
  readonly summary: Summary
  /** Rounds whose ratio reached the goal. */
  readonly roundsMeetingGoal: number | undefined
}

/**
 * Per-round ratios of `variant` to `baseline`. For throughput that is
 * variant / baseline; for latency baseline / variant, so a ratio above 1
 * means "variant faster" in both cases and the tables read the same way.
 */
export function compare<V extends string>(
  result: RoundsResult<V>,
  comparison: Comparison<V>,
  direction: Direction,
): ComparisonResult {
  const a = result.samples[comparison.variant]
  const b = result.samples[comparison.baseline]
  const ratios: number[] = []
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const v = a[i]!.value
    const base = b[i]!.value
    ratios.push(direction === 'higher-is-better' ? v / base : base / v)
  }
  const goal = comparison.goal
  return {
    label: comparison.label,
    variant: comparison.variant,
    baseline: comparison.baseline,
    goal,
    ratios,
    summary: summarize(ratios),
    roundsMeetingGoal: goal === undefined ? undefined : ratios.filter((r) => r >= goal).length,
  }
}

/** Absolute figures of one variant across rounds: the headline value and each extra. */
export function absolutes<V extends string>(
  result: RoundsResult<V>,
  variant: V,
): { value: Summary; extra: Record<string, Summary> } {
  const ms = result.samples[variant]
  const keys = new Set(ms.flatMap((m) => Object.keys(m.extra ?? {})))
  const extra: Record<string, Summary> = {}
  for (const k of keys) {
    extra[k] = summarize(ms.map((m) => m.extra?.[k]).filter((x): x is number => x !== undefined))
  }
  return { value: summarize(ms.map((m) => m.value)), extra }
}
