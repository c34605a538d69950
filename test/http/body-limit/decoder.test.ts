import { Readable } from 'node:stream'
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib'
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import {
  type BodyEncoding,
  createDecoder,
  decodingOrder,
  inflateWhole,
  MAX_CODINGS,
} from '../../../src/http/body-limit/decoder.js'
import { InvalidCompressedBodyError, RequestTooLargeError } from '../../../src/http/index.js'

const ENCODE: Record<BodyEncoding, (b: Buffer) => Buffer> = {
  gzip: (b) => gzipSync(b),
  deflate: (b) => deflateSync(b),
  br: (b) => brotliCompressSync(b),
}

/** `data` with `codings` applied in the order listed (as `Content-Encoding` lists them). */
const encode = (data: Buffer, codings: readonly BodyEncoding[]) =>
  codings.reduce((b, c) => ENCODE[c](b), data)

const coding = fc.constantFrom<BodyEncoding>('gzip', 'deflate', 'br')
const codings = fc.array(coding, { minLength: 1, maxLength: MAX_CODINGS })
/** How a client may spell one coding in the header. */
const spelling = (c: BodyEncoding) =>
  fc
    .tuple(
      fc.constantFrom(
        ...(c === 'gzip' ? ['gzip', 'x-gzip', 'GZIP', 'X-Gzip'] : [c, c.toUpperCase()]),
      ),
      fc.constantFrom('', ' ', '\t'),
    )
    .map(([name, space]) => `${space}${name}${space}`)

describe('decodingOrder', () => {
  test('property: the codings of any header spelling come back in reverse, identity and empty elements dropped', () => {
    fc.assert(
      fc.property(
        codings.chain((list) =>
          fc.tuple(...list.map(spelling), fc.boolean()).map((parts) => {
            const identity = parts.pop() as boolean
            const elements = parts as string[]
            return { list, header: (identity ? ['identity', ...elements, ''] : elements).join(',') }
          }),
        ),
        ({ list, header }) => {
          expect(decodingOrder(header)).toEqual([...list].reverse())
        },
      ),
    )
  })

  test('more than MAX_CODINGS codings, or any unknown one, is undefined', () => {
    expect(
      decodingOrder(
        Array(MAX_CODINGS + 1)
          .fill('gzip')
          .join(', '),
      ),
    ).toBeUndefined()
    expect(decodingOrder('gzip, zstd')).toBeUndefined()
    expect(decodingOrder('compress')).toBeUndefined()
    expect(decodingOrder(['gzip', 'x-foo'])).toBeUndefined()
  })
})

describe('decoders', () => {
  test('property: a body under any stack of codings round-trips, whole and streamed', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), codings, async (bytes, list) => {
        const data = Buffer.from(bytes)
        const body = encode(data, list)
        const order = [...list].reverse()
        expect(inflateWhole(order, body, 4096)).toEqual(data)
        const decoder = createDecoder(order, 4096)
        const out: Buffer[] = []
        decoder.on('data', (c: Buffer) => out.push(c))
        const ended = new Promise((resolve, reject) => {
          decoder.on('end', resolve)
          decoder.on('error', reject)
        })
        Readable.from([body]).pipe(decoder)
        await ended
        expect(Buffer.concat(out)).toEqual(data)
      }),
      { numRuns: 100 },
    )
  })

  test('a whole body decodes within the limit, at every layer, and not past it', () => {
    const body = Buffer.from('x'.repeat(1000))
    expect(inflateWhole(['gzip'], gzipSync(body), 1000)).toEqual(body)
    expect(inflateWhole(['deflate'], deflateSync(body), 1000)).toEqual(body)
    expect(inflateWhole(['br'], brotliCompressSync(body), 1000)).toEqual(body)
    expect(inflateWhole(['gzip'], gzipSync(body), 999)).toBeInstanceOf(RequestTooLargeError)
    expect(inflateWhole(['br'], Buffer.from('nope'), 1000)).toBeInstanceOf(
      InvalidCompressedBodyError,
    )
    // The outer layer decodes to 2,000 empty gzip members (40 KB), which decode to nothing.
    const members = Buffer.concat(Array.from({ length: 2000 }, () => gzipSync(Buffer.alloc(0))))
    expect(inflateWhole(['gzip', 'gzip'], gzipSync(members), 2000)).toBeInstanceOf(
      RequestTooLargeError,
    )
  })

  test('a chained decoder fails with the 413 when an inner layer passes the limit', async () => {
    // The outer gzip decodes to 10,000 empty gzip members (200 KB) that
    // decode to nothing: only the inner layer's own count can stop it.
    const members = Buffer.concat(Array.from({ length: 10_000 }, () => gzipSync(Buffer.alloc(0))))
    const decoder = createDecoder(['gzip', 'gzip'], 64 * 1024)
    decoder.resume()
    const failed = new Promise<unknown>((resolve) => decoder.on('error', resolve))
    decoder.end(gzipSync(members))
    expect(await failed).toBeInstanceOf(RequestTooLargeError)
  })

  test('a chained decoder reports a corrupt layer as an error', async () => {
    const decoder = createDecoder(['br', 'gzip'], 1024)
    decoder.resume()
    const failed = new Promise<unknown>((resolve) => decoder.on('error', resolve))
    decoder.end(brotliCompressSync(Buffer.from('not gzip inside')))
    expect(await failed).toBeInstanceOf(Error)
  })
})
