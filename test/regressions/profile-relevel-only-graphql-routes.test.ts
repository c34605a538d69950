/**
 * Regression (review of issue 14): the enforcer's preSerialization hook,
 * which brings what mercurius's own formatter wrote to the profile's
 * `errorDetail`, ran on every route of an app that has mercurius, not only
 * on mercurius's. A REST route answering JSON:API errors (`{ errors: [...] }`)
 * was rewritten: under `safe` its 422 became a 500 `ERR_INTERNAL` (the hook
 * crashed on an error without `message`), under `minimal` its details were
 * replaced by `Request rejected`, and a `{ data, errors }` report lost its
 * messages. Only mercurius's own answers are brought to the profile's level.
 */
import Fastify from 'fastify'
import mercurius from 'mercurius'
import { describe, expect, it, onTestFinished } from 'vitest'
import { defineProfile, ProfileEnforcer, STANDARD } from '../../src/profiles/index.js'
import { authenticate, resolvers, schema } from '../profiles/harness.js'

const JSON_API = {
  errors: [
    {
      status: '422',
      title: 'Invalid attribute',
      detail: 'First name must contain at least two characters.',
      source: { pointer: '/data/attributes/firstName' },
    },
  ],
}
const REPORT = { data: { rows: 2 }, errors: [{ message: 'row 3 skipped', path: ['rows', 3] }] }

async function build(errorDetail: 'safe' | 'minimal', mercuriusFirst: boolean, spread: boolean) {
  const app = Fastify({ logger: false })
  onTestFinished(async () => {
    await app.close()
  })
  const enforcer = new ProfileEnforcer(defineProfile(STANDARD, { errorDetail }), { authenticate })
  const register = () =>
    app.register(mercurius, { schema, resolvers, ...(spread ? enforcer.mercuriusOptions() : {}) })
  if (mercuriusFirst) await register()
  await enforcer.applyTo(app)
  if (!mercuriusFirst) await register()
  app.post('/orders', async (_request, reply) => reply.code(422).send(JSON_API))
  app.get('/report', async () => REPORT)
  await app.ready()
  const headers = { authorization: 'Bearer alice' }
  return {
    orders: () => app.inject({ method: 'POST', url: '/orders', payload: {}, headers }),
    report: () => app.inject({ method: 'GET', url: '/report', headers }),
    graphql: (query: string) =>
      app.inject({ method: 'POST', url: '/graphql', payload: { query }, headers }),
  }
}

describe("a REST route's JSON with an errors array is not GraphQL's to rewrite", () => {
  for (const errorDetail of ['safe', 'minimal'] as const) {
    for (const mercuriusFirst of [true, false]) {
      for (const spread of [true, false]) {
        const name = `${errorDetail}, mercurius ${mercuriusFirst ? 'before' : 'after'} applyTo, ${spread ? 'with' : 'without'} the spread`
        it(name, async () => {
          const a = await build(errorDetail, mercuriusFirst, spread)
          const orders = await a.orders()
          expect(orders.statusCode).toBe(422)
          expect(orders.json()).toEqual(JSON_API)
          const report = await a.report()
          expect(report.statusCode).toBe(200)
          expect(report.json()).toEqual(REPORT)
          // mercurius's answers still are brought to the profile's level.
          const crash = await a.graphql('{ secret }')
          expect(crash.body).not.toContain('hunter2')
          expect(crash.json().errors[0].message).toBe('Internal error')
        })
      }
    }
  }
})
