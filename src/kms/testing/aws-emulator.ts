/**
 * An AWS KMS emulator speaking the real wire protocol (JSON 1.1 over HTTP,
 * `X-Amz-Target: TrentService.<Action>`) on 127.0.0.1, for testing code that
 * uses `@aws-sdk/client-kms` (and `AwsKmsProvider`) without AWS.
 *
 * Faithful where it matters to a client:
 * - Every request must carry a valid **SigV4** `Authorization` header, verified
 *   here (canonical request, string to sign, signing key chain) against the
 *   configured secret; a wrong secret or a tampered body is refused with
 *   `InvalidSignatureException`, an unknown access key or session token with
 *   `UnrecognizedClientException`.
 * - Errors are `{"__type": ..., "message": ...}` with the statuses real KMS
 *   uses: 400 for client errors (throttling included), 500 for
 *   `KMSInternalException`, 503 for `DependencyTimeoutException`.
 * - Real AES-256-GCM with the encryption context (canonical JSON) as
 *   additional authenticated data, and versioned key material: after
 *   `RotateKeyOnDemand` old ciphertexts still decrypt. On-demand rotations are
 *   capped per key, as AWS caps them.
 * - Keys by id, ARN, alias name or alias ARN, where AWS accepts each.
 * - Every answer carries a `Date` header from the emulator's clock (skewed
 *   by `faults.setClockSkew`), as the SDK reads it to correct its own clock
 *   after `InvalidSignatureException` "Signature expired".
 *
 * Actions: the ones in {@link AWS_KMS_EMULATOR_ACTIONS}; others answer
 * `UnknownOperationException`.
 */
import { createHash, createHmac, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gcmOpen, gcmSeal } from '../../internal/aead.js'
import { canonicalJson } from '../../internal/canonical-json.js'
import { type Clock, systemClock } from '../../internal/clock.js'
import { CallCounter, FaultInjector, type KmsEmulator } from './faults.js'

/** Credentials the emulator accepts. */
export interface AwsEmulatorCredentials {
  readonly accessKeyId: string
  readonly secretAccessKey: string
  /** When set, requests must carry it as `X-Amz-Security-Token`. */
  readonly sessionToken?: string
}

export interface AwsKmsEmulatorOptions {
  /**
   * Region requests must be signed for and ARNs carry.
   * @default 'us-east-1'
   */
  region?: string
  /**
   * Account id in ARNs.
   * @default '111122223333'
   */
  accountId?: string
  /**
   * Credentials accepted; the first is exposed as `emulator.credentials`.
   * @default one freshly generated access key (no session token)
   */
  credentials?: AwsEmulatorCredentials | readonly AwsEmulatorCredentials[]
  /**
   * On-demand rotations allowed per key before `LimitExceededException`
   * (AWS allows 25: RotateKeyOnDemand in the API reference).
   * @default 25
   */
  onDemandRotationLimit?: number
  /**
   * Largest difference between `X-Amz-Date` and the emulator's clock (AWS: 5 minutes).
   * @default 300000
   */
  maxClockSkewMs?: number
  /**
   * Clock for dates, `Date` headers and the signature age check; `faults.setClockSkew`
   * moves the service's time away from it.
   * @default Date.now
   */
  clock?: Clock
}

/** One request as it reached the emulator (after authentication). */
export interface AwsKmsRequestRecord {
  /** `Encrypt`, `Decrypt`, ... */
  readonly action: string
  /** The `KeyId` field, when the request had one. */
  readonly keyId: string | undefined
  /** Names of the top-level fields sent, sorted. */
  readonly fields: readonly string[]
  /** The access key id the request was signed with. */
  readonly accessKeyId: string
}

export interface AwsKmsEmulator extends KmsEmulator {
  /** `http://127.0.0.1:<port>`, for the client's `endpoint`. */
  readonly endpoint: string
  readonly port: number
  readonly region: string
  readonly accountId: string
  /** The first accepted credentials. */
  readonly credentials: AwsEmulatorCredentials
  /** Authenticated requests in arrival order (the plaintext is never recorded). */
  readonly requests: readonly AwsKmsRequestRecord[]
  /** Creates an enabled symmetric key, as `CreateKey` does. */
  createKey(options?: { description?: string }): { keyId: string; arn: string }
  /** Points `alias/<name>` at a key (id or ARN), as `CreateAlias` does. */
  createAlias(aliasName: string, targetKeyId: string): void
  /** Re-points an existing alias, as `UpdateAlias` does. */
  updateAlias(aliasName: string, targetKeyId: string): void
  /** Completed rotations of a key (id or ARN), oldest first, as `ListKeyRotations` lists them. */
  rotations(keyId: string): ReadonlyArray<{ readonly type: 'ON_DEMAND'; readonly date: Date }>
}

