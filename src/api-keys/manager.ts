/**
 * `ApiKeyManager`: issue, validate, rotate and revoke API keys. The store
 * keeps only `HMAC-SHA256(pepper, key)` under a KMS-wrapped pepper
 * (pepper-ring.ts); `validate` makes no KMS call, at most one database read
 * and no write (validator.ts, validation-cache.ts, audit-queue.ts).
 *
 * This class owns readiness (initialize once, refuse after close) and
 * delegates to the collaborators built in manager-parts.ts.
 */
import type { AuditAnchor, AuditChainReport, AuditCheckpoint, AuditRecord } from './audit-chain.js'
import { ApiKeyStoreError } from './errors.js'
import type { ApiKeyEventListener, ApiKeyEventName } from './events.js'
import {
  type ApiKeyManagerOptions,
  type CreateApiKeyInput,
  type RotateApiKeyInput,
  resolveApiKeyManagerOptions,
} from './manager-options.js'
import {
  type ApiKeyManagerParts,
  buildApiKeyManagerParts,
  type RunningParts,
  releaseApiKeyManagerParts,
  startApiKeyManagerParts,
} from './manager-parts.js'
import type {
  ApiKeyActionContext,
  ApiKeyRecord,
  ApiKeyValidation,
  CreatedApiKey,
  LifecycleReport,
  RotatedApiKey,
  ValidateContext,
} from './manager-types.js'
import type { ApiKeyStore, ListApiKeysOptions } from './store.js'

// Kept importable from here: the manager's module exported it before its parts moved out.
export { auditNetwork } from './audit-queue.js'

/**
 * @example
 * ```ts
 * import { ApiKeyManager, SqliteApiKeyStore } from 'fraiseql-security/api-keys'
 *
 * const keys = new ApiKeyManager({
 *   store: new SqliteApiKeyStore({ filename: '.data/api-keys.db' }),
 *   keyManager, // a KeyManager over Vault, AWS KMS or Cloud KMS
 * })
 * await keys.initialize()                        // migrations, one KMS call
 * const { key } = await keys.create({ name: 'billing', region: 'eu_west_1', tier: 'pro', permissions: ['orders:read'] })
 * const grant = await keys.validate(key, { ip: request.ip }) // no KMS call, no write
 * ```
 */
export class ApiKeyManager {
  readonly #parts: ApiKeyManagerParts
  #running: RunningParts | undefined
  #ready = false
  #initializing: Promise<void> | undefined
  #closed = false

