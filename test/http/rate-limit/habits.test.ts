import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import Fastify, { type FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { ConfigError } from '../../../src/errors.js'
import {
  type RateLimitConfig,
  RateLimiter,
  rateLimit,
  rateLimitMiddleware,
} from '../../../src/http/index.js'

// The habits users bring from @fastify/rate-limit and express-rate-limit (issue 20).

const T0 = 1_800_000_000_000 - (1_800_000_000_000 % 60_000)
const clock = () => T0

let apps: FastifyInstance[] = []
let servers: Server[] = []
afterEach(async () => {
  await Promise.all(apps.map((a) => a.close()))
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  apps = []
  servers = []
})

async function build(options: RateLimitConfig, routes?: (app: FastifyInstance) => void) {
  const app = Fastify()
  apps.push(app)
  await app.register(rateLimit, { clock, ...options })
  if (routes) routes(app)
  else app.get('/', async () => 'ok')
  await app.ready()
  return app
}

const statuses = async (app: FastifyInstance, url: string, n: number, headers = {}) => {
  const out: number[] = []
  for (let i = 0; i < n; i++) out.push((await app.inject({ url, headers })).statusCode)
  return out
}

describe('rate limit: callbacks', () => {
  it('calls onExceeding for each counted request and onExceeded for each 429, with the key', async () => {
    const seen: string[] = []
    const app = await build({
      max: 2,
      keyGenerator: (r: { headers: Record<string, unknown> }) => String(r.headers['x-user']),
      onExceeding: (_r, key) => seen.push(`ing:${key}`),
      onExceeded: (_r, key) => seen.push(`ed:${key}`),
    })
    expect(await statuses(app, '/', 3, { 'x-user': 'ann' })).toEqual([200, 200, 429])
    expect(seen).toEqual(['ing:ann', 'ing:ann', 'ed:ann'])
  })

  it('a throwing onExceeded fails the request (500), it never lets it through', async () => {
    const app = await build({
      max: 1,
      onExceeded: () => {
        throw new Error('callback bug')
      },
    })
    expect(await statuses(app, '/', 2)).toEqual([200, 500])
  })
})

describe('rate limit: errorResponseBuilder', () => {
  it('shapes the 429 body and keeps status, Retry-After and the rate-limit headers', async () => {
    const app = await build({
      max: 1,
      errorResponseBuilder: (_r, ctx) => ({
        message: `slow down, retry in ${ctx.after}`,
        max: ctx.max,
        ttl: ctx.ttl,
        status: ctx.statusCode,
      }),
    })
    await app.inject('/')
    const res = await app.inject('/')
    expect(res.statusCode).toBe(429)
    expect(res.headers['content-type']).toBe('application/json')
    expect(res.headers['retry-after']).toBe('120')
    expect(res.headers['ratelimit-policy']).toBe('"default";q=1;w=60')
    expect(res.json()).toEqual({
      message: 'slow down, retry in 120 seconds',
      max: 1,
      ttl: 120_000,
      status: 429,
    })
  })

  it('a builder that returns no object fails the request instead of sending nothing', async () => {
    const app = await build({ max: 1, errorResponseBuilder: () => 'nope' as unknown as object })
    expect(await statuses(app, '/', 2)).toEqual([200, 500])
  })
})

describe('rate limit: skip and max as a function', () => {
  it('skip(request) lets a request through uncounted and without headers', async () => {
    const app = await build({
      max: 1,
      skip: async (r: { headers: Record<string, unknown> }) => r.headers['x-internal'] === '1',
    })
    const skipped = await app.inject({ url: '/', headers: { 'x-internal': '1' } })
    expect(skipped.statusCode).toBe(200)
    expect(skipped.headers.ratelimit).toBeUndefined()
    expect(await statuses(app, '/', 2)).toEqual([200, 429])
  })

  it('max(request, key) sets each client its own quota, and the header says which', async () => {
    const app = await build({
      max: (r: { headers: Record<string, unknown> }) => (r.headers['x-tier'] === 'gold' ? 3 : 1),
    })
    const gold = { 'x-tier': 'gold' }
    const first = await app.inject({ url: '/', headers: gold })
    expect(first.headers['ratelimit-policy']).toBe('"default";q=3;w=60')
    expect(await statuses(app, '/', 3, gold)).toEqual([200, 200, 429])
  })

  it('an async max that returns a non-integer fails the request (500), never unlimited', async () => {
    const app = await build({ max: async () => Number.NaN })
    expect(await statuses(app, '/', 1)).toEqual([500])
  })

  it('globalPolicies refuses with ERR_CONFIG_INVALID when max depends on the request', () => {
    const limiter = new RateLimiter({ max: () => 5 })
    expect(() => limiter.globalPolicies).toThrow(ConfigError)
  })
})

describe('rate limit: windowMs as a duration string', () => {
  it.each([
    ['1 minute', 60_000],
    ['30s', 30_000],
    ['1.5 h', 5_400_000],
    ['500', 500],
  ])('%s is %d ms', (text, ms) => {
    expect(new RateLimiter({ windowMs: text }).config.windowMs).toBe(ms)
  })

  it.each(['a minute', '1 fortnight', '0.5ms', '8 days', ''])(
    'rejects %j with ERR_CONFIG_INVALID naming windowMs',
    (text) => {
      expect(() => new RateLimiter({ windowMs: text })).toThrow(/`windowMs`/)
    },
  )
})

describe('rate limit: per-route opt-in, keyGenerator and groupId', () => {
  it('global: false limits only the routes that set config.rateLimit', async () => {
    const app = await build({ global: false, max: 1 }, (a) => {
      a.get('/open', async () => 'ok')
      a.get('/login', { config: { rateLimit: { max: 2, windowMs: '1 minute' } } }, async () => 'ok')
    })
    expect(await statuses(app, '/open', 3)).toEqual([200, 200, 200])
    expect((await app.inject('/open')).headers.ratelimit).toBeUndefined()
    expect(await statuses(app, '/login', 3)).toEqual([200, 200, 429])
  })

  it('a route keyGenerator counts by its own key', async () => {
    const app = await build({}, (a) => {
      a.get(
        '/by-user',
        {
          config: {
            rateLimit: {
              max: 1,
              keyGenerator: (r: { headers: Record<string, unknown> }) =>
                String(r.headers['x-user']),
            },
          },
        },
        async () => 'ok',
      )
    })
    expect(await statuses(app, '/by-user', 2, { 'x-user': 'a' })).toEqual([200, 429])
    expect(await statuses(app, '/by-user', 1, { 'x-user': 'b' })).toEqual([200])
  })

  it('routes with one groupId share a counter; other routes do not', async () => {
    const app = await build({}, (a) => {
      const group = { config: { rateLimit: { max: 2, groupId: 'auth' } } }
      a.get('/login', group, async () => 'ok')
      a.get('/reset', group, async () => 'ok')
      a.get('/other', { config: { rateLimit: { max: 2 } } }, async () => 'ok')
    })
    expect(await statuses(app, '/login', 1)).toEqual([200])
    expect(await statuses(app, '/reset', 2)).toEqual([200, 429])
    expect(await statuses(app, '/other', 1)).toEqual([200])
  })

  it('a bad route option fails at registration', async () => {
    const app = Fastify()
    apps.push(app)
    await app.register(rateLimit, { clock })
    expect(() =>
      app.get('/x', { config: { rateLimit: { windowMs: 'soon' } } }, async () => 'ok'),
    ).toThrow(/windowMs/)
  })
})

describe('rate limit: header drafts', () => {
  const headersOf = async (options: RateLimitConfig) => {
    const app = await build({ max: 10, windowMs: 60_000, ...options })
    return (await app.inject('/')).headers
  }

  it('draft-8 (the default) names each policy', async () => {
    const h = await headersOf({})
    expect(h['ratelimit-policy']).toBe('"default";q=10;w=60')
    expect(h.ratelimit).toBe('"default";r=9;t=60')
  })

  it('draft-7 sends one RateLimit field with limit, remaining and reset', async () => {
    const h = await headersOf({ standardHeaders: 'draft-7' })
    expect(h['ratelimit-policy']).toBe('10;w=60')
    expect(h.ratelimit).toBe('limit=10, remaining=9, reset=60')
    expect(h['ratelimit-limit']).toBeUndefined()
  })

  it('draft-6 sends RateLimit-Limit, -Remaining and -Reset', async () => {
    const h = await headersOf({ standardHeaders: 'draft-6' })
    expect(h['ratelimit-policy']).toBe('10;w=60')
    expect(h['ratelimit-limit']).toBe('10')
    expect(h['ratelimit-remaining']).toBe('9')
    expect(h['ratelimit-reset']).toBe('60')
    expect(h.ratelimit).toBeUndefined()
  })

  it('legacy X-RateLimit-* alone, with standard headers off', async () => {
    const h = await headersOf({ standardHeaders: false, legacyHeaders: true })
    expect(h['x-ratelimit-limit']).toBe('10')
    expect(h['x-ratelimit-remaining']).toBe('9')
    expect(h['x-ratelimit-reset']).toBe('60')
    expect(h['ratelimit-policy']).toBeUndefined()
  })
})

describe('rate limit: unknown options name the likely intended one', () => {
  it.each([
    ['timeWindow', 'windowMs'],
    ['limit', 'max'],
    ['enableDraftSpec', 'standardHeaders'],
    ['skipOnError', 'onStoreError'],
    ['maxx', 'max'],
    ['keygenerator', 'keyGenerator'],
  ])('%s: did you mean %s?', (given, meant) => {
    const err = (() => {
      try {
        new RateLimiter({ [given]: 1 } as RateLimitConfig)
      } catch (e) {
        return e
      }
      return undefined
    })() as ConfigError
    expect(err).toBeInstanceOf(ConfigError)
    expect(err.code).toBe('ERR_CONFIG_INVALID')
    expect(err.message).toContain(`\`${given}\`: did you mean \`${meant}\`?`)
  })

  it('a name far from every option stays "unknown option"', () => {
    expect(() => new RateLimiter({ zzzzzzzz: 1 } as RateLimitConfig)).toThrow(
      '`zzzzzzzz`: unknown option',
    )
  })
})

describe('rate limit: Express middleware', () => {
  async function listen(server: Server): Promise<string> {
    servers.push(server)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }

  it('sets req.rateLimit (typed on Express.Request) and applies skip, callbacks and the builder', async () => {
    const exceeded: string[] = []
    const app = express()
    app.use(
      rateLimitMiddleware({
        max: 1,
        clock,
        skip: (req: express.Request) => req.path === '/skip',
        onExceeded: (_r, key) => exceeded.push(key),
        errorResponseBuilder: () => ({ error: 'too many' }),
      }),
    )
    app.get('/', (req, res) => {
      const remaining: number | undefined = req.rateLimit?.remaining
      res.json({ remaining })
    })
    app.get('/skip', (_req, res) => {
      res.send('ok')
    })
    const url = await listen(createServer(app))
    expect(await (await fetch(url)).json()).toEqual({ remaining: 0 })
    expect((await fetch(`${url}/skip`)).status).toBe(200)
    const limited = await fetch(url)
    expect(limited.status).toBe(429)
    expect(await limited.json()).toEqual({ error: 'too many' })
    expect(exceeded).toEqual(['127.0.0.1'])
  })

  it('refuses global: false, which would limit nothing without a route table', () => {
    expect(() => rateLimitMiddleware({ global: false })).toThrow(ConfigError)
  })
})
