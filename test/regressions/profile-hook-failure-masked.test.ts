/**
 * Regression (review of issue 14): without the `mercuriusOptions()` spread,
 * an error thrown on the GraphQL route before mercurius ran — by the
 * profile's own `authenticate()` (a backend down: `db password=…`), or by
 * any hook of the app — was answered by mercurius's error handler with its
 * default formatter, and the enforcer's fallback kept the message under
 * `errorDetail: 'safe'` (an error with no path and no code looks like a
 * validation error once serialized). A failure's text is now masked on that
 * route as everywhere else; mercurius's own fixed messages (a mutation over
 * GET) and GraphQL rejections keep theirs.
 *
 * And it answers 500: masked, it still went out as 200 `{ data: null }`,
 * which monitoring and retrying clients read as success. A resolver's error
 * keeps GraphQL's 200 with its path.
 */
import Fastify from 'fastify'
import mercurius from 'mercurius'
import { describe, expect, it, onTestFinished } from 'vitest'
import { defineProfile, ProfileEnforcer, STANDARD } from '../../src/profiles/index.js'
import { authenticate, resolvers, schema } from '../profiles/harness.js'

async function build(
  errorDetail: 'safe' | 'minimal',
  spread: boolean,
  failing: 'authenticate' | 'hook',
) {
  const app = Fastify({ logger: false })
  onTestFinished(async () => {
    await app.close()
  })
  const enforcer = new ProfileEnforcer(defineProfile(STANDARD, { errorDetail }), {
    authenticate:
      failing === 'authenticate'
        ? (request) => {
            if (request.headers['x-fail'] !== undefined) {
              throw new Error('db password=hunter2 auth backend down')
            }
            return authenticate(request)
          }
        : authenticate,
  })
  await enforcer.applyTo(app)
  if (failing === 'hook') {
    app.addHook('preHandler', async (request) => {
      if (request.headers['x-fail'] !== undefined) throw new Error('cache password=hunter2 down')
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

describe('a failure on the GraphQL route is masked, with or without the spread', () => {
  for (const failing of ['authenticate', 'hook'] as const) {
    for (const errorDetail of ['safe', 'minimal'] as const) {
      for (const spread of [true, false]) {
        it(`${failing} throws (${errorDetail}, ${spread ? 'with' : 'without'} the spread)`, async () => {
          const app = await build(errorDetail, spread, failing)
          const res = await app.inject({
            method: 'POST',
            url: '/graphql',
            headers: { authorization: 'Bearer alice', 'x-fail': '1' },
            payload: { query: '{ hello }' },
          })
          expect(res.statusCode).toBe(500)
          expect(res.body).not.toContain('hunter2')
          expect(res.body).not.toContain('down')
          const body = res.json() as { errors?: { message: string }[]; code?: string }
          const message = body.errors?.[0]?.message ?? body.code
          expect(['Internal error', 'ERR_INTERNAL']).toContain(message)
          // The same route still answers normally.
          const ok = await app.inject({
            method: 'POST',
            url: '/graphql',
            headers: { authorization: 'Bearer alice' },
            payload: { query: '{ hello }' },
          })
          expect(ok.json()).toEqual({ data: { hello: 'world' } })
          expect(ok.statusCode).toBe(200)
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
  }

  it("mercurius's own fixed message and GraphQL's rejections keep their text (safe, without the spread)", async () => {
    const app = await build('safe', false, 'hook')
    const get = await app.inject({
      method: 'GET',
      url: `/graphql?query=${encodeURIComponent('mutation { setName(name: "x") }')}`,
      headers: { authorization: 'Bearer alice' },
    })
    expect(get.statusCode).toBe(405)
    expect(get.body).toContain('Operation cannot be performed via a GET request')
    const typo = await app.inject({
      method: 'POST',
      url: '/graphql',
      headers: { authorization: 'Bearer alice' },
      payload: { query: '{ helo }' },
    })
    expect(typo.body).toMatch(/Cannot query field/)
  })
})
