/**
 * `ProfileEnforcer`: turns a {@link SecurityProfile} into registered Fastify
 * plugins and hooks, in a fixed order, so that every setting of the profile
 * is enforced by code that runs on every request — never just documented.
 *
 * ```ts
 * const enforcer = new ProfileEnforcer(REGULATED, { authenticate })
 * const app = Fastify({ https: { key, cert, ...enforcer.serverOptions() } })
 * await app.register(mercurius, { schema, resolvers, ...enforcer.mercuriusOptions() })
 * await enforcer.applyTo(app)
 * ```
 */
import type { SecureVersion } from 'node:tls'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { DocumentNode } from 'graphql'
import { z } from 'zod'
import { ConfigError } from '../errors.js'
import {
  type ComplexityOptions,
  GraphQLTracer,
  type GraphqlGuardOptions,
  graphqlGuards,
  graphqlTracing,
  mercuriusGuardOptions,
  PersistedOperations,
} from '../graphql/index.js'
import { bodyLimit } from '../http/body-limit/fastify.js'
import { RateLimitExceededError } from '../http/errors.js'
import { compilePathMatcher, PathPatternSchema, pathOf } from '../http/paths.js'
import { rateLimit } from '../http/rate-limit/fastify.js'
import { type PolicySet, RateLimiter } from '../http/rate-limit/limiter.js'
import type { RateLimitStore } from '../http/rate-limit/store.js'
import { describeError } from '../internal/logger.js'
import { parseOptions } from '../internal/options.js'
import {
  ensureErrorReply,
  maskUnhandledErrors,
  sendError,
  setErrorDetail,
} from '../internal/reply/fastify.js'
import {
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
  TlsRequiredError,
  TokenExpiredError,
} from './errors.js'
import {
  type ClientCertHeader,
  compilePeerTrust,
  hasAuthorizedClientCert,
  isTlsRequest,
  type PeerTrust,
  type TrustProxy,
  tlsVersionName,
} from './gates.js'
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
    /** Resolves `request.auth`. Without it, `authRequired` refuses every request (401). */
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
    /** Header a trusted proxy sets after verifying a client certificate. */
    clientCertHeader: z
      .object({ name: z.string().min(1).toLowerCase(), value: z.string().min(1) })
      .strict()
      .optional(),
    /** Paths that skip authentication (health checks); gates and the IP limit still apply. */
    publicPaths: z.array(PathPatternSchema).default([]),
    /** The `WWW-Authenticate` challenge of a 401. @default 'Bearer realm="api"' */
    authChallenge: z.string().min(1).max(200).default('Bearer realm="api"'),
    /** Per-principal quotas by `request.auth.tier`; others get the profile's `principalRateLimit`. */
    tiers: z.record(z.string(), QuotaSchema.partial()).default({}),
    /** Manifest of persisted operations (sha256 hex → query); required by `persistedOperationsOnly`. */
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
    /** GraphQL cost model (field costs, list arguments). */
    complexity: z.custom<ComplexityOptions>((v) => typeof v === 'object' && v !== null).optional(),
    /** The GraphQL route's path, as given to mercurius. @default '/graphql' */
    graphqlPath: z.string().startsWith('/').default('/graphql'),
    /** Reveal limits in GraphQL rejection messages. @default false */
    revealLimits: z.boolean().default(false),
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
}

/** A setting a request context violates, with the status the enforcer answers. */
export interface ProfileViolation {
  readonly setting: 'tlsRequired' | 'mtlsRequired' | 'authRequired'
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
}
const kAudit = Symbol('fraiseql-security.audit')
type Noted = FastifyRequest & { [kAudit]?: AuditNotes }

function notesOf(request: FastifyRequest): AuditNotes {
  const r = request as Noted
  let notes = r[kAudit]
  if (notes === undefined) {
    notes = { operations: [], code: null }
    r[kAudit] = notes
  }
  return notes
}

/** The part of mercurius's `app.graphql` the enforcer uses. */
interface MercuriusHooks {
  addHook(
    name: 'preExecution',
    hook: (
      schema: unknown,
      document: DocumentNode,
      context: { reply: FastifyReply },
    ) => Promise<void>,
  ): void
}

export class ProfileEnforcer {
  readonly profile: SecurityProfile
  readonly #options: ResolvedOptions
  readonly #trusted: PeerTrust
  readonly #isPublic: (path: string) => boolean
  readonly #persisted: PersistedOperations | undefined
  #registered: MiddlewareStep[] | undefined

