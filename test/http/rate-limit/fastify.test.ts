import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import {
  bodyLimit,
  MemoryStore,
  QUOTA_EXCEEDED_TYPE,
  type RateLimitConfig,
  rateLimit,
} from '../../../src/http/index.js'

const T0 = 1_800_000_000_000 - (1_800_000_000_000 % 60_000)

let apps: FastifyInstance[] = []
afterEach(async () => {
  await Promise.all(apps.map((a) => a.close()))
  apps = []
})

async function build(options: RateLimitConfig, fastifyOptions: FastifyServerOptions = {}) {
  const app = Fastify(fastifyOptions)
  apps.push(app)
  await app.register(rateLimit, options)
  app.get('/', async (request) => ({ info: request.rateLimit }))
  app.get('/health', async () => 'ok')
  app.get('/public/a', async () => 'ok')
  app.post('/login', { config: { rateLimit: { max: 2 } } }, async () => 'ok')
  app.get('/free', { config: { rateLimit: false } }, async () => 'ok')
  await app.ready()
  return app
}

function clock(start = T0 + 17_000) {
  let now = start
  return { now: () => now, advance: (ms: number) => (now += ms), set: (t: number) => (now = t) }
}

describe('rateLimit (Fastify)', () => {
  it('sends the draft-ietf-httpapi-ratelimit-headers fields, one list item per policy', async () => {
    const c = clock()
    const app = await build({
      max: 100,
      windowMs: 60_000,
      policies: [{ name: 'burst', max: 20, windowMs: 1000 }],
      clock: c.now,
    })
    const res = await app.inject('/')
    expect(res.statusCode).toBe(200)
    expect(res.headers['ratelimit-policy']).toBe('"default";q=100;w=60, "burst";q=20;w=1')
    expect(res.headers.ratelimit).toBe('"default";r=99;t=43, "burst";r=19;t=1')
    expect(res.headers['x-ratelimit-limit']).toBeUndefined()
  })

  it('exposes RateLimitInfo on the request (strictest policy first)', async () => {
    const c = clock()
    const app = await build({
      max: 100,
      policies: [{ name: 'burst', max: 20, windowMs: 1000 }],
      clock: c.now,
    })
    const body = (await app.inject('/')).json()
    expect(body.info).toMatchObject({
      limit: 20,
      remaining: 19,
      resetMs: 1000,
      retryAfterMs: 0,
      allowed: true,
    })
    expect(body.info.policies.map((p: { name: string }) => p.name)).toEqual(['default', 'burst'])
  })

  it('answers 429 application/problem+json with quota-exceeded, violated policies, limit and retry_after', async () => {
    const c = clock()
    const app = await build({ max: 3, windowMs: 60_000, clock: c.now })
    for (let i = 0; i < 3; i++) expect((await app.inject('/')).statusCode).toBe(200)
    const res = await app.inject('/')
    expect(res.statusCode).toBe(429)
    expect(res.headers['content-type']).toBe('application/problem+json')
    // 3 requests at 17 s into the window: the next fits once the window turns and
    // the previous count has decayed to 2 (W - floor(2W/3) = 20 s in): 43 s + 20 s.
    expect(res.headers['retry-after']).toBe('63')
    expect(res.headers.ratelimit).toBe('"default";r=0;t=63')
    expect(res.json()).toEqual({
      type: QUOTA_EXCEEDED_TYPE,
      title: 'Request cannot be satisfied as assigned quota has been exceeded',
      status: 429,
      detail: 'Rate limit exceeded',
      code: 'ERR_HTTP_RATE_LIMITED',
      'violated-policies': ['default'],
      limit: 3,
      retry_after: 63,
    })
  })

  it('lets the strictest of several policies decide and names only the violated ones', async () => {
    const c = clock()
    const app = await build({
      max: 100,
      policies: [{ name: 'burst', max: 2, windowMs: 1000 }],
      clock: c.now,
    })
    await app.inject('/')
    await app.inject('/')
    const res = await app.inject('/')
    expect(res.statusCode).toBe(429)
    expect(res.json()['violated-policies']).toEqual(['burst'])
    expect(res.json().limit).toBe(2)
    c.advance(2000)
    expect((await app.inject('/')).statusCode).toBe(200)
  })

  it('rolls windows over with an injected clock (never sleeps)', async () => {
    const c = clock(T0)
    const app = await build({ max: 2, windowMs: 1000, clock: c.now })
    expect((await app.inject('/')).statusCode).toBe(200)
    expect((await app.inject('/')).statusCode).toBe(200)
    expect((await app.inject('/')).statusCode).toBe(429)
    c.advance(1500) // half of the previous window still counts: 1 unit free
    expect((await app.inject('/')).statusCode).toBe(200)
    expect((await app.inject('/')).statusCode).toBe(429)
    c.advance(2000)
    expect((await app.inject('/')).statusCode).toBe(200)
  })

  it('sends X-RateLimit-* only when legacyHeaders is on', async () => {
    const c = clock()
    const app = await build({ max: 10, legacyHeaders: true, standardHeaders: false, clock: c.now })
    const res = await app.inject('/')
    expect(res.headers['x-ratelimit-limit']).toBe('10')
    expect(res.headers['x-ratelimit-remaining']).toBe('9')
    expect(res.headers['x-ratelimit-reset']).toBe('43')
    expect(res.headers.ratelimit).toBeUndefined()
  })

  it('applies a route’s own quota from its config, with counters separate from the global ones', async () => {
    const app = await build({ max: 100 })
    expect((await app.inject({ method: 'POST', url: '/login' })).statusCode).toBe(200)
    expect((await app.inject({ method: 'POST', url: '/login' })).statusCode).toBe(200)
    const res = await app.inject({ method: 'POST', url: '/login' })
    expect(res.statusCode).toBe(429)
    expect(res.json().limit).toBe(2)
    expect((await app.inject('/')).headers.ratelimit).toMatch(/^"default";r=99;/)
  })

  it('exempts routes with config.rateLimit false and paths in exemptPaths (exact and prefix)', async () => {
    const app = await build({ max: 1, exemptPaths: ['/health', '/public/*'] })
    for (let i = 0; i < 3; i++) {
      for (const url of ['/health', '/public/a', '/free']) {
        const res = await app.inject(url)
        expect(res.statusCode).toBe(200)
        expect(res.headers.ratelimit).toBeUndefined()
      }
    }
  })

  it('skips allow-listed IPs and CIDRs (IPv4, IPv6, IPv4-mapped IPv6)', async () => {
    const app = await build({ max: 1, allowList: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7'] })
    for (const remoteAddress of ['10.1.2.3', '2001:db8::1', '::ffff:192.0.2.7']) {
      for (let i = 0; i < 3; i++)
        expect((await app.inject({ url: '/', remoteAddress })).statusCode).toBe(200)
    }
    await app.inject({ url: '/', remoteAddress: '203.0.113.1' })
    expect((await app.inject({ url: '/', remoteAddress: '203.0.113.1' })).statusCode).toBe(429)
  })

  it('accepts an allow-list predicate over the request and key', async () => {
    const app = await build({
      max: 1,
      allowList: (request: { headers: Record<string, unknown> }) =>
        request.headers['x-internal'] === 'yes',
    })
    for (let i = 0; i < 3; i++)
      expect((await app.inject({ url: '/', headers: { 'x-internal': 'yes' } })).statusCode).toBe(
        200,
      )
  })

  it('groups IPv6 clients by /64 by default and treats IPv4-mapped addresses as IPv4', async () => {
    const app = await build({ max: 2 })
    await app.inject({ url: '/', remoteAddress: '2001:db8:1:2::1' })
    await app.inject({ url: '/', remoteAddress: '2001:db8:1:2:ffff::9' })
    expect((await app.inject({ url: '/', remoteAddress: '2001:db8:1:2:aaaa::1' })).statusCode).toBe(
      429,
    )
    expect((await app.inject({ url: '/', remoteAddress: '2001:db8:1:3::1' })).statusCode).toBe(200)
    await app.inject({ url: '/', remoteAddress: '198.51.100.4' })
    await app.inject({ url: '/', remoteAddress: '::ffff:198.51.100.4' })
    expect((await app.inject({ url: '/', remoteAddress: '198.51.100.4' })).statusCode).toBe(429)
  })

  it('honours Fastify’s trustProxy for the client IP', async () => {
    const app = await build({ max: 1 }, { trustProxy: '127.0.0.1' })
    const from = (ip: string) =>
      app.inject({ url: '/', remoteAddress: '127.0.0.1', headers: { 'x-forwarded-for': ip } })
    expect((await from('203.0.113.9')).statusCode).toBe(200)
    expect((await from('203.0.113.10')).statusCode).toBe(200)
    expect((await from('203.0.113.9')).statusCode).toBe(429)
  })

  it('ignores X-Forwarded-For from an untrusted peer', async () => {
    const app = await build({ max: 1 })
    const from = (ip: string) =>
      app.inject({ url: '/', remoteAddress: '198.51.100.1', headers: { 'x-forwarded-for': ip } })
    expect((await from('203.0.113.9')).statusCode).toBe(200)
    expect((await from('203.0.113.10')).statusCode).toBe(429)
  })

  it('uses a custom key generator, sync or async', async () => {
    for (const keyGenerator of [
      (r: { headers: Record<string, unknown> }) => String(r.headers['x-user']),
      async (r: { headers: Record<string, unknown> }) => String(r.headers['x-user']),
    ]) {
      const app = await build({ max: 1, keyGenerator })
      expect((await app.inject({ url: '/', headers: { 'x-user': 'a' } })).statusCode).toBe(200)
      expect((await app.inject({ url: '/', headers: { 'x-user': 'b' } })).statusCode).toBe(200)
      expect((await app.inject({ url: '/', headers: { 'x-user': 'a' } })).statusCode).toBe(429)
    }
  })

  it('charges the weight a request costs', async () => {
    const app = await build({
      max: 10,
      weight: (r: { headers: Record<string, unknown> }) => Number(r.headers['x-cost'] ?? 1),
    })
    expect((await app.inject({ url: '/', headers: { 'x-cost': '9' } })).statusCode).toBe(200)
    expect((await app.inject({ url: '/', headers: { 'x-cost': '2' } })).statusCode).toBe(429)
    expect((await app.inject({ url: '/', headers: { 'x-cost': '1' } })).statusCode).toBe(200)
  })

  it('limits unknown routes (404s) too, so scanners are throttled', async () => {
    const app = await build({ max: 1 })
    expect((await app.inject('/nope')).statusCode).toBe(404)
    expect((await app.inject('/nope')).statusCode).toBe(429)
  })

  it('can run in preHandler, after the body is parsed', async () => {
    const app = Fastify()
    apps.push(app)
    await app.register(rateLimit, {
      max: 1,
      hook: 'preHandler',
      keyGenerator: (r: { body: { user: string } }) => r.body.user,
    })
    app.post('/', async () => 'ok')
    const post = (user: string) => app.inject({ method: 'POST', url: '/', payload: { user } })
    expect((await post('a')).statusCode).toBe(200)
    expect((await post('b')).statusCode).toBe(200)
    expect((await post('a')).statusCode).toBe(429)
  })

  it('rejects invalid options at registration with ERR_CONFIG_INVALID naming the field', async () => {
    const cases: Array<[RateLimitConfig, string]> = [
      [{ max: 0 }, 'max'],
      [{ windowMs: -1 }, 'windowMs'],
      [{ onStoreError: 'explode' as never }, 'onStoreError'],
      [
        {
          policies: [
            { name: 'b', max: 1, windowMs: 1000 },
            { name: 'b', max: 2, windowMs: 1000 },
          ],
        },
        'policies',
      ],
      [{ allowList: ['not-an-ip'] }, 'allowList[0]'],
      [{ store: {} as never }, 'store'],
      [{ storeTimeoutMs: 0 }, 'storeTimeoutMs'],
      [{ maxx: 1 } as never, 'maxx'],
    ]
    for (const [options, field] of cases) {
      const app = Fastify()
      await expect(app.register(rateLimit, options).ready()).rejects.toMatchObject({
        code: 'ERR_CONFIG_INVALID',
        message: expect.stringContaining(`\`${field}\``),
      })
      await app.close()
    }
  })

  it('rejects an invalid route override when the route is registered', async () => {
    const app = Fastify()
    apps.push(app)
    await app.register(rateLimit, {})
    await expect(
      app
        .after()
        .then(() => app.get('/x', { config: { rateLimit: { max: -5 } } }, async () => 'ok')),
    ).rejects.toMatchObject({ code: 'ERR_CONFIG_INVALID', message: expect.stringContaining('max') })
  })

  it('shares one error handler with the body limit (no competing setErrorHandler)', async () => {
    const app = Fastify({ allowErrorHandlerOverride: false })
    apps.push(app)
    await app.register(bodyLimit, { maxSize: 10 })
    await app.register(rateLimit, { max: 1, store: new MemoryStore() })
    app.post('/', async () => 'ok')
    await app.ready()
    const big = await app.inject({ method: 'POST', url: '/', payload: { a: 'x'.repeat(50) } })
    expect(big.statusCode).toBe(413)
    // The 413 was answered before the limiter ran: it did not use the quota.
    expect((await app.inject({ method: 'POST', url: '/', payload: {} })).statusCode).toBe(200)
    const limited = await app.inject({ method: 'POST', url: '/', payload: {} })
    expect(limited.statusCode).toBe(429)
  })
})
