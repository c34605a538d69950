/**
 * Apollo Server rewrote our rejections: a depth refusal from our validation
 * rules reached the client as GRAPHQL_VALIDATION_FAILED, and one thrown from
 * didResolveOperation was answered 500. With apolloGraphqlGuards the client
 * gets 400 and ERR_GRAPHQL_DEPTH_LIMIT both ways.
 */
import { ApolloServer, HeaderMap } from '@apollo/server'
import { afterEach, describe, expect, it } from 'vitest'
import { apolloGraphqlGuards, createValidationRules } from '../../src/graphql/index.js'
import { nested, resolvers, SDL } from '../graphql/fixtures.js'

let server: ApolloServer | undefined

afterEach(async () => {
  await server?.stop()
  server = undefined
})

async function run(withRules: boolean) {
  const limits = { maxDepth: 4 }
  server = new ApolloServer({
    typeDefs: SDL,
    resolvers,
    plugins: [apolloGraphqlGuards(limits)],
    ...(withRules ? { validationRules: createValidationRules(limits) } : {}),
  })
  await server.start()
  const res = await server.executeHTTPGraphQLRequest({
    httpGraphQLRequest: {
      method: 'POST',
      headers: new HeaderMap([['content-type', 'application/json']]),
      search: '',
      body: { query: nested(6) },
    },
    context: async () => ({}),
  })
  const text = res.body.kind === 'complete' ? res.body.string : ''
  const body = JSON.parse(text) as { errors: { extensions: { code: string } }[] }
  return { status: res.status ?? 200, codes: body.errors.map((e) => e.extensions.code) }
}

describe('Apollo Server keeps our refusal code and answers 400', () => {
  it('a refusal from didResolveOperation is 400, not 500', async () => {
    expect(await run(false)).toEqual({ status: 400, codes: ['ERR_GRAPHQL_DEPTH_LIMIT'] })
  })

  it('our validation rules given to Apollo keep ERR_GRAPHQL_*, not GRAPHQL_VALIDATION_FAILED', async () => {
    expect(await run(true)).toEqual({ status: 400, codes: ['ERR_GRAPHQL_DEPTH_LIMIT'] })
  })
})
