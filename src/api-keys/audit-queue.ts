/**
 * The write-behind queue of the validation hot path: last use, lazy
 * rehashes and `validated` / `rejected` audit aggregates are counted in
 * memory and written by one periodic flush, so a validation never writes.
 * What a flush writes is bounded whatever the traffic: aggregates per
 * (key, address) or per (reason, key, network), then one overflow count.
 */
import { isIP } from 'node:net'
import type { Clock } from '../internal/clock.js'
import { ipKey, normalizeIp } from '../internal/ip-address.js'
import { describeError, type Logger } from '../internal/logger.js'
import type { AuditEventInput } from './audit-chain.js'
import type { ApiKeyRejectionReason } from './errors.js'
import type { ApiKeyStore } from './store.js'

/** Validations or rejections of one (key, address, reason), counted until the next flush. */
export interface PendingAudit {
  readonly event: 'validated' | 'rejected'
  readonly keyId: string | null
  readonly ip: string | null
  readonly reason: ApiKeyRejectionReason | null
  count: number
  firstAt: number
  lastAt: number
  /** The flush batch it belongs to: a cached pointer to it is stale once the batch is written. */
  batch: number
  /** The per-reason row of rejections past `maxRejectedRowsPerFlush` networks. */
  readonly overflow?: true
}

export interface PendingRehash {
  readonly keyId: string
  readonly hash: Uint8Array
  readonly pepperVersion: number
  readonly fromVersion: number
  readonly rowMac: Uint8Array
  /** The MAC it replaces: the write is skipped when the row changed since it was read. */
  readonly fromRowMac: Uint8Array | undefined
}

/** The queue's bounds and whether validations are audited (ApiKeyManagerOptions). */
export interface AuditQueueLimits {
  readonly auditValidations: boolean
  readonly maxPendingAudit: number
  readonly maxRejectedRowsPerFlush: number
}

/**
 * The network a rejected attempt is counted under: IPv4 per /24, IPv6 per
 * /64 (one subscriber's allocation; `::ffff:` mapped addresses are IPv4),
 * anything that is not an address under one `invalid` bucket. Rotating
 * source addresses inside such a range then adds to one row's count.
 */
export function auditNetwork(ip: string): string {
  const key = ipKey(normalizeIp(ip), 64)
  if (key.includes(':')) return isIP(key.slice(0, key.lastIndexOf('/'))) === 6 ? key : 'invalid'
  if (isIP(key) !== 4) return 'invalid'
  return `${key.slice(0, key.lastIndexOf('.'))}.0/24`
}

export class AuditQueue {
  readonly #store: ApiKeyStore
  readonly #clock: Clock
  readonly #logger: Logger
  readonly #limits: AuditQueueLimits

  /** The latest `validated` aggregate per key, for `lastUsedAt` in records before a flush. */
  #pendingUse = new Map<string, PendingAudit>()
  /** Last use of a failed flush, written by the next one. */
  #carriedLastUsed = new Map<string, number>()
  #batch = 0
  #pendingRehash = new Map<string, PendingRehash>()
  #pendingAudit = new Map<string, PendingAudit>()
  #overflow = 0
  /** Rejection aggregates with a network in this batch (bounded by `maxRejectedRowsPerFlush`). */
  #pendingRejected = 0
  #flushing: Promise<void> | undefined

  constructor(deps: {
    store: ApiKeyStore
    clock: Clock
    logger: Logger
    limits: AuditQueueLimits
  }) {
    this.#store = deps.store
    this.#clock = deps.clock
    this.#logger = deps.logger
    this.#limits = deps.limits
  }

  /** The batch the next flush writes: aggregates of an earlier one are already written. */
  get batch(): number {
    return this.#batch
  }

  /** The last use of `keyId` not written yet, if any. */
  lastUsedOf(keyId: string): number | undefined {
    return this.#pendingUse.get(keyId)?.lastAt ?? this.#carriedLastUsed.get(keyId)
  }

  /** Queues a key's rehash under the current pepper (the latest per key wins). */
  rehash(rehash: PendingRehash): void {
    this.#pendingRehash.set(rehash.keyId, rehash)
  }

  /**
   * Counts one validation in its (key, address) aggregate. Past
   * `maxPendingAudit` aggregates, in one address-less aggregate per key
   * (bounded by the number of valid keys), so last use is never lost.
   */
  validated(keyId: string, ip: string | null, now: number): PendingAudit {
    let id = `validated||${keyId}|${ip ?? ''}`
    let current = this.#pendingAudit.get(id)
    if (current === undefined && this.#pendingAudit.size >= this.#limits.maxPendingAudit) {
      id = `validated||${keyId}|`
      ip = null
      current = this.#pendingAudit.get(id)
    }
    if (current !== undefined) {
      current.count++
      if (now > current.lastAt) current.lastAt = now
      current.batch = this.#batch
    } else {
      current = {
        event: 'validated',
        keyId,
        ip,
        reason: null,
        count: 1,
        firstAt: now,
        lastAt: now,
        batch: this.#batch,
      }
      this.#pendingAudit.set(id, current)
    }
    this.#pendingUse.set(keyId, current)
    return current
  }

