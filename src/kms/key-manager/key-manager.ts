/**
 * `KeyManager`: envelope encryption where the hot path never calls a KMS.
 *
 * A data key (DEK) is unwrapped once, at `initialize()`, and cached; every
 * `localEncrypt`/`localDecrypt` after that is local AES-256-GCM. The DEKs live
 * in a keyring store only in wrapped form. Ciphertexts name their DEK (see
 * format.ts), so they decrypt after rotations and restarts; older DEKs are
 * unwrapped lazily, one KMS call per key however many requests ask at once.
 * Use counts are shared across processes through the keyring (one write per
 * block of uses), and the active DEK is rotated before NIST SP 800-38D's limit
 * for random nonces.
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto'
import { z } from 'zod'
import { SecurityError } from '../../errors.js'
import { canonicalJson } from '../../internal/canonical-json.js'
import { type Clock, systemClock } from '../../internal/clock.js'
import { describeError, type Logger, stderrLogger } from '../../internal/logger.js'
import { ClockOptionSchema, LoggerOptionSchema, parseOptions } from '../../internal/options.js'
import { provideReservedAccess } from '../../internal/reserved-access.js'
import type { BaseKmsProvider } from '../base-provider.js'
import {
  ContextRequiredError,
  DecryptionError,
  KmsError,
  ProviderConnectionError,
  ReservedContextError,
  UnknownProviderError,
} from '../errors.js'
import { MemoryKeyringStore } from '../keyring/memory.js'
import {
  DEK_ID_PATTERN,
  type KeyringEntry,
  KeyringRollbackError,
  type KeyringStore,
  KeyringStoreError,
  KeyringTamperedError,
} from '../keyring/store.js'
import {
  type DataKeyPair,
  EncryptedData,
  type EncryptedDataJson,
  type EncryptionContext,
  isEncryptionContext,
} from '../models.js'
import { decodeField, encodeField, type FieldValue, type FieldValueType } from './field.js'
import { CURRENT_FORMAT, DEK_ID_BYTES, decodeBase64Url, formatOf, hasHeader } from './format.js'

/** A local operation ran before `initialize()` (or after `dispose()`). */
export class KeyManagerNotInitializedError extends SecurityError {
  static override readonly code = 'ERR_KEY_MANAGER_NOT_INITIALIZED'
  constructor() {
    super('KeyManager is not initialized: call initialize() first')
  }
}

/**
 * The active data key reached its hard use limit and no new one could be
 * made (the KMS is unreachable). Encryption resumes once rotation succeeds.
 */
export class DataKeyExhaustedError extends SecurityError {
  static override readonly code = 'ERR_KEY_MANAGER_KEY_EXHAUSTED'
  constructor(options?: { cause?: unknown }) {
    super('The active data key reached its use limit and could not be rotated', options)
  }
}

/**
 * `localEncrypt` was called without `aad` (with `requireAad`), or with an
 * empty one: an empty binding equals none, so the ciphertext could be moved
 * to any other row and still decrypt there.
 */
export class AadRequiredError extends SecurityError {
  static override readonly code = 'ERR_KEY_MANAGER_AAD_REQUIRED'
  constructor(empty: boolean) {
    super(
      empty
        ? 'An empty aad binds nothing: pass what identifies the row, e.g. "customer:<id>"'
        : 'This KeyManager requires aad on localEncrypt: pass what identifies the row, e.g. "customer:<id>"',
    )
  }
}

/**
 * Context keys in this namespace are the package's own: data keys are
 * wrapped under `fraiseql.dek`, API-key peppers under
 * `fraiseql.api-key-pepper`, and `encryptField` binds its decoding under
 * `fraiseql.field`. No public call may name one (`ERR_KMS_RESERVED_CONTEXT`),
 * so wrapping a key of one's own choosing under those contexts takes
 * Encrypt rights on the KMS key itself, which the KMS policy confines
 * (docs/kms.md).
 */
export const RESERVED_CONTEXT_PREFIX = 'fraiseql.'

/** The context key binding a field's `valueType` and `encoding`. */
const FIELD_CONTEXT_KEY = 'fraiseql.field'

function hasReservedKey(context: EncryptionContext | undefined): boolean {
  if (context === undefined || context === null || typeof context !== 'object') return false
  // Case-folded: AWS and Vault compare context keys exactly, but a look-alike
  // key in another case must not pass for ours in a policy written by hand.
  return Object.keys(context).some((k) => k.toLowerCase().startsWith(RESERVED_CONTEXT_PREFIX))
}

/** Precondition of every public call: the caller names no reserved context key. */
function assertPublicContext(context: EncryptionContext | undefined): void {
  if (hasReservedKey(context)) throw new ReservedContextError()
}

function sameContext(a: EncryptionContext, b: EncryptionContext): boolean {
  const ak = Object.keys(a)
  if (ak.length !== Object.keys(b).length) return false
  return ak.every((k) => Object.hasOwn(b, k) && a[k] === b[k])
}

export const KeyManagerLimitsSchema = z
  .object({
    /**
     * Encryptions under one DEK after which it is rotated. NIST SP 800-38D
     * §8.3 caps random-nonce GCM at 2^32 invocations per key; this stays far below.
     * @default 2 ** 30
     */
    maxEncryptions: z
      .number()
      .int()
      .min(1)
      .max(2 ** 32)
      .default(2 ** 30),
    /**
     * Encryptions after which the DEK is refused outright, even when rotation
     * is impossible (the KMS is down).
     * @default 2 ** 31
     */
    hardMaxEncryptions: z
      .number()
      .int()
      .min(1)
      .max(2 ** 32)
      .default(2 ** 31),
    /**
     * Age after which the DEK is rotated, in ms.
     * @default 90 days
     */
    maxAgeMs: z
      .number()
      .int()
      .min(1)
      .default(90 * 24 * 60 * 60 * 1000),
    /**
     * Encryptions each process reserves from the keyring at a time: one store
     * write per block, never one per encryption.
     * @default 1024
     */
    reserveBlock: z.number().int().min(1).max(1_000_000).default(1024),
    /**
     * How often a process checks the keyring for a DEK another process made active.
     * @default 60000
     */
    refreshIntervalMs: z.number().int().min(1).default(60_000),
    /**
     * First retry delay of a failed background rotation (doubles, up to 5 minutes).
     * @default 5000
     */
    rotationRetryMs: z.number().int().min(1).default(5000),
  })
  .strict()
  .refine((l) => l.maxEncryptions <= l.hardMaxEncryptions, {
    message: 'must not exceed hardMaxEncryptions',
    path: ['maxEncryptions'],
  })
  .refine((l) => l.reserveBlock <= l.hardMaxEncryptions, {
    message: 'must not exceed hardMaxEncryptions',
    path: ['reserveBlock'],
  })

