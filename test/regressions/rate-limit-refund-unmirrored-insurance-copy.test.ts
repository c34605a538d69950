/**
 * With a shared store and `onStoreError: 'insurance'`, each admitted request
 * is also counted in the local insurance store against this instance's share
 * (`ceil(max / instances)`), and only while it fits there. A refund
 * (`skipSuccessfulRequests`) must take back only a copy that was counted:
 * taking back copies the share refused would leave the insurance store
 * counting less than this instance has admitted, so an outage would start
 * from a lower count than was spent.
 */
import Fastify from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { MemoryStore, type RateLimitStore, rateLimit } from '../../src/http/index.js'

const apps: Array<{ close(): Promise<unknown> }> = []
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()))
})

const silent = { warn() {}, error() {} }

describe('refunds and the insurance copy of a shared charge', () => {
  it('a refund never takes back an insurance copy the share did not count', async () => {
    // A shared store that is not the limiter's own memory store, and can go down.
    const counters = new MemoryStore()
    let down = false
    const store: RateLimitStore = {
      consume: (key, request) =>
        down ? Promise.reject(new Error('store down')) : counters.consume(key, request),
      refund: (key, request) => counters.refund(key, request),
    }
    const app = Fastify()
    apps.push(app)
    await app.register(rateLimit, {
      max: 10,
      windowMs: 60_000,
      instances: 2,
      store,
      skipSuccessfulRequests: true,
      keyGenerator: () => 'client',
      clock: () => 1_000,
      logger: silent,
    })
    app.get('/ok', async () => ({ ok: true }))
    app.get('/fail', async (_request, reply) => reply.code(401).send({ ok: false }))
    await app.ready()
    const send = async (url: string) => {
      const { statusCode } = await app.inject({ url })
      await app.rateLimiter.refundsSettled()
      return statusCode
    }

    // Five failures count everywhere: the insurance share (5 of 10) is spent.
    for (let i = 0; i < 5; i++) expect(await send('/fail')).toBe(401)
    // Five successes are charged and refunded on the shared store; the share
    // had no room for their insurance copies, so there is nothing to take back.
    for (let i = 0; i < 5; i++) expect(await send('/ok')).toBe(200)

    // Outage: the insurance store decides, and this instance's share is spent.
    down = true
    expect(await send('/fail')).toBe(429)
  })
})
