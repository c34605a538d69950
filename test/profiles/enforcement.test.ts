/**
 * One test per profile setting per profile: each proves the setting is
 * enforced by what `applyTo` registered, on a real Fastify app; each
 * GraphQL setting on every GraphQL server the enforcer protects (mercurius,
 * graphql-yoga and Apollo Server, mounted as their users mount them).
 */

import { SpanStatusCode } from '@opentelemetry/api'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import type { LightMyRequestResponse } from 'fastify'
import { buildSchema, parse } from 'graphql'
import { describe, expect, it } from 'vitest'
import { SecurityError } from '../../src/errors.js'
import { analyzeDocument, GraphQLTracer } from '../../src/graphql/index.js'
import {
  type AuditEvent,
  defineProfile,
  REGULATED,
  RESTRICTED,
  type SecurityProfile,
  STANDARD,
} from '../../src/profiles/index.js'
import { graphqlCodes, harness, queryOfDepth, SERVERS, schema } from './harness.js'

const PROFILES: readonly SecurityProfile[] = [STANDARD, REGULATED, RESTRICTED]
const MINUTE = 60_000
/** The enforcer's injected time in every test that depends on time: no boundary sits near Date.now(). */
const T0 = 1_800_000_000_000

/**
 * A refusal's HTTP answer: its status and the `code` of the typed error
 * behind it, from the problem body (a refusal before GraphQL runs) or from
 * each GraphQL error's `extensions.code`.
 */
function expectRefused(res: LightMyRequestResponse, status: number, code: string): void {
  expect(res.statusCode, res.body).toBe(status)
  const body = res.json() as { code?: unknown }
  if (body.code !== undefined) expect(body).toMatchObject({ code })
  else expect(graphqlCodes(res)).toEqual([code])
}
const gqlSchema = buildSchema(schema)

