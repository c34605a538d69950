/**
 * Regression: when Fastify answered without reading the body (its 415 for a
 * media type it cannot parse, a 404), the plugin's metered stream had no
 * reader. The body timeout then destroyed it with an error nobody listened
 * for: an uncaught exception that took the process down. And on a keep-alive
 * connection the unread body sat paused, so the next request never came in.
 */
import type { AddressInfo, Socket } from 'node:net'
import Fastify from 'fastify'
import { describe, expect, onTestFinished, test } from 'vitest'
import { bodyLimit } from '../../src/http/index.js'
import {
  chunk,
  hasFullResponse,
  parseResponse,
  rawConnect,
  requestHead,
  within,
} from '../helpers/raw-http.js'

async function start(bodyTimeoutMs: number, maxSize = 1024 * 1024, sockets: Socket[] = []) {
  const app = Fastify()
  onTestFinished(async () => {
    await app.close()
  })
  await app.register(bodyLimit, { bodyTimeoutMs, maxSize })
  app.post('/', async () => 'ok')
  app.server.on('connection', (socket: Socket) => sockets.push(socket))
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as AddressInfo).port
}

const BODY = 200 * 1024

describe('a body Fastify answered without reading', () => {
  test('the body timeout closes the connection instead of crashing the process', async () => {
    const port = await start(100)
    const client = await rawConnect(port)
    await client.write(
      requestHead('POST', '/', { 'content-type': 'application/xml', 'content-length': BODY }),
    )
    // More than the metered stream buffers, less than declared: the rest never comes.
    await client.write(Buffer.alloc(BODY / 2))
    const res = parseResponse(await client.until(hasFullResponse, 'the 415'))
    expect(res.status).toBe(415)
    expect(JSON.parse(res.body)).toMatchObject({ code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' })
    await within(client.closed, 5000, 'the timeout to close the connection')

    const next = await rawConnect(port)
    await next.write(
      requestHead('POST', '/', { 'content-type': 'text/plain', 'content-length': 2 }),
    )
    await next.write('hi')
    expect(parseResponse(await next.until(hasFullResponse, 'the next answer')).status).toBe(200)
    next.destroy()
  })

  test('once the rest of the body arrives, the keep-alive connection carries the next request', async () => {
    const port = await start(10_000)
    const client = await rawConnect(port)
    await client.write(
      requestHead('POST', '/', { 'content-type': 'application/xml', 'content-length': BODY }),
    )
    await client.write(Buffer.alloc(BODY / 2))
    await client.until(hasFullResponse, 'the 415')
    await client.write(Buffer.alloc(BODY / 2))
    const before = client.text().length
    await client.write(
      requestHead('POST', '/', { 'content-type': 'text/plain', 'content-length': 2 }),
    )
    await client.write('hi')
    const second = await client.until(
      (t) => hasFullResponse(t.slice(before)),
      'the answer to the second request on the same connection',
    )
    expect(parseResponse(second.slice(before)).status).toBe(200)
    client.destroy()
  })

  test('what follows the answer is still limited: past maxSize the connection is closed, not drained', async () => {
    const sockets: Socket[] = []
    const port = await start(10_000, 64 * 1024, sockets)
    const client = await rawConnect(port)
    await client.write(
      requestHead('POST', '/', {
        'content-type': 'application/xml',
        'transfer-encoding': 'chunked',
      }),
    )
    // The client keeps streaming whatever the server answers, until it is cut off.
    const piece = chunk(Buffer.alloc(16 * 1024, 0x61))
    const streaming = (async () => {
      for (let sent = 0; sent < 4 * 1024 * 1024 && !client.serverClosed(); sent += piece.length) {
        await client.write(piece)
      }
    })()
    expect(parseResponse(await client.until(hasFullResponse, 'the 415')).status).toBe(415)
    await streaming
    await within(client.closed, 5000, 'the server to close the connection at the limit')
    expect(sockets[0]?.bytesRead).toBeLessThan(64 * 1024 + 512 * 1024)
  })
})
