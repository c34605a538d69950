/**
 * The KMS domain model: immutable, validated at construction, serializable
 * without loss. Plaintext keys live only in {@link DataKeyPair}, in an
 * unpooled Buffer that `dispose()` zeroes.
 */
import { z } from 'zod'
import { parseOptions } from '../internal/options.js'
import { InvalidEncryptedDataError, InvalidKeyReferenceError } from './errors.js'

/** What a key may be used for. */
export const KEY_PURPOSES = ['encrypt_decrypt', 'sign_verify', 'mac'] as const
export type KeyPurpose = (typeof KEY_PURPOSES)[number]

/** Lifecycle state of a key, normalized across back ends. */
export const KEY_STATES = ['enabled', 'disabled', 'pending_deletion', 'destroyed'] as const
export type KeyState = (typeof KEY_STATES)[number]

/** Context bound to a ciphertext as authenticated data: a flat string map (AWS's model). */
export type EncryptionContext = Readonly<Record<string, string>>

export const EncryptionContextSchema = z.record(z.string().max(1024), z.string().max(8192))

/**
 * Whether `value` is a usable context: a plain string-to-string map. A
 * `__proto__` key is refused (zod and most parsers drop it or turn it into a
 * prototype change, so the context would silently differ after a round trip).
 */
export function isEncryptionContext(value: unknown): value is EncryptionContext {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  if (Object.hasOwn(value, '__proto__')) return false
  return EncryptionContextSchema.safeParse(value).success
}

/** Registered provider names and key ids: printable, no whitespace, no control characters. */
const NameSchema = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')

/** Registered provider names: no colon, so `"<provider>:<keyId>"` splits at the first one. */
const ProviderNameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_.-]+$/, 'must be letters, digits, "_", "." or "-"')

export const KeyReferenceSchema = z
  .object({
    provider: ProviderNameSchema,
    keyId: NameSchema,
    keyAlias: NameSchema.optional(),
    purpose: z.enum(KEY_PURPOSES).default('encrypt_decrypt'),
    createdAt: z.coerce.date().optional(),
  })
  .strict()

export type KeyReferenceInit = z.input<typeof KeyReferenceSchema>

/** Why a part of a text reference is refused, from zod's first issue on it. */
function partProblem(
  part: 'provider' | 'key id',
  schema: z.ZodType,
  value: string,
): string | undefined {
  const result = schema.safeParse(value)
  if (result.success) return undefined
  return `the ${part} ${result.error.issues[0]?.message ?? 'is invalid'}`
}

/**
 * Which key, in which provider. `provider` is the name the provider is
 * registered under (KeyManager routes by it), not its type.
 *
 * @example
 * ```ts
 * const ref = new KeyReference({ provider: 'vault', keyId: 'orders' })
 * ref.qualifiedId // 'vault:orders'
 * ```
 */
export class KeyReference {
  readonly provider: string
  readonly keyId: string
  readonly keyAlias: string | undefined
  readonly purpose: KeyPurpose
  readonly createdAt: Date | undefined

  constructor(init: KeyReferenceInit) {
    const v = parseOptions('KeyReference', KeyReferenceSchema, init)
    this.provider = v.provider
    this.keyId = v.keyId
    this.keyAlias = v.keyAlias
    this.purpose = v.purpose
    this.createdAt = v.createdAt === undefined ? undefined : new Date(v.createdAt.getTime())
    Object.freeze(this)
  }

  /** `"<provider>:<keyId>"`; {@link KeyReference.parse} reads it back. */
  get qualifiedId(): string {
    return `${this.provider}:${this.keyId}`
  }

