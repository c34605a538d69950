/**
 * Regression: with default options the guard counted a compressed body by
 * its compressed size and handed it on still compressed, while
 * `express.json()` inflates by default: a 5 MB brotli bomb of a few KB passed
 * the 1 MiB limit and reached the handler whole. The safe behaviour is now
 * the default: the guard decodes `gzip`, `deflate` and `br` itself (stacked
 * and repeated codings included) and applies `maxSize` to every decoded
 * layer, hands on an identity body without `Content-Encoding`, and refuses
 * with 415 a coding it cannot count. No handler sees more than `maxSize`
 * decoded bytes, whatever `Content-Encoding` says.
 */
import { createServer } from 'node:http'
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib'
import express from 'express'
import Fastify from 'fastify'
import { describe, expect, onTestFinished, test } from 'vitest'
import { bodyLimit, bodyLimitMiddleware } from '../../src/http/index.js'
import { expectError, expectTooLarge, KiB, MiB } from '../helpers/bodies.js'
import { closeServer, listenLocal, roundTrip } from '../helpers/raw-http.js'

const CODERS = {
  gzip: gzipSync,
  'x-gzip': gzipSync,
  deflate: deflateSync,
  br: (data: Buffer) => brotliCompressSync(data),
  identity: (data: Buffer) => data,
} as const
type Coding = keyof typeof CODERS

/** `data` encoded as `Content-Encoding: codings` says (applied in the order listed). */
function encode(data: Buffer, codings: readonly Coding[]): Buffer {
  return codings.reduce((body, coding) => CODERS[coding](body), data)
}

/** A JSON document of exactly `bytes` bytes. */
function json(bytes: number): Buffer {
  const doc = Buffer.alloc(bytes, 0x61)
  doc.write('{"a":"', 0)
  doc.write('"}', bytes - 2)
  return doc
}

/** Express 5, the guard first with `options`, then `express.json()` with a generous limit. */
async function expressApp(options?: Parameters<typeof bodyLimitMiddleware>[0]) {
  let largest = 0
  let calls = 0
  const app = express()
  app.use(bodyLimitMiddleware(options))
  app.use(express.json({ limit: '50mb' }))
  app.post('/echo', (req, res) => {
    calls++
    const size = Buffer.byteLength(JSON.stringify(req.body))
    largest = Math.max(largest, size)
    res.json({ bytes: size })
  })
  const server = createServer(app)
  onTestFinished(() => closeServer(server))
  return { port: await listenLocal(server), largest: () => largest, calls: () => calls }
}

/** Fastify 5 with the plugin's `options`. */
async function fastifyApp(options?: Parameters<typeof bodyLimit>[1]) {
  let largest = 0
  let calls = 0
  const app = Fastify()
  onTestFinished(() => app.close())
  await app.register(bodyLimit, options ?? {})
  app.post('/echo', async (request) => {
    calls++
    const size = Buffer.byteLength(JSON.stringify(request.body))
    largest = Math.max(largest, size)
    return { bytes: size }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return { port: address.port, largest: () => largest, calls: () => calls }
}

const post = (port: number, body: Buffer, contentEncoding: string) =>
  roundTrip(
    port,
    'POST',
    '/echo',
    {
      'content-type': 'application/json',
      'content-length': body.length,
      'content-encoding': contentEncoding,
    },
    body,
  )

const STACKS: readonly (readonly Coding[])[] = [
  ['gzip'],
  ['x-gzip'],
  ['deflate'],
  ['br'],
  ['gzip', 'br'],
  ['br', 'gzip'],
  ['gzip', 'gzip'],
  ['deflate', 'identity', 'br'],
]

describe.each([
  ['Express 5 + express.json()', expressApp],
  ['Fastify 5', fastifyApp],
] as const)('%s with default options', (_name, start) => {
  test('a 5 MB brotli bomb of a few KB is the 413; the handler never runs', async () => {
    const app = await start()
    const bomb = encode(json(5 * MiB), ['br'])
    expect(bomb.length).toBeLessThan(64 * KiB)
    expectTooLarge(await post(app.port, bomb, 'br'), MiB, '1.0 MB')
    expect(app.calls()).toBe(0)
  })

  test.each(STACKS.map((s) => [s.join(', ')] as const))(
    '`Content-Encoding: %s`: 5 KB decoded is the 413 at maxSize 1000, 500 bytes reach the handler decoded',
    async (header) => {
      const codings = header.split(', ') as Coding[]
      const app = await start({ maxSize: 1000 })
      const big = encode(json(5 * KiB), codings)
      expect(big.length).toBeLessThan(1000)
      expectTooLarge(await post(app.port, big, header), 1000, '1000 bytes')
      const ok = await post(app.port, encode(json(500), codings), header)
      expect(ok.status).toBe(200)
      expect(JSON.parse(ok.body)).toEqual({ bytes: 500 })
      expect(app.largest()).toBeLessThanOrEqual(1000)
    },
  )

  test.each(['zstd', 'compress', 'x-unknown', 'gzip, zstd', 'gzip, gzip, gzip, gzip, gzip'])(
    '`Content-Encoding: %s`, which the guard cannot count, is a 415 ERR_HTTP_UNSUPPORTED_ENCODING',
    async (header) => {
      const app = await start()
      expectError(
        await post(app.port, gzipSync(json(100)), header),
        415,
        'ERR_HTTP_UNSUPPORTED_ENCODING',
        'Unsupported Content-Encoding',
      )
      expect(app.calls()).toBe(0)
    },
  )

  test('an inner layer past maxSize is the 413 too, even when the last one decodes to little', async () => {
    const app = await start({ maxSize: 64 * KiB })
    // The outer gzip decodes to 10,000 empty gzip members (200 KB) that decode to nothing.
    const members = Buffer.concat(Array.from({ length: 10_000 }, () => gzipSync(Buffer.alloc(0))))
    const body = gzipSync(members)
    expect(body.length).toBeLessThan(64 * KiB)
    expectTooLarge(await post(app.port, body, 'gzip, gzip'), 64 * KiB, '64.0 KB')
    expect(app.calls()).toBe(0)
  })
})
