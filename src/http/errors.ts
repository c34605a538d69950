import { SecurityError, type SecurityErrorOptions } from '../errors.js'
import { bytesWithHuman, humanReadableSize } from '../internal/format.js'
import {
  bodyTooLargeAnswer,
  type HttpAnswer,
  type HttpAnswerable,
  jsonAnswer,
  kHttpAnswer,
} from '../internal/reply/index.js'

/**
 * The body (declared, streamed or inflated) passed the limit. Answers 413
 * with the documented body, `{detail, max_size, max_size_human}`; the message,
 * for logs, names the limit in bytes and human form and, when it is known
 * (a declared `Content-Length`), the size of the body.
 *
 * @example
 * ```ts
 * import { RequestTooLargeError } from 'fraiseql-security/http'
 * new RequestTooLargeError(1_048_576, 5_242_880).message
 * // 'Request body of 5242880 bytes (5.0 MB) exceeds the limit of 1048576 bytes (1.0 MB)'
 * ```
 */
export class RequestTooLargeError extends SecurityError implements HttpAnswerable {
  static override readonly code = 'ERR_HTTP_BODY_TOO_LARGE'
  override readonly statusCode = 413
  /** The limit that was passed, in bytes. */
  readonly maxSize: number
  /**
   * The body's size in bytes when it is known before reading it (a declared
   * `Content-Length`); `undefined` for a body stopped while it streamed or
   * inflated, whose full size nobody read.
   */
  readonly actualSize: number | undefined

  constructor(maxSize: number, options?: SecurityErrorOptions)
  constructor(maxSize: number, actualSize: number | undefined, options?: SecurityErrorOptions)
  constructor(
    maxSize: number,
    actualOrOptions?: number | SecurityErrorOptions,
    maybeOptions?: SecurityErrorOptions,
  ) {
    const actualSize = typeof actualOrOptions === 'number' ? actualOrOptions : undefined
    const options = typeof actualOrOptions === 'object' ? actualOrOptions : maybeOptions
    const limit = `the limit of ${bytesWithHuman(maxSize)}`
    super(
      actualSize === undefined
        ? `Request body exceeds ${limit}`
        : `Request body of ${bytesWithHuman(actualSize)} exceeds ${limit}`,
      options,
    )
    this.maxSize = maxSize
    this.actualSize = actualSize
  }

  [kHttpAnswer](): HttpAnswer {
    return bodyTooLargeAnswer(this.maxSize, humanReadableSize(this.maxSize))
  }
}

/**
 * `{ detail, code }` with `Connection: close`: the client may still be sending
 * a body the server will not read.
 */
function closingAnswer(err: SecurityError & { statusCode: number }): HttpAnswer {
  return jsonAnswer(
    err.statusCode,
    { detail: err.message, code: err.code },
    { connection: 'close' },
  )
}

/** The body did not arrive in time (a declared length never fulfilled). Answers 408. */
export class BodyTimeoutError extends SecurityError implements HttpAnswerable {
  static override readonly code = 'ERR_HTTP_BODY_TIMEOUT'
  override readonly statusCode = 408

  constructor(options?: SecurityErrorOptions) {
    super('Request body timed out', options)
  }

  [kHttpAnswer](): HttpAnswer {
    return closingAnswer(this)
  }
}

/** `Content-Length` is not a single non-negative decimal integer. Answers 400. */
export class InvalidContentLengthError extends SecurityError implements HttpAnswerable {
  static override readonly code = 'ERR_HTTP_INVALID_CONTENT_LENGTH'
  override readonly statusCode = 400

  constructor(options?: SecurityErrorOptions) {
    super('Invalid Content-Length', options)
  }

  [kHttpAnswer](): HttpAnswer {
    return closingAnswer(this)
  }
}

/**
 * `Content-Encoding` the guard cannot decode and so cannot count: a coding
 * other than `gzip`, `x-gzip`, `deflate`, `br` and `identity`, more than four
 * codings, or any coding with `inflate: false` (unless `passEncoded`). Answers 415.
 */
export class UnsupportedEncodingError extends SecurityError {
  static override readonly code = 'ERR_HTTP_UNSUPPORTED_ENCODING'
  override readonly statusCode = 415

