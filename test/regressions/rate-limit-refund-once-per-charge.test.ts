/**
 * `RateLimiter.refund` and `refundWhenDone` are public, for adapters of other
 * frameworks. One charge is taken back at most once, however often an
 * adapter hands it back: a second refund would take back other requests'
 * charges and lower the client's count below what it spent.
 */
import { describe, expect, it } from 'vitest'
import { RateLimiter } from '../../src/http/index.js'

describe('RateLimiter refunds a charge at most once', () => {
  it('a second refund of one charge changes no count', async () => {
    const limiter = new RateLimiter({
      max: 3,
      windowMs: 60_000,
      skipSuccessfulRequests: true,
      keyGenerator: () => 'client',
      clock: () => 1_000,
    })
    const admit = async () => limiter.check({}, '127.0.0.1', '/', undefined, 'route')
    const first = await admit()
    const second = await admit()
    expect(first.action).toBe('allow')
    expect(second.action).toBe('allow')
    if (first.action !== 'allow' || first.charge === undefined) throw new Error('no charge')
    await limiter.refund(first.charge)
    await limiter.refund(first.charge)
    // Spent: the second request only; two more fit, the third is refused.
    expect((await admit()).action).toBe('allow')
    expect((await admit()).action).toBe('allow')
    expect((await admit()).action).toBe('reject')
    await limiter.close()
  })
})
