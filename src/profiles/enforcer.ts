/**
 * `ProfileEnforcer`: turns a {@link SecurityProfile} into registered Fastify
 * plugins and hooks, in a fixed order, so that every setting of the profile
 * is enforced by code that runs on every request — never just documented.
 * The steps themselves are in steps/, one file each, listed once in
 * steps/registry.ts.
 */
import type { SecureVersion } from 'node:tls'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ConfigError } from '../errors.js'
import {
  GraphQLTracer,
  type GraphqlGuardOptions,
  mercuriusGuardOptions,
  PersistedOperations,
} from '../graphql/index.js'
import type { RateLimitStore } from '../http/index.js'
import { type Clock, systemClock } from '../internal/clock.js'
import { parseOptions } from '../internal/options.js'
import { compilePathMatcher } from '../internal/path-matcher.js'
import { ensureErrorReply, sendError } from '../internal/reply/fastify.js'
import {
  AuthenticationRequiredError,
  ClientCertificateRequiredError,
  TlsRequiredError,
} from './errors.js'
import {
  checkTrustProxyAgrees,
  fastifyPeerTrust,
  type TrustProxy,
  tlsVersionAtLeast,
  tlsVersionName,
} from './gates.js'
import { GraphqlRoutes } from './graphql-routes.js'
import {
  type ProfileEnforcerOptions,
  ProfileEnforcerOptionsSchema,
  type ResolvedEnforcerOptions,
  type StepName,
} from './options.js'
import { parseProfile, type SecurityProfile } from './profile.js'
import { notesOf } from './steps/audit-notes.js'
import { PrincipalBudget } from './steps/principal-budget.js'
import { STEPS } from './steps/registry.js'
import {
  apolloPluginFor,
  type ProfileApolloPlugin,
  type ProfileYogaPlugin,
  yogaPluginFor,
} from './steps/server-plugins.js'
import type { EnforcerStep, LimiterConfig, StepContext } from './steps/step.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the profile's authentication step; `null` when unauthenticated. */
    auth: import('./options.js').AuthContext | null
  }
}

export type { AuthContext, Authenticate, ProfileEnforcerOptions } from './options.js'

/** One step of what {@link ProfileEnforcer.applyTo} registers. */
export interface MiddlewareStep {
  /** Stable step name, e.g. `tlsGate`. */
  readonly name: string
  /** Where it runs: a Fastify hook name, a mercurius hook, or `errorHandler`. */
  readonly phase: string
  /** The profile settings this step enforces. */
  readonly enforces: readonly string[]
  /**
   * Present, and `false`, only on a step switched off with
   * `steps: { <name>: { enabled: false } }`: listed so the gap is visible,
   * never registered by `applyTo`.
   */
  readonly enabled?: false
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

/** Environments where `errorDetail: 'full'` may be used. */
const DEVELOPMENT = new Set(['development', 'test'])

/**
 * Enforces a {@link SecurityProfile} on a Fastify app: TLS and mTLS gates,
 * IP and per-principal rate limits, the body limit, authentication, the
 * GraphQL guards, error masking, audit and (optionally) tracing, each a step
 * of {@link getMiddlewareStack}. mercurius may be registered before or after
 * `applyTo`: the GraphQL steps attach to it whenever it appears.
 *
 * Every step the profile calls for is on; one is switched off only by
 * name, with `steps: { <name>: { enabled: false } }`, and stays listed
 * (`enabled: false`) so the gap shows.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import mercurius from 'mercurius'
 * import { ProfileEnforcer, REGULATED } from 'fraiseql-security/profiles'
 *
 * const enforcer = new ProfileEnforcer(REGULATED, {
 *   authenticate: async (request) => verifyToken(request.headers.authorization),
 *   // The load balancer already bounds bodies at 256 KiB.
 *   steps: { bodyLimit: { enabled: false } },
 * })
 * // Behind a proxy, Fastify's own trustProxy is the one setting the gates read.
 * const app = Fastify({ https: { key, cert, ...enforcer.serverOptions() }, trustProxy: '10.0.0.0/8' })
 * await enforcer.applyTo(app)
 * await app.register(mercurius, { schema, resolvers, ...enforcer.mercuriusOptions() })
 * ```
 */
export class ProfileEnforcer {
  readonly profile: SecurityProfile
  readonly #options: ResolvedEnforcerOptions
  readonly #persisted: PersistedOperations | undefined
  readonly #context: StepContext
  /** Names of the steps installed so far (GraphQL ones may come after `applyTo`). */
  #installed: Set<string> | undefined

  constructor(profile: SecurityProfile, options: ProfileEnforcerOptions = {}) {
    this.profile = parseProfile(profile)
    const o = parseOptions('ProfileEnforcer', ProfileEnforcerOptionsSchema, options)
    this.#options = o
    const environment = o.environment ?? process.env.NODE_ENV
    if (this.profile.errorDetail === 'full' && !DEVELOPMENT.has(environment ?? '')) {
      throw new ConfigError('ProfileEnforcer', [
        {
          path: ['errorDetail'],
          message:
            "'full' sends internal error messages to clients: development only (set environment, or NODE_ENV, to 'development' or 'test')",
        },
      ])
    }
    const manifest = o.persistedOperations
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
    if (o.tracer !== false && this.#switchedOff('graphqlGuards') && !this.#switchedOff('tracing')) {
      throw new ConfigError('ProfileEnforcer', [
        {
          path: ['steps', 'graphqlGuards'],
          message:
            'tracing attaches to the mercurius instances the GraphQL guards hold: with graphqlGuards off, remove the tracer option or switch tracing off too',
        },
      ])
    }
    this.#context = this.#makeContext(o)
  }

