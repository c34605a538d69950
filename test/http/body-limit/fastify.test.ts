import { randomBytes } from 'node:crypto'
import type { AddressInfo, Socket } from 'node:net'
import type { Readable } from 'node:stream'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { describe, expect, type Mock, onTestFinished, test, vi } from 'vitest'
import { type BodySizeConfig, bodyLimit } from '../../../src/http/index.js'
import {
  compress,
  expectError as expectErrorAnswer,
  expectTooLarge as expectTooLargeAnswer,
  KiB,
  lazyBody,
  MiB,
} from '../../helpers/bodies.js'
import {
  hasFullResponse,
  parseResponse,
  rawConnect,
  requestHead,
  sendChunked,
  within,
} from '../../helpers/raw-http.js'

interface Answer {
  readonly statusCode: number
  readonly headers: Readonly<Record<string, unknown>>
  readonly body: string
}

/** `inject()` answers carry `statusCode`; the shared checks read `status`. */
const expectTooLarge = (res: Answer, maxSize: number, human: string) =>
  expectTooLargeAnswer(
    { status: res.statusCode, headers: res.headers, body: res.body },
    maxSize,
    human,
  )
const expectError = (res: Answer, status: number, code: string, detail: string) =>
  expectErrorAnswer(
    { status: res.statusCode, headers: res.headers, body: res.body },
    status,
    code,
    detail,
  )

/** Handler calls, to prove a refused body never reached a route. */
type Calls = Mock<() => void>

/**
 * A fresh app with the plugin, closed when the test ends. `POST|PUT|OPTIONS
 * /echo` and `POST /upload`, `/files/*` answer the byte length of a text or
 * JSON body. `before` declares routes before the plugin is registered.
 */
async function build(
  config?: BodySizeConfig,
  options: {
    fastify?: FastifyServerOptions
    before?: (app: FastifyInstance) => void
    routes?: (app: FastifyInstance, handled: Calls) => void
  } = {},
): Promise<{ app: FastifyInstance; handled: Calls }> {
  const app = Fastify(options.fastify)
  onTestFinished(async () => {
    await app.close()
  })
  const handled: Calls = vi.fn<() => void>()
  const echo = async (request: { body: unknown }) => {
    handled()
    const body = request.body
    return { bytes: typeof body === 'string' ? Buffer.byteLength(body) : 0, body }
  }
  options.before?.(app)
  await app.register(bodyLimit, config ?? {})
  app.route({ method: ['POST', 'PUT', 'OPTIONS'], url: '/echo', handler: echo })
  app.post('/upload', echo)
  app.post('/files/*', echo)
  app.post('/filesystem', echo)
  options.routes?.(app, handled)
  return { app, handled }
}

const text = (bytes: number) => 'a'.repeat(bytes)
const post = (app: FastifyInstance, url: string, payload: unknown, headers = {}) =>
  app.inject({
    method: 'POST',
    url,
    payload: payload as string,
    headers: { 'content-type': 'text/plain', ...headers },
  })

async function listen(app: FastifyInstance): Promise<number> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as AddressInfo).port
}

