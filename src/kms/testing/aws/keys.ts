/**
 * The emulator's keys and aliases: real AES-256-GCM with versioned key
 * material (after a rotation old ciphertexts still decrypt), the encryption
 * context bound as additional authenticated data, and key ids resolved by id,
 * ARN, alias name or alias ARN where AWS accepts each.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { gcmOpen, gcmSeal } from '../../../internal/aead.js'
import { canonicalJson } from '../../../internal/canonical-json.js'
import { invalidCiphertext, WireError } from './wire.js'

export type AwsKeyState = 'Enabled' | 'Disabled' | 'PendingDeletion'

export interface EmulatedKey {
  readonly id: string
  readonly arn: string
  readonly createdAt: number
  readonly description: string
  state: AwsKeyState
  deletionDate: number | undefined
  pendingWindowDays: number | undefined
  /** Key material by version; the last one encrypts. */
  readonly material: Buffer[]
  /** When each version after the first was made (ms). */
  readonly rotatedAt: number[]
  onDemandRotations: number
  rotation: { enabled: boolean; periodDays: number; next: number | undefined }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const BLOB_FORMAT = 0x01
const BLOB_HEADER = 1 + 16 + 4
const NONCE = 12
const TAG = 16

/** Where the keys live: ARNs carry the region and account. */
export interface AwsKmsKeyStoreOptions {
  readonly region: string
  readonly accountId: string
  /** The service's time (ms). */
  readonly now: () => number
}

/** The key store, its maps and the operations on them. */
export type AwsKmsKeyStore = ReturnType<typeof createAwsKmsKeyStore>

/**
 * A fresh, empty key store.
 *
 * @example
 * ```ts
 * const store = createAwsKmsKeyStore({ region: 'us-east-1', accountId: '111122223333', now: Date.now })
 * const key = store.createKey('orders')
 * ```
 */
