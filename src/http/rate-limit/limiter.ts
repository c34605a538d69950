/**
 * The framework-free rate limiter both adapters (Fastify plugin, Express-style
 * middleware) sit on: policy sets, the store call behind its circuit breaker,
 * the insurance fallback with its share of each quota, and the response headers.
 */

import type { SecurityError } from '../../errors.js'
import { type Clock, systemClock } from '../../internal/clock.js'
import { describeError, type Logger, stderrLogger } from '../../internal/logger.js'
import { parseOptions } from '../../internal/options.js'
import {
  type PolicyState,
  RateLimitExceededError,
  type RateLimitInfo,
  RateLimitUnavailableError,
} from '../errors.js'
import { compilePathMatcher, type PathMatcher, pathOf } from '../paths.js'
import { FALL_BACK, StoreCircuitBreaker, type StoreCircuitState } from './breaker.js'
import { compileIpList, ipKey } from './client-key.js'
import {
  type RateLimitConfig,
  RateLimitConfigSchema,
  type RateLimitRouteConfig,
  RateLimitRouteConfigSchema,
  type ResolvedRateLimitConfig,
} from './options.js'
import type { RateLimitPolicy } from './sliding-window.js'
import type { RateLimitStore } from './store.js'
import { MemoryStore } from './stores/memory.js'

/** A resolved set of policies with its pre-rendered `RateLimit-Policy` value. */
export interface PolicySet {
  readonly policies: readonly RateLimitPolicy[]
  /** Prefix of store keys, so a route's own policies never share counters with the global ones. */
  readonly scope: string
  readonly policyHeader: string
}

/** Renders a structured-field string (RFC 8941 §3.3.3); names are validated, so only quoting is needed. */
const sfString = (s: string) => `"${s}"`

function policySet(policies: readonly RateLimitPolicy[], scope: string): PolicySet {
  const policyHeader = policies
    .map((p) => `${sfString(p.name)};q=${p.max};w=${Math.max(1, Math.ceil(p.windowMs / 1000))}`)
    .join(', ')
  return { policies: Object.freeze([...policies]), scope, policyHeader }
}

/** Picks the state that decides: the longest wait among refusals, else the fewest remaining. */
export function summarize(states: readonly PolicyState[]): RateLimitInfo {
  let decisive: PolicyState | undefined
  let allowed = true
  for (const s of states) {
    if (!s.allowed) {
      if (allowed || decisive === undefined || s.retryAfterMs > decisive.retryAfterMs) decisive = s
      allowed = false
    } else if (allowed && (decisive === undefined || s.remaining < decisive.remaining)) {
      decisive = s
    }
  }
  const d = decisive!
  return {
    limit: d.limit,
    remaining: d.remaining,
    resetMs: d.resetMs,
    retryAfterMs: allowed ? 0 : d.retryAfterMs,
    allowed,
    policies: states,
  }
}

/** What an adapter does with a request, decided by {@link RateLimiter.check}. */
export type RateLimitOutcome =
  | { readonly action: 'skip' }
  | {
      readonly action: 'allow'
      readonly info: RateLimitInfo
      /** The policy set that decided; {@link RateLimiter.writeHeaders} renders its fields. */
      readonly set: PolicySet
    }
  | { readonly action: 'reject'; readonly error: SecurityError; readonly info?: RateLimitInfo }

const SKIP: RateLimitOutcome = Object.freeze({ action: 'skip' })

/** Where headers go: a Fastify reply fits as is. */
export interface HeaderTarget {
  header(name: string, value: string): unknown
}

type ConsumeArgs = { policies: readonly RateLimitPolicy[]; weight: number; now: number }

/**
 * @example
 * ```ts
 * const limiter = new RateLimiter({ max: 10, windowMs: 1000 })
 * const info = await limiter.consume('203.0.113.7', limiter.globalPolicies)
 * if (!info?.allowed) reject(info)
 * ```
 */
export class RateLimiter<Req = unknown> {
  readonly config: ResolvedRateLimitConfig
  readonly globalPolicies: PolicySet
  readonly isExemptPath: PathMatcher
  readonly clock: Clock
  readonly #store: RateLimitStore
  readonly #memory: MemoryStore | undefined
  readonly #insurance: MemoryStore
  readonly #breaker: StoreCircuitBreaker
  /** Each policy set's insurance quotas: `ceil(max / instances)`. */
  readonly #shares = new WeakMap<PolicySet, readonly RateLimitPolicy[]>()
  readonly #isAllowedIp: (ip: string) => boolean
  readonly #routeSets = new WeakMap<object, PolicySet>()
  // Hot-path copies of config fields, read once per request.
  readonly #hasExemptPaths: boolean
  readonly #keyGenerator: ((r: Req) => string | Promise<string>) | undefined
  readonly #ipv6Subnet: number
  readonly #standardHeaders: boolean
  readonly #legacyHeaders: boolean
  #logger: Logger

