import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { humanReadableSize } from '../format.js'
import { isMercuriusRoute } from '../mercurius-context.js'
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

/** What `setErrorHandler` takes, as Fastify binds it to its instance. */
type ErrorHandler = (error: unknown, request: FastifyRequest, reply: FastifyReply) => unknown

/**
 * Fastify's own default handler is `defaultErrorHandler`, never bound; every
 * handler given to `setErrorHandler` is bound to its instance (`bound …`), so
 * the name tells the two apart without reaching into Fastify's internals.
 */
const FASTIFY_DEFAULT_HANDLER = 'defaultErrorHandler'

/**
 * The error handler the application set with `setErrorHandler` for this
 * request's route (on the route's instance or an ancestor), or `undefined`
 * when it set none. mercurius sets a handler in the context of its own
 * routes to write GraphQL errors: that one is the library's, not the
 * application's, so for its routes the instance mercurius was registered on
 * is asked instead (an encapsulated context's prototype is its parent).
 */
export function applicationErrorHandler(request: FastifyRequest): ErrorHandler | undefined {
  let server: object = request.server
  if (isMercuriusRoute(request)) server = Object.getPrototypeOf(server) as object
  const handler = (server as Partial<FastifyInstance>).errorHandler as ErrorHandler | undefined
  return typeof handler === 'function' && handler.name !== FASTIFY_DEFAULT_HANDLER
    ? handler
    : undefined
}

const SETTLED: Promise<void> = Promise.resolve()

/**
 * Delivers a refusal: through the application's own error handler when it
 * set one, with our error object and the answer's status and headers
 * (`Retry-After`, `RateLimit`, `WWW-Authenticate`, `Connection: close`)
 * already on the reply; else as `answer`, our one reply shape.
 *
 * The promise settles once the answer is out (never rejects): an async hook
 * returns it, so Fastify does not run the next hook, or the route handler,
 * while an async error handler is still working. A hook with `done` simply
 * never calls it.
 */
export function deliverRefusal(
  reply: FastifyReply,
  error: unknown,
  answer: HttpAnswer,
): Promise<void> {
  const request = reply.request
  const handler = applicationErrorHandler(request)
  if (handler === undefined) {
    sendFastifyAnswer(reply, answer)
    return SETTLED
  }
  const { 'content-type': _contentType, ...headers } = answer.headers
  reply.code(answer.statusCode).headers(headers)
  return new Promise<void>((resolve) => {
    const finished = (): void => {
      reply.raw.removeListener('finish', finished)
      reply.raw.removeListener('close', finished)
      resolve()
    }
    reply.raw.once('finish', finished)
    reply.raw.once('close', finished)
    // As Fastify does with an error handler's outcome: a value is sent, a
    // throw goes to the next handler, which for us is our own answer.
    const fallBack = (thrown: unknown): void => {
      if (reply.sent) return
      const fallback = toHttpAnswer(thrown, answerOptionsFor(request))
      if (fallback.statusCode >= 500) request.log.error({ err: thrown }, 'error handler failed')
      sendFastifyAnswer(reply, fallback)
    }
    const sendResult = (payload: unknown): void => {
      if (payload !== undefined && !reply.sent) reply.send(payload)
    }
    try {
      const result = handler(error, request, reply)
      if (result instanceof Promise) result.then(sendResult, fallBack)
      else sendResult(result)
    } catch (thrown) {
      fallBack(thrown)
    }
    if (reply.sent) finished()
  })
}

/**
 * Refuses a request with `error`: through the application's error handler
 * if it set one, else as our answer in the instance's `errorDetail` (a guard
 * that refuses before the handler must mask exactly as the error handler
 * would). See {@link deliverRefusal} for the promise.
 */
export function sendError(reply: FastifyReply, error: unknown): Promise<void> {
  return deliverRefusal(reply, error, toHttpAnswer(error, answerOptionsFor(reply.request)))
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
  answerUnhandledErrors(app)
}

const kFailure = Symbol('fraiseql-security.failure')
type WithFailure = FastifyRequest & { [kFailure]?: unknown }

/** Fastify's default error body starts so: `{"statusCode":500,"error":…,"message":…}`. */
const DEFAULT_ERROR_BODY = '{"statusCode":'

/**
 * Gives errors our answer shape without owning `setErrorHandler` (which is
 * the application's: Fastify warns, FSTWRN004, or throws, with
 * `allowErrorHandlerOverride: false`, when a second handler is set). Where
 * the application set no handler, Fastify's default one answers: `onError`
 * sees the error, `onSend` replaces the default body with ours. Where it set
 * one, or a route has its own (mercurius's GraphQL shape), its body stands.
 */
function answerUnhandledErrors(app: FastifyInstance): void {
  app.addHook('onError', (request, _reply, error, done) => {
    ;(request as WithFailure)[kFailure] = error
    done()
  })
  app.addHook('onSend', (request, reply, payload, done) => {
    const failure = (request as WithFailure)[kFailure]
    if (failure === undefined) return done(null, payload)
    const options = answerOptionsFor(request)
    const errorDetail = options.errorDetail ?? 'safe'
    if (applicationErrorHandler(request) !== undefined) {
      // The application's handler ran (its logging, its 4xx shapes stand),
      // but a 5xx body it wrote may carry the error's internal text, which
      // the profile's errorDetail keeps from clients whoever answers.
      if (reply.statusCode < 500 || errorDetail === 'full' || isMercuriusRoute(request)) {
        return done(null, payload)
      }
      const masked = toHttpAnswer(new Error('internal'), {
        errorDetail,
        requestId: String(request.id),
      })
      reply.code(masked.statusCode).headers(masked.headers)
      return done(null, masked.body)
    }
    if (typeof payload !== 'string' || !payload.startsWith(DEFAULT_ERROR_BODY)) {
      return done(null, payload)
    }
    const translated =
      errorDetail !== 'minimal'
        ? translateFastifyError(failure as FastifyError, request)
        : undefined
    // Fastify's default handler already logged the error (5xx at `error`, with its cause).
    const answer =
      translated ?? toHttpAnswer(failure, { errorDetail, requestId: String(request.id) })
    reply.code(answer.statusCode).headers(answer.headers)
    done(null, answer.body)
  })
}

/**
 * Our answer shape for errors no application error handler takes. It never
 * calls `setErrorHandler`: an application's own handler, set before or
 * after, receives every refusal (with its `code` and `statusCode`) and every
 * error. Every guard registers it if it is not there yet.
 */
export const errorReply = fp(errorReplyPlugin, { name: ERROR_REPLY_PLUGIN, fastify: '5.x' })

/** Registers {@link errorReply} once per instance tree. */
export async function ensureErrorReply(app: FastifyInstance): Promise<void> {
  if (!app.hasPlugin(ERROR_REPLY_PLUGIN)) await app.register(errorReply)
}
