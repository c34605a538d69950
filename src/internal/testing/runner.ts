/**
 * The test-framework surface the published contract suites use, kept small
 * enough that vitest, jest and node:test (with a few-line `expect` adapter)
 * all provide it: `describe`, `it`, and an `expect` with five matchers.
 */

/** The matchers the contract suites call; vitest's and jest's `expect` fit as they are. */
export interface ContractMatchers {
  /** `Object.is` equality. */
  toBe(expected: unknown): void
  /** Deep equality (plain objects, arrays, Buffers). */
  toEqual(expected: unknown): void
  toBeGreaterThan(expected: number): void
  toBeGreaterThanOrEqual(expected: number): void
  toBeLessThanOrEqual(expected: number): void
}

/**
 * `{ describe, it, expect }` of the test framework running a contract suite.
 * `afterAll`, when given, closes what the suite opened; without it (node:test
 * names it `after`) the suite closes in a last test of its own.
 */
export interface ContractRunner {
  describe(name: string, body: () => void): unknown
  it(name: string, body: () => Promise<void>): unknown
  expect(actual: unknown): ContractMatchers
  afterAll?(body: () => Promise<void>): unknown
}
