/**
 * The validation cache: keys by id with everything validation needs
 * precomputed, unknown ids remembered as unknown (so forged ids with valid
 * checksums do not each cost a database read), and one shared read per id
 * on a miss. Other processes' changes invalidate it through the store's
 * `subscribe`; a load that started before an invalidation does not cache
 * what it read.
 */

import type { z } from 'zod'
import type { Clock } from '../internal/clock.js'
import { compileIpList } from '../internal/ip-address.js'
import type { PendingAudit } from './audit-queue.js'
import type { ApiKeyCacheOptionsSchema } from './manager-options.js'
import { DAY_MS } from './manager-options.js'
import type { PepperRing } from './pepper-ring.js'
import type { ApiKeyChange, ApiKeyRow, ApiKeyStore } from './store.js'

/** A key in the cache, with everything validation needs precomputed. */
export interface CachedKey {
  readonly keyId: string
  hash: Buffer
  pepperVersion: number
  readonly name: string
  readonly tier: string
  readonly permissions: readonly string[]
  readonly createdAt: number
  readonly expiresAt: number
  readonly rotateAt: number
  readonly expiringSoonAt: number
  graceUntil: number | null
  revokedAt: number | null
  /** null: any address. */
  readonly allow: ((ip: string) => boolean) | null
  readonly loadedAt: number
  /** The aggregate this key's last successful validation went to (the hot path's shortcut). */
  use: PendingAudit | undefined
  /** The key's fingerprint, once it passed the HMAC check in this process (see KeyFingerprints). */
  verified: Buffer | undefined
  /** The row as loaded (its MAC checked): what a lazy rehash re-MACs. */
  readonly row: ApiKeyRow
}

/** What a load returns for a row whose MAC does not match. */
export const TAMPERED = Symbol('tampered')

/** When a key's lifecycle events are due, as shares and days of its lifetime. */
export interface LifecyclePolicy {
  readonly rotationThreshold: number
  readonly expiringSoonDays: number
}

/** A row with its lifecycle instants and compiled allowlist, as of `now`. */
export function toCachedKey(row: ApiKeyRow, now: number, policy: LifecyclePolicy): CachedKey {
  const life = row.expiresAt - row.createdAt
  return {
    keyId: row.keyId,
    hash: Buffer.from(row.hash),
    pepperVersion: row.pepperVersion,
    name: row.name,
    tier: row.tier,
    permissions: Object.freeze([...row.permissions]),
    createdAt: row.createdAt,
    expiresAt: row.expiresAt,
    rotateAt: row.createdAt + Math.floor(life * policy.rotationThreshold),
    expiringSoonAt: row.expiresAt - policy.expiringSoonDays * DAY_MS,
    graceUntil: row.graceUntil,
    revokedAt: row.revokedAt,
    allow:
      row.allowedIps === null || row.allowedIps.length === 0 ? null : compileIpList(row.allowedIps),
    loadedAt: now,
    use: undefined,
    verified: undefined,
    row,
  }
}

export class ValidationCache {
  readonly #store: ApiKeyStore
  readonly #peppers: PepperRing
  readonly #clock: Clock
  readonly #options: z.output<typeof ApiKeyCacheOptionsSchema>
  readonly #policy: LifecyclePolicy

  readonly #keys = new Map<string, CachedKey>()
  readonly #negative = new Map<string, number>()
  readonly #loading = new Map<string, Promise<CachedKey | typeof TAMPERED | undefined>>()
  /** Bumped by every invalidation: a load that started before one does not cache its row. */
  #generation = 0

  constructor(deps: {
    store: ApiKeyStore
    peppers: PepperRing
    clock: Clock
    options: z.output<typeof ApiKeyCacheOptionsSchema>
    policy: LifecyclePolicy
  }) {
    this.#store = deps.store
    this.#peppers = deps.peppers
    this.#clock = deps.clock
    this.#options = deps.options
    this.#policy = deps.policy
  }

  /** The cached key, however old (the caller checks `loadedAt` against `ttlMs`). */
  get(keyId: string): CachedKey | undefined {
    return this.#keys.get(keyId)
  }

  get ttlMs(): number {
    return this.#options.ttlMs
  }

  /** Whether `keyId` is remembered as unknown at `now` (an expired entry is dropped). */
  knownUnknown(keyId: string, now: number): boolean {
    const negativeUntil = this.#negative.get(keyId)
    if (negativeUntil === undefined) return false
    if (now < negativeUntil) return true
    this.#negative.delete(keyId)
    return false
  }

  /** Reads `keyId` from the store, one read shared by concurrent callers. */
  read(keyId: string): Promise<CachedKey | typeof TAMPERED | undefined> {
    let pending = this.#loading.get(keyId)
    if (pending === undefined) {
      pending = this.#read(keyId).finally(() => this.#loading.delete(keyId))
      this.#loading.set(keyId, pending)
    }
    return pending
  }

  async #read(keyId: string): Promise<CachedKey | typeof TAMPERED | undefined> {
    const generation = this.#generation
    const row = await this.#store.getKey(keyId)
    const now = this.#clock()
    if (row === undefined) {
      const { negativeTtlMs, maxNegativeEntries } = this.#options
      if (generation === this.#generation && negativeTtlMs > 0 && maxNegativeEntries > 0) {
        this.#negative.delete(keyId)
        this.#negative.set(keyId, now + negativeTtlMs)
        if (this.#negative.size > maxNegativeEntries)
          this.#negative.delete(this.#negative.keys().next().value!)
      }
      return undefined
    }
    if (!this.#peppers.has(row.pepperVersion)) await this.#peppers.load()
    // Precondition: revocation, expiry, permissions, tier and addresses are
    // the ones this package wrote. Not cached either way: a repaired row is
    // seen on the next request.
    if (!this.#peppers.rowIntact(row)) return TAMPERED
    const entry = this.entryOf(row, now)
    if (generation === this.#generation) this.add(entry)
    return entry
  }

  /** `row` as a cache entry under this manager's lifecycle policy. */
  entryOf(row: ApiKeyRow, now: number): CachedKey {
    return toCachedKey(row, now, this.#policy)
  }

  /** Caches `entry` as the newest (the oldest goes past `maxEntries`). */
  add(entry: CachedKey): void {
    this.#keys.delete(entry.keyId)
    this.#keys.set(entry.keyId, entry)
    this.#negative.delete(entry.keyId)
    if (this.#keys.size > this.#options.maxEntries)
      this.#keys.delete(this.#keys.keys().next().value!)
  }

  /** Applies another process's (or this one's) change to a key. */
  onChange(change: ApiKeyChange): void {
    if (change.keyId === null) return
    // A new key only makes an "unknown" entry wrong; a cached row of it is current.
    if (change.event === 'created') {
      this.#negative.delete(change.keyId)
      return
    }
    this.#generation++
    this.#keys.delete(change.keyId)
    this.#negative.delete(change.keyId)
  }

  /** Forgets everything: notifications were lost, or rows changed in bulk. */
  invalidateAll(): void {
    this.#generation++
    this.#keys.clear()
    this.#negative.clear()
  }

  clear(): void {
    this.#keys.clear()
    this.#negative.clear()
  }
}