  #makeContext(o: ResolvedEnforcerOptions): StepContext {
    const profile = this.profile
    const clock = (o.clock as Clock | undefined) ?? systemClock
    const tracer =
      o.tracer === false || this.#switchedOff('tracing')
        ? undefined
        : o.tracer instanceof GraphQLTracer
          ? o.tracer
          : new GraphQLTracer()
    return {
      profile,
      options: o,
      clock,
      trusted: fastifyPeerTrust,
      isPublic: compilePathMatcher(o.publicPaths),
      persisted: this.#persisted,
      tracer,
      routes: new GraphqlRoutes(),
      budget: new PrincipalBudget(o.tiers, profile.costRateLimit),
      refuse: (request: FastifyRequest, reply: FastifyReply, error: Error & { code: string }) => {
        notesOf(request).code = error.code
        return sendError(reply, error)
      },
      limiterConfig: (quota) => this.#limiterConfig(quota),
      guardOptions: () => this.#guardOptions(),
      installed: (name: StepName) => {
        this.#installed?.add(name)
      },
    }
  }

  #switchedOff(name: StepName): boolean {
    return this.#options.steps[name]?.enabled === false
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

  #limiterConfig({ max, windowMs }: { max: number; windowMs: number }): LimiterConfig {
    const out: LimiterConfig = { max, windowMs }
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

  /** The steps this profile calls for, in order. */
  #steps(): EnforcerStep[] {
    return STEPS.filter((step) => step.enabled(this.profile, this.#options))
  }

  /**
   * The ordered steps `applyTo` registers for this profile; a step switched
   * off with `steps.<name>.enabled: false` is listed with `enabled: false`.
   */
  getMiddlewareStack(): MiddlewareStep[] {
    return this.#steps().map((step) => {
      const out = { name: step.name, phase: step.phase, enforces: [...step.enforces] }
      return this.#switchedOff(step.name) ? { ...out, enabled: false as const } : out
    })
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

  /**
   * The profile's GraphQL settings as a graphql-yoga plugin, for yoga on a
   * Fastify route of the app given to {@link applyTo}: every limit of
   * {@link getQueryValidatorConfig}, introspection for `request.auth`,
   * persisted-only, cost charged to the principal, the audit's operations
   * and fields, errors at the profile's `errorDetail`, and the tracer. It
   * guards the path yoga serves (`graphqlEndpoint`); `app.ready()` rejects
   * with `ERR_PROFILE_GRAPHQL_UNGUARDED` while a yoga route is left without it.
   *
   * @example
   * ```ts
   * const yoga = createYoga({ schema, plugins: [enforcer.graphqlYogaPlugin()] })
   * await enforcer.applyTo(app)
   * app.route({
   *   url: yoga.graphqlEndpoint,
   *   method: ['GET', 'POST', 'OPTIONS'],
   *   handler: (req, reply) => yoga.handleNodeRequestAndResponse(req, reply, { req, reply }),
   * })
   * ```
   */
  graphqlYogaPlugin(): ProfileYogaPlugin {
    return yogaPluginFor(this.#context, this.#context.routes)
  }

  /**
   * {@link graphqlYogaPlugin} for Apollo Server. Apollo does not know where
   * it is mounted: `path` is the Fastify path it serves (`fastifyApollo`'s
   * `path`), claimed once the server started. `app.ready()` rejects with
   * `ERR_PROFILE_GRAPHQL_UNGUARDED` while an Apollo route is left unclaimed.
   *
   * @example
   * ```ts
   * const apollo = new ApolloServer({ typeDefs, resolvers, plugins: [enforcer.apolloPlugin()] })
   * await apollo.start()
   * await enforcer.applyTo(app)
   * await app.register(fastifyApollo(apollo)) // serves /graphql
   * ```
   */
  apolloPlugin(options: { path?: string } = {}): ProfileApolloPlugin {
    const path = options.path ?? this.#options.graphqlPath
    if (typeof path !== 'string' || !path.startsWith('/')) {
      throw new ConfigError('ProfileEnforcer.apolloPlugin', [
        {
          path: ['path'],
          message: "must be the path Apollo Server is mounted at, e.g. '/graphql'",
        },
      ])
    }
    return apolloPluginFor(this.#context, this.#context.routes, path)
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
   * Registers every step of {@link getMiddlewareStack} on `app`, in order,
   * but those switched off (each named in a warning on `app.log`).
   * Call it once, before `listen`. mercurius may be registered before or
   * after it, on the app or in any plugin: the GraphQL steps attach to every
   * mercurius instance whenever it appears; graphql-yoga and Apollo Server
   * routes declared after it must carry {@link graphqlYogaPlugin} /
   * {@link apolloPlugin}. Where a step cannot be installed (a route at
   * `graphqlPath` that nothing of the enforcer serves, a yoga or Apollo
   * route at any path no plugin claimed, a tracer with no server),
   * `app.ready()` rejects with `ERR_PROFILE_GRAPHQL_UNGUARDED`.
   */
  async applyTo(app: FastifyInstance): Promise<void> {
    checkTrustProxyAgrees(this.#options.trustProxy as TrustProxy | undefined, app)
    const installed = new Set<string>()
    this.#installed = installed
    await ensureErrorReply(app)
    if (!app.hasRequestDecorator('auth')) app.decorateRequest('auth', null)
    for (const step of this.#steps()) {
      if (this.#switchedOff(step.name)) {
        app.log.warn(
          { profile: this.profile.name, step: step.name, enforces: step.enforces },
          'ProfileEnforcer: a step is switched off (steps.<name>.enabled: false); the settings it enforces are not enforced by this app',
        )
        continue
      }
      if (await step.install(this.#context, app)) installed.add(step.name)
    }
  }
}
