import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { fits, retryAfterMs, toPolicyState } from '../../../src/http/rate-limit/sliding-window.js'

describe('sliding-window arithmetic', () => {
  it('weights the previous window by the share of the current one still ahead', () => {
    // 10 last window, 30 % into this one: 7 still count.
    expect(fits(10, 1000, 10, 2, 300, 1)).toBe(true) // 7 + 2 + 1 = 10
    expect(fits(10, 1000, 10, 3, 300, 1)).toBe(false) // 7 + 3 + 1 = 11
  })

  it('reports remaining as whole units, never negative', () => {
    const p = { name: 'default', max: 10, windowMs: 1000 }
    expect(toPolicyState(p, { previous: 10, current: 2, elapsedMs: 350 }, true, 1).remaining).toBe(
      1,
    )
    expect(toPolicyState(p, { previous: 40, current: 9, elapsedMs: 0 }, false, 1).remaining).toBe(0)
  })

  it('property: retryAfterMs is the exact first moment the request fits again', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.integer({ min: 1, max: 600_000 }),
        fc.nat({ max: 2000 }),
        fc.nat({ max: 2000 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 1, max: 50 }),
        (max, W, prevRaw, curRaw, frac, weight) => {
          fc.pre(weight <= max)
          const previous = prevRaw % (max + 1)
          const current = curRaw % (max + 1)
          const e = Math.min(W - 1, Math.floor(frac * W))
          fc.pre(!fits(max, W, previous, current, e, weight))
          const t = retryAfterMs(
            { name: 'x', max, windowMs: W },
            { previous, current, elapsedMs: e },
            weight,
          )
          // Where is now + t, and what do the counters look like there?
          const at = (dt: number) => {
            const abs = e + dt
            if (abs < W) return fits(max, W, previous, current, abs, weight)
            if (abs < 2 * W) return fits(max, W, current, 0, abs - W, weight)
            return fits(max, W, 0, 0, abs - 2 * W, weight)
          }
          expect(at(t)).toBe(true)
          if (t > 0) expect(at(t - 1)).toBe(false)
        },
      ),
      { numRuns: 2000 },
    )
  })
})
