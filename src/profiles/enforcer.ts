/**
 * `ProfileEnforcer`: turns a {@link SecurityProfile} into registered Fastify
 * plugins and hooks, in a fixed order, so that every setting of the profile
 * is enforced by code that runs on every request — never just documented.
 * mercurius may be registered before or after `applyTo`: the GraphQL steps
 * attach to it whenever it appears (see mercurius-watch.ts).
 *
 * ```ts
 * const enforcer = new ProfileEnforcer(REGULATED, { authenticate })
 * const app = Fastify({ https: { key, cert, ...enforcer.serverOptions() } })
 * await enforcer.applyTo(app)
 * await app.register(mercurius, { schema, resolvers, ...enforcer.mercuriusOptions() })
 * ```
 */
import type { SecureVersion } from 'node:tls'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { DocumentNode, GraphQLSchema, OperationDefinitionNode } from 'graphql'
import { z } from 'zod'
import { ConfigError } from '../errors.js'
import { isFailure, relevelResponse } from '../graphql/error-formatter.js'
import { GraphqlRejectedError, rejection } from '../graphql/errors.js'
import { installGraphqlGuards } from '../graphql/fastify.js'
import {
  type ComplexityOptions,
  GraphQLTracer,
  type GraphqlGuardOptions,
  mercuriusGuardOptions,
  PersistedOperations,
} from '../graphql/index.js'
import {
  type HookContext,
  isMercuriusRoute,
  requestedOperationName,
} from '../graphql/mercurius-context.js'
import { parseGuardOptions } from '../graphql/options.js'
import { graphqlRuntime } from '../graphql/runtime.js'
import { attachTracing, prepareTracing } from '../graphql/tracing/mercurius.js'
import { guardWebSockets } from '../graphql/websocket.js'
import { bodyLimit } from '../http/body-limit/fastify.js'
import { RateLimitExceededError } from '../http/errors.js'
import { compilePathMatcher, PathPatternSchema, pathOf } from '../http/paths.js'
import { ipKey } from '../http/rate-limit/client-key.js'
import { rateLimit } from '../http/rate-limit/fastify.js'
import { type PolicySet, RateLimiter } from '../http/rate-limit/limiter.js'
import type { RateLimitStore } from '../http/rate-limit/store.js'
import { type Clock, systemClock } from '../internal/clock.js'
import { describeError } from '../internal/logger.js'
import { parseOptions } from '../internal/options.js'
import {
  ensureErrorReply,
  maskUnhandledErrors,
  sendError,
  setErrorDetail,
} from '../internal/reply/fastify.js'
import {
  type AuditEvent,
  type AuditedOperation,
  type AuditSink,
  classify,
  codeInBody,
  fastifyLogAuditSink,
  isAudited,
} from './audit.js'
import {
  AuthenticationRequiredError,
  BatchTooLargeError,
  ClientCertificateRequiredError,
  GraphqlUnguardedError,
  TlsRequiredError,
  TokenExpiredError,
  TokenNotYetValidError,
} from './errors.js'
import { selectedFields } from './field-access.js'
import {
  type ClientCertHeader,
  compilePeerTrust,
  hasAuthorizedClientCert,
  isTlsRequest,
  type PeerTrust,
  type TrustProxy,
  tlsVersionAtLeast,
  tlsVersionName,
} from './gates.js'
import { watchMercurius } from './mercurius-watch.js'
import { parseProfile, type Quota, QuotaSchema, type SecurityProfile } from './profile.js'

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

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the profile's authentication step; `null` when unauthenticated. */
    auth: import('./enforcer.js').AuthContext | null
  }
}

/** Resolves the caller of a request, or `null` for no (or invalid) credentials. */
export type Authenticate = (
  request: FastifyRequest,
) => AuthContext | null | undefined | Promise<AuthContext | null | undefined>

const fn = <T>(what: string) =>
  z.custom<T>((v) => typeof v === 'function', { message: `must be a function (${what})` })

