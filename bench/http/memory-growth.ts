/**
 * `npm run bench -- memory-growth`: what the memory rate-limit store costs as
 * the number of distinct clients grows, and whether `maxKeys` bounds its
 * memory. Writes bench/results/memory-growth.md.
 *
 * Each measurement is a fresh child process (`memory-growth-child.ts`, pinned
 * to the server core): RSS is per process, and a store grown by an earlier
 * measurement would stay in the heap of a reused one. Rounds interleave the
 * workloads in Williams orders (lib/rounds.ts); throughput ratios are taken
 * inside each round against the 1,000-key workload.
 */
import { execFile } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { BenchDefinition } from '../lib/bench.js'
import { knob } from '../lib/options.js'
import { pinned, SERVER_CORE } from '../lib/pin.js'
import { fmt, machineBlock, ratioTable, table } from '../lib/report.js'
import { absolutes, compare, type Measurement, runRounds, williamsOrders } from '../lib/rounds.js'
import { summarize } from '../lib/stats.js'

const run = promisify(execFile)
const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'memory-growth-child.ts')
const DEFAULT_MAX_KEYS = 100_000
/** 5 workloads: a Williams design repeats every 10 rounds. */
const DEFAULT_ROUNDS = 10
const DEFAULT_TIME_MS = 1000

interface Workload {
  readonly keys: number
  readonly maxKeys: number
  readonly msPerCall: number
  readonly windowMs: number
  readonly about: string
}

const WORKLOADS = {
  '1e3': {
    keys: 1_000,
    maxKeys: DEFAULT_MAX_KEYS,
    msPerCall: 0,
    windowMs: 60_000,
    about: '1,000 clients, all live (frozen clock), default maxKeys',
  },
  '1e5': {
    keys: 100_000,
    maxKeys: DEFAULT_MAX_KEYS,
    msPerCall: 0,
    windowMs: 60_000,
    about: '100,000 clients, all live: fills the default maxKeys exactly',
  },
  '1e6-live': {
    keys: 1_000_000,
    maxKeys: DEFAULT_MAX_KEYS,
    msPerCall: 0,
    windowMs: 60_000,
    about:
      '1,000,000 clients, all live (frozen clock), default maxKeys: 100,000 own counters, the other 900,000 keys share the overflow counter (nothing can be evicted)',
  },
  '1e6-expiring': {
    keys: 1_000_000,
    maxKeys: DEFAULT_MAX_KEYS,
    msPerCall: 2,
    windowMs: 60_000,
    about:
      '1,000,000 clients, the virtual clock moves 2 ms per call (a 60 s window passes every 30,000 calls): a full store evicts idle counters for newcomers',
  },
  '1e6-unbounded': {
    keys: 1_000_000,
    maxKeys: 1_000_000,
    msPerCall: 0,
    windowMs: 60_000,
    about: 'reference: 1,000,000 clients with maxKeys 1,000,000, i.e. what the bound saves',
  },
} as const satisfies Record<string, Workload>
type Variant = keyof typeof WORKLOADS
const VARIANTS = Object.keys(WORKLOADS) as Variant[]

interface ChildResult {
  callsPerCpuS: number
  callsPerS: number
  fillCallsPerS: number
  rssMb: number
  rssGrowthMb: number
  heapMb: number
  storeHeapMb: number
  size: number
  calls: number
}

async function measure(variant: Variant, timeMs: number): Promise<Measurement> {
  const w = WORKLOADS[variant]
  const [cmd, args] = pinned(SERVER_CORE, process.execPath, [
    '--expose-gc',
    '--import',
    'tsx',
    CHILD,
    JSON.stringify({ ...w, timeMs }),
  ])
  const { stdout } = await run(cmd, args, { maxBuffer: 1 << 20 })
  const r = JSON.parse(stdout.trim().split('\n').at(-1)!) as ChildResult
  const expectedSize = Math.min(w.keys, w.maxKeys)
  // Sanity: a store that held more than maxKeys, or fewer keys than it could, measures something else.
  if (r.size > w.maxKeys)
    throw new Error(`${variant}: store holds ${r.size} > maxKeys ${w.maxKeys}`)
  if (w.msPerCall === 0 && r.size !== expectedSize)
    throw new Error(`${variant}: store holds ${r.size}, expected ${expectedSize}`)
  return {
    value: r.callsPerCpuS,
    extra: {
      wallCallsPerS: r.callsPerS,
      storeHeapMb: r.storeHeapMb,
      fillCallsPerS: r.fillCallsPerS,
      rssMb: r.rssMb,
      rssGrowthMb: r.rssGrowthMb,
      heapMb: r.heapMb,
      size: r.size,
    },
  }
}

