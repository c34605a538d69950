/**
 * Regression: with `inflate: true`, the Fastify plugin paused the request
 * whenever the inflater's input was full, and only resumed it when its own
 * output stream drained, which never happens when the inflater is what is
 * full. Any compressed body over zlib's 16 KiB buffer stalled until the body
 * timeout answered 408.
 */
import { randomBytes } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import Fastify from 'fastify'
import { expect, onTestFinished, test } from 'vitest'
import { bodyLimit } from '../../src/http/index.js'

test('a gzip body far larger than zlib’s buffers inflates through the Fastify plugin without stalling', async () => {
  const app = Fastify()
  onTestFinished(async () => {
    await app.close()
  })
  // Short enough that the old stall fails fast as a 408.
  await app.register(bodyLimit, { inflate: true, maxSize: 4 * 1024 * 1024, bodyTimeoutMs: 2000 })
  app.post('/', async (req) => ({ length: (req.body as string).length }))
  const text = randomBytes(600 * 1024).toString('base64')
  const res = await app.inject({
    method: 'POST',
    url: '/',
    payload: gzipSync(text),
    headers: { 'content-type': 'text/plain', 'content-encoding': 'gzip' },
  })
  expect(res.statusCode).toBe(200)
  expect(res.json()).toEqual({ length: text.length })
})
