/**
 * The hot path of `ApiKeyManager.validate`: strict parse and checksum → the
 * validation cache by key id (negative entries too) → HMAC and
 * `timingSafeEqual` → state checks. No KMS call, at most one database read
 * (on a cache miss, shared by concurrent callers), and no write: last use,
 * `validated` / `rejected` audit rows and lazy rehashes go to the
 * write-behind queue.
 */
import type { Clock } from '../internal/clock.js'
import { normalizeIp } from '../internal/ip-address.js'
import { type AuditQueue, auditNetwork } from './audit-queue.js'
import {
  ApiKeyExpiredError,
  ApiKeyIpNotAllowedError,
  ApiKeyMalformedError,
  type ApiKeyRejectedError,
  ApiKeyRevokedError,
  ApiKeyStoreError,
  ApiKeyTamperedError,
  ApiKeyUnknownError,
} from './errors.js'
import type { LifecycleEmitter } from './events.js'
import type { FailedAttemptGate } from './failed-attempts.js'
import { keyIdOf, scanApiKey } from './format.js'
import { hashesEqual, type KeyFingerprints } from './hash.js'
import type { ApiKeyValidation, ValidateContext } from './manager-types.js'
import type { PepperRing } from './pepper-ring.js'
import { lifecycleEvent } from './records.js'
import { type CachedKey, TAMPERED, type ValidationCache } from './validation-cache.js'

/** Lifecycle events remembered as emitted; the set is cleared past this. */
const MAX_EMITTED = 100_000

export class KeyValidator {
  readonly #prefixes: readonly string[]
  readonly #cache: ValidationCache
  readonly #peppers: PepperRing
  readonly #fingerprints: KeyFingerprints
  readonly #queue: AuditQueue
  readonly #gate: FailedAttemptGate | undefined
  readonly #events: LifecycleEmitter
  readonly #clock: Clock
  /** `event:keyId` of the lifecycle events already emitted: once per key and process. */
  readonly #emitted = new Set<string>()

  constructor(deps: {
    /** Sorted longest first (format.ts `sortPrefixes`). */
    prefixes: readonly string[]
    cache: ValidationCache
    peppers: PepperRing
    fingerprints: KeyFingerprints
    queue: AuditQueue
    gate: FailedAttemptGate | undefined
    events: LifecycleEmitter
    clock: Clock
  }) {
    this.#prefixes = deps.prefixes
    this.#cache = deps.cache
    this.#peppers = deps.peppers
    this.#fingerprints = deps.fingerprints
    this.#queue = deps.queue
    this.#gate = deps.gate
    this.#events = deps.events
    this.#clock = deps.clock
  }

