import { z } from 'zod'
import { parseOptions } from '../../../internal/options.js'
import type { PolicyState } from '../../errors.js'
import { fits, policyStateAt, type RateLimitPolicy } from '../sliding-window.js'
import type { ConsumeRequest, RateLimitStore, RefundRequest } from '../store.js'

export const MemoryStoreOptionsSchema = z
  .object({
    /**
     * Most clients (keys) kept, so memory stays bounded however many distinct
     * clients arrive. When full, a new client takes the place of a counter
     * that no longer counts anything (its windows have passed); when every
     * counter is live, new clients share one overflow counter per policy set
     * until one frees up. A live counter is never evicted, so a flood of new
     * keys cannot reset an existing client's count.
     * @default 100000
     */
    maxKeys: z.number().int().min(1).max(100_000_000).default(100_000),
  })
  .strict()

export type MemoryStoreOptions = z.input<typeof MemoryStoreOptionsSchema>

/**
 * How many of the least recently used counters a new key looks at for one
 * that counts nothing. In the LRU order the oldest counters are the first to
 * expire, so a few suffice; a bound keeps a full store's miss O(1).
 */
const EVICTION_SCAN = 32

/** One client's counters, one slot per policy, and its place in the LRU list. */
interface Entry {
  readonly key: string
  /** The policy list the slots are laid out for (the limiter passes the same frozen array). */
  policies: readonly RateLimitPolicy[]
  /**
   * Policies of an earlier layout that the current one lacks, their counters
   * kept past the current slots (`index[policies.length + i]`...): a key used
   * with another policy list (a route group whose routes differ) must not
   * lose, and so reset, the count of a policy it will come back to.
   */
  parked: readonly RateLimitPolicy[]
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
 * At `maxKeys` it evicts only counters whose windows have passed (they count
 * nothing, so no client gains from their loss). While every counter is live,
 * keys it does not hold are charged on one overflow counter per policy set,
 * shared by all of them: a flood of fresh keys exhausts that shared quota
 * instead of evicting, and so resetting, anybody's count.
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
  /** The shared counters of keys that found the store full of live counters, by policy set. */
  readonly #overflow = new Map<string, Entry>()
  #newest: Entry | undefined
  #oldest: Entry | undefined

  constructor(options?: MemoryStoreOptions) {
    this.#maxKeys = parseOptions('MemoryStore', MemoryStoreOptionsSchema, options).maxKeys
  }

  /** Number of clients held (for tests and metrics). */
  get size(): number {
    return this.#entries.size
  }

  /** Whether `key` has a counter of its own (false while it shares the overflow counter). */
  has(key: string): boolean {
    return this.#entries.has(key)
  }

  consume(key: string, request: ConsumeRequest): Promise<readonly PolicyState[]> {
    return Promise.resolve(this.consumeSync(key, request))
  }

