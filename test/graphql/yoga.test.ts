/**
 * useGraphqlGuards end to end on the real graphql-yoga: every request goes
 * through yoga's fetch API (its HTTP handling, parse and validation caches,
 * error serialization), and the answers' status, codes and spans are
 * asserted.
 */
import { SpanStatusCode } from '@opentelemetry/api'
import { createSchema, createYoga } from 'graphql-yoga'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SecurityError } from '../../src/errors.js'
import {
  type EnvelopGuardOptions,
  type GuardDecision,
  useGraphqlGuards,
} from '../../src/graphql/index.js'
import { chargingLimiter, nested, resolvers, SDL } from './fixtures.js'
import { dropContextManager, otel, useContextManager } from './tracing-fixtures.js'

type Ctx = { request: Request }

function server(options: EnvelopGuardOptions<Ctx>) {
  return createYoga({
    schema: createSchema({ typeDefs: SDL, resolvers }),
    plugins: [useGraphqlGuards(options)],
    logging: false,
  })
}

interface Answer {
  status: number
  headers: Headers
  body: {
    data?: unknown
    errors?: { message: string; extensions?: Record<string, unknown> }[]
  }
}

async function ask(
  yoga: ReturnType<typeof server>,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
  rawVariables?: string,
): Promise<Answer> {
  const body =
    rawVariables === undefined
      ? JSON.stringify({ query, variables })
      : `{"query":${JSON.stringify(query)},"variables":{"x":${rawVariables}}}`
  const res = await yoga.fetch('http://127.0.0.1/graphql', {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json',
      ...headers,
    },
    body,
  })
  return { status: res.status, headers: res.headers, body: (await res.json()) as Answer['body'] }
}

const codesOf = (a: Answer) => (a.body.errors ?? []).map((e) => e.extensions?.code)

