/**
 * The per-principal budget: the `principalRateLimit` step builds its
 * limiter; the GraphQL step charges batches, operation costs and
 * subscriptions against the same one. With that step switched off there is
 * no limiter and every charge is free.
 */
import type { FastifyRequest } from 'fastify'
import { type PolicySet, RateLimitExceededError, RateLimiter } from '../../http/index.js'
import { ipKey } from '../../internal/ip-address.js'
import type { Logger } from '../../internal/logger.js'
import type { Quota } from '../profile.js'
import type { LimiterConfig } from './step.js'

/** The `tiers` option, as parsed: per-tier overrides of the principal quota. */
type Tiers = Readonly<Record<string, { max?: number | undefined; windowMs?: number | undefined }>>

export class PrincipalBudget {
  #limiter: RateLimiter<FastifyRequest> | undefined
  readonly #tierSets = new Map<string, PolicySet>()
  readonly #tiers: Tiers
  readonly #costRateLimit: boolean
  /**
   * Units a request paid up front (one, or one per item of a batch), each
   * to be deducted from the cost of an operation it runs.
   */
  readonly #prepaid = new WeakMap<FastifyRequest, number>()

  constructor(tiers: Tiers, costRateLimit: boolean) {
    this.#tiers = tiers
    this.#costRateLimit = costRateLimit
  }

  /** Builds the limiter (the `principalRateLimit` step). */
  start(config: LimiterConfig, log: Logger): RateLimiter<FastifyRequest> {
    this.#limiter = new RateLimiter<FastifyRequest>(config, log)
    this.#tierSets.clear()
    return this.#limiter
  }

  #setOf(limiter: RateLimiter<FastifyRequest>, request: FastifyRequest) {
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
      const quota = this.#tiers[tier] as Partial<Quota> | undefined
      set =
        quota === undefined ? limiter.globalPolicies : limiter.policiesFor(quota, `tier:${tier}`)
      this.#tierSets.set(tier, set)
    }
    return { key, set }
  }

  /** Charges `weight` units to the request's principal; rejects with 429 when over. */
  async charge(request: FastifyRequest, weight: number): Promise<void> {
    const limiter = this.#limiter
    if (limiter === undefined) return
    const { key, set } = this.#setOf(limiter, request)
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
  async chargeCost(request: FastifyRequest, cost: number): Promise<void> {
    let weight = Math.max(1, Math.ceil(cost))
    const prepaid = this.#prepaid.get(request) ?? 0
    if (prepaid > 0) {
      this.#prepaid.set(request, prepaid - 1)
      weight -= 1
    }
    if (weight > 0) await this.charge(request, weight)
  }

  /** The units a request paid up front, noted for {@link chargeCost}. */
  notePrepaid(request: FastifyRequest, units: number): void {
    if (this.#costRateLimit) {
      this.#prepaid.set(request, (this.#prepaid.get(request) ?? 0) + units)
    }
  }
}