describe('bodyLimit (Fastify): limits', () => {
  test('a body of exactly maxSize reaches the handler; one byte more is the seed 413', async () => {
    const { app, handled } = await build({ maxSize: KiB })
    const ok = await post(app, '/echo', text(KiB))
    expect(ok.statusCode).toBe(200)
    expect(ok.json()).toMatchObject({ bytes: KiB })

    const over = await post(app, '/echo', text(KiB + 1))
    expectTooLarge(over, KiB, '1.0 KB')
    expect(handled).toHaveBeenCalledTimes(1)
  })

  test('the default limit is 1 MiB', async () => {
    const { app } = await build()
    expect((await post(app, '/echo', text(MiB))).statusCode).toBe(200)
    expectTooLarge(await post(app, '/echo', text(MiB + 1)), MiB, '1.0 MB')
  })

  test('a global maxSize above Fastify’s 1 MiB default is honoured, declared or streamed', async () => {
    const { app } = await build({ maxSize: 2 * MiB })
    expect((await post(app, '/echo', text(2 * MiB))).statusCode).toBe(200)
    expect((await post(app, '/echo', lazyBody(2 * MiB).stream)).statusCode).toBe(200)
    expectTooLarge(await post(app, '/echo', text(2 * MiB + 1)), 2 * MiB, '2.0 MB')
  })

  test('a declared Content-Length over the limit is refused before one body byte is read', async () => {
    const { app, handled } = await build({ maxSize: 64 * KiB })
    const body = lazyBody(2 * MiB)
    const res = await post(app, '/echo', body.stream, { 'content-length': String(2 * MiB) })
    expectTooLarge(res, 64 * KiB, '64.0 KB')
    expect(body.produced()).toBe(0)
    expect(handled).not.toHaveBeenCalled()
  })

  test('a body without Content-Length is counted as it arrives and stopped one chunk past the limit', async () => {
    let raw: Readable | undefined
    const { app, handled } = await build(
      { maxSize: 64 * KiB },
      {
        routes: (app) =>
          app.addHook('onRequest', (request, _reply, done) => {
            raw = request.raw
            done()
          }),
      },
    )
    const chunk = 8 * KiB
    const body = lazyBody(2 * MiB, { chunk })
    const res = await post(app, '/echo', body.stream)
    expectTooLarge(res, 64 * KiB, '64.0 KB')
    expect(handled).not.toHaveBeenCalled()
    // The guard takes at most the chunk that crossed the limit. Past that,
    // only stream buffers hold read-ahead (the request's and, with inject,
    // the client's own), each up to its highWaterMark plus the chunk that
    // filled it: 16 KiB each on Node 20, 64 KiB on 22 and later.
    const request = raw!
    const guardRead = body.produced() - body.stream.readableLength - request.readableLength
    expect(guardRead).toBeLessThanOrEqual(64 * KiB + chunk)
    expect(body.produced()).toBeLessThanOrEqual(
      64 * KiB +
        chunk +
        (request.readableHighWaterMark + chunk) +
        (body.stream.readableHighWaterMark + chunk),
    )
  })

  test('a body without Content-Length within the limit reaches the handler whole', async () => {
    const { app } = await build({ maxSize: 64 * KiB })
    const res = await post(app, '/echo', lazyBody(64 * KiB).stream)
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ bytes: 64 * KiB })
  })

  test('a request to an unknown route is guarded too', async () => {
    const { app } = await build({ maxSize: KiB })
    expectTooLarge(await post(app, '/nowhere', text(KiB + 1)), KiB, '1.0 KB')
  })
})

