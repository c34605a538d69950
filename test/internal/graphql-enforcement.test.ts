/**
 * The seam through which the profile enforcer runs the GraphQL capability's
 * installers (src/internal/graphql-enforcement.ts): provided by
 * src/graphql/fastify.ts as it loads, once, under the public plugin the
 * consumer names.
 */
import { describe, expect, it, vi } from 'vitest'
import { SeamError } from '../../src/errors.js'
import {
  isFailure,
  relevelResponse,
  relevelSerializedErrors,
} from '../../src/graphql/error-formatter.js'
import { installGraphqlGuards } from '../../src/graphql/fastify.js'
import { graphqlGuards, graphqlTracing } from '../../src/graphql/index.js'
import { attachTracing, prepareTracing } from '../../src/graphql/tracing/mercurius.js'
import { guardWebSockets } from '../../src/graphql/websocket.js'
import {
  type GraphqlEnforcementHooks,
  graphqlEnforcement,
  provideGraphqlEnforcement,
} from '../../src/internal/graphql-enforcement.js'

const impostor: GraphqlEnforcementHooks = {
  installGraphqlGuards: () => undefined,
  guardWebSockets: () => undefined,
  prepareTracing: () => undefined,
  attachTracing: () => undefined,
  isFailure: () => false,
  relevelResponse: (payload) => payload,
  relevelSerializedErrors: (errors) => [...errors],
}

describe('the GraphQL enforcement seam', () => {
  it("is provided by the graphql capability's own functions once its entry is loaded", () => {
    expect(graphqlEnforcement(graphqlGuards)).toEqual({
      installGraphqlGuards,
      guardWebSockets,
      prepareTracing,
      attachTracing,
      isFailure,
      relevelResponse,
      relevelSerializedErrors,
    })
  })

  it('refuses a second provider, and keeps handing out the first', () => {
    expect(() => provideGraphqlEnforcement(graphqlGuards, impostor)).toThrow(SeamError)
    expect(graphqlEnforcement(graphqlGuards).installGraphqlGuards).toBe(installGraphqlGuards)
  })

  it('refuses a consumer naming another plugin than the one whose module provided', () => {
    const other = graphqlTracing as unknown as typeof graphqlGuards
    expect(() => graphqlEnforcement(other)).toThrow(SeamError)
  })

  it('refuses a consumer that comes before the provider, with a typed error', async () => {
    vi.resetModules()
    try {
      // A fresh copy of the seam alone: its imports of graphql/ are type-only,
      // so nothing has provided it.
      const fresh = await import('../../src/internal/graphql-enforcement.js')
      const err = (() => {
        try {
          fresh.graphqlEnforcement(graphqlGuards)
        } catch (caught) {
          return caught as { code?: unknown; name?: unknown; message?: unknown }
        }
        return undefined
      })()
      expect(err?.code).toBe('ERR_SEAM_MISWIRED')
      expect(err?.name).toBe('SeamError')
      expect(err?.message).toContain('src/graphql/fastify.ts')
    } finally {
      vi.resetModules()
    }
  })
})