/** The KMS actions the emulator serves (`X-Amz-Target: TrentService.<action>`). */
export const AWS_KMS_EMULATOR_ACTIONS = [
  'CancelKeyDeletion',
  'CreateAlias',
  'CreateKey',
  'Decrypt',
  'DeleteAlias',
  'DescribeKey',
  'DisableKey',
  'DisableKeyRotation',
  'EnableKey',
  'EnableKeyRotation',
  'Encrypt',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'GenerateRandom',
  'GetKeyRotationStatus',
  'ListAliases',
  'ListKeyRotations',
  'ListKeys',
  'ReEncrypt',
  'RotateKeyOnDemand',
  'ScheduleKeyDeletion',
  'UpdateAlias',
] as const

/** One of {@link AWS_KMS_EMULATOR_ACTIONS}. */
export type AwsKmsEmulatorAction = (typeof AWS_KMS_EMULATOR_ACTIONS)[number]

type AwsKeyState = 'Enabled' | 'Disabled' | 'PendingDeletion'

interface EmulatedKey {
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

/** A KMS error answer. */
class WireError extends Error {
  /** Some errors (InvalidCiphertextException) come without a message. */
  readonly omitMessage: boolean

  constructor(
    readonly type: string,
    message: string | undefined,
    readonly status = 400,
  ) {
    super(message ?? type)
    this.omitMessage = message === undefined
  }
}

const DAY_MS = 86_400_000
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const BLOB_FORMAT = 0x01
const BLOB_HEADER = 1 + 16 + 4
const NONCE = 12
const TAG = 16
const MAX_BODY = 1024 * 1024
const SIGNATURE_MISMATCH =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.'

/**
 * Starts the emulator on 127.0.0.1 (a free port).
 *
 * @example
 * ```ts
 * import { KMSClient } from '@aws-sdk/client-kms'
 * import { startAwsKmsEmulator } from 'fraiseql-security/kms/testing'
 * const kms = await startAwsKmsEmulator()
 * const { arn } = kms.createKey()
 * const provider = new AwsKmsProvider({ region: kms.region, endpoint: kms.endpoint, credentials: kms.credentials })
 * // ...
 * await kms.close()
 * ```
 */
export async function startAwsKmsEmulator(
  options: AwsKmsEmulatorOptions = {},
): Promise<AwsKmsEmulator> {
  const region = options.region ?? 'us-east-1'
  const accountId = options.accountId ?? '111122223333'
  const clock = options.clock ?? systemClock
  const rotationLimit = options.onDemandRotationLimit ?? 25
  const maxSkewMs = options.maxClockSkewMs ?? 300_000
  const given = options.credentials
  const credentialList: readonly AwsEmulatorCredentials[] =
    given === undefined
      ? [
          {
            accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
            secretAccessKey: randomBytes(30).toString('base64'),
          },
        ]
      : Array.isArray(given)
        ? given
        : [given as AwsEmulatorCredentials]
  const first = credentialList[0]
  if (first === undefined) throw new TypeError('the AWS KMS emulator needs at least one credential')
  const credentials = new Map(credentialList.map((c) => [c.accessKeyId, c]))

  const calls = new CallCounter()
  const faults = new FaultInjector()
  const requests: AwsKmsRequestRecord[] = []
  const keys = new Map<string, EmulatedKey>()
  const aliases = new Map<string, string>()
  const closing = new AbortController()
  const aliasDates = new Map<string, { created: number; updated: number }>()
  /** The service's time: the emulator's clock moved by the injected skew. */
  const now = () => clock() + faults.clockSkewMs

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

  /** `KeySpec` or `NumberOfBytes`, exactly one, as GenerateDataKey* take them. */
  function dataKeySize(input: Record<string, unknown>): number {
    const { KeySpec: spec, NumberOfBytes: n } = input
    if ((spec === undefined) === (n === undefined)) {
      throw new WireError(
        'ValidationException',
        'Please specify either number of bytes or key spec.',
      )
    }
    if (spec !== undefined) {
      if (spec !== 'AES_256' && spec !== 'AES_128') {
        throw new WireError(
          'ValidationException',
          "1 validation error detected: Value at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]",
        )
      }
      return spec === 'AES_256' ? 32 : 16
    }
    return byteCount(n)
  }

  /** A list page: `Limit` 1-1000 (default 100) and an opaque `Marker` from the previous page. */
  function page<T>(
    items: readonly T[],
    input: Record<string, unknown>,
  ): { items: T[]; more: { Truncated: boolean; NextMarker?: string } } {
    const limit = input.Limit ?? 100
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new WireError(
        'ValidationException',
        "1 validation error detected: Value at 'limit' failed to satisfy constraint: Member must have value between 1 and 1000",
      )
    }
    let start = 0
    if (input.Marker !== undefined) {
      const decoded =
        typeof input.Marker === 'string'
          ? /^o([0-9]{1,9})$/.exec(Buffer.from(input.Marker, 'base64').toString('latin1'))
          : null
      if (decoded === null) throw new WireError('InvalidMarkerException', 'Invalid marker.')
      start = Number(decoded[1])
    }
    const slice = items.slice(start, start + limit)
    const next = start + slice.length
    return next < items.length
      ? {
          items: slice,
          more: { Truncated: true, NextMarker: Buffer.from(`o${next}`).toString('base64') },
        }
      : { items: slice, more: { Truncated: false } }
  }

