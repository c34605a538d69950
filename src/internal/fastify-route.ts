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
