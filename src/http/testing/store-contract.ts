/**
 * The contract every rate-limit store passes: memory, Redis and PostgreSQL
 * run this same suite, and so can a store of yours, under vitest, jest or
 * node:test. Every test builds its own harness and closes it.
 */
import type { ContractRunner } from '../../internal/testing/runner.js'
import type { PolicyState } from '../errors.js'
import type { RateLimitPolicy } from '../rate-limit/sliding-window.js'
import type { RateLimitStore } from '../rate-limit/store.js'

/** What {@link describeRateLimitStoreContract} runs against, built fresh for each test. */
export interface RateLimitStoreHarness {
  /** A store that reads time from the caller's `now` (for shared stores: `timeSource: 'caller'`). */
  readonly store: RateLimitStore
  /** A key no other test uses (shared back ends: a unique prefix per run). */
  key(): string
  /** Releases what the factory opened. @default `store.close()` */
  close?(): Promise<void>
}

/** Which parts of the contract apply to a store. */
export interface RateLimitStoreContractOptions {
  /**
   * Whether the refund cases apply. `true`: they do, and a store without
   * `refund` fails them; `false`: they are left out. Unset: they apply to a
   * store that implements `refund` (it backs `skipSuccessfulRequests` /
   * `skipFailedRequests`), so stores written before it pass unchanged.
   * @default undefined
   */
  readonly refund?: boolean
}

const minute: RateLimitPolicy = { name: 'default', max: 10, windowMs: 60_000 }
const second: RateLimitPolicy = { name: 'burst', max: 3, windowMs: 1000 }

/** A window-aligned epoch far from 0, so elapsed time is exactly what the test says. */
const T0 = 1_800_000_000_000 - (1_800_000_000_000 % 60_000)

const allowed = (states: readonly PolicyState[]) => states.every((s) => s.allowed)

/** The fields of a state the contract pins, for a deep-equality check any `expect` has. */
function pick(state: PolicyState | undefined, keys: readonly (keyof PolicyState)[]) {
  const out: Record<string, unknown> = {}
  for (const k of keys) out[k] = state?.[k]
  return out
}

/**
 * Registers the rate-limit store contract with the caller's test framework:
 * exact quotas, all-or-nothing charging across policies, weights, the
 * sliding window's edge, late callers, exact `retryAfterMs`, and refunds
 * (to the window the charge went into, never below zero).
 *
 * @example
 * ```ts
 * import { describe, expect, it } from 'vitest'
 * import { MemoryStore } from 'fraiseql-security/http'
 * import { describeRateLimitStoreContract } from 'fraiseql-security/http/testing'
 *
 * let n = 0
 * describeRateLimitStoreContract(
 *   'MemoryStore',
 *   async () => ({ store: new MemoryStore(), key: () => `k${n++}` }),
 *   { describe, it, expect },
 * )
 * ```
 */
