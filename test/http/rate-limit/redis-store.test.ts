import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RedisStore } from '../../../src/http/index.js'
import { describeRateLimitStoreContract } from '../../../src/http/testing/index.js'
import {
  dropRedisPrefix,
  HAS_REDIS,
  readyRedisClient,
  redisPrefix,
} from '../../helpers/services.js'

const prefix = redisPrefix(import.meta.url)
const policy = { name: 'default', max: 10, windowMs: 60_000 }

describe.skipIf(!HAS_REDIS)('RedisStore', () => {
  let client: Redis
  beforeAll(async () => {
    client = await readyRedisClient()
  })
  afterAll(async () => {
    await dropRedisPrefix(prefix)
    client.disconnect()
  })

  describeRateLimitStoreContract(
    'RedisStore (caller clock)',
    async () => ({
      store: new RedisStore({ client, prefix, timeSource: 'caller' }),
      key: () => randomUUID(),
    }),
    { describe, it, expect },
    { refund: true },
  )

  it('makes exactly one round trip per request (EVALSHA) once the script is cached', async () => {
    const calls: string[] = []
    const counting = {
      evalsha: (...args: Parameters<Redis['evalsha']>) => {
        calls.push('evalsha')
        return client.evalsha(...args)
      },
      eval: (...args: Parameters<Redis['eval']>) => {
        calls.push('eval')
        return client.eval(...args)
      },
    }
    const store = new RedisStore({ client: counting, prefix })
    await store.consume(randomUUID(), { policies: [policy], weight: 1, now: 0 })
    calls.length = 0
    for (let i = 0; i < 20; i++) {
      await store.consume(randomUUID(), {
        policies: [policy, { name: 'burst', max: 2, windowMs: 1000 }],
        weight: 1,
        now: 0,
      })
    }
    expect(calls).toEqual(Array(20).fill('evalsha'))
  })

  it('reloads the script when Redis answers NOSCRIPT (after a restart or SCRIPT FLUSH)', async () => {
    const calls: string[] = []
    const flushed = {
      evalsha: async () => {
        calls.push('evalsha')
        throw new Error('NOSCRIPT No matching script. Please use EVAL.')
      },
      eval: (...args: Parameters<Redis['eval']>) => {
        calls.push('eval')
        return client.eval(...args)
      },
    }
    const store = new RedisStore({ client: flushed, prefix })
    const states = await store.consume(randomUUID(), { policies: [policy], weight: 1, now: 0 })
    expect(states[0]).toMatchObject({ allowed: true, remaining: 9 })
    expect(calls).toEqual(['evalsha', 'eval'])
  })

  it('uses the Redis clock by default, so callers with skewed clocks share one window', async () => {
    const store = new RedisStore({ client, prefix })
    const key = randomUUID()
    const skewed = [0, 1e12, 2e12, -5]
    for (let i = 0; i < 10; i++) {
      const states = await store.consume(key, {
        policies: [policy],
        weight: 1,
        now: skewed[i % 4]!,
      })
      expect(states[0]!.allowed).toBe(true)
    }
    expect((await store.consume(key, { policies: [policy], weight: 1, now: 0 }))[0]!.allowed).toBe(
      false,
    )
  })

  it('lets keys expire on their own after two windows at most', async () => {
    const store = new RedisStore({ client, prefix })
    const key = randomUUID()
    await store.consume(key, {
      policies: [{ name: 'default', max: 5, windowMs: 10_000 }],
      weight: 1,
      now: 0,
    })
    const ttl = await client.pttl(`${prefix}{${key}}:default`)
    expect(ttl).toBeGreaterThan(0)
    expect(ttl).toBeLessThanOrEqual(20_000)
  })

  it('expires a key at the end of the window after its last charge; later charges in a window only count', async () => {
    // Caller clock: `now` is what the script sees; Redis counts the TTL in real time.
    const store = new RedisStore({ client, prefix, timeSource: 'caller' })
    const key = randomUUID()
    const name = `${prefix}{${key}}:default`
    const w = 10_000
    const consume = (now: number) =>
      store.consume(key, { policies: [{ name: 'default', max: 100, windowMs: w }], weight: 1, now })
    const ttlNear = async (expected: number) => {
      const ttl = await client.pttl(name)
      expect(ttl).toBeLessThanOrEqual(expected)
      expect(ttl).toBeGreaterThan(expected - 1_000)
    }
    await consume(3 * w + 2_000) // first charge of window 3: lives to the end of window 4
    await ttlNear(2 * w - 2_000)
    await consume(3 * w + 9_000) // same window: counted, expiry unchanged (still the end of window 4)
    await ttlNear(2 * w - 2_000)
    expect(await client.hgetall(name)).toEqual({ w: '3', c: '2', p: '0' })
    const [state] = await consume(4 * w + 5_000) // next window: the count moves to `p`
    expect(state).toMatchObject({ remaining: expect.any(Number) })
    expect(await client.hgetall(name)).toEqual({ w: '4', c: '1', p: '2' })
    await ttlNear(2 * w - 5_000)
  })

  it('names keys `<prefix>{<client>}:<policy>` so one client’s policies share a cluster slot', async () => {
    const store = new RedisStore({ client, prefix })
    const key = randomUUID()
    await store.consume(key, {
      policies: [policy, { name: 'burst', max: 2, windowMs: 1000 }],
      weight: 1,
      now: 0,
    })
    const keys = (await client.keys(`${prefix}{${key}}:*`)).sort()
    expect(keys).toEqual([`${prefix}{${key}}:burst`, `${prefix}{${key}}:default`])
  })

  it('rejects a client without evalsha/eval with ERR_CONFIG_INVALID', () => {
    expect(() => new RedisStore({ client: {} as never })).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG_INVALID',
        message: expect.stringContaining('client'),
      }),
    )
  })
})
