import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseDuration } from '../../src/internal/duration.js'

const UNITS: Array<[string, number]> = [
  ['ms', 1],
  ['s', 1000],
  ['seconds', 1000],
  ['m', 60_000],
  ['minute', 60_000],
  ['h', 3_600_000],
  ['hours', 3_600_000],
  ['d', 86_400_000],
  ['w', 604_800_000],
]

describe('parseDuration', () => {
  it('round-trips an integer count of any unit, with or without a space, any case', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.constantFrom(...UNITS),
        fc.boolean(),
        fc.boolean(),
        (n, [unit, ms], space, upper) => {
          const text = `${n}${space ? ' ' : ''}${upper ? unit.toUpperCase() : unit}`
          expect(parseDuration(text)).toBe(n * ms)
        },
      ),
    )
  })

  it('is exact for decimal fractions that make whole milliseconds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000_000 }), (ms) => {
        expect(parseDuration(`${ms / 1000}s`)).toBe(ms)
      }),
    )
  })

  it('never throws and yields a safe non-negative integer or undefined for any string', () => {
    fc.assert(
      fc.property(fc.string(), (text) => {
        const v = parseDuration(text)
        if (v !== undefined) expect(Number.isSafeInteger(v) && v >= 0).toBe(true)
      }),
    )
  })

  it.each(['', '1 fortnight', 'one minute', '0.5ms', '-1s', '1e3', '1  s', '1s 2m'])(
    'rejects %j',
    (text) => {
      expect(parseDuration(text)).toBeUndefined()
    },
  )
})
