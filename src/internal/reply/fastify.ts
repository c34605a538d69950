import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { humanReadableSize } from '../format.js'
import {
  type AnswerOptions,
  bodyTooLargeAnswer,
  type ErrorDetail,
  type HttpAnswer,
  jsonAnswer,
  toHttpAnswer,
} from './index.js'

/** Sends an answer through Fastify, keeping headers a guard set earlier (rate-limit fields). */
export function sendFastifyAnswer(reply: FastifyReply, answer: HttpAnswer): FastifyReply {
  // A Buffer goes out as is; a string would get `; charset=utf-8` appended.
  return reply.code(answer.statusCode).headers(answer.headers).send(Buffer.from(answer.body))
}

/**
 * Fastify's own rejections, rewritten into ours so a body over Fastify's
 * `bodyLimit` gets the same 413 as one over our guard's.
 */
function translateFastifyError(
  error: FastifyError,
  request: FastifyRequest,
): HttpAnswer | undefined {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': {
      const limit = request.routeOptions.bodyLimit
      return bodyTooLargeAnswer(limit, humanReadableSize(limit))
    }
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return jsonAnswer(
        400,
        { detail: 'Invalid Content-Length', code: 'ERR_HTTP_INVALID_CONTENT_LENGTH' },
        { connection: 'close' },
      )
    default:
      return undefined
  }
}

export interface ErrorReplyOptions {
  /**
   * `safe`: 4xx messages kept, 5xx masked. `minimal`: every message generic,
   * with the request id so an operator can find the log line.
   * @default 'safe'
   */
  errorDetail?: ErrorDetail
}

export const ERROR_REPLY_PLUGIN = 'fraiseql-security/error-reply'

/** Where the instance keeps its `errorDetail`, so guards that answer directly honour it. */
const kErrorDetail = Symbol.for('fraiseql-security.errorDetail')

interface DetailHolder {
  detail: ErrorDetail
}

function holderOf(app: FastifyInstance): DetailHolder | undefined {
  return (app as unknown as Record<symbol, DetailHolder | undefined>)[kErrorDetail]
}

/** The answer options of a request: the instance's `errorDetail` and the request id. */
export function answerOptionsFor(request: FastifyRequest): AnswerOptions {
  const detail = holderOf(request.server)?.detail
  if (detail === 'minimal') return { errorDetail: 'minimal', requestId: String(request.id) }
  return detail === 'full' ? { errorDetail: 'full' } : {}
}

/**
 * Answers `error` directly from a hook, in the instance's `errorDetail`:
 * a guard that refuses before the handler must mask exactly as the error
 * handler would.
 */
export function sendError(reply: FastifyReply, error: unknown): FastifyReply {
  return sendFastifyAnswer(reply, toHttpAnswer(error, answerOptionsFor(reply.request)))
}

/**
 * Sets how much error text every answer of this instance carries (the
 * profiles' `errorDetail`). Registers {@link errorReply} first if needed.
 */
export async function setErrorDetail(app: FastifyInstance, detail: ErrorDetail): Promise<void> {
  await ensureErrorReply(app)
  holderOf(app)!.detail = detail
}

async function errorReplyPlugin(app: FastifyInstance, opts: ErrorReplyOptions): Promise<void> {
  const holder: DetailHolder = { detail: opts.errorDetail ?? 'safe' }
  app.decorate(kErrorDetail, holder)
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const errorDetail = holder.detail
    const translated = errorDetail !== 'minimal' ? translateFastifyError(error, request) : undefined
    const options: AnswerOptions = { errorDetail, requestId: String(request.id) }
    const answer = translated ?? toHttpAnswer(error, options)
    if (answer.statusCode >= 500) request.log.error({ err: error }, 'request failed')
    return sendFastifyAnswer(reply, answer)
  })
}

const kFailure = Symbol('fraiseql-security.failure')
type WithFailure = FastifyRequest & { [kFailure]?: unknown }

/** Fastify's default error body starts so: `{"statusCode":500,"error":…,"message":…}`. */
const DEFAULT_ERROR_BODY = '{"statusCode":'

/**
 * Masks errors of routes declared before {@link errorReply}: Fastify binds a
 * route's error handler when the route is declared, so those still answer
 * with Fastify's default handler, message and all. `onError` sees every
 * error; `onSend` replaces a default-handler body with our answer. A route
 * with its own error handler (mercurius's GraphQL shape) is left alone: only
 * the default handler's body is rewritten.
 */
export function maskUnhandledErrors(app: FastifyInstance): void {
  app.addHook('onError', (request, _reply, error, done) => {
    ;(request as WithFailure)[kFailure] = error
    done()
  })
  app.addHook('onSend', (request, reply, payload, done) => {
    const failure = (request as WithFailure)[kFailure]
    if (
      failure === undefined ||
      typeof payload !== 'string' ||
      !payload.startsWith(DEFAULT_ERROR_BODY)
    ) {
      return done(null, payload)
    }
    const answer = toHttpAnswer(failure, {
      ...answerOptionsFor(request),
      requestId: String(request.id),
    })
    if (answer.statusCode >= 500) request.log.error({ err: failure }, 'request failed')
    reply.code(answer.statusCode).headers(answer.headers)
    done(null, answer.body)
  })
}

/**
 * The single owner of Fastify's `setErrorHandler` for this package. Every
 * guard registers it if it is not there yet, so two guards never install
 * competing handlers.
 */
export const errorReply = fp(errorReplyPlugin, { name: ERROR_REPLY_PLUGIN, fastify: '5.x' })

/** Registers {@link errorReply} once per instance tree. */
export async function ensureErrorReply(app: FastifyInstance): Promise<void> {
  if (!app.hasPlugin(ERROR_REPLY_PLUGIN)) await app.register(errorReply)
}
