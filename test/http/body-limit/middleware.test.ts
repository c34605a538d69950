import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import express, { type ErrorRequestHandler } from 'express'
import { inject } from 'light-my-request'
import { describe, expect, type Mock, onTestFinished, test, vi } from 'vitest'
import {
  type BodyLimitMiddleware,
  type BodySizeConfig,
  bodyLimitMiddleware,
} from '../../../src/http/index.js'
import {
  compress,
  expectError,
  expectTooLarge,
  KiB,
  lazyBody,
  MiB,
  tooLargeBody,
} from '../../helpers/bodies.js'
import {
  closeServer,
  hasFullResponse,
  listenLocal,
  parseResponse,
  rawConnect,
  requestHead,
  roundTrip,
  sendChunked,
  within,
} from '../../helpers/raw-http.js'

/** Reads the whole (metered) body, the way any consumer downstream would. */
function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

/** The request handler of a plain `node:http` app guarded by the middleware. */
function plainHandler(mw: BodyLimitMiddleware, handled: Mock<() => void>) {
  return (req: IncomingMessage, res: ServerResponse) =>
    mw(req, res, (err) => {
      if (err !== undefined) {
        res.statusCode = 500
        res.end()
        return
      }
      readBody(req).then(
        (body) => {
          handled()
          res.setHeader('content-type', 'application/json')
          res.end(JSON.stringify({ bytes: body.length, text: body.toString('latin1') }))
        },
        // The middleware has answered already (413, 408, 400).
        () => {},
      )
    })
}

async function serve(server: Server): Promise<number> {
  onTestFinished(() => closeServer(server))
  return listenLocal(server)
}

/** A plain `node:http` server guarded by the middleware, `checkContinue` installed. */
async function plainServer(config?: BodySizeConfig) {
  const mw = bodyLimitMiddleware(config)
  const handled = vi.fn<() => void>()
  const server = createServer(plainHandler(mw, handled))
  server.on('checkContinue', mw.checkContinue)
  const sockets: Socket[] = []
  server.on('connection', (socket: Socket) => sockets.push(socket))
  return { port: await serve(server), handled, sockets }
}

/** Express 5: the middleware, then `express.json()` and `express.text()`, then `/echo`. */
async function expressServer(config?: BodySizeConfig) {
  const app = express()
  const mw = bodyLimitMiddleware(config)
  const handled = vi.fn<() => void>()
  app.use(mw)
  app.use(express.json({ limit: '10mb' }))
  app.use(express.text({ limit: '10mb' }))
  app.post('/echo', (req, res) => {
    handled()
    res.json({ body: req.body })
  })
  const onError: ErrorRequestHandler = (err, _req, res, _next) => {
    if (res.headersSent) return
    res.status(err.status ?? 500).json({ detail: 'express error', status: err.status })
  }
  app.use(onError)
  const server = createServer(app)
  server.on('checkContinue', mw.checkContinue)
  return { port: await serve(server), handled }
}

const text = (bytes: number) => 'a'.repeat(bytes)