describe('bodyLimit (Fastify): per-route override', () => {
  test('a route allowed more than the global limit, and more than Fastify’s 1 MiB default, accepts bodies up to its own limit', async () => {
    const { app } = await build(
      { maxSize: KiB },
      {
        routes: (app) =>
          app.post('/big', { config: { bodyLimit: { maxSize: 3 * MiB } } }, async (req) => ({
            bytes: Buffer.byteLength(req.body as string),
          })),
      },
    )
    const ok = await post(app, '/big', text(3 * MiB))
    expect(ok.statusCode).toBe(200)
    expect(ok.json()).toEqual({ bytes: 3 * MiB })
    expectTooLarge(await post(app, '/big', text(3 * MiB + 1)), 3 * MiB, '3.0 MB')
    // Streamed with no declared length, Fastify's own reader must not cut it at 1 MiB either.
    expect((await post(app, '/big', lazyBody(2 * MiB).stream)).statusCode).toBe(200)
    // Other routes keep the global limit.
    expectTooLarge(await post(app, '/echo', text(KiB + 1)), KiB, '1.0 KB')
  })

  test('a route allowed less than the global limit is cut at its own limit', async () => {
    const { app } = await build(
      {},
      {
        routes: (app) =>
          app.post('/small', { config: { bodyLimit: { maxSize: 100 } } }, async () => 'ok'),
      },
    )
    expect((await post(app, '/small', text(100))).statusCode).toBe(200)
    expectTooLarge(await post(app, '/small', text(101)), 100, '100 bytes')
    expectTooLarge(await post(app, '/small', lazyBody(1000).stream), 100, '100 bytes')
  })

  test('`bodyLimit: false` takes the route out of the guard (Fastify’s own limit still applies)', async () => {
    const { app } = await build(
      { maxSize: 100 },
      {
        routes: (app) =>
          app.post('/free', { config: { bodyLimit: false } }, async (req) => ({
            bytes: Buffer.byteLength(req.body as string),
          })),
      },
    )
    const res = await post(app, '/free', text(100 * KiB))
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ bytes: 100 * KiB })
    // Fastify's 1 MiB default still holds there, answered in our shape.
    expectTooLarge(await post(app, '/free', text(MiB + 1)), MiB, '1.0 MB')
  })

  test('a bad route override fails the route declaration with ERR_CONFIG_INVALID naming the field', async () => {
    const app = Fastify()
    onTestFinished(async () => {
      await app.close()
    })
    await app.register(bodyLimit)
    expect(() =>
      app.post('/bad', { config: { bodyLimit: { maxSize: -1 } } }, async () => 'ok'),
    ).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG_INVALID',
        message: expect.stringContaining('`maxSize`'),
      }),
    )
  })
})

describe('bodyLimit (Fastify): exemptions', () => {
  test('exempt paths: exact paths and `prefix/*` patterns skip the guard, with or without a query', async () => {
    const { app } = await build({ maxSize: 100, exemptPaths: ['/upload', '/files/*'] })
    for (const url of ['/upload', '/upload?x=1', '/files/a/b', '/files/']) {
      const res = await post(app, url, text(10 * KiB))
      expect(res.statusCode, url).toBe(200)
      expect(res.json(), url).toMatchObject({ bytes: 10 * KiB })
    }
    // Not a prefix match, and not the exact path.
    expectTooLarge(await post(app, '/filesystem', text(101)), 100, '100 bytes')
    expectTooLarge(await post(app, '/echo', text(101)), 100, '100 bytes')
  })

  test('a body is limited whatever the method: exempt methods skip only bodiless requests', async () => {
    const { app, handled } = await build({ maxSize: 100 })
    for (const method of ['OPTIONS', 'POST', 'PUT'] as const) {
      const res = await app.inject({
        method,
        url: '/echo',
        payload: text(101),
        headers: { 'content-type': 'text/plain' },
      })
      expectTooLarge(res, 100, '100 bytes')
    }
    expect(handled).not.toHaveBeenCalled()
    expect((await app.inject({ method: 'OPTIONS', url: '/echo' })).statusCode).toBe(200)
  })

  test('custom exempt methods replace the default list (a bodiless request of another method is checked)', async () => {
    // A bodiless request's only check is its coding: an exempt one skips it.
    const headers = { 'content-encoding': 'zstd' }
    const byDefault = await build({ maxSize: 100 })
    expect(
      (await byDefault.app.inject({ method: 'OPTIONS', url: '/echo', headers })).statusCode,
    ).toBe(200)
    const custom = await build({ maxSize: 100, exemptMethods: ['put'] })
    const options = await custom.app.inject({ method: 'OPTIONS', url: '/echo', headers })
    expectError(options, 415, 'ERR_HTTP_UNSUPPORTED_ENCODING', 'Unsupported Content-Encoding')
    expect((await custom.app.inject({ method: 'PUT', url: '/echo', headers })).statusCode).toBe(200)
  })
})

