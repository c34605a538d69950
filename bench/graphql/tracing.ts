/**
 * `npm run bench -- graphql-tracing`: what tracing costs a mercurius server,
 * ours against `@opentelemetry/instrumentation-graphql`. Writes
 * bench/results/graphql-tracing.md.
 *
 * Every variant answers the same 50-field query (tracing-variants.ts) in
 * its own process (the instrumentation patches graphql-js for the whole
 * process), measured paired with a fresh untraced twin on the same core at
 * the same time (bench/lib/pairs.ts), rounds in Williams order. The two
 * goals of issue 19: behind `@opentelemetry/instrumentation-http`, our
 * tracer with default settings keeps at least 95% of that app's throughput
 * (its pair ratio over the `http` pair's, round by round); with a span per
 * field, the CPU it adds per request is at most 0.40× what
 * `@opentelemetry/instrumentation-graphql` adds.
 */
import { fileURLToPath } from 'node:url'
import type { BenchDefinition } from '../lib/bench.js'
import type { ServerKind } from '../lib/compare-servers.js'
import type { ServerHandle } from '../lib/http.js'
import { comparePairs, type PairsResult } from '../lib/pairs.js'
import { fmt, machineBlock, table } from '../lib/report.js'
import { summarize } from '../lib/stats.js'
import { QUERY, TRACING_VARIANTS, type TracingVariant } from './tracing-variants.js'

const SERVER = fileURLToPath(new URL('./tracing-server.ts', import.meta.url))
const BODY = JSON.stringify({ query: QUERY })
const PROBES = 20

/** Spans each variant ended per request, measured by its check. */
const spansPerRequest: Partial<Record<TracingVariant, number>> = {}

/** Spans per request each variant must show: tracing on, and doing what it says. */
const EXPECTED_SPANS: Record<TracingVariant, (n: number) => boolean> = {
  untraced: (n) => n === 0,
  sdk: (n) => n === 0,
  'one-span': (n) => n === 1,
  ours: (n) => n === 1,
  'ours-unsampled': (n) => n === 0,
  'ours-resolvers': (n) => n === 52,
  otel: (n) => n >= 51,
  http: (n) => n === 1,
  'http-ours': (n) => n === 2,
}