  function rotationsOf(key: EmulatedKey): Array<{ version: number; at: number }> {
    return key.rotatedAt.map((at, i) => ({ version: i + 2, at }))
  }

  // Keyed by the exported list, so the two cannot drift apart.
  const actions: Record<
    AwsKmsEmulatorAction,
    (input: Record<string, unknown>) => Record<string, unknown> | undefined
  > = {
    CreateKey(input) {
      if (input.KeyUsage !== undefined && input.KeyUsage !== 'ENCRYPT_DECRYPT') {
        throw new WireError(
          'UnsupportedOperationException',
          'This emulator creates symmetric encryption keys only.',
        )
      }
      const spec = input.KeySpec ?? input.CustomerMasterKeySpec
      if (spec !== undefined && spec !== 'SYMMETRIC_DEFAULT') {
        throw new WireError(
          'UnsupportedOperationException',
          'This emulator creates symmetric encryption keys only.',
        )
      }
      const description = typeof input.Description === 'string' ? input.Description : ''
      return { KeyMetadata: metadata(createKey(description)) }
    },
    CreateAlias(input) {
      setAlias(input.AliasName, input.TargetKeyId, false)
      return undefined
    },
    UpdateAlias(input) {
      setAlias(input.AliasName, input.TargetKeyId, true)
      return undefined
    },
    DeleteAlias(input) {
      const alias = aliasName(input.AliasName)
      if (!aliases.delete(alias))
        throw new WireError('NotFoundException', `Alias ${alias} is not found.`)
      aliasDates.delete(alias)
      return undefined
    },
    DescribeKey(input) {
      return { KeyMetadata: metadata(resolve(input.KeyId)) }
    },
    Encrypt(input) {
      const key = resolve(input.KeyId)
      requireUsable(key)
      algorithm(input.EncryptionAlgorithm)
      const plaintext = blob(input.Plaintext, 'plaintext', 4096)
      const blobOut = seal(key, plaintext, context(input.EncryptionContext))
      return {
        CiphertextBlob: blobOut.toString('base64'),
        KeyId: key.arn,
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      }
    },
    Decrypt(input) {
      algorithm(input.EncryptionAlgorithm)
      const ciphertext = blob(input.CiphertextBlob, 'ciphertextBlob', 6144)
      const ctx = context(input.EncryptionContext)
      let key: EmulatedKey
      if (input.KeyId !== undefined) {
        key = resolve(input.KeyId)
        requireUsable(key)
        if (blobKeyId(ciphertext) !== key.id) {
          throw new WireError(
            'IncorrectKeyException',
            'The key ID in the request does not identify a CMK that can perform this operation.',
          )
        }
      } else {
        const found = keys.get(blobKeyId(ciphertext))
        if (found === undefined) throw invalidCiphertext()
        key = found
        requireUsable(key)
      }
      const plaintext = open(key, ciphertext, ctx)
      return {
        KeyId: key.arn,
        Plaintext: plaintext.toString('base64'),
        EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
      }
    },
    GenerateDataKey(input) {
      const key = resolve(input.KeyId)
      requireUsable(key)
      const plaintext = randomBytes(dataKeySize(input))
      const sealed = seal(key, plaintext, context(input.EncryptionContext))
      return {
        CiphertextBlob: sealed.toString('base64'),
        Plaintext: plaintext.toString('base64'),
        KeyId: key.arn,
        KeyMaterialId: materialId(key, key.material.length),
      }
    },
    GenerateDataKeyWithoutPlaintext(input) {
      const key = resolve(input.KeyId)
      requireUsable(key)
      const plaintext = randomBytes(dataKeySize(input))
      const sealed = seal(key, plaintext, context(input.EncryptionContext))
      plaintext.fill(0)
      return {
        CiphertextBlob: sealed.toString('base64'),
        KeyId: key.arn,
        KeyMaterialId: materialId(key, key.material.length),
      }
    },
    GenerateRandom(input) {
      if (input.CustomKeyStoreId !== undefined || input.Recipient !== undefined) {
        throw new WireError(
          'UnsupportedOperationException',
          'This emulator generates random bytes only without a custom key store or recipient.',
        )
      }
      return { Plaintext: randomBytes(byteCount(input.NumberOfBytes)).toString('base64') }
    },
    ReEncrypt(input) {
      const ciphertext = blob(input.CiphertextBlob, 'ciphertextBlob', 6144)
      algorithm(input.SourceEncryptionAlgorithm)
      algorithm(input.DestinationEncryptionAlgorithm)
      const sourceContext = context(input.SourceEncryptionContext)
      const destinationContext = context(input.DestinationEncryptionContext)
      if (input.DestinationKeyId === undefined) {
        throw new WireError(
          'ValidationException',
          "1 validation error detected: Value null at 'destinationKeyId' failed to satisfy constraint: Member must not be null",
        )
      }
      let source: EmulatedKey
      if (input.SourceKeyId !== undefined) {
        source = resolve(input.SourceKeyId)
        requireUsable(source)
        if (blobKeyId(ciphertext) !== source.id) {
          throw new WireError(
            'IncorrectKeyException',
            'The key ID in the request does not identify a CMK that can perform this operation.',
          )
        }
      } else {
        const found = keys.get(blobKeyId(ciphertext))
        if (found === undefined) throw invalidCiphertext()
        source = found
        requireUsable(source)
      }
      const destination = resolve(input.DestinationKeyId)
      requireUsable(destination)
      const plaintext = open(source, ciphertext, sourceContext)
      const sealed = seal(destination, plaintext, destinationContext)
      plaintext.fill(0)
      return {
        CiphertextBlob: sealed.toString('base64'),
        SourceKeyId: source.arn,
        KeyId: destination.arn,
        SourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        DestinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        SourceKeyMaterialId: materialId(source, blobVersion(ciphertext)),
        DestinationKeyMaterialId: materialId(destination, destination.material.length),
      }
    },
    ListKeys(input) {
      const { items, more } = page([...keys.values()], input)
      return { Keys: items.map((k) => ({ KeyId: k.id, KeyArn: k.arn })), ...more }
    },
    ListAliases(input) {
      const target = input.KeyId === undefined ? undefined : resolve(input.KeyId, false)
      const all = [...aliases.entries()]
        .filter(([, id]) => target === undefined || id === target.id)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      const { items, more } = page(all, input)
      return {
        Aliases: items.map(([alias, id]) => {
          const dates = aliasDates.get(alias)
          return {
            AliasName: alias,
            AliasArn: `arn:aws:kms:${region}:${accountId}:${alias}`,
            TargetKeyId: id,
            ...(dates === undefined
              ? {}
              : { CreationDate: dates.created / 1000, LastUpdatedDate: dates.updated / 1000 }),
          }
        }),
        ...more,
      }
    },
    ListKeyRotations(input) {
      const key = resolve(input.KeyId, false)
      if (key.state === 'PendingDeletion') requireUsable(key)
      const { items, more } = page(rotationsOf(key), input)
      return {
        Rotations: items.map((r) => ({
          KeyId: key.arn,
          KeyMaterialId: materialId(key, r.version),
          KeyMaterialState: r.version === key.material.length ? 'CURRENT' : 'NON_CURRENT',
          RotationDate: r.at / 1000,
          RotationType: 'ON_DEMAND',
        })),
        ...more,
      }
    },
    RotateKeyOnDemand(input) {
      const key = resolve(input.KeyId, false)
      requireUsable(key)
      if (key.onDemandRotations >= rotationLimit) {
        throw new WireError(
          'LimitExceededException',
          `The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: ${key.arn}`,
        )
      }
      key.onDemandRotations++
      key.material.push(randomBytes(32))
      key.rotatedAt.push(now())
      return { KeyId: key.id }
    },
    EnableKeyRotation(input) {
      const key = resolve(input.KeyId, false)
      requireUsable(key)
      const days = input.RotationPeriodInDays ?? 365
      if (typeof days !== 'number' || !Number.isInteger(days) || days < 90 || days > 2560) {
        throw new WireError(
          'ValidationException',
          "1 validation error detected: Value at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value between 90 and 2560",
        )
      }
      key.rotation = { enabled: true, periodDays: days, next: now() + days * DAY_MS }
      return undefined
    },
    DisableKeyRotation(input) {
      const key = resolve(input.KeyId, false)
      requireUsable(key)
      key.rotation = { enabled: false, periodDays: key.rotation.periodDays, next: undefined }
      return undefined
    },
    GetKeyRotationStatus(input) {
      const key = resolve(input.KeyId, false)
      // Allowed on a disabled key, refused on one pending deletion (AWS's key-state table).
      if (key.state === 'PendingDeletion') requireUsable(key)
      const r = key.rotation
      return {
        KeyRotationEnabled: r.enabled,
        KeyId: key.arn,
        ...(r.enabled && r.next !== undefined
          ? { RotationPeriodInDays: r.periodDays, NextRotationDate: r.next / 1000 }
          : {}),
      }
    },
    DisableKey(input) {
      const key = resolve(input.KeyId, false)
      if (key.state === 'PendingDeletion') requireUsable(key)
      key.state = 'Disabled'
      return undefined
    },
    EnableKey(input) {
      const key = resolve(input.KeyId, false)
      if (key.state === 'PendingDeletion') requireUsable(key)
      key.state = 'Enabled'
      return undefined
    },
    ScheduleKeyDeletion(input) {
      const key = resolve(input.KeyId, false)
      if (key.state === 'PendingDeletion') requireUsable(key)
      const days = input.PendingWindowInDays ?? 30
      if (typeof days !== 'number' || !Number.isInteger(days) || days < 7 || days > 30) {
        throw new WireError(
          'ValidationException',
          "1 validation error detected: Value at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30",
        )
      }
      key.state = 'PendingDeletion'
      key.pendingWindowDays = days
      key.deletionDate = now() + days * DAY_MS
      return {
        KeyId: key.arn,
        DeletionDate: key.deletionDate / 1000,
        KeyState: 'PendingDeletion',
        PendingWindowInDays: days,
      }
    },
    CancelKeyDeletion(input) {
      const key = resolve(input.KeyId, false)
      if (key.state !== 'PendingDeletion') {
        throw new WireError('KMSInvalidStateException', `${key.arn} is not pending deletion.`)
      }
      // AWS leaves a key whose deletion was cancelled disabled.
      key.state = 'Disabled'
      key.deletionDate = undefined
      key.pendingWindowDays = undefined
      return { KeyId: key.arn }
    },
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req)
    if (body === undefined) {
      req.socket.destroy()
      return
    }
    const target = header(req, 'x-amz-target')
    const action = target?.startsWith('TrentService.')
      ? target.slice('TrentService.'.length)
      : undefined
    calls.increment(action ?? '(none)')

