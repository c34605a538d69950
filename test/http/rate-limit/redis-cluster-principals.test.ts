/**
 * The per-principal limits of `ProfileEnforcer` and the per-key tier limits
 * of `apiKeyAuth`, shared by two instances through `RedisStore` on a Redis
 * Cluster (ioredis `Cluster` client): each principal's quota holds exactly
 * across both, whichever instance a request reaches, and principals spread
 * over the primaries.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import type { Cluster } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { apiKeyAuth } from '../../../src/api-keys/index.js'
import { RedisStore } from '../../../src/http/index.js'
import { defineProfile, STANDARD } from '../../../src/profiles/index.js'
import { fixture } from '../../api-keys/helpers.js'
import {
  dropRedisClusterPrefix,
  HAS_REDIS_CLUSTER,
  readyRedisCluster,
  redisPrefix,
} from '../../helpers/services.js'
import { harness } from '../../profiles/harness.js'

const prefix = redisPrefix(import.meta.url)

describe.skipIf(!HAS_REDIS_CLUSTER)('per-principal limits on a Redis Cluster', () => {
  let client: Cluster
  beforeAll(async () => {
    client = await readyRedisCluster()
  })
  afterAll(async () => {
    await dropRedisClusterPrefix(prefix)
    client.disconnect()
  })

  it("ProfileEnforcer: a principal's quota is exact across two instances sharing the cluster", async () => {
    const profile = defineProfile(STANDARD, {
      rateLimit: { max: 10_000, windowMs: 60_000 },
      principalRateLimit: { max: 5, windowMs: 60_000 },
    })
    const store = new RedisStore({ client, prefix: `${prefix}enf:` })
    const a = await harness(profile, { enforcer: { rateLimitStore: store } })
    const b = await harness(profile, { enforcer: { rateLimitStore: store } })
    const principals = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank']
    for (const p of principals) {
      const statuses: number[] = []
      for (let i = 0; i < 12; i++) {
        const h = i % 2 === 0 ? a : b
        statuses.push((await h.send({ method: 'GET', url: '/me', auth: p })).statusCode)
      }
      expect(statuses.filter((s) => s === 200)).toHaveLength(5)
      expect(statuses.slice(5)).toEqual(Array(7).fill(429))
      const refused = await b.send({ method: 'GET', url: '/me', auth: p })
      expect(refused.json()).toMatchObject({ code: 'ERR_HTTP_RATE_LIMITED' })
    }
    // Principals' counters live on more than one primary.
    const masters = client.nodes('master')
    let holding = 0
    for (const node of masters) {
      const keys = await node.keys(`${prefix}enf:*`)
      if (keys.length > 0) holding++
    }
    expect(holding).toBeGreaterThan(1)
  })

  it("apiKeyAuth: a key's tier quota is exact across two instances sharing the cluster", async () => {
    const f = fixture()
    onTestFinished(() => f.close())
    const store = new RedisStore({ client, prefix: `${prefix}keys:` })
    const apps: FastifyInstance[] = []
    for (let i = 0; i < 2; i++) {
      const app = Fastify({ logger: false })
      onTestFinished(() => app.close())
      await app.register(apiKeyAuth, {
        manager: f.manager,
        rateLimit: { tiers: { free: { max: 3, windowMs: 60_000 } }, store },
      })
      app.get('/me', async () => ({ ok: true }))
      await app.ready()
      apps.push(app)
    }
    for (let k = 0; k < 4; k++) {
      const { key } = await f.manager.create({ name: `free-${k}`, tier: 'free' })
      const statuses: number[] = []
      for (let i = 0; i < 8; i++) {
        const res = await apps[i % 2]!.inject({
          url: '/me',
          headers: { authorization: `Bearer ${key}` },
        })
        statuses.push(res.statusCode)
      }
      expect(statuses).toEqual([200, 200, 200, 429, 429, 429, 429, 429])
    }
  })
})
