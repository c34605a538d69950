/**
 * `skipSuccessfulRequests` / `skipFailedRequests` / `requestWasSuccessful`
 * (express-rate-limit's habits) on the Fastify plugin and the Express-style
 * middleware: charged on arrival, refunded when the response finishes in the
 * skipped category, against the memory store and real Redis and PostgreSQL.
 */
import { randomUUID } from 'node:crypto'
import { request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express from 'express'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  MemoryStore,
  PostgresStore,
  type RateLimitConfig,
  type RateLimitStore,
  RedisStore,
  rateLimit,
  rateLimitMiddleware,
} from '../../../src/http/index.js'
import {
  createPgSchema,
  dropRedisPrefix,
  HAS_POSTGRES,
  HAS_REDIS,
  type PgSchema,
  readyRedisClient,
  redisPrefix,
} from '../../helpers/services.js'

const prefix = redisPrefix(import.meta.url)

/** A promise with its resolver outside. */
function gate() {
  let open!: () => void
  const opened = new Promise<void>((resolve) => {
    open = resolve
  })
  return { opened, open }
}

let apps: FastifyInstance[] = []
let servers: Server[] = []
afterEach(async () => {
  await Promise.all(apps.map((a) => a.close()))
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  apps = []
  servers = []
})

/** An app whose `/status/:code` answers that status and `/hold` waits for the test. */
async function app(options: RateLimitConfig, hold?: Promise<void>, arrived?: () => void) {
  const a = Fastify()
  apps.push(a)
  await a.register(rateLimit, options)
  a.get('/status/:code', async (request, reply) => {
    reply.code(Number((request.params as { code: string }).code))
    return { ok: true }
  })
  a.get('/hold', async () => {
    arrived?.()
    await hold
    return { ok: true }
  })
  await a.ready()
  return a
}

const statuses = async (a: FastifyInstance, paths: string[]) => {
  const out: number[] = []
  for (const url of paths) {
    out.push((await a.inject({ url })).statusCode)
    await a.rateLimiter.refundsSettled()
  }
  return out
}