    const fault = faults.next(action ?? '(none)')
    const date = () => new Date(clock() + fault.clockSkewMs)
    if (fault.delayMs > 0) await wait(fault.delayMs, res, closing.signal)
    if (res.destroyed || closing.signal.aborted) return
    // An outage looks like a dead service: the connection drops, no answer.
    if (fault.outage) {
      req.socket.destroy()
      return
    }
    try {
      if (req.method !== 'POST' || (req.url ?? '/').split('?')[0] !== '/') {
        throw new WireError('UnknownOperationException', undefined, 404)
      }
      const accessKeyId = authenticate(req, body, date().getTime())
      if (fault.fail === 'unavailable') {
        throw new WireError('KMSInternalException', 'An internal error occurred.', 500)
      }
      // KMS sends no Retry-After: a throttled client backs off on its own.
      if (fault.fail === 'throttle') throw new WireError('ThrottlingException', 'Rate exceeded')
      const contentType = header(req, 'content-type')?.split(';')[0]?.trim()
      if (contentType !== 'application/x-amz-json-1.1') {
        throw new WireError('SerializationException', 'Unsupported content type')
      }
      const handler =
        action !== undefined && Object.hasOwn(actions, action)
          ? actions[action as AwsKmsEmulatorAction]
          : undefined
      if (action === undefined || handler === undefined) {
        throw new WireError('UnknownOperationException', undefined)
      }
      let input: unknown
      try {
        input = body.length === 0 ? {} : JSON.parse(body.toString('utf8'))
      } catch {
        throw new WireError(
          'SerializationException',
          'Start of structure or map found where not expected.',
        )
      }
      if (input === null || typeof input !== 'object' || Array.isArray(input)) {
        throw new WireError(
          'SerializationException',
          'Start of structure or map found where not expected.',
        )
      }
      const fields = input as Record<string, unknown>
      requests.push({
        action,
        keyId: typeof fields.KeyId === 'string' ? fields.KeyId : undefined,
        fields: Object.keys(fields).sort(),
        accessKeyId,
      })
      const answer = handler(fields)
      // Done, then the connection drops before the answer: the client cannot tell.
      if (fault.fail === 'reset-after-commit') {
        req.socket.destroy()
        return
      }
      reply(res, 200, answer, date())
    } catch (err) {
      if (err instanceof WireError) {
        reply(
          res,
          err.status,
          { __type: err.type, ...(err.omitMessage ? {} : { message: err.message }) },
          date(),
        )
      } else {
        reply(
          res,
          500,
          { __type: 'KMSInternalException', message: 'An internal error occurred.' },
          date(),
        )
      }
    }
  }

  /** SigV4 as AWS checks it; returns the access key id, or throws the error AWS would send. */
  function authenticate(req: IncomingMessage, body: Buffer, serverTime: number): string {
    const authorization = header(req, 'authorization')
    if (authorization === undefined) {
      throw new WireError('MissingAuthenticationTokenException', 'Missing Authentication Token')
    }
    const parsed = parseAuthorization(authorization)
    if (parsed === undefined) {
      throw new WireError(
        'IncompleteSignatureException',
        `Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters.`,
      )
    }
    const cred = credentials.get(parsed.accessKeyId)
    const token = header(req, 'x-amz-security-token')
    if (cred === undefined || !sameToken(cred.sessionToken, token)) {
      throw new WireError(
        'UnrecognizedClientException',
        'The security token included in the request is invalid.',
      )
    }
    const amzDate = header(req, 'x-amz-date')
    if (amzDate === undefined || !/^\d{8}T\d{6}Z$/.test(amzDate)) {
      throw new WireError(
        'IncompleteSignatureException',
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
      )
    }
    const { date, region: scopeRegion, service } = parsed.scope
    if (date !== amzDate.slice(0, 8)) {
      throw new WireError(
        'InvalidSignatureException',
        'Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.',
      )
    }
    if (scopeRegion !== region) {
      throw new WireError(
        'InvalidSignatureException',
        `Credential should be scoped to a valid region.`,
      )
    }
    if (service !== 'kms') {
      throw new WireError(
        'InvalidSignatureException',
        "Credential should be scoped to correct service: 'kms'.",
      )
    }
    if (!parsed.signedHeaders.includes('host') || !parsed.signedHeaders.includes('x-amz-date')) {
      throw new WireError('InvalidSignatureException', SIGNATURE_MISMATCH)
    }
    const at = Date.UTC(
      Number(amzDate.slice(0, 4)),
      Number(amzDate.slice(4, 6)) - 1,
      Number(amzDate.slice(6, 8)),
      Number(amzDate.slice(9, 11)),
      Number(amzDate.slice(11, 13)),
      Number(amzDate.slice(13, 15)),
    )
    // KMS's own wording; the SDK recognises "Signature expired" and corrects its clock from `Date`.
    const minutes = `${Math.round(maxSkewMs / 60_000)} min.`
    if (serverTime - at > maxSkewMs) {
      throw new WireError(
        'InvalidSignatureException',
        `Signature expired: ${amzDate} is now earlier than ${isoBasic(serverTime - maxSkewMs)} (${isoBasic(serverTime)} - ${minutes})`,
      )
    }
    if (at - serverTime > maxSkewMs) {
      throw new WireError(
        'InvalidSignatureException',
        `Signature not yet current: ${amzDate} is still later than ${isoBasic(serverTime + maxSkewMs)} (${isoBasic(serverTime)} + ${minutes})`,
      )
    }
    const [path = '/', query = ''] = (req.url ?? '/').split('?', 2)
    const expected = computeSigV4Signature({
      method: req.method ?? 'POST',
      path,
      query,
      headers: headerValues(req),
      signedHeaders: parsed.signedHeaders,
      // The hash of the body actually received, never the client's
      // x-amz-content-sha256 claim: a tampered body must not verify.
      payloadHash: createHash('sha256').update(body).digest('hex'),
      amzDate,
      region: scopeRegion,
      service,
      secretAccessKey: cred.secretAccessKey,
    })
    const given = Buffer.from(parsed.signature, 'hex')
    const want = Buffer.from(expected, 'hex')
    if (given.length !== want.length || !timingSafeEqual(given, want)) {
      throw new WireError('InvalidSignatureException', SIGNATURE_MISMATCH)
    }
    return cred.accessKeyId
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => req.socket.destroy())
  })
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolveListen()
    })
  })
  const port = (server.address() as AddressInfo).port

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    region,
    accountId,
    credentials: first,
    calls,
    faults,
    get requests() {
      return [...requests]
    },
    createKey(o = {}) {
      const key = createKey(o.description ?? '')
      return { keyId: key.id, arn: key.arn }
    },
    createAlias(name, target) {
      setAlias(name, target, false)
    },
    updateAlias(name, target) {
      setAlias(name, target, true)
    },
    rotations(keyId) {
      return rotationsOf(resolve(keyId, false)).map((r) => ({
        type: 'ON_DEMAND' as const,
        date: new Date(r.at),
      }))
    },
    close() {
      closing.abort()
      return new Promise<void>((done) => {
        server.close(() => done())
        server.closeAllConnections()
      })
    },
  }
}

