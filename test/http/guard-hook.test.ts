import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { afterEach, describe, expect, it } from 'vitest'
import { bodyLimit, rateLimit } from '../../src/http/index.js'

let apps: FastifyInstance[] = []
afterEach(async () => {
  await Promise.all(apps.map((a) => a.close()))
  apps = []
})

function app(): FastifyInstance {
  const a = Fastify()
  apps.push(a)
  return a
}

/** The instance's own `onRequest` hooks, as Fastify keeps them. */
function onRequestHooks(instance: FastifyInstance): unknown[] {
  for (let o: object | null = instance; o !== null; o = Object.getPrototypeOf(o)) {
    const s = Object.getOwnPropertySymbols(o).find((x) => x.description === 'fastify.hooks')
    if (s !== undefined)
      return (instance as unknown as Record<symbol, { onRequest: unknown[] }>)[s]!.onRequest
  }
  throw new Error('no hooks')
}

function post(a: FastifyInstance, url: string, payload: string) {
  return a.inject({ method: 'POST', url, payload, headers: { 'content-type': 'text/plain' } })
}

/** A rate limit whose key generator records when it ran. */
const limitRecording = (order: string[], max = 100) => ({
  max,
  keyGenerator: () => {
    order.push('rate')
    return 'k'
  },
})

describe('one onRequest hook for the body limit and the rate limit', () => {
  it('registered back to back, in either order, the two guards share one hook and both act', async () => {
    for (const first of ['body', 'rate'] as const) {
      const a = app()
      const order: string[] = []
      if (first === 'body') await a.register(bodyLimit, { maxSize: 10 })
      await a.register(rateLimit, limitRecording(order))
      if (first === 'rate') await a.register(bodyLimit, { maxSize: 10 })
      a.post('/', async () => 'ok')
      await a.ready()
      expect(onRequestHooks(a)).toHaveLength(1)
      const ok = await post(a, '/', 'hi')
      expect(ok.statusCode).toBe(200)
      expect(ok.headers['ratelimit-policy']).toBe('"default";q=100;w=60')
      const big = await post(a, '/', 'x'.repeat(11))
      expect(big.statusCode).toBe(413)
      // The body limit refused before the rate limit ran only when it runs first.
      expect(order).toEqual(first === 'body' ? ['rate'] : ['rate', 'rate'])
    }
  })

  it('a refusal by the first guard stops the second (429 before the body limit)', async () => {
    const a = app()
    await a.register(rateLimit, { max: 1 })
    await a.register(bodyLimit, { maxSize: 10 })
    a.post('/', async () => 'ok')
    await a.ready()
    expect((await post(a, '/', 'hi')).statusCode).toBe(200)
    const refused = await post(a, '/', 'x'.repeat(11))
    expect(refused.statusCode).toBe(429)
    expect(refused.json().code).toBe('ERR_HTTP_RATE_LIMITED')
  })

  it('a hook registered between the two keeps its place: the guards do not merge across it', async () => {
    for (const userHookFirst of [true, false]) {
      const a = app()
      const order: string[] = []
      await a.register(bodyLimit)
      const userHook = fp(async (i: FastifyInstance) => {
        i.addHook('onRequest', async () => {
          order.push('user')
        })
      })
      if (userHookFirst) await a.register(userHook)
      await a.register(rateLimit, limitRecording(order))
      if (!userHookFirst) await a.register(userHook)
      a.get('/', async () => 'ok')
      await a.ready()
      expect(onRequestHooks(a)).toHaveLength(userHookFirst ? 3 : 2)
      expect((await a.inject('/')).statusCode).toBe(200)
      expect(order).toEqual(userHookFirst ? ['user', 'rate'] : ['rate', 'user'])
    }
  })

  it('a child context keeps its own hooks before a guard the parent adds later, as Fastify orders them', async () => {
    const a = app()
    const order: string[] = []
    await a.register(bodyLimit)
    await a.register(async (child) => {
      child.addHook('onRequest', async () => {
        order.push('child')
      })
      child.get('/child', async () => 'ok')
    })
    await a.register(rateLimit, limitRecording(order))
    a.get('/', async () => 'ok')
    await a.ready()
    expect((await a.inject('/child')).statusCode).toBe(200)
    expect(order).toEqual(['child', 'rate'])
    order.length = 0
    expect((await a.inject('/')).statusCode).toBe(200)
    expect(order).toEqual(['rate'])
  })

  it('a rate limit registered in a child context limits only that context', async () => {
    const a = app()
    const order: string[] = []
    await a.register(bodyLimit, { maxSize: 10 })
    await a.register(async (child) => {
      await child.register(rateLimit, limitRecording(order, 1))
      child.post('/limited', async () => 'ok')
    })
    a.post('/open', async () => 'ok')
    await a.ready()
    for (let i = 0; i < 3; i++) expect((await post(a, '/open', 'a')).statusCode).toBe(200)
    expect(order).toEqual([])
    expect((await post(a, '/limited', 'a')).statusCode).toBe(200)
    expect((await post(a, '/limited', 'a')).statusCode).toBe(429)
    const big = await post(a, '/limited', 'x'.repeat(11))
    expect(big.statusCode).toBe(413)
  })

  it('an asynchronous guard (async key generator) still hands over to the next one', async () => {
    const a = app()
    await a.register(rateLimit, { max: 100, keyGenerator: async () => 'k' })
    await a.register(bodyLimit, { maxSize: 10 })
    a.post('/', async () => 'ok')
    await a.ready()
    expect(onRequestHooks(a)).toHaveLength(1)
    expect((await post(a, '/', 'hi')).statusCode).toBe(200)
    const big = await post(a, '/', 'x'.repeat(11))
    expect(big.statusCode).toBe(413)
    expect(big.headers['ratelimit-policy']).toBeDefined()
  })

  it('a guard that throws fails the request through the error handler, never lets it through', async () => {
    const a = app()
    await a.register(bodyLimit)
    await a.register(rateLimit, {
      max: 100,
      keyGenerator: () => {
        throw new Error('boom')
      },
    })
    let reached = false
    a.get('/', async () => {
      reached = true
      return 'ok'
    })
    await a.ready()
    const res = await a.inject('/')
    expect(res.statusCode).toBe(500)
    expect(reached).toBe(false)
  })
})
