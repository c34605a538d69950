/**
 * Regression: `bodyLimitMiddleware` behind an async middleware. By the time it
 * ran, Node's parser had already pushed part or all of the body into `req`.
 * Those bytes were added to the count but never checked against the limit (a
 * chunked body that arrived whole slipped through), and with `inflate` they
 * bypassed the inflater (the consumer read compressed bytes as the body).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { gzipSync } from 'node:zlib'
import { describe, expect, onTestFinished, test, vi } from 'vitest'
import { type BodySizeConfig, bodyLimitMiddleware } from '../../src/http/index.js'
import { tooLargeBody } from '../helpers/bodies.js'
import {
  chunk,
  closeServer,
  hasFullResponse,
  LAST_CHUNK,
  listenLocal,
  parseResponse,
  rawConnect,
  requestHead,
} from '../helpers/raw-http.js'

interface Seen {
  /** What `req` held when the guard ran: the precondition this file is about. */
  buffered: number
  complete: boolean
}

/**
 * A server whose guard runs only after an async step, as behind an auth
 * middleware. `ran` resolves once the guard has run.
 */
async function lateGuard(config: BodySizeConfig) {
  const mw = bodyLimitMiddleware(config)
  const downstream = vi.fn<() => void>()
  let markRan: (seen: Seen) => void = () => {}
  const ran = new Promise<Seen>((resolve) => {
    markRan = resolve
  })
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    await new Promise((resolve) => setImmediate(resolve))
    const seen = { buffered: req.readableLength, complete: req.complete }
    mw(req, res, () => {
      downstream()
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => res.end(Buffer.concat(chunks)))
      req.on('error', () => {})
    })
    markRan(seen)
  })
  const port = await listenLocal(server)
  onTestFinished(() => closeServer(server))
  return { port, ran, downstream }
}

describe('bodyLimitMiddleware after an async middleware', () => {
  test('a chunked body over the limit that arrived whole before the guard ran is still a 413', async () => {
    const { port, ran } = await lateGuard({ maxSize: 100 })
    const client = await rawConnect(port)
    // One write: the whole request reaches the parser in one read.
    await client.write(
      Buffer.concat([
        Buffer.from(requestHead('POST', '/', { 'transfer-encoding': 'chunked' })),
        chunk(Buffer.alloc(500, 0x61)),
        Buffer.from(LAST_CHUNK),
      ]),
    )
    expect(await ran).toEqual({ buffered: 500, complete: true })
    const res = parseResponse(await client.until(hasFullResponse, 'the answer'))
    expect(res.status).toBe(413)
    expect(res.body).toBe(tooLargeBody(100, '100 bytes'))
    client.destroy()
  })

  test('a chunked body already past the limit before the guard ran is a 413, and nothing downstream runs', async () => {
    const { port, ran, downstream } = await lateGuard({ maxSize: 100 })
    const client = await rawConnect(port)
    await client.write(
      Buffer.concat([
        Buffer.from(requestHead('POST', '/', { 'transfer-encoding': 'chunked' })),
        chunk(Buffer.alloc(500, 0x61)),
      ]),
    )
    expect(await ran).toEqual({ buffered: 500, complete: false })
    const res = parseResponse(await client.until(hasFullResponse, 'the answer'))
    expect(res.status).toBe(413)
    expect(res.body).toBe(tooLargeBody(100, '100 bytes'))
    expect(downstream).not.toHaveBeenCalled()
    client.destroy()
  })

  test('a compressed body that arrived whole before the guard ran is inflated, and limited', async () => {
    const { port, ran } = await lateGuard({ inflate: true, maxSize: 1000 })
    const ok = gzipSync('b'.repeat(1000))
    const client = await rawConnect(port)
    await client.write(
      Buffer.concat([
        Buffer.from(
          requestHead('POST', '/', { 'content-encoding': 'gzip', 'content-length': ok.length }),
        ),
        ok,
      ]),
    )
    expect(await ran).toEqual({ buffered: ok.length, complete: true })
    const res = parseResponse(await client.until(hasFullResponse, 'the answer'))
    expect(res.status).toBe(200)
    expect(res.body).toBe('b'.repeat(1000))
    client.destroy()

    const late = await lateGuard({ inflate: true, maxSize: 1000 })
    const bomb = gzipSync(Buffer.alloc(1_000_000))
    const bombClient = await rawConnect(late.port)
    await bombClient.write(
      Buffer.concat([
        Buffer.from(
          requestHead('POST', '/', { 'content-encoding': 'gzip', 'content-length': bomb.length }),
        ),
        bomb,
      ]),
    )
    expect((await late.ran).complete).toBe(true)
    const refused = parseResponse(await bombClient.until(hasFullResponse, 'the 413'))
    expect(refused.status).toBe(413)
    expect(refused.body).toBe(tooLargeBody(1000, '1000 bytes'))
    bombClient.destroy()
  })

  test('a compressed body partly arrived before the guard ran is inflated from its first byte', async () => {
    const { port, ran } = await lateGuard({ inflate: true })
    const body = gzipSync('c'.repeat(5000))
    const half = Math.floor(body.length / 2)
    const client = await rawConnect(port)
    await client.write(
      Buffer.concat([
        Buffer.from(
          requestHead('POST', '/', { 'content-encoding': 'gzip', 'content-length': body.length }),
        ),
        body.subarray(0, half),
      ]),
    )
    expect(await ran).toEqual({ buffered: half, complete: false })
    await client.write(body.subarray(half))
    const res = parseResponse(await client.until(hasFullResponse, 'the answer'))
    expect(res.status).toBe(200)
    expect(res.body).toBe('c'.repeat(5000))
    client.destroy()
  })
})