  /**
   * The reference `"<provider>:<keyId>"` names, split at the first colon:
   * provider names have none, key ids may (`aws:arn:aws:kms:…:key/…`).
   * `init` gives the other fields. Anything else is
   * `InvalidKeyReferenceError` (`ERR_KMS_INVALID_KEY_REFERENCE`), whose
   * message says what is wrong without quoting the text.
   *
   * @example
   * ```ts
   * const ref = KeyReference.parse('aws:arn:aws:kms:eu-west-1:111122223333:key/1234abcd')
   * ref.provider // 'aws'
   * ref.keyId // 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd'
   * ```
   */
  static parse(
    text: string,
    init: Omit<KeyReferenceInit, 'provider' | 'keyId'> = {},
  ): KeyReference {
    if (typeof text !== 'string') throw new InvalidKeyReferenceError('not a string')
    const colon = text.indexOf(':')
    if (colon === -1) throw new InvalidKeyReferenceError('no ":" between provider and key id')
    const provider = text.slice(0, colon)
    const keyId = text.slice(colon + 1)
    const problem =
      partProblem('provider', ProviderNameSchema, provider) ??
      partProblem('key id', NameSchema, keyId)
    if (problem !== undefined) throw new InvalidKeyReferenceError(problem)
    return new KeyReference({ ...init, provider, keyId })
  }

  /**
   * Whether `other` names the same key: the same provider name and key id
   * (case-sensitive), so `parse(ref.qualifiedId).equals(ref)`. The alias,
   * purpose and creation time describe the key and do not count. False for
   * anything that is not a `KeyReference`.
   */
  equals(other: unknown): boolean {
    return (
      other instanceof KeyReference &&
      other.provider === this.provider &&
      other.keyId === this.keyId
    )
  }

  toJSON(): {
    provider: string
    keyId: string
    keyAlias?: string
    purpose: KeyPurpose
    createdAt?: string
  } {
    return {
      provider: this.provider,
      keyId: this.keyId,
      ...(this.keyAlias === undefined ? {} : { keyAlias: this.keyAlias }),
      purpose: this.purpose,
      ...(this.createdAt === undefined ? {} : { createdAt: this.createdAt.toISOString() }),
    }
  }
}

/** The JSON form of {@link EncryptedData}: ciphertext in lowercase hex, dates in ISO 8601. */
export interface EncryptedDataJson {
  ciphertext: string
  keyReference: ReturnType<KeyReference['toJSON']>
  algorithm: string
  encryptedAt: string
  context: Record<string, string>
}

const EncryptedDataJsonSchema = z
  .object({
    ciphertext: z.string().regex(/^(?:[0-9a-f]{2})+$/, 'must be non-empty lowercase hex'),
    keyReference: KeyReferenceSchema,
    algorithm: z.string().min(1).max(64),
    encryptedAt: z.iso.datetime({ offset: true }),
    context: EncryptionContextSchema,
  })
  .strict()

export interface EncryptedDataInit {
  ciphertext: Uint8Array
  keyReference: KeyReference
  algorithm: string
  encryptedAt: Date
  context?: EncryptionContext
}

/**
 * A ciphertext with everything needed to decrypt it again: which key, which
 * algorithm, when, and the context it is bound to. Immutable: the bytes are
 * copied in and copied out.
 *
 * @example
 * ```ts
 * const stored = JSON.stringify(encrypted)        // toJSON(): hex ciphertext
 * const back = EncryptedData.fromJSON(JSON.parse(stored))
 * ```
 */
export class EncryptedData {
  readonly #ciphertext: Uint8Array
  readonly keyReference: KeyReference
  readonly algorithm: string
  readonly #encryptedAt: number
  readonly context: EncryptionContext

  constructor(init: EncryptedDataInit) {
    if (!(init.ciphertext instanceof Uint8Array) || init.ciphertext.length === 0) {
      throw new InvalidEncryptedDataError('ciphertext must be non-empty bytes')
    }
    if (!(init.keyReference instanceof KeyReference)) {
      throw new InvalidEncryptedDataError('keyReference must be a KeyReference')
    }
    if (Number.isNaN(init.encryptedAt.getTime()))
      throw new InvalidEncryptedDataError('encryptedAt is not a date')
    if (init.context !== undefined && !isEncryptionContext(init.context)) {
      throw new InvalidEncryptedDataError('context must map strings to strings')
    }
    this.#ciphertext = Uint8Array.from(init.ciphertext)
    this.keyReference = init.keyReference
    this.algorithm = init.algorithm
    this.#encryptedAt = init.encryptedAt.getTime()
    this.context = Object.freeze({ ...(init.context ?? {}) })
    Object.freeze(this)
  }

