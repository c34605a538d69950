/**
 * apolloGraphqlGuards end to end on the real Apollo Server 5, over HTTP
 * (its standalone server on 127.0.0.1): status codes, `extensions.code`,
 * suggestions and spans as a client and a collector see them.
 */
import { ApolloServer } from '@apollo/server'
import { startStandaloneServer } from '@apollo/server/standalone'
import { SpanStatusCode } from '@opentelemetry/api'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  type ApolloGuardOptions,
  apolloGraphqlGuards,
  createValidationRules,
  type GuardDecision,
} from '../../src/graphql/index.js'
import { chargingLimiter, nested, resolvers, SDL } from './fixtures.js'
import { dropContextManager, otel, useContextManager } from './tracing-fixtures.js'

type Ctx = { client: string | undefined; auth: string | undefined }

const servers: ApolloServer<Ctx>[] = []

afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop()
})

async function start(
  options: ApolloGuardOptions<Ctx>,
  extra: { validationRules?: unknown[] } = {},
): Promise<string> {
  const server = new ApolloServer<Ctx>({
    typeDefs: SDL,
    resolvers,
    plugins: [apolloGraphqlGuards(options)],
    ...(extra.validationRules === undefined
      ? {}
      : { validationRules: extra.validationRules as [] }),
  })
  servers.push(server)
  const { url } = await startStandaloneServer(server, {
    listen: { port: 0, host: '127.0.0.1' },
    context: async ({ req }) => ({
      client: req.headers['x-client'] as string | undefined,
      auth: req.headers.authorization,
    }),
  })
  return url
}

interface Answer {
  status: number
  headers: Headers
  body: { data?: unknown; errors?: { message: string; extensions?: Record<string, unknown> }[] }
}

async function ask(
  url: string,
  query: string,
  variables?: Record<string, unknown> | string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const vars = typeof variables === 'string' ? variables : JSON.stringify(variables ?? {})
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: `{"query":${JSON.stringify(query)},"variables":${vars}}`,
  })
  return { status: res.status, headers: res.headers, body: (await res.json()) as Answer['body'] }
}

const codesOf = (a: Answer) => (a.body.errors ?? []).map((e) => e.extensions?.code)

