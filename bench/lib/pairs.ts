/**
 * Paired HTTP comparison: a variant and its baseline run at the same time,
 * both pinned to SERVER_CORE, each loaded by its own autocannon from the
 * driver. The scheduler gives two busy processes on one core equal time, so
 * the ratio of their throughputs is the inverse ratio of their CPU cost per
 * request, and whatever else takes the core (a neighbour's build, the
 * hypervisor) takes it from both alike. On this shared machine that made an
 * A/A pair read 0.99–1.01× where sequential windows read 0.6–1.6×.
 *
 * Each pair gets fresh processes (the per-process lottery, see
 * compare-servers.ts), a concurrent warm-up, then one concurrent
 * measurement; rounds cycle the variants in Williams order.
 */
import type { BenchContext } from './bench.js'
import type { ServerKind } from './compare-servers.js'
import { load, type ServerHandle, startServer } from './http.js'
import { knob } from './options.js'
import { SERVER_CORE } from './pin.js'
import { coreTimes } from './proc.js'
import { fmt } from './report.js'
import { roundOrder } from './rounds.js'

export interface PairMeasurement {
  /** Requests/s of the variant ÷ requests/s of the baseline, measured at once. */
  readonly ratio: number
  readonly variantRps: number
  readonly baselineRps: number
  /** Share of the server core both servers used together (near 1: the core was theirs). */
  readonly pairCpu: number
  /** Share of the server core anything else used during the measurement. */
  readonly foreignCpu: number
}

export interface PairsSpec<S extends string> {
  /** Log prefix. */
  readonly tag: string
  readonly kind: ServerKind<S>
  readonly baseline: S
  /** Variants paired with the baseline each round (the baseline itself makes an A/A pair). */
  readonly variants: readonly S[]
  readonly defaultRounds: number
}

export interface PairsResult<S extends string> {
  readonly rounds: number
  readonly durationS: number
  readonly warmupS: number
  readonly connections: number
  /** `pairs[variant][round]`. */
  readonly pairs: Readonly<Record<S, readonly PairMeasurement[]>>
}

async function both<T>(a: () => Promise<T>, b: () => Promise<T>): Promise<[T, T]> {
  return Promise.all([a(), b()])
}

export async function comparePairs<S extends string>(
  ctx: BenchContext,
  spec: PairsSpec<S>,
): Promise<PairsResult<S>> {
  const rounds = knob(ctx.knobs.rounds, spec.defaultRounds)
  const durationS = knob(ctx.knobs.durationS, 3)
  const warmupS = knob(ctx.knobs.warmupS, 2)
  const connections = Number(process.env.BENCH_CONNECTIONS ?? spec.kind.load?.connections ?? 10)
  const request = spec.kind.request
  const pairs = Object.fromEntries(
    spec.variants.map((v) => [v, [] as PairMeasurement[]]),
  ) as Record<S, PairMeasurement[]>
  const start = (variant: S, name: string) =>
    startServer({ name, entry: spec.kind.entry, args: [variant], cpuProfileDir: ctx.cpuProfileDir })
  const loadOf = (server: ServerHandle, durationS: number) =>
    load({
      url: server.url,
      connections,
      pipelining: 1,
      durationS,
      ...(request === undefined ? {} : { request }),
    })

  for (let round = 0; round < rounds; round++) {
    for (const variant of roundOrder(spec.variants, round)) {
      const [base, other] = await both(
        () => start(spec.baseline, `${spec.baseline}-${variant}-${round + 1}`),
        () => start(variant, `${variant}-${round + 1}`),
      )
      try {
        await spec.kind.check(spec.baseline, base)
        await spec.kind.check(variant, other)
        await both(
          () => loadOf(base, warmupS),
          () => loadOf(other, warmupS),
        )
        const cpu0 = base.cpuSeconds() + other.cpuSeconds()
        const core0 = coreTimes(SERVER_CORE)
        const t0 = performance.now()
        const [b, v] = await both(
          () => loadOf(base, durationS),
          () => loadOf(other, durationS),
        )
        const wall = (performance.now() - t0) / 1000
        const pairCpu = (base.cpuSeconds() + other.cpuSeconds() - cpu0) / wall
        const core1 = coreTimes(SERVER_CORE)
        const foreignCpu =
          core0 === undefined || core1 === undefined
            ? Number.NaN
            : Math.max(0, (core1.busy - core0.busy) / wall - pairCpu)
        const m: PairMeasurement = {
          ratio: v.rps / b.rps,
          variantRps: v.rps,
          baselineRps: b.rps,
          pairCpu,
          foreignCpu,
        }
        pairs[variant].push(m)
        ctx.log(
          `${spec.tag}: round ${round + 1}/${rounds} ${variant.padEnd(16)} ${fmt.ratio(m.ratio)} (${fmt.int(v.rps)} vs ${fmt.int(b.rps)} req/s; pair CPU ${fmt.percent(pairCpu)}, rest of core ${fmt.percent(foreignCpu)})`,
        )
      } finally {
        await Promise.all([base.close(), other.close()])
      }
    }
  }
  return { rounds, durationS, warmupS, connections, pairs }
}
