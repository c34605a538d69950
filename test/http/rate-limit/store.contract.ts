/**
 * The contract every rate-limit store passes: memory, Redis and PostgreSQL
 * run this same suite, and so can a user's own store.
 */
import { afterAll, beforeEach, describe, expect, it } from 'vitest'
import type { PolicyState, RateLimitPolicy, RateLimitStore } from '../../../src/http/index.js'

export interface StoreHarness {
  /** A store that reads time from the caller's `now` (injected clock). */
  store: RateLimitStore
  /** A key no other test uses. */
  key(): string
  close?(): Promise<void>
}

const minute: RateLimitPolicy = { name: 'default', max: 10, windowMs: 60_000 }
const second: RateLimitPolicy = { name: 'burst', max: 3, windowMs: 1000 }

/** A window-aligned epoch far from 0, so elapsed time is exactly what the test says. */
const T0 = 1_800_000_000_000 - (1_800_000_000_000 % 60_000)

export function describeRateLimitStoreContract(
  name: string,
  factory: () => Promise<StoreHarness>,
): void {
  describe(`RateLimitStore contract: ${name}`, () => {
    let h: StoreHarness
    let created: StoreHarness[] = []
    beforeEach(async () => {
      h = await factory()
      created.push(h)
    })
    afterAll(async () => {
      for (const x of created) await x.close?.()
      created = []
    })

    const consume = (
      key: string,
      now: number,
      policies: RateLimitPolicy[] = [minute],
      weight = 1,
    ) => h.store.consume(key, { policies, weight, now })
    const allowed = (states: readonly PolicyState[]) => states.every((s) => s.allowed)

    it('allows exactly max requests in a window, then refuses', async () => {
      const key = h.key()
      const results: boolean[] = []
      for (let i = 0; i < 12; i++) results.push(allowed(await consume(key, T0 + 1000 + i)))
      expect(results).toEqual([...Array(10).fill(true), false, false])
    })

    it('reports remaining, limit, window and reset for each policy in order', async () => {
      const key = h.key()
      const states = await consume(key, T0 + 15_000, [minute, second])
      expect(states.map((s) => s.name)).toEqual(['default', 'burst'])
      expect(states[0]).toMatchObject({
        limit: 10,
        windowMs: 60_000,
        remaining: 9,
        resetMs: 45_000,
        allowed: true,
        retryAfterMs: 0,
      })
      expect(states[1]).toMatchObject({
        limit: 3,
        windowMs: 1000,
        remaining: 2,
        resetMs: 1000,
        allowed: true,
      })
    })

    it('charges all policies or none: a refusal by one policy leaves the others untouched', async () => {
      const key = h.key()
      for (let i = 0; i < 3; i++)
        expect(allowed(await consume(key, T0 + 100, [minute, second]))).toBe(true)
      const refused = await consume(key, T0 + 200, [minute, second])
      expect(refused.map((s) => s.allowed)).toEqual([true, false])
      // The minute policy was not charged for the refused request: 3 used, 7 left.
      expect(refused[0]!.remaining).toBe(7)
      const next = await consume(key, T0 + 200, [minute])
      expect(next[0]!.remaining).toBe(6)
    })

    it('charges the weight, and refuses a weight that does not fit', async () => {
      const key = h.key()
      expect(allowed(await consume(key, T0 + 1, [minute], 4))).toBe(true)
      expect(allowed(await consume(key, T0 + 2, [minute], 4))).toBe(true)
      const over = await consume(key, T0 + 3, [minute], 4)
      expect(over[0]).toMatchObject({ allowed: false, remaining: 2 })
      expect(allowed(await consume(key, T0 + 4, [minute], 2))).toBe(true)
    })

    it('a weight above the whole quota is always refused, with a bounded retry', async () => {
      const key = h.key()
      const states = await consume(key, T0 + 10, [minute], 11)
      expect(states[0]!.allowed).toBe(false)
      expect(states[0]!.retryAfterMs).toBeLessThanOrEqual(2 * minute.windowMs)
    })

    it('keeps keys independent', async () => {
      const a = h.key()
      const b = h.key()
      for (let i = 0; i < 10; i++) await consume(a, T0 + i)
      expect(allowed(await consume(a, T0 + 20))).toBe(false)
      expect(allowed(await consume(b, T0 + 20))).toBe(true)
    })

    it('slides: the previous window counts in proportion to what is left of it (no 2x burst at the edge)', async () => {
      const key = h.key()
      // 10 requests at the very end of window 0.
      for (let i = 0; i < 10; i++) await consume(key, T0 + 59_000)
      // Right after the edge the previous window still weighs ~100%: refused (a fixed window would allow 10 more).
      expect(allowed(await consume(key, T0 + 60_000))).toBe(false)
      // Halfway through window 1 it weighs 50%: exactly 5 more fit.
      const mid: boolean[] = []
      for (let i = 0; i < 6; i++) mid.push(allowed(await consume(key, T0 + 90_000)))
      expect(mid).toEqual([true, true, true, true, true, false])
      // Two windows later nothing is left.
      const later = await consume(key, T0 + 180_000)
      expect(later[0]).toMatchObject({ allowed: true, remaining: 9 })
    })

    it('a call whose time lies in an older window than the counter’s never moves it back (counted at the start of the counter’s window)', async () => {
      const key = h.key()
      // Window 1 fills up.
      for (let i = 0; i < 10; i++) await consume(key, T0 + 61_000)
      // A call stamped in window 0 (its clock read before a call that waited,
      // or an instance whose clock lags) is counted in window 1, not in a
      // fresh window 0 with nothing in it.
      const late = await consume(key, T0 + 59_000)
      expect(late[0]).toMatchObject({ allowed: false, remaining: 0 })
      expect(late[0]!.retryAfterMs).toBeGreaterThan(0)
      // And window 1 still holds its 10.
      expect(allowed(await consume(key, T0 + 61_500))).toBe(false)
      // Time moving on from there behaves as usual: window 3 is clear.
      expect((await consume(key, T0 + 180_000))[0]).toMatchObject({ allowed: true, remaining: 9 })
    })

    it('retryAfterMs is exact: one ms early is refused, on time is allowed', async () => {
      const key = h.key()
      for (let i = 0; i < 10; i++) await consume(key, T0 + 30_000)
      const refused = await consume(key, T0 + 40_000)
      expect(refused[0]!.allowed).toBe(false)
      const wait = refused[0]!.retryAfterMs
      expect(wait).toBeGreaterThan(0)
      expect(refused[0]!.resetMs).toBe(wait)
      expect(allowed(await consume(key, T0 + 40_000 + wait - 1))).toBe(false)
      expect(allowed(await consume(key, T0 + 40_000 + wait))).toBe(true)
    })
  })
}
