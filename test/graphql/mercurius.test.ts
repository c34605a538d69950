/**
 * The guards in a real Fastify + mercurius app, through `app.inject()`:
 * with and without the registration spread (the preExecution fallback),
 * mercurius's validation cache, batches, persisted operations, per-request
 * introspection, cost charged to a real rate limiter, the error formatter,
 * the token limit and the JSON-document bypass.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { parse } from 'graphql'
import mercurius from 'mercurius'
import { afterEach, describe, expect, it } from 'vitest'
import {
  type GraphqlGuardOptions,
  graphqlGuards,
  mercuriusGuardOptions,
  PersistedOperations,
} from '../../src/graphql/index.js'
import { RateLimitExceededError, RateLimiter } from '../../src/http/index.js'
import { rejection } from '../helpers/rejection.js'
import { nested, resolvers, SDL } from './fixtures.js'

interface Setup {
  /** Spread `mercuriusGuardOptions(guard)` into mercurius's options. @default true */
  spread?: boolean
  /** Register `graphqlGuards` after mercurius. @default true */
  plugin?: boolean
  /** More mercurius options. */
  mercurius?: Record<string, unknown>
}

let app: FastifyInstance | undefined

afterEach(async () => {
  await app?.close()
  app = undefined
})

async function build(guard: GraphqlGuardOptions, setup: Setup = {}): Promise<FastifyInstance> {
  // A body limit above Fastify's 1 MiB default, so the 1 MB token flood reaches the parser.
  app = Fastify({ genReqId: () => 'req-42', bodyLimit: 4 * 1024 * 1024 })
  await app.register(mercurius, {
    schema: SDL,
    resolvers,
    ...(setup.mercurius ?? {}),
    ...(setup.spread === false ? {} : mercuriusGuardOptions(guard)),
  } as never)
  if (setup.plugin !== false) await app.register(graphqlGuards, guard)
  await app.ready()
  return app
}

interface GraphqlBody {
  data?: unknown
  errors?: { message: string; extensions?: { code?: string; requestId?: string } }[]
}