describe('bodyLimit (Fastify): Fastify’s own limit', () => {
  test('a body over Fastify’s own bodyLimit gets our 413, never Fastify’s shape', async () => {
    const { app } = await build(
      { maxSize: MiB },
      {
        fastify: { bodyLimit: 100 },
        routes: (app) => app.post('/unguarded', { config: { bodyLimit: false } }, async () => 'ok'),
      },
    )
    expect((await post(app, '/unguarded', text(100))).statusCode).toBe(200)
    expectTooLarge(await post(app, '/unguarded', text(101)), 100, '100 bytes')
    expectTooLarge(await post(app, '/unguarded', lazyBody(1000).stream), 100, '100 bytes')
  })

  test('routes declared after the plugin get our limit even above Fastify’s bodyLimit', async () => {
    const { app } = await build({ maxSize: 1000 }, { fastify: { bodyLimit: 100 } })
    expect((await post(app, '/echo', text(1000))).statusCode).toBe(200)
    expectTooLarge(await post(app, '/echo', text(1001)), 1000, '1000 bytes')
  })

  // Fastify fixes a route's limit and error handler when the route is declared:
  // the plugin can neither raise that route's limit nor rely on its error
  // handler. The lower limit (Fastify's) holds, and the guard enforces it
  // itself so the answer is still ours and names the limit that applied.
  test('a route declared before the plugin keeps Fastify’s lower bodyLimit, answered in our shape', async () => {
    const early = vi.fn(async () => 'ok')
    const { app } = await build(
      { maxSize: 1000 },
      { fastify: { bodyLimit: 100 }, before: (app) => app.post('/early', early) },
    )
    expect((await post(app, '/early', text(100))).statusCode).toBe(200)
    expectTooLarge(await post(app, '/early', text(101)), 100, '100 bytes')
    expectTooLarge(await post(app, '/early', text(5000)), 100, '100 bytes')
    expectTooLarge(await post(app, '/early', lazyBody(500).stream), 100, '100 bytes')
    expect(early).toHaveBeenCalledTimes(1)
  })
})

describe('bodyLimit (Fastify): Content-Length', () => {
  test.each([
    'abc',
    '-1',
    '+5',
    '1e3',
    '12.5',
    ' 12',
    '99999999999999999999',
    '18446744073709551616',
  ])(
    'Content-Length %j is a 400 ERR_HTTP_INVALID_CONTENT_LENGTH, not a crash or a 500',
    async (value) => {
      const { app, handled } = await build({ maxSize: KiB })
      const res = await post(app, '/echo', 'hello', { 'content-length': value })
      expectError(res, 400, 'ERR_HTTP_INVALID_CONTENT_LENGTH', 'Invalid Content-Length')
      expect(res.headers.connection).toBe('close')
      expect(handled).not.toHaveBeenCalled()
    },
  )
})

describe('bodyLimit (Fastify): a body that disagrees with its Content-Length', () => {
  test('a body that ends short of its declared length is a 400 in our shape (Fastify’s own check, mapped)', async () => {
    const { app, handled } = await build({ maxSize: KiB })
    const res = await post(app, '/echo', 'only ten b', { 'content-length': '100' })
    expectError(res, 400, 'ERR_HTTP_INVALID_CONTENT_LENGTH', 'Invalid Content-Length')
    expect(res.headers.connection).toBe('close')
    expect(handled).not.toHaveBeenCalled()
  })
})

