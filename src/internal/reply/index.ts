/**
 * The one place an error becomes an HTTP answer. Every guard, the Fastify
 * error handler and the Express-style middleware go through `toHttpAnswer`,
 * so every rejection has one shape and 5xx details never leak.
 */
import { SecurityError } from '../../errors.js'

/** A fully rendered HTTP answer: status, headers and a serialized body. */
export interface HttpAnswer {
  readonly statusCode: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/**
 * Errors that know their own wire shape implement this symbol (the 413 keeps
 * the documented 413 body, the 429 is `application/problem+json`). Everything else
 * gets `{ detail, code }`.
 */
export const kHttpAnswer: unique symbol = Symbol.for('fraiseql-security.httpAnswer')

export interface HttpAnswerable {
  [kHttpAnswer](): HttpAnswer
}

/** How much of an error's text reaches the client. */
export type ErrorDetail = 'full' | 'safe' | 'minimal'

export interface AnswerOptions {
  /**
   * `safe` keeps 4xx messages (they describe the client's mistake) and masks
   * 5xx; `minimal` replaces every message with a generic one; `full` (for
   * development only) keeps 5xx messages too.
   * @default 'safe'
   */
  readonly errorDetail?: ErrorDetail
  /** Echoed in `minimal` answers so an operator can find the log line. */
  readonly requestId?: string
}

/** RFC 8259 §11: JSON is UTF-8 and `application/json` takes no charset parameter. */
const JSON_TYPE = 'application/json'

/** `{ ...body }` as a JSON answer with the given status. */
export function jsonAnswer(
  statusCode: number,
  body: object,
  headers: Record<string, string> = {},
  contentType = JSON_TYPE,
): HttpAnswer {
  return {
    statusCode,
    headers: { ...headers, 'content-type': contentType },
    body: JSON.stringify(body),
  }
}

function isAnswerable(err: unknown): err is HttpAnswerable {
  return typeof (err as Partial<HttpAnswerable> | null)?.[kHttpAnswer] === 'function'
}

function statusOf(err: unknown): number {
  const s = (err as { statusCode?: unknown } | null)?.statusCode
  return typeof s === 'number' && Number.isInteger(s) && s >= 400 && s <= 599 ? s : 500
}

/**
 * Turns any thrown value into the answer a client sees.
 *
 * - A {@link SecurityError} with its own wire shape renders itself.
 * - Another 4xx error keeps its message and code (`{ detail, code }`).
 * - Anything else is a 500 whose body says nothing about the cause.
 */
export function toHttpAnswer(err: unknown, options: AnswerOptions = {}): HttpAnswer {
  // Our own errors chose their status on purpose (a 503 from the rate limiter
  // is an answer, not a crash) and their messages never carry secrets.
  const ours = err instanceof SecurityError && err.statusCode !== undefined
  const statusCode = ours ? (err as SecurityError).statusCode! : statusOf(err)
  const masked = statusCode >= 500 && !ours
  if (options.errorDetail === 'minimal') {
    const code = masked ? 'ERR_INTERNAL' : codeOf(err, statusCode)
    const body: Record<string, unknown> = { detail: 'Request failed', code }
    if (options.requestId !== undefined) body.requestId = options.requestId
    const extra = isAnswerable(err) ? pickRetryHeaders(err[kHttpAnswer]().headers) : {}
    return jsonAnswer(masked ? 500 : statusCode, body, extra)
  }
  if (masked) {
    const detail =
      options.errorDetail === 'full' && err instanceof Error && err.message !== ''
        ? err.message
        : 'Internal Server Error'
    const body: Record<string, unknown> = { detail, code: 'ERR_INTERNAL' }
    if (options.requestId !== undefined) body.requestId = options.requestId
    return jsonAnswer(500, body)
  }
  if (isAnswerable(err)) return err[kHttpAnswer]()
  return jsonAnswer(statusCode, { detail: messageOf(err), code: codeOf(err, statusCode) })
}

/** Headers a client needs even from a masked answer (when to retry, whether to close). */
function pickRetryHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of ['retry-after', 'connection', 'www-authenticate', 'upgrade']) {
    const v = headers[name]
    if (v !== undefined) out[name] = v
  }
  return out
}

function messageOf(err: unknown): string {
  return err instanceof Error && err.message !== '' ? err.message : 'Bad Request'
}

function codeOf(err: unknown, statusCode: number): string {
  if (err instanceof SecurityError) return err.code
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && /^[A-Z0-9_]{1,64}$/.test(code)
    ? code
    : `ERR_HTTP_${statusCode}`
}

/**
 * The 413 body of the HTTP reference (docs/http.md), kept exactly:
 * `{"detail": "Request body too large", "max_size": <bytes>, "max_size_human": "<human>"}`.
 * The connection is closed: the client may still be sending the body.
 */
export function bodyTooLargeAnswer(maxSize: number, human: string): HttpAnswer {
  return jsonAnswer(
    413,
    { detail: 'Request body too large', max_size: maxSize, max_size_human: human },
    { connection: 'close' },
  )
}
