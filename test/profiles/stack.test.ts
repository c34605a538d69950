import Fastify from 'fastify'
import mercurius from 'mercurius'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { ProfileEnforcer, REGULATED, RESTRICTED, STANDARD } from '../../src/profiles/index.js'
import { graphqlCodes, harness, queryOfDepth, resolvers, schema } from './harness.js'

describe('getMiddlewareStack', () => {
  it('lists the steps in the pinned order and phase', () => {
    const names = new ProfileEnforcer(RESTRICTED)
      .getMiddlewareStack()
      .map((s) => `${s.phase}:${s.name}`)
    expect(names).toEqual([
      'onRequest:tlsGate',
      'onRequest:mtlsGate',
      'onRequest:ipRateLimit',
      'onRequest:bodyLimit',
      'onRequest:authentication',
      'onRequest:principalRateLimit',
      'preExecution:graphqlGuards',
      'errorHandler:errorMasking',
      'onResponse:auditLog',
    ])
    const standard = new ProfileEnforcer(STANDARD).getMiddlewareStack().map((s) => s.name)
    expect(standard).not.toContain('tlsGate')
    expect(standard).not.toContain('mtlsGate')
  })

  it('maps every profile setting to a step that enforces it', () => {
    const enforced = new Set(
      new ProfileEnforcer(RESTRICTED).getMiddlewareStack().flatMap((s) => s.enforces),
    )
    for (const key of Object.keys(RESTRICTED)) if (key !== 'name') expect(enforced).toContain(key)
  })

  for (const profile of [STANDARD, REGULATED, RESTRICTED]) {
    it(`matches what applyTo registered (${profile.name})`, async () => {
      const h = await harness(profile)
      expect(h.enforcer.registeredStack).toEqual(h.enforcer.getMiddlewareStack())
      // The plugins it names are really in the instance (by their
      // fastify-plugin names: each assertion names what is missing).
      for (const plugin of ['fraiseql-security/rate-limit', 'fraiseql-security/body-limit'])
        expect(h.app.hasPlugin(plugin), plugin).toBe(true)
    })
  }

  it('leaves GraphQL guards out, and says so, when mercurius is absent', async () => {
    const h = await harness(STANDARD, { mercurius: false })
    expect(h.enforcer.registeredStack.map((s) => s.name)).not.toContain('graphqlGuards')
  })
})

describe('tracing', () => {
  it('is the last step when a tracer is given, and records the operation', async () => {
    const { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } = await import(
      '@opentelemetry/sdk-trace-base'
    )
    const { GraphQLTracer } = await import('../../src/graphql/index.js')
    const exporter = new InMemorySpanExporter()
    const tracerProvider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    })
    const tracer = new GraphQLTracer({ tracerProvider })
    const h = await harness(STANDARD, { enforcer: { tracer } })
    expect(h.enforcer.registeredStack.at(-1)?.name).toBe('tracing')
    expect((await h.gql('query Hello { hello }')).statusCode).toBe(200)
    expect(exporter.getFinishedSpans().map((s) => s.name)).toContain('query Hello')
  })
})

describe('forgetting mercuriusOptions() is never a hole', () => {
  for (const profile of [STANDARD, RESTRICTED]) {
    it(`depth, aliases and introspection are still enforced in preExecution (${profile.name})`, async () => {
      const h = await harness(profile, { spread: false })
      const deep = await h.gql(queryOfDepth(profile.maxQueryDepth + 1))
      expect(graphqlCodes(deep)).toContain('ERR_GRAPHQL_DEPTH_LIMIT')
      // Twice: a cached query must not skip the check.
      expect(graphqlCodes(await h.gql(queryOfDepth(profile.maxQueryDepth + 1)))).toContain(
        'ERR_GRAPHQL_DEPTH_LIMIT',
      )
      const aliases = `{ ${Array.from({ length: profile.maxAliases + 1 }, (_, i) => `a${i}: hello`).join(' ')} }`
      expect(graphqlCodes(await h.gql(aliases))).toContain('ERR_GRAPHQL_ALIAS_LIMIT')
      const introspection = await h.gql('{ __type(name: "User") { name } }', { auth: null })
      expect(introspection.json().data?.__type ?? null).toBeNull()
    })
  }
})