  /** `ApiKeyManager.validate`, once the manager is initialized. */
  async validate(key: string, context?: ValidateContext): Promise<ApiKeyValidation> {
    const now = this.#clock()
    const rawIp = context?.ip
    const ip = rawIp === undefined || rawIp === '' ? null : normalizeIp(rawIp)
    if (scanApiKey(key, this.#prefixes) === undefined) {
      throw this.reject(new ApiKeyMalformedError(), null, ip, now)
    }
    const keyId = keyIdOf(key)
    let entry = this.#cache.get(keyId)
    if (entry === undefined || now - entry.loadedAt >= this.#cache.ttlMs) {
      const loaded = await this.#load(keyId, ip, now)
      // No such key: the id is the caller's choice, so it stays out of the
      // aggregate (random ids would each make their own row).
      if (loaded === undefined) throw this.reject(new ApiKeyUnknownError(), null, ip, now)
      // A stored row that fails its MAC: its id is real, and the audit names it.
      if (loaded === TAMPERED) throw this.reject(new ApiKeyTamperedError(), keyId, ip, now)
      entry = loaded
    }
    // A key this process already checked against the stored HMAC is
    // recognized by its fingerprint: one hash call instead of two.
    const fingerprint = this.#fingerprints.of(key)
    if (entry.verified === undefined || !hashesEqual(fingerprint, entry.verified)) {
      const pepper = this.#peppers.get(entry.pepperVersion)
      if (pepper === undefined) throw new ApiKeyStoreError('API key hashed with an unknown pepper')
      if (!hashesEqual(pepper.mac(key), entry.hash)) {
        throw this.reject(new ApiKeyUnknownError(), keyId, ip, now)
      }
      entry.verified = fingerprint
    }
    if (entry.revokedAt !== null) throw this.reject(new ApiKeyRevokedError(), keyId, ip, now)
    if (now >= entry.expiresAt || (entry.graceUntil !== null && now >= entry.graceUntil)) {
      if (now >= entry.expiresAt) this.#emitOnce('expired', entry)
      throw this.reject(new ApiKeyExpiredError(), keyId, ip, now)
    }
    if (entry.allow !== null && (ip === null || !entry.allow(ip))) {
      throw this.reject(new ApiKeyIpNotAllowedError(), keyId, ip, now)
    }
    this.#used(entry, key, ip, now)
    const shouldRotate = now >= entry.rotateAt
    if (shouldRotate) this.#emitOnce('rotationRecommended', entry)
    if (now >= entry.expiringSoonAt) this.#emitOnce('expiringSoon', entry)
    return {
      keyId,
      tier: entry.tier,
      permissions: entry.permissions,
      expiresAt: new Date(entry.expiresAt),
      shouldRotate,
    }
  }

  /** Counts a failure (audit aggregate, failed-attempt gate) and returns the error to throw. */
  reject<E extends ApiKeyRejectedError>(
    err: E,
    keyId: string | null,
    ip: string | null,
    now: number,
  ): E {
    this.#queue.rejected(
      err.reason ?? null,
      keyId,
      ip === null ? null : auditNetwork(ip),
      1,
      now,
      now,
    )
    if (this.#gate !== undefined && ip !== null) this.#gate.count(ip)
    return err
  }

  /** Cache miss: the negative cache, the failed-attempt gate, then one shared read. */
  async #load(
    keyId: string,
    ip: string | null,
    now: number,
  ): Promise<CachedKey | typeof TAMPERED | undefined> {
    if (this.#cache.knownUnknown(keyId, now)) return undefined
    this.#gate?.check(ip, now)
    return this.#cache.read(keyId)
  }

  /** Queues what a successful validation must eventually write. */
  #used(entry: CachedKey, key: string, ip: string | null, now: number): void {
    // The same client as last time, in the same batch: one increment, no lookup.
    const use = entry.use
    if (use !== undefined && use.ip === ip && use.batch === this.#queue.batch) {
      use.count++
      if (now > use.lastAt) use.lastAt = now
    } else {
      entry.use = this.#queue.validated(entry.keyId, ip, now)
    }
    // Lazy rehash under the current pepper: queued for the flush, and the
    // cache switches at once (both peppers stay loaded).
    const current = this.#peppers.current
    if (entry.pepperVersion !== current) {
      const pepper = this.#peppers.get(current)
      if (pepper !== undefined) {
        const hash = pepper.mac(key)
        const mac = this.#peppers.rowMacOf({ ...entry.row, hash, pepperVersion: current })
        this.#queue.rehash({
          keyId: entry.keyId,
          hash,
          pepperVersion: current,
          fromVersion: entry.pepperVersion,
          rowMac: mac,
          fromRowMac: entry.row.rowMac ?? undefined,
        })
        entry.hash = hash
        entry.pepperVersion = current
      }
    }
  }

  #emitOnce(event: 'rotationRecommended' | 'expiringSoon' | 'expired', entry: CachedKey): void {
    if (!this.#events.has(event)) return
    const id = `${event}:${entry.keyId}`
    if (this.#emitted.has(id)) return
    if (this.#emitted.size >= MAX_EMITTED) this.#emitted.clear()
    this.#emitted.add(id)
    this.#events.emit(event, lifecycleEvent(entry))
  }
}
