import type { IncomingMessage, ServerResponse } from 'node:http'
import { ConfigError } from '../../errors.js'
import { toHttpAnswer } from '../../internal/reply/index.js'
import { writeNodeAnswer } from '../../internal/reply/node.js'
import type { RateLimitInfo } from '../errors.js'
import { RateLimiter, type RateLimitOutcome } from './limiter.js'
import type { RateLimitConfig } from './options.js'

/** A request as Express and plain `node:http` hand it over. */
export type MiddlewareRequest = IncomingMessage & {
  ip?: string | undefined
  rateLimit?: RateLimitInfo | undefined
}

// Express users read `req.rateLimit` typed, as express-rate-limit's users do.
// Augmenting the global `Express` namespace needs no import of express, so
// projects without @types/express type-check unchanged.
declare global {
  namespace Express {
    interface Request {
      /** The limiter's decision for this request, set by `rateLimitMiddleware`. */
      rateLimit?: RateLimitInfo | undefined
    }
  }
}
export type NextFunction = (err?: unknown) => void

/** The Express-style middleware, with its limiter for tests and shutdown. */
export interface RateLimitMiddleware {
  (req: MiddlewareRequest, res: ServerResponse, next: NextFunction): void
  readonly limiter: RateLimiter<MiddlewareRequest>
}

/**
 * Express-style `(req, res, next)` rate limit, for Express and plain
 * `node:http`. The client IP is `req.ip` when the framework set it (Express
 * honours its `trust proxy` setting), otherwise the socket's address.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http'
 * import { rateLimitMiddleware } from 'fraiseql-security/http'
 * const limit = rateLimitMiddleware({ max: 100, windowMs: 60_000 })
 * createServer((req, res) => limit(req, res, () => res.end('ok'))).listen(3000, '127.0.0.1')
 * ```
 */
export function rateLimitMiddleware(config?: RateLimitConfig): RateLimitMiddleware {
  const limiter = new RateLimiter<MiddlewareRequest>(config)
  // The middleware has no route table to opt routes in with: `global: false`
  // would silently limit nothing. Mount it on the routes to limit instead.
  if (!limiter.config.global)
    throw new ConfigError('rateLimitMiddleware', [
      {
        path: ['global'],
        message: 'applies to the Fastify plugin only; mount the middleware on the routes to limit',
      },
    ])

  function apply(
    outcome: RateLimitOutcome,
    req: MiddlewareRequest,
    res: ServerResponse,
    next: NextFunction,
  ) {
    switch (outcome.action) {
      case 'skip':
        next()
        return
      case 'allow':
        req.rateLimit = outcome.info
        limiter.writeHeaders(outcome.info, outcome.set, {
          header: (name, value) => res.setHeader(name, value),
        })
        if (outcome.charge !== undefined) limiter.refundWhenDone(outcome.charge, req, res, res)
        next()
        return
      case 'reject':
        if (outcome.info !== undefined) req.rateLimit = outcome.info
        writeNodeAnswer(res, toHttpAnswer(outcome.error))
    }
  }

  const middleware = function rateLimitMiddleware(
    req: MiddlewareRequest,
    res: ServerResponse,
    next: NextFunction,
  ) {
    const ip = req.ip ?? req.socket.remoteAddress ?? ''
    let outcome: RateLimitOutcome | Promise<RateLimitOutcome>
    try {
      outcome = limiter.check(req, ip, req.url, undefined, '')
    } catch (err) {
      next(err)
      return
    }
    if (outcome instanceof Promise) outcome.then((o) => apply(o, req, res, next), next)
    else apply(outcome, req, res, next)
  }
  return Object.assign(middleware, { limiter })
}
