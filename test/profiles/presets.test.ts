import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../src/errors.js'
import {
  defineProfile,
  PROFILES,
  parseProfile,
  REGULATED,
  RESTRICTED,
  STANDARD,
} from '../../src/profiles/index.js'
import { rejection } from '../helpers/rejection.js'

// The seed's table, exactly.
const TABLE = {
  tlsRequired: [false, true, true],
  mtlsRequired: [false, false, true],
  minTlsVersion: ['1.2', '1.2', '1.2'],
  tokenExpiryMinutes: [60, 15, 5],
  introspection: ['authenticated', 'disabled', 'disabled'],
  maxQueryDepth: [15, 10, 5],
  maxQueryComplexity: [1000, 1000, 1000],
  maxBodySize: [1024 * 1024, 1024 * 1024, 512 * 1024],
  rateLimit: [
    { max: 100, windowMs: 60_000 },
    { max: 100, windowMs: 60_000 },
    { max: 100, windowMs: 60_000 },
  ],
  auditLevel: ['standard', 'enhanced', 'verbose'],
  errorDetail: ['safe', 'safe', 'minimal'],
  authRequired: [true, true, true],
} as const

describe('presets', () => {
  const presets = [STANDARD, REGULATED, RESTRICTED]
  for (const [setting, values] of Object.entries(TABLE)) {
    it(`${setting} matches the table`, () => {
      presets.forEach((p, i) => {
        expect(p[setting as keyof typeof p]).toEqual(values[i])
      })
    })
  }

  it('are frozen, nested quotas too', () => {
    for (const p of presets) {
      expect(Object.isFrozen(p)).toBe(true)
      expect(Object.isFrozen(p.rateLimit)).toBe(true)
      expect(() => {
        ;(p as { maxQueryDepth: number }).maxQueryDepth = 99
      }).toThrow(TypeError)
    }
  })

  it('get stricter from STANDARD to RESTRICTED on every numeric limit', () => {
    for (const key of [
      'maxQueryDepth',
      'maxAliases',
      'maxDirectives',
      'maxTokens',
      'maxBatchSize',
    ] as const) {
      expect(STANDARD[key]).toBeGreaterThanOrEqual(REGULATED[key])
      expect(REGULATED[key]).toBeGreaterThanOrEqual(RESTRICTED[key])
    }
  })

  it('are each valid under the schema and listed by name', () => {
    for (const p of presets) expect(parseProfile(p)).toEqual(p)
    expect(PROFILES.RESTRICTED).toBe(RESTRICTED)
  })
})

describe('defineProfile', () => {
  it('overrides fields, merges quotas in part, and keeps the base intact', () => {
    const custom = defineProfile(REGULATED, {
      name: 'INTERNAL',
      maxQueryDepth: 12,
      rateLimit: { max: 500 },
      persistedOperationsOnly: true,
    })
    expect(custom.maxQueryDepth).toBe(12)
    expect(custom.rateLimit).toEqual({ max: 500, windowMs: 60_000 })
    expect(custom.tlsRequired).toBe(true)
    expect(REGULATED.maxQueryDepth).toBe(10)
    expect(Object.isFrozen(custom)).toBe(true)
  })

  it.each([
    [{ maxQueryDepth: 0 }, 'maxQueryDepth'],
    [{ maxQueryDepth: 2.5 }, 'maxQueryDepth'],
    [{ introspection: 'sometimes' }, 'introspection'],
    [{ minTlsVersion: '1.0' }, 'minTlsVersion'],
    [{ rateLimit: { max: -1 } }, 'rateLimit.max'],
    [{ maxBodySize: '1mb' }, 'maxBodySize'],
    [{ maxQueryDeph: 3 }, 'maxQueryDeph'],
  ])('refuses %j with ERR_CONFIG_INVALID naming %s', async (overrides, field) => {
    const err = await rejection((async () => defineProfile(STANDARD, overrides as never))())
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).code).toBe('ERR_CONFIG_INVALID')
    expect((err as ConfigError).issues.map((i) => i.field)).toContain(field)
  })
})