describe('skipSuccessfulRequests / skipFailedRequests (Fastify)', () => {
  it('skipSuccessfulRequests: successful responses are refunded, failed ones count', async () => {
    const a = await app({ max: 2, windowMs: 60_000, skipSuccessfulRequests: true })
    expect(await statuses(a, Array(5).fill('/status/200'))).toEqual([200, 200, 200, 200, 200])
    expect(await statuses(a, ['/status/401', '/status/500', '/status/401', '/status/200'])).toEqual(
      [401, 500, 429, 429],
    )
  })

  it('skipFailedRequests: status >= 400 is refunded, successes count', async () => {
    const a = await app({ max: 2, windowMs: 60_000, skipFailedRequests: true })
    expect(await statuses(a, ['/status/404', '/status/500', '/status/400', '/status/404'])).toEqual(
      [404, 500, 400, 404],
    )
    expect(await statuses(a, ['/status/200', '/status/302', '/status/200'])).toEqual([
      200, 302, 429,
    ])
  })

  it('requestWasSuccessful decides what counts as a success (sync and async)', async () => {
    for (const test of [
      (_r: unknown, reply: { statusCode: number }) => reply.statusCode !== 401,
      async (_r: unknown, reply: { statusCode: number }) => reply.statusCode !== 401,
    ]) {
      const a = await app({
        max: 1,
        windowMs: 60_000,
        skipSuccessfulRequests: true,
        requestWasSuccessful: test,
      })
      expect(
        await statuses(a, ['/status/500', '/status/404', '/status/401', '/status/500']),
      ).toEqual([500, 404, 401, 429])
    }
  })

  it('a requestWasSuccessful that throws keeps the charge and is logged; the response is unaffected', async () => {
    const warnings: string[] = []
    const a = await app({
      max: 1,
      windowMs: 60_000,
      skipSuccessfulRequests: true,
      requestWasSuccessful: () => {
        throw new Error('boom')
      },
      logger: { warn: (_o: unknown, msg: string) => warnings.push(msg) } as never,
    })
    expect(await statuses(a, ['/status/200', '/status/200'])).toEqual([200, 429])
    expect(warnings).toEqual(['rate-limit requestWasSuccessful failed; the charge is kept'])
  })

  it('a refused (429) request is not refunded, with either option', async () => {
    const a = await app({
      max: 1,
      windowMs: 60_000,
      skipFailedRequests: true,
      // Counts only successes; the 429s are failures, but were never charged.
    })
    expect(await statuses(a, ['/status/200', '/status/200', '/status/200'])).toEqual([
      200, 429, 429,
    ])
  })

  it('refuses the options at registration when the store has no refund (ERR_CONFIG_INVALID), never charging silently', async () => {
    const memory = new MemoryStore()
    const noRefund: RateLimitStore = { consume: (key, request) => memory.consume(key, request) }
    for (const option of ['skipSuccessfulRequests', 'skipFailedRequests'] as const) {
      const a = Fastify()
      apps.push(a)
      await expect(
        a.register(rateLimit, { store: noRefund, [option]: true }),
      ).rejects.toMatchObject({
        code: 'ERR_CONFIG_INVALID',
        message: expect.stringContaining('refund'),
      })
      expect(() => rateLimitMiddleware({ store: noRefund, [option]: true })).toThrow(
        expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
      )
    }
    // The same store is fine without the options.
    const a = Fastify()
    apps.push(a)
    await a.register(rateLimit, { store: noRefund })
    await a.ready()
  })

  it('refuses requestWasSuccessful without a skip option (it would decide nothing)', async () => {
    const a = Fastify()
    apps.push(a)
    await expect(a.register(rateLimit, { requestWasSuccessful: () => true })).rejects.toMatchObject(
      {
        code: 'ERR_CONFIG_INVALID',
        message: expect.stringContaining('requestWasSuccessful'),
      },
    )
  })

  it('a refund goes to the window the charge was made in, never into the newer one (injected clock)', async () => {
    const T0 = 1_800_000_000_000 - (1_800_000_000_000 % 60_000)
    let now = T0 + 59_000
    const hold = gate()
    const arrivedGate = gate()
    const a = await app(
      { max: 10, windowMs: 60_000, skipSuccessfulRequests: true, clock: () => now },
      hold.opened,
      arrivedGate.open,
    )
    // Window 0: one request held (charged), nine failures.
    const held = a.inject({ url: '/hold' })
    await arrivedGate.opened
    expect(await statuses(a, Array(9).fill('/status/400'))).toEqual(Array(9).fill(400))
    // Halfway through window 1 the 10 of window 0 weigh 5: five failures fill it.
    now = T0 + 90_000
    expect(await statuses(a, Array(5).fill('/status/400'))).toEqual(Array(5).fill(400))
    expect(await statuses(a, ['/status/400'])).toEqual([429])
    // The held request succeeds now: its unit comes off window 0 (where it
    // weighs half), so a whole unit is still missing. Refunded into window 1,
    // it would have let one more through.
    hold.open()
    expect((await held).statusCode).toBe(200)
    await a.rateLimiter.refundsSettled()
    expect(await statuses(a, ['/status/400'])).toEqual([429])
  })

  it('a response cut off by the client counts as failed (real socket)', async () => {
    for (const [option, expectAfter] of [
      ['skipSuccessfulRequests', 429],
      ['skipFailedRequests', 200],
    ] as const) {
      const hold = gate()
      const reached = gate()
      const closed = gate()
      const a = Fastify()
      apps.push(a)
      await a.register(rateLimit, { max: 1, windowMs: 60_000, [option]: true })
      a.get('/hold', async (request) => {
        request.raw.socket.once('close', closed.open)
        reached.open()
        await hold.opened
        return { ok: true }
      })
      a.get('/ok', async () => ({ ok: true }))
      await a.listen({ port: 0, host: '127.0.0.1' })
      const { port } = a.server.address() as AddressInfo
      const req = httpRequest({ host: '127.0.0.1', port, path: '/hold' })
      req.on('error', () => {})
      req.end()
      await reached.opened
      req.destroy()
      await closed.opened
      // The handler answers 200 to a client that is gone: not a success.
      hold.open()
      await a.rateLimiter.refundsSettled()
      const after = await fetch(`http://127.0.0.1:${port}/ok`)
      expect(after.status).toBe(expectAfter)
    }
  })
})

