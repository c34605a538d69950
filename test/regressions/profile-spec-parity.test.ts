/**
 * Issue 14, §5 (first bullet): where the profiles still differed from the
 * specification's table and APIs: `rateLimitEnabled`, `auditFieldAccess`,
 * audit level `minimal`, error detail `full` (development only),
 * `getProfile(name)`, and the TLS version in `validateRequestContext`.
 */
import Fastify from 'fastify'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  type AuditEvent,
  defineProfile,
  getProfile,
  PROFILES,
  ProfileEnforcer,
  parseProfile,
  REGULATED,
  RESTRICTED,
  STANDARD,
} from '../../src/profiles/index.js'
import { harness } from '../profiles/harness.js'

describe('getProfile(name)', () => {
  it('finds each preset by name, whatever the case', () => {
    expect(getProfile('standard')).toBe(STANDARD)
    expect(getProfile('Regulated')).toBe(REGULATED)
    expect(getProfile('RESTRICTED')).toBe(RESTRICTED)
    expect(getProfile(' restricted ')).toBe(RESTRICTED)
  })

  it('an unknown name is a typed error that lists the known ones', () => {
    let err: unknown
    try {
      getProfile('paranoid')
    } catch (e) {
      err = e
    }
    expect(err).toMatchObject({ code: 'ERR_PROFILE_UNKNOWN', known: Object.keys(PROFILES) })
    expect((err as Error).message).toMatch(/STANDARD, REGULATED, RESTRICTED/)
    expect(() => getProfile('')).toThrow(expect.objectContaining({ code: 'ERR_PROFILE_UNKNOWN' }))
    expect(() => getProfile('constructor')).toThrow(
      expect.objectContaining({ code: 'ERR_PROFILE_UNKNOWN' }),
    )
  })
})

describe('rateLimitEnabled', () => {
  it('is true in every preset', () => {
    for (const p of Object.values(PROFILES)) expect(p.rateLimitEnabled).toBe(true)
  })

  it('false removes the IP rate-limit step', async () => {
    const profile = defineProfile(STANDARD, {
      rateLimitEnabled: false,
      rateLimit: { max: 2 },
    })
    const enforcer = new ProfileEnforcer(profile)
    expect(enforcer.getMiddlewareStack().map((s) => s.name)).not.toContain('ipRateLimit')
    const h = await harness(profile)
    for (let i = 0; i < 5; i++) {
      expect((await h.send({ method: 'GET', url: '/health' })).statusCode).toBe(200)
    }
    expect(h.enforcer.registeredStack.map((s) => s.name)).not.toContain('ipRateLimit')
  })

  it('a profile written before the setting existed still parses (true)', () => {
    const { rateLimitEnabled: _r, auditFieldAccess: _a, ...old } = STANDARD
    expect(parseProfile({ ...old, name: 'OLD' })).toMatchObject({
      rateLimitEnabled: true,
      auditFieldAccess: false,
    })
  })
})

describe('auditFieldAccess', () => {
  it('is false in every preset', () => {
    for (const p of Object.values(PROFILES)) expect(p.auditFieldAccess).toBe(false)
  })

  it('true lists the Type.field coordinates a GraphQL request selected, never argument values', async () => {
    const profile = defineProfile(STANDARD, { auditFieldAccess: true, auditLevel: 'verbose' })
    const h = await harness(profile)
    const res = await h.gql(
      'query Q($n: Int) { user(id: "secret-42") { name ...F friends(first: $n) { id } } } fragment F on User { id }',
      { variables: { n: 1 } },
    )
    expect(res.statusCode).toBe(200)
    const event = h.audit.find((e) => e.operations.length > 0) as AuditEvent
    expect(event.fields).toEqual(['Query.user', 'User.name', 'User.id', 'User.friends'])
    expect(JSON.stringify(h.audit)).not.toContain('secret-42')
  })

  it('false leaves fields out of the record', async () => {
    const h = await harness(defineProfile(STANDARD, { auditLevel: 'verbose' }))
    await h.gql('{ hello }')
    expect(h.audit.at(-1)).not.toHaveProperty('fields')
  })
})

