/**
 * The shape of one enforcer step. `ProfileEnforcer` keeps one ordered array
 * of these (registry.ts): `getMiddlewareStack()` lists it, `applyTo()`
 * installs it, and the test that every profile setting is enforced reads it,
 * so the three can never disagree. Adding a profile setting is: the schema,
 * the presets, one step file here, its test, its line in docs/profiles.md.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type {
  GraphQLTracer,
  GraphqlGuardOptions,
  PersistedOperations,
} from '../../graphql/index.js'
import type { RateLimitStore } from '../../http/index.js'
import type { Clock } from '../../internal/clock.js'
import type { PeerTrust } from '../gates.js'
import type { GraphqlRoutes } from '../graphql-routes.js'
import type { ResolvedEnforcerOptions, StepName } from '../options.js'
import type { Quota, SecurityProfile } from '../profile.js'
import type { PrincipalBudget } from './principal-budget.js'

/** A profile field a step can enforce (every field but the profile's name). */
export type ProfileSetting = Exclude<keyof SecurityProfile, 'name'>

/** The options of the rate-limit plugin built for one quota. */
export interface LimiterConfig {
  max: number
  windowMs: number
  store?: RateLimitStore
  clock?: Clock
}

/** What a step may use of the enforcer that installs it. */
export interface StepContext {
  readonly profile: SecurityProfile
  readonly options: ResolvedEnforcerOptions
  readonly clock: Clock
  readonly trusted: PeerTrust
  readonly isPublic: (path: string) => boolean
  readonly persisted: PersistedOperations | undefined
  /** The tracer of the `tracer` option, built once; `undefined` when off. */
  readonly tracer: GraphQLTracer | undefined
  /** The routes serving graphql-yoga or Apollo Server, and the paths the enforcer's plugins claimed. */
  readonly routes: GraphqlRoutes
  /** The per-principal budget the rate-limit, GraphQL and cost steps share. */
  readonly budget: PrincipalBudget
  /**
   * Answers a request with `error` (through the application's error handler
   * if it set one) and notes its code for the audit record. An async hook
   * returns the promise, so nothing runs after it until the answer is out.
   */
  refuse(
    request: FastifyRequest,
    reply: FastifyReply,
    error: Error & { code: string },
  ): Promise<void>
  limiterConfig(quota: Quota): LimiterConfig
  /** The GraphQL guard options of the profile (limits, errorDetail, persisted operations). */
  guardOptions(): GraphqlGuardOptions
  /** Marks a step as installed after `applyTo` returned (GraphQL steps attach later). */
  installed(name: StepName): void
}

/** One protection of a profile: what it enforces, when it runs, how it installs. */
export interface EnforcerStep {
  readonly name: StepName
  /** Where it runs: a Fastify hook name, a mercurius hook, or `errorHandler`. */
  readonly phase: string
  /** The profile settings this step enforces. */
  readonly enforces: readonly ProfileSetting[]
  /** Whether the profile (and options) call for this step at all. */
  enabled(profile: SecurityProfile, options: ResolvedEnforcerOptions): boolean
  /**
   * Registers the step on `app`. Resolves `true` when it is installed now,
   * `false` when it attaches later (and calls `context.installed(name)` then).
   */
  install(context: StepContext, app: FastifyInstance): boolean | Promise<boolean>
}
