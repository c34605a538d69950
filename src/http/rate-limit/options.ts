import { z } from 'zod'
import { parseDuration } from '../../internal/duration.js'
import { IpOrCidrSchema } from '../../internal/ip-address.js'
import {
  ClockOptionSchema,
  fn,
  LoggerOptionSchema,
  RateLimitStoreOptionSchema,
} from '../../internal/options.js'
import { PathPatternSchema } from '../../internal/path-matcher.js'
import type { RateLimitInfo } from '../errors.js'
import { StoreCircuitBreakerSchema } from './breaker.js'

/** 10^7 units and 7 days keep every integer comparison below 2^53 (see sliding-window.ts). */
export const MAX_QUOTA = 10_000_000
export const MAX_WINDOW_MS = 7 * 24 * 60 * 60 * 1000

/**
 * A window in milliseconds, or a duration string as @fastify/rate-limit takes
 * it (`'1 minute'`, `'30s'`, `'1.5h'`). Parsed once, at registration.
 */
export const WindowSchema = z
  .union([
    z.number(),
    z.string().transform((text, ctx) => {
      const ms = parseDuration(text)
      if (ms === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `must be a number of ms or a duration such as '1 minute' or '30s' (got ${JSON.stringify(text.slice(0, 40))})`,
        })
        return z.NEVER
      }
      return ms
    }),
  ])
  .pipe(z.number().int().min(1).max(MAX_WINDOW_MS))

/** What `max` may compute from the request and its key. */
export type MaxFunction = (request: never, key: string) => number | Promise<number>

const MaxSchema = z.union([
  z.number().int().min(1).max(MAX_QUOTA),
  fn<MaxFunction>('(request, key) => units'),
])

/** What an `errorResponseBuilder` is told about the refusal. */
export interface RateLimitErrorContext {
  /** Always 429. */
  readonly statusCode: 429
  /** The refusing policy's quota. */
  readonly max: number
  /** Milliseconds until a request fits again. */
  readonly ttl: number
  /** The same wait as text, e.g. `'43 seconds'`. */
  readonly after: string
  /** The client key that was refused. */
  readonly key: string
  /** Every policy's state. */
  readonly info: RateLimitInfo
}

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

