/**
 * The administrative reads and sweeps of `ApiKeyManager`: records, the
 * retained key, leak reports, lifecycle sweeps and sealing rows written
 * before the row MAC existed. None of them is on the validation hot path.
 */
import type { Clock } from '../internal/clock.js'
import type { KeyManager } from '../kms/index.js'
import { ApiKeyStoreError } from './errors.js'
import type { LifecycleEmitter } from './events.js'
import { KEY_ID_LENGTH, keyIdOf, scanApiKey } from './format.js'
import { hashesEqual } from './hash.js'
import type { ApiKeyActionContext, ApiKeyRecord, LifecycleReport } from './manager-types.js'
import type { PepperRing } from './pepper-ring.js'
import { lifecycleEvent } from './records.js'
import type { ApiKeyRow, ApiKeyStore, ListApiKeysOptions } from './store.js'
import type { ValidationCache } from './validation-cache.js'

/** Rows read per page by the sweeps. */
const SEAL_PAGE = 500
const LIFECYCLE_PAGE = 1000

export class KeyMaintenance {
  readonly #store: ApiKeyStore
  readonly #peppers: PepperRing
  readonly #cache: ValidationCache
  readonly #events: LifecycleEmitter
  readonly #keyManager: KeyManager
  readonly #prefixes: readonly string[]
  readonly #clock: Clock
  readonly #record: (row: ApiKeyRow) => ApiKeyRecord
  readonly #revoke: (
    keyId: string,
    reason: string,
    context: ApiKeyActionContext,
  ) => Promise<unknown>

  constructor(deps: {
    store: ApiKeyStore
    peppers: PepperRing
    cache: ValidationCache
    events: LifecycleEmitter
    keyManager: KeyManager
    /** Sorted longest first (format.ts `sortPrefixes`). */
    prefixes: readonly string[]
    clock: Clock
    record: (row: ApiKeyRow) => ApiKeyRecord
    /** The manager's public `revoke`: a leaked key is revoked as any other. */
    revoke: (keyId: string, reason: string, context: ApiKeyActionContext) => Promise<unknown>
  }) {
    this.#store = deps.store
    this.#peppers = deps.peppers
    this.#cache = deps.cache
    this.#events = deps.events
    this.#keyManager = deps.keyManager
    this.#prefixes = deps.prefixes
    this.#clock = deps.clock
    this.#record = deps.record
    this.#revoke = deps.revoke
  }

  async list(options: ListApiKeysOptions): Promise<ApiKeyRecord[]> {
    const rows = await this.#store.listKeys(options)
    return rows.map((r) => this.#record(r))
  }

  async get(keyId: string): Promise<ApiKeyRecord | undefined> {
    if (typeof keyId !== 'string' || keyId.length !== KEY_ID_LENGTH) return undefined
    const row = await this.#store.getKey(keyId)
    return row === undefined ? undefined : this.#record(row)
  }

  async reveal(keyId: string): Promise<string | undefined> {
    const row = await this.#store.getKey(keyId)
    if (row?.encryptedKey == null) return undefined
    await this.#keyManager.initialize()
    return this.#keyManager.localDecrypt(row.encryptedKey, `api-key:${keyId}`)
  }

  async reportLeak(
    token: string,
    details: { source?: string; url?: string },
    context: ApiKeyActionContext,
  ): Promise<boolean> {
    if (scanApiKey(token, this.#prefixes) === undefined) return false
    const keyId = keyIdOf(token)
    const row = await this.#store.getKey(keyId)
    if (row === undefined) return false
    if (!this.#peppers.has(row.pepperVersion)) await this.#peppers.load()
    const pepper = this.#peppers.get(row.pepperVersion)
    if (pepper === undefined) return false
    // Only the exact key (its HMAC matches) revokes: a report naming a real
    // id with a wrong secret must not let anyone revoke other people's keys.
    const hash = pepper.mac(token)
    if (!hashesEqual(hash, row.hash)) return false
    const where = [details.source, details.url].filter((x) => typeof x === 'string' && x !== '')
    await this.#revoke(
      keyId,
      `leaked${where.length > 0 ? `: ${where.join(' ')}` : ''}`.slice(0, 500),
      context,
    )
    return true
  }

  async sealUnmacedRows(): Promise<{ sealed: number }> {
    const setRowMac = this.#store.setRowMac?.bind(this.#store)
    if (setRowMac === undefined) {
      throw new ApiKeyStoreError('this API-key store cannot set row MACs (no setRowMac)')
    }
    let sealed = 0
    for (let offset = 0; ; offset += SEAL_PAGE) {
      const rows = await this.#store.listKeys({ limit: SEAL_PAGE, offset })
      for (const row of rows) {
        if (row.rowMac != null) continue
        if (!this.#peppers.has(row.pepperVersion)) await this.#peppers.load()
        if (await setRowMac(row.keyId, this.#peppers.rowMacOf(row))) sealed++
      }
      if (rows.length < SEAL_PAGE) break
    }
    this.#cache.invalidateAll()
    return { sealed }
  }

  async checkLifecycle(): Promise<LifecycleReport> {
    const report: LifecycleReport = { rotationRecommended: [], expiringSoon: [], expired: [] }
    const now = this.#clock()
    for (let offset = 0; ; offset += LIFECYCLE_PAGE) {
      const rows = await this.#store.listKeys({
        includeRevoked: false,
        limit: LIFECYCLE_PAGE,
        offset,
      })
      for (const row of rows) {
        if (row.replacedBy !== null) continue
        const entry = this.#cache.entryOf(row, now)
        const event = lifecycleEvent(entry)
        if (now >= entry.expiresAt) {
          report.expired.push(row.keyId)
          this.#events.emit('expired', event)
          continue
        }
        if (now >= entry.rotateAt) {
          report.rotationRecommended.push(row.keyId)
          this.#events.emit('rotationRecommended', event)
        }
        if (now >= entry.expiringSoonAt) {
          report.expiringSoon.push(row.keyId)
          this.#events.emit('expiringSoon', event)
        }
      }
      if (rows.length < LIFECYCLE_PAGE) break
    }
    return report
  }
}
