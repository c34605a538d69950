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

async function errorReplyPlugin(app: FastifyInstance, opts: ErrorReplyOptions): Promise<void> {
  const errorDetail: ErrorDetail = opts.errorDetail ?? 'safe'
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const translated = errorDetail === 'safe' ? translateFastifyError(error, request) : undefined
    const options: AnswerOptions = { errorDetail, requestId: String(request.id) }
    const answer = translated ?? toHttpAnswer(error, options)
    if (answer.statusCode >= 500) request.log.error({ err: error }, 'request failed')
    return sendFastifyAnswer(reply, answer)
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
