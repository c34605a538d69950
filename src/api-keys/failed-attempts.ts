/**
 * The failed-attempt gate: failed validations are counted per client (IP;
 * IPv6 per /64) in a rate-limit store, and a client past its limit is
 * answered 429 before its next lookup can read the database. Counting never
 * delays the 401 it follows: the store's answer is applied when it arrives.
 */
import type { z } from 'zod'
import { RateLimitExceededError, RateLimiter, type RateLimitInfo } from '../http/index.js'
import type { Clock } from '../internal/clock.js'
import { ipKey } from '../internal/ip-address.js'
import type { Logger } from '../internal/logger.js'
import type { FailedAttemptsSchema } from './manager-options.js'

interface Blocked {
  readonly until: number
  readonly info: RateLimitInfo
  readonly headers: Readonly<Record<string, string>>
}

/** Clients remembered as blocked; the oldest is dropped past this. */
const MAX_BLOCKED = 100_000

/**
 * The refusal a client's next lookup gets, or undefined while it has
 * failures left. The failure just counted may have used the last unit
 * (`remaining` 0, still `allowed`): the client has then had its `max`
 * failed lookups, so the next one is refused until the window ends, not
 * let through to the database first (that made `max` 20 allow 21 reads).
 */
function exhausted(info: RateLimitInfo): RateLimitInfo | undefined {
  if (!info.allowed) return info
  if (info.remaining > 0) return undefined
  const retryAfterMs = Math.max(1, info.resetMs)
  return {
    ...info,
    allowed: false,
    retryAfterMs,
    policies: info.policies.map((p) =>
      p.remaining > 0 ? p : { ...p, allowed: false, retryAfterMs: Math.max(1, p.resetMs) },
    ),
  }
}

export class FailedAttemptGate {
  readonly #limiter: RateLimiter
  readonly #clock: Clock
  readonly #blocked = new Map<string, Blocked>()

  constructor(options: z.output<typeof FailedAttemptsSchema>, clock: Clock, logger: Logger) {
    this.#clock = clock
    this.#limiter = new RateLimiter(
      {
        max: options.max,
        windowMs: options.windowMs,
        clock,
        logger,
        ...(options.store === undefined ? {} : { store: options.store }),
      },
      logger,
    )
  }

  /** Counts one failed validation of `ip` (normalized). */
  count(ip: string): void {
    const limiter = this.#limiter
    const client = ipKey(ip)
    const set = limiter.globalPolicies
    const onInfo = (info: RateLimitInfo | undefined) => {
      const refused = info === undefined ? undefined : exhausted(info)
      if (refused !== undefined) {
        this.#blocked.set(client, {
          until: this.#clock() + refused.retryAfterMs,
          info: refused,
          headers: limiter.headersFor(refused, set),
        })
        if (this.#blocked.size > MAX_BLOCKED)
          this.#blocked.delete(this.#blocked.keys().next().value!)
      }
    }
    const result = limiter.consume(client, set, 1)
    // Not awaited: the caller's 401 does not wait for the count. A failing
    // store is the limiter's to handle (its breaker falls back).
    if (result instanceof Promise) result.then(onInfo, () => {})
    else onInfo(result)
  }

  /** Throws 429 when the client is over its failed-attempt limit. */
  check(ip: string | null, now: number): void {
    if (ip === null || this.#blocked.size === 0) return
    const client = ipKey(ip)
    const blocked = this.#blocked.get(client)
    if (blocked === undefined) return
    if (now >= blocked.until) {
      this.#blocked.delete(client)
      return
    }
    const retryAfterMs = blocked.until - now
    throw new RateLimitExceededError({ ...blocked.info, retryAfterMs }, blocked.headers)
  }

  close(): Promise<void> {
    return this.#limiter.close()
  }
}
