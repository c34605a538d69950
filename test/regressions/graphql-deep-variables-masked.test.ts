/**
 * Regression (review of issue 14): the nesting bound held for the document
 * but not for its variables. mercurius coerces variables (graphql-js's
 * recursive `coerceInputValue`) before any hook but `preParsing` sees them:
 * a variable of a recursive input type nested 20,000 levels deep overflowed
 * the stack, and without the `mercuriusOptions()` spread the client read
 * `Maximum call stack size exceeded` under `errorDetail: 'safe'`. Variables
 * are now bounded at MAX_NESTING, before parsing, and refused with the depth
 * code, on POST, GET and in batches.
 */
import Fastify from 'fastify'
import mercurius from 'mercurius'
import { describe, expect, it, onTestFinished } from 'vitest'
import { graphqlGuards, MAX_NESTING, mercuriusGuardOptions } from '../../src/graphql/index.js'
import { ProfileEnforcer, STANDARD } from '../../src/profiles/index.js'
import { authenticate, graphqlCodes } from '../profiles/harness.js'

const SDL = `
  input Node { next: Node, list: [Node], label: String }
  type Query { walk(node: Node): Int, hello: String }
`
const resolvers = { Query: { walk: () => 1, hello: () => 'world' } }
const QUERY = 'query Q($n: Node) { walk(node: $n) }'

/** `{"next":{"next":…{"label":"x"}…}}` as JSON text, `levels` objects deep. */
const deepNode = (levels: number) =>
  `${'{"next":'.repeat(levels - 1)}{"label":"x"}${'}'.repeat(levels - 1)}`
/** `{"list":[{"list":[…]}]}`: objects and lists, `levels` brackets deep. */
const deepList = (levels: number) =>
  `${'{"list":['.repeat(levels / 2 - 1)}{"label":"x"}${']}'.repeat(levels / 2 - 1)}`

type Wiring = 'profile' | 'profile without the spread' | 'graphqlGuards'

async function build(wiring: Wiring) {
  const app = Fastify({ logger: false })
  onTestFinished(async () => {
    await app.close()
  })
  if (wiring === 'graphqlGuards') {
    const opts = { maxDepth: 10 }
    // No formatter of ours: mercurius's default one answers whatever is thrown.
    await app.register(mercurius, { schema: SDL, resolvers, allowBatchedQueries: true })
    await app.register(graphqlGuards, opts)
  } else {
    const enforcer = new ProfileEnforcer(STANDARD, { authenticate })
    await enforcer.applyTo(app)
    await app.register(mercurius, {
      schema: SDL,
      resolvers,
      allowBatchedQueries: true,
      ...(wiring === 'profile' ? enforcer.mercuriusOptions() : {}),
    })
  }
  await app.ready()
  const headers = { authorization: 'Bearer alice', 'content-type': 'application/json' }
  return {
    post: (body: string) => app.inject({ method: 'POST', url: '/graphql', payload: body, headers }),
    get: (variables: string) =>
      app.inject({
        method: 'GET',
        url: `/graphql?query=${encodeURIComponent(QUERY)}&variables=${encodeURIComponent(variables)}`,
        headers,
      }),
  }
}

/** Refused with the depth code; a batch answers 200, the item carries the error. */
function refusedAsTooDeep(
  res: { statusCode: number; body: string; json(): unknown },
  status = 400,
) {
  expect(res.body).not.toMatch(/call stack|RangeError/i)
  expect(res.statusCode).toBe(status)
  const body = res.json()
  const items = Array.isArray(body) ? body : [body]
  const codes = items.flatMap((item) =>
    graphqlCodes({ json: () => item } as Parameters<typeof graphqlCodes>[0]),
  )
  expect(codes).toContain('ERR_GRAPHQL_DEPTH_LIMIT')
}

const WIRINGS: readonly Wiring[] = ['profile', 'profile without the spread', 'graphqlGuards']

describe('variables nested past MAX_NESTING are refused before mercurius coerces them', () => {
  for (const wiring of WIRINGS) {
    describe(wiring, () => {
      it('POST, a recursive input object 20,000 levels deep', async () => {
        const a = await build(wiring)
        refusedAsTooDeep(await a.post(`{"query":"${QUERY}","variables":{"n":${deepNode(20_000)}}}`))
      })

      it('POST, objects and lists 20,000 levels deep', async () => {
        const a = await build(wiring)
        refusedAsTooDeep(await a.post(`{"query":"${QUERY}","variables":{"n":${deepList(20_000)}}}`))
      })

      it('GET, variables in the query string', async () => {
        const a = await build(wiring)
        refusedAsTooDeep(await a.get(`{"n":${deepNode(20_000)}}`))
      })

      it('a batch item', async () => {
        const a = await build(wiring)
        const body = `[{"query":"{ hello }"},{"query":"${QUERY}","variables":{"n":${deepNode(20_000)}}}]`
        const res = await a.post(body)
        refusedAsTooDeep(res, 200)
        expect((res.json() as unknown[])[0]).toEqual({ data: { hello: 'world' } })
      })

      it('variables at MAX_NESTING still run', async () => {
        const a = await build(wiring)
        // The variables object and `n` itself are two of the levels.
        const res = await a.post(
          `{"query":"${QUERY}","variables":{"n":${deepNode(MAX_NESTING - 1)}}}`,
        )
        expect(res.statusCode, res.body).toBe(200)
        expect(res.json()).toEqual({ data: { walk: 1 } })
      })
    })
  }
})

describe('mercuriusGuardOptions alone', () => {
  it('masks the overflow it cannot prevent (no hook of ours runs)', async () => {
    const app = Fastify({ logger: false })
    onTestFinished(async () => {
      await app.close()
    })
    await app.register(mercurius, { schema: SDL, resolvers, ...mercuriusGuardOptions({}) })
    const res = await app.inject({
      method: 'POST',
      url: '/graphql',
      headers: { 'content-type': 'application/json' },
      payload: `{"query":"${QUERY}","variables":{"n":${deepNode(20_000)}}}`,
    })
    expect(res.body).not.toMatch(/call stack|RangeError/i)
    expect(graphqlCodes(res)).toEqual(['ERR_INTERNAL'])
  })
})