export const KeyManagerOptionsSchema = z
  .object({
    /** Providers by the name they are registered under (`KeyReference.provider`). */
    providers: z
      .record(
        z.string(),
        z.custom<BaseKmsProvider>(
          (v) => typeof (v as Partial<BaseKmsProvider> | null)?.encrypt === 'function',
          { message: 'must be a KMS provider' },
        ),
      )
      .refine((p) => Object.keys(p).length > 0, 'must name at least one provider'),
    /** Provider used when a call names none, and for the keyring's DEKs. */
    defaultProvider: z.string().min(1),
    /** KMS key used when a call names none, and to wrap the keyring's DEKs. */
    defaultKeyId: z.string().min(1),
    /** Becomes `context.service` on every KMS call. */
    contextPrefix: z.string().min(1).max(256).optional(),
    /**
     * Where wrapped DEKs are kept. Default: process memory, with a warning at
     * `initialize()`: local ciphertexts then die with the process.
     */
    keyring: z
      .custom<KeyringStore>(
        (v) => typeof (v as Partial<KeyringStore> | null)?.reserveUses === 'function',
        { message: 'must be a KeyringStore' },
      )
      .optional(),
    /** DEK usage limits. */
    limits: KeyManagerLimitsSchema.optional(),
    /**
     * Refuse `localEncrypt` without `aad`. Without a binding, a database
     * writer can copy one row's ciphertext into another row (or tenant) and
     * it decrypts there. An empty `aad` is refused whatever this says.
     * @default false (kept for ciphertexts made before; turn it on for new code)
     */
    requireAad: z.boolean().optional(),
    /**
     * Let `decryptField` open fields made before 0.x bound `valueType` and
     * `encoding` into the KMS context (their JSON has no `fraiseql.field`
     * context key). Such a field's decoding is not authenticated: a writer
     * can switch it between `string`, `json` and `bytes`. A migration aid:
     * re-encrypt those fields with `encryptField`, then turn this off.
     * @default false
     */
    acceptUnboundFields: z.boolean().optional(),
    /** @default Date.now */
    clock: ClockOptionSchema.optional(),
    /** Where warnings go (memory keyring, failed background rotation). @default stderr */
    logger: LoggerOptionSchema.optional(),
  })
  .strict()
  .refine((o) => Object.hasOwn(o.providers, o.defaultProvider), {
    message: 'must name one of `providers`',
    path: ['defaultProvider'],
  })

export type KeyManagerOptions = z.input<typeof KeyManagerOptionsSchema>
type Limits = z.output<typeof KeyManagerLimitsSchema>

/**
 * An encrypted field: the encrypted data's JSON plus how to turn the bytes
 * back into the value (`bytes` travel as they are, strings and JSON as UTF-8).
 */
export interface EncryptedField extends EncryptedDataJson {
  readonly encoding: 'utf-8' | 'binary'
  readonly valueType: FieldValueType
}

/** What the KeyManager reports about its data keys (never key material). */
export interface DataKeyInfo {
  readonly id: string
  readonly status: KeyringEntry['status']
  readonly createdAt: Date
  readonly usesReserved: number
  readonly cached: boolean
}

/**
 * A DEK in memory: the key in an unpooled Buffer that `dispose()` zeroes,
 * and its header in the current format (what `localEncrypt` writes; other
 * versions are read through their own entry of the format table).
 */
interface CachedKey {
  readonly id: string
  readonly header: Buffer
  readonly key: Buffer
  /** HKDF subkey of `key` that MACs its keyring row (see {@link rowMacOf}). */
  readonly macKey: Buffer
}

const ROW_MAC_INFO = 'fraiseql-security keyring row mac v1'

/**
 * The row-MAC key of one data key: HKDF-SHA256 (RFC 5869) with its own
 * `info`, so it is independent of the AES-GCM key it comes from. Derived
 * from the data key itself, so whoever can make a valid MAC can already
 * unwrap the key under `fraiseql.dek`, which no public call and no database
 * writer can (item 1, docs/kms.md).
 */
function rowMacKey(dek: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', dek, new Uint8Array(0), ROW_MAC_INFO, 32))
}

/**
 * The MAC a keyring row carries: over what never changes once the row is
 * written (id, generation, creation time, wrapped key). Status and the use
 * counter change in the database without a key (one atomic UPDATE per
 * block), and a MAC over them could still be replayed to an older value, so
 * they are guarded by monotonic checks instead (see `#verify`).
 */
function rowMacOf(
  macKey: Buffer,
  row: Pick<KeyringEntry, 'id' | 'createdAt' | 'wrappedKey'>,
  generation: number,
): Buffer {
  return createHmac('sha256', macKey)
    .update(
      canonicalJson({
        v: 1,
        id: row.id,
        generation,
        createdAt: row.createdAt,
        wrappedKey: row.wrappedKey,
      }),
    )
    .digest()
}

/** The active DEK with this process's share of its uses. */
interface ActiveSlot {
  readonly cached: CachedKey
  readonly createdAt: number
  /** Uses left in the block this process reserved. */
  remaining: number
  /** Total reserved in the keyring when the last block was taken. */
  reservedTotal: number
}

