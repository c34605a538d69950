/**
 * The framework-free rate limiter both adapters (Fastify plugin, Express-style
 * middleware) sit on: policy sets, the store call behind its circuit breaker,
 * the insurance fallback with its share of each quota, and the response headers.
 */

import type { ServerResponse } from 'node:http'
import { finished } from 'node:stream'
import { ConfigError, type SecurityError } from '../../errors.js'
import { type Clock, systemClock } from '../../internal/clock.js'
import { compileIpList, ipKey } from '../../internal/ip-address.js'
import { describeError, type Logger, stderrLogger } from '../../internal/logger.js'
import { parseOptions } from '../../internal/options.js'
import { compilePathMatcher, type PathMatcher, pathOf } from '../../internal/path-matcher.js'
import {
  type PolicyState,
  RateLimitExceededError,
  type RateLimitInfo,
  RateLimitUnavailableError,
} from '../errors.js'
import { FALL_BACK, StoreCircuitBreaker, type StoreCircuitState } from './breaker.js'
import {
  MAX_QUOTA,
  RATE_LIMIT_ALIASES,
  type RateLimitConfig,
  RateLimitConfigSchema,
  type RateLimitErrorContext,
  type RateLimitRouteConfig,
  RateLimitRouteConfigSchema,
  type ResolvedRateLimitConfig,
} from './options.js'
import type { RateLimitPolicy } from './sliding-window.js'
import type { RateLimitStore, RefundRequest } from './store.js'
import { MemoryStore } from './stores/memory.js'

/** A resolved set of policies with its pre-rendered `RateLimit-Policy` value. */
export interface PolicySet {
  readonly policies: readonly RateLimitPolicy[]
  /** Prefix of store keys, so a route's own policies never share counters with the global ones. */
  readonly scope: string
  /** `RateLimit-Policy` as draft 8 and later write it: `"default";q=100;w=60`. */
  readonly policyHeader: string
  /** `RateLimit-Policy` as drafts 6 and 7 write it: `100;w=60`. */
  readonly unnamedPolicyHeader: string
  /**
   * Per policy, the start of its draft-8 `RateLimit` item (`"default";r=`),
   * rendered once per set so a request only appends its two numbers.
   */
  readonly remainingPrefixes: readonly string[]
}

/** Renders a structured-field string (RFC 8941 §3.3.3); names are validated, so only quoting is needed. */
const sfString = (s: string) => `"${s}"`

function policySet(policies: readonly RateLimitPolicy[], scope: string): PolicySet {
  const seconds = (p: RateLimitPolicy) => Math.max(1, Math.ceil(p.windowMs / 1000))
  const policyHeader = policies
    .map((p) => `${sfString(p.name)};q=${p.max};w=${seconds(p)}`)
    .join(', ')
  const unnamedPolicyHeader = policies.map((p) => `${p.max};w=${seconds(p)}`).join(', ')
  return {
    policies: Object.freeze([...policies]),
    scope,
    policyHeader,
    unnamedPolicyHeader,
    remainingPrefixes: Object.freeze(policies.map((p) => `${sfString(p.name)};r=`)),
  }
}

type KeyGenerator<Req> = (request: Req) => string | Promise<string>
type MaxOf<Req> = number | ((request: Req, key: string) => number | Promise<number>)

/** What one scope (global, a route, a group) charges: resolved once, at its first request. */
interface Plan<Req> {
  readonly scope: string
  readonly max: MaxOf<Req>
  readonly windowMs: number
  readonly extra: readonly RateLimitPolicy[]
  readonly keyGenerator: KeyGenerator<Req> | undefined
  /** The set when `max` is a number. */
  readonly fixed: PolicySet | undefined
  /** Sets by computed `max`, when `max` is a function (bounded, see {@link setFor}). */
  readonly byMax: Map<number, PolicySet>
}

function plan<Req>(
  scope: string,
  max: MaxOf<unknown> | MaxOf<never>,
  windowMs: number,
  extra: readonly RateLimitPolicy[],
  keyGenerator: KeyGenerator<Req> | undefined,
): Plan<Req> {
  const m = max as MaxOf<Req>
  return {
    scope,
    max: m,
    windowMs,
    extra,
    keyGenerator,
    fixed:
      typeof m === 'number'
        ? policySet([{ name: 'default', max: m, windowMs }, ...extra], scope)
        : undefined,
    byMax: new Map(),
  }
}