describe('bodyLimit (Fastify): inflate', () => {
  const json = { message: 'hello', list: Array.from({ length: 100 }, (_, i) => i) }

  test.each(['gzip', 'deflate', 'br'] as const)(
    'a valid %s body is inflated and parsed',
    async (encoding) => {
      const { app } = await build()
      const res = await app.inject({
        method: 'POST',
        url: '/echo',
        payload: compress(encoding, JSON.stringify(json)),
        headers: { 'content-type': 'application/json', 'content-encoding': encoding },
      })
      expect(res.statusCode).toBe(200)
      expect(res.json().body).toEqual(json)
    },
  )

  test('a gzip bomb (a few KiB inflating past maxSize) is a 413, stopped while inflating', async () => {
    const { app, handled } = await build({ maxSize: 64 * KiB })
    const bomb = compress('gzip', Buffer.alloc(32 * MiB))
    expect(bomb.length).toBeLessThan(64 * KiB)
    const res = await post(app, '/echo', bomb, { 'content-encoding': 'gzip' })
    expectTooLarge(res, 64 * KiB, '64.0 KB')
    expect(handled).not.toHaveBeenCalled()
  })

  test('the limit applies to the inflated size: a body just past it is refused, one at it is not', async () => {
    const { app } = await build({ maxSize: 10 * KiB })
    const at = await post(app, '/echo', compress('br', text(10 * KiB)), {
      'content-encoding': 'br',
    })
    expect(at.statusCode).toBe(200)
    expect(at.json()).toMatchObject({ bytes: 10 * KiB })
    const past = await post(app, '/echo', compress('br', text(10 * KiB + 1)), {
      'content-encoding': 'br',
    })
    expectTooLarge(past, 10 * KiB, '10.0 KB')
  })

  test('a compressed body larger than zlib’s buffers streams through whole', async () => {
    const { app } = await build({ maxSize: 2 * MiB })
    const payload = randomBytes(384 * KiB).toString('base64')
    const res = await post(app, '/echo', compress('gzip', payload), { 'content-encoding': 'gzip' })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ bytes: payload.length })
  })

  test.each(['zstd', 'compress', 'gzip, zstd'])(
    'Content-Encoding %j is a 415 ERR_HTTP_UNSUPPORTED_ENCODING',
    async (encoding) => {
      const { app, handled } = await build()
      const res = await post(app, '/echo', 'hello', { 'content-encoding': encoding })
      expectError(res, 415, 'ERR_HTTP_UNSUPPORTED_ENCODING', 'Unsupported Content-Encoding')
      expect(handled).not.toHaveBeenCalled()
    },
  )

  test('an invalid gzip body is a 400 ERR_HTTP_BAD_REQUEST', async () => {
    const { app, handled } = await build()
    const res = await post(app, '/echo', 'definitely not gzip', { 'content-encoding': 'gzip' })
    expectError(res, 400, 'ERR_HTTP_BAD_REQUEST', 'Invalid compressed request body')
    expect(handled).not.toHaveBeenCalled()
  })

  test('with inflate off a compressed body is a 415; with passEncoded it is left alone and its wire size is what counts', async () => {
    const small = compress('gzip', text(100 * KiB))
    expect(small.length).toBeLessThan(KiB)
    const headers = { 'content-encoding': 'gzip' }
    const off = await build({ maxSize: KiB, inflate: false })
    expectError(
      await post(off.app, '/echo', small.toString('latin1'), headers),
      415,
      'ERR_HTTP_UNSUPPORTED_ENCODING',
      'Unsupported Content-Encoding',
    )
    const pass = await build({ maxSize: KiB, inflate: false, passEncoded: true })
    const res = await post(pass.app, '/echo', small.toString('latin1'), headers)
    expect(res.statusCode).toBe(200)
  })
})

