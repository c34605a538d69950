/**
 * Regression (review of issue 14): `enforcer.applyTo(instance)` given an
 * encapsulated instance (a plugin not wrapped in fastify-plugin, a common
 * slip) while mercurius was registered on the root. The instance sees the
 * root's `app.graphql` (decorators are inherited), so the enforcer installed
 * its GraphQL guards there and `app.ready()` resolved — but authentication,
 * the rate limits and error masking are hooks of the instance only, and the
 * GraphQL route is not under it: an anonymous request got its data and a
 * resolver's `db password=…` reached the client. A profile protected far
 * less than it said, silently.
 *
 * A mercurius outside the instance given to `applyTo` is not the enforcer's
 * to guard; its route at `graphqlPath` makes `app.ready()` reject with
 * `ERR_PROFILE_GRAPHQL_UNGUARDED`, saying how to wire it.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import mercurius from 'mercurius'
import { describe, expect, it, onTestFinished } from 'vitest'
import { ProfileEnforcer, STANDARD } from '../../src/profiles/index.js'
import { authenticate, resolvers, schema } from '../profiles/harness.js'

describe('applyTo on an encapsulated instance', () => {
  for (const order of ['mercurius first', 'applyTo first'] as const) {
    it(`mercurius on the root, outside it (${order}): app.ready() rejects`, async () => {
      const app = Fastify({ logger: false })
      onTestFinished(async () => {
        await app.close()
      })
      const enforcer = new ProfileEnforcer(STANDARD, { authenticate })
      const security = async (instance: FastifyInstance) => {
        await enforcer.applyTo(instance)
        instance.get('/inside', async () => 'inside')
      }
      if (order === 'mercurius first') {
        await app.register(mercurius, { schema, resolvers })
        await app.register(security)
      } else {
        await app.register(security)
        await app.register(mercurius, { schema, resolvers })
      }
      const err = await app.ready().then(
        () => undefined,
        (e: unknown) => e,
      )
      if (err === undefined) {
        // Had it started, the GraphQL route would have to be protected.
        const res = await app.inject({
          method: 'POST',
          url: '/graphql',
          payload: { query: '{ secret }' },
        })
        expect(res.statusCode).toBe(401)
      }
      expect(err).toMatchObject({ code: 'ERR_PROFILE_GRAPHQL_UNGUARDED' })
      expect(String((err as Error).message)).toMatch(/fastify-plugin/)
    })
  }

  it('mercurius inside the same instance: guarded, authenticated, masked', async () => {
    const app = Fastify({ logger: false })
    onTestFinished(async () => {
      await app.close()
    })
    const enforcer = new ProfileEnforcer(STANDARD, { authenticate })
    await app.register(async (instance) => {
      await enforcer.applyTo(instance)
      await instance.register(mercurius, { schema, resolvers })
    })
    await app.ready()
    const anonymous = await app.inject({
      method: 'POST',
      url: '/graphql',
      payload: { query: '{ hello }' },
    })
    expect(anonymous.statusCode).toBe(401)
    const crash = await app.inject({
      method: 'POST',
      url: '/graphql',
      headers: { authorization: 'Bearer alice' },
      payload: { query: '{ secret }' },
    })
    expect(crash.body).not.toContain('hunter2')
    expect(enforcer.registeredStack.map((s) => s.name)).toContain('graphqlGuards')
  })
})
