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
)

describe('MemoryStore', () => {
  const policy = { name: 'default', max: 5, windowMs: 1000 }

  it('stays bounded: the least recently used counter is evicted past maxKeys', () => {
    const store = new MemoryStore({ maxKeys: 100 })
    for (let i = 0; i < 10_000; i++)
      store.consumeSync(`client-${i}`, { policies: [policy], weight: 1, now: 0 })
    expect(store.size).toBe(100)
  })

  it('keeps a recently used key when evicting', () => {
    const store = new MemoryStore({ maxKeys: 2 })
    const hit = (key: string) => store.consumeSync(key, { policies: [policy], weight: 1, now: 10 })
    hit('a')
    hit('b')
    hit('a') // a is now the most recent
    hit('c') // evicts b
    expect(hit('a')[0]!.remaining).toBe(2)
    expect(hit('b')[0]!.remaining).toBe(4)
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
