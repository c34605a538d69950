/**
 * The error formatter on hand-built execution results: what each level of
 * detail keeps, and the status it answers.
 */
import { GraphQLError } from 'graphql'
import { describe, expect, it } from 'vitest'
import { createErrorFormatter, GraphqlRejectedError } from '../../src/graphql/index.js'

const context = { reply: { request: { id: 'r-1' } } }
const suggestion = new GraphQLError(
  'Cannot query field "usr" on type "Query". Did you mean "user"?',
)
const internal = new GraphQLError('db down', {
  path: ['boom'],
  extensions: { code: 'DB', exception: { stacktrace: ['at x'] }, stacktrace: ['at y'] },
})
const rejectedBy = (errors: GraphQLError[], status?: number) =>
  new GraphQLError('wrapper', { originalError: new GraphqlRejectedError(errors, status) })
const depth = new GraphQLError('Query is too deep.', {
  extensions: { code: 'ERR_GRAPHQL_DEPTH_LIMIT' },
})
const alias = new GraphQLError('Query has too many aliases.', {
  extensions: { code: 'ERR_GRAPHQL_ALIAS_LIMIT' },
})

describe('createErrorFormatter', () => {
  it("'full' keeps everything but suggestions (unless blockFieldSuggestions is off)", () => {
    const f = createErrorFormatter({ errorDetail: 'full' })
    const out = f({ errors: [suggestion, internal] }, context).response.errors
    expect(out[0]!.message).toBe('Cannot query field "usr" on type "Query".')
    expect(out[1]!.extensions).toEqual(internal.extensions)
    const keep = createErrorFormatter({ errorDetail: 'full', blockFieldSuggestions: false })
    expect(keep({ errors: [suggestion] }, context).response.errors[0]!.message).toContain(
      'Did you mean',
    )
  })

  it("'safe' drops exception and stacktrace extensions, keeps the message and code", () => {
    const out = createErrorFormatter()({ data: { boom: null }, errors: [internal] }, context)
    expect(out.statusCode).toBe(200)
    expect(out.response.errors).toEqual([
      { message: 'db down', path: ['boom'], extensions: { code: 'DB' } },
    ])
  })

  it("'minimal' keeps only our codes and adds the request id", () => {
    const f = createErrorFormatter({ errorDetail: 'minimal', requestId: () => 'custom' })
    const out = f({ errors: [rejectedBy([depth]), internal] }, context).response.errors
    expect(out).toEqual([
      {
        message: 'Request rejected',
        extensions: { code: 'ERR_GRAPHQL_DEPTH_LIMIT', requestId: 'custom' },
      },
      { message: 'Internal error', path: ['boom'], extensions: { requestId: 'custom' } },
    ])
  })

  it('answers a rejection with its status, even with several errors', () => {
    const f = createErrorFormatter()
    expect(f({ errors: [rejectedBy([depth, alias])] }, context).statusCode).toBe(400)
    expect(f({ errors: [rejectedBy([depth], 429)] }, context).statusCode).toBe(429)
    expect(f({ errors: [internal] }, context).statusCode).toBe(200)
  })

  it("gives graphql-js's token-limit error our code and hides the limit", () => {
    const syntax = new GraphQLError(
      'Syntax Error: Document contains more that 1000 tokens. Parsing aborted.',
    )
    const hidden = createErrorFormatter()({ errors: [syntax] }, context).response.errors[0]
    expect(hidden).toEqual({
      message: 'Query is too large.',
      extensions: { code: 'ERR_GRAPHQL_TOKEN_LIMIT' },
    })
    const shown = createErrorFormatter({ revealLimits: true })({ errors: [syntax] }, context)
    expect(shown.response.errors[0]!.message).toBe('Query has more than 1000 tokens.')
  })
})
