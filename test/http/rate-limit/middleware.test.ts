import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import { afterEach, describe, expect, it } from 'vitest'
import { rateLimitMiddleware } from '../../../src/http/index.js'

let servers: Server[] = []
afterEach(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  servers = []
})

async function listen(server: Server): Promise<string> {
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

describe('rateLimitMiddleware', () => {
  it('limits a plain node:http server with the same headers and 429 body as the plugin', async () => {
    const limit = rateLimitMiddleware({ max: 2, windowMs: 60_000, clock: () => 1_800_000_000_000 })
    const url = await listen(
      createServer((req, res) =>
        limit(req, res, (err) => {
          res.statusCode = err ? 500 : 200
          res.end('ok')
        }),
      ),
    )
    const first = await fetch(url)
    expect(first.status).toBe(200)
    expect(first.headers.get('ratelimit-policy')).toBe('"default";q=2;w=60')
    expect(first.headers.get('ratelimit')).toBe('"default";r=1;t=60')
    await fetch(url)
    const limited = await fetch(url)
    expect(limited.status).toBe(429)
    expect(limited.headers.get('content-type')).toBe('application/problem+json')
    expect(limited.headers.get('retry-after')).toBe('90')
    expect(await limited.json()).toMatchObject({
      detail: 'Rate limit exceeded',
      code: 'ERR_HTTP_RATE_LIMITED',
      'violated-policies': ['default'],
      limit: 2,
      retry_after: 90,
    })
  })

  it('works as Express middleware and honours Express’s trust proxy for req.ip', async () => {
    const app = express()
    app.set('trust proxy', 'loopback')
    app.use(rateLimitMiddleware({ max: 1, exemptPaths: ['/health'] }))
    app.get('/', (req, res) => {
      res.json({
        remaining: (req as unknown as { rateLimit: { remaining: number } }).rateLimit.remaining,
      })
    })
    app.get('/health', (_req, res) => {
      res.send('ok')
    })
    const url = await listen(createServer(app))
    const as = (ip: string) => fetch(url, { headers: { 'x-forwarded-for': ip } })
    const a = await as('203.0.113.1')
    expect(a.status).toBe(200)
    expect(await a.json()).toEqual({ remaining: 0 })
    expect((await as('203.0.113.2')).status).toBe(200)
    expect((await as('203.0.113.1')).status).toBe(429)
    for (let i = 0; i < 3; i++) expect((await fetch(`${url}/health`)).status).toBe(200)
  })

  it('passes store errors in deny mode as a 503 answer', async () => {
    const limit = rateLimitMiddleware({
      store: { consume: () => Promise.reject(new Error('down')) },
      onStoreError: 'deny',
      logger: { warn: () => {}, error: () => {} },
    })
    const url = await listen(createServer((req, res) => limit(req, res, () => res.end('ok'))))
    const res = await fetch(url)
    expect(res.status).toBe(503)
    expect(await res.json()).toEqual({
      detail: 'Rate limiting is temporarily unavailable',
      code: 'ERR_HTTP_RATE_LIMIT_UNAVAILABLE',
    })
  })

  it('hands a throwing key generator to next(err) instead of crashing', async () => {
    const limit = rateLimitMiddleware({
      keyGenerator: () => {
        throw new Error('boom')
      },
    })
    const url = await listen(
      createServer((req, res) =>
        limit(req, res, (err) => {
          res.statusCode = err ? 500 : 200
          res.end()
        }),
      ),
    )
    expect((await fetch(url)).status).toBe(500)
  })
})