  constructor(options: ApiKeyManagerOptions = {}) {
    this.#parts = buildApiKeyManagerParts(resolveApiKeyManagerOptions(options), {
      revoke: (keyId, reason, context) => this.revoke(keyId, reason, context),
    })
  }

  /** The store keys live in. */
  get store(): ApiKeyStore {
    return this.#parts.setup.store
  }

  /** Subscribes to a lifecycle event; returns the unsubscribe function. */
  on<E extends ApiKeyEventName>(event: E, listener: ApiKeyEventListener<E>): () => void {
    return this.#parts.events.on(event, listener)
  }

  off<E extends ApiKeyEventName>(event: E, listener: ApiKeyEventListener<E>): void {
    this.#parts.events.off(event, listener)
  }

  // ------------------------------------------------------------ start, stop

  /**
   * Migrates the store, unwraps the pepper (creating it on first start: one
   * KMS call either way, per pepper version), subscribes to other processes'
   * changes and starts the flush timer. Idempotent; every other method calls
   * it first.
   */
  async initialize(): Promise<void> {
    if (this.#ready) return
    if (this.#closed) throw new ApiKeyStoreError('ApiKeyManager is closed')
    this.#initializing ??= startApiKeyManagerParts(this.#parts, {
      checkpoint: () => this.checkpoint(),
      flush: () => this.flush(),
    })
      .then((running) => {
        this.#running = running
        this.#ready = true
      })
      .finally(() => {
        this.#initializing = undefined
      })
    return this.#initializing
  }

  /**
   * Writes what is queued, stops listening and flushing, and wipes what it
   * can: the padded HMAC keys (`K ⊕ ipad`, `K ⊕ opad`) of every pepper and
   * of every row-MAC subkey, and the fingerprint salt. Each pepper's
   * plaintext was zeroed right after unwrapping. What cannot be wiped: the
   * Node.js `KeyObject` each pepper also keeps (for `createHmac` where
   * `crypto.hash` is missing, or a message over 1 KiB) lives in OpenSSL
   * memory JavaScript cannot zero; it is released to the garbage collector.
   * Closes the store only if the manager created it (the default).
   */
  async close(): Promise<void> {
    if (this.#closed) return
    await this.#initializing?.catch(() => {})
    this.#closed = true
    for (const timer of this.#running?.timers ?? []) clearInterval(timer)
    if (this.#ready) await this.flush().catch(() => {})
    this.#ready = false
    await releaseApiKeyManagerParts(this.#parts, this.#running)
  }

  // ------------------------------------------------------------ hot path

  /**
   * Checks a key. Resolves what it grants, or rejects with an
   * {@link ApiKeyRejectedError} (`ERR_API_KEY_MALFORMED`, `_UNKNOWN`,
   * `_REVOKED`, `_EXPIRED`, `_IP_NOT_ALLOWED`; all answer the same 401) or,
   * for a client over its failed-attempt limit whose lookup would read the
   * database, a `RateLimitExceededError` (429).
   *
   * No KMS call; at most one database read (cache miss); no write.
   */
  validate(key: string, context?: ValidateContext): Promise<ApiKeyValidation> {
    // Not async: once ready, the validator's promise is handed back without another hop.
    if (this.#ready) return this.#parts.validator.validate(key, context)
    return this.initialize().then(() => this.#parts.validator.validate(key, context))
  }

  // ------------------------------------------------------------ peppers

  /**
   * Starts a new pepper version (one KMS call). New keys are hashed with it;
   * existing keys are rehashed on their next successful validation (written
   * by the flush). Other processes load it when notified.
   */
  async rotatePepper(context: ApiKeyActionContext = {}): Promise<{ version: number }> {
    await this.initialize()
    await this.#parts.peppers.add(this.#parts.peppers.current + 1, context.actor ?? 'system')
    return { version: this.#parts.peppers.current }
  }
  /**
   * Retires an old pepper version once no stored key uses it: deletes its
   * wrapped row (audited as a `pepper` event with `retired: true`) and
   * wipes this process's copy; other processes drop theirs on the change
   * notification. Keys still hashed under it are moved by the lazy rehash
   * of their next validation. Refuses, with
   * `ERR_API_KEY_PEPPER_IN_USE`, while any key row (revoked ones too: they
   * must still be refused as revoked) uses it, for the current version,
   * and for version 1, which keys the audit chain. Retiring a version that
   * does not exist (any more) returns `retired: false`.
   *
   * @example
   * ```ts
   * await manager.rotatePepper()            // version 2
   * // ... once every key has validated or been rotated since:
   * await manager.retirePepper(1)           // refused: version 1 keys the audit chain
   * ```
   */
  async retirePepper(
    version: number,
    context: ApiKeyActionContext = {},
  ): Promise<{ version: number; retired: boolean }> {
    await this.initialize()
    return this.#parts.peppers.retire(version, context, () => this.flush())
  }

  // ------------------------------------------------------------ administration

  /**
   * Creates a key. The key is returned this once; the store keeps only its
   * HMAC. Writes the row and its `created` audit event in one transaction.
   */
  async create(
    input: CreateApiKeyInput,
    context: ApiKeyActionContext = {},
  ): Promise<CreatedApiKey> {
    const i = this.#parts.issuer.parseCreate(input)
    await this.initialize()
    return this.#parts.issuer.create(i, context)
  }

  /**
   * Replaces a key: a new key with the same name, region, tier, permissions
   * and allowlist; the old one keeps working for `graceMinutes`, then is
   * refused as expired. A revoked or already rotated key cannot be rotated
   * (`ERR_API_KEY_CONFLICT`).
   */
  async rotate(
    keyId: string,
    options: RotateApiKeyInput = {},
    context: ApiKeyActionContext = {},
  ): Promise<RotatedApiKey> {
    const o = this.#parts.issuer.parseRotate(options)
    await this.initialize()
    return this.#parts.issuer.rotate(keyId, o, context)
  }

  /**
   * Revokes a key at once, in every process sharing the store (PostgreSQL:
   * as soon as the notification arrives). Revoking twice keeps the first
   * time and reason. `ERR_API_KEY_NOT_FOUND` for an unknown id.
   */
  async revoke(
    keyId: string,
    reason = 'unspecified',
    context: ApiKeyActionContext = {},
  ): Promise<ApiKeyRecord> {
    const why = String(reason).slice(0, 500)
    await this.initialize()
    return this.#parts.issuer.revoke(keyId, why, context)
  }

  /**
   * The upgrade path for rows written before the per-row MAC existed
   * (migration `0003_api_key_row_mac` leaves them without one, and
   * validation refuses them with `ERR_API_KEY_TAMPERED`): MACs every row that
   * has none, as it stands now, and returns how many. Run it once, by hand,
   * right after upgrading and before the database could have been written by
   * anyone else: it trusts those rows' columns. Never automatic, so a writer
   * who clears a row's MAC later does not get the edit sealed.
   */
  async sealUnmacedRows(): Promise<{ sealed: number }> {
    await this.initialize()
    return this.#parts.maintenance.sealUnmacedRows()
  }

  /** Keys, newest first (never a key or hash). */
  async list(options: ListApiKeysOptions = {}): Promise<ApiKeyRecord[]> {
    await this.initialize()
    return this.#parts.maintenance.list(options)
  }

  /** One key's record, or undefined. */
  async get(keyId: string): Promise<ApiKeyRecord | undefined> {
    await this.initialize()
    return this.#parts.maintenance.get(keyId)
  }

  /**
   * The key itself, with `retainEncryptedKey` (one local AES-GCM decryption,
   * no KMS call); undefined when it was not retained.
   */
  async reveal(keyId: string): Promise<string | undefined> {
    await this.initialize()
    return this.#parts.maintenance.reveal(keyId)
  }

  /**
   * Handles a key reported as leaked (a secret-scanning report): if `token`
   * is one of our keys, exactly (its HMAC matches), it is revoked and this
   * returns `true`; anything else (malformed, unknown id, wrong secret)
   * returns `false` and changes nothing.
   */
  async reportLeak(
    token: string,
    details: { source?: string; url?: string } = {},
    context: ApiKeyActionContext = {},
  ): Promise<boolean> {
    await this.initialize()
    return this.#parts.maintenance.reportLeak(token, details, context)
  }

  /**
   * Emits `rotationRecommended`, `expiringSoon` and `expired` for every
   * unrevoked key in that state now, and returns their ids. Schedule it
   * (daily, from one process) to notify owners of keys nobody is using.
   */
  async checkLifecycle(): Promise<LifecycleReport> {
    await this.initialize()
    return this.#parts.maintenance.checkLifecycle()
  }

  // ------------------------------------------------------------ audit

  /**
   * Re-reads the whole audit log in order and checks every keyed link of
   * the chain; reports the `seq` of the first broken one. Flushes queued
   * events first. With `anchor` (the newest checkpoint from your
   * append-only sink, or any `{ sequence, hash }` you recorded), a deleted
   * tail (`truncated`) or a rewritten chain (`anchor`) is reported too; an
   * anchor carrying a `mac` that is not ours throws
   * `ERR_API_KEY_AUDIT_CHECKPOINT_INVALID`.
   *
   * @example
   * ```ts
   * const report = await manager.verifyAuditChain({ anchor: latestShippedCheckpoint })
   * if (!report.ok) alert(`audit log altered at row ${report.brokenAt} (${report.reason})`)
   * ```
   */
  async verifyAuditChain(
    options: { readonly anchor?: AuditAnchor | AuditCheckpoint } = {},
  ): Promise<AuditChainReport> {
    await this.initialize()
    return this.#parts.audit.verify(options.anchor, () => this.flush())
  }

  /**
   * Takes a signed checkpoint of the chain's newest row now (flushing
   * queued events first), logs it and passes it to `onCheckpoint`; rejects
   * if `onCheckpoint` does. Undefined while the log is empty.
   */
  async checkpoint(): Promise<AuditCheckpoint | undefined> {
    await this.initialize()
    return this.#parts.audit.checkpoint(() => this.flush())
  }

  /** Whether `checkpoint` carries this store's checkpoint MAC (constant time). */
  verifyCheckpoint(checkpoint: AuditCheckpoint): boolean {
    return this.#parts.audit.verifyCheckpoint(checkpoint)
  }

  /** Audit rows after `afterSeq` (never a key or hash). */
  async auditLog(afterSeq = 0, limit = 1000): Promise<AuditRecord[]> {
    await this.initialize()
    return this.#parts.setup.store.readAudit(afterSeq, Math.min(Math.max(1, limit), 10_000))
  }

  /**
   * Writes queued work now: last use, lazy rehashes and audit aggregates, in
   * one transaction (the audit chain extended under its lock). Runs every
   * `flushIntervalMs` and at `close()`. A failed flush keeps its work queued.
   */
  flush(): Promise<void> {
    return this.#parts.queue.flush()
  }
}
