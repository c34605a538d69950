import { z } from 'zod'
import { parseOptions } from '../../../internal/options.js'
import type { PolicyState } from '../../errors.js'
import { fits, toPolicyState, type WindowCounters, windowOf } from '../sliding-window.js'
import type { ConsumeRequest, RateLimitStore } from '../store.js'

export const MemoryStoreOptionsSchema = z
  .object({
    /**
     * Most (client, policy) counters kept; the least recently used is evicted
     * first. Memory stays bounded however many distinct clients arrive.
     * @default 100000
     */
    maxKeys: z.number().int().min(1).max(100_000_000).default(100_000),
  })
  .strict()

export type MemoryStoreOptions = z.input<typeof MemoryStoreOptionsSchema>

interface Counter {
  index: number
  current: number
  previous: number
}

/**
 * In-process store: an LRU map of counters, no timers (nothing keeps the
 * process alive), expired windows reset lazily on access. Also the insurance
 * store shared stores fall back to during an outage.
 *
 * @example
 * ```ts
 * import { MemoryStore, rateLimit } from 'fraiseql-security/http'
 * await app.register(rateLimit, { max: 100, store: new MemoryStore({ maxKeys: 50_000 }) })
 * ```
 */
export class MemoryStore implements RateLimitStore {
  readonly #maxKeys: number
  readonly #counters = new Map<string, Counter>()

  constructor(options?: MemoryStoreOptions) {
    this.#maxKeys = parseOptions('MemoryStore', MemoryStoreOptionsSchema, options).maxKeys
  }

  /** Number of counters held (for tests and metrics). */
  get size(): number {
    return this.#counters.size
  }

  consume(key: string, request: ConsumeRequest): Promise<readonly PolicyState[]> {
    return Promise.resolve(this.consumeSync(key, request))
  }

  /** Synchronous form; the limiter uses it to skip a promise per request. */
  consumeSync(key: string, request: ConsumeRequest): PolicyState[] {
    const { policies, weight, now } = request
    const n = policies.length
    const slots: Counter[] = new Array(n)
    const counters: WindowCounters[] = new Array(n)
    const allowedEach: boolean[] = new Array(n)
    let allowed = true
    for (let i = 0; i < n; i++) {
      const policy = policies[i]!
      const { index, elapsedMs } = windowOf(now, policy.windowMs)
      const slot = this.#touch(`${policy.name}\u0000${key}`, index)
      slots[i] = slot
      const ok = fits(policy.max, policy.windowMs, slot.previous, slot.current, elapsedMs, weight)
      allowedEach[i] = ok
      if (!ok) allowed = false
      counters[i] = { previous: slot.previous, current: slot.current, elapsedMs }
    }
    const states: PolicyState[] = new Array(n)
    for (let i = 0; i < n; i++) {
      const policy = policies[i]!
      let c = counters[i]!
      if (allowed) {
        slots[i]!.current += weight
        c = { previous: c.previous, current: c.current + weight, elapsedMs: c.elapsedMs }
      }
      states[i] = toPolicyState(policy, c, allowedEach[i]!, weight)
    }
    return states
  }

  /** Gets (creating or rolling over) a counter and marks it most recently used. */
  #touch(id: string, index: number): Counter {
    const map = this.#counters
    let slot = map.get(id)
    if (slot === undefined) {
      slot = { index, current: 0, previous: 0 }
      if (map.size >= this.#maxKeys) {
        const oldest = map.keys().next()
        if (oldest.done !== true) map.delete(oldest.value)
      }
    } else {
      map.delete(id)
      if (slot.index !== index) {
        slot.previous = slot.index === index - 1 ? slot.current : 0
        slot.current = 0
        slot.index = index
      }
    }
    map.set(id, slot)
    return slot
  }

  /** Drops every counter. */
  clear(): void {
    this.#counters.clear()
  }

  async close(): Promise<void> {
    this.#counters.clear()
  }
}
