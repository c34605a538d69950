/**
 * `failedAttempts.max` is the number of failed lookups a client gets per
 * window: with `max: 20`, 21 forged keys from one address reached the
 * database before the first 429 (the limiter only refused the attempt after
 * the one that used the last unit, and that attempt had read already).
 */
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { formatApiKey } from '../../src/api-keys/index.js'
import { codeOf, type Fixture, fixture } from '../api-keys/helpers.js'

let f: Fixture
afterEach(async () => {
  await f.close()
})

const forged = () => formatApiKey({ prefix: 'fraiseql_live', region: 'global' }, randomBytes)

describe('failedAttempts.max bounds the store reads of one client', () => {
  for (const max of [1, 3, 20]) {
    it(`max ${max}: exactly ${max} lookups of unknown ids reach the store, then 429`, async () => {
      f = fixture({ failedAttempts: { max, windowMs: 60_000 } })
      await f.manager.initialize()
      const reads0 = f.counted.calls.getKey ?? 0
      const codes: string[] = []
      for (let i = 0; i < max + 5; i++) {
        codes.push(await codeOf(f.manager.validate(forged(), { ip: '198.51.100.20' })))
      }
      expect(codes.slice(0, max)).toEqual(new Array(max).fill('ERR_API_KEY_UNKNOWN'))
      expect(codes.slice(max)).toEqual(new Array(5).fill('ERR_HTTP_RATE_LIMITED'))
      expect((f.counted.calls.getKey ?? 0) - reads0).toBe(max)
      // The 429 says when to come back: the window's end, not "now".
      const err = await f.manager.validate(forged(), { ip: '198.51.100.20' }).catch((e) => e)
      expect(err.info.retryAfterMs).toBeGreaterThan(0)
      expect(err.info.retryAfterMs).toBeLessThanOrEqual(60_000)
      // Another client is unaffected, and the block ends with the window.
      expect(await codeOf(f.manager.validate(forged(), { ip: '198.51.100.21' }))).toBe(
        'ERR_API_KEY_UNKNOWN',
      )
      f.clock.now += 60_000
      expect(await codeOf(f.manager.validate(forged(), { ip: '198.51.100.20' }))).toBe(
        'ERR_API_KEY_UNKNOWN',
      )
    })
  }
})
