/**
 * The circuit breaker in front of a shared rate-limit store. A slow call is
 * not an outage: one that passes `storeTimeoutMs` while the store answers
 * other calls waits on (up to `busyMaxWaitMs`); one that passes it while the
 * store answers nothing is decided locally, and only a run of such failures
 * with no answer in between opens the circuit. While open,
 * no call goes to the store; after `storeRetryIntervalMs` one request probes
 * it (half-open), and any answer, a probe's or a late one, closes it again.
 */

import { z } from 'zod'
import type { Clock } from '../../internal/clock.js'
import { RateLimitStoreError } from '../errors.js'

export const StoreCircuitBreakerSchema = z
  .object({
    /**
     * Store errors in a row (refused connection, script error; no answer in
     * between) that open the circuit.
     * @default 3
     */
    openAfterErrors: z.number().int().min(1).max(10_000).default(3),
    /**
     * Calls in a row that pass `storeTimeoutMs` with no answer in between,
     * not even a late one, that open the circuit. A store that is slow but
     * answers keeps it closed.
     * @default 5
     */
    openAfterTimeouts: z.number().int().min(1).max(10_000).default(5),
    /**
     * A call past `storeTimeoutMs` keeps waiting while the store answers other
     * calls in each `storeTimeoutMs` (busy, not down: a burst queued on one
     * client's lock, a loaded machine), up to this long in all; then it times
     * out. Deciding such a call locally would admit on top of what the
     * shared store admits. `0` makes `storeTimeoutMs` a hard limit.
     * @default 1000
     */
    busyMaxWaitMs: z.number().int().min(0).max(60_000).default(1000),
  })
  .strict()

/** The breaker's state, as {@link RateLimiter.storeCircuit} reports it. */
export type StoreCircuitState = 'closed' | 'open' | 'half-open'

/** What a breaker tells its owner, for logs. */
export interface BreakerEvents {
  /** The first failure after an answer: `reason` says whether it timed out. */
  failed(err: unknown, reason: 'error' | 'timeout'): void
  opened(details: { errors: number; timeouts: number; retryInMs: number }): void
  closed(): void
}

/** Returned instead of a store answer when the request is to be decided locally. */
export const FALL_BACK: unique symbol = Symbol('fall back')

const TIMED_OUT: unique symbol = Symbol('timed out')

interface BreakerOptions {
  readonly openAfterErrors: number
  readonly openAfterTimeouts: number
  readonly busyMaxWaitMs: number
  readonly timeoutMs: number
  readonly retryIntervalMs: number
  readonly clock: Clock
  readonly events: BreakerEvents
}

export class StoreCircuitBreaker {
  readonly #o: BreakerOptions
  #state: StoreCircuitState = 'closed'
  #errors = 0
  #timeouts = 0
  #nextProbeAt = 0
  /** Answers so far: a call that sees it move while it waits knows the store is busy, not down. */
  #answers = 0

  constructor(options: BreakerOptions) {
    this.#o = options
  }

  get state(): StoreCircuitState {
    return this.#state
  }

  /**
   * Whether a request at `now` may call the store: always while closed; while
   * open, one request once `retryIntervalMs` has passed (it becomes the probe
   * and the circuit half-opens until it settles).
   */
  admits(now: number): boolean {
    if (this.#state === 'closed') return true
    if (this.#state === 'half-open' || now < this.#nextProbeAt) return false
    this.#state = 'half-open'
    return true
  }

  /**
   * Runs one store call admitted by {@link admits}. Resolves to its answer,
   * or to {@link FALL_BACK} when it failed or passed the timeout; never rejects.
   */
  async call<T>(promise: Promise<T>): Promise<T | typeof FALL_BACK> {
    let timer: NodeJS.Timeout | undefined
    const { timeoutMs, busyMaxWaitMs } = this.#o
    const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
      let waited = 0
      let seen = this.#answers
      // Timers run before the poll phase reads sockets: on a loaded loop an
      // answer may sit unread when the timer fires. Deciding in the check
      // phase, after the poll, sees it first.
      const tick = () => setImmediate(check)
      const check = () => {
        waited += timeoutMs
        const busy = this.#answers !== seen
        seen = this.#answers
        if (busy && waited < timeoutMs + busyMaxWaitMs) {
          timer = setTimeout(tick, Math.min(timeoutMs, timeoutMs + busyMaxWaitMs - waited))
          timer.unref?.()
        } else resolve(TIMED_OUT)
      }
      timer = setTimeout(tick, timeoutMs)
      // The store call itself keeps the process alive if anything should.
      timer.unref?.()
    })
    // A late answer (after the timeout) still proves the store alive.
    const settled = promise.then(
      (value) => {
        this.#answered()
        return value
      },
      (err: unknown) => ({ [kFailure]: err }) as Failure,
    )
    let outcome: T | Failure | typeof TIMED_OUT
    try {
      outcome = await Promise.race([settled, timeout])
    } finally {
      clearTimeout(timer)
    }
    if (outcome === TIMED_OUT) {
      this.#failed(
        new RateLimitStoreError(`store did not answer within ${this.#o.timeoutMs} ms`),
        'timeout',
      )
      return FALL_BACK
    }
    if (isFailure(outcome)) {
      this.#failed(outcome[kFailure], 'error')
      return FALL_BACK
    }
    return outcome
  }

  #answered(): void {
    this.#answers++
    this.#errors = 0
    this.#timeouts = 0
    if (this.#state !== 'closed') {
      this.#state = 'closed'
      this.#o.events.closed()
    }
  }

  #failed(err: unknown, reason: 'error' | 'timeout'): void {
    if (this.#errors === 0 && this.#timeouts === 0 && this.#state === 'closed') {
      this.#o.events.failed(err, reason)
    }
    if (reason === 'error') this.#errors++
    else this.#timeouts++
    const open =
      this.#state === 'half-open' ||
      this.#errors >= this.#o.openAfterErrors ||
      this.#timeouts >= this.#o.openAfterTimeouts
    if (!open) return
    const wasOpen = this.#state !== 'closed'
    this.#state = 'open'
    this.#nextProbeAt = this.#o.clock() + this.#o.retryIntervalMs
    if (!wasOpen) {
      this.#o.events.opened({
        errors: this.#errors,
        timeouts: this.#timeouts,
        retryInMs: this.#o.retryIntervalMs,
      })
    }
  }
}

const kFailure: unique symbol = Symbol('failure')
type Failure = { [kFailure]: unknown }

function isFailure(v: unknown): v is Failure {
  return typeof v === 'object' && v !== null && kFailure in v
}