async function post(
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{
  status: number
  body: GraphqlBody & GraphqlBody[]
  headers: Record<string, unknown>
}> {
  const res = await app!.inject({
    method: 'POST',
    url: '/graphql',
    payload: body as object,
    headers,
  })
  return { status: res.statusCode, body: res.json(), headers: res.headers }
}

const codeOf = (b: GraphqlBody) => b.errors?.map((e) => e.extensions?.code)

describe('limits in mercurius', () => {
  const guard = { maxDepth: 4, maxAliases: 2 }

  it.each([
    ['with the spread and the plugin', {}],
    ['with the plugin only (preExecution fallback)', { spread: false }],
    ['with the spread only (validation rules)', { plugin: false }],
  ])('refuses past a limit and runs the rest, %s', async (_, setup) => {
    await build(guard, setup)
    const ok = await post({ query: nested(4) })
    expect(ok.status).toBe(200)
    const data = ok.body.data as { user: { friends: { friends: { name: string }[] }[] } }
    expect(data.user.friends[0]?.friends[0]?.name).toBe('user 1.0.0')
    const deep = await post({ query: nested(5) })
    expect(deep.status).toBe(400)
    expect(codeOf(deep.body)).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT'])
    expect(deep.body.errors?.[0]?.message).toBe('Query is too deep.')
  })

  it.each([
    ['with the plugin only', { spread: false }],
    ['with the spread only', { plugin: false }],
  ])('refuses the same query again on a validation-cache hit, %s', async (_, setup) => {
    await build(guard, setup)
    const query = `{ a: me { id } b: me { id } c: me { id } }`
    for (let i = 0; i < 3; i++) {
      const res = await post({ query })
      expect(res.status).toBe(400)
      expect(codeOf(res.body)).toEqual(['ERR_GRAPHQL_ALIAS_LIMIT'])
    }
  })

  it('answers 400 with every rejection when an operation breaks several limits', async () => {
    await build(guard)
    const res = await post({ query: `{ a: me { id } b: me { id } c: ${nested(5).slice(2, -2)} }` })
    expect(res.status).toBe(400)
    expect(codeOf(res.body)).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT', 'ERR_GRAPHQL_ALIAS_LIMIT'])
  })

  it.each([
    ['with the spread', {}],
    ['with the plugin only', { spread: false }],
  ])('checks every operation of a batch, %s', async (_, setup) => {
    await build(guard, { ...setup, mercurius: { allowBatchedQueries: true } })
    const res = await post([
      { query: '{ me { id } }' },
      { query: nested(6) },
      { query: 'query Two { me { name } }', operationName: 'Two' },
      { query: '{ a: me { id } b: me { id } c: me { id } }' },
    ])
    expect(res.status).toBe(200)
    expect(res.body).toHaveLength(4)
    expect(res.body[0]).toEqual({ data: { me: { id: '1' } } })
    expect(codeOf(res.body[1]!)).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT'])
    expect(res.body[2]).toEqual({ data: { me: { name: 'user 1' } } })
    expect(codeOf(res.body[3]!)).toEqual(['ERR_GRAPHQL_ALIAS_LIMIT'])
  })

  it('checks the limits with the request variables in preExecution', async () => {
    await build({ maxComplexity: 100 }, { spread: true })
    const query = 'query ($n: Int) { users(first: $n) { id } }'
    // Validation assumed defaultListSize (10 × 2 = 20); the value asks for 500 × 2.
    expect((await post({ query, variables: { n: 5 } })).status).toBe(200)
    const big = await post({ query, variables: { n: 500 } })
    expect(big.status).toBe(400)
    expect(codeOf(big.body)).toEqual(['ERR_GRAPHQL_COMPLEXITY_LIMIT'])
  })
})

describe('introspection in mercurius', () => {
  const query = '{ __schema { queryType { name } } }'
  const guard = {
    introspection: 'authenticated',
    isAuthenticated: (request) => request.headers['x-auth'] === 'yes',
  } satisfies GraphqlGuardOptions

  it('decides per request with isAuthenticated, whatever the validation cache holds', async () => {
    await build(guard)
    for (const [auth, status] of [
      ['yes', 200],
      ['no', 400],
      ['yes', 200],
      ['no', 400],
    ] as const) {
      const res = await post({ query }, { 'x-auth': auth })
      expect(res.status).toBe(status)
      if (status === 400) expect(codeOf(res.body)).toEqual(['ERR_GRAPHQL_INTROSPECTION_DISABLED'])
      else expect(res.body.data).toEqual({ __schema: { queryType: { name: 'Query' } } })
    }
  })

  it('refuses it for everyone when the plugin is missing (the rules cannot know the caller)', async () => {
    await build(guard, { plugin: false })
    const res = await post({ query }, { 'x-auth': 'yes' })
    expect(res.status).toBe(400)
    expect(codeOf(res.body)).toEqual(['ERR_GRAPHQL_INTROSPECTION_DISABLED'])
  })

  it("'disabled' refuses it through an alias and a fragment, keeps __typename", async () => {
    await build({ introspection: 'disabled' }, { spread: false })
    const viaFragment = await post({
      query: '{ ...F } fragment F on Query { t: __type(name: "User") { name } }',
    })
    expect(codeOf(viaFragment.body)).toEqual(['ERR_GRAPHQL_INTROSPECTION_DISABLED'])
    expect((await post({ query: '{ t: __typename }' })).body.data).toEqual({ t: 'Query' })
  })
})

describe('cost charged to a rate limiter', () => {
  it('lets cheap and expensive operations share one budget, and refuses with 429 and the code', async () => {
    const limiter = new RateLimiter({ max: 1000, windowMs: 60_000, clock: () => 1_000_000 })
    const charged: number[] = []
    await build({
      chargeCost: (_request, cost) => {
        charged.push(cost)
        const set = limiter.globalPolicies
        const info = limiter.consume('client', set, cost) as Exclude<
          ReturnType<typeof limiter.consume>,
          Promise<unknown>
        >
        if (!info.allowed) throw new RateLimitExceededError(info, limiter.headersFor(info, set))
      },
    })
    const expensive = '{ users(first: 300) { id name } }' // 300 × 3 = 900
    const cheap = '{ users(first: 25) { id } }' // 25 × 2 = 50
    expect((await post({ query: expensive })).status).toBe(200)
    expect((await post({ query: cheap })).status).toBe(200)
    const refused = await post({ query: expensive })
    expect(refused.status).toBe(429)
    expect(codeOf(refused.body)).toEqual(['ERR_HTTP_RATE_LIMITED'])
    expect(refused.body.data).toBeNull()
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0)
    expect((await post({ query: cheap })).status).toBe(200) // exactly 1000 used
    expect((await post({ query: cheap })).status).toBe(429)
    expect(charged).toEqual([900, 50, 900, 50, 50])
  })

  it('never charges an operation a limit refused', async () => {
    const charged: number[] = []
    await build(
      { maxDepth: 3, chargeCost: (_r, cost) => void charged.push(cost) },
      { spread: false },
    )
    expect((await post({ query: nested(4) })).status).toBe(400)
    expect(charged).toEqual([])
  })

  it('charges the operation the request names in a multi-operation document', async () => {
    const charged: number[] = []
    await build({ chargeCost: (_r, cost) => void charged.push(cost) })
    const query = 'query Small { me { id } } query Big { users(first: 50) { id } }'
    await post({ query, operationName: 'Small' })
    await post({ query, operationName: 'Big' })
    expect(charged).toEqual([2, 100])
  })
})

