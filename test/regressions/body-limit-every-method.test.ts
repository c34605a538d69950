/**
 * Regression: `exemptMethods` (GET, HEAD, OPTIONS by default) let a body
 * through unlimited on those methods. Express's `express.json()` and
 * `express.text()` parse a body on any method and Fastify parses OPTIONS
 * bodies (up to its own 1 MiB), so a chunked 5 KB GET or OPTIONS body reached
 * the handler with `maxSize` 1000, in the plugin, in the middleware and in
 * what `ProfileEnforcer.applyTo` registers. A request that carries a body
 * (`Content-Length` > 0 or `Transfer-Encoding`) is now limited whatever its
 * method; only a bodiless request skips the guard.
 */
import { createServer, type Server } from 'node:http'
import express from 'express'
import Fastify from 'fastify'
import mercurius from 'mercurius'
import { describe, expect, onTestFinished, test, vi } from 'vitest'
import { bodyLimit, bodyLimitMiddleware } from '../../src/http/index.js'
import { defineProfile, ProfileEnforcer, STANDARD } from '../../src/profiles/index.js'
import { expectTooLarge, KiB } from '../helpers/bodies.js'
import {
  closeServer,
  hasFullResponse,
  listenLocal,
  parseResponse,
  type RawResponse,
  rawConnect,
  requestHead,
  roundTrip,
  sendChunked,
} from '../helpers/raw-http.js'

const MAX = 1000

/** Sends `bytes` of `a` as a chunked body, 1 KiB a chunk, and returns the answer. */
async function chunked(port: number, method: string, path: string, bytes: number) {
  const client = await rawConnect(port)
  try {
    await client.write(
      requestHead(method, path, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' }),
    )
    await sendChunked(client, bytes, Math.min(bytes, KiB))
    return parseResponse(await client.until(hasFullResponse, `the answer to ${method} ${path}`))
  } finally {
    client.destroy()
  }
}

/** Largest body any handler saw, in bytes. */
function recorder() {
  const sizes: number[] = []
  return {
    saw(body: unknown) {
      sizes.push(typeof body === 'string' ? Buffer.byteLength(body) : 0)
    },
    calls: () => sizes.length,
    largest: () => Math.max(0, ...sizes),
  }
}

const METHODS = ['GET', 'OPTIONS', 'DELETE'] as const

/** Express 5: the guard, then `express.text()`, then a handler on every method. */
async function startExpress() {
  const seen = recorder()
  const app = express()
  app.use(bodyLimitMiddleware({ maxSize: MAX }))
  app.use(express.text({ limit: '10mb' }))
  app.all('/echo', (req, res) => {
    seen.saw(req.body)
    res.json({ bytes: typeof req.body === 'string' ? Buffer.byteLength(req.body) : 0 })
  })
  const server: Server = createServer(app)
  onTestFinished(() => closeServer(server))
  return { port: await listenLocal(server), seen }
}

/** Fastify 5: the plugin, then a route on every method. */
async function startFastify() {
  const seen = recorder()
  const app = Fastify()
  onTestFinished(() => app.close())
  await app.register(bodyLimit, { maxSize: MAX })
  app.route({
    method: ['GET', 'HEAD', 'OPTIONS', 'DELETE', 'POST'],
    url: '/echo',
    handler: async (request) => {
      seen.saw(request.body)
      return { bytes: typeof request.body === 'string' ? Buffer.byteLength(request.body) : 0 }
    },
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return { app, port: address.port, seen }
}

describe.each([
  ['Express 5 with express.text()', startExpress],
  ['Fastify 5', startFastify],
] as const)('%s: bodies on every method are limited', (_name, start) => {
  test.each(METHODS)(
    'a chunked 5 KB %s body is the 413; the handler never runs',
    async (method) => {
      const { port, seen } = await start()
      expectTooLarge(await chunked(port, method, '/echo', 5 * KiB), MAX, '1000 bytes')
      expect(seen.calls()).toBe(0)
    },
  )
})

describe('Express 5 with express.text()', () => {
  const start = startExpress

  test.each(['GET', 'HEAD', 'OPTIONS'])(
    'a %s declaring 5 KB is the 413 before a byte is read',
    async (method) => {
      const { port, seen } = await start()
      const client = await rawConnect(port)
      onTestFinished(() => client.destroy())
      await client.write(
        requestHead(method, '/echo', { 'content-type': 'text/plain', 'content-length': 5 * KiB }),
      )
      const text = await client.until((t) => t.includes('\r\n\r\n'), 'the answer head')
      expect(text.startsWith('HTTP/1.1 413 ')).toBe(true)
      expect(seen.calls()).toBe(0)
    },
  )

  test('a GET body within the limit is read whole; a GET without a body is served as before', async () => {
    const { port, seen } = await start()
    const within = await chunked(port, 'GET', '/echo', 500)
    expect(within.status).toBe(200)
    expect(JSON.parse(within.body)).toEqual({ bytes: 500 })
    const bare = await roundTrip(port, 'GET', '/echo')
    expect(bare.status).toBe(200)
    expect(seen.largest()).toBeLessThanOrEqual(MAX)
  })
})

describe('Fastify 5', () => {
  const start = startFastify

  test('a HEAD declaring 5 KB is the 413', async () => {
    const { app, seen } = await start()
    const res = await app.inject({
      method: 'HEAD',
      url: '/echo',
      headers: { 'content-type': 'text/plain' },
      payload: 'a'.repeat(5 * KiB),
    })
    expect(res.statusCode).toBe(413)
    expect(res.headers.connection).toBe('close')
    expect(seen.calls()).toBe(0)
  })

  test('bodies within the limit: OPTIONS reads its body, GET is answered after its body was counted', async () => {
    const { port, seen } = await start()
    const options: RawResponse = await chunked(port, 'OPTIONS', '/echo', 500)
    expect(options.status).toBe(200)
    expect(JSON.parse(options.body)).toEqual({ bytes: 500 })
    expect((await chunked(port, 'GET', '/echo', 500)).status).toBe(200)
    expect((await roundTrip(port, 'GET', '/echo')).status).toBe(200)
    expect(seen.largest()).toBeLessThanOrEqual(MAX)
  })
})

describe('ProfileEnforcer.applyTo: bodies on every method are limited', () => {
  test.each(['GET', 'OPTIONS'])(
    'a chunked 5 KB %s body to /graphql or a route is the 413',
    async (method) => {
      const handled = vi.fn()
      const app = Fastify()
      onTestFinished(() => app.close())
      await app.register(mercurius, {
        schema: 'type Query { hello: String }',
        resolvers: { Query: { hello: () => 'world' } },
      })
      app.route({ method: ['GET', 'OPTIONS'], url: '/echo', handler: async () => handled() })
      const profile = defineProfile(STANDARD, { maxBodySize: MAX })
      await new ProfileEnforcer(profile, {
        authenticate: () => ({ principal: 'alice', kind: 'apiKey', permissions: [] }),
      }).applyTo(app)
      await app.listen({ port: 0, host: '127.0.0.1' })
      const address = app.server.address()
      if (address === null || typeof address === 'string') throw new Error('no port')
      for (const path of ['/echo', '/graphql?query=%7Bhello%7D']) {
        expectTooLarge(await chunked(address.port, method, path, 5 * KiB), MAX, '1000 bytes')
      }
      expect(handled).not.toHaveBeenCalled()
    },
  )
})
