/**
 * What a mercurius hook can learn about the request it runs for. mercurius
 * passes hooks the schema, the document and its context, never the
 * `operationName`: that stays in the HTTP request, which the context reaches
 * through `reply` (HTTP) or `request` (WebSocket).
 */
import type { FastifyReply, FastifyRequest } from 'fastify'

/** The context mercurius passes to hooks: `reply` over HTTP, `request` over WebSocket. */
export interface HookContext {
  readonly reply?: FastifyReply
  readonly request?: FastifyRequest
  /** The index of this operation in a batch. */
  readonly operationId?: number
}

/**
 * A GraphQL-over-HTTP parameter of the operation at hand, as mercurius
 * reads it: from the body, the body's item in a batch, or else the query
 * string (GET, where `variables` is still JSON text). `undefined` when the
 * request gives none, or the hook runs without an HTTP request.
 */
export function requestParameter(
  context: HookContext,
  name: 'operationName' | 'variables',
): unknown {
  const request = context.reply?.request
  let body = request?.body as unknown
  if (Array.isArray(body)) body = body[context.operationId ?? 0]
  const value = (body as Record<string, unknown> | null | undefined)?.[name]
  if (value !== undefined && value !== null) return value
  return (request?.query as Record<string, unknown> | undefined)?.[name]
}

/**
 * The `operationName` the request asked for: from the body, the body's item
 * in a batch, or the query string (GET). `undefined` when it names none.
 */
export function requestedOperationName(context: HookContext): string | undefined {
  const name = requestParameter(context, 'operationName')
  return typeof name === 'string' ? name : undefined
}

export { isMercuriusRoute } from '../internal/fastify-route.js'
