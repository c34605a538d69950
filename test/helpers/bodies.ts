/**
 * Request bodies for the body-limit suites: produced on demand so a test can
 * tell how much of a body the server ever pulled, and compressed in each
 * encoding the guard inflates.
 */
import { Readable } from 'node:stream'
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib'
import { expect } from 'vitest'

export const KiB = 1024
export const MiB = 1024 * 1024

/** The exact 413 body for a limit, as the seed wrote it. */
export function tooLargeBody(maxSize: number, human: string): string {
  return `{"detail":"Request body too large","max_size":${maxSize},"max_size_human":"${human}"}`
}

/** What both answer checks need of a response, from `inject()` or a raw socket. */
export interface AnswerLike {
  readonly status: number
  readonly headers: Readonly<Record<string, unknown>>
  readonly body: string
}

/** Status, headers and the exact body of the seed's 413. */
export function expectTooLarge(res: AnswerLike, maxSize: number, human: string): void {
  expect(res.status).toBe(413)
  expect(res.headers['content-type']).toBe('application/json')
  expect(res.headers.connection).toBe('close')
  expect(res.body).toBe(tooLargeBody(maxSize, human))
}

/** Status, content type and the `{ detail, code }` body every other refusal has. */
export function expectError(res: AnswerLike, status: number, code: string, detail: string): void {
  expect(res.status).toBe(status)
  expect(res.headers['content-type']).toBe('application/json')
  expect(JSON.parse(res.body)).toEqual({ detail, code })
}

export interface LazyBody {
  readonly stream: Readable
  /** Bytes handed out so far: what the server actually pulled. */
  produced(): number
}

/**
 * `total` bytes of `a`, made only when read. With `end: false` the body stops
 * after `total` bytes without ending, like a client that went quiet.
 */
export function lazyBody(total: number, options: { chunk?: number; end?: boolean } = {}): LazyBody {
  const size = options.chunk ?? 16 * KiB
  const end = options.end ?? true
  let produced = 0
  const stream = new Readable({
    read() {
      if (produced >= total) {
        if (end) this.push(null)
        return
      }
      const n = Math.min(size, total - produced)
      produced += n
      this.push(Buffer.alloc(n, 0x61))
    },
  })
  return { stream, produced: () => produced }
}

export type Encoding = 'gzip' | 'deflate' | 'br'

export function compress(encoding: Encoding, data: string | Buffer): Buffer {
  switch (encoding) {
    case 'gzip':
      return gzipSync(data)
    case 'deflate':
      return deflateSync(data)
    case 'br':
      return brotliCompressSync(data)
  }
}