for (const profile of PROFILES) {
  describe(`${profile.name}`, () => {
    it(`tlsRequired=${profile.tlsRequired}: plain HTTP is ${profile.tlsRequired ? 'answered 426' : 'served'}`, async () => {
      const h = await harness(profile)
      const res = await h.send({ method: 'GET', url: '/health', tls: false })
      if (profile.tlsRequired) {
        expectRefused(res, 426, 'ERR_PROFILE_TLS_REQUIRED')
        expect(res.headers.upgrade).toBe('TLS/1.2, HTTP/1.1')
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
      if (profile.tlsRequired) expectRefused(spoofed, 426, 'ERR_PROFILE_TLS_REQUIRED')
      else if (profile.mtlsRequired) expectRefused(spoofed, 403, 'ERR_PROFILE_CLIENT_CERT_REQUIRED')
      else expect(spoofed.statusCode).toBe(200)
    })

    it(`mtlsRequired=${profile.mtlsRequired}: no client certificate is ${profile.mtlsRequired ? 'answered 403' : 'served'}`, async () => {
      const h = await harness(profile)
      const res = await h.send({ method: 'GET', url: '/health', cert: false })
      if (profile.mtlsRequired) {
        expectRefused(res, 403, 'ERR_PROFILE_CLIENT_CERT_REQUIRED')
      } else {
        expect(res.statusCode).toBe(200)
      }
    })

    it(`minTlsVersion=${profile.minTlsVersion}: serverOptions() sets the floor`, async () => {
      const h = await harness(profile)
      expect(h.enforcer.serverOptions().minVersion).toBe(`TLSv${profile.minTlsVersion}`)
    })

    it(`tokenExpiryMinutes=${profile.tokenExpiryMinutes}: an older token is answered 401`, async () => {
      const h = await harness(profile, { enforcer: { clock: () => T0 } })
      // The boundary to the millisecond, on the enforcer's clock: as old as
      // the limit is still fresh, one millisecond older is expired.
      const fresh = T0 - profile.tokenExpiryMinutes * MINUTE
      const stale = fresh - 1
      expect(
        (await h.send({ method: 'GET', url: '/health', auth: `alice:token:${fresh}` })).statusCode,
      ).toBe(200)
      const res = await h.send({ method: 'GET', url: '/health', auth: `alice:token:${stale}` })
      expectRefused(res, 401, 'ERR_AUTH_TOKEN_EXPIRED')
      expect(res.headers['www-authenticate']).toMatch(/error="invalid_token"/)
      // A token without an issue time cannot be proven fresh.
      expectRefused(
        await h.send({ method: 'GET', url: '/health', auth: 'alice:token' }),
        401,
        'ERR_AUTH_TOKEN_EXPIRED',
      )
      // API keys have their own expiry: the token limit does not apply.
      expect(
        (await h.send({ method: 'GET', url: '/health', auth: `alice:apiKey:${stale}` })).statusCode,
      ).toBe(200)
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
      if (profile.errorDetail === 'minimal') expectRefused(big, 413, 'ERR_HTTP_BODY_TOO_LARGE')
      else {
        // The documented 413 shape (docs/http.md): the limit, no code field.
        expect(big.statusCode).toBe(413)
        expect(big.json()).toMatchObject({
          detail: 'Request body too large',
          max_size: profile.maxBodySize,
        })
      }
    })

    it(`rateLimit=${profile.rateLimit.max}/${profile.rateLimit.windowMs}ms per IP, before authentication`, async () => {
      let now = T0
      const h = await harness(profile, { enforcer: { clock: () => now } })
      // Unauthenticated requests count too: credential guessing is limited.
      for (let i = 0; i < profile.rateLimit.max; i++) {
        expectRefused(
          await h.send({ method: 'GET', url: '/health', auth: 'invalid' }),
          401,
          'ERR_AUTH_REQUIRED',
        )
      }
      const res = await h.send({ method: 'GET', url: '/health' })
      expectRefused(res, 429, 'ERR_HTTP_RATE_LIMITED')
      // Retry-After is delay-seconds (RFC 9110 §10.2.3), the same figure as the body's.
      const retryAfter = res.headers['retry-after']
      expect(retryAfter).toMatch(/^[1-9]\d*$/)
      const seconds = Number(retryAfter)
      if (profile.errorDetail !== 'minimal')
        expect(res.json()).toMatchObject({ retry_after: seconds })
      // The window is what a client has to wait, at most twice over for a sliding window.
      expect(seconds).toBeLessThanOrEqual((2 * profile.rateLimit.windowMs) / 1000)
      // And it is the truth: one second short is still refused, on time is served.
      now = T0 + (seconds - 1) * 1000
      expectRefused(await h.send({ method: 'GET', url: '/health' }), 429, 'ERR_HTTP_RATE_LIMITED')
      now = T0 + seconds * 1000
      expect((await h.send({ method: 'GET', url: '/health' })).statusCode).toBe(200)
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

    it(`principalRateLimit=${profile.principalRateLimit.max} per principal (costRateLimit=${profile.costRateLimit})`, async () => {
      const tiny = defineProfile(profile, {
        rateLimit: { max: 10_000 },
        principalRateLimit: { max: 5 },
      })
      const h = await harness(tiny)
      for (let i = 0; i < 5; i++)
        expect((await h.send({ method: 'GET', url: '/health' })).statusCode).toBe(200)
      expectRefused(await h.send({ method: 'GET', url: '/health' }), 429, 'ERR_HTTP_RATE_LIMITED')
      // Another principal has its own budget.
      expect((await h.send({ method: 'GET', url: '/health', auth: 'bob' })).statusCode).toBe(200)
    })
  })

  for (const server of SERVERS) {
    describe(`${profile.name} on ${server}`, () => {
      it(`introspection=${profile.introspection}`, async () => {
        // A public GraphQL route, so an unauthenticated request reaches the guard.
        const h = await harness(profile, { server, enforcer: { publicPaths: ['/graphql'] } })
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
        const h = await harness(profile, { server })
        const ok = await h.gql(queryOfDepth(profile.maxQueryDepth))
        expect(ok.statusCode).toBe(200)
        expect(ok.json().errors).toBeUndefined()
        const deep = await h.gql(queryOfDepth(profile.maxQueryDepth + 1))
        expect(deep.statusCode).toBe(400)
        expect(graphqlCodes(deep)).toContain('ERR_GRAPHQL_DEPTH_LIMIT')
      })

      it(`maxQueryComplexity=${profile.maxQueryComplexity}`, async () => {
        const h = await harness(profile, { server })
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

      it(`auditLevel=${profile.auditLevel}`, async () => {
        const h = await harness(profile, { server })
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
        const h = await harness(profile, { server })
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
          expect(unauth.json()).toMatchObject({
            detail: 'Request failed',
            code: 'ERR_AUTH_REQUIRED',
          })
        } else {
          expect(client.json()).toMatchObject({ detail: 'the widget id is malformed' })
        }
      })

      it(`maxAliases=${profile.maxAliases}`, async () => {
        const h = await harness(profile, { server })
        const aliases = (n: number) =>
          `{ ${Array.from({ length: n }, (_, i) => `a${i}: __typename`).join(' ')} }`
        expect((await h.gql(aliases(profile.maxAliases))).statusCode).toBe(200)
        expect(graphqlCodes(await h.gql(aliases(profile.maxAliases + 1)))).toContain(
          'ERR_GRAPHQL_ALIAS_LIMIT',
        )
      })

      it(`maxDirectives=${profile.maxDirectives}`, async () => {
        const h = await harness(profile, { server })
        const directives = (n: number) => `{ hello ${'@include(if: true) '.repeat(n)}}`
        expect(graphqlCodes(await h.gql(directives(profile.maxDirectives + 1)))).toContain(
          'ERR_GRAPHQL_DIRECTIVE_LIMIT',
        )
      })

      it(`maxTokens=${profile.maxTokens}`, async () => {
        const h = await harness(profile, { server })
        const res = await h.gql(`{ ${'hello '.repeat(profile.maxTokens)}}`)
        expect(res.statusCode).toBe(400)
        expect(graphqlCodes(res)).toContain('ERR_GRAPHQL_TOKEN_LIMIT')
      })

      it(`maxBatchSize=${profile.maxBatchSize}`, async () => {
        const h = await harness(profile, { server })
        const batch = (n: number) => Array.from({ length: n }, () => ({ query: '{ hello }' }))
        expect((await h.gql(batch(profile.maxBatchSize))).statusCode).toBe(200)
        const res = await h.gql(batch(profile.maxBatchSize + 1))
        expect(res.statusCode).toBe(400)
        expect(res.json()).toMatchObject({ code: 'ERR_GRAPHQL_BATCH_TOO_LARGE' })
      })
    })
  }
}

for (const server of SERVERS) {
  describe(`cost-aware rate limiting on ${server}`, () => {
    it('charges a GraphQL operation its cost: cheap and expensive queries share one budget', async () => {
      const expensive = '{ users(first: 100) { id name } }'
      const cost = analyzeDocument(parse(expensive), { schema: gqlSchema }).complexity
      expect(cost).toBeGreaterThan(100)
      // A budget of exactly three expensive operations; the per-IP limit far
      // away, so every refusal below is the principal's budget.
      const profile = defineProfile(REGULATED, {
        costRateLimit: true,
        rateLimit: { max: 10_000 },
        principalRateLimit: { max: 3 * cost },
      })
      const h = await harness(profile, { server, enforcer: { clock: () => T0 } })
      for (let i = 0; i < 3; i++) expect((await h.gql(expensive)).statusCode).toBe(200)
      expectRefused(await h.gql(expensive), 429, 'ERR_HTTP_RATE_LIMITED')
      // The budget is spent for cheap queries too (cost 1), and for REST (weight 1).
      expectRefused(await h.gql('{ hello }'), 429, 'ERR_HTTP_RATE_LIMITED')
      expectRefused(await h.send({ method: 'GET', url: '/health' }), 429, 'ERR_HTTP_RATE_LIMITED')
      // Another principal's budget is untouched.
      expect((await h.gql('{ hello }', { auth: 'bob' })).json()).toEqual({
        data: { hello: 'world' },
      })
    })

    it('a cheap query fits in what an expensive one leaves', async () => {
      const expensive = '{ users(first: 100) { id name } }'
      const cost = analyzeDocument(parse(expensive), { schema: gqlSchema }).complexity
      const profile = defineProfile(REGULATED, {
        costRateLimit: true,
        rateLimit: { max: 10_000 },
        principalRateLimit: { max: cost + 2 },
      })
      const h = await harness(profile, { server, enforcer: { clock: () => T0 } })
      expect((await h.gql(expensive)).statusCode).toBe(200)
      // Two units left: two requests of weight 1, then the budget is spent.
      expect((await h.gql('{ hello }')).json()).toEqual({ data: { hello: 'world' } })
      expect((await h.send({ method: 'GET', url: '/health' })).statusCode).toBe(200)
      expectRefused(await h.send({ method: 'GET', url: '/health' }), 429, 'ERR_HTTP_RATE_LIMITED')
    })
  })
}

for (const server of SERVERS) {
  describe(`persistedOperationsOnly on ${server}`, () => {
    it('runs manifest operations only and refuses registration', async () => {
      const { PersistedOperations } = await import('../../src/graphql/index.js')
      const known = '{ hello }'
      const ops = new PersistedOperations({ [PersistedOperations.hash(known)]: known })
      const profile = defineProfile(RESTRICTED, { persistedOperationsOnly: true })
      const h = await harness(profile, { server, enforcer: { persistedOperations: ops } })
      const byHash = await h.send({
        method: 'POST',
        url: '/graphql',
        payload: {
          extensions: {
            persistedQuery: { version: 1, sha256Hash: PersistedOperations.hash(known) },
          },
        },
      })
      expect(byHash.json()).toMatchObject({ data: { hello: 'world' } })
      const unknown = await h.gql('{ user { id } }')
      expect(unknown.json().data ?? null).toBeNull()
      expect(unknown.statusCode).toBeGreaterThanOrEqual(400)
      expect(graphqlCodes(unknown)).toEqual(['ERR_GRAPHQL_PERSISTED_QUERY_REQUIRED'])
    })
  })
}

describe('persistedOperationsOnly', () => {
  it('is refused at construction without a manifest', async () => {
    const { ProfileEnforcer } = await import('../../src/profiles/index.js')
    const construct = () =>
      new ProfileEnforcer(defineProfile(RESTRICTED, { persistedOperationsOnly: true }))
    expect(construct).toThrow(SecurityError)
    expect(construct).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }))
    expect(construct).toThrow(/persistedOperations/)
  })
})

for (const server of SERVERS) {
  describe(`auditFieldAccess and tracing on ${server}`, () => {
    it('auditFieldAccess=true lists the Type.field coordinates an operation selected, never argument values', async () => {
      const profile = defineProfile(STANDARD, { auditFieldAccess: true, auditLevel: 'verbose' })
      const h = await harness(profile, { server })
      const res = await h.gql(
        'query Q($n: Int) { user(id: "secret-42") { name ...F friends(first: $n) { id } } } fragment F on User { id }',
        { variables: { n: 1 } },
      )
      expect(res.statusCode).toBe(200)
      const event = h.audit.find((e) => e.operations.length > 0) as AuditEvent
      expect(event.operations).toEqual([{ type: 'query', name: 'Q' }])
      expect(event.fields).toEqual(['Query.user', 'User.name', 'User.id', 'User.friends'])
      expect(JSON.stringify(h.audit)).not.toContain('secret-42')
    })

    it('tracer: each operation gets a span, refused ones included, and the tracing step is installed', async () => {
      const exporter = new InMemorySpanExporter()
      const tracerProvider = new BasicTracerProvider({
        spanProcessors: [new SimpleSpanProcessor(exporter)],
      })
      const tracer = new GraphQLTracer({ tracerProvider })
      const h = await harness(STANDARD, { server, enforcer: { tracer } })
      expect(h.enforcer.registeredStack.map((s) => s.name)).toContain('tracing')
      expect((await h.gql('query Hello { hello }')).statusCode).toBe(200)
      expect(graphqlCodes(await h.gql(queryOfDepth(STANDARD.maxQueryDepth + 1)))).toEqual([
        'ERR_GRAPHQL_DEPTH_LIMIT',
      ])
      const spans = exporter.getFinishedSpans()
      expect(spans.map((s) => s.name)).toContain('query Hello')
      expect(spans.some((s) => s.status.code === SpanStatusCode.ERROR)).toBe(true)
    })
  })
}