  constructor(options?: RateLimitConfig, logger?: Logger) {
    this.config = parseOptions('rateLimit', RateLimitConfigSchema, options)
    const c = this.config
    this.clock = c.clock ?? systemClock
    this.#logger = c.logger ?? logger ?? stderrLogger
    this.#store = c.store ?? new MemoryStore()
    this.#memory = this.#store instanceof MemoryStore ? this.#store : undefined
    this.#insurance = new MemoryStore()
    this.#breaker = new StoreCircuitBreaker({
      ...c.circuitBreaker,
      timeoutMs: c.storeTimeoutMs,
      retryIntervalMs: c.storeRetryIntervalMs,
      clock: this.clock,
      events: {
        failed: (err, reason) =>
          this.#logger.warn(
            {
              err: describeError(err),
              reason,
              store: storeName(this.#store),
              fallback: c.onStoreError,
            },
            'rate-limit store failed',
          ),
        opened: (details) =>
          this.#logger.warn(
            { ...details, store: storeName(this.#store), fallback: c.onStoreError },
            'rate-limit store circuit opened',
          ),
        closed: () =>
          this.#logger.warn({ store: storeName(this.#store) }, 'rate-limit store recovered'),
      },
    })
    this.isExemptPath = compilePathMatcher(c.exemptPaths)
    this.#hasExemptPaths = c.exemptPaths.length > 0
    this.#keyGenerator = c.keyGenerator as ((r: Req) => string | Promise<string>) | undefined
    this.#ipv6Subnet = c.ipv6Subnet
    this.#standardHeaders = c.standardHeaders
    this.#legacyHeaders = c.legacyHeaders
    this.#isAllowedIp = Array.isArray(c.allowList) ? compileIpList(c.allowList) : () => false
    this.globalPolicies = policySet(
      [{ name: 'default', max: c.max, windowMs: c.windowMs }, ...c.policies],
      '',
    )
  }

  /** Replaces the fallback logger (the Fastify adapter passes `app.log`). */
  useLogger(logger: Logger): void {
    if (this.config.logger === undefined) this.#logger = logger
  }

  /** Validates a route override; throws `ERR_CONFIG_INVALID` at registration. */
  static validateRouteConfig(value: unknown, route: string): void {
    if (value === false || value === undefined) return
    parseOptions(`rateLimit (route ${route})`, RateLimitRouteConfigSchema, value)
  }

  /** The policy set of a route override, resolved once per override object. */
  policiesFor(override: RateLimitRouteConfig | undefined, routeId: string): PolicySet {
    if (override === undefined) return this.globalPolicies
    let set = this.#routeSets.get(override)
    if (set === undefined) {
      const o = parseOptions(`rateLimit (route ${routeId})`, RateLimitRouteConfigSchema, override)
      set = policySet(
        [
          {
            name: 'default',
            max: o.max ?? this.config.max,
            windowMs: o.windowMs ?? this.config.windowMs,
          },
          ...(o.policies ?? this.config.policies),
        ],
        `${routeId}|`,
      )
      this.#routeSets.set(override, set)
    }
    return set
  }

  /**
   * The whole decision for one request, shared by every adapter: exemptions,
   * key, allow list, weight, the store call and the headers. Synchronous when
   * nothing on the way is asynchronous (memory store, sync key generator).
   */
  check(
    request: Req,
    ip: string,
    url: string | undefined,
    override: RateLimitRouteConfig | false | undefined,
    routeId: string,
  ): RateLimitOutcome | Promise<RateLimitOutcome> {
    if (override === false) return SKIP
    if (this.#hasExemptPaths && this.isExemptPath(pathOf(url))) return SKIP
    const gen = this.#keyGenerator
    const key = gen === undefined ? ipKey(ip, this.#ipv6Subnet) : gen(request)
    if (typeof key !== 'string')
      return key.then((k) => this.#checkKey(request, ip, k, override, routeId))
    return this.#checkKey(request, ip, key, override, routeId)
  }

  #checkKey(
    request: Req,
    ip: string,
    key: string,
    override: RateLimitRouteConfig | undefined,
    routeId: string,
  ): RateLimitOutcome | Promise<RateLimitOutcome> {
    const listed = this.isAllowListed(request, ip, key)
    if (listed === true) return SKIP
    if (listed !== false) {
      return listed.then((yes) => (yes ? SKIP : this.#charge(request, key, override, routeId)))
    }
    return this.#charge(request, key, override, routeId)
  }

  #charge(
    request: Req,
    key: string,
    override: RateLimitRouteConfig | undefined,
    routeId: string,
  ): RateLimitOutcome | Promise<RateLimitOutcome> {
    const set = this.policiesFor(override, routeId)
    const result = this.consume(key, set, this.weightOf(request))
    if (result instanceof Promise) {
      return result.then(
        (info) => this.#outcome(info, set),
        (error: SecurityError) => ({ action: 'reject', error }) as const,
      )
    }
    return this.#outcome(result, set)
  }

  #outcome(info: RateLimitInfo | undefined, set: PolicySet): RateLimitOutcome {
    if (info === undefined) return SKIP
    if (info.allowed) return { action: 'allow', info, set }
    return {
      action: 'reject',
      error: new RateLimitExceededError(info, this.headersFor(info, set)),
      info,
    }
  }

  /** Whether the allow list (IPs/CIDRs or predicate) exempts this request. */
  isAllowListed(request: Req, ip: string, key: string): boolean | Promise<boolean> {
    const list = this.config.allowList
    if (typeof list === 'function')
      return (list as (r: Req, k: string) => boolean | Promise<boolean>)(request, key)
    return this.#isAllowedIp(ip)
  }

  /** The request's weight (units), validated: a bad weight function must not disable limiting. */
  weightOf(request: Req): number {
    const w = this.config.weight
    if (w === undefined) return 1
    const value = (w as (r: Req) => number)(request)
    return Number.isInteger(value) && value >= 0 ? value : 1
  }

  /**
   * Checks and charges `key` against `set`. Synchronous with the memory
   * store (no promise per request); `undefined` when the store failed and
   * `onStoreError` is `allow`.
   */
  consume(
    key: string,
    set: PolicySet,
    weight = 1,
  ): RateLimitInfo | Promise<RateLimitInfo | undefined> {
    const request = { policies: set.policies, weight, now: this.clock() }
    const storeKey = set.scope === '' ? key : set.scope + key
    if (this.#memory !== undefined) return summarize(this.#memory.consumeSync(storeKey, request))
    if (!this.#breaker.admits(request.now)) return this.#fallback(storeKey, set, request)
    return this.#consumeShared(storeKey, set, request)
  }

  async #consumeShared(
    storeKey: string,
    set: PolicySet,
    request: ConsumeArgs,
  ): Promise<RateLimitInfo | undefined> {
    const states = await this.#breaker.call(this.#store.consume(storeKey, request))
    if (states === FALL_BACK) return this.#fallback(storeKey, set, request)
    const info = summarize(states)
    // The insurance store also counts what this process admits through the
    // shared store, so a fallback in the same window starts from its share
    // already spent, not from zero.
    if (info.allowed && this.config.onStoreError === 'insurance') {
      this.#insurance.consumeSync(storeKey, { ...request, policies: this.#shareOf(set) })
    }
    return info
  }

  /** The insurance quotas of a policy set: each policy's `ceil(max / instances)`. */
  #shareOf(set: PolicySet): readonly RateLimitPolicy[] {
    let share = this.#shares.get(set)
    if (share === undefined) {
      const n = this.config.instances
      share = Object.freeze(set.policies.map((p) => ({ ...p, max: Math.ceil(p.max / n) })))
      this.#shares.set(set, share)
    }
    return share
  }

  /** What `onStoreError` says to do while the shared store is unavailable. */
  #fallback(
    storeKey: string,
    set: PolicySet,
    request: ConsumeArgs,
  ): RateLimitInfo | Promise<RateLimitInfo | undefined> {
    switch (this.config.onStoreError) {
      case 'insurance':
        return summarize(
          this.#insurance.consumeSync(storeKey, { ...request, policies: this.#shareOf(set) }),
        )
      case 'allow':
        return Promise.resolve(undefined)
      case 'deny':
        return Promise.reject(new RateLimitUnavailableError())
    }
  }

  /**
   * Writes `RateLimit-Policy`, `RateLimit` and, optionally, the legacy
   * `X-RateLimit-*` fields through `set` (no intermediate object per request).
   */
  writeHeaders(info: RateLimitInfo, policies: PolicySet, target: HeaderTarget): void {
    if (this.#standardHeaders) {
      target.header('ratelimit-policy', policies.policyHeader)
      const states = info.policies
      let value = ''
      for (let i = 0; i < states.length; i++) {
        const s = states[i]!
        if (i > 0) value += ', '
        value += `${sfString(s.name)};r=${s.remaining};t=${Math.ceil(s.resetMs / 1000)}`
      }
      target.header('ratelimit', value)
    }
    if (this.#legacyHeaders) {
      target.header('x-ratelimit-limit', String(info.limit))
      target.header('x-ratelimit-remaining', String(info.remaining))
      target.header('x-ratelimit-reset', String(Math.ceil(info.resetMs / 1000)))
    }
  }

  /** The same fields as an object (for the 429 answer). */
  headersFor(info: RateLimitInfo, policies: PolicySet): Record<string, string> {
    const headers: Record<string, string> = {}
    this.writeHeaders(info, policies, {
      header: (name, value) => {
        headers[name] = value
      },
    })
    return headers
  }

  /** Whether the shared store's circuit is open or half-open (requests decided locally). */
  get degraded(): boolean {
    return this.#breaker.state !== 'closed'
  }

  /** The shared store's circuit: `closed` (in use), `open` (bypassed), `half-open` (one probe out). */
  get storeCircuit(): StoreCircuitState {
    return this.#breaker.state
  }

  async close(): Promise<void> {
    await this.#insurance.close()
    if (this.config.store === undefined) await this.#store.close?.()
  }
}

function storeName(store: RateLimitStore): string {
  return store.constructor?.name ?? 'store'
}