  /** Synchronous form; the limiter uses it to skip a promise per request. */
  consumeSync(key: string, request: ConsumeRequest): PolicyState[] {
    const { policies, weight, now } = request
    const entry = this.#entry(key, policies, now)
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
      states[i] = policyStateAt(policy, previous, current, elapsedMs, entry.index[i]!, ok, weight)
    }
    return states
  }

  refund(key: string, request: RefundRequest): Promise<void> {
    this.refundSync(key, request)
    return Promise.resolve()
  }

  /**
   * Synchronous form of {@link refund}. `counter` says where the charge went,
   * as {@link has} told right after the charging `consumeSync`: `own` (the
   * key's counter; none once it was evicted, which only happens once the
   * charge counts nothing) or `overflow` (the shared counter of its policy
   * set). Left out, as through {@link refund}: the key's own counter while
   * the store holds it, else the overflow counter. The counter is neither
   * created, moved in the LRU list nor rolled over to another window.
   */
  refundSync(key: string, request: RefundRequest, counter?: 'own' | 'overflow'): void {
    const { policies, weight, windows } = request
    if (!(weight > 0)) return
    // A charge made on the overflow counter never comes off a counter the key
    // got later (that would lower its count below what it was charged), nor a
    // charge of the key's own counter off the overflow counter.
    const own = counter === 'overflow' ? undefined : this.#entries.get(key)
    const entry = own ?? (counter === 'own' ? undefined : this.#overflow.get(overflowId(policies)))
    if (entry === undefined) return
    const sameLayout = entry.policies === policies
    for (let i = 0; i < policies.length; i++) {
      const j = sameLayout ? i : entry.policies.findIndex((p) => p.name === policies[i]!.name)
      const charged = windows[i]
      if (j < 0 || charged === undefined) continue
      const last = entry.index[j]!
      if (last === charged) {
        entry.current[j] = Math.max(0, entry.current[j]! - weight)
      } else if (last === charged + 1) {
        // The counter moved on by one window: the charge is now in `previous`.
        entry.previous[j] = Math.max(0, entry.previous[j]! - weight)
      }
    }
  }

  /** Finds or creates a client's entry, lays it out for `policies`, and marks it most recent. */
  #entry(key: string, policies: readonly RateLimitPolicy[], now: number): Entry {
    let entry = this.#entries.get(key)
    if (entry === undefined) {
      if (this.#entries.size >= this.#maxKeys && !this.#evictIdle(now)) {
        return this.#overflowEntry(policies)
      }
      entry = newEntry(key, policies, this.#newest)
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
    const held = [...entry.policies, ...entry.parked]
    const byName = new Map(held.map((p, i) => [p.name, i]))
    const index: number[] = []
    const current: number[] = []
    const previous: number[] = []
    const copy = (i: number | undefined) => {
      index.push(i === undefined ? Number.NaN : entry.index[i]!)
      current.push(i === undefined ? 0 : entry.current[i]!)
      previous.push(i === undefined ? 0 : entry.previous[i]!)
    }
    for (const p of policies) copy(byName.get(p.name))
    const names = new Set(policies.map((p) => p.name))
    const parked = held.filter((p) => !names.has(p.name))
    for (const p of parked) copy(byName.get(p.name))
    entry.policies = policies
    entry.parked = parked
    entry.index = index
    entry.current = current
    entry.previous = previous
  }

  /** Evicts one of the least recently used counters if it counts nothing at `now`. */
  #evictIdle(now: number): boolean {
    let candidate = this.#oldest
    for (let i = 0; i < EVICTION_SCAN && candidate !== undefined; i++) {
      if (isIdle(candidate, now)) {
        this.#unlink(candidate)
        this.#entries.delete(candidate.key)
        return true
      }
      candidate = candidate.newer
    }
    return false
  }

  #unlink(entry: Entry): void {
    if (entry.older !== undefined) entry.older.newer = entry.newer
    else this.#oldest = entry.newer
    if (entry.newer !== undefined) entry.newer.older = entry.older
    else this.#newest = entry.older
  }

  /**
   * The counter keys share while the store is full of live counters. One per
   * policy set, so a route's newcomers never charge another route's quota;
   * policy sets come from configuration, never from clients, so the map stays small.
   */
  #overflowEntry(policies: readonly RateLimitPolicy[]): Entry {
    const id = overflowId(policies)
    let entry = this.#overflow.get(id)
    if (entry === undefined) {
      entry = newEntry(`overflow:${id}`, policies, undefined)
      this.#overflow.set(id, entry)
    } else if (entry.policies !== policies) entry.policies = policies
    return entry
  }

  /** Drops every counter. */
  clear(): void {
    this.#entries.clear()
    this.#overflow.clear()
    this.#newest = undefined
    this.#oldest = undefined
  }

  async close(): Promise<void> {
    this.clear()
  }
}

/** The overflow counter's id of a policy set. */
function overflowId(policies: readonly RateLimitPolicy[]): string {
  return policies.map((p) => `${p.name}:${p.max}:${p.windowMs}`).join(',')
}

function newEntry(
  key: string,
  policies: readonly RateLimitPolicy[],
  older: Entry | undefined,
): Entry {
  const n = policies.length
  return {
    key,
    policies,
    parked: [],
    index: new Array<number>(n).fill(Number.NaN),
    current: new Array<number>(n).fill(0),
    previous: new Array<number>(n).fill(0),
    newer: undefined,
    older,
  }
}

/**
 * Whether a counter counts nothing at `now` for any of its policies, so
 * dropping it changes no decision: each window is two or more windows old,
 * or the windows still weighed hold zero.
 */
function isIdle(entry: Entry, now: number): boolean {
  const n = entry.policies.length
  for (let i = 0; i < n + entry.parked.length; i++) {
    const last = entry.index[i]!
    if (Number.isNaN(last)) continue
    const policy = i < n ? entry.policies[i]! : entry.parked[i - n]!
    const x = Math.floor(now / policy.windowMs)
    if (last < x - 1) continue
    if (last === x - 1 ? entry.current[i] !== 0 : entry.current[i] !== 0 || entry.previous[i] !== 0)
      return false
  }
  return true
}
