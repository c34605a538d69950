/**
 * The framework-free core of the body-size limit: options, exemptions, the
 * declared-length fast path, and the meter that counts a streamed (and
 * optionally inflated) body and stops it the moment it passes the limit.
 */
import { kMaxLength } from 'node:buffer'
import type { Transform } from 'node:stream'
import {
  brotliDecompressSync,
  constants,
  createBrotliDecompress,
  createGunzip,
  createInflate,
  gunzipSync,
  inflateSync,
} from 'node:zlib'
import { z } from 'zod'
import { SecurityError } from '../../errors.js'
import { parseOptions } from '../../internal/options.js'
import { type AnswerOptions, type HttpAnswer, toHttpAnswer } from '../../internal/reply/index.js'
import { BodyTimeoutError, RequestTooLargeError, UnsupportedEncodingError } from '../errors.js'
import { compilePathMatcher, type PathMatcher, PathPatternSchema } from '../paths.js'

/** 1 TiB: any larger limit is a typo, and larger numbers lose integer precision in headers. */
const MAX_LIMIT = 2 ** 40

export const BodySizeConfigSchema = z
  .object({
    /**
     * Largest accepted body, in bytes (after inflation when `inflate` is on).
     * @default 1048576 (1 MiB)
     */
    maxSize: z.number().int().min(1).max(MAX_LIMIT).default(1_048_576),
    /**
     * Paths the guard ignores: exact (`/upload`) or prefix (`/files/*`).
     * @default []
     */
    exemptPaths: z.array(PathPatternSchema).default([]),
    /**
     * Methods the guard ignores (they carry no body by convention).
     * @default ['GET', 'HEAD', 'OPTIONS']
     */
    exemptMethods: z
      .array(z.string().regex(/^[A-Za-z]+$/, 'must be an HTTP method'))
      .default(['GET', 'HEAD', 'OPTIONS'])
      .transform((m) => m.map((x) => x.toUpperCase())),
    /**
     * A body must finish arriving within this many ms, or the answer is 408
     * (a client that declares 1 MB and sends 10 bytes cannot hold the
     * connection forever). `false` disables it.
     * @default 30000
     */
    bodyTimeoutMs: z
      .union([z.number().int().min(1).max(3_600_000), z.literal(false)])
      .default(30_000),
    /**
     * Inflate `gzip`, `deflate` and `br` bodies here, and apply `maxSize` to
     * the inflated size too: a 10 KB body that inflates to 1 GB is a 413,
     * stopped while inflating.
     * @default false
     */
    inflate: z.boolean().default(false),
  })
  .strict()

/** Options of the `bodyLimit` plugin and `bodyLimitMiddleware`. */
export type BodySizeConfig = z.input<typeof BodySizeConfigSchema>

/** Per-route override, set as `config: { bodyLimit: { maxSize } }` or `false` to exempt. */
export const BodyLimitRouteConfigSchema = z.union([
  z.literal(false),
  z.object({ maxSize: z.number().int().min(1).max(MAX_LIMIT) }).strict(),
])
export type BodyLimitRouteConfig = z.input<typeof BodyLimitRouteConfigSchema>

/** Resolved, immutable guard settings. */
export interface BodyLimitPolicy {
  readonly maxSize: number
  readonly bodyTimeoutMs: number | false
  readonly inflate: boolean
  readonly isExemptPath: PathMatcher
  readonly exemptMethods: ReadonlySet<string>
}

export function resolveBodyLimit(config: BodySizeConfig | undefined): BodyLimitPolicy {
  const c = parseOptions('bodyLimit', BodySizeConfigSchema, config)
  return Object.freeze({
    maxSize: c.maxSize,
    bodyTimeoutMs: c.bodyTimeoutMs,
    inflate: c.inflate,
    isExemptPath: compilePathMatcher(c.exemptPaths),
    exemptMethods: new Set(c.exemptMethods),
  })
}

export function parseRouteOverride(
  value: unknown,
  route: string,
): BodyLimitRouteConfig | undefined {
  if (value === undefined) return undefined
  return parseOptions(`bodyLimit (route ${route})`, BodyLimitRouteConfigSchema, value)
}

