/**
 * Fastify glue over `ApiKeyManager`: the `apiKeyAuth` plugin, the
 * `requirePermission` guard, and `apiKeyAuthenticator` for
 * `ProfileEnforcer`'s authentication hook. Thin adapters: every decision is
 * the manager's.
 */
import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  HookHandlerDoneFunction,
} from 'fastify'
import fp from 'fastify-plugin'
import { z } from 'zod'
import {
  type PolicySet,
  RateLimitExceededError,
  RateLimiter,
  RateLimitPolicySchema,
} from '../http/index.js'
import { AuthenticationRequiredError, ForbiddenError } from '../internal/auth-errors.js'
import { routeConfigOf } from '../internal/fastify-route.js'
import { ClockOptionSchema, parseOptions, RateLimitStoreOptionSchema } from '../internal/options.js'
import { ensureErrorReply, sendError } from '../internal/reply/fastify.js'
import type { AuthContext } from '../profiles/index.js'
import { ApiKeyRejectedError } from './errors.js'
import { ApiKeyManager } from './manager.js'
import type { ApiKeyValidation } from './manager-types.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** What the request's API key grants; null without one. Set by `apiKeyAuth`. */
    apiKey: import('./manager-types.js').ApiKeyValidation | null
  }
  interface FastifyContextConfig {
    /** `false`: `apiKeyAuth` does not look at this route (health checks, webhooks). */
    apiKey?: false
  }
  interface FastifyInstance {
    /** The `preHandler` guard of {@link requirePermission}, decorated by `apiKeyAuth`. */
    requirePermission: typeof import('./fastify.js').requirePermission
  }
}

/** A request's API key: `Authorization: Bearer <key>` first, then the API-key header. */
export function extractApiKey(request: FastifyRequest, header = 'x-api-key'): string | undefined {
  const authorization = request.headers.authorization
  if (typeof authorization === 'string' && authorization.length > 7) {
    // RFC 6750 §2.1: the scheme is case-insensitive, one or more spaces, then the token.
    const m = /^bearer +([^\s]+) *$/i.exec(authorization)
    if (m !== null) return m[1]
  }
  const value = request.headers[header]
  return typeof value === 'string' && value !== '' ? value.trim() : undefined
}

/** Whether `granted` covers `required`: exact, `*` for everything, or `orders:*` for `orders:…`. */
export function hasPermission(granted: readonly string[], required: string): boolean {
  for (const g of granted) {
    if (g === required || g === '*') return true
    if (g.endsWith(':*') && required.startsWith(g.slice(0, -1))) return true
  }
  return false
}

const QuotaSchema = z
  .object({
    /** Requests per window. */
    max: z.number().int().min(1).max(10_000_000),
    /** Window in ms. */
    windowMs: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 60 * 60 * 1000),
    /** Further named policies (`burst`), all checked together. */
    policies: z.array(RateLimitPolicySchema).optional(),
  })
  .strict()

export const ApiKeyAuthOptionsSchema = z
  .object({
    /** The manager that validates keys. */
    manager: z.instanceof(ApiKeyManager),
    /**
     * Header read when there is no `Authorization: Bearer` (lower case).
     * @default 'x-api-key'
     */
    header: z
      .string()
      .regex(/^[a-z0-9-]{1,64}$/, 'must be a lower-case header name')
      .default('x-api-key'),
    /**
     * `false`: a request without any key goes on with `request.apiKey = null`
     * (a wrong key is still refused).
     * @default true
     */
    required: z.boolean().default(true),
    /** Realm of the `WWW-Authenticate` challenge. @default 'api' */
    realm: z
      .string()
      .regex(/^[\x20-\x7e]{1,100}$/)
      .refine((v) => !v.includes('"') && !v.includes('\\'), 'must not contain quotes')
      .default('api'),
    /** Also set `request.auth` (the profiles' `AuthContext`). @default true */
    setAuth: z.boolean().default(true),
    /**
     * Per-key rate limits by tier: the key id is the limiter's key, the
     * key's tier picks the quota; tiers not listed get `default`, or no limit.
     */
    rateLimit: z
      .object({
        tiers: z.record(z.string(), QuotaSchema).default({}),
        default: QuotaSchema.optional(),
        /** Shared store (Redis, PostgreSQL). @default memory */
        store: RateLimitStoreOptionSchema.optional(),
        /** @default Date.now */
        clock: ClockOptionSchema.optional(),
      })
      .strict()
      .optional(),
  })
  .strict()

