import Fastify from 'fastify'
import type { DocumentNode, ValidationRule } from 'graphql'
import mercurius from 'mercurius'
import { describe, expectTypeOf, it } from 'vitest'
import {
  analyzeDocument,
  createValidationRules,
  type DocumentAnalysis,
  type GraphqlGuardOptions,
  graphqlGuards,
  mercuriusGuardOptions,
  mercuriusPersistedQueryOptions,
  PersistedOperations,
} from '../../src/graphql/index.js'

describe('graphql types', () => {
  it('spreads into mercurius options, and the plugin takes the same options', async () => {
    const app = Fastify()
    const opts: GraphqlGuardOptions = {
      maxDepth: 10,
      introspection: 'authenticated',
      isAuthenticated: (request) => request.headers.authorization !== undefined,
      chargeCost: async (_request, cost) => {
        expectTypeOf(cost).toEqualTypeOf<number>()
      },
    }
    await app.register(mercurius, {
      schema: 'type Query { a: Int }',
      resolvers: {},
      ...mercuriusGuardOptions(opts),
    })
    await app.register(mercurius, {
      schema: 'type Query { a: Int }',
      ...mercuriusPersistedQueryOptions(PersistedOperations.fromQueries([]), { required: true }),
    })
    await app.register(graphqlGuards, opts)
    // @ts-expect-error not an introspection mode
    const bad: GraphqlGuardOptions = { introspection: 'sometimes' }
    void bad
  })

  it('returns graphql-js rules and a typed analysis', () => {
    expectTypeOf(createValidationRules({ maxDepth: 3 })).toEqualTypeOf<ValidationRule[]>()
    expectTypeOf(analyzeDocument({} as DocumentNode)).toEqualTypeOf<DocumentAnalysis>()
  })
})