describe('authentication', () => {
  it('without authenticate(), authRequired refuses every request and says so at boot', async () => {
    const error = vi.fn()
    const app = Fastify({ logger: false })
    onTestFinished(async () => {
      await app.close()
    })
    app.log.error = error as never
    await app.register(mercurius, { schema, resolvers })
    app.get('/x', async () => 'x')
    await new ProfileEnforcer(STANDARD).applyTo(app)
    expect(error).toHaveBeenCalled()
    expect(String(error.mock.calls[0]?.[1])).toMatch(/every request will be refused/)
    expect((await app.inject({ method: 'GET', url: '/x' })).statusCode).toBe(401)
    expect(
      (await app.inject({ method: 'POST', url: '/graphql', payload: { query: '{ hello }' } }))
        .statusCode,
    ).toBe(401)
  })

  it('sets request.auth for handlers and resolvers', async () => {
    const h = await harness(STANDARD)
    const res = await h.send({ method: 'GET', url: '/me', auth: 'dave:apiKey::gold' })
    expect(res.json()).toEqual({ principal: 'dave', kind: 'apiKey', permissions: [], tier: 'gold' })
    expect((await h.send({ method: 'GET', url: '/public/me', auth: null })).json()).toBeNull()
  })

  it('a tier gets its own quota', async () => {
    const h = await harness(STANDARD, { enforcer: { tiers: { free: { max: 2 } } } })
    for (let i = 0; i < 2; i++)
      expect(
        (await h.send({ method: 'GET', url: '/health', auth: 'carol:apiKey::free' })).statusCode,
      ).toBe(200)
    expect(
      (await h.send({ method: 'GET', url: '/health', auth: 'carol:apiKey::free' })).statusCode,
    ).toBe(429)
  })
})

describe('validateRequestContext', () => {
  it('lists each violation with a clear message', () => {
    const e = new ProfileEnforcer(RESTRICTED)
    expect(
      e.validateRequestContext({ isTls: true, hasClientCert: true, isAuthenticated: true }),
    ).toEqual([])
    const v = e.validateRequestContext({
      isTls: false,
      hasClientCert: false,
      isAuthenticated: false,
    })
    expect(v).toHaveLength(3)
    expect(v[0]).toMatch(/TLS/)
    expect(v[1]).toMatch(/client certificate/)
    expect(v[2]).toMatch(/authentication/)
    expect(
      e.checkRequestContext({ isTls: false, hasClientCert: true, isAuthenticated: true }),
    ).toEqual([
      expect.objectContaining({
        setting: 'tlsRequired',
        statusCode: 426,
        code: 'ERR_PROFILE_TLS_REQUIRED',
      }),
    ])
    expect(
      new ProfileEnforcer(STANDARD).validateRequestContext({
        isTls: false,
        hasClientCert: false,
        isAuthenticated: true,
      }),
    ).toEqual([])
  })

  it('config getters reflect the profile', () => {
    const e = new ProfileEnforcer(RESTRICTED)
    expect(e.getBodySizeConfig()).toEqual({ maxSize: 512 * 1024 })
    expect(e.getRateLimitConfig()).toEqual({ max: 100, windowMs: 60_000 })
    expect(e.getQueryValidatorConfig()).toMatchObject({
      maxDepth: 5,
      maxComplexity: 1000,
      introspection: 'disabled',
    })
  })
})

describe('the graphql-yoga and Apollo Server plugins', () => {
  it('list graphqlGuards in registeredStack once a claimed server is mounted', async () => {
    for (const server of ['graphql-yoga', 'apollo'] as const) {
      const h = await harness(STANDARD, { server })
      expect(h.enforcer.registeredStack.map((s) => s.name)).toContain('graphqlGuards')
    }
  })

  it('refuse an operation that reaches the server outside a route of the app (no request to apply the profile to)', async () => {
    const { createSchema, createYoga } = await import('graphql-yoga')
    const enforcer = new ProfileEnforcer(STANDARD)
    const yoga = createYoga({
      schema: createSchema({ typeDefs: schema, resolvers }),
      plugins: [enforcer.graphqlYogaPlugin()],
      logging: false,
    })
    // yoga's own fetch API: no Fastify route, so no request, auth or budget.
    const res = await yoga.fetch('http://127.0.0.1/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ hello }' }),
    })
    expect(res.status).toBe(500)
    expect(JSON.stringify(await res.json())).not.toContain('world')
  })

  it('apolloPlugin() refuses a path that is not one', () => {
    expect(() => new ProfileEnforcer(STANDARD).apolloPlugin({ path: 'graphql' })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
    )
  })

  it('are refused with graphqlGuards switched off: there are no guards to give', () => {
    const enforcer = new ProfileEnforcer(STANDARD, {
      tracer: false,
      steps: { graphqlGuards: { enabled: false } },
    })
    for (const make of [() => enforcer.graphqlYogaPlugin(), () => enforcer.apolloPlugin()]) {
      expect(make).toThrow(expect.objectContaining({ code: 'ERR_PROFILE_GRAPHQL_UNGUARDED' }))
    }
  })
})