describe("auditLevel 'minimal'", () => {
  it('keeps authentication and access refusals only', async () => {
    const profile = defineProfile(STANDARD, {
      auditLevel: 'minimal',
      rateLimit: { max: 1000 },
      principalRateLimit: { max: 1000 },
    })
    const h = await harness(profile)
    await h.send({ method: 'GET', url: '/health', auth: null }) // 401
    await h.gql('mutation { setName(name: "bob") }')
    await h.gql('{ hello }')
    await h.gql('{ __schema { queryType { name } } }', { auth: null }) // 401 too (auth required)
    await h.gql('{ a: hello b: hello }') // fine
    const deep = `{ user { ${'friends { '.repeat(20)}id${' }'.repeat(20)} } }`
    await h.gql(deep) // a guard refusal: not kept at minimal
    expect(h.audit.map((e) => e.event)).toEqual(['auth.failed', 'auth.failed'])
  })
})

describe("errorDetail 'full'", () => {
  it('is refused in REGULATED- and RESTRICTED-derived profiles and in any profile that requires TLS', () => {
    for (const base of [REGULATED, RESTRICTED]) {
      expect(() => defineProfile(base, { errorDetail: 'full' })).toThrow(
        expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
      )
      const derived = defineProfile(base, { name: 'MINE', tlsRequired: false, mtlsRequired: false })
      expect(() => defineProfile(derived, { errorDetail: 'full' })).toThrow(/errorDetail/)
    }
    expect(() =>
      parseProfile({ ...STANDARD, name: 'X', tlsRequired: true, errorDetail: 'full' }),
    ).toThrow(/errorDetail/)
    expect(defineProfile(STANDARD, { errorDetail: 'full' }).errorDetail).toBe('full')
  })

  it('is refused by the enforcer outside development', () => {
    const dev = defineProfile(STANDARD, { errorDetail: 'full' })
    expect(() => new ProfileEnforcer(dev, { environment: 'production' })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
    )
    expect(() => new ProfileEnforcer(dev, { environment: 'development' })).not.toThrow()
  })

  it('in development, error messages reach the client (REST and GraphQL)', async () => {
    const dev = defineProfile(STANDARD, { errorDetail: 'full' })
    const h = await harness(dev, { enforcer: { environment: 'development' } })
    const crash = await h.send({ method: 'GET', url: '/crash' })
    expect(crash.statusCode).toBe(500)
    expect(crash.json()).toMatchObject({ code: 'ERR_INTERNAL' })
    expect(crash.json().detail).toMatch(/connection string/)
    const gql = await h.gql('{ secret }')
    expect(gql.body).toContain('db password')
  })

  it("safe still masks what full shows (the same app in production with 'safe')", async () => {
    const h = await harness(STANDARD)
    expect((await h.send({ method: 'GET', url: '/crash' })).body).not.toMatch(/connection string/)
  })
})

describe('validateRequestContext checks the TLS version', () => {
  it('against minTlsVersion, in both spellings, keeping the old call shape', () => {
    const tls13 = new ProfileEnforcer(defineProfile(RESTRICTED, { minTlsVersion: '1.3' }))
    const facts = { isTls: true, hasClientCert: true, isAuthenticated: true }
    expect(tls13.validateRequestContext(facts)).toEqual([])
    expect(tls13.validateRequestContext({ ...facts, tlsVersion: 'TLSv1.3' })).toEqual([])
    const low = tls13.checkRequestContext({ ...facts, tlsVersion: 'TLSv1.2' })
    expect(low).toEqual([
      expect.objectContaining({
        setting: 'minTlsVersion',
        code: 'ERR_PROFILE_TLS_REQUIRED',
        statusCode: 426,
      }),
    ])
    expect(low[0]?.message).toMatch(/TLS 1\.3/)
    expect(tls13.validateRequestContext({ ...facts, tlsVersion: '1.2' })).toHaveLength(1)
    const restricted = new ProfileEnforcer(RESTRICTED)
    expect(restricted.validateRequestContext({ ...facts, tlsVersion: 'TLSv1.2' })).toEqual([])
    expect(restricted.validateRequestContext({ ...facts, tlsVersion: 'TLSv1.1' })).toHaveLength(1)
    expect(restricted.validateRequestContext({ ...facts, tlsVersion: 'SSLv3' })).toHaveLength(1)
  })
})

describe('the audit record of a server without the test harness', () => {
  it('uses the default sink without throwing', async () => {
    const app = Fastify({ logger: false })
    onTestFinished(async () => {
      await app.close()
    })
    app.get('/x', async () => 'x')
    await new ProfileEnforcer(defineProfile(STANDARD, { auditLevel: 'minimal' })).applyTo(app)
    expect((await app.inject({ method: 'GET', url: '/x' })).statusCode).toBe(401)
  })
})
