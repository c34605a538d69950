/**
 * Sliding-window counter (the "weighted previous window" approximation used by
 * Cloudflare and others): the count at time `e` into a window of length `W` is
 * `previous * (W - e) / W + current`. A client cannot burst twice the limit at
 * a window edge as it can with a fixed window.
 *
 * Every comparison is done in integers, multiplied through by `W`, so the
 * JavaScript, Lua and SQL implementations decide identically. The bounds on
 * `max` (10^7) and `windowMs` (7 days) keep `max * W` below 2^53.
 */
import type { PolicyState } from '../errors.js'

/** One named quota: `max` units per `windowMs`. */
export interface RateLimitPolicy {
  readonly name: string
  readonly max: number
  readonly windowMs: number
}

/** Raw counters of one policy as a store saw them. */
export interface WindowCounters {
  /** Count of the previous fixed window. */
  readonly previous: number
  /** Count of the current fixed window, including this request when it was allowed. */
  readonly current: number
  /** Milliseconds elapsed in the current fixed window. */
  readonly elapsedMs: number
  /**
   * Index of the current fixed window (`floor(t / windowMs)`), for stores
   * that support refunds; copied to the state's `window`.
   */
  readonly window?: number
}

/** Whether `weight` more units fit. `current` is the count before this request. */
export function fits(
  max: number,
  windowMs: number,
  previous: number,
  current: number,
  elapsedMs: number,
  weight: number,
): boolean {
  return previous * (windowMs - elapsedMs) + (current + weight) * windowMs <= max * windowMs
}

/**
 * Milliseconds until a request of `weight` fits again, given counters that
 * were not charged. Exact to the millisecond for this approximation.
 */
export function retryAfterMs(
  policy: RateLimitPolicy,
  counters: WindowCounters,
  weight: number,
): number {
  const { max, windowMs: W } = policy
  const { previous, current, elapsedMs: e } = counters
  // A request heavier than the whole quota never fits: wait for both windows to clear.
  if (weight > max) return 2 * W - e
  if (current + weight <= max) {
    if (previous === 0) return 0
    // previous * (W - e - t) <= (max - current - weight) * W
    const t = W - e - Math.floor(((max - current - weight) * W) / previous)
    return Math.max(0, t)
  }
  // Only the next window can take it: there previous' = current, current' = 0,
  // and it fits once current * (W - e') <= (max - weight) * W.
  const eNext = W - Math.floor(((max - weight) * W) / current)
  return W - e + Math.max(0, eNext)
}

type Writable<T> = { -readonly [K in keyof T]: T[K] }

/** Turns a store's raw counters into the public per-policy state. */
export function toPolicyState(
  policy: RateLimitPolicy,
  counters: WindowCounters,
  policyAllowed: boolean,
  weight: number,
): PolicyState {
  const { max, windowMs: W } = policy
  const estimate = (counters.previous * (W - counters.elapsedMs)) / W + counters.current
  const remaining = Math.max(0, Math.floor(max - estimate))
  const window = counters.window
  if (policyAllowed) {
    const state: Writable<PolicyState> = {
      name: policy.name,
      limit: max,
      windowMs: W,
      remaining,
      resetMs: W - counters.elapsedMs,
      retryAfterMs: 0,
      allowed: true,
    }
    if (window !== undefined) state.window = window
    return state
  }
  const retry = retryAfterMs(policy, counters, weight)
  const state: Writable<PolicyState> = {
    name: policy.name,
    limit: max,
    windowMs: W,
    remaining,
    resetMs: retry,
    retryAfterMs: retry,
    allowed: false,
  }
  if (window !== undefined) state.window = window
  return state
}

/**
 * {@link toPolicyState} for a store that always knows the window, taking the
 * counters as arguments: the in-process store's hit path builds no
 * intermediate object, and every state it returns has the same shape.
 */
export function policyStateAt(
  policy: RateLimitPolicy,
  previous: number,
  current: number,
  elapsedMs: number,
  window: number,
  policyAllowed: boolean,
  weight: number,
): PolicyState {
  const W = policy.windowMs
  if (!policyAllowed)
    return toPolicyState(policy, { previous, current, elapsedMs, window }, false, weight)
  const remaining = Math.max(
    0,
    Math.floor(policy.max - ((previous * (W - elapsedMs)) / W + current)),
  )
  return {
    name: policy.name,
    limit: policy.max,
    windowMs: W,
    remaining,
    resetMs: W - elapsedMs,
    retryAfterMs: 0,
    allowed: true,
    window,
  }
}

/** Window index and elapsed time of `now` for a window length. */
export function windowOf(now: number, windowMs: number): { index: number; elapsedMs: number } {
  const index = Math.floor(now / windowMs)
  return { index, elapsedMs: now - index * windowMs }
}
