/**
 * Charge and refund sequences against a model of the sliding window: every
 * decision a store makes equals the model's, where the model counts each
 * window as the sum of the charges made in it and not refunded. So a refund
 * never takes a count below zero (the model's sums cannot be), never lets a
 * request past `max` (every admission is the model's `fits`), and lands in
 * the window its charge went into.
 */
import { randomUUID } from 'node:crypto'
import fc from 'fast-check'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fits, MemoryStore, type RateLimitStore, RedisStore } from '../../../src/http/index.js'
import {
  dropRedisPrefix,
  HAS_REDIS,
  readyRedisClient,
  redisPrefix,
} from '../../helpers/services.js'

const policy = { name: 'default', max: 7, windowMs: 1000 }
const T0 = 1_800_000_000_000

type Op =
  | { readonly kind: 'charge'; readonly advance: number; readonly weight: number }
  | { readonly kind: 'refund'; readonly pick: number }

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('charge' as const),
    advance: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2500 })),
    weight: fc.integer({ min: 1, max: 3 }),
  }),
  fc.record({ kind: fc.constant('refund' as const), pick: fc.nat() }),
)

interface Charge {
  readonly window: number
  readonly weight: number
  refunded: boolean
}

/** The model's (previous, current) for the counter at `now`. */
function modelCounts(charges: readonly Charge[], now: number) {
  const x = Math.floor(now / policy.windowMs)
  let previous = 0
  let current = 0
  for (const c of charges) {
    if (c.refunded) continue
    if (c.window === x) current += c.weight
    else if (c.window === x - 1) previous += c.weight
  }
  return { previous, current, elapsedMs: now - x * policy.windowMs }
}

async function runSequence(store: RateLimitStore, ops: readonly Op[]): Promise<void> {
  const key = randomUUID()
  let now = T0
  const charges: Charge[] = []
  for (const o of ops) {
    if (o.kind === 'charge') {
      now += o.advance
      const m = modelCounts(charges, now)
      const expected = fits(
        policy.max,
        policy.windowMs,
        m.previous,
        m.current,
        m.elapsedMs,
        o.weight,
      )
      const states = await store.consume(key, { policies: [policy], weight: o.weight, now })
      expect(states[0]!.allowed).toBe(expected)
      expect(states[0]!.window).toBe(Math.floor(now / policy.windowMs))
      if (expected) charges.push({ window: states[0]!.window!, weight: o.weight, refunded: false })
    } else {
      const open = charges.filter((c) => !c.refunded)
      if (open.length === 0) continue
      const c = open[o.pick % open.length]!
      await store.refund!(key, { policies: [policy], weight: c.weight, windows: [c.window] })
      c.refunded = true
    }
  }
  // What is left: exactly as many unit requests fit as the model says.
  const m = modelCounts(charges, now)
  let expected = 0
  while (fits(policy.max, policy.windowMs, m.previous, m.current + expected, m.elapsedMs, 1))
    expected++
  let admitted = 0
  while (
    admitted <= policy.max &&
    (await store.consume(key, { policies: [policy], weight: 1, now }))[0]!.allowed
  )
    admitted++
  expect(admitted).toBe(expected)
}

describe('refund property: charge + refund sequences match the sliding-window model', () => {
  it('MemoryStore', async () => {
    const store = new MemoryStore()
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40 }), (ops) => runSequence(store, ops)),
      { numRuns: 300 },
    )
  })

  describe.skipIf(!HAS_REDIS)('RedisStore', () => {
    const prefix = redisPrefix(import.meta.url)
    let client: Redis
    beforeAll(async () => {
      client = await readyRedisClient()
    })
    afterAll(async () => {
      await dropRedisPrefix(prefix)
      client.disconnect()
    })

    it('RedisStore (caller clock)', async () => {
      const store = new RedisStore({ client, prefix, timeSource: 'caller' })
      await fc.assert(
        fc.asyncProperty(fc.array(op, { maxLength: 30 }), (ops) => runSequence(store, ops)),
        { numRuns: 40 },
      )
    })
  })
})