export function createAwsKmsKeyStore(options: AwsKmsKeyStoreOptions) {
  const { region, accountId, now } = options
  const keys = new Map<string, EmulatedKey>()
  const aliases = new Map<string, string>()
  const aliasDates = new Map<string, { created: number; updated: number }>()

  const keyArn = (id: string) => `arn:aws:kms:${region}:${accountId}:key/${id}`

  function createKey(description = ''): EmulatedKey {
    const id = randomUUID()
    const key: EmulatedKey = {
      id,
      arn: keyArn(id),
      createdAt: now(),
      description,
      state: 'Enabled',
      deletionDate: undefined,
      pendingWindowDays: undefined,
      material: [randomBytes(32)],
      rotatedAt: [],
      onDemandRotations: 0,
      rotation: { enabled: false, periodDays: 365, next: undefined },
    }
    keys.set(id, key)
    return key
  }

  /** Resolves a KeyId as AWS does; `aliases: false` for the calls that take a key id or ARN only. */
  function resolve(keyId: unknown, allowAliases = true): EmulatedKey {
    if (typeof keyId !== 'string' || keyId.length === 0 || keyId.length > 2048) {
      throw new WireError(
        'ValidationException',
        "1 validation error detected: Value at 'keyId' failed to satisfy constraint: Member must have length greater than or equal to 1",
      )
    }
    let id: string | undefined
    const arn = /^arn:aws:kms:([^:]*):([^:]*):(key|alias)\/(.+)$/.exec(keyId)
    if (arn !== null) {
      const [, r, account, kind, rest] = arn
      if (r !== region || account !== accountId) throw notFound(keyId)
      if (kind === 'alias') {
        if (!allowAliases) throw notFound(keyId)
        id = aliases.get(`alias/${rest}`)
      } else {
        id = rest
      }
    } else if (keyId.startsWith('alias/')) {
      if (!allowAliases) throw notFound(keyId)
      id = aliases.get(keyId)
      if (id === undefined) {
        throw new WireError(
          'NotFoundException',
          `Alias arn:aws:kms:${region}:${accountId}:${keyId} is not found.`,
        )
      }
    } else if (UUID.test(keyId)) {
      id = keyId
    } else {
      throw new WireError('NotFoundException', `Invalid keyId '${keyId}'`)
    }
    const key = id === undefined ? undefined : keys.get(id)
    if (key === undefined) throw notFound(keyId)
    return key
  }

  function notFound(keyId: string): WireError {
    return new WireError(
      'NotFoundException',
      `Key '${keyId.startsWith('arn:') ? keyId : keyArn(keyId)}' does not exist`,
    )
  }

  /** The key-state rules of AWS's "key states" table for use in cryptographic operations. */
  function requireUsable(key: EmulatedKey): void {
    if (key.state === 'Disabled')
      throw new WireError('DisabledException', `${key.arn} is disabled.`)
    if (key.state === 'PendingDeletion') {
      throw new WireError('KMSInvalidStateException', `${key.arn} is pending deletion.`)
    }
  }

  function aliasName(value: unknown): string {
    if (typeof value !== 'string' || !/^alias\/[a-zA-Z0-9/_-]{1,250}$/.test(value)) {
      throw new WireError(
        'ValidationException',
        'Alias must start with the prefix "alias/" and contain only alphanumeric characters, forward slashes, underscores and dashes.',
      )
    }
    if (value.startsWith('alias/aws/')) {
      throw new WireError('NotAuthorizedException', 'Cannot create or update an AWS managed alias.')
    }
    return value
  }

  function setAlias(name: unknown, target: unknown, update: boolean): void {
    const alias = aliasName(name)
    const key = resolve(target, false)
    if (key.state === 'PendingDeletion') {
      throw new WireError('KMSInvalidStateException', `${key.arn} is pending deletion.`)
    }
    if (update && !aliases.has(alias)) {
      throw new WireError('NotFoundException', `Alias ${alias} is not found.`)
    }
    if (!update && aliases.has(alias)) {
      throw new WireError(
        'AlreadyExistsException',
        `An alias with the name ${alias} already exists`,
      )
    }
    aliases.set(alias, key.id)
    const at = now()
    aliasDates.set(alias, { created: aliasDates.get(alias)?.created ?? at, updated: at })
  }

  function seal(key: EmulatedKey, plaintext: Buffer, context: Record<string, string>): Buffer {
    const version = key.material.length
    const material = key.material[version - 1]!
    const header = Buffer.alloc(BLOB_HEADER)
    header[0] = BLOB_FORMAT
    Buffer.from(key.id.replaceAll('-', ''), 'hex').copy(header, 1)
    header.writeUInt32BE(version, 17)
    const nonce = randomBytes(NONCE)
    const aad = Buffer.concat([header, Buffer.from(canonicalJson(context), 'utf8')])
    return Buffer.concat([header, nonce, gcmSeal(material, nonce, plaintext, aad)])
  }

  /** The key a blob names, or InvalidCiphertextException: a corrupt blob says nothing more. */
  function blobKeyId(blob: Buffer): string {
    if (blob.length < BLOB_HEADER + NONCE + TAG || blob[0] !== BLOB_FORMAT)
      throw invalidCiphertext()
    const hex = blob.subarray(1, 17).toString('hex')
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
  }

  function open(key: EmulatedKey, blob: Buffer, context: Record<string, string>): Buffer {
    const material = key.material[blob.readUInt32BE(17) - 1]
    if (material === undefined) throw invalidCiphertext()
    const plaintext = gcmOpen(
      material,
      blob.subarray(BLOB_HEADER, BLOB_HEADER + NONCE),
      blob.subarray(BLOB_HEADER + NONCE),
      Buffer.concat([blob.subarray(0, BLOB_HEADER), Buffer.from(canonicalJson(context), 'utf8')]),
    )
    if (plaintext === undefined) throw invalidCiphertext()
    return plaintext
  }

  function metadata(key: EmulatedKey): Record<string, unknown> {
    return {
      AWSAccountId: accountId,
      KeyId: key.id,
      Arn: key.arn,
      CreationDate: key.createdAt / 1000,
      Enabled: key.state === 'Enabled',
      Description: key.description,
      KeyUsage: 'ENCRYPT_DECRYPT',
      KeyState: key.state,
      ...(key.deletionDate === undefined
        ? {}
        : {
            DeletionDate: key.deletionDate / 1000,
            PendingDeletionWindowInDays: key.pendingWindowDays,
          }),
      Origin: 'AWS_KMS',
      KeyManager: 'CUSTOMER',
      CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
      KeySpec: 'SYMMETRIC_DEFAULT',
      EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
      MultiRegion: false,
      CurrentKeyMaterialId: materialId(key, key.material.length),
    }
  }

  /** A key material's id: 64 hex digits, as KMS shows them. */
  function materialId(key: EmulatedKey, version: number): string {
    return createHash('sha256').update(`${key.id}/${version}`).digest('hex')
  }

  /** The blob's key material version, once the blob is known to be this key's. */
  function blobVersion(blob: Buffer): number {
    return blob.readUInt32BE(17)
  }

  function rotationsOf(key: EmulatedKey): Array<{ version: number; at: number }> {
    return key.rotatedAt.map((at, i) => ({ version: i + 2, at }))
  }

  return {
    keys,
    aliases,
    aliasDates,
    createKey,
    resolve,
    requireUsable,
    aliasName,
    setAlias,
    seal,
    blobKeyId,
    open,
    metadata,
    materialId,
    blobVersion,
    rotationsOf,
  }
}
