/**
 * Measures the growth variants (growth.ts) in interleaved rounds and writes
 * their part of bench/results/api-keys.md: one table row per size.
 */
import type { BenchContext } from '../lib/bench.js'
import { fmt, ratioTable, table } from '../lib/report.js'
import {
  type Comparison,
  type ComparisonResult,
  compare,
  type Measurement,
  type RoundsResult,
  runRounds,
  williamsOrders,
} from '../lib/rounds.js'
import { type Summary, summarize } from '../lib/stats.js'
import { measureWindow, type WindowSettings } from '../lib/window.js'
import { FULL_SIZES, type GrowthVariant, QUICK_SIZES, setupGrowth, sizeLabel } from './growth.js'

/** Six contenders: a Williams design repeats every 6 rounds; two repeats. */
const DEFAULT_ROUNDS = 12
/** Latencies kept per window (a warm window at 500 ms makes about 200,000). */
const MAX_SAMPLES = 4_000_000

export async function runGrowth(
  ctx: BenchContext,
  windowMs: number,
  settings: WindowSettings,
): Promise<{ markdown: string[]; checks: readonly string[] }> {
  const sizes = ctx.knobs.quick ? QUICK_SIZES : FULL_SIZES
  const rounds = ctx.knobs.rounds ?? DEFAULT_ROUNDS
  const g = await setupGrowth({ sizes, log: ctx.log })
  try {
    const byName = new Map(g.variants.map((v) => [v.name, v]))
    const names = g.variants.map((v) => v.name)
    const latencies = new Float64Array(MAX_SAMPLES)
    const measure = async (v: GrowthVariant): Promise<Measurement> => {
      let n = 0
      const timed = () => {
        const t = performance.now()
        return v.op().then(() => {
          if (n < MAX_SAMPLES) latencies[n++] = performance.now() - t
        })
      }
      const reads0 = v.reads()
      const flush0 = { ...v.flush }
      const m = await measureWindow(timed, windowMs, settings)
      const flushMsInWindow = v.flush.ms - flush0.ms
      // Untimed: what the window queued is written before the next one starts.
      const t0 = performance.now()
      await v.manager.flush()
      const drainMs = performance.now() - t0
      const sorted = latencies.slice(0, n).sort()
      return {
        value: m.value,
        extra: {
          ...m.extra,
          p50Us: percentile(sorted, 0.5) * 1000,
          p99Us: percentile(sorted, 0.99) * 1000,
          readsPerOp: (v.reads() - reads0) / Math.max(1, n),
          flushMsInWindow,
          drainMs,
          lastUsedPerWindow: v.flush.lastUsed - flush0.lastUsed,
          auditPerWindow: v.flush.audit - flush0.audit,
        },
      }
    }
    // Unmeasured: JIT and each connection's prepared statement.
    for (const v of g.variants) await measure(v)
    const result = await runRounds({
      variants: names,
      rounds,
      measure: (name) => measure(byName.get(name)!),
      onMeasured: (name, round, m) =>
        ctx.log(
          `api-keys growth round ${round + 1}/${rounds} ${name.padEnd(12)} ${fmt.int(m.value)} ops/s p50 ${fmt.fixed(1)(m.extra!.p50Us!)} µs`,
        ),
    })
    const missNames = names.filter((n) => n.startsWith('miss-') && !n.endsWith('-aa'))
    const aaName = names.find((n) => n.endsWith('-aa'))!
    const smallest = missNames[0]!
    const warmOne = 'warm-1'
    const warmMany = `warm-${sizeLabel(sizes.warmKeys)}`
    const pairs: Comparison<string>[] = [
      ...missNames
        .slice(1)
        .map((n) => ({ label: `${n} / ${smallest}`, variant: n, baseline: smallest })),
      { label: `A/A control: ${aaName} / ${smallest}`, variant: aaName, baseline: smallest },
      { label: `${warmMany} / ${warmOne}`, variant: warmMany, baseline: warmOne },
    ]
    const opsRatios = pairs.map((c) => compare(result, c, 'higher-is-better'))
    const p50Result = extraAsValue(result, 'p50Us')
    const p99Result = extraAsValue(result, 'p99Us')
    const p50Ratios = pairs.map((c) => compare(p50Result, c, 'lower-is-better'))
    const p99Ratios = pairs.map((c) => compare(p99Result, c, 'lower-is-better'))
    for (const c of opsRatios) ctx.log(`api-keys growth ${c.label}: ${fmt.ratio(c.summary.median)}`)

    const stat = (name: string, key?: string): Summary =>
      summarize(result.samples[name]!.map((m) => (key === undefined ? m.value : m.extra![key]!)))
    const cell = (s: Summary, f: (x: number) => string) => `${f(s.median)} (${f(s.q1)}–${f(s.q3)})`
    const ratioCell = (rs: readonly ComparisonResult[], name: string) => {
      const r = rs.find((x) => x.variant === name)
      return r === undefined
        ? '1 (baseline)'
        : `${fmt.ratio(r.summary.median)} (${fmt.ratio(r.summary.q1)}–${fmt.ratio(r.summary.q3)})`
    }
    const us = fmt.fixed(1)
    const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MB`
    const missRows = [...missNames.slice(0, 1), aaName, ...missNames.slice(1)].map((name) => {
      const size = g.sizes[missNames.indexOf(name)] ?? g.sizes[0]!
      return [
        `\`${name}\``,
        fmt.int(size.rows),
        name === aaName ? '(same schema)' : `${fmt.int(size.seedMs / 1000)} s`,
        `${mb(size.tableBytes)} / ${mb(size.indexBytes)}`,
        cell(stat(name), fmt.int),
        cell(stat(name, 'p50Us'), us),
        cell(stat(name, 'p99Us'), us),
        ratioCell(opsRatios, name),
        ratioCell(p50Ratios, name),
        fmt.fixed(3)(stat(name, 'readsPerOp').median),
      ]
    })
    const warmRows = [warmOne, warmMany].map((name) => [
      `\`${name}\``,
      name === warmOne ? '1' : fmt.int(sizes.warmKeys),
      cell(stat(name), fmt.int),
      cell(stat(name, 'p50Us'), us),
      cell(stat(name, 'p99Us'), us),
      ratioCell(opsRatios, name),
      ratioCell(p50Ratios, name),
      fmt.fixed(3)(stat(name, 'readsPerOp').median),
      fmt.int(stat(name, 'lastUsedPerWindow').median),
      fmt.int(stat(name, 'flushMsInWindow').median),
      fmt.int(stat(name, 'drainMs').median),
    ])
    const markdown = [
      '## Cost as the work grows',
      '',
      `Cache-miss \`validate()\` against PostgreSQL with more rows in \`api_keys\`, and warm \`validate()\` with more distinct keys in the cache, in their own interleaved rounds (${rounds} rounds over ${names.length} contenders, a Williams design repeating every ${williamsOrders(names).length}; ${windowMs} ms windows, one call in flight). Each cell is the median over the rounds with its IQR; ratios are taken inside each round against the smallest size, above 1.00× the bigger one was faster (for latencies: lower).`,
      '',
      ...g.variants.map((v) => `- ${v.description}`),
      '',
      `Each size has its own schema (dropped afterwards): ${sizes.issued} keys issued through \`ApiKeyManager.create()\`, the rest filler rows inserted by one \`INSERT ... SELECT generate_series\` in the store's own \`api_keys\` table (distinct 12-character base62 ids from a SHA-256, so they scatter over the primary key as real ids do; 32-byte hashes and row MACs), then \`ANALYZE\`. The timed calls cycle through the issued keys. p50 and p99 are of every call in the window, timed one by one.`,
      '',
      '### Cache miss (PostgreSQL) by table size',
      '',
      table(
        [
          'Contender',
          'Rows',
          'Seeding',
          'Table / primary key',
          'ops/s',
          'p50 µs',
          'p99 µs',
          'ops/s ratio to smallest',
          'p50 ratio to smallest',
          'Reads per call',
        ],
        missRows,
      ),
      '',
      "Plan of the store's own cache-miss statement (its exact text, seen on the pool), `EXPLAIN` after `ANALYZE`: the generic plan (`plan_cache_mode = force_generic_plan`, what a named prepared statement settles on) and the custom plan for one issued key id.",
      '',
      table(
        ['Rows', 'Generic plan', 'Custom plan'],
        g.sizes.map((s) => [fmt.int(s.rows), s.genericPlan, s.customPlan]),
      ),
      '',
      '### Warm cache by number of distinct keys',
      '',
      `The ${fmt.int(sizes.warmKeys)} keys are made by \`create()\` with the store's \`insertKey\` captured (hash and row MAC are the API's own), written in bulk (${fmt.int(g.warm.issueMs / 1000)} s for all), then cached by validating each once (${fmt.int(g.warm.cacheMs / 1000)} s); their \`created\` audit rows are not written. They fit the default cache: \`cache.maxEntries\` defaults to 100,000 (allowed up to 10,000,000). Default flush (every 1 s, on the same event loop as the timed calls); after each window the bench waits for a flush, untimed.`,
      '',
      table(
        [
          'Contender',
          'Distinct keys',
          'ops/s',
          'p50 µs',
          'p99 µs',
          'ops/s ratio to warm-1',
          'p50 ratio to warm-1',
          'Reads per call',
          'Keys in flushes per window',
          'ms in store.flush during window',
          'Untimed flush after window, ms',
        ],
        warmRows,
      ),
      '',
      '### Growth ratios',
      '',
      'ops/s:',
      '',
      ratioTable(opsRatios),
      '',
      'p50 latency:',
      '',
      ratioTable(p50Ratios),
      '',
      'p99 latency:',
      '',
      ratioTable(p99Ratios),
      '',
    ]
    return { markdown, checks: g.checks }
  } finally {
    await g.close()
  }
}

/** The same rounds with one extra as the headline value. */
function extraAsValue<V extends string>(result: RoundsResult<V>, key: string): RoundsResult<V> {
  const samples = Object.fromEntries(
    result.variants.map((v) => [
      v,
      result.samples[v].map((m) => ({ value: m.extra?.[key] ?? Number.NaN })),
    ]),
  ) as Record<V, Measurement[]>
  return { ...result, samples }
}

/** Nearest-rank percentile of an ascending array (ms). */
function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!
}
