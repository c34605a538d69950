import { z } from 'zod'
import { parseOptions } from '../../../internal/options.js'
import type { PolicyState } from '../../errors.js'
import { fits, type RateLimitPolicy, toPolicyState } from '../sliding-window.js'
import type { ConsumeRequest, RateLimitStore } from '../store.js'

export const MemoryStoreOptionsSchema = z
  .object({
    /**
     * Most clients (keys) kept; the least recently used is evicted first.
     * Memory stays bounded however many distinct clients arrive.
     * @default 100000
     */
    maxKeys: z.number().int().min(1).max(100_000_000).default(100_000),
  })
  .strict()

export type MemoryStoreOptions = z.input<typeof MemoryStoreOptionsSchema>

/** One client's counters, one slot per policy, and its place in the LRU list. */
interface Entry {
  readonly key: string
  /** The policy list the slots are laid out for (the limiter passes the same frozen array). */
  policies: readonly RateLimitPolicy[]
  index: number[]
  current: number[]
  previous: number[]
  newer: Entry | undefined
  older: Entry | undefined
}

/**
 * In-process store: counters in a map with an intrusive LRU list (moving an
 * entry to the front is four pointer writes, not a map delete and insert), no
 * timers (nothing keeps the process alive), expired windows reset lazily on
 * access. Also the insurance store shared stores fall back to during an outage.
 *
 * @example
 * ```ts
 * import { MemoryStore, rateLimit } from 'fraiseql-security/http'
 * await app.register(rateLimit, { max: 100, store: new MemoryStore({ maxKeys: 50_000 }) })
 * ```
 */
export class MemoryStore implements RateLimitStore {
  readonly #maxKeys: number
  readonly #entries = new Map<string, Entry>()
  #newest: Entry | undefined
  #oldest: Entry | undefined

  constructor(options?: MemoryStoreOptions) {
    this.#maxKeys = parseOptions('MemoryStore', MemoryStoreOptionsSchema, options).maxKeys
  }

  /** Number of clients held (for tests and metrics). */
  get size(): number {
    return this.#entries.size
  }

  consume(key: string, request: ConsumeRequest): Promise<readonly PolicyState[]> {
    return Promise.resolve(this.consumeSync(key, request))
  }

  /** Synchronous form; the limiter uses it to skip a promise per request. */
  consumeSync(key: string, request: ConsumeRequest): PolicyState[] {
    const { policies, weight, now } = request
    const entry = this.#entry(key, policies)
    const n = policies.length
    // First pass: roll windows over and decide; nothing is charged unless every policy fits.
    let allowed = true
    let okBits = 0
    for (let i = 0; i < n; i++) {
      const W = policies[i]!.windowMs
      const index = Math.floor(now / W)
      const last = entry.index[i]!
      // A counter never moves back to an older window (a clock stepped back):
      // such a call counts at the start of the counter's window.
      if (last < index || Number.isNaN(last)) {
        entry.previous[i] = last === index - 1 ? entry.current[i]! : 0
        entry.current[i] = 0
        entry.index[i] = index
      }
      const ok = fits(
        policies[i]!.max,
        W,
        entry.previous[i]!,
        entry.current[i]!,
        Math.max(0, now - entry.index[i]! * W),
        weight,
      )
      if (ok) {
        if (i < 32) okBits |= 1 << i
      } else allowed = false
    }
    const states: PolicyState[] = new Array(n)
    for (let i = 0; i < n; i++) {
      const policy = policies[i]!
      const elapsedMs = Math.max(0, now - entry.index[i]! * policy.windowMs)
      const previous = entry.previous[i]!
      // Policies past the 32nd are rare enough to decide again rather than track.
      const ok =
        i < 32
          ? (okBits & (1 << i)) !== 0
          : fits(policy.max, policy.windowMs, previous, entry.current[i]!, elapsedMs, weight)
      const current = allowed ? entry.current[i]! + weight : entry.current[i]!
      entry.current[i] = current
      states[i] = toPolicyState(policy, { previous, current, elapsedMs }, ok, weight)
    }
    return states
  }

  /** Finds or creates a client's entry, lays it out for `policies`, and marks it most recent. */
  #entry(key: string, policies: readonly RateLimitPolicy[]): Entry {
    let entry = this.#entries.get(key)
    if (entry === undefined) {
      if (this.#entries.size >= this.#maxKeys) this.#evictOldest()
      const n = policies.length
      entry = {
        key,
        policies,
        index: new Array<number>(n).fill(Number.NaN),
        current: new Array<number>(n).fill(0),
        previous: new Array<number>(n).fill(0),
        newer: undefined,
        older: this.#newest,
      }
      if (this.#newest !== undefined) this.#newest.newer = entry
      this.#newest = entry
      this.#oldest ??= entry
      this.#entries.set(key, entry)
      return entry
    }
    if (entry.policies !== policies) this.#relayout(entry, policies)
    if (entry !== this.#newest) {
      // Unlink, then push to the front.
      if (entry.older !== undefined) entry.older.newer = entry.newer
      else this.#oldest = entry.newer
      entry.newer!.older = entry.older
      entry.older = this.#newest
      entry.newer = undefined
      this.#newest!.newer = entry
      this.#newest = entry
    }
    return entry
  }

  /** The same key used with another policy list: keep counters by policy name. */
  #relayout(entry: Entry, policies: readonly RateLimitPolicy[]): void {
    const byName = new Map(entry.policies.map((p, i) => [p.name, i]))
    const index: number[] = []
    const current: number[] = []
    const previous: number[] = []
    for (const p of policies) {
      const i = byName.get(p.name)
      index.push(i === undefined ? Number.NaN : entry.index[i]!)
      current.push(i === undefined ? 0 : entry.current[i]!)
      previous.push(i === undefined ? 0 : entry.previous[i]!)
    }
    entry.policies = policies
    entry.index = index
    entry.current = current
    entry.previous = previous
  }

  #evictOldest(): void {
    const oldest = this.#oldest
    if (oldest === undefined) return
    this.#entries.delete(oldest.key)
    this.#oldest = oldest.newer
    if (this.#oldest !== undefined) this.#oldest.older = undefined
    else this.#newest = undefined
  }

  /** Drops every counter. */
  clear(): void {
    this.#entries.clear()
    this.#newest = undefined
    this.#oldest = undefined
  }

  async close(): Promise<void> {
    this.clear()
  }
}