describe('persisted operations in mercurius', () => {
  const known = 'query Me { me { id name } }'
  const ops = PersistedOperations.fromQueries([known])
  const hash = PersistedOperations.hash(known)
  const apq = (sha256Hash: string) => ({ persistedQuery: { version: 1, sha256Hash } })
  const guard = { persistedOperations: ops }

  it('runs a manifest operation by APQ hash, by mercurius hash, and as full text', async () => {
    await build(guard)
    const expected = { data: { me: { id: '1', name: 'user 1' } } }
    expect((await post({ extensions: apq(hash) })).body).toEqual(expected)
    expect((await post({ persisted: true, query: hash })).body).toEqual(expected)
    expect((await post({ query: known })).body).toEqual(expected)
    expect((await post({ query: known, extensions: apq(hash) })).body).toEqual(expected)
  })

  it('refuses an unknown hash, a registration, and a query outside the manifest', async () => {
    await build(guard)
    const unknown = await post({ extensions: apq('0'.repeat(64)) })
    expect(unknown.status).toBe(400)
    expect(codeOf(unknown.body)).toEqual(['ERR_GRAPHQL_PERSISTED_QUERY_NOT_FOUND'])
    expect(unknown.body.errors?.[0]?.message).toBe('PersistedQueryNotFound')

    const other = '{ users(first: 1) { id } }'
    const register = await post({ query: other, extensions: apq(PersistedOperations.hash(other)) })
    expect(register.status).toBe(400)
    expect(codeOf(register.body)).toEqual(['ERR_GRAPHQL_PERSISTED_QUERY_REGISTRATION_REFUSED'])
    // And the registration did not take: the hash alone is still unknown.
    const after = await post({ extensions: apq(PersistedOperations.hash(other)) })
    expect(codeOf(after.body)).toEqual(['ERR_GRAPHQL_PERSISTED_QUERY_NOT_FOUND'])

    const plain = await post({ query: other })
    expect(plain.status).toBe(400)
    expect(codeOf(plain.body)).toEqual(['ERR_GRAPHQL_PERSISTED_QUERY_REQUIRED'])

    const lying = await post({ query: other, extensions: apq(hash) })
    expect(codeOf(lying.body)).toEqual(['ERR_GRAPHQL_PERSISTED_QUERY_MISMATCH'])
  })

  it('the plugin alone still runs only manifest operations', async () => {
    await build(guard, { spread: false })
    expect((await post({ query: known })).status).toBe(200)
    const other = await post({ query: '{ me { id } }' })
    expect(other.status).toBe(400)
    expect(codeOf(other.body)).toEqual(['ERR_GRAPHQL_PERSISTED_QUERY_REQUIRED'])
  })

  it('with persistedOperationsOnly false, registers APQ queries and runs any query', async () => {
    await build({ ...guard, persistedOperationsOnly: false })
    const other = '{ users(first: 1) { id } }'
    const h = PersistedOperations.hash(other)
    const miss = await post({ extensions: apq(h) })
    expect(miss.body.errors?.[0]?.message).toBe('PersistedQueryNotFound')
    expect((await post({ query: other, extensions: apq(h) })).status).toBe(200)
    expect((await post({ extensions: apq(h) })).body).toEqual({ data: { users: [{ id: '0' }] } })
    expect((await post({ query: '{ me { id } }' })).status).toBe(200)
  })
})

