/**
 * One round of in-process calls interleaved at the finest grain, shared by
 * the guards' sections of `npm run bench -- graphql`. Each cycle calls every
 * contender once, in the next Williams order, timing each call; after
 * `timeMs` each contender's figure is the median of its calls. This machine
 * has slow phases lasting seconds that slow everything 2× (the A/A spread of
 * whole-window rounds was 0.5×–1.6×): contenders measured in separate
 * windows see different phases, calls a few milliseconds apart see the same.
 */
import { DRIVER_CORE } from '../lib/pin.js'
import { coreTimes } from '../lib/proc.js'
import { type Measurement, williamsOrders } from '../lib/rounds.js'
import { median, quantile } from '../lib/stats.js'

export function interleavedRound<V extends string>(
  variants: readonly V[],
  calls: Record<V, () => unknown>,
  timeMs: number,
  pinned: boolean,
): Record<V, Measurement> {
  const orders = williamsOrders(variants)
  const times = Object.fromEntries(variants.map((v) => [v, [] as number[]])) as Record<V, number[]>
  const core0 = pinned ? coreTimes(DRIVER_CORE) : undefined
  const t0 = performance.now()
  const deadline = t0 + timeMs
  for (let cycle = 0; performance.now() < deadline; cycle++) {
    for (const v of orders[cycle % orders.length]!) {
      const start = performance.now()
      calls[v]()
      times[v].push(performance.now() - start)
    }
  }
  const wall = (performance.now() - t0) / 1000
  const core1 = pinned ? coreTimes(DRIVER_CORE) : undefined
  const steal = core0 && core1 ? (core1.steal - core0.steal) / wall : undefined
  const out = {} as Record<V, Measurement>
  for (const v of variants) {
    const us = times[v].map((ms) => ms * 1000)
    out[v] = {
      value: median(us),
      extra: {
        p99Us: quantile(us, 0.99),
        samples: us.length,
        ...(steal === undefined ? {} : { steal }),
      },
    }
  }
  return out
}
