import { z } from 'zod'
import type { Clock } from '../../internal/clock.js'
import type { Logger } from '../../internal/logger.js'
import { PathPatternSchema } from '../paths.js'
import { StoreCircuitBreakerSchema } from './breaker.js'
import { IpOrCidrSchema } from './client-key.js'
import type { RateLimitStore } from './store.js'

const fn = <T>(what: string) =>
  z.custom<T>((v) => typeof v === 'function', { message: `must be a function (${what})` })

/** 10^7 units and 7 days keep every integer comparison below 2^53 (see sliding-window.ts). */
export const MAX_QUOTA = 10_000_000
export const MAX_WINDOW_MS = 7 * 24 * 60 * 60 * 1000

export const PolicyNameSchema = z
  .string()
  .regex(
    /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/,
    'must be 1-64 letters, digits, "_", "." or "-", starting with a letter',
  )

/** One named quota: `max` units per `windowMs`. */
export const RateLimitPolicySchema = z
  .object({
    name: PolicyNameSchema,
    max: z.number().int().min(1).max(MAX_QUOTA),
    windowMs: z.number().int().min(1).max(MAX_WINDOW_MS),
  })
  .strict()

const uniqueNames = (policies: ReadonlyArray<{ name: string }>) =>
  new Set(policies.map((p) => p.name)).size === policies.length

const storeSchema = z.custom<RateLimitStore>(
  (v) => typeof (v as Partial<RateLimitStore> | null)?.consume === 'function',
  { message: 'must implement consume(key, { policies, weight, now })' },
)

/** The quota fields a route can override through its `config.rateLimit`. */
export const RateLimitRouteConfigSchema = z
  .object({
    /** Units per window of this route's `default` policy. */
    max: z.number().int().min(1).max(MAX_QUOTA).optional(),
    /** Window of this route's `default` policy, in ms. */
    windowMs: z.number().int().min(1).max(MAX_WINDOW_MS).optional(),
    /** Extra named policies for this route (replacing the global extras). */
    policies: z
      .array(RateLimitPolicySchema)
      .refine(uniqueNames, 'policy names must be unique')
      .optional(),
  })
  .strict()

export const RateLimitConfigSchema = z
  .object({
    /**
     * Units per window of the `default` policy.
     * @default 100
     */
    max: z.number().int().min(1).max(MAX_QUOTA).default(100),
    /**
     * Window of the `default` policy, in milliseconds.
     * @default 60000
     */
    windowMs: z.number().int().min(1).max(MAX_WINDOW_MS).default(60_000),
    /**
     * Further named policies that apply together with `default`, e.g.
     * `[{ name: 'burst', max: 20, windowMs: 1000 }]`. The strictest decides.
     * @default []
     */
    policies: z
      .array(RateLimitPolicySchema)
      .refine(uniqueNames, 'policy names must be unique')
      .refine((p) => p.every((x) => x.name !== 'default'), '"default" is defined by max/windowMs')
      .default([]),
    /**
     * The client key of a request. Default: the client IP as Fastify resolves
     * it (honouring `trustProxy`), IPv6 grouped by `ipv6Subnet`.
     */
    keyGenerator: fn<(request: never) => string | Promise<string>>('request => key').optional(),
    /**
     * IPs/CIDRs never limited, or a predicate over the request and its key.
     * @default []
     */
    allowList: z
      .union([
        z.array(IpOrCidrSchema),
        fn<(request: never, key: string) => boolean | Promise<boolean>>('allow list'),
      ])
      .default([]),
    /**
     * Paths never limited: exact (`/health`) or prefix (`/public/*`).
     * @default []
     */
    exemptPaths: z.array(PathPatternSchema).default([]),
    /**
     * Where counters live. Default: a process-local {@link MemoryStore}.
     */
    store: storeSchema.optional(),
    /**
     * Longest wait for the store; a request whose call takes longer is decided
     * as `onStoreError` says. One slow call does not open the circuit
     * (see `circuitBreaker`).
     * @default 100
     */
    storeTimeoutMs: z.number().int().min(1).max(60_000).default(100),
    /**
     * What a request does when the store call fails or times out, or while the
     * circuit is open: `insurance` limits it with a local memory store whose
     * quotas are each policy's `ceil(max / instances)`; `allow` lets it
     * through; `deny` answers 503. Failures are logged once per run.
     * @default 'insurance'
     */
    onStoreError: z.enum(['insurance', 'allow', 'deny']).default('insurance'),
    /**
     * While the circuit is open, how long before one request probes the store
     * (half-open); its answer closes the circuit, its failure keeps it open.
     * @default 1000
     */
    storeRetryIntervalMs: z.number().int().min(1).max(3_600_000).default(1000),
    /**
     * When the shared store's circuit opens: `openAfterErrors` errors or
     * `openAfterTimeouts` timeouts in a row, with no answer in between.
     * @default { openAfterErrors: 3, openAfterTimeouts: 5, busyMaxWaitMs: 1000 }
     */
    circuitBreaker: StoreCircuitBreakerSchema.default({
      openAfterErrors: 3,
      openAfterTimeouts: 5,
      busyMaxWaitMs: 1000,
    }),
    /**
     * How many processes share the store. Each one's insurance budget is
     * `ceil(max / instances)` of every policy (its own admissions through the
     * shared store included), so a fleet that falls back admits about `max`,
     * not `max` per process. Ignored with the memory store.
     * @default 1
     */
    instances: z.number().int().min(1).max(10_000).default(1),
    /**
     * Units a request costs; later features charge GraphQL cost or tier weights.
     * @default () => 1
     */
    weight: fn<(request: never) => number>('request => units').optional(),
    /**
     * IPv6 prefix length that counts as one client.
     * @default 64
     */
    ipv6Subnet: z.number().int().min(1).max(128).default(64),
    /**
     * Send `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers).
     * @default true
     */
    standardHeaders: z.boolean().default(true),
    /**
     * Also send `X-RateLimit-Limit/Remaining/Reset` for older clients.
     * @default false
     */
    legacyHeaders: z.boolean().default(false),
    /**
     * Fastify hook the limiter runs in. `onRequest` limits before the body is
     * read; `preHandler` sees the parsed body and authentication.
     * @default 'onRequest'
     */
    hook: z.enum(['onRequest', 'preHandler']).default('onRequest'),
    /** Clock in ms; inject it in tests. @default Date.now */
    clock: fn<Clock>('() => ms').optional(),
    /** Where store failures are logged. @default the Fastify logger, or stderr */
    logger: z
      .custom<Logger>((v) => typeof (v as Partial<Logger> | null)?.warn === 'function')
      .optional(),
  })
  .strict()

/** Options of the `rateLimit` plugin and `rateLimitMiddleware`. */
export type RateLimitConfig = z.input<typeof RateLimitConfigSchema>
export type ResolvedRateLimitConfig = z.output<typeof RateLimitConfigSchema>
/** Per-route override, set as `config: { rateLimit: { ... } }` or `false` to exempt. */
export type RateLimitRouteConfig = z.input<typeof RateLimitRouteConfigSchema>
