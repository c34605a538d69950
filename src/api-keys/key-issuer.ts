/**
 * The flows that write a key row: create, rotate and revoke. Each writes
 * the row (with its row MAC) and its audit events in one store transaction,
 * then updates this process's cache and emits the lifecycle event; other
 * processes learn of it through the store's change notification.
 */

import type { z } from 'zod'
import type { Clock } from '../internal/clock.js'
import { parseOptions } from '../internal/options.js'
import type { RandomBytes } from '../internal/random.js'
import type { KeyManager } from '../kms/index.js'
import {
  ApiKeyConflictError,
  ApiKeyNotFoundError,
  ApiKeyStoreError,
  ApiKeyTamperedError,
} from './errors.js'
import type { LifecycleEmitter } from './events.js'
import { formatApiKey, keyIdOf, SECRET_LENGTH } from './format.js'
import {
  type CreateApiKeyInput,
  CreateApiKeySchema,
  DAY_MS,
  type ResolvedApiKeyManagerOptions,
  type RotateApiKeyInput,
  RotateApiKeySchema,
} from './manager-options.js'
import type {
  ApiKeyActionContext,
  ApiKeyRecord,
  CreatedApiKey,
  RotatedApiKey,
} from './manager-types.js'
import type { PepperRing } from './pepper-ring.js'
import { auditEventOf, lifecycleEvent } from './records.js'
import type { ApiKeyRow, ApiKeyStore } from './store.js'
import type { ValidationCache } from './validation-cache.js'
import type { KeyValidator } from './validator.js'

/** Draws of a new key id before giving up: a collision of 71-bit ids is already rare. */
const ID_ATTEMPTS = 5

/** The columns a new row takes from its creator (or from the key it replaces). */
interface NewRowFields {
  prefix: string
  region: string
  name: string
  tier: string
  permissions: readonly string[]
  allowedIps: readonly string[] | null
  createdAt: number
  expiresAt: number
  createdBy: string | null
}

export class KeyIssuer {
  readonly #store: ApiKeyStore
  readonly #peppers: PepperRing
  readonly #cache: ValidationCache
  readonly #validator: Pick<KeyValidator, 'reject'>
  readonly #events: LifecycleEmitter
  readonly #keyManager: KeyManager
  readonly #random: RandomBytes
  readonly #clock: Clock
  readonly #o: ResolvedApiKeyManagerOptions
  readonly #record: (row: ApiKeyRow) => ApiKeyRecord

  constructor(deps: {
    store: ApiKeyStore
    peppers: PepperRing
    cache: ValidationCache
    /** Counts a refused rotation of a tampered row as the validator counts rejections. */
    validator: Pick<KeyValidator, 'reject'>
    events: LifecycleEmitter
    keyManager: KeyManager
    random: RandomBytes
    clock: Clock
    options: ResolvedApiKeyManagerOptions
    record: (row: ApiKeyRow) => ApiKeyRecord
  }) {
    this.#store = deps.store
    this.#peppers = deps.peppers
    this.#cache = deps.cache
    this.#validator = deps.validator
    this.#events = deps.events
    this.#keyManager = deps.keyManager
    this.#random = deps.random
    this.#clock = deps.clock
    this.#o = deps.options
    this.#record = deps.record
  }

  /** `create`'s input, checked before the manager initializes (a bad input starts nothing). */
  parseCreate(input: CreateApiKeyInput): z.output<typeof CreateApiKeySchema> {
    const i = parseOptions('ApiKeyManager.create', CreateApiKeySchema, input)
    if (i.prefix !== undefined && !this.#o.prefixes.includes(i.prefix)) {
      throw new ApiKeyConflictError('prefix is not one of the configured prefixes')
    }
    return i
  }

  parseRotate(options: RotateApiKeyInput): z.output<typeof RotateApiKeySchema> {
    return parseOptions('ApiKeyManager.rotate', RotateApiKeySchema, options)
  }

