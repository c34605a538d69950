import type { FastifyRequest } from 'fastify'

type RouteConfig = FastifyRequest['routeOptions']['config']

/**
 * Fastify's per-route context, found once by the description of its private
 * symbol. `request.routeOptions` is the public way, but it builds a 14-field
 * object on every access, which a guard running on every request cannot
 * afford; when the symbol is not there (another Fastify major), the public
 * getter is used.
 */
let kRouteContext: symbol | null | undefined

export function routeConfigOf(request: FastifyRequest): RouteConfig {
  if (kRouteContext === undefined) {
    kRouteContext =
      Object.getOwnPropertySymbols(request).find((s) => s.description === 'fastify.context') ?? null
  }
  if (kRouteContext !== null) {
    const context = (request as unknown as Record<symbol, { config?: RouteConfig } | undefined>)[
      kRouteContext
    ]
    if (context?.config !== undefined) return context.config
  }
  return request.routeOptions.config
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
