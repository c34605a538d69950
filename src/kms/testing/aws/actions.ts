/**
 * The table of KMS actions the emulator serves, one handler per action
 * (`X-Amz-Target: TrentService.<action>`): the request's fields in, the
 * answer's fields out, or a `WireError` as KMS would send it.
 */
import { randomBytes } from 'node:crypto'
import { algorithm, blob, byteCount, context, dataKeySize, page } from './inputs.js'
import type { AwsKmsKeyStore, EmulatedKey } from './keys.js'
import { invalidCiphertext, WireError } from './wire.js'

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

/** One action: the request's top-level fields in, the answer (or none) out. */
export type AwsKmsActionHandler = (
  input: Record<string, unknown>,
) => Record<string, unknown> | undefined

/** What the handlers need beyond the key store. */
export interface AwsKmsActionsOptions {
  readonly region: string
  readonly accountId: string
  /** On-demand rotations allowed per key. */
  readonly rotationLimit: number
  /** The service's time (ms). */
  readonly now: () => number
}

const DAY_MS = 86_400_000

/**
 * The handler of every action in {@link AWS_KMS_EMULATOR_ACTIONS}, over one key store.
 *
 * @example
 * ```ts
 * const actions = createAwsKmsActions(store, { region, accountId, rotationLimit: 25, now })
 * actions.DescribeKey({ KeyId: 'alias/app' })
 * ```
 */
export function createAwsKmsActions(
  store: AwsKmsKeyStore,
  options: AwsKmsActionsOptions,
): Readonly<Record<AwsKmsEmulatorAction, AwsKmsActionHandler>> {
  const { region, accountId, rotationLimit, now } = options
  const {
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
  } = store

  /**
   * The key a ciphertext names (Decrypt's KeyId, ReEncrypt's SourceKeyId):
   * the one given, which must be the blob's, else the blob's own.
   */
  const keyOfCiphertext = (keyId: unknown, ciphertext: Buffer): EmulatedKey => {
    if (keyId !== undefined) {
      const key = resolve(keyId)
      requireUsable(key)
      if (blobKeyId(ciphertext) !== key.id) {
        throw new WireError(
          'IncorrectKeyException',
          'The key ID in the request does not identify a CMK that can perform this operation.',
        )
      }
      return key
    }
    const found = keys.get(blobKeyId(ciphertext))
    if (found === undefined) throw invalidCiphertext()
    requireUsable(found)
    return found
  }

  // Keyed by the exported list, so the two cannot drift apart.
  const actions: Record<AwsKmsEmulatorAction, AwsKmsActionHandler> = {
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
      const key = keyOfCiphertext(input.KeyId, ciphertext)
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
      const source = keyOfCiphertext(input.SourceKeyId, ciphertext)
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
  return actions
}
