/**
 * Regression: a refusal answered before the body was read to its end (an
 * invalid compressed body, an unsupported encoding) kept the connection
 * alive. Fastify left the rest of the body paused, so the next request on
 * that connection was never read and the connection hung; for an unread body
 * Node would instead drain whatever the client kept sending. Every refusal by
 * the guard now closes the connection.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { describe, expect, onTestFinished, test } from 'vitest'
import { bodyLimit, bodyLimitMiddleware } from '../../src/http/index.js'
import {
  closeServer,
  hasFullResponse,
  listenLocal,
  parseResponse,
  rawConnect,
  requestHead,
  within,
} from '../helpers/raw-http.js'

async function fastifyPort(): Promise<number> {
  const app = Fastify()
  onTestFinished(async () => {
    await app.close()
  })
  await app.register(bodyLimit, { inflate: true })
  app.post('/', async () => 'ok')
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as AddressInfo).port
}

async function middlewarePort(): Promise<number> {
  const mw = bodyLimitMiddleware({ inflate: true })
  const server = createServer((req, res) =>
    mw(req, res, () => {
      req.on('data', () => {})
      req.on('end', () => res.end('ok'))
      req.on('error', () => {})
    }),
  )
  onTestFinished(() => closeServer(server))
  return listenLocal(server)
}

const BODY = 300 * 1024

describe.each([
  ['Fastify plugin', fastifyPort],
  ['middleware', middlewarePort],
])('%s', (_name, start) => {
  test.each([
    ['an invalid gzip body', 'gzip', 400],
    ['an unsupported encoding', 'zstd', 415],
  ])(
    '%s is refused with Connection: close, and the connection is closed',
    async (_what, encoding, status) => {
      const client = await rawConnect(await start())
      await client.write(
        requestHead('POST', '/', {
          'content-type': 'text/plain',
          'content-length': BODY,
          'content-encoding': encoding,
        }),
      )
      void client.write(Buffer.alloc(BODY, 1))
      const res = parseResponse(await client.until(hasFullResponse, 'the refusal'))
      expect(res.status).toBe(status)
      expect(res.headers.connection).toBe('close')
      await within(client.closed, 5000, 'the server to close the connection')
    },
  )
})
