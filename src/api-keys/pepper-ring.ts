/**
 * The API-key peppers of one process: every stored version, unwrapped once
 * by the KMS (the pepper never exists in the store unwrapped), with the
 * subkeys derived from it: a row-MAC key per version and, from version 1,
 * the audit chain's link and checkpoint keys (row-mac.ts).
 */
import type { Clock } from '../internal/clock.js'
import type { RandomBytes } from '../internal/random.js'
import { unwrapReserved, wrapReserved } from '../internal/reserved-access.js'
import { EncryptedData, type KeyManager } from '../kms/index.js'
import { ApiKeyPepperInUseError, ApiKeyRequestError, ApiKeyStoreError } from './errors.js'
import { Pepper } from './hash.js'
import type { ApiKeyActionContext } from './manager-types.js'
import { auditEventOf } from './records.js'
import { auditKeys, rowMac, rowMacKey, rowMacValid } from './row-mac.js'
import type { ApiKeyRow, ApiKeyStore } from './store.js'

/** The audit chain's link and checkpoint subkeys. */
export type AuditKeys = { chain: Pepper; checkpoint: Pepper }

/** Context bound to a wrapped pepper: it cannot be swapped for another version's. */
const pepperContext = (version: number) => ({ 'fraiseql.api-key-pepper': String(version) })

export class PepperRing {
  readonly #store: ApiKeyStore
  readonly #keyManager: KeyManager
  readonly #random: RandomBytes
  readonly #clock: Clock

  readonly #peppers = new Map<number, Pepper>()
  /** Row-MAC subkeys by pepper version (row-mac.ts). */
  readonly #rowMacKeys = new Map<number, Pepper>()
  /** Audit-chain link and checkpoint subkeys of pepper version 1 (row-mac.ts). */
  #auditKeys: AuditKeys | undefined
  /** Pepper 1's plaintext, copied until `installAuditKeys` derives from it and zeroes it. */
  readonly #pepperPlain = new Map<number, Buffer>()
  #current = 0
  #loading: Promise<void> | undefined

  constructor(deps: {
    store: ApiKeyStore
    keyManager: KeyManager
    random: RandomBytes
    clock: Clock
  }) {
    this.#store = deps.store
    this.#keyManager = deps.keyManager
    this.#random = deps.random
    this.#clock = deps.clock
  }

  /** The version new keys are hashed with: the newest loaded. */
  get current(): number {
    return this.#current
  }

  get size(): number {
    return this.#peppers.size
  }

  has(version: number): boolean {
    return this.#peppers.has(version)
  }

  get(version: number): Pepper | undefined {
    return this.#peppers.get(version)
  }

  /** The audit keys, once `installAuditKeys` ran (undefined before, and after `dispose`). */
  get auditKeys(): AuditKeys | undefined {
    return this.#auditKeys
  }

