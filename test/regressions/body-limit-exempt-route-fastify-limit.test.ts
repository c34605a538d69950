/**
 * Regression: the plugin set every route's Fastify `bodyLimit` to its own
 * limit, exempt routes included, and lowered it as readily as it raised it.
 * A path in `exemptPaths`, or an exempt method on a route shared with guarded
 * ones, was still cut at `maxSize`, by Fastify instead of the guard.
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
  const echo = async (req: { body: unknown }) => ({ bytes: (req.body as string).length })
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

test('an exempt method on a route shared with a guarded one is not cut at maxSize', async () => {
  const app = await start()
  const options = await app.inject({
    method: 'OPTIONS',
    url: '/shared',
    payload: body,
    headers: { 'content-type': 'text/plain' },
  })
  expect(options.statusCode).toBe(200)
  const post = await app.inject({
    method: 'POST',
    url: '/shared',
    payload: body,
    headers: { 'content-type': 'text/plain' },
  })
  expect(post.statusCode).toBe(413)
  expect(post.json()).toMatchObject({ max_size: 100 })
})