/** The quota fields a route can override through its `config.rateLimit`. */
export const RateLimitRouteConfigSchema = z
  .object({
    /** Units per window of this route's `default` policy, or a function of the request. @default the plugin's `max` */
    max: MaxSchema.optional(),
    /** Window of this route's `default` policy, in ms or as a duration string. @default the plugin's `windowMs` */
    windowMs: WindowSchema.optional(),
    /** This route's client key. @default the plugin's `keyGenerator` */
    keyGenerator: fn<(request: never) => string | Promise<string>>('request => key').optional(),
    /**
     * Routes with the same `groupId` share one counter (as in
     * @fastify/rate-limit); without it each route counts on its own.
     * @default undefined
     */
    groupId: z
      .string()
      .regex(/^[\x21-\x7e]{1,128}$/, 'must be 1-128 visible ASCII characters')
      .optional(),
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
     * Units per window of the `default` policy, or `(request, key) => units`
     * (sync or async) for a quota that depends on the client.
     * @default 100
     */
    max: MaxSchema.default(100),
    /**
     * Window of the `default` policy, in milliseconds or as a duration string
     * (`'1 minute'`, `'30s'`).
     * @default 60000
     */
    windowMs: WindowSchema.default(60_000),
    /**
     * `false` limits only the routes that set `config: { rateLimit: {...} }`
     * (the @fastify/rate-limit opt-in); `true` limits every route.
     * @default true
     */
    global: z.boolean().default(true),
    /**
     * `(request) => boolean` (sync or async): `true` lets the request through
     * uncounted and without headers (express-rate-limit's `skip`).
     * @default undefined
     */
    skip: fn<(request: never) => boolean | Promise<boolean>>('request => boolean').optional(),
    /**
     * Take back the charge of a request whose response succeeded (see
     * `requestWasSuccessful`), as express-rate-limit does: only failures
     * count, e.g. failed logins. The request is still charged when it arrives,
     * so a burst of concurrent requests cannot pass `max` while their
     * responses are pending; the refund follows the response. Needs a store
     * with `refund` (every bundled store has it).
     * @default false
     */
    skipSuccessfulRequests: z.boolean().default(false),
    /**
     * Take back the charge of a request whose response failed: a status the
     * `requestWasSuccessful` test refuses, or a response that errored or was
     * cut off (the client closed the connection) before it finished.
     * @default false
     */
    skipFailedRequests: z.boolean().default(false),
    /**
     * `(request, reply) => boolean` (sync or async), called once the response
     * has finished: whether it counts as a success for `skipSuccessfulRequests`
     * / `skipFailedRequests`. `reply` is the Fastify reply, or the
     * `ServerResponse` with the middleware. A throw or rejection keeps the
     * charge. A response that did not finish is a failure without asking.
     * @default (request, reply) => reply.statusCode < 400
     */
    requestWasSuccessful: fn<(request: never, reply: never) => boolean | Promise<boolean>>(
      '(request, reply) => boolean',
    ).optional(),
    /**
     * Called for each request the limiter counts and lets through, with its key.
     * A throw fails the request (the error reaches your error handler).
     * @default undefined
     */
    onExceeding: fn<(request: never, key: string) => void>('(request, key) => void').optional(),
    /**
     * Called for each request refused with 429, with its key, before the answer.
     * A throw fails the request (the error reaches your error handler).
     * @default undefined
     */
    onExceeded: fn<(request: never, key: string) => void>('(request, key) => void').optional(),
    /**
     * `(request, context) => body`: the JSON body of the 429 instead of the
     * problem document. Status (429), `Retry-After` and the rate-limit
     * headers are kept.
     * @default undefined (an RFC 9457 `quota-exceeded` problem)
     */
    errorResponseBuilder: fn<(request: never, context: RateLimitErrorContext) => object>(
      '(request, context) => body',
    ).optional(),
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
    store: RateLimitStoreOptionSchema.optional(),
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
     * Which draft-ietf-httpapi-ratelimit-headers fields to send: `'draft-8'`
     * (`RateLimit-Policy: "default";q=100;w=60` and `RateLimit: "default";r=99;t=43`),
     * `'draft-7'` (`RateLimit: limit=100, remaining=99, reset=43`),
     * `'draft-6'` (`RateLimit-Limit/Remaining/Reset`), `true` (= `'draft-8'`)
     * or `false` (none).
     * @default true
     */
    standardHeaders: z
      .union([z.boolean(), z.enum(['draft-6', 'draft-7', 'draft-8'])])
      .default(true),
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
    clock: ClockOptionSchema.optional(),
    /** Where store failures are logged. @default the Fastify logger, or stderr */
    logger: LoggerOptionSchema.optional(),
  })
  .strict()

/** Option names from @fastify/rate-limit and express-rate-limit, mapped to ours. */
export const RATE_LIMIT_ALIASES = {
  timeWindow: 'windowMs',
  limit: 'max',
  enableDraftSpec: 'standardHeaders',
  skipOnError: 'onStoreError',
  allowlist: 'allowList',
  whitelist: 'allowList',
  redis: 'store',
  nameSpace: 'store',
  handler: 'errorResponseBuilder',
  message: 'errorResponseBuilder',
  statusCode: 'errorResponseBuilder',
  addHeaders: 'standardHeaders',
  addHeadersOnExceeding: 'standardHeaders',
  headers: 'standardHeaders',
} as const

/** Options of the `rateLimit` plugin and `rateLimitMiddleware`. */
export type RateLimitConfig = z.input<typeof RateLimitConfigSchema>
export type ResolvedRateLimitConfig = z.output<typeof RateLimitConfigSchema>
/** Per-route override, set as `config: { rateLimit: { ... } }` or `false` to exempt. */
export type RateLimitRouteConfig = z.input<typeof RateLimitRouteConfigSchema>
