/**
 * `npm run bench -- graphql-tracing`: what tracing costs a mercurius server,
 * ours against `@opentelemetry/instrumentation-graphql`. Writes
 * bench/results/graphql-tracing.md.
 *
 * Four servers answer the same 50-field query (tracing-variants.ts), each
 * in its own pinned process (the instrumentation patches graphql-js for the
 * whole process), a fresh one per variant per round, rounds interleaved in
 * Williams order (see bench/README.md). Goals from the issue: with default
 * settings our tracer costs at most 10% of untraced throughput; with a span
 * per field, at most half of what the instrumentation costs.
 */
import { fileURLToPath } from 'node:url'
import type { BenchDefinition } from '../lib/bench.js'
import { compareServers, type ServerKind } from '../lib/compare-servers.js'
import type { ServerHandle } from '../lib/http.js'
import { machineBlock, table } from '../lib/report.js'
import type { Measurement, RoundsResult } from '../lib/rounds.js'
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
  ours: (n) => n === 1,
  'ours-resolvers': (n) => n === 52,
  otel: (n) => n >= 51,
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
  // A GraphQL request costs ~50× a hello-world one: 1,000 requests in
  // flight (100 × 10) would take longer than a measurement on the slowest
  // variant. 20 keep the server saturated at a few ms of latency.
  load: { connections: 20, pipelining: 1 },
}

type Round = TracingVariant | 'untraced-aa'

/**
 * A measurement's figure: requests/s, or requests per second of server CPU
 * (`perCpu`), which a neighbour taking part of the server's core does not
 * move: the cost of a request, whatever share of the core it got.
 */
function figure(m: Measurement, perCpu: boolean): number {
  return perCpu ? m.value / (m.extra?.serverCpu ?? Number.NaN) : m.value
}

/** Per round: share of untraced throughput a variant loses. */
function overheads(result: RoundsResult<Round>, variant: Round, perCpu: boolean): number[] {
  const base = result.samples.untraced
  return result.samples[variant].map((m, i) => 1 - figure(m, perCpu) / figure(base[i]!, perCpu))
}

function derived(result: RoundsResult<Round>): string[] {
  return [
    'Overhead is the share of untraced throughput a variant loses, `1 − ratio`, taken inside each round; the overhead ratio divides ours with resolver spans by the instrumentation’s, round by round.',
    '',
    overheadTable(result, false),
    '',
    'The same per request of server CPU time (requests/s ÷ server CPU share): what a request costs whatever share of its core the server got. On this shared machine it is the steadier of the two.',
    '',
    overheadTable(result, true),
    '',
  ]
}

function overheadTable(result: RoundsResult<Round>, perCpu: boolean): string {
  const ours = overheads(result, 'ours', perCpu)
  const resolvers = overheads(result, 'ours-resolvers', perCpu)
  const otel = overheads(result, 'otel', perCpu)
  const aa = overheads(result, 'untraced-aa', perCpu)
  const relative = resolvers.map((x, i) => x / otel[i]!)
  const row = (
    label: string,
    xs: number[],
    f: (x: number) => string,
    goal?: string,
    met?: number,
  ) => {
    const s = summarize(xs)
    return [
      label,
      `**${f(s.median)}**`,
      `${f(s.q1)}–${f(s.q3)}`,
      `${f(s.min)}–${f(s.max)}`,
      goal ?? '—',
      met === undefined ? '—' : `${met}/${xs.length}`,
      xs.map((x) => f(x)).join(' '),
    ]
  }
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`
  const times = (x: number) => `${x.toFixed(2)}×`
  const what = perCpu ? 'Overhead per CPU-second' : 'Overhead (throughput)'
  return table(
    [what, 'Median', 'IQR', 'Min–max', 'Goal', 'Rounds meeting goal', 'Per round'],
    [
      row('ours, default settings', ours, pct, '≤ 10%', ours.filter((x) => x <= 0.1).length),
      row('ours, resolver spans', resolvers, pct),
      row('@opentelemetry/instrumentation-graphql', otel, pct),
      row(
        'ours with resolver spans ÷ instrumentation (overhead ratio)',
        relative,
        times,
        '≤ 0.50×',
        relative.filter((x) => x <= 0.5).length,
      ),
      row('SDK alone, no GraphQL tracing', overheads(result, 'sdk', perCpu), pct),
      row('A/A control: a second untraced server (noise floor)', aa, pct),
    ],
  )
}

export const graphqlTracingBench: BenchDefinition = {
  name: 'graphql-tracing',
  description: 'GraphQL tracer overhead on mercurius vs @opentelemetry/instrumentation-graphql',
  async run(ctx) {
    const section = await compareServers<Round, TracingVariant>(ctx, {
      tag: 'graphql-tracing',
      title: 'Tracing overhead on a 50-field query',
      intro:
        'The same mercurius app answers `{ item { f1 … f50 } }` (one resolver of ours, 50 default resolvers) in every variant. Traced variants run the SDK as an application would: AsyncLocalStorage context manager, global `BasicTracerProvider`, `BatchSpanProcessor`, and an exporter that accepts and drops every batch. Ratios are requests/s of the variant divided by requests/s of the baseline measured in the same round: above 1.00× the variant was faster.',
      kind: KIND,
      variants: {
        untraced: 'untraced',
        'untraced-aa': 'untraced',
        sdk: 'sdk',
        ours: 'ours',
        'ours-resolvers': 'ours-resolvers',
        otel: 'otel',
      },
      describe: { 'untraced-aa': 'a second untraced server (A/A control)' },
      comparisons: [
        { label: 'ours, default / untraced', variant: 'ours', baseline: 'untraced', goal: 0.9 },
        {
          label: 'ours, resolver spans / untraced',
          variant: 'ours-resolvers',
          baseline: 'untraced',
        },
        { label: 'instrumentation-graphql / untraced', variant: 'otel', baseline: 'untraced' },
        {
          label: 'ours, resolver spans / instrumentation-graphql',
          variant: 'ours-resolvers',
          baseline: 'otel',
        },
        {
          label: 'SDK alone / untraced (the price of tracing at all)',
          variant: 'sdk',
          baseline: 'untraced',
        },
        {
          label: 'A/A control: untraced / untraced (noise floor)',
          variant: 'untraced-aa',
          baseline: 'untraced',
        },
      ],
      derived,
      // 6 variants: the Williams design balances over 6 rounds.
      defaultRounds: 12,
    })
    return [
      '# GraphQL tracer benchmark',
      '',
      'Generated by `npm run bench -- graphql-tracing` (bench/graphql/tracing.ts); see bench/README.md for how to read it.',
      '',
      machineBlock(ctx.machine, ctx.pinning),
      '',
      section,
      '',
      `Spans per request are counted by each server (a span processor that counts \`onEnd\`) over ${PROBES} requests before it is measured; the same requests check that every answer carries \`f50\` and no error.`,
      '',
    ].join('\n')
  },
}