const EnforcerOptionsSchema = z
  .object({
    /** Resolves `request.auth`. Without it, `authRequired` refuses every request (401). @default none */
    authenticate: fn<Authenticate>('request => AuthContext | null').optional(),
    /** Audit sink. @default one structured line on the Fastify logger */
    audit: fn<AuditSink>('(event, request) => void').optional(),
    /** Shared store for both rate limits (Redis or PostgreSQL in a cluster). @default memory */
    rateLimitStore: z
      .custom<RateLimitStore>(
        (v) => typeof (v as Partial<RateLimitStore> | null)?.consume === 'function',
        {
          message: 'must implement consume(key, { policies, weight, now })',
        },
      )
      .optional(),
    /**
     * Peers (IPs/CIDRs, `true`, or a predicate) whose `X-Forwarded-Proto` and
     * client-certificate header are believed. @default false: only the socket counts
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
    clock: fn<Clock>('() => epoch ms').optional(),
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
  })
  .strict()

export type ProfileEnforcerOptions = z.input<typeof EnforcerOptionsSchema>

/** One step of what {@link ProfileEnforcer.applyTo} registers. */
export interface MiddlewareStep {
  /** Stable step name, e.g. `tlsGate`. */
  readonly name: string
  /** Where it runs: a Fastify hook name, a mercurius hook, or `errorHandler`. */
  readonly phase: string
  /** The profile settings this step enforces. */
  readonly enforces: readonly string[]
}

/** Facts about a request, for {@link ProfileEnforcer.validateRequestContext}. */
export interface RequestContextFacts {
  readonly isTls: boolean
  readonly hasClientCert: boolean
  readonly isAuthenticated: boolean
  /**
   * The negotiated TLS version (`TLSv1.3` as `tlsSocket.getProtocol()`
   * spells it, or `1.3`), checked against `minTlsVersion` when given.
   */
  readonly tlsVersion?: string
}

/** A setting a request context violates, with the status the enforcer answers. */
export interface ProfileViolation {
  readonly setting: 'tlsRequired' | 'minTlsVersion' | 'mtlsRequired' | 'authRequired'
  readonly code: string
  readonly statusCode: number
  readonly message: string
}

/** The `https` / `tls.createServer` options a profile needs. */
export interface ProfileServerOptions {
  minVersion: SecureVersion
  requestCert?: boolean
  rejectUnauthorized?: boolean
}

type ResolvedOptions = z.output<typeof EnforcerOptionsSchema>

/** Where the audit step keeps what it learned about a request. */
interface AuditNotes {
  operations: AuditedOperation[]
  code: string | null
  /** With `auditFieldAccess`: the coordinates the executed operations selected. */
  fields: Set<string> | undefined
}
const kAudit = Symbol('fraiseql-security.audit')
type Noted = FastifyRequest & { [kAudit]?: AuditNotes }

function notesOf(request: FastifyRequest): AuditNotes {
  const r = request as Noted
  let notes = r[kAudit]
  if (notes === undefined) {
    notes = { operations: [], code: null, fields: undefined }
    r[kAudit] = notes
  }
  return notes
}

/** The part of mercurius's `app.graphql` the enforcer uses. */
interface MercuriusHooks {
  addHook(
    name: 'preParsing',
    hook: (schema: unknown, source: string, context: BatchContext) => Promise<void>,
  ): void
  addHook(
    name: 'preExecution',
    hook: (schema: GraphQLSchema, document: DocumentNode, context: HookContext) => Promise<void>,
  ): void
}

/** mercurius's per-operation context; `operationsCount` is set for a batch. */
type BatchContext = HookContext & { readonly operationsCount?: number }

/** Environments where `errorDetail: 'full'` may be used. */
const DEVELOPMENT = new Set(['development', 'test'])

/**
 * Whether a token issued at `issuedAt` is usable at `now`: not older than
 * `maxAgeMs` (exact), not issued later than `now + toleranceMs`, and issued
 * at a finite time at all.
 */
function freshness(
  issuedAt: unknown,
  now: number,
  maxAgeMs: number,
  toleranceMs: number,
): 'fresh' | 'expired' | 'future' {
  const t = issuedAt instanceof Date ? issuedAt.getTime() : issuedAt
  if (typeof t !== 'number' || !Number.isFinite(t)) return 'expired'
  if (t > now + toleranceMs) return 'future'
  return now - t <= maxAgeMs ? 'fresh' : 'expired'
}

export class ProfileEnforcer {
  readonly profile: SecurityProfile
  readonly #options: ResolvedOptions
  readonly #trusted: PeerTrust
  readonly #isPublic: (path: string) => boolean
  readonly #persisted: PersistedOperations | undefined
  readonly #clock: Clock
  /** Names of the steps installed so far (GraphQL ones may come after `applyTo`). */
  #installed: Set<string> | undefined
  /**
   * Units a request paid up front (one, or one per item of a batch), each
   * to be deducted from the cost of an operation it runs.
   */
  readonly #prepaid = new WeakMap<FastifyRequest, number>()

  constructor(profile: SecurityProfile, options: ProfileEnforcerOptions = {}) {
    this.profile = parseProfile(profile)
    this.#options = parseOptions('ProfileEnforcer', EnforcerOptionsSchema, options)
    this.#clock = (this.#options.clock as Clock | undefined) ?? systemClock
    const environment = this.#options.environment ?? process.env.NODE_ENV
    if (this.profile.errorDetail === 'full' && !DEVELOPMENT.has(environment ?? '')) {
      throw new ConfigError('ProfileEnforcer', [
        {
          path: ['errorDetail'],
          message:
            "'full' sends internal error messages to clients: development only (set environment, or NODE_ENV, to 'development' or 'test')",
        },
      ])
    }
    this.#trusted = compilePeerTrust(this.#options.trustProxy as TrustProxy | undefined)
    this.#isPublic = compilePathMatcher(this.#options.publicPaths)
    const manifest = this.#options.persistedOperations
    this.#persisted =
      manifest === undefined || manifest instanceof PersistedOperations
        ? manifest
        : new PersistedOperations(manifest as Record<string, string> | Map<string, string>)
    if (this.profile.persistedOperationsOnly && this.#persisted === undefined) {
      throw new ConfigError('ProfileEnforcer', [
        {
          path: ['persistedOperations'],
          message: 'is required when the profile sets persistedOperationsOnly',
        },
      ])
    }
  }

  /** Options of the `bodyLimit` plugin for this profile. */
  getBodySizeConfig(): { maxSize: number } {
    return { maxSize: this.profile.maxBodySize }
  }

  /** Options of the IP `rateLimit` plugin for this profile. */
  getRateLimitConfig(): {
    max: number
    windowMs: number
    store?: RateLimitStore
    clock?: () => number
  } {
    return this.#limiterConfig(this.profile.rateLimit)
  }

  #limiterConfig({ max, windowMs }: Quota): {
    max: number
    windowMs: number
    store?: RateLimitStore
    clock?: () => number
  } {
    const out: { max: number; windowMs: number; store?: RateLimitStore; clock?: Clock } = {
      max,
      windowMs,
    }
    const store = this.#options.rateLimitStore
    if (store !== undefined) out.store = store
    const clock = this.#options.clock as Clock | undefined
    if (clock !== undefined) out.clock = clock
    return out
  }

  /** Limits of the GraphQL guards for this profile (the `createValidationRules` options and more). */
  getQueryValidatorConfig(): GraphqlGuardOptions {
    const p = this.profile
    const config: GraphqlGuardOptions = {
      maxDepth: p.maxQueryDepth,
      maxComplexity: p.maxQueryComplexity,
      maxAliases: p.maxAliases,
      maxDirectives: p.maxDirectives,
      maxTokens: p.maxTokens,
      introspection: p.introspection,
      blockFieldSuggestions: p.blockFieldSuggestions,
      revealLimits: this.#options.revealLimits,
    }
    if (this.#options.complexity !== undefined) config.complexity = this.#options.complexity
    return config
  }

  /** The ordered steps `applyTo` registers for this profile. */
  getMiddlewareStack(): MiddlewareStep[] {
    const p = this.profile
    const steps: MiddlewareStep[] = []
    if (p.tlsRequired)
      steps.push({
        name: 'tlsGate',
        phase: 'onRequest',
        enforces: ['tlsRequired', 'minTlsVersion'],
      })
    if (p.mtlsRequired)
      steps.push({ name: 'mtlsGate', phase: 'onRequest', enforces: ['mtlsRequired'] })
    if (p.rateLimitEnabled)
      steps.push({
        name: 'ipRateLimit',
        phase: 'onRequest',
        enforces: ['rateLimit', 'rateLimitEnabled'],
      })
    steps.push({ name: 'bodyLimit', phase: 'onRequest', enforces: ['maxBodySize'] })
    steps.push({
      name: 'authentication',
      phase: 'onRequest',
      enforces: ['authRequired', 'tokenExpiryMinutes'],
    })
    steps.push({ name: 'principalRateLimit', phase: 'onRequest', enforces: ['principalRateLimit'] })
    steps.push({
      name: 'graphqlGuards',
      phase: 'preExecution',
      enforces: [
        'maxQueryDepth',
        'maxQueryComplexity',
        'maxAliases',
        'maxDirectives',
        'maxTokens',
        'maxBatchSize',
        'introspection',
        'persistedOperationsOnly',
        'costRateLimit',
      ],
    })
    steps.push({
      name: 'errorMasking',
      phase: 'errorHandler',
      enforces: ['errorDetail', 'blockFieldSuggestions'],
    })
    steps.push({
      name: 'auditLog',
      phase: 'onResponse',
      enforces: ['auditLevel', 'auditFieldAccess'],
    })
    if (this.#options.tracer !== false) {
      steps.push({ name: 'tracing', phase: 'preExecution', enforces: [] })
    }
    return steps
  }

  /**
   * What the last `applyTo` actually registered, in order (for tests and
   * diagnostics). The GraphQL steps appear once a mercurius instance got
   * them, which may be after `applyTo` returned (mercurius registered later).
   */
  get registeredStack(): readonly MiddlewareStep[] {
    const installed = this.#installed
    if (installed === undefined) return []
    return this.getMiddlewareStack().filter((s) => installed.has(s.name))
  }

  /** Every violation of the profile by a request with these facts, as messages. */
  validateRequestContext(facts: RequestContextFacts): string[] {
    return this.checkRequestContext(facts).map((v) => v.message)
  }

  /** {@link validateRequestContext}, with each violation's setting, code and status. */
  checkRequestContext(facts: RequestContextFacts): ProfileViolation[] {
    const p = this.profile
    const out: ProfileViolation[] = []
    if (p.tlsRequired && !facts.isTls) {
      out.push({
        setting: 'tlsRequired',
        code: TlsRequiredError.code,
        statusCode: 426,
        message: `Profile ${p.name} requires TLS ${p.minTlsVersion} or later; the request is plain HTTP`,
      })
    }
    if (
      facts.isTls &&
      facts.tlsVersion !== undefined &&
      !tlsVersionAtLeast(facts.tlsVersion, p.minTlsVersion)
    ) {
      out.push({
        setting: 'minTlsVersion',
        code: TlsRequiredError.code,
        statusCode: 426,
        message: `Profile ${p.name} requires TLS ${p.minTlsVersion} or later; the request negotiated an older version`,
      })
    }
    if (p.mtlsRequired && !facts.hasClientCert) {
      out.push({
        setting: 'mtlsRequired',
        code: ClientCertificateRequiredError.code,
        statusCode: 403,
        message: `Profile ${p.name} requires a client certificate (mTLS); none was presented`,
      })
    }
    if (p.authRequired && !facts.isAuthenticated) {
      out.push({
        setting: 'authRequired',
        code: AuthenticationRequiredError.code,
        statusCode: 401,
        message: `Profile ${p.name} requires authentication; the request has no valid credentials`,
      })
    }
    return out
  }

  /**
   * `https` options this profile needs:
   * `Fastify({ https: { key, cert, ca, ...enforcer.serverOptions() } })`.
   * For mTLS the handshake asks for a certificate but does not fail without
   * one, so the gate can answer a clear 403 instead of a reset connection.
   */
  serverOptions(): ProfileServerOptions {
    const p = this.profile
    const out: ProfileServerOptions = { minVersion: tlsVersionName(p.minTlsVersion) }
    if (p.mtlsRequired) {
      out.requestCert = true
      out.rejectUnauthorized = false
    }
    return out
  }

  /**
   * What mercurius only takes at registration: validation rules, the parser's
   * token limit, the error formatter and persisted-operation settings. Spread
   * it into `app.register(mercurius, …)`: the work is then done once per
   * query (mercurius caches validation) and errors are formatted at the
   * source. Forgetting it is never a hole: `applyTo` enforces the limits in
   * mercurius's hooks and brings the errors mercurius's own formatter wrote
   * to the profile's `errorDetail` before they are sent.
   */
  mercuriusOptions(): Record<string, unknown> {
    const guard = this.#guardOptions()
    // Authenticated introspection depends on the request: the validation
    // rules (cached per query string) leave it to the preExecution hook.
    if (guard.introspection === 'authenticated') guard.introspection = 'enabled'
    return mercuriusGuardOptions(guard)
  }

  #guardOptions(): GraphqlGuardOptions {
    const config = this.getQueryValidatorConfig()
    config.errorDetail = this.profile.errorDetail
    if (this.#persisted !== undefined) {
      config.persistedOperations = this.#persisted
      config.persistedOperationsOnly = this.profile.persistedOperationsOnly
    }
    return config
  }

  /**
   * Registers every step of {@link getMiddlewareStack} on `app`, in order.
   * Call it once, before `listen`. mercurius may be registered before or
   * after it, on the app or in any plugin: the GraphQL steps attach to every
   * mercurius instance whenever it appears. Where one cannot (a route at
   * `graphqlPath` that no mercurius serves, a tracer with no mercurius),
   * `app.ready()` rejects with `ERR_PROFILE_GRAPHQL_UNGUARDED`.
   */
  async applyTo(app: FastifyInstance): Promise<void> {
    const p = this.profile
    const o = this.#options
    const installed = new Set<string>()
    this.#installed = installed
    await ensureErrorReply(app)
    if (!app.hasRequestDecorator('auth')) app.decorateRequest('auth', null)

    if (p.authRequired && o.authenticate === undefined) {
      app.log.error(
        { profile: p.name },
        'ProfileEnforcer: authRequired is set and no authenticate() was given; every request will be refused with 401',
      )
    }

    for (const step of this.getMiddlewareStack()) {
      if (await this.#install(step, app)) installed.add(step.name)
    }
  }

  async #install(step: MiddlewareStep, app: FastifyInstance): Promise<boolean> {
    const p = this.profile
    const o = this.#options
    switch (step.name) {
      case 'tlsGate': {
        const trusted = this.#trusted
        app.addHook('onRequest', (request, reply, done) => {
          if (isTlsRequest(request, p.minTlsVersion, trusted)) return done()
          this.#refuse(request, reply, new TlsRequiredError(p.minTlsVersion))
        })
        return true
      }
      case 'mtlsGate': {
        const trusted = this.#trusted
        const header = o.clientCertHeader as ClientCertHeader | undefined
        app.addHook('onRequest', (request, reply, done) => {
          if (hasAuthorizedClientCert(request, trusted, header)) return done()
          this.#refuse(request, reply, new ClientCertificateRequiredError())
        })
        return true
      }
      case 'ipRateLimit':
        await app.register(rateLimit, this.getRateLimitConfig())
        return true
      case 'bodyLimit':
        await app.register(bodyLimit, this.getBodySizeConfig())
        return true
      case 'authentication':
        this.#installAuthentication(app)
        return true
      case 'principalRateLimit':
        this.#installPrincipalLimit(app)
        return true
      case 'graphqlGuards':
        this.#installGraphql(app)
        // Installed once a mercurius instance has the guards (see #attach).
        return false
      case 'errorMasking':
        await setErrorDetail(app, p.errorDetail)
        maskUnhandledErrors(app)
        return true
      case 'auditLog':
        this.#installAudit(app)
        return true
      case 'tracing':
        // Prepared with the GraphQL step; attached with the guards.
        return false
      default:
        throw new Error(`unknown step ${step.name}`)
    }
  }

  #refuse(request: FastifyRequest, reply: FastifyReply, error: { code: string } & Error): void {
    notesOf(request).code = error.code
    sendError(reply, error)
  }

  #installAuthentication(app: FastifyInstance): void {
    const p = this.profile
    const o = this.#options
    const authenticate = o.authenticate
    const challenge = o.authChallenge
    const scheme = challenge.split(' ')[0] ?? 'Bearer'
    const expiryMs = p.tokenExpiryMinutes * 60_000
    const toleranceMs = o.clockToleranceMs
    const clock = this.#clock
    const isPublic = this.#isPublic
    const hasPublic = o.publicPaths.length > 0

    app.addHook('onRequest', async (request, reply) => {
      request.auth = null
      // A public path still identifies its caller (introspection for
      // authenticated requests, per-principal limits); it only does not
      // require one, and an expired token there is just anonymous.
      const required = p.authRequired && !(hasPublic && isPublic(pathOf(request.url)))
      let auth: AuthContext | null | undefined = null
      if (authenticate !== undefined) auth = await authenticate(request)
      if (auth !== null && auth !== undefined) {
        const verdict =
          auth.kind === 'token' ? freshness(auth.issuedAt, clock(), expiryMs, toleranceMs) : 'fresh'
        if (verdict === 'fresh') {
          request.auth = auth
          return
        }
        if (!required) return
        const error =
          verdict === 'future' ? new TokenNotYetValidError(scheme) : new TokenExpiredError(scheme)
        return this.#refuse(request, reply, error)
      }
      if (required) this.#refuse(request, reply, new AuthenticationRequiredError(challenge))
    })
  }

  #principalLimiter: RateLimiter<FastifyRequest> | undefined
  #tierSets = new Map<string, PolicySet>()

  #principalSet(request: FastifyRequest): { key: string; set: PolicySet } {
    const limiter = this.#principalLimiter!
    // `?? null`: a route declared before applyTo (mercurius's) may not carry
    // the request decorator's default.
    const auth = request.auth ?? null
    // Anonymous callers are keyed as the IP limiter keys them (IPv6 by /64):
    // per address, one client holding a /64 would have 2^64 budgets.
    const key =
      auth === null
        ? `ip:${ipKey(request.ip, limiter.config.ipv6Subnet)}`
        : `principal:${auth.principal}`
    const tier = auth?.tier
    if (tier === undefined) return { key, set: limiter.globalPolicies }
    let set = this.#tierSets.get(tier)
    if (set === undefined) {
      const quota = this.#options.tiers[tier] as Partial<Quota> | undefined
      set =
        quota === undefined ? limiter.globalPolicies : limiter.policiesFor(quota, `tier:${tier}`)
      this.#tierSets.set(tier, set)
    }
    return { key, set }
  }

  /** Charges `weight` units to the request's principal; rejects with 429 when over. */
  async #chargePrincipal(request: FastifyRequest, weight: number): Promise<void> {
    const limiter = this.#principalLimiter!
    const { key, set } = this.#principalSet(request)
    const info = await limiter.consume(key, set, weight)
    if (info !== undefined && !info.allowed) {
      throw new RateLimitExceededError(info, limiter.headersFor(info, set))
    }
  }

  /**
   * The rest of a GraphQL operation's cost: every request paid one unit up
   * front, and a batch one per item (so an operation refused by syntax,
   * validation or a guard is never free); an operation it runs pays its
   * cost less one of those units.
   */
  async #chargeCost(request: FastifyRequest, cost: number): Promise<void> {
    let weight = Math.max(1, Math.ceil(cost))
    const prepaid = this.#prepaid.get(request) ?? 0
    if (prepaid > 0) {
      this.#prepaid.set(request, prepaid - 1)
      weight -= 1
    }
    if (weight > 0) await this.#chargePrincipal(request, weight)
  }

  /** The units a request paid up front, noted for {@link #chargeCost}. */
  #notePrepaid(request: FastifyRequest, units: number): void {
    if (this.profile.costRateLimit) {
      this.#prepaid.set(request, (this.#prepaid.get(request) ?? 0) + units)
    }
  }

  #installPrincipalLimit(app: FastifyInstance): void {
    this.#principalLimiter = new RateLimiter<FastifyRequest>(
      this.#limiterConfig(this.profile.principalRateLimit),
      app.log,
    )
    app.addHook('onClose', async () => this.#principalLimiter?.close())
    app.addHook('onRequest', async (request, reply) => {
      // Every request pays one unit here, before anything parses it;
      // GraphQL operations pay the rest of their cost in preExecution.
      try {
        await this.#chargePrincipal(request, 1)
      } catch (err) {
        return this.#refuse(request, reply, err as Error & { code: string })
      }
      this.#notePrepaid(request, 1)
    })
  }

  #installGraphql(app: FastifyInstance): void {
    const p = this.profile
    const o = this.#options
    const graphqlPath = o.graphqlPath
    const maxBatch = p.maxBatchSize
    // mercurius runs every item of a batch through the whole pipeline and
    // sets no length limit of its own: the count is ours to bound. Here,
    // before the items run, on any route mercurius serves (whatever its path
    // or prefix); the preParsing hook of #attach holds it for app.graphql().
    // Each item is an operation: the request paid one unit on arrival, the
    // other items pay theirs here, refused or not.
    app.addHook('preValidation', async (request, reply) => {
      const body = request.body
      if (!Array.isArray(body) || !isMercuriusRoute(request)) return
      if (body.length > maxBatch) return this.#refuse(request, reply, new BatchTooLargeError())
      if (body.length < 2) return
      try {
        await this.#chargePrincipal(request, body.length - 1)
      } catch (err) {
        return this.#refuse(request, reply, err as Error & { code: string })
      }
      this.#notePrepaid(request, body.length - 1)
    })
    const guard = parseGuardOptions('ProfileEnforcer', {
      ...this.#guardOptions(),
      isAuthenticated: (request: FastifyRequest) => (request.auth ?? null) !== null,
      ...(p.costRateLimit
        ? { chargeCost: (request: FastifyRequest, cost: number) => this.#chargeCost(request, cost) }
        : {}),
    })
    // Without the mercuriusOptions() spread mercurius's own formatter answers
    // (resolver messages, "Did you mean …?"): bring what it wrote to the
    // profile's errorDetail before it is serialized. Only on mercurius's
    // routes: an app's own `{ errors: [...] }` (JSON:API) is not GraphQL's.
    // A failure on the route (authenticate() or another hook throwing) is
    // answered by mercurius's error handler, which onError hooks precede:
    // noted here, its text is masked like any other failure's.
    const failed = new WeakSet<FastifyRequest>()
    app.addHook('onError', (request, _reply, error, done) => {
      if (isMercuriusRoute(request) && isFailure(error)) failed.add(request)
      done()
    })
    app.addHook('preSerialization', (request, _reply, payload, done) => {
      if (!isMercuriusRoute(request)) return done(null, payload)
      done(null, relevelResponse(payload, guard, String(request.id), failed.has(request)))
    })
    const tracer =
      o.tracer === false
        ? undefined
        : o.tracer instanceof GraphQLTracer
          ? o.tracer
          : new GraphQLTracer()
    if (tracer !== undefined) prepareTracing(app, tracer, 'ProfileEnforcer')

    // Subscriptions over WebSocket: checked before mercurius parses them,
    // their errors at the profile's level, each one paying a unit.
    const guarded = new WeakSet<object>()
    const socketRules = {
      options: guard,
      charge: (request: FastifyRequest) => this.#chargePrincipal(request, 1),
    }
    guardWebSockets(app, 'ProfileEnforcer', (graphql) =>
      typeof graphql === 'function' && guarded.has(graphql) ? socketRules : undefined,
    )

    const watch = watchMercurius(app, (instance, graphql) => {
      installGraphqlGuards('ProfileEnforcer', graphql, guard)
      guarded.add(graphql)
      this.#attach(graphql as MercuriusHooks)
      this.#installed?.add('graphqlGuards')
      if (tracer !== undefined) {
        attachTracing(instance, graphql, tracer)
        this.#installed?.add('tracing')
      }
    })

    app.addHook('onReady', async () => {
      watch.revisit()
      if (watch.found > 0) return
      const route = [graphqlPath, `${graphqlPath}/`].some(
        (url) => app.hasRoute({ method: 'POST', url }) || app.hasRoute({ method: 'GET', url }),
      )
      if (route && watch.outside > 0) {
        throw new GraphqlUnguardedError(
          'graphqlGuards',
          `ProfileEnforcer: mercurius serves ${graphqlPath} from outside the instance given to applyTo (an encapsulated plugin), so none of profile ${p.name}'s steps (authentication, rate limits, GraphQL limits, error masking) reach it. Wrap the plugin that calls applyTo with fastify-plugin, or call applyTo on the root instance, or register mercurius inside that plugin.`,
        )
      }
      if (route) {
        throw new GraphqlUnguardedError(
          'graphqlGuards',
          `ProfileEnforcer: a route serves ${graphqlPath}, but no mercurius instance serves it, so profile ${p.name}'s GraphQL limits cannot be installed there. Serve GraphQL with mercurius (registered before or after applyTo); for another GraphQL server, apply the guards yourself and set graphqlPath to the path mercurius serves (or one you do not serve).`,
        )
      }
      if (tracer !== undefined) {
        throw new GraphqlUnguardedError(
          'tracing',
          'ProfileEnforcer: the tracer option is set but no mercurius instance was registered to trace. Register mercurius (before or after applyTo), or remove the tracer option.',
        )
      }
    })
  }

  /** The enforcer's own hooks on one mercurius instance, besides the guards. */
  #attach(graphql: MercuriusHooks): void {
    const p = this.profile
    const maxBatch = p.maxBatchSize
    const runtime = graphqlRuntime('ProfileEnforcer')
    graphql.addHook('preParsing', async (_schema, _source, context) => {
      const count = context.operationsCount
      if (count !== undefined && count > maxBatch) {
        context.reply?.code(400)
        throw new GraphqlRejectedError([
          rejection(runtime, BatchTooLargeError.code, new BatchTooLargeError().message),
        ])
      }
    })
    const fieldAccess = p.auditFieldAccess
    // The audit step wants each operation's type and name (never its
    // variables) and, with auditFieldAccess, the fields it selected.
    graphql.addHook('preExecution', async (schema, document, context) => {
      const request = context.reply?.request
      if (request === undefined) return
      const notes = notesOf(request)
      const operations: OperationDefinitionNode[] = []
      for (const def of document.definitions) {
        if (def.kind === 'OperationDefinition') {
          operations.push(def)
          notes.operations.push({ type: def.operation, name: def.name?.value ?? null })
        }
      }
      if (!fieldAccess) return
      const name = requestedOperationName(context)
      const executed =
        operations.length === 1 || name === undefined
          ? operations
          : operations.filter((op) => op.name?.value === name)
      notes.fields ??= new Set()
      for (const field of selectedFields(schema, document, executed)) notes.fields.add(field)
    })
  }

  #installAudit(app: FastifyInstance): void {
    const p = this.profile
    const sink = this.#options.audit ?? fastifyLogAuditSink
    const clock = this.#clock
    const fieldAccess = p.auditFieldAccess
    app.addHook('onSend', async (request, reply, payload) => {
      if (reply.statusCode >= 400) {
        const notes = notesOf(request)
        if (notes.code === null) notes.code = codeInBody(payload)
      }
      return payload
    })
    app.addHook('onResponse', async (request, reply) => {
      const notes = (request as Noted)[kAudit]
      const operations = notes?.operations ?? []
      const code = notes?.code ?? null
      const { category, event } = classify(reply.statusCode, code, operations)
      if (!isAudited(p.auditLevel, category, event)) return
      const auth = request.auth ?? null
      const record: AuditEvent = {
        category,
        event,
        outcome: reply.statusCode >= 500 ? 'error' : reply.statusCode >= 400 ? 'denied' : 'allowed',
        time: new Date(clock()).toISOString(),
        profile: p.name,
        requestId: String(request.id),
        method: request.method,
        path: pathOf(request.url),
        statusCode: reply.statusCode,
        ip: request.ip,
        principal: auth?.principal ?? null,
        authKind: auth?.kind ?? null,
        code,
        operations,
        ...(fieldAccess && operations.length > 0 ? { fields: [...(notes?.fields ?? [])] } : {}),
      }
      try {
        await sink(record, request)
      } catch (err) {
        request.log.error({ err: describeError(err) }, 'audit sink failed')
      }
    })
  }
}