describe('skipFailedRequests (Express 5 app)', () => {
  it('refunds 4xx/5xx answers of a real Express app; successes count', async () => {
    const limit = rateLimitMiddleware({ max: 2, windowMs: 60_000, skipFailedRequests: true })
    const e = express()
    e.use(limit)
    e.get('/status/:code', (req, res) => {
      res.status(Number(req.params.code)).json({ ok: true })
    })
    const server = e.listen(0, '127.0.0.1')
    servers.push(server)
    await new Promise<void>((resolve) => server.once('listening', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const got: number[] = []
    for (const path of [
      '/status/404',
      '/status/500',
      '/status/404',
      '/status/200',
      '/status/201',
      '/status/200',
      '/status/404',
    ]) {
      const r = await fetch(url + path)
      await r.arrayBuffer()
      got.push(r.status)
      await limit.limiter.refundsSettled()
    }
    // Unknown routes (Express's own 404) are failures too.
    expect(got).toEqual([404, 500, 404, 200, 201, 429, 429])
    await limit.limiter.close()
  })
})

describe.skipIf(!HAS_REDIS || !HAS_POSTGRES)('shared stores', () => {
  let client: Redis
  let db: PgSchema
  beforeAll(async () => {
    client = await readyRedisClient()
    db = await createPgSchema(import.meta.url)
    await new PostgresStore({ pool: db.pool, schema: db.schema, pruneIntervalMs: 0 }).migrate()
  })
  afterAll(async () => {
    await dropRedisPrefix(prefix)
    client.disconnect()
    await db.drop()
  })

  const stores: Array<[string, () => RateLimitStore]> = [
    ['memory', () => new MemoryStore()],
    ['Redis', () => new RedisStore({ client, prefix })],
    [
      'PostgreSQL',
      () => new PostgresStore({ pool: db.pool, schema: db.schema, pruneIntervalMs: 0 }),
    ],
  ]

  for (const [name, store] of stores) {
    it(`${name}: N concurrent requests never exceed max while their responses are pending; refunds follow the responses`, async () => {
      const id = randomUUID()
      const hold = gate()
      let arrived = 0
      const a = await app(
        {
          max: 5,
          windowMs: 60_000,
          skipSuccessfulRequests: true,
          store: store(),
          keyGenerator: () => id,
          // A loaded machine must not push calls into the insurance store.
          storeTimeoutMs: 10_000,
        },
        hold.opened,
        () => {
          arrived++
        },
      )
      let refused = 0
      const all = Array.from({ length: 12 }, () =>
        a.inject({ url: '/hold' }).then((r) => {
          if (r.statusCode === 429) refused++
          return r.statusCode
        }),
      )
      await until(() => arrived + refused === 12)
      expect([arrived, refused]).toEqual([5, 7])
      hold.open()
      expect((await Promise.all(all)).sort()).toEqual([
        ...Array(5).fill(200),
        ...Array(7).fill(429),
      ])
      await a.rateLimiter.refundsSettled()
      // Every success was refunded: five more fit, the sixth does not.
      expect(await statuses(a, Array(5).fill('/status/200'))).toEqual(Array(5).fill(200))
      const failures = await statuses(a, Array(6).fill('/status/500'))
      expect(failures).toEqual([...Array(5).fill(500), 429])
    })
  }

  it('a refund that fails (store down) leaves the response alone and is counted as a store failure', async () => {
    const broken = await readyRedisClient()
    const warnings: Array<{ msg: string; fields: unknown }> = []
    const id = randomUUID()
    const hold = gate()
    const arrivedGate = gate()
    const a = await app(
      {
        max: 5,
        windowMs: 60_000,
        skipSuccessfulRequests: true,
        store: new RedisStore({ client: broken, prefix }),
        keyGenerator: () => id,
        storeTimeoutMs: 10_000,
        circuitBreaker: { openAfterErrors: 1 },
        logger: { warn: (fields: unknown, msg: string) => warnings.push({ msg, fields }) } as never,
      },
      hold.opened,
      arrivedGate.open,
    )
    const held = a.inject({ url: '/hold' })
    await arrivedGate.opened
    // Redis goes away between the charge and the response.
    broken.disconnect()
    hold.open()
    expect((await held).statusCode).toBe(200)
    await a.rateLimiter.refundsSettled()
    expect(warnings.map((w) => w.msg)).toEqual([
      'rate-limit store failed',
      'rate-limit store circuit opened',
    ])
    expect(a.rateLimiter.storeCircuit).toBe('open')
  })
})

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setImmediate(r))
}
