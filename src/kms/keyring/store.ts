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
}

/** How {@link KeyringStore.reserveUses} may reserve. */
export interface ReserveUsesOptions {
  /** Also reserve from a `decrypt-only` key. @default false */
  readonly superseded?: boolean
}

/** Whether `reserveUses` may reserve from a key of this status. */
export function reservable(status: DataKeyStatus | undefined, options?: ReserveUsesOptions) {
  return status === 'active' || (options?.superseded === true && status === 'decrypt-only')
}

/** A key about to be added: the store sets status and the use counter. */
export type NewKeyringEntry = Pick<KeyringEntry, 'id' | 'wrappedKey' | 'createdAt'>

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

/** Data key ids: 16 random bytes in lowercase hex. */
export const DEK_ID_PATTERN = /^[0-9a-f]{32}$/
