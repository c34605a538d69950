/**
 * The keyring contract. A keyring holds the KeyManager's data keys (DEKs),
 * only ever in wrapped form (encrypted by the KMS), with their status and a
 * use counter that several processes share. Every method is one atomic step,
 * so processes sharing a store converge on one active key.
 */
import { SecurityError, type SecurityErrorOptions } from '../../errors.js'
import type { EncryptedDataJson } from '../models.js'

/**
 * `active`: encrypts and decrypts (exactly one key is active);
 * `decrypt-only`: a former active key, kept so old ciphertexts still decrypt;
 * `retired`: no longer decrypts (after its data was re-encrypted).
 */
export type DataKeyStatus = 'active' | 'decrypt-only' | 'retired'

export const DATA_KEY_STATUSES: readonly DataKeyStatus[] = ['active', 'decrypt-only', 'retired']

/** One data key in the keyring. */
export interface KeyringEntry {
  /** 32 lowercase hex characters: the 16-byte id written into every ciphertext. */
  readonly id: string
  readonly status: DataKeyStatus
  /** The data key, wrapped by the KMS (EncryptedData JSON). Never the plaintext. */
  readonly wrappedKey: EncryptedDataJson
  /** Milliseconds since the epoch. */
  readonly createdAt: number
  /** Encryptions reserved under this key so far, by every process. */
  readonly usesReserved: number
  /**
   * Monotonic generation: each new key gets one more than every key before
   * it, so the active key is always the newest. Covered by `mac`. `null` on
   * rows written before migration `0002_keyring_row_mac` (until
   * `KeyManager.sealUnmacedDataKeys()`).
   */
  readonly generation?: number | null
  /**
   * HMAC-SHA256 (hex) over id, generation, creation time and wrapped key,
   * keyed by a subkey of the data key itself (docs/key-manager.md). Only the
   * KeyManager computes or checks it; stores keep it as given.
   */
  readonly mac?: string | null
}

/** How {@link KeyringStore.reserveUses} may reserve. */
export interface ReserveUsesOptions {
  /** Also reserve from a `decrypt-only` key. @default false */
  readonly superseded?: boolean
}

/** The entry a store adds as active: status and counter set, generation and MAC as given. */
export function newActiveEntry(entry: NewKeyringEntry): KeyringEntry {
  return {
    id: entry.id,
    status: 'active',
    wrappedKey: entry.wrappedKey,
    createdAt: entry.createdAt,
    usesReserved: 0,
    generation: entry.generation ?? null,
    mac: entry.mac ?? null,
  }
}

/** Whether `reserveUses` may reserve from a key of this status. */
export function reservable(status: DataKeyStatus | undefined, options?: ReserveUsesOptions) {
  return status === 'active' || (options?.superseded === true && status === 'decrypt-only')
}

/** A key about to be added: the store sets status and the use counter. */
export type NewKeyringEntry = Pick<
  KeyringEntry,
  'id' | 'wrappedKey' | 'createdAt' | 'generation' | 'mac'
>

export interface KeyringStore {
  /** Creates or upgrades the store's tables; idempotent and safe when processes start together. */
  migrate?(): Promise<void>
  /** Every entry, any status, oldest first. */
  list(): Promise<KeyringEntry[]>
  get(id: string): Promise<KeyringEntry | undefined>
  /** The active entry, if any. */
  active(): Promise<KeyringEntry | undefined>
  /**
   * Adds `entry` as the active key unless one is active already. Returns the
   * active entry afterwards: ours, or the one another process added first.
   */
  insertFirstActive(entry: NewKeyringEntry): Promise<KeyringEntry>
  /**
   * Atomically: if `expectedActiveId` is still the active key, makes it
   * decrypt-only and adds `entry` as active. Otherwise (another process rotated
   * first) changes nothing. Returns the active entry afterwards.
   */
  rotate(expectedActiveId: string, entry: NewKeyringEntry): Promise<KeyringEntry>
  /**
   * Reserves `count` more encryptions under `id` if it is still active and the
   * total stays within `limit`. Returns the new total, or undefined when
   * refused (no longer active, or the limit would be passed). With
   * `superseded: true` a `decrypt-only` key is reserved from too (never a
   * `retired` one): a process that cannot yet unwrap the key that replaced it
   * (the KMS is down) keeps counting its encryptions under the old key, with
   * every other process's, against the same limit.
   */
  reserveUses(
    id: string,
    count: number,
    limit: number,
    options?: ReserveUsesOptions,
  ): Promise<number | undefined>
  /** Changes a key's status (`retired` keys stop decrypting). Never makes a key active. */
  setStatus(id: string, status: Exclude<DataKeyStatus, 'active'>): Promise<void>
  /**
   * Sets `generation` and `mac` on a row that has no MAC yet (a row written
   * before MACs existed); never overwrites one. Returns whether it did. For
   * `KeyManager.sealUnmacedDataKeys()` only.
   */
  sealEntry?(id: string, generation: number, mac: string): Promise<boolean>
  /** Releases what the store opened itself; never a pool or database the caller passed in. */
  close?(): Promise<void>
}

/** A keyring store failed (the database, the file). The message names no key material. */
export class KeyringStoreError extends SecurityError {
  static override readonly code = 'ERR_KEYRING_STORE'
  constructor(message: string, options?: SecurityErrorOptions) {
    super(message, options)
  }
}

/**
 * A keyring row failed its MAC, or carries none (written before MACs
 * existed and not sealed yet): a database writer edited it, or planted it.
 * The key is not used. The message names the row's id, never key material.
 */
export class KeyringTamperedError extends SecurityError {
  static override readonly code = 'ERR_KEYRING_TAMPERED'
  constructor(message: string) {
    super(message)
  }
}

/**
 * The keyring went backwards: the active key is older than one this process
 * (or the keyring) already knows, a retired key was set active again, or a
 * use counter shrank. Refused whatever the database says.
 */
export class KeyringRollbackError extends SecurityError {
  static override readonly code = 'ERR_KEYRING_ROLLBACK'
  constructor(message: string) {
    super(message)
  }
}

/** Data key ids: 16 random bytes in lowercase hex. */
export const DEK_ID_PATTERN = /^[0-9a-f]{32}$/
