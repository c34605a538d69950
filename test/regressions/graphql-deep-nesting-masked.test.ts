/**
 * Issue 14, §1: a document nested a few thousand levels deep stays under
 * `maxTokens` but overflows graphql-js's recursive parser, and the client
 * received `Maximum call stack size exceeded`, with no code, under
 * `errorDetail: 'safe'`. Nesting is bounded before graphql-js parses
 * (answered with the depth code), and any non-GraphQL error raised while
 * parsing or validating is masked.
 */
import Fastify from 'fastify'
import mercurius from 'mercurius'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  createErrorFormatter,
  graphqlGuards,
  MAX_NESTING,
  mercuriusGuardOptions,
} from '../../src/graphql/index.js'
import { STANDARD } from '../../src/profiles/index.js'
import { graphqlCodes, harness } from '../profiles/harness.js'

/** `{ user { friends { friends … { name } } } }`, `levels` selection sets deep. */
const deepSelections = (levels: number) =>
  `{ user { ${'friends { '.repeat(levels)}name ${'} '.repeat(levels)}} }`
/** `{ users(first: [[[…1…]]]) { id } }`: list values nested `levels` deep. */
const deepLists = (levels: number) =>
  `{ users(first: ${'['.repeat(levels)}1${']'.repeat(levels)}) { id } }`
/** An object value nested `levels` deep in a variable's default. */
const deepObjects = (levels: number) =>
  `query($x: Int = 1) { hello @include(if: true) users(first: $x) { id } } fragment F on Query { user(id: ${'{a: '.repeat(levels)}1${'}'.repeat(levels)}) { id } }`

const DOCUMENTS: ReadonlyArray<readonly [string, string]> = [
  ['selection sets', deepSelections(3000)],
  ['list values', deepLists(4000)],
  ['object values', deepObjects(4000)],
]

describe('deep nesting is refused before graphql-js parses', () => {
  for (const [what, query] of DOCUMENTS) {
    it(`${what} nested thousands deep, under maxTokens: 400 ERR_GRAPHQL_DEPTH_LIMIT (profile)`, async () => {
      const h = await harness(STANDARD)
      const res = await h.gql(query)
      expect(res.statusCode).toBe(400)
      expect(graphqlCodes(res)).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT'])
      expect(res.body).not.toMatch(/call stack|RangeError/i)
    })

    it(`${what}: the same without the spread`, async () => {
      const h = await harness(STANDARD, { spread: false })
      const res = await h.gql(query)
      expect(res.statusCode).toBe(400)
      expect(graphqlCodes(res)).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT'])
      expect(res.body).not.toMatch(/call stack|RangeError/i)
    })
  }

  it('nesting up to MAX_NESTING still parses, and is measured by the guards as before', async () => {
    const app = Fastify({ logger: false })
    onTestFinished(async () => {
      await app.close()
    })
    const opts = { maxDepth: 10, maxTokens: 100_000 }
    const { schema, resolvers } = await import('../profiles/harness.js')
    await app.register(mercurius, { schema, resolvers, ...mercuriusGuardOptions(opts) })
    await app.register(graphqlGuards, opts)
    // Each friends level is one brace; `{ user {` adds two: MAX_NESTING braces in all.
    const res = await app.inject({
      method: 'POST',
      url: '/graphql',
      payload: { query: deepSelections(MAX_NESTING - 2) },
    })
    expect(res.statusCode).toBe(400)
    expect(graphqlCodes(res)).toEqual(['ERR_GRAPHQL_DEPTH_LIMIT'])
  })
})

describe('a non-GraphQL error raised while parsing or validating is masked', () => {
  it('the stack overflow of graphql-js, with the spread and no plugin: no internals reach the client', async () => {
    const app = Fastify({ logger: false })
    onTestFinished(async () => {
      await app.close()
    })
    const { schema, resolvers } = await import('../profiles/harness.js')
    // The spread alone (no graphqlGuards): graphql-js's parser meets the document.
    await app.register(mercurius, {
      schema,
      resolvers,
      ...mercuriusGuardOptions({ maxTokens: 100_000, errorDetail: 'safe' }),
    })
    const res = await app.inject({
      method: 'POST',
      url: '/graphql',
      payload: { query: deepLists(20_000) },
    })
    expect(res.statusCode).toBeGreaterThanOrEqual(400)
    expect(res.body).not.toMatch(/call stack|RangeError/i)
    expect(graphqlCodes(res)).toEqual(['ERR_INTERNAL'])
  })

  for (const detail of ['safe', 'minimal'] as const) {
    it(`any error that is not a GraphQLError inside mercurius's validation wrapper (${detail})`, () => {
      const format = createErrorFormatter({ errorDetail: detail })
      const inner = [
        new RangeError('Maximum call stack size exceeded'),
        new TypeError("Cannot read properties of undefined (reading 'secret')"),
      ]
      const wrapper = Object.assign(new Error('Graphql validation error'), {
        code: 'MER_ERR_GQL_VALIDATION',
        statusCode: 400,
        errors: inner,
      })
      const { GraphQLError } = require('graphql') as typeof import('graphql')
      const out = format(
        { errors: [new GraphQLError(wrapper.message, { originalError: wrapper })] },
        {},
      )
      const text = JSON.stringify(out.response)
      expect(text).not.toMatch(/call stack|secret|RangeError|TypeError/)
      expect(out.statusCode).toBe(400)
    })
  }

  it("mercurius's own fixed message for a mutation over GET is kept", async () => {
    const app = Fastify({ logger: false })
    onTestFinished(async () => {
      await app.close()
    })
    const { schema, resolvers } = await import('../profiles/harness.js')
    await app.register(mercurius, { schema, resolvers, ...mercuriusGuardOptions({}) })
    const res = await app.inject({
      method: 'GET',
      url: `/graphql?query=${encodeURIComponent('mutation { setName(name: "x") }')}`,
    })
    expect(res.statusCode).toBe(405)
    expect(res.body).toContain('Operation cannot be performed via a GET request')
  })
})