async function post(server: ServerHandle): Promise<void> {
  const res = await fetch(`${server.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: BODY,
  })
  const body = (await res.json()) as { data?: { item?: Record<string, string> }; errors?: unknown }
  if (res.status !== 200 || body.errors !== undefined || body.data?.item?.f50 !== 'v50') {
    throw new Error(`POST /graphql answered ${res.status} ${JSON.stringify(body).slice(0, 200)}`)
  }
}

async function check(variant: TracingVariant, server: ServerHandle): Promise<void> {
  const before = await server.ask<number>('spans')
  for (let i = 0; i < PROBES; i++) await post(server)
  // The batch processor may still hold spans, but onEnd (what is counted) has run.
  const n = ((await server.ask<number>('spans')) - before) / PROBES
  if (!EXPECTED_SPANS[variant](n)) throw new Error(`${variant}: ${n} spans per request`)
  spansPerRequest[variant] = n
}

const KIND: ServerKind<TracingVariant> = {
  entry: SERVER,
  check,
  describe: (v) => `${TRACING_VARIANTS[v]}; ${spansPerRequest[v] ?? '?'} spans/request`,
  request: {
    method: 'POST',
    path: '/graphql',
    headers: { 'content-type': 'application/json' },
    body: BODY,
  },
  requestLabel: '`POST /graphql`, `{ item { f1 … f50 } }` (JSON body)',
  // Per server of a pair: enough to keep it busy, few enough that the
  // slowest variant still answers within a measurement.
  load: { connections: 10, pipelining: 1 },
}

const VARIANTS: readonly TracingVariant[] = [
  'untraced',
  'sdk',
  'one-span',
  'ours',
  'ours-unsampled',
  'ours-resolvers',
  'otel',
  'http',
  'http-ours',
]

interface Row {
  readonly label: string
  readonly values: readonly number[]
  readonly format: (x: number) => string
  readonly goal?: { readonly text: string; readonly met: (x: number) => boolean }
}

function rowsTable(head: string, rows: readonly Row[]): string {
  return table(
    [head, 'Median', 'IQR', 'Min–max', 'Goal', 'Rounds meeting goal', 'Per round'],
    rows.map((r) => {
      const s = summarize(r.values)
      const f = r.format
      return [
        r.label,
        `**${f(s.median)}**`,
        `${f(s.q1)}–${f(s.q3)}`,
        `${f(s.min)}–${f(s.max)}`,
        r.goal?.text ?? '—',
        r.goal === undefined ? '—' : `${r.values.filter(r.goal.met).length}/${r.values.length}`,
        r.values.map(f).join(' '),
      ]
    }),
  )
}

const times = (x: number) => `${x.toFixed(2)}×`
const pct = (x: number) => `${(x * 100).toFixed(1)}%`

function report(result: PairsResult<TracingVariant>): string {
  const ratios = (v: TracingVariant) => result.pairs[v].map((m) => m.ratio)
  const loss = (v: TracingVariant) => ratios(v).map((r) => 1 - r)
  const cost = (v: TracingVariant) => ratios(v).map((r) => 1 / r - 1)
  const per = (a: number[], b: number[], f: (x: number, y: number) => number) =>
    a.map((x, i) => f(x, b[i]!))
  const ours = ratios('ours')
  const label: Record<TracingVariant, string> = {
    untraced: 'A/A control: untraced / untraced (noise floor)',
    sdk: 'SDK alone / untraced',
    'one-span': 'one bare span per operation / untraced',
    ours: 'ours, default settings / untraced',
    'ours-unsampled': 'ours, sampled out / untraced',
    'ours-resolvers': 'ours, resolver spans / untraced',
    otel: 'instrumentation-graphql / untraced',
    http: 'instrumentation-http (an HTTP server span) / untraced',
    'http-ours': 'instrumentation-http + ours, default settings / untraced',
  }
  const ratioRows: Row[] = VARIANTS.map((v) => ({
    label: label[v],
    values: ratios(v),
    format: times,
  }))
  const overheadRows: Row[] = [
    {
      label: 'ours, default settings: throughput lost',
      values: loss('ours'),
      format: pct,
    },
    { label: 'ours, default settings: added CPU per request', values: cost('ours'), format: pct },
    {
      label: 'resolver spans, ours ÷ instrumentation: throughput lost',
      values: per(loss('ours-resolvers'), loss('otel'), (a, b) => a / b),
      format: times,
    },
    {
      label: 'resolver spans, ours ÷ instrumentation: added CPU per request',
      values: per(cost('ours-resolvers'), cost('otel'), (a, b) => a / b),
      format: times,
      goal: { text: '≤ 0.40×', met: (x) => x <= 0.4 },
    },
    {
      label: 'ours, default ÷ one bare span (our code above the floor)',
      values: per(ours, ratios('one-span'), (a, b) => a / b),
      format: times,
    },
    {
      label: 'ours, sampled out ÷ SDK alone (the cost of a span that does not record)',
      values: per(ratios('ours-unsampled'), ratios('sdk'), (a, b) => a / b),
      format: times,
    },
    {
      label: 'ours, default ÷ SDK alone (what our tracer adds to an instrumented app)',
      values: per(ours, ratios('sdk'), (a, b) => a / b),
      format: times,
    },
    {
      label:
        'instrumentation-http + ours ÷ instrumentation-http alone (what our tracer, default settings, costs an app already traced at the HTTP layer)',
      // Each round's two pair ratios, divided: both twins untraced, so whatever slowed that round's core cancels.
      values: per(ratios('http-ours'), ratios('http'), (a, b) => a / b),
      format: times,
      goal: { text: '≥ 0.95×', met: (x) => x >= 0.95 },
    },
  ]
  const abs = table(
    [
      'Variant',
      'Spans per request',
      'req/s: median (its untraced pair)',
      'pair CPU: median',
      'rest of server core: median',
    ],
    VARIANTS.map((v) => {
      const ms = result.pairs[v]
      const med = (f: (m: (typeof ms)[number]) => number) => summarize(ms.map(f)).median
      return [
        `\`${v}\`: ${TRACING_VARIANTS[v]}`,
        String(spansPerRequest[v] ?? '?'),
        `${fmt.int(med((m) => m.variantRps))} (${fmt.int(med((m) => m.baselineRps))})`,
        fmt.percent(med((m) => m.pairCpu)),
        fmt.percent(med((m) => m.foreignCpu)),
      ]
    }),
  )
  return [
    '## Tracing overhead on a 50-field query',
    '',
    'The same mercurius app answers `{ item { f1 … f50 } }` (one resolver of ours, 50 default resolvers) in every variant. Traced variants run the SDK as an application would: AsyncLocalStorage context manager (entered once, as any instrumentation does), global `BasicTracerProvider`, `BatchSpanProcessor`, and an exporter that accepts and drops every batch.',
    '',
    'Each variant is measured **paired** with an untraced server: both start fresh, run at the same time on the same pinned core, and are loaded at once (see bench/lib/pairs.ts). The ratio is the variant’s requests/s over its untraced twin’s, so it is the inverse of their cost per request; whatever else uses the core slows both alike. Above 1.00× the variant was faster.',
    '',
    rowsTable('Ratio to untraced', ratioRows),
    '',
    'Overheads, per round. *Throughput lost* is `1 − ratio`; *added CPU per request* is `1/ratio − 1`, the cost the tracing adds to each request (it grows linearly with the spans made, where throughput lost saturates towards 100%). The two rows with a goal are issue 19’s: the HTTP-traced app’s throughput kept, and the resolver spans’ added CPU per request against the instrumentation’s (its throughput-lost twin is shown for reference).',
    '',
    rowsTable('Overhead', overheadRows),
    '',
    abs,
    '',
    table(
      ['Setting', 'Value'],
      [
        [
          'Rounds',
          `${result.rounds} (variants in Williams order per round, see bench/lib/rounds.ts)`,
        ],
        ['Load per measurement', `${result.durationS} s, after ${result.warmupS} s of warm-up`],
        ['Request', '`POST /graphql`, `{ item { f1 … f50 } }` (JSON body)'],
        [
          'autocannon',
          `${result.connections} connections per server, no pipelining, both servers at once`,
        ],
        ['Server pinning', 'both servers of a pair on `taskset -c 0`, Fastify logger off'],
        ['Load generator', 'autocannon in the driver process, `taskset -c 1`'],
      ],
    ),
    '',
    '"Pair CPU" is the two servers’ CPU time over wall time: near 100% means the core was theirs and both were saturated. "Rest of server core" is what anything else used of it meanwhile.',
    '',
    `Spans per request are counted by each server (a span processor that counts \`onEnd\`) over ${PROBES} requests before it is measured; the same requests check that every answer carries \`f50\` and no error.`,
  ].join('\n')
}

export const graphqlTracingBench: BenchDefinition = {
  name: 'graphql-tracing',
  description: 'GraphQL tracer overhead on mercurius vs @opentelemetry/instrumentation-graphql',
  async run(ctx) {
    const result = await comparePairs(ctx, {
      tag: 'graphql-tracing',
      kind: KIND,
      baseline: 'untraced',
      variants: VARIANTS,
      // 9 variants: 9 rounds run each in every position once.
      defaultRounds: 9,
    })
    return [
      '# GraphQL tracer benchmark',
      '',
      'Generated by `npm run bench -- graphql-tracing` (bench/graphql/tracing.ts); see bench/README.md for how to read it.',
      '',
      machineBlock(ctx.machine, ctx.pinning),
      '',
      report(result),
      '',
    ].join('\n')
  },
}
