/**
 * Interleaved HTTP comparison of server variants, shared by every
 * per-process server bench (the HTTP overhead bench and its breakdown, the
 * GraphQL tracer bench): a fresh pinned server per variant per round,
 * warm-up, guarded measurement, ratios and the tables.
 */
import type { BenchContext } from './bench.js'
import {
  measureHttp,
  measureHttpGuarded,
  type RequestSpec,
  type ServerHandle,
  startServer,
} from './http.js'
import { knob } from './options.js'
import { absoluteTable, fmt, ratioTable, table } from './report.js'
import { type Comparison, compare, type RoundsResult, runRounds } from './rounds.js'

/** What the servers of one bench are: their module, how to check one, how to describe it. */
export interface ServerKind<S extends string> {
  /** Absolute path of the server module, run with tsx as `<entry> <variant>`. */
  readonly entry: string
  /** Throws unless the server answers as its variant must (a plugin that failed to register). */
  readonly check: (variant: S, server: ServerHandle) => Promise<void>
  readonly describe: (variant: S) => string
  /** What autocannon sends. @default `GET /` */
  readonly request?: RequestSpec
  /** What the request is, for the settings table. @default `GET /` */
  readonly requestLabel?: string
  /**
   * autocannon's load when BENCH_CONNECTIONS / BENCH_PIPELINING are unset.
   * Enough in flight to keep the server busy, few enough that a slow
   * variant still answers within a measurement.
   * @default 100 connections, pipelining 10 (Fastify's own benchmark settings)
   */
  readonly load?: { readonly connections: number; readonly pipelining: number }
}

export interface ServerComparison<R extends string, S extends string> {
  /** Log prefix, e.g. `http/overhead`. */
  readonly tag: string
  readonly title: string
  readonly intro: string
  readonly kind: ServerKind<S>
  /** Round variant → the server variant it runs (two round variants may run the same server: A/A). */
  readonly variants: Readonly<Record<R, S>>
  /** Descriptions for round variants that are not plain server variants. */
  readonly describe?: Partial<Record<R, string>>
  readonly comparisons: readonly Comparison<R>[]
  readonly defaultRounds: number
  /** More markdown from the same rounds (a figure derived from several variants), after the ratios. */
  readonly derived?: (result: RoundsResult<R>) => string[]
}

export async function compareServers<R extends string, S extends string>(
  ctx: BenchContext,
  spec: ServerComparison<R, S>,
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
  const connections = Number(process.env.BENCH_CONNECTIONS ?? spec.kind.load?.connections ?? 100)
  const pipelining = Number(process.env.BENCH_PIPELINING ?? spec.kind.load?.pipelining ?? 10)
  const request = spec.kind.request
  const load =
    request === undefined ? { connections, pipelining } : { connections, pipelining, request }
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
        entry: spec.kind.entry,
        args: [variant],
        cpuProfileDir: ctx.cpuProfileDir,
      })
      try {
        await spec.kind.check(variant, server)
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
    ...(spec.derived?.(result) ?? []),
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
      (v) => `\`${v}\`: ${spec.describe?.[v] ?? spec.kind.describe(spec.variants[v])}`,
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
        ['Request', spec.kind.requestLabel ?? '`GET /`'],
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
