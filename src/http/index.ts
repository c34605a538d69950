/**
 * @module fraiseql-security/http
 *
 * HTTP guards: a body-size limit and a sliding-window rate limit, each as a
 * Fastify plugin and as an Express-style `(req, res, next)` middleware, over
 * one framework-free core. Stores: memory, Redis, PostgreSQL.
 */

export { humanReadableSize } from '../internal/format.js'
export { ipKey, normalizeIp } from '../internal/ip-address.js'
export type { ErrorReplyOptions } from '../internal/reply/fastify.js'
export { errorReply } from '../internal/reply/fastify.js'
export type { HttpAnswer } from '../internal/reply/index.js'
export { toHttpAnswer } from '../internal/reply/index.js'
export type { BodyLimitRouteConfig, BodySizeConfig } from './body-limit/core.js'
export { BodySizeConfigSchema } from './body-limit/core.js'
export { bodyLimit } from './body-limit/fastify.js'
export type { BodyLimitMiddleware } from './body-limit/middleware.js'
export { bodyLimitMiddleware } from './body-limit/middleware.js'
export type { PolicyState, RateLimitInfo } from './errors.js'
export {
  BodyTimeoutError,
  InvalidCompressedBodyError,
  InvalidContentLengthError,
  QUOTA_EXCEEDED_TYPE,
  RateLimitExceededError,
  RateLimitStoreError,
  RateLimitUnavailableError,
  RequestTooLargeError,
  UnsupportedEncodingError,
} from './errors.js'
export type { StoreCircuitState } from './rate-limit/breaker.js'
export { rateLimit } from './rate-limit/fastify.js'
export type { PolicySet, RateLimitCharge, RateLimitOutcome } from './rate-limit/limiter.js'
export { RateLimiter } from './rate-limit/limiter.js'
export type { RateLimitMiddleware } from './rate-limit/middleware.js'
export { rateLimitMiddleware } from './rate-limit/middleware.js'
export type { RateLimitConfig, RateLimitRouteConfig } from './rate-limit/options.js'
export { RateLimitConfigSchema, RateLimitPolicySchema } from './rate-limit/options.js'
export type { RateLimitPolicy, WindowCounters } from './rate-limit/sliding-window.js'
export { fits, retryAfterMs, toPolicyState, windowOf } from './rate-limit/sliding-window.js'
export type {
  ConsumeRequest,
  RateLimitStore,
  RefundRequest,
  TimeSource,
} from './rate-limit/store.js'
export type { MemoryStoreOptions } from './rate-limit/stores/memory.js'
export { MemoryStore, MemoryStoreOptionsSchema } from './rate-limit/stores/memory.js'
export type { PostgresStoreOptions } from './rate-limit/stores/postgres.js'
export { PostgresStore, PostgresStoreOptionsSchema } from './rate-limit/stores/postgres.js'
export type { RedisClientLike, RedisStoreOptions } from './rate-limit/stores/redis.js'
export {
  RedisStore,
  RedisStoreOptionsSchema,
  SLIDING_WINDOW_LUA,
  SLIDING_WINDOW_ONE_POLICY_LUA,
  SLIDING_WINDOW_REFUND_LUA,
} from './rate-limit/stores/redis.js'