describe('error formatter in mercurius', () => {
  it("'safe' keeps client-error messages without suggestions, masks unexpected errors, never sends a stack", async () => {
    await build({ errorDetail: 'safe' })
    const typo = await post({ query: '{ usr { id } }' })
    expect(typo.status).toBe(400)
    expect(typo.body.errors?.[0]?.message).toBe('Cannot query field "usr" on type "Query".')
    const boom = await post({ query: '{ boom }' })
    expect(boom.status).toBe(200)
    // A resolver's plain Error may carry a driver's message: masked.
    expect(boom.body.errors).toEqual([
      expect.objectContaining({
        message: 'Internal error',
        path: ['boom'],
        extensions: { code: 'ERR_INTERNAL' },
      }),
    ])
    expect(JSON.stringify(boom.body)).not.toMatch(/ECONNREFUSED|stack|exception|\n\s+at /)
  })

  it("hides suggestions even with mercurius's own formatter, through graphql-js's hideSuggestions", async () => {
    app = Fastify()
    const { graphql } = mercuriusGuardOptions({})
    await app.register(mercurius, { schema: SDL, resolvers, graphql } as never)
    const res = await post({ query: '{ usr { id } }' })
    expect(res.body.errors?.[0]?.message).toBe('Cannot query field "usr" on type "Query".')
  })

  it("'minimal' answers generic messages with our code and the request id", async () => {
    await build({ errorDetail: 'minimal', maxDepth: 3 })
    const deep = await post({ query: nested(4) })
    expect(deep.status).toBe(400)
    expect(deep.body.errors).toEqual([
      {
        message: 'Request rejected',
        extensions: { code: 'ERR_GRAPHQL_DEPTH_LIMIT', requestId: 'req-42' },
      },
    ])
    const boom = await post({ query: '{ boom }' })
    expect(boom.body.errors).toEqual([
      { message: 'Internal error', path: ['boom'], extensions: { requestId: 'req-42' } },
    ])
    const typo = await post({ query: '{ usr }' })
    expect(typo.body.errors).toEqual([
      { message: 'Request rejected', extensions: { requestId: 'req-42' } },
    ])
  })
})

describe('token limit in mercurius', () => {
  const flood = `{ ${'me '.repeat(350_000)}}` // over 1 MB

  it.each([
    ['at parse (the spread)', {}],
    ['in preValidation (the plugin alone)', { spread: false }],
  ])('refuses a 1 MB string of tokens with ERR_GRAPHQL_TOKEN_LIMIT, %s', async (_, setup) => {
    await build({ maxTokens: 1000 }, setup)
    const res = await post({ query: flood })
    expect(res.status).toBe(400)
    expect(codeOf(res.body)).toEqual(['ERR_GRAPHQL_TOKEN_LIMIT'])
    expect(res.body.errors?.[0]?.message).toBe('Query is too large.')
  })

  it('reveals the limit only when asked', async () => {
    await build({ maxTokens: 1000, revealLimits: true })
    const res = await post({ query: flood })
    expect(res.body.errors?.[0]?.message).toBe('Query has more than 1000 tokens.')
  })
})