  /**
   * Counts rejections in their (reason, key, network) aggregate. The rows a
   * flush writes for rejections are bounded whatever the number of clients:
   * addresses are grouped by /24 (IPv4) or /64 (IPv6), and past
   * `maxRejectedRowsPerFlush` networks the rest go to one row per reason.
   * Past `maxPendingAudit` aggregates, to the one overflow count.
   */
  rejected(
    reason: ApiKeyRejectionReason | null,
    keyId: string | null,
    network: string | null,
    count: number,
    firstAt: number,
    lastAt: number,
    overflow?: true,
  ): void {
    let id =
      overflow === true
        ? `rejected|${reason ?? ''}|*`
        : `rejected|${reason ?? ''}|${keyId ?? ''}|${network ?? ''}`
    let current = this.#pendingAudit.get(id)
    if (
      current === undefined &&
      overflow !== true &&
      this.#pendingRejected >= this.#limits.maxRejectedRowsPerFlush
    ) {
      overflow = true
      id = `rejected|${reason ?? ''}|*`
      current = this.#pendingAudit.get(id)
    }
    if (current === undefined) {
      if (this.#pendingAudit.size >= this.#limits.maxPendingAudit) {
        this.#overflow += count
        return
      }
      current = {
        event: 'rejected',
        keyId: overflow === true ? null : keyId,
        ip: overflow === true ? null : network,
        reason,
        count: 0,
        firstAt,
        lastAt,
        batch: this.#batch,
        ...(overflow === true ? { overflow } : {}),
      }
      this.#pendingAudit.set(id, current)
      if (overflow !== true) this.#pendingRejected++
    }
    current.count += count
    if (firstAt < current.firstAt) current.firstAt = firstAt
    if (lastAt > current.lastAt) current.lastAt = lastAt
  }

  /** Writes what is queued in one store transaction (single flight). */
  flush(): Promise<void> {
    this.#flushing ??= this.#flush().finally(() => {
      this.#flushing = undefined
    })
    return this.#flushing
  }

  async #flush(): Promise<void> {
    if (
      this.#carriedLastUsed.size === 0 &&
      this.#pendingRehash.size === 0 &&
      this.#pendingAudit.size === 0 &&
      this.#overflow === 0
    ) {
      return
    }
    const lastUsed = this.#carriedLastUsed
    const rehash = this.#pendingRehash
    const aggregates = this.#pendingAudit
    const overflow = this.#overflow
    this.#carriedLastUsed = new Map()
    this.#pendingRehash = new Map()
    this.#pendingAudit = new Map()
    this.#pendingUse = new Map()
    this.#overflow = 0
    this.#pendingRejected = 0
    this.#batch++
    for (const a of aggregates.values()) {
      if (a.event !== 'validated' || a.keyId === null) continue
      const last = lastUsed.get(a.keyId)
      if (last === undefined || last < a.lastAt) lastUsed.set(a.keyId, a.lastAt)
    }
    const audited = this.#limits.auditValidations
      ? [...aggregates.values()]
      : [...aggregates.values()].filter((a) => a.event !== 'validated')
    const audit: AuditEventInput[] = audited.map((a) => ({
      event: a.event,
      keyId: a.keyId,
      actor: null,
      ip: a.ip,
      at: a.lastAt,
      detail: {
        count: a.count,
        firstAt: a.firstAt,
        ...(a.reason === null ? {} : { reason: a.reason }),
        ...(a.overflow === true ? { overflow: true } : {}),
      },
    }))
    if (overflow > 0) {
      audit.push({
        event: 'rejected',
        keyId: null,
        actor: null,
        ip: null,
        at: this.#clock(),
        detail: { count: overflow, overflow: true },
      })
    }
    try {
      await this.#store.flush({ lastUsed, rehash: [...rehash.values()], audit })
    } catch (err) {
      this.#requeue(lastUsed, rehash, aggregates, overflow)
      this.#logger.warn(
        { err: describeError(err), queued: audit.length },
        'API-key flush failed; the work stays queued',
      )
      throw err
    }
  }

  /** Puts a failed flush's work back, merged with what was queued meanwhile. */
  #requeue(
    lastUsed: Map<string, number>,
    rehash: Map<string, PendingRehash>,
    aggregates: Map<string, PendingAudit>,
    overflow: number,
  ): void {
    for (const [k, at] of lastUsed) {
      const carried = this.#carriedLastUsed.get(k)
      if (carried === undefined || carried < at) this.#carriedLastUsed.set(k, at)
    }
    for (const [k, r] of rehash) if (!this.#pendingRehash.has(k)) this.#pendingRehash.set(k, r)
    for (const [k, a] of aggregates) {
      if (a.event === 'rejected') {
        this.rejected(a.reason, a.keyId, a.ip, a.count, a.firstAt, a.lastAt, a.overflow)
        continue
      }
      const current = this.#pendingAudit.get(k)
      if (current !== undefined) {
        current.count += a.count
        if (a.lastAt > current.lastAt) current.lastAt = a.lastAt
      } else if (this.#pendingAudit.size < this.#limits.maxPendingAudit) {
        a.batch = this.#batch
        this.#pendingAudit.set(k, a)
      }
    }
    this.#overflow += overflow
  }
}