  /** A copy of the ciphertext bytes. */
  get ciphertext(): Uint8Array {
    return Uint8Array.from(this.#ciphertext)
  }

  get encryptedAt(): Date {
    return new Date(this.#encryptedAt)
  }

  toJSON(): EncryptedDataJson {
    return {
      ciphertext: Buffer.from(this.#ciphertext).toString('hex'),
      keyReference: this.keyReference.toJSON(),
      algorithm: this.algorithm,
      encryptedAt: new Date(this.#encryptedAt).toISOString(),
      context: { ...this.context },
    }
  }

  /** Parses {@link toJSON}'s output exactly; anything else is `ERR_KMS_INVALID_FORMAT`. */
  static fromJSON(json: unknown): EncryptedData {
    // Checked on the raw input: zod drops a `__proto__` key instead of failing on it.
    const rawContext = (json as { context?: unknown } | null)?.context
    if (rawContext !== undefined && !isEncryptionContext(rawContext)) {
      throw new InvalidEncryptedDataError('field context is invalid')
    }
    const parsed = EncryptedDataJsonSchema.safeParse(json)
    if (!parsed.success) {
      const issue = parsed.error.issues[0]
      const field = issue === undefined || issue.path.length === 0 ? '(root)' : issue.path.join('.')
      throw new InvalidEncryptedDataError(`field ${field} is invalid`)
    }
    const v = parsed.data
    return new EncryptedData({
      ciphertext: Buffer.from(v.ciphertext, 'hex'),
      keyReference: new KeyReference(v.keyReference),
      algorithm: v.algorithm,
      encryptedAt: new Date(v.encryptedAt),
      context: v.context,
    })
  }
}

/**
 * A freshly generated data key: the plaintext for local use, and the same key
 * wrapped by the KMS for storage. Call `dispose()` when done: it zeroes the
 * plaintext.
 */
export class DataKeyPair {
  readonly #plaintext: Buffer
  readonly encryptedKey: Uint8Array
  readonly keyReference: KeyReference
  /** Algorithm of the wrapping, as `EncryptedData.algorithm` records it. */
  readonly algorithm: string
  /** Context the wrapped key is bound to. */
  readonly context: EncryptionContext
  readonly #createdAt: number
  #disposed = false

  constructor(
    plaintextKey: Uint8Array,
    encryptedKey: Uint8Array,
    keyReference: KeyReference,
    options: { algorithm?: string; context?: EncryptionContext; createdAt?: Date } = {},
  ) {
    // Buffer.alloc, never allocUnsafe/from: an unpooled buffer that holds only this key.
    this.#plaintext = Buffer.alloc(plaintextKey.length)
    this.#plaintext.set(plaintextKey)
    this.encryptedKey = Uint8Array.from(encryptedKey)
    this.keyReference = keyReference
    this.algorithm = options.algorithm ?? 'unknown'
    this.context = Object.freeze({ ...(options.context ?? {}) })
    this.#createdAt = (options.createdAt ?? new Date()).getTime()
  }

  /** The wrapped key as {@link EncryptedData}, ready to store and to `decrypt` later. */
  toEncryptedData(): EncryptedData {
    return new EncryptedData({
      ciphertext: this.encryptedKey,
      keyReference: this.keyReference,
      algorithm: this.algorithm,
      encryptedAt: new Date(this.#createdAt),
      context: this.context,
    })
  }

  /** The plaintext key. Throws after `dispose()`. */
  get plaintextKey(): Buffer {
    if (this.#disposed) throw new TypeError('data key was disposed')
    return this.#plaintext
  }

  get disposed(): boolean {
    return this.#disposed
  }

  /** Zeroes the plaintext key. Idempotent. */
  dispose(): void {
    this.#plaintext.fill(0)
    this.#disposed = true
  }

  [Symbol.dispose](): void {
    this.dispose()
  }
}

/** How and when a key rotates. */
export interface RotationPolicy {
  readonly enabled: boolean
  /** Automatic rotation period, or null when the back end has none configured. */
  readonly rotationPeriodDays: number | null
  readonly lastRotation: Date | null
  readonly nextRotation: Date | null
}

/** What a provider knows about a key. */
export interface KeyInfo {
  readonly reference: KeyReference
  readonly state: KeyState
  /** Current (primary) version, where the back end numbers versions. */
  readonly currentVersion: number | null
  /** Versions that can still decrypt, where known. */
  readonly versions: number | null
}
