/**
 * Regression: once the application's own `setErrorHandler` was respected, a
 * profile's `errorDetail` stopped applying behind it: under STANDARD
 * (`errorDetail: 'safe'`) a handler answering `{ message: error.message }`
 * sent a route's internal error text (a connection string, say) to the
 * client. The handler still runs (logging, metrics, its 4xx shapes); a 5xx
 * body it writes is levelled to the profile's `errorDetail` unless that is
 * `full`.
 */
import Fastify, { type FastifyError } from 'fastify'
import { describe, expect, it } from 'vitest'
import { defineProfile, ProfileEnforcer, STANDARD } from '../../src/profiles/index.js'

const SECRET = 'postgres://app:hunter2@db.internal/prod'

async function build(errorDetail: 'safe' | 'minimal' | 'full') {
  const app = Fastify({ logger: false })
  const seen: string[] = []
  app.setErrorHandler((error: FastifyError, _request, reply) => {
    seen.push(error.message)
    return reply.code(error.statusCode ?? 500).send({ mine: true, message: error.message })
  })
  const profile = defineProfile({ ...STANDARD, name: `detail-${errorDetail}`, errorDetail })
  await new ProfileEnforcer(profile, {
    authenticate: () => ({ principal: 'p', kind: 'apiKey' as const, permissions: [] }),
  }).applyTo(app)
  app.get('/boom', async () => {
    throw new Error(`connect ECONNREFUSED ${SECRET}`)
  })
  app.get('/teapot', async (_request, reply) => {
    const e = new Error('short and stout') as FastifyError
    e.statusCode = 418
    return reply.send(e)
  })
  await app.ready()
  return { app, seen }
}

describe("a user's error handler under a profile's errorDetail", () => {
  for (const detail of ['safe', 'minimal'] as const) {
    it(`errorDetail ${detail}: the handler runs, its 5xx body carries no internal text`, async () => {
      const { app, seen } = await build(detail)
      const r = await app.inject({ url: '/boom' })
      expect(r.statusCode).toBe(500)
      expect(seen).toEqual([`connect ECONNREFUSED ${SECRET}`])
      expect(r.body).not.toContain('hunter2')
      expect(r.json()).toMatchObject({ code: 'ERR_INTERNAL' })
      // A 4xx body of the application's stands.
      const t = await app.inject({ url: '/teapot' })
      expect(t.statusCode).toBe(418)
      expect(t.json()).toEqual({ mine: true, message: 'short and stout' })
      await app.close()
    })
  }

  it('errorDetail full: the handler’s body stands', async () => {
    const { app } = await build('full')
    const r = await app.inject({ url: '/boom' })
    expect(r.json()).toEqual({ mine: true, message: `connect ECONNREFUSED ${SECRET}` })
    await app.close()
  })
})
