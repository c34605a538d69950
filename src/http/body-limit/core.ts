/**
 * The framework-free core of the body-size limit: options, exemptions, the
 * declared-length fast path, and the meter that counts a streamed (and
 * decoded) body and stops it the moment it passes the limit.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { Transform } from 'node:stream'
import { z } from 'zod'
import type { SecurityError } from '../../errors.js'
import { parseOptions } from '../../internal/options.js'
import {
  compilePathMatcher,
  type PathMatcher,
  PathPatternSchema,
} from '../../internal/path-matcher.js'
import { type AnswerOptions, type HttpAnswer, toHttpAnswer } from '../../internal/reply/index.js'
import {
  BodyTimeoutError,
  InvalidCompressedBodyError,
  RequestTooLargeError,
  UnsupportedEncodingError,
} from '../errors.js'
import { type BodyEncoding, createDecoder, decodingOrder } from './decoder.js'

/** 1 TiB: any larger limit is a typo, and larger numbers lose integer precision in headers. */
const MAX_LIMIT = 2 ** 40

export const BodySizeConfigSchema = z
  .object({
    /**
     * Largest accepted body, in bytes: on the wire and, for a compressed
     * body, after each decoded layer.
     * @default 1048576 (1 MiB)
     */
    maxSize: z.number().int().min(1).max(MAX_LIMIT).default(1_048_576),
    /**
     * Paths the guard ignores: exact (`/upload`) or prefix (`/files/*`).
     * @default []
     */
    exemptPaths: z.array(PathPatternSchema).default([]),
    /**
     * Methods whose requests skip the guard when they carry no body (no
     * `Content-Length` above 0, no `Transfer-Encoding`): they cost nothing to
     * let through. A request that carries a body is limited whatever its
     * method, since parsers read bodies on any method (`express.json()` on a
     * GET, Fastify on an OPTIONS); exempt a path or a route to take a body
     * out of the guard.
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
     * Decode `gzip` (`x-gzip`), `deflate` and `br` bodies here, stacked
     * codings included (up to four, e.g. `gzip, br`), with `maxSize` applied
     * to every decoded layer: a 10 KB body that inflates to 1 GB is a 413,
     * stopped while inflating. Whatever reads the body next gets it decoded,
     * without `Content-Encoding` (so `express.json()` cannot inflate it past
     * the limit). Any other coding is a 415. `false` refuses every coded body
     * with a 415 (see `passEncoded`).
     * @default true
     */
    inflate: z.boolean().default(true),
    /**
     * With `inflate: false`, hand a coded body on as it arrived, counted by
     * its size on the wire only. Unsafe when anything downstream decodes it
     * (`express.json()` and `express.text()` do by default): a small body
     * can then inflate far past `maxSize`. For proxies and uploads stored
     * compressed.
     * @default false
     */
    passEncoded: z.boolean().default(false),
  })
  .strict()
  .superRefine((c, ctx) => {
    // Never silently ignored: `passEncoded` alone would otherwise do nothing.
    if (c.passEncoded && c.inflate) {
      ctx.addIssue({
        code: 'custom',
        path: ['passEncoded'],
        message: 'applies only with `inflate: false`',
      })
    }
  })

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
  readonly passEncoded: boolean
  readonly isExemptPath: PathMatcher
  readonly exemptMethods: ReadonlySet<string>
}

export function resolveBodyLimit(config: BodySizeConfig | undefined): BodyLimitPolicy {
  const c = parseOptions('bodyLimit', BodySizeConfigSchema, config)
  return Object.freeze({
    maxSize: c.maxSize,
    bodyTimeoutMs: c.bodyTimeoutMs,
    inflate: c.inflate,
    passEncoded: c.passEncoded,
    isExemptPath: compilePathMatcher(c.exemptPaths),
    exemptMethods: new Set(c.exemptMethods),
  })
}

/** What the guard needs of a request to know whether it carries a body. */
export interface BodyFraming {
  readonly headers: IncomingHttpHeaders
  /** Set on HTTP/2 requests (`Http2ServerRequest`): its stream knows whether DATA follows. */
  readonly stream?: { readonly endAfterHeaders?: boolean }
}

/**
 * Whether a request carries a body (RFC 9112 §6.3): `Transfer-Encoding`, or
 * a `Content-Length` that is not `0` (an invalid one counts, so that it gets
 * its 400). On HTTP/2, where neither header is needed, whether the HEADERS
 * frame ended the stream.
 */
export function carriesBody(req: BodyFraming): boolean {
  const ended = req.stream?.endAfterHeaders
  if (typeof ended === 'boolean') return !ended
  if (req.headers['transfer-encoding'] !== undefined) return true
  const length = req.headers['content-length']
  return length !== undefined && length !== '0'
}

/** Whether the guard lets this request through untouched because of its method. */
export function isExemptByMethod(
  policy: BodyLimitPolicy,
  method: string | undefined,
  req: BodyFraming,
): boolean {
  return policy.exemptMethods.has(method ?? 'GET') && !carriesBody(req)
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
      inflater.on('error', (err: Error) =>
        // A chained decoder stops itself when an inner layer passes the limit.
        this.fail(err instanceof RequestTooLargeError ? err : new InvalidCompressedBodyError()),
      )
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
    // An empty body decodes to nothing (zlib would call it truncated).
    if (this.#inflater !== undefined && this.encodedBytes > 0) this.#inflater.end()
    else {
      this.#inflater?.destroy()
      this.#finish()
    }
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
 * How the guard treats a request's `Content-Encoding`: the codings to undo,
 * in order (`[]` for an identity body, or a coded one handed on as is with
 * `passEncoded`), or the 415 to answer for a coding it cannot count.
 */
export function decodingFor(
  policy: BodyLimitPolicy,
  contentEncoding: string | string[] | undefined,
): readonly BodyEncoding[] | UnsupportedEncodingError {
  const order = decodingOrder(contentEncoding)
  if (order === undefined) {
    return policy.inflate || !policy.passEncoded ? new UnsupportedEncodingError() : []
  }
  if (order.length === 0 || policy.inflate) return order
  return policy.passEncoded ? [] : new UnsupportedEncodingError()
}

/** The decoder for a request, `undefined` for none, or the 415 to answer. */
export function decoderFor(
  policy: BodyLimitPolicy,
  contentEncoding: string | string[] | undefined,
  limit: number,
): Transform | undefined | UnsupportedEncodingError {
  const order = decodingFor(policy, contentEncoding)
  if (order instanceof Error) return order
  return order.length === 0 ? undefined : createDecoder(order, limit)
}
