/**
 * One test per profile setting per profile: each proves the setting is
 * enforced by what `applyTo` registered, on a real Fastify + mercurius app.
 */
import { buildSchema, parse } from 'graphql'
import { describe, expect, it } from 'vitest'
import { analyzeDocument } from '../../src/graphql/index.js'
import {
  defineProfile,
  REGULATED,
  RESTRICTED,
  type SecurityProfile,
  STANDARD,
} from '../../src/profiles/index.js'
import { graphqlCodes, harness, queryOfDepth, schema } from './harness.js'

const PROFILES: readonly SecurityProfile[] = [STANDARD, REGULATED, RESTRICTED]
const MINUTE = 60_000
const gqlSchema = buildSchema(schema)

for (const profile of PROFILES) {
  describe(`${profile.name}`, () => {
    it(`tlsRequired=${profile.tlsRequired}: plain HTTP is ${profile.tlsRequired ? 'answered 426' : 'served'}`, async () => {
      const h = await harness(profile)
      const res = await h.send({ method: 'GET', url: '/health', tls: false })
      if (profile.tlsRequired) {
        expect(res.statusCode).toBe(426)
        expect(res.headers.upgrade).toBe('TLS/1.2, HTTP/1.1')
        expect(res.json()).toMatchObject({ code: 'ERR_PROFILE_TLS_REQUIRED' })
      } else {
        expect(res.statusCode).toBe(200)
      }
      // An untrusted peer cannot vouch for TLS with a header.
      const spoofed = await h.send({
        method: 'GET',
        url: '/health',
        tls: true,
        remoteAddress: '203.0.113.9',
      })
      expect(spoofed.statusCode).toBe(profile.tlsRequired ? 426 : profile.mtlsRequired ? 403 : 200)
    })

    it(`mtlsRequired=${profile.mtlsRequired}: no client certificate is ${profile.mtlsRequired ? 'answered 403' : 'served'}`, async () => {
      const h = await harness(profile)
      const res = await h.send({ method: 'GET', url: '/health', cert: false })
      if (profile.mtlsRequired) {
        expect(res.statusCode).toBe(403)
        expect(res.json()).toMatchObject({ code: 'ERR_PROFILE_CLIENT_CERT_REQUIRED' })
      } else {
        expect(res.statusCode).toBe(200)
      }
    })

    it(`minTlsVersion=${profile.minTlsVersion}: serverOptions() sets the floor`, async () => {
      const h = await harness(profile)
      expect(h.enforcer.serverOptions().minVersion).toBe(`TLSv${profile.minTlsVersion}`)
    })

    it(`tokenExpiryMinutes=${profile.tokenExpiryMinutes}: an older token is answered 401`, async () => {
      const h = await harness(profile)
      const fresh = Date.now() - (profile.tokenExpiryMinutes - 1) * MINUTE
      const stale = Date.now() - (profile.tokenExpiryMinutes + 1) * MINUTE
      expect(
        (await h.send({ method: 'GET', url: '/health', auth: `alice:token:${fresh}` })).statusCode,
      ).toBe(200)
      const res = await h.send({ method: 'GET', url: '/health', auth: `alice:token:${stale}` })
      expect(res.statusCode).toBe(401)
      expect(res.json()).toMatchObject({ code: 'ERR_AUTH_TOKEN_EXPIRED' })
      expect(res.headers['www-authenticate']).toMatch(/error="invalid_token"/)
      // A token without an issue time cannot be proven fresh.
      expect(
        (await h.send({ method: 'GET', url: '/health', auth: 'alice:token' })).statusCode,
      ).toBe(401)
      // API keys have their own expiry: the token limit does not apply.
      expect(
        (await h.send({ method: 'GET', url: '/health', auth: `alice:apiKey:${stale}` })).statusCode,
      ).toBe(200)
    })

    it(`introspection=${profile.introspection}`, async () => {
      // A public GraphQL route, so an unauthenticated request reaches the guard.
      const h = await harness(profile, { enforcer: { publicPaths: ['/graphql'] } })
      const q = '{ __schema { queryType { name } } }'
      const authed = await h.gql(q)
      const anonymous = await h.gql(q, { auth: null })
      const typename = await h.gql('{ __typename }', { auth: null })
      expect(typename.statusCode).toBe(200)
      switch (profile.introspection) {
        case 'authenticated':
          expect(authed.json()).toMatchObject({
            data: { __schema: { queryType: { name: 'Query' } } },
          })
          expect(graphqlCodes(anonymous)).toContain('ERR_GRAPHQL_INTROSPECTION_DISABLED')
          break
        case 'disabled':
          expect(graphqlCodes(authed)).toContain('ERR_GRAPHQL_INTROSPECTION_DISABLED')
          expect(graphqlCodes(anonymous)).toContain('ERR_GRAPHQL_INTROSPECTION_DISABLED')
          break
        default:
          expect(authed.statusCode).toBe(200)
      }
    })

    it(`maxQueryDepth=${profile.maxQueryDepth}`, async () => {
      const h = await harness(profile)
      const ok = await h.gql(queryOfDepth(profile.maxQueryDepth))
      expect(ok.statusCode).toBe(200)
      expect(ok.json().errors).toBeUndefined()
      const deep = await h.gql(queryOfDepth(profile.maxQueryDepth + 1))
      expect(deep.statusCode).toBe(400)
      expect(graphqlCodes(deep)).toContain('ERR_GRAPHQL_DEPTH_LIMIT')
    })

    it(`maxQueryComplexity=${profile.maxQueryComplexity}`, async () => {
      const h = await harness(profile)
      const cost = (n: number) =>
        analyzeDocument(parse(`{ users(first: ${n}) { id } }`), { schema: gqlSchema }).complexity
      let n = 1
      while (cost(n + 1) <= profile.maxQueryComplexity) n++
      const ok = await h.gql(`{ users(first: ${n}) { id } }`)
      expect(ok.statusCode).toBe(200)
      const costly = await h.gql(`{ users(first: ${n + 1}) { id } }`)
      expect(costly.statusCode).toBe(400)
      expect(graphqlCodes(costly)).toContain('ERR_GRAPHQL_COMPLEXITY_LIMIT')
    })

    it(`maxBodySize=${profile.maxBodySize}`, async () => {
      const h = await harness(profile)
      const body = (n: number) => JSON.stringify({ pad: 'x'.repeat(n - 10) })
      const fits = body(profile.maxBodySize)
      expect(Buffer.byteLength(fits)).toBe(profile.maxBodySize)
      const ok = await h.send({
        method: 'POST',
        url: '/echo',
        payload: fits,
        headers: { 'content-type': 'application/json' },
      })
      expect(ok.statusCode).toBe(200)
      const big = await h.send({
        method: 'POST',
        url: '/echo',
        payload: body(profile.maxBodySize + 1),
        headers: { 'content-type': 'application/json' },
      })
      expect(big.statusCode).toBe(413)
    })

    it(`rateLimit=${profile.rateLimit.max}/${profile.rateLimit.windowMs}ms per IP, before authentication`, async () => {
      const h = await harness(profile)
      // Unauthenticated requests count too: credential guessing is limited.
      for (let i = 0; i < profile.rateLimit.max; i++) {
        const res = await h.send({ method: 'GET', url: '/health', auth: 'invalid' })
        expect(res.statusCode).toBe(401)
      }
      const res = await h.send({ method: 'GET', url: '/health' })
      expect(res.statusCode).toBe(429)
      expect(res.headers['retry-after']).toBeDefined()
    })

    it(`auditLevel=${profile.auditLevel}`, async () => {
      const h = await harness(profile)
      await h.send({ method: 'GET', url: '/health', auth: null })
      await h.gql('mutation { setName(name: "bob") }')
      await h.gql('{ hello }')
      const events = h.audit.map((e) => e.event)
      expect(events).toContain('auth.failed')
      expect(events.includes('graphql.mutation')).toBe(profile.auditLevel !== 'standard')
      expect(events.includes('graphql.query')).toBe(profile.auditLevel === 'verbose')
      const serialized = JSON.stringify(h.audit)
      expect(serialized).not.toContain('bob')
      expect(serialized).not.toContain('Bearer')
    })

    it(`errorDetail=${profile.errorDetail}`, async () => {
      const h = await harness(profile)
      const client = await h.send({ method: 'GET', url: '/client-error' })
      const crash = await h.send({ method: 'GET', url: '/crash' })
      expect(crash.statusCode).toBe(500)
      expect(crash.body).not.toContain('hunter2')
      const gqlCrash = await h.gql('{ secret }')
      expect(gqlCrash.body).not.toContain('hunter2')
      const typo = await h.gql('{ helo }')
      expect(typo.body).not.toMatch(/Did you mean/)
      if (profile.errorDetail === 'minimal') {
        expect(client.json()).toMatchObject({
          detail: 'Request failed',
          requestId: expect.any(String),
        })
        expect(client.body).not.toContain('widget')
        expect(crash.json()).toMatchObject({ requestId: expect.any(String) })
        // Rejections by guards are masked too.
        const unauth = await h.send({ method: 'GET', url: '/health', auth: null })
        expect(unauth.json()).toMatchObject({ detail: 'Request failed', code: 'ERR_AUTH_REQUIRED' })
      } else {
        expect(client.json()).toMatchObject({ detail: 'the widget id is malformed' })
      }
    })

    it(`authRequired=${profile.authRequired}: no credentials is answered 401 with a challenge`, async () => {
      const h = await harness(profile)
      const res = await h.send({ method: 'GET', url: '/health', auth: null })
      expect(res.statusCode).toBe(401)
      expect(res.headers['www-authenticate']).toBe('Bearer realm="api"')
      expect((await h.send({ method: 'GET', url: '/public/ping', auth: null })).statusCode).toBe(
        200,
      )
    })

    it(`maxAliases=${profile.maxAliases}`, async () => {
      const h = await harness(profile)
      const aliases = (n: number) =>
        `{ ${Array.from({ length: n }, (_, i) => `a${i}: __typename`).join(' ')} }`
      expect((await h.gql(aliases(profile.maxAliases))).statusCode).toBe(200)
      expect(graphqlCodes(await h.gql(aliases(profile.maxAliases + 1)))).toContain(
        'ERR_GRAPHQL_ALIAS_LIMIT',
      )
    })

    it(`maxDirectives=${profile.maxDirectives}`, async () => {
      const h = await harness(profile)
      const directives = (n: number) => `{ hello ${'@include(if: true) '.repeat(n)}}`
      expect(graphqlCodes(await h.gql(directives(profile.maxDirectives + 1)))).toContain(
        'ERR_GRAPHQL_DIRECTIVE_LIMIT',
      )
    })

    it(`maxTokens=${profile.maxTokens}`, async () => {
      const h = await harness(profile)
      const res = await h.gql(`{ ${'hello '.repeat(profile.maxTokens)}}`)
      expect(res.statusCode).toBe(400)
      expect(graphqlCodes(res)).toContain('ERR_GRAPHQL_TOKEN_LIMIT')
    })

    it(`maxBatchSize=${profile.maxBatchSize}`, async () => {
      const h = await harness(profile)
      const batch = (n: number) => Array.from({ length: n }, () => ({ query: '{ hello }' }))
      expect((await h.gql(batch(profile.maxBatchSize))).statusCode).toBe(200)
      const res = await h.gql(batch(profile.maxBatchSize + 1))
      expect(res.statusCode).toBe(400)
      expect(res.json()).toMatchObject({ code: 'ERR_GRAPHQL_BATCH_TOO_LARGE' })
    })

    it(`principalRateLimit=${profile.principalRateLimit.max} per principal (costRateLimit=${profile.costRateLimit})`, async () => {
      const tiny = defineProfile(profile, {
        rateLimit: { max: 10_000 },
        principalRateLimit: { max: 5 },
      })
      const h = await harness(tiny)
      for (let i = 0; i < 5; i++)
        expect((await h.send({ method: 'GET', url: '/health' })).statusCode).toBe(200)
      expect((await h.send({ method: 'GET', url: '/health' })).statusCode).toBe(429)
      // Another principal has its own budget.
      expect((await h.send({ method: 'GET', url: '/health', auth: 'bob' })).statusCode).toBe(200)
    })
  })
}

