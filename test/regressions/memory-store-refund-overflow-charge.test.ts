/**
 * A charge the memory store made on its shared overflow counter (the store
 * was full of live counters) must be taken back from that counter, never from
 * a counter of the client's own created later: refunding it there would lower
 * the client's own count below what it charged and leave the shared counter
 * charged for every newcomer.
 */
import Fastify, { type FastifyRequest } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { MemoryStore, rateLimit } from '../../src/http/index.js'

const apps: Array<{ close(): Promise<unknown> }> = []
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()))
})

describe('memory store refunds of overflow charges', () => {
  it('a refund of a charge made on the overflow counter never comes off the client’s own counter', async () => {
    const store = new MemoryStore({ maxKeys: 1 })
    const app = Fastify()
    apps.push(app)
    await app.register(rateLimit, {
      max: 2,
      windowMs: 60_000,
      store,
      skipSuccessfulRequests: true,
      keyGenerator: (request: FastifyRequest) => String(request.headers['x-client']),
      clock: () => 1_000,
    })
    const gates = new Map<string, () => void>()
    const arrived = new Map<string, () => void>()
    app.get('/fail', async (_request, reply) => reply.code(401).send({ ok: false }))
    app.get('/hold/:id', async (request) => {
      const { id } = request.params as { id: string }
      await new Promise<void>((resolve) => {
        gates.set(id, resolve)
        arrived.get(id)?.()
      })
      return { ok: true }
    })
    await app.ready()
    const limiter = app.rateLimiter
    const hold = async (id: string, client: string) => {
      const there = new Promise<void>((resolve) => arrived.set(id, resolve))
      // inject() starts once awaited; Promise.resolve starts it now.
      const answer = Promise.resolve(
        app.inject({ url: `/hold/${id}`, headers: { 'x-client': client } }),
      )
      await there
      // Wrapped, so awaiting `hold` waits for the arrival, not the answer.
      return { answer }
    }

    // `a` takes the only slot, and its request is still running, so its counter is live.
    const first = (await hold('1', 'a')).answer
    // `b` arrives while `a` is live: charged on the overflow counter.
    const second = (await hold('2', 'b')).answer
    expect(store.has('b')).toBe(false)
    // `a` succeeds: refunded, its counter counts nothing, so its slot is free.
    gates.get('1')!()
    expect((await first).statusCode).toBe(200)
    await limiter.refundsSettled()
    // `b`'s next request (failed, so kept) takes the slot: a counter of its own.
    expect((await app.inject({ url: '/fail', headers: { 'x-client': 'b' } })).statusCode).toBe(401)
    await limiter.refundsSettled()
    expect(store.has('b')).toBe(true)
    // The held request of `b` succeeds: its refund belongs to the overflow counter.
    gates.get('2')!()
    expect((await second).statusCode).toBe(200)
    await limiter.refundsSettled()

    // `b`'s own counter still holds its failed request: one more fits, then 429.
    expect((await app.inject({ url: '/fail', headers: { 'x-client': 'b' } })).statusCode).toBe(401)
    await limiter.refundsSettled()
    expect((await app.inject({ url: '/fail', headers: { 'x-client': 'b' } })).statusCode).toBe(429)
  })
})
