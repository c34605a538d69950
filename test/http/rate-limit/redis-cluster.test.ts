/**
 * RedisStore on a three-primary Redis Cluster through ioredis's `Cluster`
 * client (`.ci/run` starts it on loopback): the store contract, exactness
 * with two instances, and an outage of every node behind proxies. All keys
 * of one call carry the `{client}` hash tag, so the script's keys share a slot.
 */
import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Cluster } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { RedisStore, rateLimit } from '../../../src/http/index.js'
import { describeRateLimitStoreContract } from '../../../src/http/testing/index.js'
import {
  dropRedisClusterPrefix,
  HAS_REDIS_CLUSTER,
  REDIS_CLUSTER_PORTS,
  readyRedisCluster,
  redisPrefix,
} from '../../helpers/services.js'
import { startTcpProxy, type TcpProxy } from '../../helpers/tcp-proxy.js'

const prefix = redisPrefix(import.meta.url)
const byHeader = {
  keyGenerator: (r: { headers: Record<string, unknown> }) => String(r.headers['x-client']),
}

describe.skipIf(!HAS_REDIS_CLUSTER)('RedisStore on a Redis Cluster', () => {
  const clients: Cluster[] = []
  const cluster = async (options?: Parameters<typeof readyRedisCluster>[0]) => {
    const c = await readyRedisCluster(options)
    clients.push(c)
    return c
  }
  let apps: FastifyInstance[] = []
  afterEach(async () => {
    await Promise.all(apps.map((a) => a.close()))
    apps = []
  })
  afterAll(async () => {
    for (const c of clients) c.disconnect()
    await dropRedisClusterPrefix(prefix)
  })

  let shared: Cluster
  beforeAll(async () => {
    shared = await cluster()
  })

  describeRateLimitStoreContract(
    'RedisStore (Cluster client, caller clock)',
    async () => ({
      store: new RedisStore({ client: shared, prefix, timeSource: 'caller' }),
      key: () => randomUUID(),
    }),
    { describe, it, expect },
    { refund: true },
  )

  it('spreads clients over the primaries while one client’s policies share a slot', async () => {
    const store = new RedisStore({ client: shared, prefix })
    const policies = [
      { name: 'default', max: 10, windowMs: 60_000 },
      { name: 'burst', max: 3, windowMs: 1000 },
    ]
    const nodesUsed = new Set<string>()
    for (let i = 0; i < 30; i++) {
      const key = randomUUID()
      await store.consume(key, { policies, weight: 1, now: 0 })
      const slots = await Promise.all(
        policies.map((p) => shared.cluster('KEYSLOT', `${prefix}{${key}}:${p.name}`)),
      )
      expect(new Set(slots).size).toBe(1)
      nodesUsed.add(String(Number(slots[0]) < 5461 ? 0 : Number(slots[0]) < 10923 ? 1 : 2))
    }
    expect(nodesUsed.size).toBe(3)
  })

  it('an empty client key still keeps its policies in one slot', async () => {
    const store = new RedisStore({ client: shared, prefix })
    const states = await store.consume('', {
      policies: [
        { name: 'default', max: 2, windowMs: 60_000 },
        { name: 'burst', max: 1, windowMs: 1000 },
      ],
      weight: 1,
      now: 0,
    })
    expect(states.map((s) => s.allowed)).toEqual([true, true])
    const refused = await store.consume('', {
      policies: [{ name: 'burst', max: 1, windowMs: 1000 }],
      weight: 1,
      now: 0,
    })
    expect(refused[0]!.allowed).toBe(false)
  })

  it('rejects a prefix with braces (it would hold the hash tag) with ERR_CONFIG_INVALID', () => {
    expect(() => new RedisStore({ client: shared, prefix: 'app{1}:' })).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG_INVALID',
        message: expect.stringContaining('prefix'),
      }),
    )
  })

  it('two instances with their own Cluster clients admit exactly max of 200 concurrent requests', async () => {
    const make = async () => {
      const app = Fastify()
      apps.push(app)
      await app.register(rateLimit, {
        max: 50,
        store: new RedisStore({ client: await cluster(), prefix }),
        // Exactness is the shared store's: a loaded machine must not push a
        // call past the default 100 ms and decide it on the local insurance store.
        storeTimeoutMs: 30_000,
        ...byHeader,
      })
      app.get('/', async () => 'ok')
      await app.ready()
      return app
    }
    const [a, b] = [await make(), await make()]
    const key = randomUUID()
    const statuses = (
      await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          (i % 2 === 0 ? a : b).inject({ url: '/', headers: { 'x-client': key } }),
        ),
      )
    ).map((r) => r.statusCode)
    expect(statuses.filter((s) => s === 200)).toHaveLength(50)
  })

  describe('outage of every node', () => {
    const proxies: TcpProxy[] = []
    afterAll(async () => {
      for (const p of proxies) await p.close()
    })

    it('falls back to the insurance store, opens the circuit, and resumes shared limiting when the nodes answer', async () => {
      for (const port of REDIS_CLUSTER_PORTS) proxies.push(await startTcpProxy('127.0.0.1', port))
      // The nodes announce their own ports; natMap sends the client through the proxies.
      const natMap = Object.fromEntries(
        REDIS_CLUSTER_PORTS.map((port, i) => [
          `127.0.0.1:${port}`,
          { host: '127.0.0.1', port: proxies[i]!.port },
        ]),
      )
      const client = await cluster({ natMap })
      let now = 1_800_000_000_000
      const app = Fastify()
      apps.push(app)
      await app.register(rateLimit, {
        max: 3,
        store: new RedisStore({ client, prefix }),
        storeTimeoutMs: 50,
        circuitBreaker: { openAfterTimeouts: 2, openAfterErrors: 2 },
        clock: () => now,
        logger: { warn: () => {}, error: () => {} },
        ...byHeader,
      })
      app.get('/', async () => 'ok')
      const key = randomUUID()
      const hit = () => app.inject({ url: '/', headers: { 'x-client': key } })
      expect((await hit()).statusCode).toBe(200)
      for (const p of proxies) p.blackhole()
      const during = [await hit(), await hit(), await hit()]
      expect(during.map((r) => r.statusCode)).toEqual([200, 200, 429])
      expect(app.rateLimiter.degraded).toBe(true)
      for (const p of proxies) p.restore()
      await expect
        .poll(async () => client.ping().catch(() => ''), { timeout: 10_000, interval: 50 })
        .toBe('PONG')
      now += 1000
      await expect
        .poll(
          async () => {
            now += 1000
            await hit()
            return app.rateLimiter.storeCircuit
          },
          { timeout: 10_000, interval: 50 },
        )
        .toBe('closed')
      // The shared counter still holds the request made before the outage (and the probes).
      expect((await hit()).headers.ratelimit).toMatch(/^"default";r=\d;/)
    })
  })
})