describe('cost-aware rate limiting', () => {
  it('charges a GraphQL operation its cost: cheap and expensive queries share one budget', async () => {
    const profile = defineProfile(REGULATED, {
      costRateLimit: true,
      principalRateLimit: { max: 1000 },
    })
    const h = await harness(profile)
    const expensive = '{ users(first: 100) { id name } }'
    const cost = analyzeDocument(parse(expensive), { schema: gqlSchema }).complexity
    expect(cost).toBeGreaterThan(100)
    const runs = Math.floor(1000 / cost)
    for (let i = 0; i < runs; i++) expect((await h.gql(expensive)).statusCode).toBe(200)
    const over = await h.gql(expensive)
    expect(over.statusCode).toBe(429)
    // The budget is spent for cheap queries too, and for REST.
    expect((await h.send({ method: 'GET', url: '/health' })).statusCode).toBeLessThan(500)
  })
})

describe('persistedOperationsOnly', () => {
  it('runs manifest operations only and refuses registration', async () => {
    const { PersistedOperations } = await import('../../src/graphql/index.js')
    const known = '{ hello }'
    const ops = new PersistedOperations({ [PersistedOperations.hash(known)]: known })
    const profile = defineProfile(RESTRICTED, { persistedOperationsOnly: true })
    const h = await harness(profile, { enforcer: { persistedOperations: ops } })
    const byHash = await h.send({
      method: 'POST',
      url: '/graphql',
      payload: {
        extensions: { persistedQuery: { version: 1, sha256Hash: PersistedOperations.hash(known) } },
      },
    })
    expect(byHash.json()).toMatchObject({ data: { hello: 'world' } })
    const unknown = await h.gql('{ user { id } }')
    expect(unknown.json().data ?? null).toBeNull()
    expect(unknown.statusCode).toBeGreaterThanOrEqual(400)
  })

  it('is refused at construction without a manifest', async () => {
    const { ProfileEnforcer } = await import('../../src/profiles/index.js')
    expect(
      () => new ProfileEnforcer(defineProfile(RESTRICTED, { persistedOperationsOnly: true })),
    ).toThrow(/persistedOperations/)
  })
})