function invalidCiphertext(): WireError {
  // Real KMS sends this one without a message.
  return new WireError('InvalidCiphertextException', undefined)
}

/** `NumberOfBytes`: an integer from 1 to 1024. */
function byteCount(n: unknown): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 1024) {
    throw new WireError(
      'ValidationException',
      "1 validation error detected: Value at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024",
    )
  }
  return n
}

function algorithm(value: unknown): void {
  if (value !== undefined && value !== 'SYMMETRIC_DEFAULT') {
    throw new WireError(
      'InvalidKeyUsageException',
      'The encryption algorithm is not supported by this key.',
    )
  }
}

/** A base64 blob field, 1 to `max` bytes. */
function blob(value: unknown, field: string, max: number): Buffer {
  if (
    typeof value !== 'string' ||
    !/^[A-Za-z0-9+/]*={0,2}$/.test(value) ||
    value.length % 4 !== 0
  ) {
    throw new WireError('SerializationException', `Value for '${field}' is not valid base64`)
  }
  const bytes = Buffer.from(value, 'base64')
  if (bytes.length < 1 || bytes.length > max) {
    throw new WireError(
      'ValidationException',
      `1 validation error detected: Value at '${field}' failed to satisfy constraint: Member must have length between 1 and ${max}`,
    )
  }
  return bytes
}