  auditKeysOrThrow(): AuditKeys {
    if (this.#auditKeys === undefined)
      throw new ApiKeyStoreError('ApiKeyManager is not initialized')
    return this.#auditKeys
  }

  /** Whether `row` carries the MAC of its security-relevant columns. */
  rowIntact(row: ApiKeyRow): boolean {
    const key = this.#rowMacKeys.get(row.pepperVersion)
    return key !== undefined && rowMacValid(key, row)
  }

  /** The MAC `row` must carry (under its pepper version's subkey). */
  rowMacOf(row: Parameters<typeof rowMac>[1]): Buffer {
    const key = this.#rowMacKeys.get(row.pepperVersion)
    if (key === undefined) throw new ApiKeyStoreError('no API-key pepper is loaded')
    return rowMac(key, row)
  }

  /** Loads and unwraps every pepper version this process does not hold yet (single flight). */
  load(): Promise<void> {
    this.#loading ??= (async () => {
      const rows = await this.#store.listPeppers()
      const listed = new Set(rows.map((r) => r.version))
      for (const version of [...this.#peppers.keys()]) {
        if (!listed.has(version)) this.drop(version)
      }
      for (const row of rows) {
        if (this.#peppers.has(row.version)) continue
        const wrapped = EncryptedData.fromJSON(JSON.parse(row.wrapped))
        const plain = await unwrapReserved(this.#keyManager, wrapped, pepperContext(row.version))
        try {
          if (plain.length !== 32) throw new ApiKeyStoreError('API-key pepper has the wrong length')
          this.#keep(row.version, plain)
        } finally {
          plain.fill(0)
        }
        if (row.version > this.#current) this.#current = row.version
      }
    })().finally(() => {
      this.#loading = undefined
    })
    return this.#loading
  }

  /** Holds a pepper and its row-MAC subkey; the caller zeroes `plain`. */
  #keep(version: number, plain: Uint8Array): void {
    this.#peppers.set(version, new Pepper(plain))
    this.#rowMacKeys.set(version, rowMacKey(plain))
    if (version !== 1 || this.#auditKeys !== undefined) return
    this.#pepperPlain.get(1)?.fill(0)
    this.#pepperPlain.set(1, Buffer.from(plain))
  }

  /**
   * Draws, wraps (one KMS call) and stores pepper `version`, audited as a
   * `pepper` event in the same transaction.
   */
  async add(version: number, actor: string): Promise<void> {
    const plain = Buffer.from(this.#random(32))
    // The first pepper's own audit row is the chain's first: keyed by it.
    // If another process wins version 1, that row is not written and the
    // key is replaced by the winner's below (installAuditKeys).
    const tentative = version === 1 && this.#auditKeys === undefined ? auditKeys(plain) : undefined
    if (tentative !== undefined) this.#store.useAuditKey(tentative.chain)
    try {
      if (plain.length !== 32) throw new ApiKeyStoreError('randomBytes returned the wrong length')
      const wrapped = await wrapReserved(this.#keyManager, plain, pepperContext(version))
      const at = this.#clock()
      const added = await this.#store.addPepper(
        { version, wrapped: JSON.stringify(wrapped.toJSON()), createdAt: at },
        { event: 'pepper', keyId: null, actor, ip: null, at, detail: { version } },
      )
      if (added) {
        // Ours won the version: keep it without a KMS round trip to unwrap it again.
        this.#keep(version, plain)
        if (version > this.#current) this.#current = version
      }
    } finally {
      plain.fill(0)
      if (tentative !== undefined) {
        this.#store.useAuditKey(undefined)
        tentative.chain.dispose()
        tentative.checkpoint.dispose()
      }
    }
    // Another process's, if it won the version; and any version added meanwhile.
    await this.load()
  }

  /**
   * The chain is keyed from pepper version 1: the one every store has from
   * its first start, and one `retire()` refuses, so links written under any
   * later pepper stay verifiable after that pepper is retired.
   */
  installAuditKeys(): void {
    if (this.#auditKeys !== undefined) return
    const first = this.#pepperPlain.get(1)
    if (first === undefined) {
      throw new ApiKeyStoreError('API-key pepper version 1 (the audit chain key) is missing')
    }
    this.#auditKeys = auditKeys(first)
    first.fill(0)
    this.#pepperPlain.delete(1)
    this.#store.useAuditKey(this.#auditKeys.chain)
  }

  /**
   * `ApiKeyManager.retirePepper`: refuses the current version and version 1
   * (the audit chain's key), runs `beforeRetire` (the flush: queued rehashes
   * move keys off the old version), then deletes the row unless a key row
   * still uses it.
   */
  async retire(
    version: number,
    context: ApiKeyActionContext,
    beforeRetire: () => Promise<void>,
  ): Promise<{ version: number; retired: boolean }> {
    if (!Number.isSafeInteger(version) || version < 1) {
      throw new ApiKeyRequestError('version must be a pepper version (an integer from 1)')
    }
    await this.load()
    // Precondition: never the key of new hashes or of the audit chain.
    if (version === this.#current) {
      throw new ApiKeyPepperInUseError('the current pepper version cannot be retired')
    }
    if (version === 1) {
      throw new ApiKeyPepperInUseError('pepper version 1 keys the audit chain and is kept')
    }
    await beforeRetire()
    const outcome = await this.#store.retirePepper(
      version,
      auditEventOf(
        'pepper',
        null,
        { ...context, actor: context.actor ?? 'system' },
        this.#clock(),
        {
          version,
          retired: true,
        },
      ),
    )
    if (outcome === 'in-use') {
      throw new ApiKeyPepperInUseError('a stored key still uses this pepper version')
    }
    this.drop(version)
    return { version, retired: outcome === 'retired' }
  }

  /** Wipes a retired version's pepper and row-MAC subkey. */
  drop(version: number): void {
    this.#peppers.get(version)?.dispose()
    this.#peppers.delete(version)
    this.#rowMacKeys.get(version)?.dispose()
    this.#rowMacKeys.delete(version)
  }

  /**
   * Wipes the padded HMAC keys of every pepper and subkey, and any
   * plaintext still held; detaches the audit key from the store.
   */
  dispose(): void {
    for (const pepper of this.#peppers.values()) pepper.dispose()
    for (const key of this.#rowMacKeys.values()) key.dispose()
    this.#rowMacKeys.clear()
    this.#auditKeys?.chain.dispose()
    this.#auditKeys?.checkpoint.dispose()
    this.#auditKeys = undefined
    this.#store.useAuditKey(undefined)
    for (const plain of this.#pepperPlain.values()) plain.fill(0)
    this.#pepperPlain.clear()
    this.#peppers.clear()
  }
}