  constructor(options?: SecurityErrorOptions) {
    super('Unsupported Content-Encoding', options)
  }
}

/** A compressed body that is not valid for its declared encoding. Answers 400. */
export class InvalidCompressedBodyError extends SecurityError {
  static override readonly code = 'ERR_HTTP_BAD_REQUEST'
  override readonly statusCode = 400
  constructor(options?: SecurityErrorOptions) {
    super('Invalid compressed request body', options)
  }
}

/** The state of one rate-limit policy after a request was counted. */
export interface PolicyState {
  /** Policy name, as in `RateLimit-Policy`. */
  readonly name: string
  /** Quota units per window. */
  readonly limit: number
  /** Window length in milliseconds. */
  readonly windowMs: number
  /** Whole units left after this request. */
  readonly remaining: number
  /** Milliseconds until the current window closes (or until retry, when denied). */
  readonly resetMs: number
  /** Milliseconds until a request of the same weight would be allowed; 0 when allowed. */
  readonly retryAfterMs: number
  /** Whether this policy alone would allow the request. */
  readonly allowed: boolean
  /**
   * Index of the fixed window (`floor(t / windowMs)` on the store's clock)
   * the request was counted in; set by stores that implement `refund`, which
   * takes it back to send a refund to the window the charge went into.
   */
  readonly window?: number
}

/**
 * What the limiter decided, exposed on `request.rateLimit`. The top-level
 * fields describe the strictest policy; `policies` has every one.
 */
export interface RateLimitInfo {
  readonly limit: number
  readonly remaining: number
  readonly resetMs: number
  readonly retryAfterMs: number
  readonly allowed: boolean
  readonly policies: readonly PolicyState[]
}

/** Problem type from draft-ietf-httpapi-ratelimit-headers, "Quota Exceeded". */
export const QUOTA_EXCEEDED_TYPE = 'https://iana.org/assignments/http-problem-types#quota-exceeded'

/** One or more policies are exhausted. Answers 429 `application/problem+json`. */
export class RateLimitExceededError extends SecurityError implements HttpAnswerable {
  static override readonly code = 'ERR_HTTP_RATE_LIMITED'
  override readonly statusCode = 429
  readonly info: RateLimitInfo
  /** Headers to send with the 429 (`RateLimit`, `RateLimit-Policy`, `Retry-After`...). */
  readonly headers: Readonly<Record<string, string>>

  /** The JSON body an `errorResponseBuilder` made, sent instead of the problem document. */
  readonly body: object | undefined

  constructor(info: RateLimitInfo, headers: Readonly<Record<string, string>> = {}, body?: object) {
    super('Rate limit exceeded')
    this.info = info
    this.headers = headers
    this.body = body
  }

  /** Names of the policies that refused the request. */
  get violatedPolicies(): string[] {
    return this.info.policies.filter((p) => !p.allowed).map((p) => p.name)
  }

  [kHttpAnswer](): HttpAnswer {
    const retryAfter = Math.ceil(this.info.retryAfterMs / 1000)
    const headers = { ...this.headers, 'retry-after': String(retryAfter) }
    if (this.body !== undefined) return jsonAnswer(429, this.body, headers)
    return jsonAnswer(
      429,
      {
        type: QUOTA_EXCEEDED_TYPE,
        title: 'Request cannot be satisfied as assigned quota has been exceeded',
        status: 429,
        detail: 'Rate limit exceeded',
        code: this.code,
        'violated-policies': this.violatedPolicies,
        limit: this.info.limit,
        retry_after: retryAfter,
      },
      headers,
      'application/problem+json',
    )
  }
}

/** The shared store failed and `onStoreError` is `'deny'`. Answers 503. */
export class RateLimitUnavailableError extends SecurityError {
  static override readonly code = 'ERR_HTTP_RATE_LIMIT_UNAVAILABLE'
  override readonly statusCode = 503

  constructor(options?: SecurityErrorOptions) {
    super('Rate limiting is temporarily unavailable', options)
  }
}

/** A rate-limit store call failed or passed `storeTimeoutMs`. Logged, never sent. */
export class RateLimitStoreError extends SecurityError {
  static override readonly code = 'ERR_RATE_LIMIT_STORE'

  constructor(message: string, options?: SecurityErrorOptions) {
    super(message, options)
  }
}
