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
}

/**
 * A rate-limit store: one async call per request that checks and charges
 * every policy atomically and returns each policy's state, in order.
 * Implement it to bring your own back end; run `describeRateLimitStoreContract`
 * from the test suite against it.
 */
export interface RateLimitStore {
  consume(key: string, request: ConsumeRequest): Promise<readonly PolicyState[]>
  /** Releases timers; never closes a client the caller passed in. */
  close?(): Promise<void>
}

/** Where a shared store reads time from. */
export type TimeSource = 'server' | 'caller'