function fixedSet<Req>(p: Plan<Req>, component: string): PolicySet {
  if (p.fixed !== undefined) return p.fixed
  throw new ConfigError(component, [
    { path: ['max'], message: 'is a function of the request: charge through check()' },
  ])
}

/** Distinct quotas a `max` function yields stay few (tiers); the cap bounds a function that does not. */
const MAX_SETS_PER_PLAN = 1024

function setFor<Req>(p: Plan<Req>, units: unknown): PolicySet {
  // Precondition: a quota the sliding window can count exactly; anything else
  // fails the request instead of disabling the limit.
  if (typeof units !== 'number' || !Number.isInteger(units) || units < 1 || units > MAX_QUOTA)
    throw new ConfigError('rateLimit', [
      { path: ['max'], message: `must return an integer from 1 to ${MAX_QUOTA}` },
    ])
  let set = p.byMax.get(units)
  if (set === undefined) {
    if (p.byMax.size >= MAX_SETS_PER_PLAN) p.byMax.clear()
    set = policySet([{ name: 'default', max: units, windowMs: p.windowMs }, ...p.extra], p.scope)
    p.byMax.set(units, set)
  }
  return set
}

/** Postcondition of a `keyGenerator`: a key that names one client. */
function validKey(key: unknown): string {
  if (typeof key !== 'string' || key === '')
    throw new ConfigError('rateLimit', [
      { path: ['keyGenerator'], message: 'must return a non-empty string' },
    ])
  return key
}

/** `ttl` as @fastify/rate-limit's `context.after` reads: `'43 seconds'`. */
function afterText(ms: number): string {
  const s = Math.ceil(ms / 1000)
  return s === 1 ? '1 second' : `${s} seconds`
}

/** The draft of draft-ietf-httpapi-ratelimit-headers the standard fields follow. */
export type HeaderDraft = 'draft-6' | 'draft-7' | 'draft-8'

function writeStandardHeaders(
  draft: HeaderDraft,
  info: RateLimitInfo,
  set: PolicySet,
  target: HeaderTarget,
): void {
  switch (draft) {
    case 'draft-8': {
      // One list item per policy (draft 8 §4), so clients see every quota.
      target.header('ratelimit-policy', set.policyHeader)
      const states = info.policies
      const prefixes = set.remainingPrefixes
      const names = set.policies
      let value = ''
      for (let i = 0; i < states.length; i++) {
        const s = states[i]!
        if (i > 0) value += ', '
        // The set's pre-rendered item start, unless a store answered out of order.
        value += names[i]?.name === s.name ? prefixes[i]! : `${sfString(s.name)};r=`
        value += `${s.remaining};t=${Math.ceil(s.resetMs / 1000)}`
      }
      target.header('ratelimit', value)
      return
    }
    case 'draft-7':
      target.header('ratelimit-policy', set.unnamedPolicyHeader)
      target.header(
        'ratelimit',
        `limit=${info.limit}, remaining=${info.remaining}, reset=${Math.ceil(info.resetMs / 1000)}`,
      )
      return
    case 'draft-6':
      target.header('ratelimit-policy', set.unnamedPolicyHeader)
      target.header('ratelimit-limit', String(info.limit))
      target.header('ratelimit-remaining', String(info.remaining))
      target.header('ratelimit-reset', String(Math.ceil(info.resetMs / 1000)))
  }
}

