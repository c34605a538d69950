/**
 * Issue 14, §1: `tokenExpiryMinutes` accepted a token whose `issuedAt` lies
 * in the future (a token "issued" a year ahead stayed fresh for a year).
 * `issuedAt` later than now + `clockToleranceMs` (60 s by default, as jose's
 * `clockTolerance`) is refused with 401, as is one that is not a finite time;
 * the boundaries are exact under an injected clock.
 */
import Fastify from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  type AuditEvent,
  type AuthContext,
  ProfileEnforcer,
  type ProfileEnforcerOptions,
  STANDARD,
} from '../../src/profiles/index.js'

const NOW = 1_700_000_000_000
const MINUTE = 60_000

/** An app whose only credential is a token issued at `issuedAt` (from the test). */
async function app(options: ProfileEnforcerOptions = {}, publicPaths: string[] = []) {
  let issuedAt: unknown
  const audit: AuditEvent[] = []
  const a = Fastify({ logger: false })
  onTestFinished(async () => {
    await a.close()
  })
  const enforcer = new ProfileEnforcer(STANDARD, {
    authenticate: () =>
      ({ principal: 'alice', kind: 'token', permissions: [], issuedAt }) as AuthContext,
    audit: (e) => {
      audit.push(e)
    },
    publicPaths,
    ...options,
  })
  a.get('/me', async (request) => ({ auth: request.auth }))
  a.get('/public/me', async (request) => ({ auth: request.auth }))
  await enforcer.applyTo(a)
  await a.ready()
  return {
    audit,
    async get(at: unknown, url = '/me') {
      issuedAt = at
      return a.inject({ method: 'GET', url })
    },
  }
}

describe('a token issued in the future is refused', () => {
  it('a token "issued" a year ahead, with the system clock: 401', async () => {
    const a = await app()
    const res = await a.get(Date.now() + 365 * 24 * 60 * MINUTE)
    expect(res.statusCode).toBe(401)
    expect(res.json()).toMatchObject({ code: 'ERR_AUTH_TOKEN_NOT_YET_VALID' })
    expect(res.headers['www-authenticate']).toMatch(/error="invalid_token"/)
  })

  it('the exact boundaries, with an injected clock and the default 60 s tolerance', async () => {
    const a = await app({ clock: () => NOW })
    expect((await a.get(NOW + MINUTE)).statusCode).toBe(200)
    expect((await a.get(new Date(NOW + MINUTE))).statusCode).toBe(200)
    const ahead = await a.get(NOW + MINUTE + 1)
    expect(ahead.statusCode).toBe(401)
    expect(ahead.json()).toMatchObject({ code: 'ERR_AUTH_TOKEN_NOT_YET_VALID' })
    // The expiry side is exact too (no tolerance there: the profile's age is the limit).
    expect((await a.get(NOW - 60 * MINUTE)).statusCode).toBe(200)
    const old = await a.get(NOW - 60 * MINUTE - 1)
    expect(old.statusCode).toBe(401)
    expect(old.json()).toMatchObject({ code: 'ERR_AUTH_TOKEN_EXPIRED' })
  })

  it('clockToleranceMs moves the future boundary; 0 allows no skew at all', async () => {
    const strict = await app({ clock: () => NOW, clockToleranceMs: 0 })
    expect((await strict.get(NOW)).statusCode).toBe(200)
    expect((await strict.get(NOW + 1)).statusCode).toBe(401)
    const loose = await app({ clock: () => NOW, clockToleranceMs: 5 * MINUTE })
    expect((await loose.get(NOW + 5 * MINUTE)).statusCode).toBe(200)
    expect((await loose.get(NOW + 5 * MINUTE + 1)).statusCode).toBe(401)
  })

  for (const [what, value] of [
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity', Number.NEGATIVE_INFINITY],
    ['an invalid Date', new Date('not a date')],
    ['a string', String(NOW)],
    ['absent', undefined],
  ] as const) {
    it(`an issuedAt that is not a finite time (${what}) is refused with 401`, async () => {
      const a = await app({ clock: () => NOW })
      const res = await a.get(value)
      expect(res.statusCode).toBe(401)
      expect(res.json()).toMatchObject({ code: 'ERR_AUTH_TOKEN_EXPIRED' })
    })
  }

  it('on a public path a future token is anonymous, not an identity', async () => {
    const a = await app({ clock: () => NOW }, ['/public/*'])
    const res = await a.get(NOW + 10 * MINUTE, '/public/me')
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ auth: null })
  })

  it('the audit time comes from the injected clock', async () => {
    const a = await app({ clock: () => NOW })
    await a.get(NOW + 10 * MINUTE)
    expect(a.audit.at(-1)).toMatchObject({
      event: 'auth.failed',
      code: 'ERR_AUTH_TOKEN_NOT_YET_VALID',
      time: new Date(NOW).toISOString(),
    })
  })

  it('a bad clockToleranceMs or clock is ERR_CONFIG_INVALID', () => {
    expect(() => new ProfileEnforcer(STANDARD, { clockToleranceMs: -1 })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
    )
    expect(() => new ProfileEnforcer(STANDARD, { clock: 42 as never })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
    )
  })
})
