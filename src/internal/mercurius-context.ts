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

/** Request prototypes by whether mercurius's routes declared them (one per encapsulation context). */
const mercuriusPrototypes = new WeakMap<object, boolean>()

/**
 * Whether `request` is for a route mercurius declared (its GraphQL route,
 * GET or POST, WebSocket included, or GraphiQL). mercurius decorates the
 * requests of its routes' context with `Symbol('mercurius.requestContext')`,
 * which Fastify's per-context request constructor sets on every request it
 * makes: the answer is found once per context (per prototype). An app's own
 * routes are never mercurius's, even where `app.graphql` is visible
 * (mercurius is not encapsulated): their `{ errors: [...] }` answers are not
 * GraphQL's.
 */
export function isMercuriusRoute(request: FastifyRequest): boolean {
  const proto = Object.getPrototypeOf(request) as object | null
  let known = proto === null ? undefined : mercuriusPrototypes.get(proto)
  if (known === undefined) {
    known = Object.getOwnPropertySymbols(request).some(
      (key) => key.description === 'mercurius.requestContext',
    )
    if (proto !== null) mercuriusPrototypes.set(proto, known)
  }
  return known
}

/** Whether `value` is mercurius's `app.graphql` (the function with its hooks and schema API). */
export function isMercurius(value: unknown): value is object {
  const g = value as { addHook?: unknown; replaceSchema?: unknown } | null | undefined
  return (
    typeof value === 'function' &&
    typeof g?.addHook === 'function' &&
    typeof g.replaceSchema === 'function'
  )
}