describe('bodyLimitMiddleware on node:http', () => {
  test('a body of exactly maxSize reaches the consumer; one byte more is the seed 413', async () => {
    const { port, handled } = await plainServer({ maxSize: KiB })
    const ok = await roundTrip(port, 'POST', '/', { 'content-length': KiB }, text(KiB))
    expect(ok.status).toBe(200)
    expect(JSON.parse(ok.body)).toMatchObject({ bytes: KiB })
    const over = await roundTrip(port, 'POST', '/', { 'content-length': KiB + 1 }, text(KiB + 1))
    expectTooLarge(over, KiB, '1.0 KB')
    expect(handled).toHaveBeenCalledTimes(1)
  })

  test('headers declaring too much, with no body sent, get a prompt 413 and a closed connection', async () => {
    const { port, handled } = await plainServer()
    const client = await rawConnect(port)
    await client.write(requestHead('POST', '/', { 'content-length': 2 * MiB }))
    expectTooLarge(parseResponse(await client.until(hasFullResponse, 'the 413')), MiB, '1.0 MB')
    expect(await within(client.closed, 5000, 'the server to close')).toEqual({ reset: false })
    expect(handled).not.toHaveBeenCalled()
  })

  test('a 2 MiB chunked body is refused with a 413, the rest is never read, and the next connection is served', async () => {
    const { port, handled, sockets } = await plainServer()
    const client = await rawConnect(port)
    await client.write(requestHead('POST', '/', { 'transfer-encoding': 'chunked' }))
    await sendChunked(client, 2 * MiB)
    expectTooLarge(parseResponse(await client.until(hasFullResponse, 'the 413')), MiB, '1.0 MB')
    await within(client.closed, 5000, 'the server to close the connection')
    expect(handled).not.toHaveBeenCalled()
    expect(sockets[0]?.bytesRead).toBeLessThan(MiB + 512 * KiB)

    const next = await roundTrip(port, 'POST', '/', { 'content-length': 5 }, 'hello')
    expect(next.status).toBe(200)
    expect(JSON.parse(next.body)).toEqual({ bytes: 5, text: 'hello' })
  })

  test('a chunked body within the limit reaches the consumer whole', async () => {
    const { port } = await plainServer({ maxSize: 256 * KiB })
    const client = await rawConnect(port)
    await client.write(requestHead('POST', '/', { 'transfer-encoding': 'chunked' }))
    await sendChunked(client, 256 * KiB, 32 * KiB)
    const res = parseResponse(await client.until(hasFullResponse, 'the 200'))
    expect(res.status).toBe(200)
    expect(JSON.parse(res.body)).toMatchObject({ bytes: 256 * KiB })
    client.destroy()
  })

  test('Expect: 100-continue with an oversized length gets the 413 and never 100 Continue', async () => {
    const { port, handled } = await plainServer({ maxSize: KiB })
    const client = await rawConnect(port)
    await client.write(
      requestHead('POST', '/', { 'content-length': 2 * KiB, expect: '100-continue' }),
    )
    const received = await client.until(hasFullResponse, 'the 413')
    expect(received).not.toContain('100 Continue')
    const res = parseResponse(received)
    expect(res.interim).toEqual([])
    expectTooLarge(res, KiB, '1.0 KB')
    expect(handled).not.toHaveBeenCalled()
    client.destroy()
  })

  test('Expect: 100-continue within the limit gets 100 Continue, then the 200', async () => {
    const { port } = await plainServer({ maxSize: KiB })
    const client = await rawConnect(port)
    await client.write(requestHead('POST', '/', { 'content-length': 5, expect: '100-continue' }))
    await client.until((t) => t.startsWith('HTTP/1.1 100 Continue\r\n\r\n'), '100 Continue')
    await client.write('hello')
    const res = parseResponse(await client.until(hasFullResponse, 'the 200'))
    expect(res.interim).toEqual(['HTTP/1.1 100 Continue'])
    expect(res.status).toBe(200)
    expect(JSON.parse(res.body)).toEqual({ bytes: 5, text: 'hello' })
    client.destroy()
  })

  test('Expect: 100-continue on an exempt path gets 100 Continue whatever the declared length', async () => {
    const { port } = await plainServer({ maxSize: 10, exemptPaths: ['/upload'] })
    const client = await rawConnect(port)
    await client.write(
      requestHead('POST', '/upload', { 'content-length': 100, expect: '100-continue' }),
    )
    await client.until((t) => t.startsWith('HTTP/1.1 100 Continue\r\n\r\n'), '100 Continue')
    await client.write(text(100))
    const res = parseResponse(await client.until(hasFullResponse, 'the 200'))
    expect(res.status).toBe(200)
    expect(JSON.parse(res.body)).toMatchObject({ bytes: 100 })
    client.destroy()
  })

  test('a body shorter than its declared length gets the 408 after bodyTimeoutMs, and a closed connection', async () => {
    const { port, handled } = await plainServer({ bodyTimeoutMs: 100 })
    const client = await rawConnect(port)
    await client.write(requestHead('POST', '/', { 'content-length': 100 }))
    await client.write('only ten b')
    const res = parseResponse(await client.until(hasFullResponse, 'the 408'))
    expectError(res, 408, 'ERR_HTTP_BODY_TIMEOUT', 'Request body timed out')
    expect(res.headers.connection).toBe('close')
    await within(client.closed, 5000, 'the server to close the connection')
    expect(handled).not.toHaveBeenCalled()
  })

  test('exempt paths and methods are passed through untouched', async () => {
    const { port } = await plainServer({ maxSize: 10, exemptPaths: ['/upload', '/files/*'] })
    for (const path of ['/upload', '/upload?x=1', '/files/a', '/files']) {
      const res = await roundTrip(port, 'POST', path, { 'content-length': 100 }, text(100))
      expect(res.status, path).toBe(200)
      expect(JSON.parse(res.body), path).toMatchObject({ bytes: 100 })
    }
    // A method exempts only bodiless requests: a body on OPTIONS is limited.
    expectTooLarge(
      await roundTrip(port, 'OPTIONS', '/', { 'content-length': 100 }, text(100)),
      10,
      '10 bytes',
    )
    expect((await roundTrip(port, 'OPTIONS', '/')).status).toBe(200)
    expectTooLarge(
      await roundTrip(port, 'POST', '/filesystem', { 'content-length': 100 }, text(100)),
      10,
      '10 bytes',
    )
    expectTooLarge(
      await roundTrip(port, 'PUT', '/', { 'content-length': 11 }, text(11)),
      10,
      '10 bytes',
    )
  })

  test('a malformed Content-Length on a real socket is refused by Node’s parser; the server keeps serving', async () => {
    const { port, handled } = await plainServer()
    const bad = await rawConnect(port)
    await bad.write(requestHead('POST', '/', { 'content-length': 'abc' }))
    expect(parseResponse(await bad.until(hasFullResponse, 'the 400')).status).toBe(400)
    await within(bad.closed, 5000, 'the server to close the bad connection')
    expect(handled).not.toHaveBeenCalled()
    expect((await roundTrip(port, 'POST', '/', { 'content-length': 2 }, 'ok')).status).toBe(200)
  })
})

