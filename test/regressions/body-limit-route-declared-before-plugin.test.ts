/**
 * Regression: Fastify binds a route's error handler, and its body limit, when
 * the route is declared. For a route declared before the plugin, Fastify's own
 * lower limit answered in Fastify's shape, and so did every error the guard
 * raised through Fastify's error path (its 413 on a streamed body, the 408,
 * the 415 and the 400 of `inflate`). The guard now applies the lower of the
 * two limits itself and answers every refusal directly, in its own shape.
 */
import { Readable } from 'node:stream'
import Fastify from 'fastify'
import { expect, onTestFinished, test } from 'vitest'
import { bodyLimit } from '../../src/http/index.js'
import { tooLargeBody } from '../helpers/bodies.js'

async function appWithEarlyRoute() {
  const app = Fastify({ bodyLimit: 100 })
  onTestFinished(async () => {
    await app.close()
  })
  app.post('/early', async () => 'ok')
  await app.register(bodyLimit, { maxSize: 1000, inflate: true, bodyTimeoutMs: 50 })
  return app
}

const send = (app: Awaited<ReturnType<typeof appWithEarlyRoute>>, payload: unknown, headers = {}) =>
  app.inject({
    method: 'POST',
    url: '/early',
    payload: payload as string,
    headers: { 'content-type': 'text/plain', ...headers },
  })

test('a route declared before the plugin answers Fastify’s lower limit in our 413 shape', async () => {
  const app = await appWithEarlyRoute()
  for (const payload of ['a'.repeat(101), Readable.from([Buffer.alloc(101)])]) {
    const res = await send(app, payload)
    expect(res.statusCode).toBe(413)
    expect(res.headers['content-type']).toBe('application/json')
    expect(res.body).toBe(tooLargeBody(100, '100 bytes'))
  }
})

test('a route declared before the plugin answers the 408, 415 and 400 in our shape', async () => {
  const app = await appWithEarlyRoute()
  const never = new Readable({ read() {} })
  never.push('a')
  const timeout = await send(app, never)
  expect(timeout.statusCode).toBe(408)
  expect(timeout.json()).toEqual({
    detail: 'Request body timed out',
    code: 'ERR_HTTP_BODY_TIMEOUT',
  })

  const unsupported = await send(app, 'x', { 'content-encoding': 'zstd' })
  expect(unsupported.statusCode).toBe(415)
  expect(unsupported.json()).toEqual({
    detail: 'Unsupported Content-Encoding',
    code: 'ERR_HTTP_UNSUPPORTED_ENCODING',
  })

  const corrupt = await send(app, 'not gzip', { 'content-encoding': 'gzip' })
  expect(corrupt.statusCode).toBe(400)
  expect(corrupt.json()).toEqual({
    detail: 'Invalid compressed request body',
    code: 'ERR_HTTP_BAD_REQUEST',
  })
})
