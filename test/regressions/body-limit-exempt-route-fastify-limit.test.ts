/**
 * Regression: the plugin set every route's Fastify `bodyLimit` to its own
 * limit, exempt routes included, and lowered it as readily as it raised it.
 * A path in `exemptPaths`, or an exempt method on a route shared with guarded
 * ones, was still cut at `maxSize`, by Fastify instead of the guard. (Since
 * then a method exempts only bodiless requests: a body on OPTIONS is limited
 * like one on POST, by the guard, with the guard's 413.)
 */
import Fastify from 'fastify'
import { expect, onTestFinished, test } from 'vitest'
import { bodyLimit } from '../../src/http/index.js'

async function start() {
  const app = Fastify()
  onTestFinished(async () => {
    await app.close()
  })
  await app.register(bodyLimit, { maxSize: 100, exemptPaths: ['/upload'] })
  const echo = async (req: { body: unknown }) => ({
    bytes: (req.body as string | undefined)?.length ?? 0,
  })
  app.post('/upload', echo)
  app.route({ method: ['POST', 'OPTIONS'], url: '/shared', handler: echo })
  return app
}

const body = 'a'.repeat(10_000)

test('an exempt path keeps Fastify’s own limit instead of maxSize', async () => {
  const app = await start()
  const res = await app.inject({
    method: 'POST',
    url: '/upload',
    payload: body,
    headers: { 'content-type': 'text/plain' },
  })
  expect(res.statusCode).toBe(200)
  expect(res.json()).toEqual({ bytes: body.length })
})

test('on a route shared with a guarded method, a body on OPTIONS is limited like one on POST', async () => {
  const app = await start()
  for (const method of ['OPTIONS', 'POST'] as const) {
    const res = await app.inject({
      method,
      url: '/shared',
      payload: body,
      headers: { 'content-type': 'text/plain' },
    })
    expect(res.statusCode, method).toBe(413)
    expect(res.json()).toEqual({
      detail: 'Request body too large',
      max_size: 100,
      max_size_human: '100 bytes',
    })
  }
  const bodiless = await app.inject({ method: 'OPTIONS', url: '/shared' })
  expect(bodiless.statusCode).toBe(200)
})