describe('apolloGraphqlGuards on Apollo Server', () => {
  it('answers a refused operation 400 with our code, not 500', async () => {
    const url = await start({ maxDepth: 4, introspection: 'disabled' })
    const ok = await ask(url, '{ me { name } }')
    expect(ok.status).toBe(200)
    expect(ok.body.data).toEqual({ me: { name: 'user 1' } })
    const deep = await ask(url, nested(6))
    expect(deep.status).toBe(400)
    expect(codesOf(deep)).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT'])
    expect(deep.body.errors?.[0]?.extensions?.http).toBeUndefined()
    const intro = await ask(url, '{ x: __schema { types { name } } }')
    expect(intro.status).toBe(400)
    expect(codesOf(intro)).toEqual(['ERR_GRAPHQL_INTROSPECTION_DISABLED'])
  })

  it('keeps our code when our validation rules are given to Apollo (not GRAPHQL_VALIDATION_FAILED)', async () => {
    const limits = { maxDepth: 4 }
    const url = await start(limits, { validationRules: createValidationRules(limits) })
    const deep = await ask(url, nested(6))
    expect(deep.status).toBe(400)
    expect(codesOf(deep)).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT'])
  })

  it('measures list sizes given by variables with the request values', async () => {
    const url = await start({ maxComplexity: 100 })
    const q = 'query Users($n: Int) { users(first: $n) { id name } }'
    expect((await ask(url, q, { n: 3 })).status).toBe(200)
    const big = await ask(url, q, { n: 1_000_000 })
    expect(big.status).toBe(400)
    expect(codesOf(big)).toEqual(['ERR_GRAPHQL_COMPLEXITY_LIMIT'])
  })

  it('removes "Did you mean" suggestions', async () => {
    const url = await start({})
    const typo = await ask(url, '{ me { nam } }')
    expect(typo.status).toBe(400)
    expect(typo.body.errors?.[0]?.message).toBe('Cannot query field "nam" on type "User".')
    expect(codesOf(typo)).toEqual(['GRAPHQL_VALIDATION_FAILED'])
  })

  it('refuses tokens and nesting before Apollo parses', async () => {
    const url = await start({ maxTokens: 50 })
    const many = `{ ${Array.from({ length: 60 }, (_, i) => `a${i}: __typename`).join(' ')} }`
    const tokens = await ask(url, many)
    expect(tokens.status).toBe(400)
    expect(codesOf(tokens)).toEqual(['ERR_GRAPHQL_TOKEN_LIMIT'])
    const deepText = `{ me ${'{ friends '.repeat(5000)}${'}'.repeat(5001)}`
    const text = await ask(await start({}), deepText)
    expect(text.status).toBe(400)
    expect(codesOf(text)).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT'])
    const deepJson = `{"x":${'{"v":'.repeat(20_000)}1${'}'.repeat(20_000)}}`
    const vars = await ask(url, 'query($x: Int) { me { name } }', deepJson)
    expect(vars.status).toBe(400)
    expect(codesOf(vars)).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT'])
  })

  it("decides 'authenticated' introspection per request with contextValue", async () => {
    const url = await start({
      introspection: 'authenticated',
      isAuthenticated: (ctx) => ctx.auth === 'Bearer ok',
    })
    const q = '{ __schema { queryType { name } } }'
    expect(codesOf(await ask(url, q))).toEqual(['ERR_GRAPHQL_INTROSPECTION_DISABLED'])
    const authed = await ask(url, q, undefined, { authorization: 'Bearer ok' })
    expect(authed.status).toBe(200)
  })

  it('calls onAccept / onReject with contextValue; reportOnly runs what it reports', async () => {
    const seen: [string, string | undefined, GuardDecision][] = []
    const url = await start({
      maxDepth: 4,
      onAccept: (ctx, d) => {
        seen.push(['accept', ctx.client, d])
      },
      onReject: (ctx, d) => {
        seen.push(['reject', ctx.client, d])
      },
    })
    await ask(url, 'query Me { me { name } }', undefined, { 'x-client': 'a' })
    await ask(url, nested(6), undefined, { 'x-client': 'b' })
    expect(seen.map(([k, c, d]) => [k, c, d.codes, d.enforced])).toEqual([
      ['accept', 'a', [], true],
      ['reject', 'b', ['ERR_GRAPHQL_DEPTH_LIMIT'], true],
    ])
    const reported: GuardDecision[] = []
    const lenient = await start({
      maxDepth: 4,
      reportOnly: true,
      onReject: (_ctx, d) => {
        reported.push(d)
      },
    })
    const deep = await ask(lenient, nested(6))
    expect(deep.status).toBe(200)
    expect(reported.map((d) => [d.codes, d.enforced])).toEqual([
      [['ERR_GRAPHQL_DEPTH_LIMIT'], false],
    ])
  })

  it('answers a chargeCost refusal with 429, its code and Retry-After', async () => {
    const { charge } = chargingLimiter(100)
    const url = await start({ chargeCost: charge })
    const q = 'query($n: Int) { users(first: $n) { id } }'
    expect((await ask(url, q, { n: 30 })).status).toBe(200)
    const refused = await ask(url, q, { n: 30 })
    expect(refused.status).toBe(429)
    expect(codesOf(refused)).toEqual(['ERR_HTTP_RATE_LIMITED'])
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/)
  })
})

describe('apolloGraphqlGuards tracing on Apollo Server', () => {
  beforeEach(useContextManager)
  afterEach(dropContextManager)

  it('traces operations through the plugin hooks, refused ones with their codes', async () => {
    const o = otel()
    const url = await start({ maxDepth: 4, tracer: o.tracer({ includeDocument: true }) })
    await ask(url, 'query Me { me { name } }')
    await ask(url, `query Deep ${nested(6)}`)
    await ask(url, '{ me { nam } }')
    await ask(url, '{ boom }')
    await vi.waitFor(() => expect(o.spans().length).toBeGreaterThanOrEqual(4))
    const ok = o.byName('query Me')
    expect(ok.status.code).toBe(SpanStatusCode.UNSET)
    expect(ok.attributes['graphql.document']).toContain('me')
    expect(o.byName('query Deep').attributes['error.type']).toBe('ERR_GRAPHQL_DEPTH_LIMIT')
    const types = o
      .spans()
      .filter((s) => s.status.code === SpanStatusCode.ERROR)
      .map((s) => s.attributes['error.type'])
    expect(types).toContain('GRAPHQL_VALIDATION_FAILED')
    expect(types).toHaveLength(3)
  })
})
