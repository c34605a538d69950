/**
 * Regression: a failure on the GraphQL route before any field ran (the
 * profile's `authenticate()` with its backend down, another hook throwing)
 * was masked but answered 200 `{ data: null, errors: [Internal error] }`,
 * with or without the `mercuriusOptions()` spread: monitoring and retrying
 * clients read it as a success. It is a server failure, answered 500 with
 * ERR_INTERNAL; a resolver's error keeps GraphQL's 200 with its path.
 */
import Fastify from 'fastify'
import mercurius from 'mercurius'
import { describe, expect, it, onTestFinished } from 'vitest'
import { defineProfile, ProfileEnforcer, STANDARD } from '../../src/profiles/index.js'
import { authenticate, resolvers, schema } from '../profiles/harness.js'

async function build(spread: boolean, failing: 'authenticate' | 'hook') {
  const app = Fastify({ logger: false })
  onTestFinished(async () => {
    await app.close()
  })
  const enforcer = new ProfileEnforcer(defineProfile(STANDARD, {}), {
    authenticate:
      failing === 'authenticate'
        ? (request) => {
            if (request.headers['x-fail'] !== undefined) throw new Error('auth backend down')
            return authenticate(request)
          }
        : authenticate,
  })
  await enforcer.applyTo(app)
  if (failing === 'hook') {
    app.addHook('preHandler', async (request) => {
      if (request.headers['x-fail'] !== undefined) throw new Error('cache down')
    })
  }
  await app.register(mercurius, {
    schema,
    resolvers,
    ...(spread ? enforcer.mercuriusOptions() : {}),
  })
  await app.ready()
  return app
}

describe('a failure before execution on the GraphQL route answers 500', () => {
  for (const failing of ['authenticate', 'hook'] as const) {
    for (const spread of [true, false]) {
      it(`${failing} throws (${spread ? 'with' : 'without'} the spread)`, async () => {
        const app = await build(spread, failing)
        const res = await app.inject({
          method: 'POST',
          url: '/graphql',
          headers: { authorization: 'Bearer alice', 'x-fail': '1' },
          payload: { query: '{ hello }' },
        })
        expect(res.statusCode).toBe(500)
        expect(res.json()).toEqual({
          data: null,
          errors: [{ message: 'Internal error', extensions: { code: 'ERR_INTERNAL' } }],
        })
        const ok = await app.inject({
          method: 'POST',
          url: '/graphql',
          headers: { authorization: 'Bearer alice' },
          payload: { query: '{ hello }' },
        })
        expect(ok.statusCode).toBe(200)
        // A resolver's failure is a field error: GraphQL's 200, with its path.
        const field = await app.inject({
          method: 'POST',
          url: '/graphql',
          headers: { authorization: 'Bearer alice' },
          payload: { query: '{ secret }' },
        })
        expect(field.statusCode).toBe(200)
        expect(field.json()).toMatchObject({
          data: { secret: null },
          errors: [{ path: ['secret'] }],
        })
      })
    }
  }
})