export function describeRateLimitStoreContract(
  name: string,
  factory: () => Promise<RateLimitStoreHarness> | RateLimitStoreHarness,
  runner: ContractRunner,
  options: RateLimitStoreContractOptions = {},
): void {
  const { describe, it, expect } = runner
  /** One test with a harness of its own, closed whatever the outcome. */
  const contractCase = (
    title: string,
    body: (h: RateLimitStoreHarness) => Promise<void>,
    refundCase = false,
  ) =>
    it(title, async () => {
      const h = await factory()
      try {
        const applies =
          !refundCase || options.refund === true || typeof h.store.refund === 'function'
        if (applies) await body(h)
      } finally {
        if (h.close !== undefined) await h.close()
        else await h.store.close?.()
      }
    })
  const test = (title: string, body: (h: RateLimitStoreHarness) => Promise<void>) =>
    contractCase(title, body)
  const consume = (
    h: RateLimitStoreHarness,
    key: string,
    now: number,
    policies: RateLimitPolicy[] = [minute],
    weight = 1,
  ) => h.store.consume(key, { policies, weight, now })

  describe(`RateLimitStore contract: ${name}`, () => {
    test('allows exactly max requests in a window, then refuses', async (h) => {
      const key = h.key()
      const results: boolean[] = []
      for (let i = 0; i < 12; i++) results.push(allowed(await consume(h, key, T0 + 1000 + i)))
      expect(results).toEqual([...Array(10).fill(true), false, false])
    })

    test('reports remaining, limit, window and reset for each policy in order', async (h) => {
      const states = await consume(h, h.key(), T0 + 15_000, [minute, second])
      expect(states.map((s) => s.name)).toEqual(['default', 'burst'])
      const keys = ['limit', 'windowMs', 'remaining', 'resetMs', 'allowed', 'retryAfterMs'] as const
      expect(pick(states[0], keys)).toEqual({
        limit: 10,
        windowMs: 60_000,
        remaining: 9,
        resetMs: 45_000,
        allowed: true,
        retryAfterMs: 0,
      })
      expect(pick(states[1], keys)).toEqual({
        limit: 3,
        windowMs: 1000,
        remaining: 2,
        resetMs: 1000,
        allowed: true,
        retryAfterMs: 0,
      })
    })

    test('charges all policies or none: a refusal by one policy leaves the others untouched', async (h) => {
      const key = h.key()
      for (let i = 0; i < 3; i++)
        expect(allowed(await consume(h, key, T0 + 100, [minute, second]))).toBe(true)
      const refused = await consume(h, key, T0 + 200, [minute, second])
      expect(refused.map((s) => s.allowed)).toEqual([true, false])
      // The minute policy was not charged for the refused request: 3 used, 7 left.
      expect(refused[0]?.remaining).toBe(7)
      const next = await consume(h, key, T0 + 200, [minute])
      expect(next[0]?.remaining).toBe(6)
    })

    test('charges the weight, and refuses a weight that does not fit', async (h) => {
      const key = h.key()
      expect(allowed(await consume(h, key, T0 + 1, [minute], 4))).toBe(true)
      expect(allowed(await consume(h, key, T0 + 2, [minute], 4))).toBe(true)
      const over = await consume(h, key, T0 + 3, [minute], 4)
      expect(pick(over[0], ['allowed', 'remaining'])).toEqual({ allowed: false, remaining: 2 })
      expect(allowed(await consume(h, key, T0 + 4, [minute], 2))).toBe(true)
    })

    test('a weight above the whole quota is always refused, with a bounded retry', async (h) => {
      const states = await consume(h, h.key(), T0 + 10, [minute], 11)
      expect(states[0]?.allowed).toBe(false)
      expect(states[0]?.retryAfterMs ?? Number.NaN).toBeLessThanOrEqual(2 * minute.windowMs)
    })

    test('keeps keys independent', async (h) => {
      const a = h.key()
      const b = h.key()
      for (let i = 0; i < 10; i++) await consume(h, a, T0 + i)
      expect(allowed(await consume(h, a, T0 + 20))).toBe(false)
      expect(allowed(await consume(h, b, T0 + 20))).toBe(true)
    })

    test('slides: the previous window counts in proportion to what is left of it (no 2x burst at the edge)', async (h) => {
      const key = h.key()
      // 10 requests at the very end of window 0.
      for (let i = 0; i < 10; i++) await consume(h, key, T0 + 59_000)
      // Right after the edge the previous window still weighs ~100%: refused (a fixed window would allow 10 more).
      expect(allowed(await consume(h, key, T0 + 60_000))).toBe(false)
      // Halfway through window 1 it weighs 50%: exactly 5 more fit.
      const mid: boolean[] = []
      for (let i = 0; i < 6; i++) mid.push(allowed(await consume(h, key, T0 + 90_000)))
      expect(mid).toEqual([true, true, true, true, true, false])
      // Two windows later nothing is left.
      const later = await consume(h, key, T0 + 180_000)
      expect(pick(later[0], ['allowed', 'remaining'])).toEqual({ allowed: true, remaining: 9 })
    })

    test('a charge that cannot be refunded (refundable: false) is decided and counted exactly like one that can', async (h) => {
      // Stores may take a cheaper path when no refund can follow; the same
      // calls on a key that mixes both kinds must give the same answers.
      const states = (s: readonly PolicyState[]) => s.map(({ window: _w, ...rest }) => rest)
      for (const policies of [[minute], [minute, second]]) {
        const plain = h.key()
        const mixed = h.key()
        const times = [
          59_000, 59_000, 59_100, 59_200, 60_000, 60_500, 61_000, 90_000, 90_000, 59_000, 150_000,
          300_000,
        ]
        for (const [i, t] of times.entries()) {
          const now = T0 + t
          const weight = i === 3 ? 4 : 1
          const expected = await h.store.consume(plain, { policies, weight, now })
          const actual = await h.store.consume(mixed, {
            policies,
            weight,
            now,
            refundable: i % 2 !== 0,
          })
          expect(states(actual)).toEqual(states(expected))
        }
      }
    })

    test('a call whose time lies in an older window than the counter’s never moves it back (counted at the start of the counter’s window)', async (h) => {
      const key = h.key()
      for (let i = 0; i < 10; i++) await consume(h, key, T0 + 61_000)
      // A call stamped in window 0 (its clock read before a call that waited,
      // or an instance whose clock lags) is counted in window 1, not in a
      // fresh window 0 with nothing in it.
      const late = await consume(h, key, T0 + 59_000)
      expect(pick(late[0], ['allowed', 'remaining'])).toEqual({ allowed: false, remaining: 0 })
      expect(late[0]?.retryAfterMs ?? 0).toBeGreaterThan(0)
      expect(allowed(await consume(h, key, T0 + 61_500))).toBe(false)
      const clear = await consume(h, key, T0 + 180_000)
      expect(pick(clear[0], ['allowed', 'remaining'])).toEqual({ allowed: true, remaining: 9 })
    })

    /** The store's refund, or a failed expectation that names what is missing. */
    const refund = (
      h: RateLimitStoreHarness,
      key: string,
      states: readonly PolicyState[],
      policies: RateLimitPolicy[] = [minute],
      weight = 1,
    ) => {
      const windows = states.map((s) => s.window)
      expect(windows.every((w) => typeof w === 'number')).toBe(true)
      expect(typeof h.store.refund).toBe('function')
      return h.store.refund!(key, { policies, weight, windows: windows as number[] })
    }

    if (options.refund !== false) {
      const test = (title: string, body: (h: RateLimitStoreHarness) => Promise<void>) =>
        contractCase(title, body, true)
      test('reports the window each policy counted the request in', async (h) => {
        const states = await consume(h, h.key(), T0 + 61_500, [minute, second])
        expect(states.map((s) => s.window)).toEqual([T0 / 60_000 + 1, (T0 + 61_500 - 500) / 1000])
      })

      test('refund takes a charge back in its window: the units fit again', async (h) => {
        const key = h.key()
        let last: readonly PolicyState[] = []
        for (let i = 0; i < 10; i++) last = await consume(h, key, T0 + 1000 + i)
        expect(allowed(await consume(h, key, T0 + 2000))).toBe(false)
        await refund(h, key, last)
        const again = await consume(h, key, T0 + 2000)
        expect(pick(again[0], ['allowed', 'remaining'])).toEqual({ allowed: true, remaining: 0 })
      })

      test('refund takes back the weight from every policy, all in one call', async (h) => {
        const key = h.key()
        const charged = await consume(h, key, T0 + 100, [minute, second], 3)
        await refund(h, key, charged, [minute, second], 3)
        const next = await consume(h, key, T0 + 200, [minute, second])
        expect(next.map((s) => s.remaining)).toEqual([9, 2])
      })

      test('refund never takes a count below zero', async (h) => {
        const key = h.key()
        const charged = await consume(h, key, T0 + 100)
        await refund(h, key, charged, [minute], 5)
        await refund(h, key, charged, [minute], 5)
        let n = 0
        while (n < 12 && allowed(await consume(h, key, T0 + 200))) n++
        expect(n).toBe(10)
      })

      test('a refund after the window turned comes off the previous window, never the current one', async (h) => {
        const key = h.key()
        const early: Array<readonly PolicyState[]> = []
        for (let i = 0; i < 10; i++) early.push(await consume(h, key, T0 + 59_000))
        // Window 1 begins; 5 of window 0's 10 still weigh in at its middle.
        for (let i = 0; i < 5; i++) await consume(h, key, T0 + 90_000)
        expect(allowed(await consume(h, key, T0 + 90_000))).toBe(false)
        // Two of window 0's charges come back: 8 of 10 weigh 50%, 4 units; room for 1 more.
        await refund(h, key, early[0]!)
        await refund(h, key, early[1]!)
        const states = await consume(h, key, T0 + 90_000)
        expect(pick(states[0], ['allowed', 'remaining'])).toEqual({ allowed: true, remaining: 0 })
        expect(allowed(await consume(h, key, T0 + 90_000))).toBe(false)
      })

      test('a refund of a charge that no longer counts (two windows on) changes nothing', async (h) => {
        const key = h.key()
        const old = await consume(h, key, T0 + 1000)
        for (let i = 0; i < 10; i++) await consume(h, key, T0 + 120_500)
        await refund(h, key, old)
        expect(allowed(await consume(h, key, T0 + 120_600))).toBe(false)
      })

      test('a refund of a key never charged creates nothing and changes no other key', async (h) => {
        const key = h.key()
        const other = h.key()
        const charged = await consume(h, other, T0 + 100)
        await refund(h, key, charged)
        const states = await consume(h, other, T0 + 200)
        expect(states[0]?.remaining).toBe(8)
      })
    }

    test('retryAfterMs is exact: one ms early is refused, on time is allowed', async (h) => {
      const key = h.key()
      for (let i = 0; i < 10; i++) await consume(h, key, T0 + 30_000)
      const refused = await consume(h, key, T0 + 40_000)
      expect(refused[0]?.allowed).toBe(false)
      const wait = refused[0]?.retryAfterMs ?? 0
      expect(wait).toBeGreaterThan(0)
      expect(refused[0]?.resetMs).toBe(wait)
      expect(allowed(await consume(h, key, T0 + 40_000 + wait - 1))).toBe(false)
      expect(allowed(await consume(h, key, T0 + 40_000 + wait))).toBe(true)
    })
  })
}