describe('bodyLimit (Fastify): body timeout', () => {
  test('a body that stops arriving is answered 408 ERR_HTTP_BODY_TIMEOUT after bodyTimeoutMs', async () => {
    const { app, handled } = await build({ bodyTimeoutMs: 50 })
    const res = await post(app, '/echo', lazyBody(10, { end: false }).stream)
    expectError(res, 408, 'ERR_HTTP_BODY_TIMEOUT', 'Request body timed out')
    expect(res.headers.connection).toBe('close')
    expect(handled).not.toHaveBeenCalled()
  })

  test('a body shorter than its declared length, on a real socket, gets the 408 and a closed connection', async () => {
    const { app, handled } = await build({ bodyTimeoutMs: 100 })
    const client = await rawConnect(await listen(app))
    await client.write(
      requestHead('POST', '/echo', { 'content-type': 'text/plain', 'content-length': 100 }),
    )
    await client.write('only ten b')
    const res = parseResponse(await client.until(hasFullResponse, 'the 408'))
    expectError(
      { statusCode: res.status, headers: res.headers, body: res.body },
      408,
      'ERR_HTTP_BODY_TIMEOUT',
      'Request body timed out',
    )
    expect(res.headers.connection).toBe('close')
    await within(client.closed, 5000, 'the server to close the connection')
    expect(handled).not.toHaveBeenCalled()
  })
})

describe('bodyLimit (Fastify): on a real socket', () => {
  test('headers declaring too much, with no body sent, get a prompt 413 and the server closes the connection', async () => {
    const { app, handled } = await build()
    const client = await rawConnect(await listen(app))
    await client.write(
      requestHead('POST', '/echo', { 'content-type': 'text/plain', 'content-length': 2 * MiB }),
    )
    const res = parseResponse(await client.until(hasFullResponse, 'the 413'))
    expectTooLarge({ statusCode: res.status, headers: res.headers, body: res.body }, MiB, '1.0 MB')
    // Nothing was left unread, so the close is a clean FIN, not a reset.
    expect(await within(client.closed, 5000, 'the server to close')).toEqual({ reset: false })
    expect(handled).not.toHaveBeenCalled()
  })

  test('a 2 MiB chunked body is refused with a 413, the rest is never read, and the next connection is served', async () => {
    const { app, handled } = await build()
    const sockets: Socket[] = []
    app.server.on('connection', (socket: Socket) => sockets.push(socket))
    const port = await listen(app)

    const client = await rawConnect(port)
    await client.write(
      requestHead('POST', '/echo', {
        'content-type': 'text/plain',
        'transfer-encoding': 'chunked',
      }),
    )
    await sendChunked(client, 2 * MiB)
    const res = parseResponse(await client.until(hasFullResponse, 'the 413'))
    expectTooLarge({ statusCode: res.status, headers: res.headers, body: res.body }, MiB, '1.0 MB')
    await within(client.closed, 5000, 'the server to close the connection')
    expect(handled).not.toHaveBeenCalled()
    // The server stopped reading at the limit: at most some read-ahead past 1 MiB.
    expect(sockets[0]?.bytesRead).toBeLessThan(MiB + 512 * KiB)

    const next = await rawConnect(port)
    await next.write(
      requestHead('POST', '/echo', { 'content-type': 'text/plain', 'content-length': 5 }),
    )
    await next.write('hello')
    const ok = parseResponse(await next.until(hasFullResponse, 'the next answer'))
    expect(ok.status).toBe(200)
    expect(JSON.parse(ok.body)).toMatchObject({ bytes: 5 })
    next.destroy()
  })

  test('Expect: 100-continue with an oversized length gets the 413 and never 100 Continue', async () => {
    const { app, handled } = await build({ maxSize: KiB })
    const client = await rawConnect(await listen(app))
    await client.write(
      requestHead('POST', '/echo', {
        'content-type': 'text/plain',
        'content-length': 2 * KiB,
        expect: '100-continue',
      }),
    )
    const received = await client.until(hasFullResponse, 'the 413')
    const res = parseResponse(received)
    expect(res.interim).toEqual([])
    expect(received).not.toContain('100 Continue')
    expectTooLarge({ statusCode: res.status, headers: res.headers, body: res.body }, KiB, '1.0 KB')
    expect(handled).not.toHaveBeenCalled()
    client.destroy()
  })

  test('Expect: 100-continue within the limit gets 100 Continue, then the handler’s 200', async () => {
    const { app } = await build({ maxSize: KiB })
    const client = await rawConnect(await listen(app))
    await client.write(
      requestHead('POST', '/echo', {
        'content-type': 'text/plain',
        'content-length': 5,
        expect: '100-continue',
      }),
    )
    await client.until((t) => t.startsWith('HTTP/1.1 100 Continue\r\n\r\n'), '100 Continue')
    await client.write('hello')
    const res = parseResponse(await client.until(hasFullResponse, 'the 200'))
    expect(res.interim).toEqual(['HTTP/1.1 100 Continue'])
    expect(res.status).toBe(200)
    expect(JSON.parse(res.body)).toMatchObject({ bytes: 5 })
    client.destroy()
  })

  test('a malformed Content-Length is refused by Node’s parser before any hook, and the server keeps serving', async () => {
    const { app, handled } = await build()
    const port = await listen(app)
    const bad = await rawConnect(port)
    await bad.write(
      requestHead('POST', '/echo', { 'content-type': 'text/plain', 'content-length': '-1' }),
    )
    const refused = parseResponse(await bad.until(hasFullResponse, 'the 400'))
    expect(refused.status).toBe(400)
    await within(bad.closed, 5000, 'the server to close the bad connection')
    expect(handled).not.toHaveBeenCalled()

    const next = await rawConnect(port)
    await next.write(
      requestHead('POST', '/echo', { 'content-type': 'text/plain', 'content-length': 2 }),
    )
    await next.write('ok')
    expect(parseResponse(await next.until(hasFullResponse, 'the next answer')).status).toBe(200)
    next.destroy()
  })
})