function context(value: unknown): Record<string, string> {
  if (value === undefined) return {}
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new WireError('SerializationException', 'EncryptionContext must be a map of strings')
  }
  for (const v of Object.values(value)) {
    if (typeof v !== 'string') {
      throw new WireError('SerializationException', 'EncryptionContext must be a map of strings')
    }
  }
  return value as Record<string, string>
}

function sameToken(expected: string | undefined, given: string | undefined): boolean {
  if (expected === undefined || given === undefined) return expected === given
  const a = Buffer.from(expected)
  const b = Buffer.from(given)
  return a.length === b.length && timingSafeEqual(a, b)
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return Array.isArray(value) ? value.join(',') : value
}

/** Header values by lowercased name, repeated headers joined with "," (as SigV4 canonicalizes them). */
function headerValues(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase()
    const value = req.rawHeaders[i + 1]!
    out[name] = out[name] === undefined ? value : `${out[name]},${value}`
  }
  return out
}

interface ParsedAuthorization {
  readonly accessKeyId: string
  readonly scope: { date: string; region: string; service: string }
  readonly signedHeaders: readonly string[]
  readonly signature: string
}

/** `AWS4-HMAC-SHA256 Credential=<akid>/<date>/<region>/<service>/aws4_request, SignedHeaders=a;b, Signature=<hex>`. */
function parseAuthorization(value: string): ParsedAuthorization | undefined {
  const space = value.indexOf(' ')
  if (space < 0 || value.slice(0, space) !== 'AWS4-HMAC-SHA256') return undefined
  const params = new Map<string, string>()
  for (const part of value.slice(space + 1).split(',')) {
    const eq = part.indexOf('=')
    if (eq > 0) params.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim())
  }
  const credential = params.get('Credential')?.split('/')
  const signedHeaders = params.get('SignedHeaders')
  const signature = params.get('Signature')
  if (credential?.length !== 5 || credential[4] !== 'aws4_request') return undefined
  if (signedHeaders === undefined || !/^[a-z0-9-]+(?:;[a-z0-9-]+)*$/.test(signedHeaders)) {
    return undefined
  }
  if (signature === undefined || !/^[0-9a-f]{64}$/.test(signature)) return undefined
  const [accessKeyId, date, region, service] = credential as [string, string, string, string]
  return {
    accessKeyId,
    scope: { date, region, service },
    signedHeaders: signedHeaders.split(';'),
    signature,
  }
}