  constructor(profile: SecurityProfile, options: ProfileEnforcerOptions = {}) {
    this.profile = parseProfile(profile)
    this.#options = parseOptions('ProfileEnforcer', EnforcerOptionsSchema, options)
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
  getRateLimitConfig(): { max: number; windowMs: number; store?: RateLimitStore } {
    const { max, windowMs } = this.profile.rateLimit
    const store = this.#options.rateLimitStore
    return store === undefined ? { max, windowMs } : { max, windowMs, store }
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
    steps.push({ name: 'ipRateLimit', phase: 'onRequest', enforces: ['rateLimit'] })
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
    steps.push({ name: 'auditLog', phase: 'onResponse', enforces: ['auditLevel'] })
    if (this.#options.tracer !== false) {
      steps.push({ name: 'tracing', phase: 'preExecution', enforces: [] })
    }
    return steps
  }

  /** What the last `applyTo` actually registered, in order (for tests and diagnostics). */
  get registeredStack(): readonly MiddlewareStep[] {
    return this.#registered ?? []
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
   * it into `app.register(mercurius, …)`; `applyTo` enforces the limits again
   * in `preExecution`, so forgetting the spread is never a hole.
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
   * Call it once, after mercurius (if any) and before `listen`.
   */
  async applyTo(app: FastifyInstance): Promise<void> {
    const p = this.profile
    const o = this.#options
    const registered: MiddlewareStep[] = []
    const log = app.log
    await ensureErrorReply(app)
    if (!app.hasRequestDecorator('auth')) app.decorateRequest('auth', null)

    if (p.authRequired && o.authenticate === undefined) {
      log.error(
        { profile: p.name },
        'ProfileEnforcer: authRequired is set and no authenticate() was given; every request will be refused with 401',
      )
    }

    for (const step of this.getMiddlewareStack()) {
      const done = await this.#install(step, app)
      if (done) registered.push(step)
    }
    this.#registered = registered
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
        return this.#installGraphql(app)
      case 'errorMasking':
        await setErrorDetail(app, p.errorDetail)
        maskUnhandledErrors(app)
        return true
      case 'auditLog':
        this.#installAudit(app)
        return true
      case 'tracing': {
        if (!('graphql' in app)) return false
        const t = o.tracer
        await app.register(graphqlTracing, {
          tracer: t instanceof GraphQLTracer ? t : new GraphQLTracer(),
        })
        return true
      }
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
        if (auth.kind !== 'token' || isFresh(auth.issuedAt, expiryMs)) {
          request.auth = auth
          return
        }
        if (required) return this.#refuse(request, reply, new TokenExpiredError(scheme))
        return
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
    const key = auth === null ? `ip:${request.ip}` : `principal:${auth.principal}`
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

  #installPrincipalLimit(app: FastifyInstance): void {
    const { max, windowMs } = this.profile.principalRateLimit
    const store = this.#options.rateLimitStore
    this.#principalLimiter = new RateLimiter<FastifyRequest>(
      store === undefined ? { max, windowMs } : { max, windowMs, store },
      app.log,
    )
    app.addHook('onClose', async () => this.#principalLimiter?.close())
    const costCharged = this.profile.costRateLimit
    const graphqlPath = this.#options.graphqlPath
    app.addHook('onRequest', async (request, reply) => {
      // GraphQL operations are charged their cost in preExecution instead.
      if (costCharged && request.routeOptions.url === graphqlPath) return
      try {
        await this.#chargePrincipal(request, 1)
      } catch (err) {
        this.#refuse(request, reply, err as Error & { code: string })
      }
    })
  }

  #installGraphql(app: FastifyInstance): boolean {
    const p = this.profile
    const graphql = (app as { graphql?: MercuriusHooks }).graphql
    if (graphql === undefined) {
      app.log.warn(
        { profile: p.name },
        'ProfileEnforcer: mercurius is not registered before applyTo(); GraphQL guards not installed',
      )
      return false
    }
    const graphqlPath = this.#options.graphqlPath
    const maxBatch = p.maxBatchSize
    // mercurius runs every item of a batch through the whole pipeline and
    // sets no length limit of its own: the count is ours to bound.
    app.addHook('preValidation', (request, reply, done) => {
      const body = request.body
      if (
        Array.isArray(body) &&
        body.length > maxBatch &&
        request.routeOptions.url === graphqlPath
      ) {
        return this.#refuse(request, reply, new BatchTooLargeError())
      }
      done()
    })
    void app.register(graphqlGuards, {
      ...this.#guardOptions(),
      isAuthenticated: (request: FastifyRequest) => (request.auth ?? null) !== null,
      ...(p.costRateLimit
        ? {
            chargeCost: (request: FastifyRequest, cost: number) =>
              this.#chargePrincipal(request, Math.max(1, cost)),
          }
        : {}),
    })
    // The audit step wants each operation's type and name (never its variables).
    graphql.addHook('preExecution', async (_schema, document, context) => {
      const request = context.reply.request
      for (const def of document.definitions) {
        if (def.kind === 'OperationDefinition') {
          notesOf(request).operations.push({ type: def.operation, name: def.name?.value ?? null })
        }
      }
    })
    return true
  }

  #installAudit(app: FastifyInstance): void {
    const p = this.profile
    const sink = this.#options.audit ?? fastifyLogAuditSink
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
      if (!isAudited(p.auditLevel, category)) return
      const auth = request.auth ?? null
      try {
        await sink(
          {
            category,
            event,
            outcome:
              reply.statusCode >= 500 ? 'error' : reply.statusCode >= 400 ? 'denied' : 'allowed',
            time: new Date().toISOString(),
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
          },
          request,
        )
      } catch (err) {
        request.log.error({ err: describeError(err) }, 'audit sink failed')
      }
    })
  }
}

function isFresh(issuedAt: Date | number | undefined, maxAgeMs: number): boolean {
  const t = issuedAt instanceof Date ? issuedAt.getTime() : issuedAt
  if (t === undefined || !Number.isFinite(t)) return false
  const age = Date.now() - t
  return age <= maxAgeMs
}