describe('bodyLimitMiddleware: Content-Length reaching the middleware malformed', () => {
  // On a real socket Node's parser refuses these first; a request built by
  // other code (a test injector, a proxy layer) can still carry them.
  test.each(['abc', '-1', '+5', '1e3', ' 12', '12, 12', '99999999999999999999'])(
    'Content-Length %j is a 400 ERR_HTTP_INVALID_CONTENT_LENGTH, never a crash or a 500',
    async (value) => {
      const handled = vi.fn<() => void>()
      const res = await inject(plainHandler(bodyLimitMiddleware(), handled), {
        method: 'POST',
        url: '/',
        headers: { 'content-length': value },
        payload: 'hello',
      })
      expect(res.statusCode).toBe(400)
      expect(res.headers['content-type']).toBe('application/json')
      expect(res.headers.connection).toBe('close')
      expect(res.json()).toEqual({
        detail: 'Invalid Content-Length',
        code: 'ERR_HTTP_INVALID_CONTENT_LENGTH',
      })
      expect(handled).not.toHaveBeenCalled()
    },
  )
})

describe('bodyLimitMiddleware: inflate on node:http', () => {
  test.each(['gzip', 'deflate', 'br'] as const)(
    'a valid %s body reaches the consumer inflated, its encoding and length headers gone',
    async (encoding) => {
      const mw = bodyLimitMiddleware()
      const seen: Record<string, unknown> = {}
      const server = createServer((req, res) =>
        mw(req, res, () => {
          seen.encoding = req.headers['content-encoding']
          seen.length = req.headers['content-length']
          readBody(req).then((body) => res.end(body))
        }),
      )
      const port = await serve(server)
      const payload = compress(encoding, text(50 * KiB))
      const res = await roundTrip(
        port,
        'POST',
        '/',
        { 'content-length': payload.length, 'content-encoding': encoding },
        payload,
      )
      expect(res.status).toBe(200)
      expect(res.body).toBe(text(50 * KiB))
      expect(seen).toEqual({ encoding: undefined, length: undefined })
    },
  )

  test('a compressed body larger than zlib’s buffers streams through whole', async () => {
    const { port } = await plainServer({ maxSize: 2 * MiB })
    const payload = randomBytes(384 * KiB).toString('base64')
    const gz = compress('gzip', payload)
    const res = await roundTrip(
      port,
      'POST',
      '/',
      { 'content-length': gz.length, 'content-encoding': 'gzip' },
      gz,
    )
    expect(res.status).toBe(200)
    expect(JSON.parse(res.body)).toEqual({ bytes: payload.length, text: payload })
  })

  test('a gzip bomb is a 413, stopped while inflating', async () => {
    const { port, handled } = await plainServer({ maxSize: 64 * KiB })
    const bomb = compress('gzip', Buffer.alloc(32 * MiB))
    const res = await roundTrip(
      port,
      'POST',
      '/',
      { 'content-length': bomb.length, 'content-encoding': 'gzip' },
      bomb,
    )
    expectTooLarge(res, 64 * KiB, '64.0 KB')
    expect(handled).not.toHaveBeenCalled()
  })

  test('an unsupported encoding is a 415, an invalid gzip body a 400', async () => {
    const { port, handled } = await plainServer()
    expectError(
      await roundTrip(
        port,
        'POST',
        '/',
        { 'content-length': 5, 'content-encoding': 'zstd' },
        'hello',
      ),
      415,
      'ERR_HTTP_UNSUPPORTED_ENCODING',
      'Unsupported Content-Encoding',
    )
    expectError(
      await roundTrip(
        port,
        'POST',
        '/',
        { 'content-length': 5, 'content-encoding': 'gzip' },
        'hello',
      ),
      400,
      'ERR_HTTP_BAD_REQUEST',
      'Invalid compressed request body',
    )
    expect(handled).not.toHaveBeenCalled()
  })
})