/**
 * The answer to a refusal by the guard, which always closes the connection:
 * the guard refuses before the body has been read to its end, and the only
 * ways to keep the connection would be to read and drop whatever the client
 * still sends (what the guard exists to prevent) or to leave it paused
 * mid-body, where the next request never arrives.
 */
export function refusal(error: SecurityError, options?: AnswerOptions): HttpAnswer {
  const answer = toHttpAnswer(error, options)
  return { ...answer, headers: { ...answer.headers, connection: 'close' } }
}

/** Result of reading a declared `Content-Length`. */
export type DeclaredLength =
  | { readonly kind: 'absent' }
  | { readonly kind: 'invalid' }
  | { readonly kind: 'length'; readonly bytes: number }

const ABSENT: DeclaredLength = { kind: 'absent' }
const INVALID: DeclaredLength = { kind: 'invalid' }

/**
 * RFC 9110 §8.6: `Content-Length = 1*DIGIT`. Anything else (a sign, a space,
 * a list, more digits than a safe integer holds) is invalid, never guessed
 * at. The value is not trimmed: Node's parser already strips the optional
 * whitespace around a field value (RFC 9110 §5.5), so whitespace left here
 * came from somewhere that is not an HTTP parser and is refused with the rest.
 */
export function declaredLength(value: string | string[] | undefined): DeclaredLength {
  if (value === undefined) return ABSENT
  if (typeof value !== 'string') return INVALID
  if (value.length === 0 || value.length > 15 || !/^[0-9]+$/.test(value)) return INVALID
  return { kind: 'length', bytes: Number(value) }
}

/** The `Content-Encoding`s the guard inflates (`x-gzip` is read as `gzip`, RFC 9110 §8.4.1.3). */
export type BodyEncoding = 'gzip' | 'deflate' | 'br'

/** A body inflater for one encoding. */
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
 * Inflates a body that is already wholly in memory, producing at most `limit`
 * bytes: the same budget and the same answers as the streaming inflater (413
 * past the limit, 400 for a corrupt body), for a body that arrived before the
 * guard could meter it as it streamed.
 */
export function inflateWhole(
  encoding: BodyEncoding,
  body: Buffer,
  limit: number,
): Buffer | RequestTooLargeError | InvalidCompressedBodyError {
  // zlib refuses a cap above the largest Buffer; no body can reach that anyway.
  const options = { maxOutputLength: Math.min(limit, kMaxLength) }
  try {
    switch (encoding) {
      case 'gzip':
        return gunzipSync(body, options)
      case 'deflate':
        return inflateSync(body, options)
      case 'br':
        return brotliDecompressSync(body, {
          ...options,
          params: { [constants.BROTLI_DECODER_PARAM_LARGE_WINDOW]: 0 },
        })
    }
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
      return new RequestTooLargeError(limit)
    }
    return new InvalidCompressedBodyError()
  }
}

/** A compressed body that is not valid for its declared encoding. Answers 400. */
export class InvalidCompressedBodyError extends SecurityError {
  static override readonly code = 'ERR_HTTP_BAD_REQUEST'
  override readonly statusCode = 400
  constructor() {
    super('Invalid compressed request body')
  }
}

/** What the meter reports back to its adapter. */
export interface MeterSink {
  /** Bytes that may be handed to the body consumer. Returns false for backpressure. */
  write(chunk: Buffer): boolean
  end(): void
  fail(error: SecurityError): void
  /**
   * The meter takes wire bytes again after `push` returned false. Only the
   * inflater's input side throttles the wire this way; without this the
   * adapter would wait for its own consumer to drain, which never happens
   * when the inflater is the one that is full (a compressed body over 16 KiB
   * would stall until the body timeout).
   */
  drain(): void
}

/**
 * Counts a body as it arrives (encoded bytes and, when inflating, decoded
 * bytes) and fails the moment either passes the limit or the body timeout
 * fires. It never buffers: every accepted byte goes straight to the sink.
 */
export class BodyMeter {
  /** Bytes received off the wire (what `Content-Length` counts). */
  encodedBytes = 0
  /** Bytes handed on (after inflation). */
  decodedBytes = 0
  readonly #limit: number
  readonly #sink: MeterSink
  readonly #inflater: Transform | undefined
  #timer: NodeJS.Timeout | undefined
  #done = false

