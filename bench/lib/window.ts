/**
 * One in-process measurement window, for benches whose contenders run in
 * the driver process (`taskset -c 1`): a closed loop with one call in
 * flight, plus what else happened on the driver's core meanwhile (steal,
 * other processes), taken again when that was too much.
 */
import { closedLoop } from './micro.js'
import { DRIVER_CORE } from './pin.js'
import { coreTimes } from './proc.js'
import type { Measurement } from './rounds.js'

/** A measurement is taken again when the hypervisor or another process took this share of the driver's core. */
export const DISTURBED = 0.1
/** Attempts per measurement, the last one kept whatever it saw. */
export const ATTEMPTS = 3

export interface WindowSettings {
  /** Whether this process runs alone on DRIVER_CORE, so that core's counters describe it. */
  readonly pinned: boolean
  /** Disturbed measurements taken again so far (incremented here). */
  retaken: number
}

/**
 * Operations per second of `op` over `timeMs`, with `driverCpu`,
 * `driverCpuUsPerOp` and, when pinned, `steal` and `foreignCpu` as extras.
 */
export async function measureWindow(
  op: (i: number) => Promise<unknown>,
  timeMs: number,
  settings: WindowSettings,
): Promise<Measurement> {
  let m: Measurement | undefined
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const core0 = coreTimes(DRIVER_CORE)
    const t0 = performance.now()
    const loop = await closedLoop(op, { concurrency: 1, timeMs })
    const wall = (performance.now() - t0) / 1000
    const core1 = coreTimes(DRIVER_CORE)
    const extra: Record<string, number> = { ...loop.extra }
    if (settings.pinned && core0 !== undefined && core1 !== undefined) {
      extra.steal = (core1.steal - core0.steal) / wall
      extra.foreignCpu = Math.max(0, (core1.busy - core0.busy) / wall - (extra.driverCpu ?? 0))
    }
    m = { value: loop.value, extra }
    const disturbed = (extra.steal ?? 0) > DISTURBED || (extra.foreignCpu ?? 0) > DISTURBED
    if (!disturbed || attempt === ATTEMPTS) break
    settings.retaken++
  }
  return m!
}
