/**
 * The API-key store contract. PostgreSQL and SQLite implement it on the
 * shared SQL layer (sql.ts); a store of your own passes the same contract
 * suite. The store never sees a key: only its HMAC.
 */
import type { AuditChainKey, AuditEventInput, AuditRecord } from './audit-chain.js'

/** One row of `api_keys`, as the store reads and writes it. */
export interface ApiKeyRow {
  readonly keyId: string
  /** HMAC-SHA256(pepper, key): 32 bytes. */
  readonly hash: Uint8Array
  readonly pepperVersion: number
  readonly name: string
  readonly prefix: string
  readonly region: string
  /** Display start: the key up to the first 4 characters of its secret. */
  readonly start: string
  readonly tier: string
  readonly permissions: readonly string[]
  /** IPs/CIDRs the key may be used from; null for anywhere. */
  readonly allowedIps: readonly string[] | null
  /** Milliseconds since the epoch, like every time below. */
  readonly createdAt: number
  readonly expiresAt: number
  readonly rotatedAt: number | null
  readonly graceUntil: number | null
  readonly replacedBy: string | null
  readonly revokedAt: number | null
  readonly revokedReason: string | null
  readonly lastUsedAt: number | null
  /** Who created it (admin principal), if known. */
  readonly createdBy: string | null
  /** The key sealed with `KeyManager.localEncrypt` (with `retainEncryptedKey`), else null. */
  readonly encryptedKey: string | null
  /**
   * HMAC-SHA256 over the row's security-relevant columns (row-mac.ts), under
   * a subkey of its pepper. A store keeps it as given; null or missing
   * (rows written before it existed, or by a store that drops it) is refused
   * until `ApiKeyManager.sealUnmacedRows()` runs.
   */
  readonly rowMac?: Uint8Array | null
}

/** A pepper, wrapped by the KMS (EncryptedData JSON). Never the plaintext. */
export interface PepperRow {
  readonly version: number
  readonly wrapped: string
  readonly createdAt: number
}

/** A change another process must apply to its cache. */
export interface ApiKeyChange {
  readonly event: 'created' | 'rotated' | 'revoked' | 'pepper'
  readonly keyId: string | null
}

/** What one flush writes, in one transaction. */
export interface ApiKeyFlush {
  /** Latest use per key. Only ever moves `last_used_at` forward. */
  readonly lastUsed: ReadonlyMap<string, number>
  /** Lazy rehashes under the current pepper, guarded by the version they replace. */
  readonly rehash: ReadonlyArray<{
    readonly keyId: string
    readonly hash: Uint8Array
    readonly pepperVersion: number
    readonly fromVersion: number
    /** The row's MAC under the new pepper's subkey. */
    readonly rowMac?: Uint8Array
    /** The MAC it replaces: a row changed since it was read (revoked, rotated) keeps its own. */
    readonly fromRowMac?: Uint8Array | undefined
  }>
  readonly audit: readonly AuditEventInput[]
}

export interface ListApiKeysOptions {
  /** Include revoked keys. @default true */
  readonly includeRevoked?: boolean
  /** @default 1000 */
  readonly limit?: number
  /** @default 0 */
  readonly offset?: number
}

/** Outcome of {@link ApiKeyStore.retirePepper}. */
export type RetirePepperOutcome = 'retired' | 'missing' | 'in-use'

/** Outcome of {@link ApiKeyStore.rotateKey}. */
export type RotateOutcome = 'rotated' | 'missing' | 'conflict'

export interface ApiKeyStore {
  /** Creates or upgrades the tables; idempotent, safe when processes start together. */
  migrate(): Promise<void>

  /** Every pepper, oldest first. */
  listPeppers(): Promise<PepperRow[]>
  /** Adds a pepper unless its version exists; true when this call added it. */
  addPepper(row: PepperRow, audit: AuditEventInput): Promise<boolean>

  /**
   * Deletes a pepper version unless a key row still uses it (checked in the
   * same transaction, under the chain's lock), appending `audit`. Key
   * writes refuse a version that no longer exists.
   */
  retirePepper(version: number, audit: AuditEventInput): Promise<RetirePepperOutcome>

  /** Adds a key unless its id exists (true when added), with its audit event, atomically. */
  insertKey(row: ApiKeyRow, audit: AuditEventInput): Promise<boolean>
  getKey(keyId: string): Promise<ApiKeyRow | undefined>
  /** Keys, newest first. */
  listKeys(options?: ListApiKeysOptions): Promise<ApiKeyRow[]>
  /**
   * Atomically: if `keyId` exists, is not revoked and was never rotated,
   * marks it rotated (`rotatedAt`, `graceUntil`, `replacedBy`), inserts
   * `replacement`, and appends `audit`.
   */
  rotateKey(
    keyId: string,
    change: {
      rotatedAt: number
      graceUntil: number
      replacement: ApiKeyRow
      /** The rotated row's MAC with the three changes applied. */
      rowMac?: Uint8Array
    },
    audit: readonly AuditEventInput[],
  ): Promise<RotateOutcome>
  /**
   * Revokes `keyId` (first revocation wins; later calls change nothing and
   * append nothing). Returns the row afterwards, undefined when unknown.
   */
  revokeKey(
    keyId: string,
    change: {
      revokedAt: number
      reason: string
      /** The row's MAC with `revokedAt` applied. */
      rowMac?: Uint8Array
    },
    audit: AuditEventInput,
  ): Promise<ApiKeyRow | undefined>
  /**
   * Sets `rowMac` on a row that has none (guarded: a row that has one is
   * left alone). For `ApiKeyManager.sealUnmacedRows()`.
   */
  setRowMac?(keyId: string, rowMac: Uint8Array): Promise<boolean>

  /** Writes a batch of deferred work (last use, rehashes, audit) in one transaction. */
  flush(batch: ApiKeyFlush): Promise<void>
  /** Appends events to the chain. */
  appendAudit(events: readonly AuditEventInput[]): Promise<void>
  /** Audit rows with `seq > afterSeq`, in order, at most `limit`. */
  readAudit(afterSeq: number, limit: number): Promise<AuditRecord[]>
  /** The newest audit row, undefined for an empty log. */
  lastAudit(): Promise<AuditRecord | undefined>
  /**
   * The key every later append MACs its link with (HMAC-SHA256, see
   * audit-chain.ts). `ApiKeyManager` sets it at start, before it writes;
   * without one a store chains with plain SHA-256, which anyone can forge.
   */
  useAuditKey(key: AuditChainKey | undefined): void

  /**
   * Calls `onChange` for every key change made by any process sharing the
   * store, and `onReset` when changes may have been missed (a lost
   * connection): drop the whole cache then. Resolves once listening.
   */
  subscribe(
    onChange: (change: ApiKeyChange) => void,
    onReset: () => void,
  ): Promise<() => Promise<void>>

  /** Releases what the store opened; never a pool or database the caller passed in. */
  close(): Promise<void>
}