  constructor(
    limit: number,
    sink: MeterSink,
    inflater: Transform | undefined,
    timeoutMs: number | false,
  ) {
    this.#limit = limit
    this.#sink = sink
    this.#inflater = inflater
    if (inflater !== undefined) {
      inflater.on('data', (chunk: Buffer) => {
        if (this.#done) return
        this.decodedBytes += chunk.length
        if (this.decodedBytes > limit) {
          this.fail(new RequestTooLargeError(limit))
          return
        }
        if (!sink.write(chunk)) inflater.pause()
      })
      inflater.on('drain', () => {
        if (!this.#done) sink.drain()
      })
      inflater.on('end', () => this.#finish())
      inflater.on('error', () => this.fail(new InvalidCompressedBodyError()))
    }
    if (timeoutMs !== false) {
      this.#timer = setTimeout(() => this.fail(new BodyTimeoutError()), timeoutMs)
      this.#timer.unref()
    }
  }

  /** True once the body ended, failed or was disposed of: nothing more is counted. */
  get done(): boolean {
    return this.#done
  }

  /**
   * Feeds one chunk off the wire. Returns false when the wire should pause:
   * for backpressure (then `sink.drain()` or the consumer's own drain says
   * when to go on) or because the body must stop.
   */
  push(chunk: Buffer): boolean {
    if (this.#done) return false
    this.encodedBytes += chunk.length
    if (this.encodedBytes > this.#limit) {
      this.fail(new RequestTooLargeError(this.#limit))
      return false
    }
    if (this.#inflater !== undefined) return this.#inflater.write(chunk)
    this.decodedBytes += chunk.length
    return this.#sink.write(chunk)
  }

  /**
   * Counts identity bytes the consumer already holds (they arrived before the
   * meter existed), failing when they pass the limit. Returns false once the
   * body must stop.
   */
  count(bytes: number): boolean {
    if (this.#done) return false
    this.encodedBytes += bytes
    this.decodedBytes += bytes
    if (this.encodedBytes > this.#limit) {
      this.fail(new RequestTooLargeError(this.#limit))
      return false
    }
    return true
  }

  /** The wire body ended. */
  end(): void {
    if (this.#done) return
    if (this.#inflater !== undefined) this.#inflater.end()
    else this.#finish()
  }

  /** Resumes a paused inflater after the consumer drained. */
  resume(): void {
    this.#inflater?.resume()
  }

  fail(error: SecurityError): void {
    if (this.#done) return
    this.#stop()
    this.#inflater?.destroy()
    this.#sink.fail(error)
  }

  /** Stops the timer without reporting (the request ended some other way). */
  dispose(): void {
    if (this.#done) return
    this.#stop()
    this.#inflater?.destroy()
  }

  #finish(): void {
    if (this.#done) return
    this.#stop()
    this.#sink.end()
  }

  #stop(): void {
    this.#done = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
  }
}

/**
 * The encoding the guard must inflate for a request: `undefined` for none
 * (identity, or `inflate` off), or the 415 to answer.
 */
export function encodingFor(
  policy: BodyLimitPolicy,
  contentEncoding: string | string[] | undefined,
): BodyEncoding | undefined | UnsupportedEncodingError {
  if (!policy.inflate || contentEncoding === undefined) return undefined
  const value = Array.isArray(contentEncoding) ? contentEncoding.join(',') : contentEncoding
  const encoding = value.trim().toLowerCase()
  if (encoding === '' || encoding === 'identity') return undefined
  // Stacked encodings (`gzip, br`) are legal but unused by real clients; refusing
  // them keeps one inflater, one budget.
  if (encoding.includes(',')) return new UnsupportedEncodingError()
  switch (encoding) {
    case 'gzip':
    case 'x-gzip':
      return 'gzip'
    case 'deflate':
      return 'deflate'
    case 'br':
      return 'br'
    default:
      return new UnsupportedEncodingError()
  }
}

/** Builds the inflater for a request, `undefined` for identity, or the 415 to answer. */
export function inflaterFor(
  policy: BodyLimitPolicy,
  contentEncoding: string | string[] | undefined,
): Transform | undefined | UnsupportedEncodingError {
  const encoding = encodingFor(policy, contentEncoding)
  if (encoding === undefined || encoding instanceof Error) return encoding
  return createInflater(encoding)
}