describe('bodyLimit (Fastify): options', () => {
  test('bad plugin options fail registration with ERR_CONFIG_INVALID naming the field', async () => {
    const app = Fastify()
    onTestFinished(async () => {
      await app.close()
    })
    await expect(app.register(bodyLimit, { maxSize: 0 })).rejects.toMatchObject({
      code: 'ERR_CONFIG_INVALID',
      message: expect.stringContaining('`maxSize`'),
    })
  })
})

describe('bodyLimit (Fastify): HTTP/2', () => {
  /** One request on a cleartext HTTP/2 connection; the body goes as DATA frames, no length declared. */
  async function h2(port: number, method: string, body: Buffer | undefined) {
    const { connect } = await import('node:http2')
    const session = connect(`http://127.0.0.1:${port}`)
    onTestFinished(() => session.close())
    const req = session.request(
      { ':method': method, ':path': '/echo', 'content-type': 'text/plain' },
      { endStream: body === undefined },
    )
    if (body !== undefined) req.end(body)
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    const status = await within(
      new Promise<number>((resolve, reject) => {
        req.on('response', (headers) => resolve(Number(headers[':status'])))
        req.on('error', reject)
      }),
      5000,
      `the HTTP/2 answer to ${method}`,
    )
    await within(new Promise((resolve) => req.on('end', resolve)), 5000, 'the HTTP/2 body')
    return { status, body: Buffer.concat(chunks).toString() }
  }

  test('a body sent without Content-Length is limited on GET and OPTIONS too; a bodiless GET is served', async () => {
    const app = Fastify({ http2: true })
    onTestFinished(async () => {
      await app.close()
    })
    const handled = vi.fn()
    await app.register(bodyLimit, { maxSize: 1000 })
    app.route({
      method: ['GET', 'OPTIONS'],
      url: '/echo',
      handler: async () => {
        handled()
        return 'ok'
      },
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const port = (app.server.address() as AddressInfo).port
    for (const method of ['GET', 'OPTIONS']) {
      const res = await h2(port, method, Buffer.alloc(5000, 0x61))
      expect(res.status, method).toBe(413)
      expect(JSON.parse(res.body)).toEqual({
        detail: 'Request body too large',
        max_size: 1000,
        max_size_human: '1000 bytes',
      })
    }
    expect(handled).not.toHaveBeenCalled()
    expect((await h2(port, 'GET', undefined)).status).toBe(200)
  })
})
