/**
 * Content codings of a request body (RFC 9110 §8.4): which ones a
 * `Content-Encoding` lists, and the decoders that undo them under the body
 * limit, for a streamed body and for one already wholly in memory. Every
 * decoded layer is bounded by the limit, not only the last: the outer layer
 * of `gzip, gzip` decodes to the inner compressed stream, and a bomb there
 * would otherwise cost the CPU and memory the limit exists to bound.
 */
import { kMaxLength } from 'node:buffer'
import { Transform, type TransformCallback } from 'node:stream'
import {
  brotliDecompressSync,
  constants,
  createBrotliDecompress,
  createGunzip,
  createInflate,
  gunzipSync,
  inflateSync,
} from 'node:zlib'
import { InvalidCompressedBodyError, RequestTooLargeError } from '../errors.js'

/** The `Content-Encoding`s the guard decodes (`x-gzip` is read as `gzip`, RFC 9110 §8.4.1.3). */
export type BodyEncoding = 'gzip' | 'deflate' | 'br'

/**
 * Most codings one body may list. Real clients send one; a few more are legal
 * (`gzip, br`), but each is one more decoder held per request, and a header
 * listing hundreds is an attack, not a client.
 */
export const MAX_CODINGS = 4

/**
 * The codings a `Content-Encoding` lists, in the order to undo them (the last
 * applied first), without `identity` and empty list elements (RFC 9110
 * §5.6.1); `[]` for none. `undefined` when one is not a coding the guard
 * decodes, or when there are more than {@link MAX_CODINGS}.
 */
export function decodingOrder(
  contentEncoding: string | readonly string[] | undefined,
): BodyEncoding[] | undefined {
  if (contentEncoding === undefined) return []
  const value = typeof contentEncoding === 'string' ? contentEncoding : contentEncoding.join(',')
  const order: BodyEncoding[] = []
  for (const element of value.split(',')) {
    const coding = element.trim().toLowerCase()
    if (coding === '' || coding === 'identity') continue
    if (order.length === MAX_CODINGS) return undefined
    switch (coding) {
      case 'gzip':
      case 'x-gzip':
        order.push('gzip')
        break
      case 'deflate':
        order.push('deflate')
        break
      case 'br':
        order.push('br')
        break
      default:
        return undefined
    }
  }
  return order.reverse()
}

/** A streaming decoder for one coding. */
export function createInflater(encoding: BodyEncoding): Transform {
  switch (encoding) {
    case 'gzip':
      return createGunzip()
    case 'deflate':
      return createInflate()
    case 'br':
      return createBrotliDecompress({
        params: { [constants.BROTLI_DECODER_PARAM_LARGE_WINDOW]: 0 },
      })
  }
}

/**
 * A streaming decoder for codings in decoding order. One coding is its zlib
 * stream as is; several are chained, each inner layer's output counted
 * against `limit` (the last layer's is counted by the meter that reads it).
 */
export function createDecoder(order: readonly BodyEncoding[], limit: number): Transform {
  if (order.length === 1) return createInflater(order[0]!)
  return new DecoderChain(order, limit)
}

/**
 * Several decoders as one stream. Backpressure runs layer to layer: a layer
 * whose next one is full pauses until it drains, and the chain takes wire
 * bytes only as fast as its first layer does.
 */
class DecoderChain extends Transform {
  readonly #layers: Transform[]
  #flushed: TransformCallback | undefined

  constructor(order: readonly BodyEncoding[], limit: number) {
    super()
    const layers = order.map(createInflater)
    this.#layers = layers
    layers.forEach((layer, i) => {
      layer.on('error', (err: Error) => this.destroy(err))
      const next = layers[i + 1]
      if (next === undefined) {
        layer.on('data', (chunk: Buffer) => this.push(chunk))
        layer.on('end', () => this.#flushed?.())
        return
      }
      let produced = 0
      layer.on('data', (chunk: Buffer) => {
        produced += chunk.length
        if (produced > limit) {
          this.destroy(new RequestTooLargeError(limit))
          return
        }
        if (!next.write(chunk)) layer.pause()
      })
      next.on('drain', () => layer.resume())
      layer.on('end', () => next.end())
    })
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.#layers[0]!.write(chunk)) callback()
    else this.#layers[0]!.once('drain', () => callback())
  }

  override _flush(callback: TransformCallback): void {
    this.#flushed = callback
    this.#layers[0]!.end()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    for (const layer of this.#layers) layer.destroy()
    callback(error)
  }
}

/**
 * Decodes a body that is already wholly in memory, each layer producing at
 * most `limit` bytes: the same budget and the same answers as the streaming
 * decoder (413 past the limit, 400 for a corrupt body), for a body that
 * arrived before the guard could meter it as it streamed.
 */
export function inflateWhole(
  order: readonly BodyEncoding[],
  body: Buffer,
  limit: number,
): Buffer | RequestTooLargeError | InvalidCompressedBodyError {
  // zlib refuses a cap above the largest Buffer; no body can reach that anyway.
  const options = { maxOutputLength: Math.min(limit, kMaxLength) }
  let data = body
  try {
    for (const encoding of order) {
      switch (encoding) {
        case 'gzip':
          data = gunzipSync(data, options)
          break
        case 'deflate':
          data = inflateSync(data, options)
          break
        case 'br':
          data = brotliDecompressSync(data, {
            ...options,
            params: { [constants.BROTLI_DECODER_PARAM_LARGE_WINDOW]: 0 },
          })
          break
      }
    }
    return data
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
      return new RequestTooLargeError(limit)
    }
    return new InvalidCompressedBodyError()
  }
}