// ignoreBOM: a plaintext that starts with U+FEFF keeps it (the default strips it).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * @example
 * ```ts
 * import { KeyManager, LocalKmsProvider } from 'fraiseql-security/kms'
 *
 * const keys = new KeyManager({
 *   providers: { local: new LocalKmsProvider({ keyFile: '.data/master.json' }) },
 *   defaultProvider: 'local',
 *   defaultKeyId: 'app',
 *   contextPrefix: 'orders-api',
 *   keyring: new SqliteKeyringStore({ filename: '.data/keyring.db' }),
 * })
 * await keys.initialize()                          // one KMS call
 * const sealed = await keys.localEncrypt('123-45-6789', 'customer:42')  // no KMS call
 * const taxId = await keys.localDecrypt(sealed, 'customer:42')
 * ```
 */
export class KeyManager {
  readonly #providers: ReadonlyMap<string, BaseKmsProvider>
  readonly #defaultProvider: string
  readonly #defaultKeyId: string
  readonly #contextPrefix: string | undefined
  readonly #keyring: KeyringStore
  readonly #keyringIsDefault: boolean
  readonly #limits: Limits
  readonly #clock: Clock
  readonly #logger: Logger
  readonly #requireAad: boolean
  readonly #acceptUnboundFields: boolean
  readonly #cache = new Map<string, CachedKey>()
  readonly #unwrapping = new Map<string, Promise<CachedKey>>()
  #active: ActiveSlot | undefined
  #initializing: Promise<void> | undefined
  #refilling: Promise<void> | undefined
  #rotating: Promise<void> | undefined
  #rotationRetryAt = 0
  #rotationFailures = 0
  #lastRefresh = 0
  #refreshing: Promise<void> | undefined
  /** When to try again to unwrap a key another process made active (0: no failure pending). */
  #adoptRetryAt = 0
  #adoptFailures = 0
  /**
   * The newest generation this process accepted as active, and its key:
   * an active key of a lower generation (a keyring set back) is refused for
   * as long as the process runs, whatever the database says.
   */
  #highGeneration = 0
  #highId: string | undefined
  /** Keys this process saw retired: never decrypt again, never active again. */
  readonly #retired = new Set<string>()
  /** The highest use count this process saw per key: a counter that shrinks was reset. */
  readonly #usesSeen = new Map<string, number>()

  constructor(options: KeyManagerOptions) {
    const o = parseOptions('KeyManager', KeyManagerOptionsSchema, options)
    this.#providers = new Map(Object.entries(o.providers))
    this.#defaultProvider = o.defaultProvider
    this.#defaultKeyId = o.defaultKeyId
    this.#contextPrefix = o.contextPrefix
    this.#keyringIsDefault = o.keyring === undefined
    this.#keyring = o.keyring ?? new MemoryKeyringStore()
    this.#limits = parseOptions('KeyManager', KeyManagerLimitsSchema, o.limits ?? {})
    this.#clock = o.clock ?? systemClock
    this.#logger = o.logger ?? stderrLogger
    this.#requireAad = o.requireAad ?? false
    this.#acceptUnboundFields = o.acceptUnboundFields ?? false
  }

  // ---------------------------------------------------------------- KMS-backed

  /**
   * Encrypts with the KMS directly (one call). For rare, high-value data; not
   * per request. Context keys starting with `fraiseql.` are the package's
   * own: naming one is `ReservedContextError` (`ERR_KMS_RESERVED_CONTEXT`).
   */
  async encrypt(
    plaintext: Uint8Array | string,
    options: { keyId?: string; provider?: string; context?: EncryptionContext } = {},
  ): Promise<EncryptedData> {
    // Precondition: a caller cannot wrap a key of its choosing under the
    // contexts of the keyring's data keys or the API-key peppers.
    assertPublicContext(options.context)
    return this.#encrypt(plaintext, options)
  }

  /**
   * Decrypts KMS-encrypted data, routed to the provider its key reference
   * names (`ERR_KMS_UNKNOWN_PROVIDER` when none is registered under it).
   *
   * The context is the one you expect, never the one stored with the data:
   * data encrypted under a context (other than `contextPrefix`'s `service`)
   * needs it again (`ContextRequiredError`, `ERR_KMS_CONTEXT_REQUIRED`), a
   * stored context that differs from it is `DecryptionError`, and
   * `contextPrefix`'s `service` is checked in every case. Data wrapped
   * under a reserved `fraiseql.` context (a data key, a pepper) is
   * `ReservedContextError`: this call never hands out the package's keys.
   */
  async decrypt(encrypted: EncryptedData, context?: EncryptionContext): Promise<Uint8Array> {
    assertPublicContext(context)
    if (hasReservedKey(encrypted?.context)) throw new ReservedContextError()
    return this.#decryptExpected(encrypted, context)
  }

