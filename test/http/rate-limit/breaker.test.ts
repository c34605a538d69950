/**
 * The store's circuit breaker, driven step by step: a store whose every call
 * the test settles by hand, and an injected clock for the probe interval.
 */
import { describe, expect, it, vi } from 'vitest'
import {
  type RateLimitConfig,
  RateLimiter,
  type RateLimitStore,
  RedisStore,
} from '../../../src/http/index.js'
import { StoreCircuitBreakerSchema } from '../../../src/http/rate-limit/breaker.js'
import { MemoryStore } from '../../../src/http/rate-limit/stores/memory.js'

/** A store whose calls wait until the test answers or fails them. */
function manualStore() {
  const memory = new MemoryStore()
  const pending: Array<{ answer(): void; fail(): void }> = []
  const store: RateLimitStore = {
    consume: (key, request) =>
      new Promise((resolve, reject) => {
        pending.push({
          answer: () => resolve(memory.consumeSync(key, request)),
          fail: () => reject(new Error('ECONNREFUSED')),
        })
      }),
  }
  return { store, pending, calls: () => pending.length }
}

const quiet = { warn: () => {}, error: () => {} }

function limiter(store: RateLimitStore, options: RateLimitConfig = {}) {
  let now = 1_800_000_000_000
  const warnings: string[] = []
  const l = new RateLimiter({
    max: 10,
    storeTimeoutMs: 20,
    storeRetryIntervalMs: 1000,
    store,
    clock: () => now,
    logger: { warn: (_o, msg) => warnings.push(msg ?? ''), error: () => {} },
    ...options,
  })
  return {
    l,
    warnings,
    advance: (ms: number) => {
      now += ms
    },
    hit: (key = 'k') =>
      l.consume(key, l.globalPolicies) as Promise<{ allowed: boolean } | undefined>,
  }
}

