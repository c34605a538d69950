import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../../../src/http/index.js'
import { describeRateLimitStoreContract } from '../../../src/http/testing/index.js'

let n = 0
describeRateLimitStoreContract(
  'MemoryStore',
  async () => ({
    store: new MemoryStore(),
    key: () => `k${n++}`,
  }),
  { describe, it, expect },
  { refund: true },
)

// A store written before refund existed (consume only) still passes the
// contract as it stands: the refund cases apply to stores that have refund.
describeRateLimitStoreContract(
  'consume-only store (no refund)',
  async () => {
    const memory = new MemoryStore()
    return {
      store: { consume: (key, request) => memory.consume(key, request) },
      key: () => `k${n++}`,
    }
  },
  { describe, it, expect },
)

describe('MemoryStore', () => {
  const policy = { name: 'default', max: 5, windowMs: 1000 }

  it('stays bounded past maxKeys, however many keys arrive', () => {
    const store = new MemoryStore({ maxKeys: 100 })
    for (let i = 0; i < 10_000; i++)
      store.consumeSync(`client-${i}`, { policies: [policy], weight: 1, now: i })
    expect(store.size).toBe(100)
  })

  it('when full, evicts the least recently used counter whose windows have passed', () => {
    const store = new MemoryStore({ maxKeys: 2 })
    const hit = (key: string, now: number) =>
      store.consumeSync(key, { policies: [policy], weight: 1, now })
    hit('a', 10)
    hit('b', 20)
    hit('a', 2_500) // a is now the most recent and live; b's windows (0 and 1) have passed at 2,500
    hit('c', 2_600) // takes b's place
    expect(store.has('b')).toBe(false)
    expect(store.has('c')).toBe(true)
    expect(hit('a', 2_700)[0]!.remaining).toBe(3)
  })

  it('when full of live counters, new keys share one overflow counter per policy set and evict nobody', () => {
    const store = new MemoryStore({ maxKeys: 2 })
    const other = { name: 'default', max: 2, windowMs: 1000 }
    const hit = (key: string, p = policy) =>
      store.consumeSync(key, { policies: [p], weight: 1, now: 10 })
    hit('a')
    hit('b')
    expect(hit('c')[0]!.remaining).toBe(4)
    expect(hit('d')[0]!.remaining).toBe(3) // c and d share one counter
    expect(hit('e', other)[0]!.remaining).toBe(1) // another policy set, its own overflow counter
    expect([store.has('a'), store.has('b'), store.has('c')]).toEqual([true, true, false])
    expect(hit('a')[0]!.remaining).toBe(3)
  })

  it('property: whatever the keys minted, a client over its limit stays refused until its window frees it', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.string({ maxLength: 6 }), { maxLength: 300 }),
        (maxKeys, flood) => {
          const store = new MemoryStore({ maxKeys })
          const victim = { policies: [policy], weight: 1, now: 100 }
          for (let i = 0; i < policy.max; i++) store.consumeSync('victim', victim)
          for (const k of flood)
            if (k !== 'victim') store.consumeSync(`f:${k}`, { ...victim, now: 200 })
          return store.consumeSync('victim', { ...victim, now: 300 })[0]!.allowed === false
        },
      ),
    )
  })

  it('creates no timers (nothing keeps the process alive)', () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
    const store = new MemoryStore()
    store.consumeSync('x', { policies: [policy], weight: 1, now: 0 })
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBe(before)
  })

  it('rejects bad options with ERR_CONFIG_INVALID naming the field', () => {
    expect(() => new MemoryStore({ maxKeys: 0 })).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG_INVALID',
        message: expect.stringContaining('maxKeys'),
      }),
    )
  })

  it('property: never allows more than max units in any window-length interval', () => {
    // Sliding-window counting can under-admit but never over-admit relative to
    // the two-window estimate; check the strict bound over any aligned window.
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 5_000 }), { minLength: 1, maxLength: 200 }),
        (max, gaps) => {
          const store = new MemoryStore()
          const p = { name: 'default', max, windowMs: 1000 }
          let now = 1_000_000
          const admitted: number[] = []
          for (const gap of gaps) {
            now += gap % 97
            if (store.consumeSync('k', { policies: [p], weight: 1, now })[0]!.allowed)
              admitted.push(now)
          }
          for (let i = 0; i < admitted.length; i++) {
            const start = Math.floor(admitted[i]! / 1000) * 1000
            const inWindow = admitted.filter((t) => t >= start && t < start + 1000).length
            if (inWindow > max) return false
          }
          return true
        },
      ),
      { numRuns: 200 },
    )
  })

  it('property: after a refusal, waiting exactly retryAfterMs admits the same weight', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 100, max: 120_000 }),
        fc.array(fc.nat({ max: 3000 }), { maxLength: 120 }),
        fc.integer({ min: 1, max: 5 }),
        (max, windowMs, gaps, weight) => {
          fc.pre(weight <= max)
          const store = new MemoryStore()
          const p = { name: 'default', max, windowMs }
          let now = 5_000_000
          for (const gap of gaps) {
            now += gap
            store.consumeSync('k', { policies: [p], weight: 1, now })
          }
          // Drive it to a refusal.
          let state = store.consumeSync('k', { policies: [p], weight, now })[0]!
          let guard = 0
          while (state.allowed && guard++ < 200)
            state = store.consumeSync('k', { policies: [p], weight, now })[0]!
          if (state.allowed) return true
          // The refused request was not charged, so the same store must admit
          // at now + retryAfterMs and refuse one ms earlier.
          if (state.retryAfterMs > 1) {
            const early = store.consumeSync('k', {
              policies: [p],
              weight,
              now: now + state.retryAfterMs - 1,
            })[0]!
            if (early.allowed) return false
          }
          return store.consumeSync('k', {
            policies: [p],
            weight,
            now: now + state.retryAfterMs,
          })[0]!.allowed
        },
      ),
      { numRuns: 300 },
    )
  })
})