describe('useGraphqlGuards on graphql-yoga', () => {
  it('refuses past a limit with 400 and our code in extensions.code, and runs the rest', async () => {
    const yoga = server({ maxDepth: 4, maxAliases: 2, introspection: 'disabled' })
    const ok = await ask(yoga, '{ me { name } }')
    expect(ok.status).toBe(200)
    expect(ok.body.data).toEqual({ me: { name: 'user 1' } })
    const deep = await ask(yoga, nested(6))
    expect(deep.status).toBe(400)
    expect(codesOf(deep)).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT'])
    expect(deep.body.errors?.[0]?.message).toBe('Query is too deep.')
    // yoga's http extension sets the status and is never sent.
    expect(deep.body.errors?.[0]?.extensions?.http).toBeUndefined()
    const intro = await ask(yoga, '{ x: __schema { types { name } } }')
    expect(intro.status).toBe(400)
    expect(codesOf(intro)).toEqual(['ERR_GRAPHQL_INTROSPECTION_DISABLED'])
  })

  it('measures list sizes given by variables with the request values', async () => {
    const yoga = server({ maxComplexity: 100 })
    const query = 'query Users($n: Int) { users(first: $n) { id name } }'
    const small = await ask(yoga, query, { n: 3 })
    expect(small.status).toBe(200)
    const big = await ask(yoga, query, { n: 1_000_000 })
    expect(big.status).toBe(400)
    expect(codesOf(big)).toEqual(['ERR_GRAPHQL_COMPLEXITY_LIMIT'])
    // The same document again (yoga's parse and validation caches hit): still refused.
    expect(codesOf(await ask(yoga, query, { n: 1_000_000 }))).toEqual([
      'ERR_GRAPHQL_COMPLEXITY_LIMIT',
    ])
  })

  it('removes "Did you mean" from validation and variable-coercion errors', async () => {
    const yoga = server({})
    const typo = await ask(yoga, '{ me { nam } }')
    expect(typo.status).toBe(400)
    expect(JSON.stringify(typo.body)).not.toContain('Did you mean')
    expect(typo.body.errors?.[0]?.message).toBe('Cannot query field "nam" on type "User".')
    const kept = createYoga({
      schema: createSchema({ typeDefs: SDL, resolvers }),
      plugins: [useGraphqlGuards({ blockFieldSuggestions: false })],
      logging: false,
    })
    expect(JSON.stringify((await ask(kept, '{ me { nam } }')).body)).toContain('Did you mean')
  })

  it('counts tokens before parsing and bounds nesting of the text and the variables', async () => {
    const yoga = server({ maxTokens: 50 })
    const many = `{ ${Array.from({ length: 60 }, (_, i) => `a${i}: __typename`).join(' ')} }`
    const tokens = await ask(yoga, many)
    expect(tokens.status).toBe(400)
    expect(codesOf(tokens)).toEqual(['ERR_GRAPHQL_TOKEN_LIMIT'])
    const deepText = `{ me ${'{ friends '.repeat(5000)}${'}'.repeat(5001)}`
    const text = await ask(server({}), deepText)
    expect(text.status).toBe(400)
    expect(codesOf(text)).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT'])
    // JSON text: JSON.stringify itself would overflow on such a value.
    const deepJson = `${'{"v":'.repeat(20_000)}1${'}'.repeat(20_000)}`
    const vars = await ask(server({}), 'query($x: Int) { me { name } }', undefined, {}, deepJson)
    expect(vars.status).toBe(400)
    expect(codesOf(vars)).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT'])
  })

  it("decides 'authenticated' introspection per request, cached document or not", async () => {
    const yoga = server({
      introspection: 'authenticated',
      isAuthenticated: (ctx) => ctx.request.headers.get('authorization') === 'Bearer ok',
    })
    const q = '{ __schema { queryType { name } } }'
    const anon = await ask(yoga, q)
    expect(anon.status).toBe(400)
    expect(codesOf(anon)).toEqual(['ERR_GRAPHQL_INTROSPECTION_DISABLED'])
    const authed = await ask(yoga, q, undefined, { authorization: 'Bearer ok' })
    expect(authed.status).toBe(200)
    expect(authed.body.data).toEqual({ __schema: { queryType: { name: 'Query' } } })
    expect((await ask(yoga, q)).status).toBe(400)
  })

  it('calls onAccept and onReject with the request context and the decision', async () => {
    const accepted: [string | null, GuardDecision][] = []
    const rejected: [string | null, GuardDecision][] = []
    const yoga = server({
      maxDepth: 4,
      onAccept: (ctx, d) => {
        accepted.push([ctx.request.headers.get('x-client'), d])
      },
      onReject: async (ctx, d) => {
        rejected.push([ctx.request.headers.get('x-client'), d])
      },
    })
    await ask(yoga, 'query Me { me { name } }', undefined, { 'x-client': 'a' })
    const deep = await ask(yoga, nested(6), undefined, { 'x-client': 'b' })
    expect(deep.status).toBe(400)
    expect(
      accepted.map(([c, d]) => [c, d.operationName, d.operationType, d.errors.length]),
    ).toEqual([['a', 'Me', 'query', 0]])
    expect(accepted[0]?.[1].metrics).toEqual({ depth: 2, complexity: 2, aliases: 0, directives: 0 })
    expect(rejected).toHaveLength(1)
    expect(rejected[0]?.[0]).toBe('b')
    expect(rejected[0]?.[1].codes).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT'])
    expect(rejected[0]?.[1].enforced).toBe(true)
  })

  it('an observer that throws fails the operation instead of being skipped', async () => {
    const yoga = server({
      maxDepth: 4,
      onAccept: () => {
        throw new Error('audit sink down')
      },
    })
    const res = await ask(yoga, '{ me { name } }')
    expect(res.body.data ?? null).toBeNull()
    expect(res.status).toBeGreaterThanOrEqual(400)
    expect(JSON.stringify(res.body)).not.toContain('audit sink down')
  })

  it('reportOnly runs every operation and reports what it would have refused', async () => {
    const rejected: GuardDecision[] = []
    const yoga = server({
      maxDepth: 3,
      maxTokens: 20,
      reportOnly: true,
      onReject: (_ctx, d) => {
        rejected.push(d)
      },
    })
    const deep = await ask(yoga, nested(5))
    expect(deep.status).toBe(200)
    expect(deep.body.errors).toBeUndefined()
    const many = `{ ${Array.from({ length: 30 }, (_, i) => `a${i}: __typename`).join(' ')} }`
    expect((await ask(yoga, many)).status).toBe(200)
    expect(rejected.map((d) => [d.codes, d.enforced])).toEqual([
      [['ERR_GRAPHQL_DEPTH_LIMIT'], false],
      [['ERR_GRAPHQL_TOKEN_LIMIT'], false],
    ])
    // The bound that keeps graphql-js's parser on its stack is never report-only.
    const text = await ask(yoga, `{ me ${'{ friends '.repeat(5000)}${'}'.repeat(5001)}`)
    expect(text.status).toBe(400)
    expect(rejected.at(-1)?.enforced).toBe(true)
  })

  it('answers a chargeCost refusal with its status, code and Retry-After', async () => {
    const { charge, charged } = chargingLimiter(100)
    const yoga = server({ chargeCost: charge })
    const q = 'query($n: Int) { users(first: $n) { id } }'
    expect((await ask(yoga, q, { n: 30 })).status).toBe(200) // 60
    const refused = await ask(yoga, q, { n: 30 }) // 60 more: over 100
    expect(charged).toEqual([60, 60])
    expect(refused.status).toBe(429)
    expect(codesOf(refused)).toEqual(['ERR_HTTP_RATE_LIMITED'])
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/)
  })

  it('refuses options it cannot honour at creation', () => {
    const bad = [
      { errorDetail: 'minimal' },
      { reportOnly: true },
      { introspection: 'authenticated' },
      { maxDepth: 0 },
      { tracer: {} },
    ]
    for (const options of bad) {
      let caught: unknown
      try {
        useGraphqlGuards(options as never)
      } catch (err) {
        caught = err
      }
      expect(caught instanceof SecurityError && caught.code).toBe('ERR_CONFIG_INVALID')
    }
  })
})

describe('useGraphqlGuards tracing on graphql-yoga', () => {
  beforeEach(useContextManager)
  afterEach(dropContextManager)

  it('traces executed operations and the ones refused, with their codes', async () => {
    const o = otel()
    const yoga = server({ maxDepth: 4, tracer: o.tracer({ includeDocument: true }) })
    await ask(yoga, 'query Me { me { name } }')
    await ask(yoga, `query Deep ${nested(6)}`)
    await ask(yoga, '{ me { nam } }')
    const ok = o.byName('query Me')
    expect(ok.status.code).toBe(SpanStatusCode.UNSET)
    expect(ok.attributes['graphql.operation.name']).toBe('Me')
    const refused = o.spans().filter((s) => s.status.code === SpanStatusCode.ERROR)
    expect(refused.map((s) => s.attributes['error.type']).sort()).toEqual([
      'ERR_GRAPHQL_DEPTH_LIMIT',
      'GRAPHQL_VALIDATION_FAILED',
    ])
  })
})