describe('store circuit breaker', () => {
  it('defaults: 3 errors or 5 timeouts in a row open it; a busy store is awaited up to 1000 ms', () => {
    expect(StoreCircuitBreakerSchema.parse({})).toEqual({
      openAfterErrors: 3,
      openAfterTimeouts: 5,
      busyMaxWaitMs: 1000,
    })
  })

  it('opens after openAfterErrors errors in a row, not on the first', async () => {
    const m = manualStore()
    const { l, hit, warnings } = limiter(m.store)
    for (let i = 0; i < 2; i++) {
      const r = hit()
      m.pending[i]!.fail()
      expect((await r)?.allowed).toBe(true) // decided by the insurance share
      expect(l.storeCircuit).toBe('closed')
    }
    const third = hit()
    m.pending[2]!.fail()
    await third
    expect(l.storeCircuit).toBe('open')
    expect(warnings).toEqual(['rate-limit store failed', 'rate-limit store circuit opened'])
    // Open: no call reaches the store.
    await hit()
    expect(m.calls()).toBe(3)
  })

  it('an answer between errors resets the run', async () => {
    const m = manualStore()
    const { l, hit } = limiter(m.store)
    const settle = [
      (i: number) => m.pending[i]!.fail(),
      (i: number) => m.pending[i]!.fail(),
      (i: number) => m.pending[i]!.answer(),
      (i: number) => m.pending[i]!.fail(),
      (i: number) => m.pending[i]!.fail(),
    ]
    for (let i = 0; i < settle.length; i++) {
      const r = hit()
      settle[i]!(i)
      await r
    }
    expect(l.storeCircuit).toBe('closed')
  })

  it('opens after openAfterTimeouts timeouts in a row with no late answer', async () => {
    const m = manualStore()
    const { l, hit } = limiter(m.store, { circuitBreaker: { openAfterTimeouts: 2 } })
    await hit()
    expect(l.storeCircuit).toBe('closed')
    await hit()
    expect(l.storeCircuit).toBe('open')
  })

  it('a late answer closes it at once, without waiting for a probe', async () => {
    const m = manualStore()
    const { l, hit, warnings } = limiter(m.store, { circuitBreaker: { openAfterTimeouts: 1 } })
    await hit()
    expect(l.storeCircuit).toBe('open')
    m.pending[0]!.answer()
    await new Promise((r) => setImmediate(r))
    expect(l.storeCircuit).toBe('closed')
    expect(warnings).toContain('rate-limit store recovered')
  })

  it('slow calls that answer late never open it (slowness is not an outage)', async () => {
    const m = manualStore()
    const { l, hit } = limiter(m.store, { circuitBreaker: { openAfterTimeouts: 2 } })
    for (let i = 0; i < 10; i++) {
      await hit() // times out after 20 ms
      m.pending[i]!.answer() // and answers afterwards
      await new Promise((r) => setImmediate(r))
      expect(l.storeCircuit).toBe('closed')
    }
  })

  it('a call past storeTimeoutMs waits on while the store answers others (busy, not down), up to busyMaxWaitMs', async () => {
    // Timers are faked: on a loaded machine a real 25 ms sleep can outlast
    // busyMaxWaitMs and decide the waiting call locally before the test
    // looks (the platform promises no upper bound on a timer's delay).
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] })
    try {
      const m = manualStore()
      const { l, hit } = limiter(m.store, { circuitBreaker: { busyMaxWaitMs: 200 } })
      const slow = hit()
      let settled = false
      void slow.then(() => {
        settled = true
      })
      // Other calls answer while the first one waits: 3 timeout periods pass.
      for (let i = 1; i <= 3; i++) {
        const other = hit()
        m.pending[i]!.answer()
        await other
        await vi.advanceTimersByTimeAsync(25)
      }
      expect(settled).toBe(false)
      m.pending[0]!.answer()
      expect(await slow).toMatchObject({ allowed: true, remaining: 6 }) // the shared store's answer
      expect(l.storeCircuit).toBe('closed')
      // Past busyMaxWaitMs it is decided locally even though the store keeps answering.
      let cappedSettled = false
      const capped = hit().then((d) => {
        cappedSettled = true
        return d
      })
      const ticking = setInterval(() => {
        const o = hit()
        m.pending.at(-1)!.answer()
        void o
      }, 10)
      try {
        await vi.advanceTimersByTimeAsync(20 + 190)
        expect(cappedSettled).toBe(false) // still waiting: the store answers others
        await vi.advanceTimersByTimeAsync(20)
        expect(cappedSettled).toBe(true) // storeTimeoutMs + busyMaxWaitMs passed
        await capped
      } finally {
        clearInterval(ticking)
      }
      expect(m.calls()).toBeGreaterThan(5)
    } finally {
      vi.useRealTimers()
    }
  })

  it('half-opens after storeRetryIntervalMs with exactly one probe; its answer closes, its failure reopens', async () => {
    const m = manualStore()
    const { l, hit, advance } = limiter(m.store, { circuitBreaker: { openAfterErrors: 1 } })
    const first = hit()
    m.pending[0]!.fail()
    await first
    expect(l.storeCircuit).toBe('open')
    advance(999)
    await hit()
    expect(m.calls()).toBe(1) // not yet
    advance(1)
    const probe = hit()
    expect(l.storeCircuit).toBe('half-open')
    await hit() // while the probe is out, others stay local
    expect(m.calls()).toBe(2)
    m.pending[1]!.fail()
    await probe
    expect(l.storeCircuit).toBe('open')
    advance(1000)
    const probe2 = hit()
    m.pending[2]!.answer()
    await probe2
    expect(l.storeCircuit).toBe('closed')
    expect(l.degraded).toBe(false)
  })

  it('while open, each process admits ceil(max / instances) of every policy', async () => {
    const dead: RateLimitStore = { consume: () => Promise.reject(new Error('down')) }
    const fleet = [3, 3, 3].map(() =>
      limiter(dead, {
        max: 10,
        instances: 3,
        logger: quiet,
        circuitBreaker: { openAfterErrors: 1 },
      }),
    )
    let admitted = 0
    for (let i = 0; i < 30; i++) if ((await fleet[i % 3]!.hit())?.allowed) admitted++
    expect(admitted).toBe(3 * Math.ceil(10 / 3))
  })

  it('the insurance share counts what the process admitted through the shared store in the window', async () => {
    const m = manualStore()
    const { l, hit } = limiter(m.store, {
      max: 10,
      instances: 2,
      logger: quiet,
      circuitBreaker: { openAfterErrors: 1 },
    })
    for (let i = 0; i < 3; i++) {
      const r = hit()
      m.pending[i]!.answer()
      expect((await r)?.allowed).toBe(true)
    }
    const failing = hit()
    m.pending[3]!.fail()
    await failing // the 4th of its share of 5
    expect(l.storeCircuit).toBe('open')
    const more: boolean[] = []
    for (let i = 0; i < 3; i++) more.push((await hit())?.allowed === true)
    expect(more).toEqual([true, false, false])
  })

  it('rejects bad thresholds and instances with ERR_CONFIG_INVALID naming the field', () => {
    const client = { evalsha: async () => [], eval: async () => [] }
    const store = new RedisStore({ client })
    expect(() => new RateLimiter({ store, circuitBreaker: { openAfterErrors: 0 } })).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG_INVALID',
        message: expect.stringContaining('openAfterErrors'),
      }),
    )
    expect(() => new RateLimiter({ store, instances: 0 })).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG_INVALID',
        message: expect.stringContaining('instances'),
      }),
    )
  })
})