  /** `ApiKeyManager.create`, with its input parsed and the manager initialized. */
  async create(
    i: z.output<typeof CreateApiKeySchema>,
    context: ApiKeyActionContext,
  ): Promise<CreatedApiKey> {
    const now = this.#clock()
    const prefix = i.prefix ?? this.#o.prefixes[0]!
    const region = i.region ?? this.#o.defaultRegion
    const expiresAt = now + (i.expiresInDays ?? this.#o.defaultExpiresInDays) * DAY_MS
    for (let attempt = 0; attempt < ID_ATTEMPTS; attempt++) {
      const key = formatApiKey({ prefix, region }, this.#random)
      const keyId = keyIdOf(key)
      const row = await this.#newRow(key, keyId, {
        prefix,
        region,
        name: i.name,
        tier: i.tier,
        permissions: i.permissions,
        allowedIps: i.allowedIps ?? null,
        createdAt: now,
        expiresAt,
        createdBy: context.actor ?? null,
      })
      const inserted = await this.#store.insertKey(
        row,
        auditEventOf('created', keyId, context, now, {
          name: i.name,
          tier: i.tier,
          prefix,
          region,
          expiresAt,
        }),
      )
      if (!inserted) continue // a 71-bit id collision: draw again
      this.#cache.add(this.#cache.entryOf(row, now))
      const record = this.#record(row)
      this.#events.emit('created', lifecycleEvent(record))
      return { key, keyId, record }
    }
    throw new ApiKeyStoreError('could not draw an unused key id')
  }

  /** `ApiKeyManager.rotate`, with its options parsed and the manager initialized. */
  async rotate(
    keyId: string,
    o: z.output<typeof RotateApiKeySchema>,
    context: ApiKeyActionContext,
  ): Promise<RotatedApiKey> {
    const old = await this.#store.getKey(keyId)
    if (old === undefined) throw new ApiKeyNotFoundError()
    if (!this.#peppers.has(old.pepperVersion)) await this.#peppers.load()
    // Precondition: the replacement inherits tier, permissions and
    // addresses: from an edited row it would launder the edit into a valid MAC.
    if (!this.#peppers.rowIntact(old)) {
      throw this.#validator.reject(new ApiKeyTamperedError(), keyId, null, this.#clock())
    }
    if (old.revokedAt !== null) throw new ApiKeyConflictError('a revoked API key cannot be rotated')
    if (old.replacedBy !== null) throw new ApiKeyConflictError('this API key was already rotated')
    const now = this.#clock()
    const graceUntil = now + (o.graceMinutes ?? this.#o.defaultGraceMinutes) * 60_000
    const lifetime =
      o.expiresInDays === undefined ? old.expiresAt - old.createdAt : o.expiresInDays * DAY_MS
    for (let attempt = 0; attempt < ID_ATTEMPTS; attempt++) {
      const key = formatApiKey({ prefix: old.prefix, region: old.region }, this.#random)
      const newId = keyIdOf(key)
      if ((await this.#store.getKey(newId)) !== undefined) continue
      const row = await this.#newRow(key, newId, {
        prefix: old.prefix,
        region: old.region,
        name: old.name,
        tier: old.tier,
        permissions: old.permissions,
        allowedIps: old.allowedIps,
        createdAt: now,
        expiresAt: now + lifetime,
        createdBy: context.actor ?? null,
      })
      const outcome = await this.#store.rotateKey(
        keyId,
        {
          rotatedAt: now,
          graceUntil,
          replacement: row,
          rowMac: this.#peppers.rowMacOf({ ...old, rotatedAt: now, graceUntil, replacedBy: newId }),
        },
        [
          auditEventOf('rotated', keyId, context, now, { replacedBy: newId, graceUntil }),
          auditEventOf('created', newId, context, now, {
            name: row.name,
            tier: row.tier,
            prefix: row.prefix,
            region: row.region,
            expiresAt: row.expiresAt,
            rotatedFrom: keyId,
          }),
        ],
      )
      if (outcome === 'missing') throw new ApiKeyNotFoundError()
      if (outcome === 'conflict') {
        throw new ApiKeyConflictError('this API key was revoked or rotated meanwhile')
      }
      this.#cache.add(this.#cache.entryOf(row, now))
      const cachedOld = this.#cache.get(keyId)
      if (cachedOld !== undefined) cachedOld.graceUntil = graceUntil
      const previous = this.#record({ ...old, rotatedAt: now, graceUntil, replacedBy: newId })
      const record = this.#record(row)
      this.#events.emit('rotated', {
        ...lifecycleEvent(previous),
        replacedBy: newId,
        graceUntil: new Date(graceUntil),
      })
      return { key, keyId: newId, record, previous }
    }
    throw new ApiKeyStoreError('could not draw an unused key id')
  }

  /** `ApiKeyManager.revoke`, with `why` cut to 500 characters and the manager initialized. */
  async revoke(keyId: string, why: string, context: ApiKeyActionContext): Promise<ApiKeyRecord> {
    const now = this.#clock()
    const current = await this.#store.getKey(keyId)
    if (current === undefined) throw new ApiKeyNotFoundError()
    if (!this.#peppers.has(current.pepperVersion)) await this.#peppers.load()
    // Revoking is always safe, even on an edited row: the MAC written covers
    // revokedAt, so undoing the revocation in the database breaks it again.
    const row = await this.#store.revokeKey(
      keyId,
      {
        revokedAt: now,
        reason: why,
        rowMac: this.#peppers.rowMacOf({ ...current, revokedAt: now }),
      },
      auditEventOf('revoked', keyId, context, now, { reason: why }),
    )
    if (row === undefined) throw new ApiKeyNotFoundError()
    const cached = this.#cache.get(keyId)
    if (cached !== undefined) cached.revokedAt = row.revokedAt
    const record = this.#record(row)
    if (row.revokedAt === now) {
      this.#events.emit('revoked', { ...lifecycleEvent(record), reason: row.revokedReason ?? why })
    }
    return record
  }

  /** A row for `key`: its HMAC under the current pepper, never the key (unless sealed). */
  async #newRow(key: string, keyId: string, f: NewRowFields): Promise<ApiKeyRow> {
    const version = this.#peppers.current
    const pepper = this.#peppers.get(version)
    if (pepper === undefined) throw new ApiKeyStoreError('no API-key pepper is loaded')
    const encryptedKey = this.#o.retainEncryptedKey
      ? await this.#keyManager.localEncrypt(key, `api-key:${keyId}`)
      : null
    const row: ApiKeyRow = {
      keyId,
      hash: pepper.mac(key),
      pepperVersion: version,
      name: f.name,
      prefix: f.prefix,
      region: f.region,
      // Prefix, region, id and 4 of the 32 secret characters (≈ 24 of 190 bits).
      start: key.slice(0, key.length - (SECRET_LENGTH - 4) - 6),
      tier: f.tier,
      permissions: [...f.permissions],
      allowedIps: f.allowedIps === null ? null : [...f.allowedIps],
      createdAt: f.createdAt,
      expiresAt: f.expiresAt,
      rotatedAt: null,
      graceUntil: null,
      replacedBy: null,
      revokedAt: null,
      revokedReason: null,
      lastUsedAt: null,
      createdBy: f.createdBy,
      encryptedKey,
    }
    return { ...row, rowMac: this.#peppers.rowMacOf(row) }
  }
}