export const memoryGrowthBench: BenchDefinition = {
  name: 'memory-growth',
  description: 'MemoryStore: consume calls/s and RSS at 1e3, 1e5 and 1e6 distinct clients',
  optional: true,
  async run(ctx) {
    const rounds = knob(ctx.knobs.rounds, DEFAULT_ROUNDS)
    const timeMs = knob(ctx.knobs.timeMs, DEFAULT_TIME_MS)
    const result = await runRounds({
      variants: VARIANTS,
      rounds,
      measure: (v) => measure(v, timeMs),
      onMeasured: (v, round, m) =>
        ctx.log(
          `memory-growth: round ${round + 1}/${rounds} ${v}: ${fmt.int(m.value)} calls/CPU-s, RSS ${m.extra!.rssMb!.toFixed(0)} MB, store heap ${m.extra!.storeHeapMb!.toFixed(0)} MB (+${m.extra!.rssGrowthMb!.toFixed(0)}), ${fmt.int(m.extra!.size!)} counters`,
        ),
    })
    const comparisons = VARIANTS.filter((v) => v !== '1e3').map((v) =>
      compare(
        result,
        { label: `${v} / 1e3 (steady consume calls per CPU second)`, variant: v, baseline: '1e3' },
        'higher-is-better',
      ),
    )
    const cell = (xs: readonly number[], f: (x: number) => string) => {
      const s = summarize(xs)
      return `**${f(s.median)}** (IQR ${f(s.q1)}–${f(s.q3)}, ${f(s.min)}–${f(s.max)})`
    }
    const mb = (x: number) => `${x.toFixed(0)} MB`
    const of = (v: Variant, k: string) =>
      result.samples[v].map((m) => (k === 'value' ? m.value : m.extra![k]!))
    const rows = VARIANTS.map((v) => [
      `\`${v}\``,
      fmt.int(WORKLOADS[v].keys),
      fmt.int(WORKLOADS[v].maxKeys),
      fmt.int(absolutes(result, v).extra.size!.median),
      cell(of(v, 'value'), fmt.int),
      cell(of(v, 'wallCallsPerS'), fmt.int),
      cell(of(v, 'fillCallsPerS'), fmt.int),
      cell(of(v, 'rssMb'), mb),
      cell(of(v, 'rssGrowthMb'), mb),
      cell(of(v, 'storeHeapMb'), mb),
      `${fmt.int((absolutes(result, v).extra.storeHeapMb!.median * 2 ** 20) / Math.max(1, absolutes(result, v).extra.size!.median))} B`,
    ])
    // The bound: RSS growth at 1e6 keys over the growth at 1e5 (both at the default maxKeys), per round.
    const plateau = (v: Variant) =>
      summarize(
        result.samples[v].map(
          (m, i) => m.extra!.storeHeapMb! / result.samples['1e5'][i]!.extra!.storeHeapMb!,
        ),
      )
    const p = (v: Variant) => {
      const s = plateau(v)
      return `${fmt.ratio(s.median)} (min–max ${fmt.ratio(s.min)}–${fmt.ratio(s.max)})`
    }
    return [
      '# Memory rate-limit store: cost as the clients grow',
      '',
      'Generated by `npm run bench -- memory-growth` (bench/http/memory-growth.ts); see bench/README.md for how to read it.',
      '',
      machineBlock(ctx.machine, ctx.pinning),
      '',
      '`MemoryStore.consumeSync` called in-process (no HTTP): the figures are **consume calls/s**, not requests/s. Every measurement is a fresh child process (RSS is per process), pinned to the server core; the workloads are interleaved in rounds (Williams orders). A child first consumes once for every key (the fill), then consumes keys in a fixed pseudo-random order for the steady window, then runs a full GC and reads its memory. "RSS growth" is RSS at the end minus RSS just before the store was created; "store heap" is the heap the store frees when cleared (its counters and the keys they hold; keys are built per call, never kept elsewhere), and "per counter" divides it by the counters held. Throughput is counted per CPU second of the child (the machine is shared: the wall clock also counts other processes\' turns), wall-clock figures beside it.',
      '',
      ...VARIANTS.map((v) => `- \`${v}\`: ${WORKLOADS[v].about}`),
      '',
      '## Figures',
      '',
      table(
        [
          'Workload',
          'Keys',
          'maxKeys',
          'Counters held',
          'Steady calls per CPU second: median (IQR, min–max)',
          'Steady calls per wall second',
          'Fill calls per wall second',
          'RSS',
          'RSS growth',
          'Store heap',
          'Per counter',
        ],
        rows,
      ),
      '',
      `The bound: store heap at 1,000,000 keys ÷ at 100,000 keys (both at the default maxKeys), per round: \`1e6-live\` ${p('1e6-live')}, \`1e6-expiring\` ${p('1e6-expiring')}; without the bound (\`1e6-unbounded\`) ${p('1e6-unbounded')}.`,
      '',
      '## Throughput against 1,000 keys',
      '',
      ratioTable(comparisons),
      '',
      '## Settings',
      '',
      table(
        ['Setting', 'Value'],
        [
          [
            'Rounds',
            `${rounds} (Williams design over ${VARIANTS.length} workloads, repeating every ${williamsOrders(VARIANTS).length})`,
          ],
          ['Steady window', `${timeMs} ms (\`--time\`) per child, after the fill`],
          ['Policy', 'one policy, max 1,000,000 (never refused), windowMs 60,000'],
          ['Quick mode', ctx.knobs.quick ? 'yes: the figures only check the wiring' : 'no'],
        ],
      ),
      '',
    ].join('\n')
  },
}