/** What {@link computeSigV4Signature} signs. */
export interface SigV4Input {
  readonly method: string
  /** The request path as received (percent-encoded). */
  readonly path: string
  /** The raw query string, without `?`. */
  readonly query: string
  /** Header values by lowercased name. */
  readonly headers: Readonly<Record<string, string>>
  /** Lowercased names of the signed headers, sorted. */
  readonly signedHeaders: readonly string[]
  /** Lowercase hex SHA-256 of the body. */
  readonly payloadHash: string
  /** `YYYYMMDDTHHMMSSZ`. */
  readonly amzDate: string
  readonly region: string
  readonly service: string
  readonly secretAccessKey: string
}

/**
 * The SigV4 signature (lowercase hex) of a request, per AWS's "Create a
 * signed AWS API request": canonical request → string to sign → HMAC chain
 * `AWS4<secret>` → date → region → service → `aws4_request`. Exported for the
 * test vectors; not part of the public API.
 *
 * @example
 * ```ts
 * computeSigV4Signature({ method: 'GET', path: '/', query: '', headers, signedHeaders: ['host', 'x-amz-date'], ... })
 * ```
 */
export function computeSigV4Signature(input: SigV4Input): string {
  const canonicalHeaders = input.signedHeaders
    .map((name) => `${name}:${(input.headers[name] ?? '').trim().replace(/\s+/g, ' ')}\n`)
    .join('')
  const canonicalRequest = [
    input.method.toUpperCase(),
    canonicalPath(input.path),
    canonicalQuery(input.query),
    canonicalHeaders,
    input.signedHeaders.join(';'),
    input.payloadHash,
  ].join('\n')
  const date = input.amzDate.slice(0, 8)
  const scope = `${date}/${input.region}/${input.service}/aws4_request`
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    input.amzDate,
    scope,
    createHash('sha256').update(canonicalRequest, 'utf8').digest('hex'),
  ].join('\n')
  let key: Buffer = hmac(`AWS4${input.secretAccessKey}`, date)
  for (const part of [input.region, input.service, 'aws4_request']) key = hmac(key, part)
  return createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex')
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest()
}

