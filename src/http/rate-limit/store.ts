import type { PolicyState } from '../errors.js'
import type { RateLimitPolicy } from './sliding-window.js'

/** What the limiter asks a store for, once per request. */
export interface ConsumeRequest {
  /** Every policy that applies; all are checked and charged together, all or nothing. */
  readonly policies: readonly RateLimitPolicy[]
  /** Units this request costs (1 by default; GraphQL cost or API-key tier otherwise). */
  readonly weight: number
  /**
   * The caller's clock, in ms. Shared stores use their server's clock instead
   * (Redis `TIME`, PostgreSQL `clock_timestamp()`) so skewed instances agree,
   * unless built with `timeSource: 'caller'`.
   */
  readonly now: number
  /**
   * Whether this charge may be refunded (the limiter sets it while a skip
   * option is on). A store with `refund` must set each state's `window` when
   * it is true; when it is `false` the store may leave `window` out and take
   * a cheaper path that decides identically.
   * @default true
   */
  readonly refundable?: boolean
}

/**
 * What the limiter hands back to a store to take back a charge (the
 * `skipSuccessfulRequests` / `skipFailedRequests` options): the same policies
 * and weight as the `consume` that admitted the request, and the window each
 * policy counted it in.
 */
export interface RefundRequest {
  /** The policies of the admitting `consume`, in the same order. */
  readonly policies: readonly RateLimitPolicy[]
  /** Units to take back: the admitting call's weight. */
  readonly weight: number
  /**
   * For each policy, the index of the fixed window (`floor(t / windowMs)` on
   * the store's clock) the charge went into: the `window` of the state the
   * admitting `consume` returned for it.
   */
  readonly windows: readonly number[]
}

/**
 * A rate-limit store: one async call per request that checks and charges
 * every policy atomically and returns each policy's state, in order.
 * Implement it to bring your own back end; run `describeRateLimitStoreContract`
 * from the test suite against it.
 */
export interface RateLimitStore {
  consume(key: string, request: ConsumeRequest): Promise<readonly PolicyState[]>
  /**
   * Takes back a charge `consume` made, all policies in one atomic call. A
   * policy's refund goes to the window the charge went into: its current
   * count while that window is current, its previous count once the counter
   * has moved on by one window, nowhere when the charge no longer counts
   * (two windows on, or the counter expired). A count never goes below zero
   * and a refund never moves a counter to another window.
   *
   * Optional: a store without it cannot back `skipSuccessfulRequests` or
   * `skipFailedRequests` (registration refuses them with `ERR_CONFIG_INVALID`).
   * A store with it sets `window` on every state `consume` returns, unless
   * the request says `refundable: false`.
   */
  refund?(key: string, request: RefundRequest): Promise<void>
  /** Releases timers; never closes a client the caller passed in. */
  close?(): Promise<void>
}

/** Where a shared store reads time from. */
export type TimeSource = 'server' | 'caller'
