/**
 * Interleaved HTTP comparison of server variants, shared by the overhead
 * bench and the overhead breakdown: fresh pinned server per variant per round,
 * warm-up, guarded measurement, ratios and the tables.
 */
import { fileURLToPath } from 'node:url'
import type { BenchContext } from '../lib/bench.js'
import {
  measureHttp,
  measureHttpGuarded,
  probe,
  type ServerHandle,
  startServer,
} from '../lib/http.js'
import { knob } from '../lib/options.js'
import { absoluteTable, fmt, ratioTable, table } from '../lib/report.js'
import { type Comparison, compare, runRounds } from '../lib/rounds.js'
import { VARIANTS, type Variant } from './variants.js'

const SERVER = fileURLToPath(new URL('./server.ts', import.meta.url))

/** A header each variant must send, so a plugin that silently failed to register is caught. */
const EXPECTED_HEADER: Record<Variant, string | undefined> = {
  bare: undefined,
  ours: 'ratelimit-policy',
  'ours-rate-limit': 'ratelimit-policy',
  'fastify-rate-limit': 'x-ratelimit-limit',
  'ours-redis': 'ratelimit-policy',
  'ours-postgres': 'ratelimit-policy',
  'onrequest-headers': 'ratelimit-policy',
  'like-ours': 'ratelimit-policy',
}

async function checkVariant(variant: Variant, server: ServerHandle): Promise<void> {
  const { status, headers } = await probe(server.url)
  if (status !== 200) throw new Error(`${variant}: GET / answered ${status}`)
  const expected = EXPECTED_HEADER[variant]
  if (expected !== undefined && !headers.has(expected))
    throw new Error(`${variant}: no ${expected} header, is the plugin registered?`)
  if (expected === undefined && (headers.has('ratelimit') || headers.has('x-ratelimit-limit')))
    throw new Error(`${variant}: rate-limit headers on the bare server`)
}

export interface ServerComparison<R extends string> {
  /** Log prefix, e.g. `http/overhead`. */
  readonly tag: string
  readonly title: string
  readonly intro: string
  /** Round variant → the server variant it runs (two round variants may run the same server: A/A). */
  readonly variants: Readonly<Record<R, Variant>>
  /** Descriptions for round variants that are not plain server variants. */
  readonly describe?: Partial<Record<R, string>>
  readonly comparisons: readonly Comparison<R>[]
  readonly defaultRounds: number
}

export async function compareServers<R extends string>(
  ctx: BenchContext,
  spec: ServerComparison<R>,
): Promise<string> {
  const { knobs } = ctx
  const rounds = knob(knobs.rounds, spec.defaultRounds)
  const durationS = knob(knobs.durationS, 3)
  // Until the JIT has compiled the hot path, the first seconds measure V8.
  const warmupS = knob(knobs.warmupS, 2)
  // Fastify's own benchmark settings (autocannon -c 100 -p 10). They keep the
  // server at ~100% of its core with autocannon at ~80% of the other; without
  // pipelining autocannon needs about as much CPU per request as bare Fastify
  // and would cap the bare server first, flattering every plugin.
  const connections = Number(process.env.BENCH_CONNECTIONS ?? 100)
  const pipelining = Number(process.env.BENCH_PIPELINING ?? 10)
  const load = { connections, pipelining }
  // A measurement whose server got under 90% of its core did not measure the
  // server (a neighbour or the hypervisor had the core, or autocannon ran
  // short): take it again, up to three times, and count how often.
  const minServerCpu = 0.9
  const attempts = 3
  let rejected = 0
  const names = Object.keys(spec.variants) as R[]

  // A fresh server process for every measurement. Identical servers started
  // one after the other differ by up to ~20% for the whole of their life on
  // this machine (a per-process lottery: layout, JIT decisions), so a variant
  // measured always in the same process would carry its process's luck into
  // every round. A new process each round samples that luck instead; the
  // median over rounds averages it out and the A/A control shows what is left.
  const result = await runRounds({
    variants: names,
    rounds,
    measure: async (v, round) => {
      const variant = spec.variants[v]
      const server = await startServer({
        name: `${v}-${round + 1}`,
        entry: SERVER,
        args: [variant],
        cpuProfileDir: ctx.cpuProfileDir,
      })
      try {
        await checkVariant(variant, server)
        await measureHttp(server, { ...load, durationS: warmupS })
        return await measureHttpGuarded(server, {
          ...load,
          durationS,
          minServerCpu,
          attempts,
          onRejected: (m) => {
            rejected++
            ctx.log(
              `${spec.tag}: round ${round + 1} ${v}: server CPU ${fmt.percent(m.extra?.serverCpu ?? 0)} (rest of its core ${fmt.percent(m.extra?.foreignCpu ?? 0)}, steal ${fmt.percent(m.extra?.steal ?? 0)}), measuring again`,
            )
          },
        })
      } finally {
        await server.close()
      }
    },
    onMeasured: (v, round, m) =>
      ctx.log(
        `${spec.tag}: round ${round + 1}/${rounds} ${v.padEnd(18)} ${fmt.int(m.value)} req/s (server CPU ${fmt.percent(m.extra?.serverCpu ?? Number.NaN)}, autocannon CPU ${fmt.percent(m.extra?.loaderCpu ?? Number.NaN)}, rest of server core ${fmt.percent(m.extra?.foreignCpu ?? Number.NaN)}, steal ${fmt.percent(m.extra?.steal ?? Number.NaN)})`,
      ),
  })
  const comparisons = spec.comparisons.map((c) => compare(result, c, 'higher-is-better'))

  return [
    `## ${spec.title}`,
    '',
    spec.intro,
    '',
    ratioTable(comparisons),
    '',
    absoluteTable(
      result,
      { label: 'req/s', format: fmt.int },
      {
        latencyP50Ms: { label: 'p50 latency', format: (x) => `${x.toFixed(1)} ms` },
        latencyP99Ms: { label: 'p99 latency', format: (x) => `${x.toFixed(1)} ms` },
        serverCpu: { label: 'server CPU', format: fmt.percent },
        loaderCpu: { label: 'autocannon CPU', format: fmt.percent },
        foreignCpu: { label: 'rest of server core', format: fmt.percent },
        steal: { label: 'steal', format: fmt.percent },
      },
      (v) => `\`${v}\`: ${spec.describe?.[v] ?? VARIANTS[spec.variants[v]]}`,
    ),
    '',
    table(
      ['Setting', 'Value'],
      [
        ['Rounds', `${rounds} (order per round from a Williams design, see bench/lib/rounds.ts)`],
        ['Load per measurement', `${durationS} s`],
        [
          'Server processes',
          `a fresh one per variant per round, warmed with ${warmupS} s of the same load`,
        ],
        ['autocannon', `${connections} connections, pipelining ${pipelining}`],
        ['Server pinning', '`taskset -c 0`, Fastify logger off'],
        ['Load generator', 'autocannon in the driver process, `taskset -c 1`'],
        [
          'Disturbed measurements taken again',
          `${rejected} (server CPU under ${fmt.percent(minServerCpu)}; at most ${attempts} attempts each)`,
        ],
      ],
    ),
    '',
    "Server CPU is the server process's CPU time over wall time during the measured run: near 100% means the server was the bottleneck, as intended. \"Rest of server core\" is the core's busy time minus the server's: the kernel's loopback work for this traffic plus anything else that ran there. Steal is time the hypervisor gave this virtual CPU to someone else.",
  ].join('\n')
}
