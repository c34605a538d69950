import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { routeConfigOf } from '../../internal/fastify-route.js'
import { ensureErrorReply, sendError } from '../../internal/reply/fastify.js'
import type { RateLimitInfo } from '../errors.js'
import { ANSWERED, addRequestGuard, guardHook, type RequestGuard } from '../guard-hook.js'
import { RateLimiter, type RateLimitOutcome } from './limiter.js'
import type { RateLimitConfig, RateLimitRouteConfig } from './options.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The limiter's decision for this request (strictest policy first). */
    rateLimit: RateLimitInfo | null
  }
  interface FastifyContextConfig {
    /** Per-route quota, or `false` to exempt the route. */
    rateLimit?: RateLimitRouteConfig | false
  }
  interface FastifyInstance {
    /** The limiter behind the `rateLimit` plugin (for cost charging and tests). */
    rateLimiter: RateLimiter<FastifyRequest>
  }
}

async function rateLimitPlugin(app: FastifyInstance, options: RateLimitConfig): Promise<void> {
  const limiter = new RateLimiter<FastifyRequest>(options, app.log)
  await ensureErrorReply(app)
  app.decorateRequest('rateLimit', null)
  app.decorate('rateLimiter', limiter)

  // A bad per-route override fails at boot, not on the first request.
  app.addHook('onRoute', (route) => {
    RateLimiter.validateRouteConfig(route.config?.rateLimit, `${String(route.method)} ${route.url}`)
  })
  app.addHook('onClose', async () => limiter.close())

  /** Acts on the decision; {@link ANSWERED} when the request was refused here. */
  function apply(
    outcome: RateLimitOutcome,
    request: FastifyRequest,
    reply: FastifyReply,
  ): typeof ANSWERED | undefined {
    switch (outcome.action) {
      case 'skip':
        return undefined
      case 'allow':
        request.rateLimit = outcome.info
        limiter.writeHeaders(outcome.info, outcome.set, reply)
        if (outcome.charge !== undefined)
          limiter.refundWhenDone(outcome.charge, request, reply.raw, reply)
        return undefined
      case 'reject':
        if (outcome.info !== undefined) request.rateLimit = outcome.info
        // Answer here instead of throwing: cheaper, and the shape is the one
        // every other rejection has, through the same function.
        void sendError(reply, outcome.error)
        return ANSWERED
    }
  }

  // A user callback (skip, max, onExceeded, errorResponseBuilder) that throws
  // fails the request through the error handler (the guard runner turns the
  // throw or rejection into `done(error)`): it is never let through.
  const guard: RequestGuard = (request, reply) => {
    const config = routeConfigOf(request)
    const override = config.rateLimit
    // The route id only names a route override (its cache entry, its error
    // message): without one, building it would cost a string per request.
    const routeId =
      override === undefined || override === false
        ? ''
        : `${String(config.method)} ${config.url ?? '*'}`
    const outcome = limiter.check(request, request.ip, request.url, override, routeId)
    if (outcome instanceof Promise) return outcome.then((o) => apply(o, request, reply))
    return apply(outcome, request, reply)
  }

  // In `onRequest` the guard shares one hook with a body limit registered
  // right before or after it (see guard-hook.ts).
  if (limiter.config.hook === 'onRequest') addRequestGuard(app, guard)
  else app.addHook(limiter.config.hook, guardHook(guard))
}

/**
 * Sliding-window rate limit for Fastify, with IETF `RateLimit` headers and a
 * `quota-exceeded` problem answer.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { rateLimit } from 'fraiseql-security/http'
 * const app = Fastify({ trustProxy: '10.0.0.0/8' })
 * await app.register(rateLimit, { max: 100, windowMs: 60_000, policies: [{ name: 'burst', max: 20, windowMs: 1000 }] })
 * app.post('/login', { config: { rateLimit: { max: 5 } } }, handler)
 * ```
 */
export const rateLimit = fp(rateLimitPlugin, {
  name: 'fraiseql-security/rate-limit',
  fastify: '5.x',
})