describe('JSON document bypass', () => {
  // A query that is a JSON document AST: mercurius parses it with JSON.parse
  // when it fails to parse as GraphQL, and maxTokens never sees it.
  const json = JSON.stringify(parse('{ users(first: 1) { id } }', { noLocation: true }))

  it('is real: mercurius executes a JSON AST sent as the query (spread only)', async () => {
    await build({ maxTokens: 5 }, { plugin: false })
    const res = await post({ query: json })
    expect(res.body).toEqual({ data: { users: [{ id: '0' }] } })
  })

  it('is closed by the plugin', async () => {
    await build({ maxTokens: 5 })
    const res = await post({ query: json })
    expect(res.status).toBe(400)
    expect(codeOf(res.body)).toEqual(['ERR_GRAPHQL_JSON_DOCUMENT_REFUSED'])
  })
})

describe('registration', () => {
  it('graphqlGuards needs mercurius first', async () => {
    app = Fastify()
    const err = await rejection(
      (async () => {
        await app!.register(graphqlGuards, { maxDepth: 3 })
      })(),
    )
    expect(err).toMatchObject({ code: 'ERR_CONFIG_INVALID' })
  })

  it("'authenticated' introspection needs isAuthenticated", async () => {
    app = Fastify()
    await app.register(mercurius, { schema: SDL, resolvers } as never)
    const err = await rejection(
      (async () => {
        await app!.register(graphqlGuards, { introspection: 'authenticated' })
      })(),
    )
    expect(err).toMatchObject({ code: 'ERR_CONFIG_INVALID' })
    expect((err as Error).message).toContain('isAuthenticated')
  })
})

describe('subscriptions over WebSocket', () => {
  it('are checked by the plugin, though mercurius never validates them', async () => {
    let started!: () => void
    const subscribed = new Promise<void>((resolve) => {
      started = resolve
    })
    app = Fastify()
    // mercurius registers @fastify/websocket in an encapsulated child: keep
    // every child instance, to find the one decorated with injectWS.
    const children: object[] = []
    app.addHook('onRegister', (instance) => void children.push(instance))
    await app.register(mercurius, {
      schema: `${SDL} type Subscription { tick: User }`,
      resolvers: {
        ...resolvers,
        Subscription: {
          tick: {
            subscribe: async (
              _: unknown,
              __: unknown,
              ctx: { pubsub: { subscribe(t: string): unknown } },
            ) => {
              started()
              return ctx.pubsub.subscribe('TICK')
            },
          },
        },
      },
      subscription: true,
    } as never)
    await app.register(graphqlGuards, { maxDepth: 3 })
    await app.ready()
    const withWs = children.find(
      (c) => typeof (c as { injectWS?: unknown }).injectWS === 'function',
    )
    const ws = await (withWs as { injectWS: InjectWS }).injectWS('/graphql', {
      headers: { 'sec-websocket-protocol': 'graphql-transport-ws' },
    })
    const messages: { id?: string; type: string; payload?: unknown }[] = []
    const next = (type: string) =>
      new Promise<(typeof messages)[number]>((resolve) => {
        const scan = () => {
          const m = messages.find((x) => x.type === type)
          if (m === undefined) return false
          messages.splice(messages.indexOf(m), 1)
          resolve(m)
          return true
        }
        if (!scan()) ws.on('message', () => void scan())
      })
    ws.on('message', (raw: Buffer) => messages.push(JSON.parse(raw.toString())))
    ws.send(JSON.stringify({ type: 'connection_init' }))
    await next('connection_ack')
    ws.send(
      JSON.stringify({
        id: 'deep',
        type: 'subscribe',
        payload: { query: 'subscription { tick { friends { friends { name } } } }' },
      }),
    )
    const refused = await next('error')
    expect(refused.id).toBe('deep')
    expect(refused.payload).toEqual([
      expect.objectContaining({ extensions: { code: 'ERR_GRAPHQL_DEPTH_LIMIT' } }),
    ])
    ws.send(
      JSON.stringify({
        id: 'ok',
        type: 'subscribe',
        payload: { query: 'subscription { tick { id } }' },
      }),
    )
    await subscribed
    ws.terminate()
  })
})

type InjectWS = (
  path: string,
  context: { headers: Record<string, string> },
) => Promise<{
  send(data: string): void
  on(event: 'message', listener: (raw: Buffer) => void): void
  terminate(): void
}>
