/**
 * Issue 17, item 3: with the default `storeTimeoutMs: 100`, a loaded machine
 * made Redis calls pass 100 ms; each process then switched to its insurance
 * store with a whole `max` of its own (2 processes, max 50: up to 107
 * admitted) and stayed there after Redis answered again. Now a slow store
 * that still answers keeps the circuit closed, and a fallback spends only
 * the process's share, `ceil(max / instances)`, its shared admissions included.
 * Real Redis, behind a loopback proxy that delays or drops its answers.
 */
import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RateLimiter, RedisStore } from '../../src/http/index.js'
import { dropRedisPrefix, HAS_REDIS, readyRedisClient, redisPrefix } from '../helpers/services.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'

const prefix = redisPrefix(import.meta.url)
const quiet = { warn: () => {}, error: () => {} }

describe.skipIf(!HAS_REDIS)('a slow rate-limit store is not an outage', () => {
  let proxy: TcpProxy
  const clients: Redis[] = []
  beforeAll(async () => {
    proxy = await startTcpProxy('127.0.0.1', 6379)
  })
  afterAll(async () => {
    for (const c of clients) c.disconnect()
    await proxy.close()
    await dropRedisPrefix(prefix)
  })
  const client = async () => {
    const c = await readyRedisClient({ port: proxy.port, host: '127.0.0.1' })
    clients.push(c)
    return c
  }

  it('Redis answering after 150 ms (default storeTimeoutMs 100) keeps the circuit closed', async () => {
    const store = new RedisStore({ client: await client(), prefix })
    const limiter = new RateLimiter({ max: 50, store, logger: quiet })
    proxy.delay(150)
    try {
      for (let i = 0; i < 8; i++) {
        await limiter.consume('slow', limiter.globalPolicies)
        expect(limiter.degraded).toBe(false)
      }
    } finally {
      proxy.delay(0)
      await limiter.close()
    }
  })

  it('two processes (instances: 2) that lose Redis admit max between them, not max each', async () => {
    const key = randomUUID()
    const fleet = await Promise.all(
      [0, 1].map(
        async () =>
          new RateLimiter({
            max: 10,
            instances: 2,
            store: new RedisStore({ client: await client(), prefix }),
            storeTimeoutMs: 50,
            logger: quiet,
          }),
      ),
    )
    let admitted = 0
    // 4 through Redis, then Redis stops answering.
    for (let i = 0; i < 4; i++)
      if ((await fleet[i % 2]!.consume(key, fleet[0]!.globalPolicies))?.allowed) admitted++
    proxy.blackhole()
    try {
      for (let i = 0; i < 40; i++) {
        const l = fleet[i % 2]!
        if ((await l.consume(key, l.globalPolicies))?.allowed) admitted++
      }
      expect(fleet.every((l) => l.degraded)).toBe(true)
      expect(admitted).toBe(10)
    } finally {
      proxy.restore()
      for (const l of fleet) await l.close()
    }
  })
})