export type ApiKeyAuthOptions = z.input<typeof ApiKeyAuthOptionsSchema>

/** Per-tier limiting: one limiter, one policy set per tier (resolved once). */
class TierLimits {
  readonly limiter: RateLimiter<FastifyRequest>
  readonly #tiers: Record<string, z.output<typeof QuotaSchema>>
  readonly #default: z.output<typeof QuotaSchema> | undefined
  readonly #sets = new Map<string, PolicySet | null>()

  constructor(
    o: NonNullable<z.output<typeof ApiKeyAuthOptionsSchema>['rateLimit']>,
    app: FastifyInstance,
  ) {
    this.limiter = new RateLimiter<FastifyRequest>(
      {
        ...(o.store === undefined ? {} : { store: o.store }),
        ...(o.clock === undefined ? {} : { clock: o.clock }),
      },
      app.log,
    )
    this.#tiers = o.tiers
    this.#default = o.default
  }

  setFor(tier: string): PolicySet | null {
    let set = this.#sets.get(tier)
    if (set === undefined) {
      const quota = Object.hasOwn(this.#tiers, tier) ? this.#tiers[tier] : this.#default
      set =
        quota === undefined
          ? null
          : this.limiter.policiesFor(
              {
                max: quota.max,
                windowMs: quota.windowMs,
                policies: quota.policies ?? [],
              },
              `tier:${tier}`,
            )
      this.#sets.set(tier, set)
    }
    return set
  }
}

/** The profiles' auth context of a validated key. */
function authOf(grant: ApiKeyValidation): AuthContext {
  return {
    principal: grant.keyId,
    kind: 'apiKey',
    permissions: grant.permissions,
    tier: grant.tier,
  }
}

async function apiKeyAuthPlugin(app: FastifyInstance, options: ApiKeyAuthOptions): Promise<void> {
  const o = parseOptions('apiKeyAuth', ApiKeyAuthOptionsSchema, options)
  const { manager, header, required, setAuth } = o
  const challenge = `Bearer realm="${o.realm}"`
  const invalidChallenge = `${challenge}, error="invalid_token"`
  const tiers = o.rateLimit === undefined ? undefined : new TierLimits(o.rateLimit, app)
  await ensureErrorReply(app)
  app.decorateRequest('apiKey', null)
  if (setAuth && !app.hasRequestDecorator('auth')) app.decorateRequest('auth', null)
  if (!app.hasDecorator('requirePermission')) app.decorate('requirePermission', requirePermission)
  app.addHook('onReady', async () => manager.initialize())
  if (tiers !== undefined) app.addHook('onClose', async () => tiers.limiter.close())

  const refuse = (reply: FastifyReply, err: unknown) => {
    // One answer for every reason (the typed code stays on the server side).
    if (err instanceof ApiKeyRejectedError) {
      return sendError(reply, new ApiKeyRejectedError(err.reason, { challenge: invalidChallenge }))
    }
    return sendError(reply, err)
  }

  const limit = (reply: FastifyReply, grant: ApiKeyValidation, done: HookHandlerDoneFunction) => {
    const set = tiers!.setFor(grant.tier)
    if (set === null) return done()
    const { limiter } = tiers!
    const apply = (info: Awaited<ReturnType<typeof limiter.consume>>) => {
      if (info === undefined) return done()
      if (!info.allowed) {
        return sendError(reply, new RateLimitExceededError(info, limiter.headersFor(info, set)))
      }
      limiter.writeHeaders(info, set, reply)
      done()
    }
    const result = limiter.consume(`apikey:${grant.keyId}`, set, 1)
    if (result instanceof Promise) result.then(apply, (err: unknown) => sendError(reply, err))
    else apply(result)
  }

  app.addHook(
    'onRequest',
    (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
      if (routeConfigOf(request).apiKey === false) return done()
      const key = extractApiKey(request, header)
      if (key === undefined) {
        if (!required) return done()
        // `done` is never called: the refusal ends the request.
        void sendError(reply, new AuthenticationRequiredError(challenge))
        return
      }
      manager.validate(key, { ip: request.ip }).then(
        (grant) => {
          request.apiKey = grant
          if (setAuth) request.auth = authOf(grant)
          if (tiers !== undefined) return limit(reply, grant, done)
          done()
        },
        (err: unknown) => refuse(reply, err),
      )
    },
  )
}

/**
 * Authenticates requests by API key: `Authorization: Bearer <key>` or
 * `X-API-Key`. Sets `request.apiKey` (and `request.auth`); answers 401 with
 * `WWW-Authenticate` for a missing or refused key (one answer whatever the
 * reason), 429 for a client over its failed-attempt limit or a key over its
 * tier's quota. Skip a route with `config: { apiKey: false }`.
 *
 * @example
 * ```ts
 * await app.register(apiKeyAuth, {
 *   manager: keys,
 *   rateLimit: { tiers: { free: { max: 60, windowMs: 60_000 }, pro: { max: 600, windowMs: 60_000 } } },
 * })
 * app.get('/orders', { preHandler: requirePermission('orders:read') }, handler)
 * ```
 */
export const apiKeyAuth = fp(apiKeyAuthPlugin, {
  name: 'fraiseql-security/api-key-auth',
  fastify: '5.x',
})

/**
 * A `preHandler` that lets a request through only if its API key (or
 * `request.auth`) holds every one of `permissions`: 401 without
 * credentials, 403 (`ERR_AUTH_FORBIDDEN`) without the permission.
 *
 * @example
 * ```ts
 * app.delete('/orders/:id', { preHandler: requirePermission('orders:write') }, handler)
 * ```
 */
export function requirePermission(
  ...permissions: [string, ...string[]]
): (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void {
  if (permissions.length === 0 || !permissions.every((p) => typeof p === 'string' && p !== '')) {
    throw new TypeError('requirePermission needs one or more permission names')
  }
  return function requirePermissionHook(request, reply, done) {
    const granted = request.apiKey?.permissions ?? request.auth?.permissions
    if (granted === undefined) {
      void sendError(reply, new AuthenticationRequiredError('Bearer realm="api"'))
      return
    }
    for (const p of permissions) {
      if (!hasPermission(granted, p)) {
        void sendError(reply, new ForbiddenError('Missing permission'))
        return
      }
    }
    done()
  }
}

export interface ApiKeyAuthenticatorOptions {
  /** Header read when there is no `Authorization: Bearer`. @default 'x-api-key' */
  readonly header?: string
}

/**
 * `ProfileEnforcer`'s `authenticate` over API keys: resolves the profiles'
 * `AuthContext` (`principal` = key id, `kind: 'apiKey'`, `tier`), `null` for
 * a missing or refused key (the enforcer answers 401), and sets
 * `request.apiKey`. A client over its failed-attempt limit gets the 429.
 *
 * @example
 * ```ts
 * const enforcer = new ProfileEnforcer(REGULATED, {
 *   authenticate: apiKeyAuthenticator(keys),
 *   tiers: { free: { max: 60, windowMs: 60_000 }, pro: { max: 600, windowMs: 60_000 } },
 * })
 * ```
 */
export function apiKeyAuthenticator(
  manager: ApiKeyManager,
  options: ApiKeyAuthenticatorOptions = {},
): (request: FastifyRequest) => Promise<AuthContext | null> {
  if (!(manager instanceof ApiKeyManager)) throw new TypeError('manager must be an ApiKeyManager')
  const header = (options.header ?? 'x-api-key').toLowerCase()
  return async function authenticateApiKey(request) {
    const key = extractApiKey(request, header)
    if (key === undefined) return null
    try {
      const grant = await manager.validate(key, { ip: request.ip })
      ;(request as { apiKey?: ApiKeyValidation | null }).apiKey = grant
      return authOf(grant)
    } catch (err) {
      if (err instanceof ApiKeyRejectedError) return null
      throw err
    }
  }
}

/**
 * A `keyGenerator` for the `rateLimit` plugin (with `hook: 'preHandler'`, so
 * it runs after `apiKeyAuth`): the key id, or the IP without a key.
 *
 * @example
 * ```ts
 * await app.register(rateLimit, { hook: 'preHandler', keyGenerator: apiKeyRateLimitKey })
 * ```
 */
export function apiKeyRateLimitKey(request: FastifyRequest): string {
  const grant = request.apiKey
  return grant === null || grant === undefined ? `ip:${request.ip}` : `apikey:${grant.keyId}`
}