/** RFC 3986 unreserved characters stay, everything else is %XX (uppercase). */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  )
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value)
  } catch {
    return value
  }
}

/**
 * Non-S3 services sign the normalized path with each segment URI-encoded:
 * decode what came over the wire, then encode it the canonical way.
 */
function canonicalPath(path: string): string {
  const segments: string[] = []
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue
    if (segment === '..') segments.pop()
    else segments.push(segment)
  }
  const trailing = path.endsWith('/') && segments.length > 0 ? '/' : ''
  return `/${segments.map((s) => uriEncode(safeDecode(s))).join('/')}${trailing}`
}

/** Parameters sorted by encoded name, then value; each re-encoded the canonical way. */
function canonicalQuery(query: string): string {
  if (query === '') return ''
  return query
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=')
      const name = eq < 0 ? p : p.slice(0, eq)
      const value = eq < 0 ? '' : p.slice(eq + 1)
      return [uriEncode(safeDecode(name)), uriEncode(safeDecode(value))] as const
    })
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&')
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of req) {
      size += (chunk as Buffer).length
      if (size > MAX_BODY) return undefined
      chunks.push(chunk as Buffer)
    }
  } catch {
    return undefined
  }
  return Buffer.concat(chunks)
}

/** `YYYYMMDDTHHMMSSZ`, SigV4's date format. */
function isoBasic(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '')
}

function reply(
  res: ServerResponse,
  status: number,
  body: Record<string, unknown> | undefined,
  date: Date,
): void {
  if (res.destroyed || res.headersSent) return
  const text = body === undefined ? '' : JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
    // The service's clock, not the host's: the SDK sets its clock offset from it.
    date: date.toUTCString(),
  })
  res.end(text)
}

/** Waits, but stops early when the client goes away or the emulator closes. */
function wait(ms: number, res: ServerResponse, closing: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      res.off('close', done)
      closing.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    res.once('close', done)
    closing.addEventListener('abort', done, { once: true })
  })
}
