/**
 * The options of {@link ProfileEnforcer} and the authentication contract
 * (`request.auth`) its steps share with the rest of the package.
 */
import type { FastifyRequest } from 'fastify'
import { z } from 'zod'
import { type ComplexityOptions, GraphQLTracer, PersistedOperations } from '../graphql/index.js'
import { ClockOptionSchema, fn, RateLimitStoreOptionSchema } from '../internal/options.js'
import { PathPatternSchema } from '../internal/path-matcher.js'
import type { AuditSink } from './audit.js'
import { QuotaSchema } from './profile.js'

/** What `authenticate(request)` resolves to: who is calling, and how they proved it. */
export interface AuthContext {
  /** Stable id of the caller (user id, API key id, certificate subject). */
  readonly principal: string
  readonly kind: 'apiKey' | 'token' | 'mtls'
  /** When the credential was issued (`Date` or epoch ms); required for `kind: 'token'`. */
  readonly issuedAt?: Date | number
  readonly permissions: readonly string[]
  /** Rate-limit tier, a key of the enforcer's `tiers` option. */
  readonly tier?: string
}

/** Resolves the caller of a request, or `null` for no (or invalid) credentials. */
export type Authenticate = (
  request: FastifyRequest,
) => AuthContext | null | undefined | Promise<AuthContext | null | undefined>

/** The names of the enforcer's steps, in the order `applyTo` registers them. */
export const STEP_NAMES = [
  'tlsGate',
  'mtlsGate',
  'ipRateLimit',
  'bodyLimit',
  'authentication',
  'principalRateLimit',
  'graphqlGuards',
  'errorMasking',
  'auditLog',
  'tracing',
] as const

/** The name of one step of {@link ProfileEnforcer.getMiddlewareStack}. */
export type StepName = (typeof STEP_NAMES)[number]

/** Per-step settings: today only whether it runs. */
const StepSettingsSchema = z
  .object({
    /**
     * `false` leaves the step out of `applyTo` (it stays in
     * `getMiddlewareStack()` marked `enabled: false`, and `applyTo` logs a
     * warning naming it): for a protection your infrastructure provides.
     * @default true
     */
    enabled: z.boolean().default(true),
  })
  .strict()

export const ProfileEnforcerOptionsSchema = z
  .object({
    /** Resolves `request.auth`. Without it, `authRequired` refuses every request (401). @default none */
    authenticate: fn<Authenticate>('request => AuthContext | null').optional(),
    /** Audit sink. @default one structured line on the Fastify logger */
    audit: fn<AuditSink>('(event, request) => void').optional(),
    /** Shared store for both rate limits (Redis or PostgreSQL in a cluster). @default memory */
    rateLimitStore: RateLimitStoreOptionSchema.optional(),
    /**
     * Deprecated: set Fastify's own `trustProxy` instead, which the gates
     * read (`request.protocol`, and whether the peer is trusted). Still
     * accepted when it says the same as Fastify's (same boolean, the same
     * list, the same function); `applyTo` refuses a different one with
     * `ERR_CONFIG_INVALID`. @default Fastify's trustProxy
     * @deprecated Use `Fastify({ trustProxy })`.
     */
    trustProxy: z
      .union([z.boolean(), z.array(z.string()), fn<(ip: string) => boolean>('ip => boolean')])
      .optional(),
    /** Header a trusted proxy sets after verifying a client certificate. @default none */
    clientCertHeader: z
      .object({ name: z.string().min(1).toLowerCase(), value: z.string().min(1) })
      .strict()
      .optional(),
    /** Paths that skip authentication (health checks); gates and the IP limit still apply. @default [] */
    publicPaths: z.array(PathPatternSchema).default([]),
    /** The `WWW-Authenticate` challenge of a 401. @default 'Bearer realm="api"' */
    authChallenge: z.string().min(1).max(200).default('Bearer realm="api"'),
    /** Per-principal quotas by `request.auth.tier`; others get the profile's `principalRateLimit`. @default {} */
    tiers: z.record(z.string(), QuotaSchema.partial()).default({}),
    /** Manifest of persisted operations (sha256 hex → query); required by `persistedOperationsOnly`. @default none */
    persistedOperations: z
      .union([
        z.instanceof(PersistedOperations),
        z.record(z.string(), z.string()),
        z.instanceof(Map),
      ])
      .optional(),
    /**
     * Traces GraphQL operations (OpenTelemetry, secrets redacted): the last
     * step of the stack. `true` builds a `GraphQLTracer` with its defaults.
     * @default off
     */
    tracer: z.union([z.instanceof(GraphQLTracer), z.boolean()]).default(false),
    /** GraphQL cost model (field costs, list arguments). @default the guards' defaults */
    complexity: z.custom<ComplexityOptions>((v) => typeof v === 'object' && v !== null).optional(),
    /** The GraphQL route's path, as given to mercurius. @default '/graphql' */
    graphqlPath: z.string().startsWith('/').default('/graphql'),
    /** Reveal limits in GraphQL rejection messages. @default false */
    revealLimits: z.boolean().default(false),
    /**
     * Milliseconds since the epoch: token freshness, audit times and both
     * rate limits read it. @default the system clock
     */
    clock: ClockOptionSchema.optional(),
    /**
     * How far in the future a token's `issuedAt` may lie (clock skew between
     * the issuer and this server), as jose's `clockTolerance`; later is 401
     * `ERR_AUTH_TOKEN_NOT_YET_VALID`. The expiry side has no tolerance.
     * @default 60_000
     */
    clockToleranceMs: z
      .number()
      .int()
      .min(0)
      .max(10 * 60_000)
      .default(60_000),
    /**
     * The deployment environment. A profile with `errorDetail: 'full'` is
     * refused unless it is `development` or `test`.
     * @default process.env.NODE_ENV
     */
    environment: z.string().min(1).max(64).optional(),
    /**
     * Switches single steps off, by name:
     * `steps: { bodyLimit: { enabled: false } }` when a proxy in front
     * already bounds bodies. Every step is on by default; a step switched off
     * is still listed by `getMiddlewareStack()` (with `enabled: false`), so
     * the gap shows in diagnostics and `fraiseql-security profile`.
     * @default {} (every step the profile calls for runs)
     */
    steps: z.partialRecord(z.enum(STEP_NAMES), StepSettingsSchema).default({}),
  })
  .strict()

export type ProfileEnforcerOptions = z.input<typeof ProfileEnforcerOptionsSchema>

/** The enforcer's options after parsing (defaults filled in). */
export type ResolvedEnforcerOptions = z.output<typeof ProfileEnforcerOptionsSchema>
