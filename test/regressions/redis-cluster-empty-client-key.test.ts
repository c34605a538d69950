/**
 * Regression: on a Redis Cluster, a request whose client key is empty (a
 * `keyGenerator` that returns '' for a missing header) made the key
 * `<prefix>{}:<policy>`. Redis does not take `{}` as a hash tag, so the
 * policies' keys fell into different slots and every such request failed
 * with CROSSSLOT (and went to the insurance store). An empty key now uses
 * the tag `{:}`, and a prefix with braces is refused.
 */
import type { Cluster } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RedisStore } from '../../src/http/index.js'
import {
  dropRedisClusterPrefix,
  HAS_REDIS_CLUSTER,
  readyRedisCluster,
  redisPrefix,
} from '../helpers/services.js'

const prefix = redisPrefix(import.meta.url)

describe.skipIf(!HAS_REDIS_CLUSTER)('an empty client key on a Redis Cluster', () => {
  let client: Cluster
  beforeAll(async () => {
    client = await readyRedisCluster()
  })
  afterAll(async () => {
    await dropRedisClusterPrefix(prefix)
    client.disconnect()
  })

  it('is counted in one slot, with several policies', async () => {
    const store = new RedisStore({ client, prefix })
    const policies = [
      { name: 'default', max: 2, windowMs: 60_000 },
      { name: 'burst', max: 5, windowMs: 1000 },
      { name: 'hour', max: 100, windowMs: 3_600_000 },
    ]
    const first = await store.consume('', { policies, weight: 1, now: 0 })
    expect(first.map((s) => s.allowed)).toEqual([true, true, true])
    await store.consume('', { policies, weight: 1, now: 0 })
    const third = await store.consume('', { policies, weight: 1, now: 0 })
    expect(third[0]!.allowed).toBe(false)
  })

  it('a prefix with braces is refused: it would move the hash tag', () => {
    expect(() => new RedisStore({ client, prefix: 'rl{x}:' })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
    )
  })
})
