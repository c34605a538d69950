/**
 * An `expect` for node:test (which has none), built on node:assert: the
 * five matchers the contract suites use, nothing more.
 */
import assert from 'node:assert/strict'
import type { ContractMatchers } from './runner.js'

/** `expect` for running a contract suite under node:test: `{ describe, it, expect: nodeTestExpect }`. */
export function nodeTestExpect(actual: unknown): ContractMatchers {
  const number = (what: string): number => {
    assert.equal(typeof actual, 'number', `${what}: expected a number`)
    return actual as number
  }
  return {
    toBe: (expected) => assert.equal(actual, expected),
    toEqual: (expected) => assert.deepEqual(actual, expected),
    toBeGreaterThan: (n) => assert.ok(number('toBeGreaterThan') > n, `${actual} > ${n}`),
    toBeGreaterThanOrEqual: (n) =>
      assert.ok(number('toBeGreaterThanOrEqual') >= n, `${actual} >= ${n}`),
    toBeLessThanOrEqual: (n) => assert.ok(number('toBeLessThanOrEqual') <= n, `${actual} <= ${n}`),
  }
}
