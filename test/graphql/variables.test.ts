import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { textNestingOver, valueNestingOver } from '../../src/graphql/variables.js'

/** Nesting of a JSON value: 0 for a scalar, 1 + the deepest child for an object or array. */
function nesting(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0
  const children = Array.isArray(value) ? value : Object.values(value)
  return 1 + Math.max(0, ...children.map(nesting))
}

describe('variable nesting', () => {
  it('the text scan and the value walk agree with the nesting of any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 0, max: 10 }), (value, max) => {
        const over = nesting(value) > max
        expect(valueNestingOver(value, max)).toBe(over)
        expect(textNestingOver(JSON.stringify(value), max)).toBe(over)
      }),
      { numRuns: 500 },
    )
  })

  it('brackets inside strings, escaped quotes included, do not count', () => {
    expect(textNestingOver('{"a":"[[[[{{{{\\"[[[["}', 1)).toBe(false)
    expect(textNestingOver('{"a":"\\\\"}', 1)).toBe(false)
    expect(textNestingOver('{"a":"\\\\",[[]]}', 2)).toBe(true)
  })

  it('a text is never counted lower than it nests, however malformed', () => {
    expect(textNestingOver(`${'['.repeat(5)}`, 4)).toBe(true)
    expect(textNestingOver(`]]]${'['.repeat(5)}`, 4)).toBe(true)
  })

  it('stops at the first level past the bound, whatever the depth (no recursion)', () => {
    let deep: unknown = 1
    for (let i = 0; i < 200_000; i++) deep = [deep]
    expect(valueNestingOver(deep, 1000)).toBe(true)
    expect(textNestingOver(`${'['.repeat(200_000)}${']'.repeat(200_000)}`, 1000)).toBe(true)
  })
})