  /**
   * Encrypts a value with the KMS (one call); the result records how to
   * decode it, and {@link decryptField} gives back exactly the value given:
   * a `Uint8Array` (or `Buffer`) as a `Uint8Array`, a string, or JSON (null,
   * booleans, finite numbers including `-0`, strings, arrays without holes,
   * plain objects). Anything else (`undefined`, functions, symbols, BigInt,
   * `NaN`/`Infinity`, Date, Map, Set, class instances, bytes inside JSON,
   * cycles) is `UnsupportedFieldValueError` (`ERR_KEY_MANAGER_UNSUPPORTED_VALUE`)
   * before any KMS call, never a silent change.
   */
  async encryptField(
    value: FieldValue,
    options: { keyId?: string; provider?: string; context?: EncryptionContext } = {},
  ): Promise<EncryptedField> {
    assertPublicContext(options.context)
    const { plaintext, valueType, encoding } = encodeField(value)
    // valueType and encoding are stored in the clear next to the ciphertext:
    // bound into the context, a swapped one fails at the KMS.
    const encrypted = await this.#encrypt(plaintext, {
      ...options,
      context: { ...options.context, [FIELD_CONTEXT_KEY]: fieldBinding(valueType, encoding) },
    })
    return { ...encrypted.toJSON(), encoding, valueType }
  }

  /**
   * Reverses {@link encryptField}; accepts the field or its JSON text. Give
   * the same `context` as to `encryptField` (see {@link decrypt}); a field
   * whose `valueType` or `encoding` was changed is `DecryptionError`.
   */
  async decryptField(
    field: EncryptedField | string,
    context?: EncryptionContext,
  ): Promise<FieldValue> {
    assertPublicContext(context)
    let parsed: unknown = field
    if (typeof field === 'string') {
      try {
        parsed = JSON.parse(field)
      } catch {
        throw new DecryptionError()
      }
    }
    const { encoding, valueType, ...json } = (parsed ?? {}) as Partial<EncryptedField>
    const known =
      valueType === 'bytes'
        ? encoding === 'binary'
        : (valueType === 'string' || valueType === 'json') && encoding === 'utf-8'
    if (!known || valueType === undefined || encoding === undefined) throw new DecryptionError()
    const encrypted = EncryptedData.fromJSON(json)
    const stored = encrypted.context
    let expected: EncryptionContext | undefined
    if (Object.hasOwn(stored, FIELD_CONTEXT_KEY)) {
      expected = { ...context, [FIELD_CONTEXT_KEY]: fieldBinding(valueType, encoding) }
      // Without a caller context, only the binding (and service) may be stored.
      if (context === undefined && hasUserContext(stored, 1)) throw new ContextRequiredError()
    } else {
      // Precondition: a field made before the binding existed decrypts only when opted in.
      if (!this.#acceptUnboundFields) throw new DecryptionError()
      expected = context
    }
    // The only reserved key a field may carry is its binding.
    const { [FIELD_CONTEXT_KEY]: _binding, ...rest } = stored
    if (hasReservedKey(rest)) throw new ReservedContextError()
    const value = decodeField(await this.#decryptExpected(encrypted, expected), valueType)
    if (value === undefined) throw new DecryptionError()
    return value
  }

  /** A fresh data key from the KMS (plaintext + wrapped), e.g. to encrypt a large file yourself. */
  async generateDataKey(
    options: { keyId?: string; provider?: string; context?: EncryptionContext } = {},
  ): Promise<DataKeyPair> {
    assertPublicContext(options.context)
    const name = options.provider ?? this.#defaultProvider
    return this.#provider(name).generateDataKey(
      options.keyId ?? this.#defaultKeyId,
      this.#kmsContext(options.context),
    )
  }

  // ---------------------------------------------------------------- cached DEK

  /**
   * Loads the keyring and unwraps the active DEK with one KMS call, or
   * creates, wraps and stores the first one. Idempotent.
   */
  async initialize(): Promise<void> {
    if (this.#active !== undefined) return
    this.#initializing ??= this.#initialize().finally(() => {
      this.#initializing = undefined
    })
    return this.#initializing
  }

  async #initialize(): Promise<void> {
    if (this.#keyringIsDefault) {
      this.#logger.warn(
        { component: 'KeyManager' },
        'no keyring configured: data keys live in memory and local ciphertexts will not survive a restart',
      )
    }
    await this.#keyring.migrate?.()
    let entry = await this.#keyring.active()
    if (entry === undefined) {
      const created = await this.#newEntry()
      entry = await this.#keyring.insertFirstActive(created.entry)
      if (entry.id === created.entry.id) this.#cache.set(created.cached.id, created.cached)
      else created.cached.key.fill(0) // another process made the first key first
    }
    await this.#activate(entry)
    this.#lastRefresh = this.#clock()
  }

  /** Whether the active DEK is unwrapped and cached (local operations need no KMS). */
  hasCachedDataKey(): boolean {
    return this.#active !== undefined
  }

  /**
   * Encrypts locally with the active DEK: no KMS call. A string gives a
   * base64url string (safe for a text column); bytes give bytes. `aad` is
   * bound to the ciphertext and must be given again to decrypt.
   */
  localEncrypt(plaintext: string, aad?: string | Uint8Array): Promise<string>
  localEncrypt(plaintext: Uint8Array, aad?: string | Uint8Array): Promise<Uint8Array>
  async localEncrypt(
    plaintext: string | Uint8Array,
    aad?: string | Uint8Array,
  ): Promise<string | Uint8Array> {
    const isText = typeof plaintext === 'string'
    if (!isText && !(plaintext instanceof Uint8Array))
      throw new KmsError('Plaintext must be a string or bytes')
    const aadBytes = bytesOf(aad)
    // Precondition: '' would seal exactly as no aad does, so a caller who
    // meant to bind the row would silently bind nothing.
    if (aadBytes !== undefined && aadBytes.length === 0) throw new AadRequiredError(true)
    if (aadBytes === undefined && this.#requireAad) throw new AadRequiredError(false)
    let slot = this.#active
    if (slot === undefined) throw new KeyManagerNotInitializedError()
    // A loop, not an if: while this call waited for a block, a background
    // rotation may have installed a new slot with nothing reserved yet.
    while (slot.remaining <= 0) {
      await this.#refill()
      slot = this.#active
      if (slot === undefined) throw new KeyManagerNotInitializedError()
    }
    slot.remaining--
    this.#maintain(slot)
    const data = isText ? Buffer.from(plaintext, 'utf8') : plaintext
    const { header, key } = slot.cached
    const out = CURRENT_FORMAT.seal(key, header, data, aadBytes)
    return isText
      ? out.toString('base64url')
      : new Uint8Array(out.buffer, out.byteOffset, out.length)
  }

  /**
   * Decrypts a {@link localEncrypt} ciphertext: a string gives a string,
   * bytes give bytes. Anything that is not a valid ciphertext for this
   * keyring and `aad` — truncated, wrong version, unknown key, any flipped
   * bit, wrong aad — is `DecryptionError` and nothing else. A ciphertext of
   * an older DEK may cost one KMS call, once per DEK.
   */
  localDecrypt(ciphertext: string, aad?: string | Uint8Array): Promise<string>
  localDecrypt(ciphertext: Uint8Array, aad?: string | Uint8Array): Promise<Uint8Array>
  async localDecrypt(
    ciphertext: string | Uint8Array,
    aad?: string | Uint8Array,
  ): Promise<string | Uint8Array> {
    const active = this.#active
    if (active === undefined) throw new KeyManagerNotInitializedError()
    const isText = typeof ciphertext === 'string'
    const bytes = isText
      ? decodeBase64Url(ciphertext)
      : ciphertext instanceof Uint8Array
        ? ciphertext
        : undefined
    // The version byte picks the format (format.ts); an unknown one is as
    // opaque a failure as a flipped bit.
    const format = bytes === undefined ? undefined : formatOf(bytes)
    if (bytes === undefined || format === undefined || bytes.length < format.minBytes) {
      throw new DecryptionError()
    }
    // Most ciphertexts are the active DEK's, in the current format: matching
    // its header skips the hex key id and the map lookup.
    let cached = active.cached
    if (!hasHeader(bytes, cached.header)) {
      const id = format.dekIdOf(bytes)
      if (id === undefined) throw new DecryptionError()
      cached = this.#cache.get(id) ?? (await this.#unwrap(id))
    }
    // A key retired since it was cached stops decrypting here too.
    if (this.#retired.has(cached.id)) throw new DecryptionError()
    const plain = format.open(cached.key, bytes, bytesOf(aad))
    if (plain === undefined) throw new DecryptionError()
    this.#scheduleRefresh(this.#clock())
    if (!isText) return new Uint8Array(plain.buffer, plain.byteOffset, plain.length)
    try {
      return utf8.decode(plain)
    } catch {
      throw new DecryptionError()
    }
  }

  /**
   * Makes a new DEK active (one KMS call); older ones stay decryptable. If
   * another process rotated at the same moment, both end up on its key.
   */
  async rotateDataKey(): Promise<DataKeyInfo> {
    if (this.#active === undefined) throw new KeyManagerNotInitializedError()
    await this.#rotate()
    return this.#info(this.#active)
  }

  /** The keyring's data keys, newest last, without key material. */
  async dataKeys(): Promise<DataKeyInfo[]> {
    const entries = await this.#keyring.list()
    return entries.map((e) => ({
      id: e.id,
      status: e.status,
      createdAt: new Date(e.createdAt),
      usesReserved: e.usesReserved,
      cached: this.#cache.has(e.id),
    }))
  }

  /**
   * The upgrade path for keyring rows written before row MACs existed
   * (migration `0002_keyring_row_mac` leaves them without one, and
   * `initialize()` refuses them with `ERR_KEYRING_TAMPERED`): gives each
   * such row a generation (in keyring order, the active key last, after
   * every sealed one) and its MAC, unwrapping each key once (one KMS call
   * per row), and returns how many it sealed. Run it once, by hand, right
   * after upgrading and before the database could have been written by
   * anyone else: it trusts those rows as they stand. Never automatic, so a
   * writer who clears a row's MAC later does not get the edit sealed.
   *
   * @example
   * ```ts
   * const { sealed } = await keys.sealUnmacedDataKeys()
   * await keys.initialize()
   * ```
   */
  async sealUnmacedDataKeys(): Promise<{ sealed: number }> {
    const seal = this.#keyring.sealEntry?.bind(this.#keyring)
    if (seal === undefined) {
      throw new KeyringStoreError('this keyring store cannot seal rows (no sealEntry)')
    }
    await this.#keyring.migrate?.()
    const entries = await this.#keyring.list()
    let next = 1
    for (const e of entries) if (e.mac != null) next = Math.max(next, (e.generation ?? 0) + 1)
    const unsealed = entries.filter((e) => e.mac == null)
    // The active key must end up the newest generation.
    unsealed.sort((a, b) => Number(a.status === 'active') - Number(b.status === 'active'))
    let sealed = 0
    for (const e of unsealed) {
      const generation = next++
      const plain = await this.#decryptExpected(
        EncryptedData.fromJSON(e.wrappedKey),
        this.#dekContext(e.id),
      )
      const macKey = rowMacKey(plain)
      try {
        if (await seal(e.id, generation, rowMacOf(macKey, e, generation).toString('hex'))) sealed++
      } finally {
        plain.fill(0)
        macKey.fill(0)
      }
    }
    return { sealed }
  }

  /** Zeroes every cached DEK. Local operations need `initialize()` again. */
  dispose(): void {
    for (const cached of this.#cache.values()) {
      cached.key.fill(0)
      cached.macKey.fill(0)
    }
    this.#cache.clear()
    this.#active = undefined
  }

  // ---------------------------------------------------------------- internals

  static {
    // The privileged path for the package's own keys (src/internal/reserved-access.ts);
    // the preconditions stay here, next to the private methods they guard.
    provideReservedAccess({
      wrap: (km, plaintext, context) => {
        if (!hasReservedKey(context)) throw new KmsError('wrapReserved needs a reserved context')
        return km.#encrypt(plaintext, { context })
      },
      unwrap: (km, encrypted, context) => {
        if (!hasReservedKey(context)) throw new KmsError('unwrapReserved needs a reserved context')
        return km.#decryptExpected(encrypted, context)
      },
    })
  }

  #encrypt(
    plaintext: Uint8Array | string,
    options: { keyId?: string; provider?: string; context?: EncryptionContext },
  ): Promise<EncryptedData> {
    const name = options.provider ?? this.#defaultProvider
    return this.#provider(name).encrypt(
      plaintext,
      options.keyId ?? this.#defaultKeyId,
      this.#kmsContext(options.context),
    )
  }

  /**
   * Decrypts under the context the caller expects (plus `service`), never
   * the stored one: a stored context that differs is refused before the
   * KMS is asked, and data bound to a context needs one.
   */
  async #decryptExpected(
    encrypted: EncryptedData,
    context: EncryptionContext | undefined,
  ): Promise<Uint8Array> {
    if (!(encrypted instanceof EncryptedData)) throw new DecryptionError()
    const provider = this.#provider(encrypted.keyReference.provider)
    const stored = encrypted.context
    // Precondition: without an expected context the data must carry none of its own.
    if (context === undefined && hasUserContext(stored, 0)) throw new ContextRequiredError()
    const expected = this.#kmsContext(context ?? {})
    // Precondition: the stored context is the expected one (a mismatch is
    // opaque, like every decryption failure).
    if (!sameContext(stored, expected)) throw new DecryptionError()
    return provider.decrypt(encrypted, expected)
  }

  #provider(name: string): BaseKmsProvider {
    const provider = this.#providers.get(name)
    if (provider === undefined) throw new UnknownProviderError(name)
    return provider
  }

  /** The caller's context with `service` set from `contextPrefix`. */
  #kmsContext(context: EncryptionContext | undefined): EncryptionContext {
    if (context !== undefined && !isEncryptionContext(context)) {
      throw new KmsError('Encryption context must map strings to strings')
    }
    if (this.#contextPrefix === undefined) return context ?? {}
    return { ...context, service: this.#contextPrefix }
  }

  /** The context a DEK is wrapped under: its id is bound, so wrapped keys cannot be swapped between entries. */
  #dekContext(id: string): EncryptionContext {
    return { 'fraiseql.dek': id }
  }

  async #newEntry(): Promise<{
    entry: {
      id: string
      wrappedKey: EncryptedDataJson
      createdAt: number
      generation: number
      mac: string
    }
    cached: CachedKey
  }> {
    const generation = await this.#nextGeneration()
    const idBytes = randomBytes(DEK_ID_BYTES)
    const id = idBytes.toString('hex')
    const pair = await this.#provider(this.#defaultProvider).generateDataKey(
      this.#defaultKeyId,
      this.#kmsContext(this.#dekContext(id)),
    )
    try {
      const key = Buffer.alloc(32)
      key.set(pair.plaintextKey)
      const macKey = rowMacKey(key)
      const row = { id, wrappedKey: pair.toEncryptedData().toJSON(), createdAt: this.#clock() }
      return {
        entry: { ...row, generation, mac: rowMacOf(macKey, row, generation).toString('hex') },
        cached: { id, header: CURRENT_FORMAT.header(idBytes), key, macKey },
      }
    } finally {
      pair.dispose()
    }
  }

  /** One more than every generation in the keyring and every one this process accepted. */
  async #nextGeneration(): Promise<number> {
    let max = this.#highGeneration
    for (const e of await this.#keyring.list()) max = Math.max(max, e.generation ?? 0)
    return max + 1
  }

  /**
   * Caches `entry`'s key (unwrapping it if needed) and makes it this
   * process's active slot, once its row is authentic and nothing says the
   * keyring went backwards.
   */
  async #activate(entry: KeyringEntry): Promise<void> {
    const cached = this.#cache.get(entry.id) ?? (await this.#unwrapEntry(entry))
    const generation = this.#verify(entry, cached)
    // Precondition: the active key is the newest this process accepted.
    if (
      generation < this.#highGeneration ||
      (generation === this.#highGeneration && this.#highId !== entry.id)
    ) {
      throw this.#alarm(
        new KeyringRollbackError(
          `Keyring key ${entry.id} is active with generation ${generation}, older than generation ${this.#highGeneration} this process already uses`,
        ),
        entry.id,
      )
    }
    // Precondition: it is the newest in the keyring. Rows are never deleted
    // and each new key takes the next generation, so the generations are
    // exactly 1..n: a writer cannot hide a newer key by lowering its
    // (unauthenticated until unwrapped) generation without breaking that,
    // and `entry`'s own generation is authenticated above. A newer active key
    // is a rotation that landed since `entry` was read (take it); a newer key
    // that is not active means an older one was set active again.
    const entries = await this.#keyring.list()
    this.#noteRetired(entries)
    const unsealed = entries.find((e) => e.mac == null || e.generation == null)
    if (unsealed !== undefined) {
      throw this.#unsealed(unsealed.id)
    }
    const byGeneration = [...entries].sort((a, b) => (a.generation ?? 0) - (b.generation ?? 0))
    if (byGeneration.some((e, i) => e.generation !== i + 1)) {
      throw this.#alarm(
        new KeyringRollbackError(
          'Keyring generations are not 1..n: a key was removed or its generation changed',
        ),
        entry.id,
      )
    }
    const newest = byGeneration[byGeneration.length - 1]
    if (newest !== undefined && newest.id !== entry.id) {
      if (newest.status === 'active' && newest.generation! > generation)
        return this.#activate(newest)
      throw this.#alarm(
        new KeyringRollbackError(
          `Keyring key ${entry.id} is active but key ${newest.id} is newer (generation ${String(newest.generation)})`,
        ),
        entry.id,
      )
    }
    this.#highGeneration = generation
    this.#highId = entry.id
    this.#active = {
      cached,
      createdAt: entry.createdAt,
      remaining: 0,
      reservedTotal: entry.usesReserved,
    }
  }

  /**
   * Checks `entry` against its MAC and what this process already knows;
   * returns its (authenticated) generation. Every refusal is logged.
   * `usesFloor` is the use count this process knew before `entry` was read
   * (a count it raised itself while the read was in flight is no rollback).
   */
  #verify(
    entry: KeyringEntry,
    cached: CachedKey,
    usesFloor = this.#usesSeen.get(entry.id) ?? 0,
  ): number {
    const { mac, generation } = entry
    if (mac === undefined || mac === null || generation === undefined || generation === null) {
      throw this.#unsealed(entry.id)
    }
    const expected = rowMacOf(cached.macKey, entry, generation)
    const stored = /^[0-9a-f]{64}$/.test(mac) ? Buffer.from(mac, 'hex') : Buffer.alloc(0)
    if (stored.length !== expected.length || !timingSafeEqual(stored, expected)) {
      throw this.#alarm(
        new KeyringTamperedError(`Keyring key ${entry.id} failed its MAC: the row was edited`),
        entry.id,
      )
    }
    if (this.#retired.has(entry.id) && entry.status !== 'retired') {
      throw this.#alarm(
        new KeyringRollbackError(
          `Keyring key ${entry.id} was retired and is ${entry.status} again`,
        ),
        entry.id,
      )
    }
    this.#noteUses(entry.id, entry.usesReserved, usesFloor)
    return generation
  }

  /**
   * Records that `id` has `total` uses reserved, which must be at least
   * `floor`: what this process knew before the read or reservation that
   * returned `total` (plus, for a reservation, what it added). Below it,
   * the counter was set back.
   */
  #noteUses(id: string, total: number, floor: number): void {
    if (total < floor) {
      throw this.#alarm(
        new KeyringRollbackError(
          `Keyring key ${id}: the use counter is ${total}, below the ${floor} this process knows of`,
        ),
        id,
      )
    }
    this.#usesSeen.set(id, Math.max(this.#usesSeen.get(id) ?? 0, total))
  }

  /** The use count a reservation of `count` under `id` must at least return. */
  #usesAfter(id: string, count: number): number {
    return (this.#usesSeen.get(id) ?? 0) + count
  }

  /**
   * Keys the keyring lists as retired stop decrypting here (and are
   * zeroed); a key retired before and listed otherwise now is logged.
   */
  #noteRetired(entries: readonly KeyringEntry[]): void {
    for (const e of entries) {
      if (e.status !== 'retired') {
        // Revived by the database: still refused here (#unwrap, #verify); logged once per read.
        if (this.#retired.has(e.id)) {
          this.#alarm(
            new KeyringRollbackError(`Keyring key ${e.id} was retired and is ${e.status} again`),
            e.id,
          )
        }
        continue
      }
      this.#retired.add(e.id)
      const cached = this.#cache.get(e.id)
      if (cached === undefined) continue
      this.#cache.delete(e.id)
      if (this.#active?.cached.id === e.id) {
        // Still referenced by the slot: no more uses; the next encryption
        // moves to the active key (the buffer is zeroed by dispose()).
        this.#active.remaining = 0
      } else {
        cached.key.fill(0)
        cached.macKey.fill(0)
      }
    }
  }

  #unsealed(id: string): KeyringTamperedError {
    return this.#alarm(
      new KeyringTamperedError(
        `Keyring key ${id} carries no MAC: run KeyManager.sealUnmacedDataKeys() once after upgrading (docs/key-manager.md)`,
      ),
      id,
    )
  }

  /** Logs a refused keyring row (an audit trail for the operator) and returns the error to throw. */
  #alarm<E extends KeyringTamperedError | KeyringRollbackError>(err: E, dataKey: string): E {
    this.#logger.error({ code: err.code, dataKey }, 'keyring row refused')
    return err
  }

  /** Single flight: concurrent decrypts of one unknown DEK make one keyring read and one KMS call. */
  #unwrap(id: string): Promise<CachedKey> {
    let pending = this.#unwrapping.get(id)
    if (pending === undefined) {
      pending = (async () => {
        if (!DEK_ID_PATTERN.test(id)) throw new DecryptionError()
        const entry = await this.#keyring.get(id)
        if (entry === undefined || entry.status === 'retired' || this.#retired.has(id))
          throw new DecryptionError()
        const cached = await this.#unwrapEntry(entry)
        this.#verify(entry, cached)
        return cached
      })().finally(() => this.#unwrapping.delete(id))
      this.#unwrapping.set(id, pending)
    }
    return pending
  }

  async #unwrapEntry(entry: KeyringEntry): Promise<CachedKey> {
    const existing = this.#cache.get(entry.id)
    if (existing !== undefined) return existing
    const wrapped = EncryptedData.fromJSON(entry.wrappedKey)
    const plain = await this.#decryptExpected(wrapped, this.#dekContext(entry.id))
    try {
      if (plain.length !== 32) throw new DecryptionError()
      const key = Buffer.alloc(32)
      key.set(plain)
      const cached: CachedKey = {
        id: entry.id,
        header: CURRENT_FORMAT.header(Buffer.from(entry.id, 'hex')),
        key,
        macKey: rowMacKey(key),
      }
      // Precondition: only an authentic row's key is cached.
      try {
        this.#verify(entry, cached)
      } catch (err) {
        key.fill(0)
        cached.macKey.fill(0)
        throw err
      }
      this.#cache.set(entry.id, cached)
      return cached
    } finally {
      plain.fill(0)
    }
  }

  /** Takes the next block of uses from the keyring; single flight. */
  #refill(): Promise<void> {
    this.#refilling ??= this.#takeBlock().finally(() => {
      this.#refilling = undefined
    })
    return this.#refilling
  }

  async #takeBlock(): Promise<void> {
    const slot = this.#active
    if (slot === undefined) throw new KeyManagerNotInitializedError()
    if (slot.remaining > 0) return
    const { reserveBlock, hardMaxEncryptions } = this.#limits
    // A key retired under us is never reserved from again, whatever its row says now.
    const floor = this.#usesAfter(slot.cached.id, reserveBlock)
    const total = this.#retired.has(slot.cached.id)
      ? undefined
      : await this.#keyring.reserveUses(slot.cached.id, reserveBlock, hardMaxEncryptions)
    if (total !== undefined) {
      this.#noteUses(slot.cached.id, total, floor)
      slot.remaining = reserveBlock
      slot.reservedTotal = total
      return
    }
    // Refused: another process made another key active, or this one is used up.
    const current = await this.#keyring.active()
    if (current !== undefined && this.#retired.has(current.id)) {
      throw this.#alarm(
        new KeyringRollbackError(`Keyring key ${current.id} was retired and is active again`),
        current.id,
      )
    }
    if (current !== undefined && current.id !== slot.cached.id) {
      // A caller waits for the unwrap only while none has failed lately;
      // after a failure it is retried in the background (#maintain).
      let unreachable: unknown = new ProviderConnectionError('unavailable')
      if (this.#adoptRetryAt === 0 || this.#clock() >= this.#adoptRetryAt) {
        try {
          await this.#adopt(current)
          return this.#takeBlock()
        } catch (err) {
          if (!(err instanceof ProviderConnectionError)) throw err
          unreachable = err
        }
      }
      // The KMS is down: keep encrypting with the superseded key while it is
      // within its hard limit, counted in the keyring with every process's uses.
      const keptFloor = this.#usesAfter(slot.cached.id, reserveBlock)
      const kept = await this.#keyring.reserveUses(
        slot.cached.id,
        reserveBlock,
        hardMaxEncryptions,
        {
          superseded: true,
        },
      )
      if (kept === undefined) {
        throw new DataKeyExhaustedError({ cause: describeError(unreachable) })
      }
      this.#noteUses(slot.cached.id, kept, keptFloor)
      slot.remaining = reserveBlock
      slot.reservedTotal = kept
      return
    }
    try {
      await this.#rotate()
    } catch (err) {
      throw new DataKeyExhaustedError({ cause: describeError(err) })
    }
    return this.#takeBlock()
  }

  /**
   * Soft limits: past `maxEncryptions` or `maxAgeMs`, rotate in the background
   * while this key keeps serving; and now and then look for a key another
   * process made active. Never blocks the caller.
   */
  #maintain(slot: ActiveSlot): void {
    const now = this.#clock()
    const due =
      slot.reservedTotal >= this.#limits.maxEncryptions ||
      now - slot.createdAt >= this.#limits.maxAgeMs
    if (due && this.#rotating === undefined && now >= this.#rotationRetryAt) {
      this.#rotate().then(
        () => {
          this.#rotationFailures = 0
        },
        (err: unknown) => {
          const delay = this.#retryDelay(++this.#rotationFailures)
          this.#rotationRetryAt = this.#clock() + delay
          this.#logger.warn(
            { err: describeError(err), retryInMs: delay, dataKey: slot.cached.id },
            'data key rotation failed; still encrypting with the current key',
          )
        },
      )
    }
    this.#scheduleRefresh(now)
  }

  /**
   * Reads the keyring in the background when `refreshIntervalMs` passed
   * since the last read (or an adoption retry is due): how a process learns
   * of another's rotation and of a retirement. Called by every local
   * operation, so a busy process stops using a retired key within
   * `refreshIntervalMs` plus one keyring read.
   */
  #scheduleRefresh(now: number): void {
    const adoptionDue = this.#adoptRetryAt !== 0 && now >= this.#adoptRetryAt
    if (
      (adoptionDue || now - this.#lastRefresh >= this.#limits.refreshIntervalMs) &&
      this.#refreshing === undefined
    ) {
      this.#lastRefresh = now
      this.#refreshing = this.#refresh().finally(() => {
        this.#refreshing = undefined
      })
    }
  }

  /** Adopts a key another process made active. Failures are logged; the current key keeps serving. */
  async #refresh(): Promise<void> {
    try {
      const before = this.#active
      const floor = before === undefined ? 0 : (this.#usesSeen.get(before.cached.id) ?? 0)
      const entries = await this.#keyring.list()
      this.#noteRetired(entries)
      const current = entries.find((e) => e.status === 'active')
      const slot = this.#active
      if (current === undefined || slot === undefined) return
      if (current.id !== slot.cached.id) await this.#adopt(current)
      else this.#verify(current, slot.cached, slot === before ? floor : 0)
    } catch (err) {
      // An unreachable KMS was logged by #adopt, with when it is tried
      // again; a refused row by #alarm.
      if (
        !(err instanceof ProviderConnectionError) &&
        !(err instanceof KeyringTamperedError) &&
        !(err instanceof KeyringRollbackError)
      )
        this.#logger.warn({ err: describeError(err) }, 'keyring refresh failed')
    }
  }

  /** Wait after `failures` failed tries: rotationRetryMs, doubling, at most 5 minutes. */
  #retryDelay(failures: number): number {
    return Math.min(300_000, this.#limits.rotationRetryMs * 2 ** (failures - 1))
  }

  /**
   * Makes `entry` (another process's new key) this process's active key. An
   * unreachable KMS schedules the next try (rotationRetryMs, doubling up to
   * 5 minutes) and is logged; meanwhile the current key keeps serving.
   */
  async #adopt(entry: KeyringEntry): Promise<void> {
    try {
      await this.#activate(entry)
      this.#adoptRetryAt = 0
      this.#adoptFailures = 0
    } catch (err) {
      if (err instanceof ProviderConnectionError) {
        const delay = this.#retryDelay(++this.#adoptFailures)
        this.#adoptRetryAt = this.#clock() + delay
        this.#logger.warn(
          { err: describeError(err), retryInMs: delay, dataKey: entry.id },
          'could not unwrap the data key another process made active; still encrypting with the current key',
        )
      }
      throw err
    }
  }

  /** Single flight: one rotation at a time per process; the keyring settles races between processes. */
  #rotate(): Promise<void> {
    this.#rotating ??= (async () => {
      const slot = this.#active
      if (slot === undefined) throw new KeyManagerNotInitializedError()
      const created = await this.#newEntry()
      const active = await this.#keyring.rotate(slot.cached.id, created.entry)
      if (active.id === created.entry.id) this.#cache.set(created.cached.id, created.cached)
      else created.cached.key.fill(0) // another process rotated first: use its key
      await this.#activate(active)
    })().finally(() => {
      this.#rotating = undefined
    })
    return this.#rotating
  }

  #info(slot: ActiveSlot | undefined): DataKeyInfo {
    if (slot === undefined) throw new KeyManagerNotInitializedError()
    return {
      id: slot.cached.id,
      status: 'active',
      createdAt: new Date(slot.createdAt),
      usesReserved: slot.reservedTotal,
      cached: true,
    }
  }
}

/** Whether `stored` holds context keys beyond `service` and `allowedReserved` reserved ones. */
function hasUserContext(stored: EncryptionContext, allowedReserved: number): boolean {
  const keys = Object.keys(stored).filter((k) => k !== 'service')
  return keys.length > allowedReserved
}

function fieldBinding(valueType: FieldValueType, encoding: EncryptedField['encoding']): string {
  return `${valueType};${encoding}`
}

function bytesOf(aad: string | Uint8Array | undefined): Uint8Array | undefined {
  if (aad === undefined) return undefined
  if (typeof aad === 'string') return Buffer.from(aad, 'utf8')
  if (aad instanceof Uint8Array) return aad
  throw new KmsError('aad must be a string or bytes')
}