/** Picks the state that decides: the longest wait among refusals, else the fewest remaining. */
export function summarize(states: readonly PolicyState[]): RateLimitInfo {
  let decisive: PolicyState | undefined
  let allowed = true
  for (let i = 0; i < states.length; i++) {
    const s = states[i]!
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

/**
 * A charge the limiter can take back once the response is known
 * (`skipSuccessfulRequests` / `skipFailedRequests`): where it went and the
 * window each policy counted it in.
 */
export interface RateLimitCharge {
  /** The store key (scope and client key). */
  readonly key: string
  readonly policies: readonly RateLimitPolicy[]
  readonly weight: number
  /** Per policy, the window the charge went into. */
  readonly windows: readonly number[]
  /** `memory`: the limiter's own memory store; `shared`: the configured store; `insurance`: the fallback. */
  readonly store: 'memory' | 'shared' | 'insurance'
  /**
   * With `memory` and `insurance`: the charge went to the store's shared
   * overflow counter (the store was full of live counters), not the key's own.
   */
  readonly overflow?: boolean
  /** A shared charge's copy in the insurance store (its share quotas and windows), if one was made. */
  readonly insurance?: {
    readonly policies: readonly RateLimitPolicy[]
    readonly windows: readonly number[]
    /** The copy went to the insurance store's overflow counter. */
    readonly overflow?: boolean
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
      /** Set when a skip option may take the charge back: pass it to {@link RateLimiter.refundWhenDone}. */
      readonly charge?: RateLimitCharge
    }
  | { readonly action: 'reject'; readonly error: SecurityError; readonly info?: RateLimitInfo }

const SKIP: RateLimitOutcome = Object.freeze({ action: 'skip' })

/** Where headers go: a Fastify reply fits as is. */
export interface HeaderTarget {
  header(name: string, value: string): unknown
}

type ConsumeArgs = { policies: readonly RateLimitPolicy[]; weight: number; now: number }

/** The window each policy counted a charge in: the store's, else the caller's clock's. */
function windowsOf(states: readonly PolicyState[], request: ConsumeArgs): number[] {
  return request.policies.map((p, i) => states[i]?.window ?? Math.floor(request.now / p.windowMs))
}

type SuccessTest<Req> = (request: Req, reply: unknown) => boolean | Promise<boolean>

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
  readonly isExemptPath: PathMatcher
  readonly clock: Clock
  readonly #store: RateLimitStore
  readonly #memory: MemoryStore | undefined
  readonly #insurance: MemoryStore
  readonly #breaker: StoreCircuitBreaker
  /** Each policy set's insurance quotas: `ceil(max / instances)`. */
  readonly #shares = new WeakMap<PolicySet, readonly RateLimitPolicy[]>()
  readonly #isAllowedIp: (ip: string) => boolean
  readonly #routePlans = new WeakMap<object, Plan<Req>>()
  readonly #globalPlan: Plan<Req>
  // Hot-path copies of config fields, read once per request.
  readonly #hasExemptPaths: boolean
  readonly #ipv6Subnet: number
  readonly #headerDraft: HeaderDraft | undefined
  readonly #legacyHeaders: boolean
  readonly #skip: ((r: Req) => boolean | Promise<boolean>) | undefined
  readonly #onExceeding: ((r: Req, key: string) => void) | undefined
  readonly #onExceeded: ((r: Req, key: string) => void) | undefined
  readonly #errorResponseBuilder: ((r: Req, c: RateLimitErrorContext) => object) | undefined
  /** Whether a skip option may refund charges (then charges are recorded). */
  readonly #refunds: boolean
  readonly #requestWasSuccessful: SuccessTest<Req> | undefined
  /** The charge behind each admitting answer, while refunds are on. */
  readonly #charges = new WeakMap<RateLimitInfo, RateLimitCharge>()
  /** Charges already taken back: a second refund would take back other requests' charges. */
  readonly #refunded = new WeakSet<RateLimitCharge>()
  /** Refunds (and async success tests) of finished responses still running: `close()` waits for them. */
  readonly #pending = new Set<Promise<void>>()
  /** The memory store's per-call arguments, reused (see {@link consume}). */
  readonly #memoryRequest: { policies: readonly RateLimitPolicy[]; weight: number; now: number } = {
    policies: [],
    weight: 1,
    now: 0,
  }
  #logger: Logger

  constructor(options?: RateLimitConfig, logger?: Logger) {
    this.config = parseOptions('rateLimit', RateLimitConfigSchema, options, RATE_LIMIT_ALIASES)
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
    this.#ipv6Subnet = c.ipv6Subnet
    this.#headerDraft =
      c.standardHeaders === false
        ? undefined
        : c.standardHeaders === true
          ? 'draft-8'
          : c.standardHeaders
    this.#legacyHeaders = c.legacyHeaders
    this.#skip = c.skip as ((r: Req) => boolean | Promise<boolean>) | undefined
    this.#onExceeding = c.onExceeding as ((r: Req, key: string) => void) | undefined
    this.#onExceeded = c.onExceeded as ((r: Req, key: string) => void) | undefined
    this.#errorResponseBuilder = c.errorResponseBuilder as
      | ((r: Req, c: RateLimitErrorContext) => object)
      | undefined
    this.#refunds = c.skipSuccessfulRequests || c.skipFailedRequests
    this.#requestWasSuccessful = c.requestWasSuccessful as SuccessTest<Req> | undefined
    if (this.#requestWasSuccessful !== undefined && !this.#refunds)
      throw new ConfigError('rateLimit', [
        {
          path: ['requestWasSuccessful'],
          message: 'decides nothing without skipSuccessfulRequests or skipFailedRequests',
        },
      ])
    // Precondition: a refund the store can make. Charging and never refunding
    // would silently turn the skip options off.
    if (this.#refunds && typeof this.#store.refund !== 'function')
      throw new ConfigError('rateLimit', [
        {
          path: ['store'],
          message:
            'must implement refund(key, { policies, weight, windows }) for skipSuccessfulRequests / skipFailedRequests',
        },
      ])
    this.#isAllowedIp = Array.isArray(c.allowList) ? compileIpList(c.allowList) : () => false
    this.#globalPlan = plan<Req>(
      '',
      c.max,
      c.windowMs,
      c.policies,
      c.keyGenerator as KeyGenerator<Req> | undefined,
    )
  }

  /**
   * The policy set every request is charged against when no route overrides it.
   * Throws `ERR_CONFIG_INVALID` when `max` is a function: then the set depends
   * on the request ({@link RateLimiter.check} resolves it).
   */
  get globalPolicies(): PolicySet {
    return fixedSet(this.#globalPlan, 'rateLimit')
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
    return fixedSet(this.#planFor(override, routeId), `rateLimit (route ${routeId})`)
  }

  #planFor(override: RateLimitRouteConfig | undefined, routeId: string): Plan<Req> {
    if (override === undefined) return this.#globalPlan
    let p = this.#routePlans.get(override)
    if (p === undefined) {
      const o = parseOptions(`rateLimit (route ${routeId})`, RateLimitRouteConfigSchema, override)
      const c = this.config
      p = plan<Req>(
        // A group's routes share counters (@fastify/rate-limit's groupId);
        // otherwise a route's own policies never share the global ones'.
        o.groupId === undefined ? `${routeId}|` : `group:${o.groupId}|`,
        o.max ?? c.max,
        o.windowMs ?? c.windowMs,
        o.policies ?? c.policies,
        (o.keyGenerator ?? c.keyGenerator) as KeyGenerator<Req> | undefined,
      )
      this.#routePlans.set(override, p)
    }
    return p
  }

  /**
   * The whole decision for one request, shared by every adapter: exemptions,
   * `skip`, key, allow list, quota, weight, the store call, the callbacks and
   * the 429 body. Synchronous when nothing on the way is asynchronous (memory
   * store, sync functions). `global: false` limits only routes with an override.
   */
  check(
    request: Req,
    ip: string,
    url: string | undefined,
    override: RateLimitRouteConfig | false | undefined,
    routeId: string,
  ): RateLimitOutcome | Promise<RateLimitOutcome> {
    if (override === false) return SKIP
    if (override === undefined && !this.config.global) return SKIP
    if (this.#hasExemptPaths && this.isExemptPath(pathOf(url))) return SKIP
    const p = this.#planFor(override, routeId)
    const skip = this.#skip
    if (skip === undefined) return this.#checkRequest(request, ip, p)
    const skipped = skip(request)
    if (skipped instanceof Promise)
      return skipped.then((s) => (s ? SKIP : this.#checkRequest(request, ip, p)))
    return skipped ? SKIP : this.#checkRequest(request, ip, p)
  }

  // The steps below take the plain value when a callback answered
  // synchronously and chain on the promise only when it did not: the common
  // case (no callbacks, memory store) allocates no closure and no promise.

  #checkRequest(
    request: Req,
    ip: string,
    p: Plan<Req>,
  ): RateLimitOutcome | Promise<RateLimitOutcome> {
    const gen = p.keyGenerator
    if (gen === undefined) return this.#checkKey(request, ip, ipKey(ip, this.#ipv6Subnet), p)
    const key = gen(request)
    if (key instanceof Promise) return key.then((k) => this.#checkKey(request, ip, validKey(k), p))
    return this.#checkKey(request, ip, validKey(key), p)
  }

  #checkKey(
    request: Req,
    ip: string,
    key: string,
    p: Plan<Req>,
  ): RateLimitOutcome | Promise<RateLimitOutcome> {
    const listed = this.isAllowListed(request, ip, key)
    if (listed instanceof Promise)
      return listed.then((l) => (l ? SKIP : this.#checkQuota(request, key, p)))
    return listed ? SKIP : this.#checkQuota(request, key, p)
  }

  #checkQuota(
    request: Req,
    key: string,
    p: Plan<Req>,
  ): RateLimitOutcome | Promise<RateLimitOutcome> {
    const max = p.max
    if (typeof max === 'number') return this.#charge(request, key, p.fixed!)
    const units = max(request, key)
    if (units instanceof Promise) return units.then((u) => this.#charge(request, key, setFor(p, u)))
    return this.#charge(request, key, setFor(p, units))
  }

  #charge(request: Req, key: string, set: PolicySet): RateLimitOutcome | Promise<RateLimitOutcome> {
    const result = this.consume(key, set, this.weightOf(request))
    if (result instanceof Promise) {
      return result.then(
        (info) => this.#outcome(request, key, info, set),
        (error: SecurityError) => ({ action: 'reject', error }) as const,
      )
    }
    return this.#outcome(request, key, result, set)
  }

  #outcome(
    request: Req,
    key: string,
    info: RateLimitInfo | undefined,
    set: PolicySet,
  ): RateLimitOutcome {
    if (info === undefined) return SKIP
    if (info.allowed) {
      this.#onExceeding?.(request, key)
      const charge = this.#refunds ? this.#charges.get(info) : undefined
      return charge === undefined
        ? { action: 'allow', info, set }
        : { action: 'allow', info, set, charge }
    }
    this.#onExceeded?.(request, key)
    const builder = this.#errorResponseBuilder
    let body: object | undefined
    if (builder !== undefined) {
      body = builder(request, {
        statusCode: 429,
        max: info.limit,
        ttl: info.retryAfterMs,
        after: afterText(info.retryAfterMs),
        key,
        info,
      })
      // Postcondition: a body we can serialize; anything else fails the request.
      if (typeof body !== 'object' || body === null)
        throw new ConfigError('rateLimit', [
          { path: ['errorResponseBuilder'], message: 'must return an object (the JSON body)' },
        ])
    }
    return {
      action: 'reject',
      error: new RateLimitExceededError(info, this.headersFor(info, set), body),
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
    const storeKey = set.scope === '' ? key : set.scope + key
    if (this.#memory !== undefined) {
      // The memory store reads the request during the call and keeps none of
      // it (nor does #record: it copies the fields), so one object serves
      // every request.
      const request = this.#memoryRequest
      request.policies = set.policies
      request.weight = weight
      request.now = this.clock()
      const states = this.#memory.consumeSync(storeKey, request)
      const info = summarize(states)
      if (this.#refunds)
        this.#record(info, storeKey, request, states, 'memory', !this.#memory.has(storeKey))
      return info
    }
    const request = { policies: set.policies, weight, now: this.clock() }
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
    let copy: RateLimitCharge['insurance']
    if (info.allowed && this.config.onStoreError === 'insurance') {
      const mirror = { ...request, policies: this.#shareOf(set) }
      const mirrored = this.#insurance.consumeSync(storeKey, mirror)
      // Only a copy the share counted (a memory store charges all policies
      // or none) can be taken back; refunding a refused one would leave the
      // insurance store below what this instance admitted.
      if (this.#refunds && mirrored.every((s) => s.allowed))
        copy = {
          policies: mirror.policies,
          windows: windowsOf(mirrored, mirror),
          ...(this.#insurance.has(storeKey) ? {} : { overflow: true }),
        }
    }
    if (this.#refunds) this.#record(info, storeKey, request, states, 'shared', false, copy)
    return info
  }

  /** Remembers where an admitted request was charged, for a refund when its response is known. */
  #record(
    info: RateLimitInfo,
    key: string,
    request: ConsumeArgs,
    states: readonly PolicyState[],
    store: RateLimitCharge['store'],
    overflow: boolean,
    insurance?: RateLimitCharge['insurance'],
  ): void {
    if (!info.allowed || request.weight <= 0) return
    const charge: RateLimitCharge = {
      key,
      policies: request.policies,
      weight: request.weight,
      windows: windowsOf(states, request),
      store,
      ...(overflow ? { overflow } : {}),
      ...(insurance === undefined ? {} : { insurance }),
    }
    this.#charges.set(info, charge)
  }

  /**
   * Called by the adapters for an admitted request: once `response` has
   * finished, takes `charge` back if the response falls in a skipped category
   * (`skipSuccessfulRequests`, `skipFailedRequests`). A response that errored
   * or was cut off before it finished keeps its charge under either option.
   * Never throws; the
   * response is already gone, so a failing success test or store is logged
   * (and a store failure counts towards opening the circuit) instead.
   */
  refundWhenDone(
    charge: RateLimitCharge,
    request: Req,
    response: ServerResponse,
    reply: unknown,
  ): void {
    const { skipSuccessfulRequests, skipFailedRequests } = this.config
    const decide = (succeeded: boolean) => {
      if (succeeded ? skipSuccessfulRequests : skipFailedRequests) this.#track(this.refund(charge))
    }
    const keep = (err: unknown) =>
      this.#logger.warn(
        { err: describeError(err) },
        'rate-limit requestWasSuccessful failed; the charge is kept',
      )
    const cleanup = finished(response, (err) => {
      cleanup()
      // A response cut off before its end (client gone, stream error) keeps
      // its charge whatever its status line said: the client chooses when to
      // hang up, so refunding it under skipFailedRequests would let a client
      // make the server work without limit (express-rate-limit refunds it).
      if (err !== undefined && err !== null) return
      const test = this.#requestWasSuccessful
      if (test === undefined) return decide(response.statusCode < 400)
      let verdict: boolean | Promise<boolean>
      try {
        verdict = test(request, reply)
      } catch (e) {
        return keep(e)
      }
      if (verdict instanceof Promise) this.#track(verdict.then((v) => decide(v === true), keep))
      else decide(verdict === true)
    })
  }

  /**
   * Takes a charge back from the store it went into, once: the same charge
   * handed back again changes nothing. Resolves once done;
   * never rejects: a shared store's failure is decided by its circuit breaker
   * (logged, counted towards opening the circuit) and the charge stays, which
   * errs on the side of limiting. While the circuit is open the shared store
   * is not called.
   */
  refund(charge: RateLimitCharge): Promise<void> {
    // Precondition: each charge comes back once, however often an adapter hands it back.
    if (this.#refunded.has(charge)) return Promise.resolve()
    this.#refunded.add(charge)
    const request: RefundRequest = {
      policies: charge.policies,
      weight: charge.weight,
      windows: charge.windows,
    }
    const counter = charge.overflow === true ? 'overflow' : 'own'
    switch (charge.store) {
      case 'memory':
        this.#memory?.refundSync(charge.key, request, counter)
        return Promise.resolve()
      case 'insurance':
        this.#insurance.refundSync(charge.key, request, counter)
        return Promise.resolve()
      case 'shared': {
        const copy = charge.insurance
        if (copy !== undefined)
          this.#insurance.refundSync(
            charge.key,
            { policies: copy.policies, windows: copy.windows, weight: charge.weight },
            copy.overflow === true ? 'overflow' : 'own',
          )
        if (!this.#breaker.admits(this.clock())) return Promise.resolve()
        let call: Promise<void>
        try {
          call = this.#store.refund!(charge.key, request)
        } catch (err) {
          call = Promise.reject(err)
        }
        return this.#breaker.call(call).then(() => undefined)
      }
    }
  }

  #track(p: Promise<void>): void {
    this.#pending.add(p)
    p.finally(() => this.#pending.delete(p))
  }

  /**
   * Resolves once the refunds of every response finished so far have settled
   * (tests, graceful shutdown); responses still being written are not waited for.
   */
  async refundsSettled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending])
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
      case 'insurance': {
        const local = { ...request, policies: this.#shareOf(set) }
        const states = this.#insurance.consumeSync(storeKey, local)
        const info = summarize(states)
        if (this.#refunds)
          this.#record(info, storeKey, local, states, 'insurance', !this.#insurance.has(storeKey))
        return info
      }
      case 'allow':
        return Promise.resolve(undefined)
      case 'deny':
        return Promise.reject(new RateLimitUnavailableError())
    }
  }

  /**
   * Writes the standard fields of the chosen draft and, optionally, the legacy
   * `X-RateLimit-*` ones through `target` (no intermediate object per request).
   */
  writeHeaders(info: RateLimitInfo, policies: PolicySet, target: HeaderTarget): void {
    const draft = this.#headerDraft
    if (draft !== undefined) writeStandardHeaders(draft, info, policies, target)
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
    await this.refundsSettled()
    await this.#insurance.close()
    if (this.config.store === undefined) await this.#store.close?.()
  }
}

function storeName(store: RateLimitStore): string {
  return store.constructor?.name ?? 'store'
}