describe('bodyLimitMiddleware on Express 5', () => {
  test('express.json() downstream parses a body within the limit', async () => {
    const { port } = await expressServer({ maxSize: KiB })
    const body = JSON.stringify({ hello: 'world' })
    const res = await roundTrip(
      port,
      'POST',
      '/echo',
      { 'content-type': 'application/json', 'content-length': body.length },
      body,
    )
    expect(res.status).toBe(200)
    expect(JSON.parse(res.body)).toEqual({ body: { hello: 'world' } })
  })

  test('a declared length over the limit is our 413, before express.json() reads a byte', async () => {
    const { port, handled } = await expressServer({ maxSize: KiB })
    const client = await rawConnect(port)
    await client.write(
      requestHead('POST', '/echo', {
        'content-type': 'application/json',
        'content-length': 2 * KiB,
      }),
    )
    expectTooLarge(parseResponse(await client.until(hasFullResponse, 'the 413')), KiB, '1.0 KB')
    await within(client.closed, 5000, 'the server to close')
    expect(handled).not.toHaveBeenCalled()
  })

  test('a chunked body over the limit is our 413 even while express.json() is reading it', async () => {
    const { port, handled } = await expressServer({ maxSize: 64 * KiB })
    const client = await rawConnect(port)
    await client.write(
      requestHead('POST', '/echo', {
        'content-type': 'text/plain',
        'transfer-encoding': 'chunked',
      }),
    )
    await sendChunked(client, 2 * MiB, 16 * KiB)
    expectTooLarge(
      parseResponse(await client.until(hasFullResponse, 'the 413')),
      64 * KiB,
      '64.0 KB',
    )
    await within(client.closed, 5000, 'the server to close')
    expect(handled).not.toHaveBeenCalled()
    // The server is still serving.
    const next = await roundTrip(
      port,
      'POST',
      '/echo',
      { 'content-type': 'text/plain', 'content-length': 2 },
      'ok',
    )
    expect(JSON.parse(next.body)).toEqual({ body: 'ok' })
  })

  test('with inflate, express.json() parses the inflated body; a bomb is our 413', async () => {
    const { port, handled } = await expressServer({ maxSize: 64 * KiB })
    const json = { list: Array.from({ length: 1000 }, (_, i) => i) }
    const gz = compress('gzip', JSON.stringify(json))
    const ok = await roundTrip(
      port,
      'POST',
      '/echo',
      {
        'content-type': 'application/json',
        'content-length': gz.length,
        'content-encoding': 'gzip',
      },
      gz,
    )
    expect(ok.status).toBe(200)
    expect(JSON.parse(ok.body)).toEqual({ body: json })

    const bomb = compress('gzip', Buffer.alloc(32 * MiB, 0x20))
    const refused = await roundTrip(
      port,
      'POST',
      '/echo',
      {
        'content-type': 'application/json',
        'content-length': bomb.length,
        'content-encoding': 'gzip',
      },
      bomb,
    )
    expectTooLarge(refused, 64 * KiB, '64.0 KB')
    expect(handled).toHaveBeenCalledTimes(1)
  })

  test('Expect: 100-continue through Express: oversized gets the 413 without 100 Continue', async () => {
    const { port } = await expressServer({ maxSize: KiB })
    const client = await rawConnect(port)
    await client.write(
      requestHead('POST', '/echo', {
        'content-type': 'application/json',
        'content-length': 2 * KiB,
        expect: '100-continue',
      }),
    )
    const received = await client.until(hasFullResponse, 'the 413')
    expect(received).not.toContain('100 Continue')
    expectTooLarge(parseResponse(received), KiB, '1.0 KB')
    client.destroy()
  })

  test('a body timeout while express.json() waits is our 408', async () => {
    const { port, handled } = await expressServer({ bodyTimeoutMs: 100 })
    const client = await rawConnect(port)
    await client.write(
      requestHead('POST', '/echo', { 'content-type': 'application/json', 'content-length': 100 }),
    )
    await client.write('{"a":')
    const res = parseResponse(await client.until(hasFullResponse, 'the 408'))
    expectError(res, 408, 'ERR_HTTP_BODY_TIMEOUT', 'Request body timed out')
    await within(client.closed, 5000, 'the server to close')
    expect(handled).not.toHaveBeenCalled()
  })
})

describe('bodyLimitMiddleware: streamed bodies without a socket', () => {
  test('a length-less body is counted as it arrives and stopped one chunk past the limit', async () => {
    const handled = vi.fn<() => void>()
    const chunk = 8 * KiB
    const body = lazyBody(2 * MiB, { chunk })
    const res = await inject(plainHandler(bodyLimitMiddleware({ maxSize: 64 * KiB }), handled), {
      method: 'POST',
      url: '/',
      payload: body.stream,
    })
    expect(res.statusCode).toBe(413)
    expect(res.body).toBe(tooLargeBody(64 * KiB, '64.0 KB'))
    expect(handled).not.toHaveBeenCalled()
    // The middleware meters where bytes enter the request, so the request
    // buffers nothing past the limit: the guard takes at most the chunk that
    // crossed it, and only the client's own stream buffer (its highWaterMark
    // plus the chunk that filled it: 16 KiB on Node 20, 64 KiB on 22+) holds
    // more.
    const guardRead = body.produced() - body.stream.readableLength
    expect(guardRead).toBeLessThanOrEqual(64 * KiB + chunk)
    expect(body.produced()).toBeLessThanOrEqual(
      64 * KiB + chunk + body.stream.readableHighWaterMark + chunk,
    )
  })
})
