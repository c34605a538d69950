/**
 * Our AWS KMS emulator driven by a client we did not write: the AWS
 * Encryption SDK's KMS keyring (`@aws-crypto/client-node`), which calls
 * GenerateDataKey, Encrypt and Decrypt with its own expectations of the
 * answers (the ARN it asked for, the plaintext length of its suite). Where
 * the keyring and the emulator disagree, the keyring is right.
 */
import { randomBytes } from 'node:crypto'
import {
  buildClient,
  CommitmentPolicy,
  KMS,
  KmsKeyringNode,
  type KmsNodeClientSupplier,
} from '@aws-crypto/client-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AwsKmsProvider, EncryptedData } from '../../../src/kms/index.js'
import { type AwsKmsEmulator, startAwsKmsEmulator } from '../../../src/kms/testing/aws-emulator.js'

const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
const CONTEXT = { tenant: 'acme', purpose: 'orders' }

describe('AWS KMS emulator driven by the AWS Encryption SDK KMS keyring', () => {
  let emu: AwsKmsEmulator
  let generator: { keyId: string; arn: string }
  let second: { keyId: string; arn: string }
  let clientProvider: KmsNodeClientSupplier

  beforeAll(async () => {
    emu = await startAwsKmsEmulator({ region: 'eu-central-1' })
    generator = emu.createKey({ description: 'esdk generator' })
    second = emu.createKey({ description: 'esdk second' })
    // The keyring asks for a client per region (taken from each key's ARN).
    // The cast: the SDK v3 client is the keyring's documented client, but its
    // declared types disagree under exactOptionalPropertyTypes.
    clientProvider = ((region: string) =>
      new KMS({
        region,
        endpoint: emu.endpoint,
        credentials: { ...emu.credentials },
        maxAttempts: 1,
      })) as unknown as KmsNodeClientSupplier
  })
  afterAll(async () => {
    await emu?.close()
  })

  it('encrypts under two keys (GenerateDataKey + Encrypt) and each key alone decrypts (Decrypt)', async () => {
    const start = emu.requests.length
    const keyring = new KmsKeyringNode({
      clientProvider,
      generatorKeyId: generator.arn,
      keyIds: [second.arn],
    })
    const plaintext = randomBytes(3000)
    const { result, messageHeader } = await encrypt(keyring, plaintext, {
      encryptionContext: CONTEXT,
    })
    expect(messageHeader.encryptedDataKeys.map((k) => k.providerInfo)).toEqual([
      generator.arn,
      second.arn,
    ])
    expect(emu.requests.slice(start).map((r) => r.action)).toEqual(['GenerateDataKey', 'Encrypt'])

    for (const arn of [generator.arn, second.arn]) {
      const only = new KmsKeyringNode({ clientProvider, keyIds: [arn] })
      const back = await decrypt(only, result)
      expect(Buffer.from(back.plaintext)).toEqual(plaintext)
      expect(back.messageHeader.encryptionContext).toMatchObject(CONTEXT)
    }
    // Each Decrypt named its key, as the keyring sends it.
    const decrypts = emu.requests.slice(start).filter((r) => r.action === 'Decrypt')
    expect(decrypts.map((r) => r.keyId)).toEqual([generator.arn, second.arn])
  })

  it('wraps data keys our provider unwraps, under the context the SDK bound', async () => {
    const keyring = new KmsKeyringNode({ clientProvider, generatorKeyId: generator.arn })
    const { messageHeader } = await encrypt(keyring, 'payload', { encryptionContext: CONTEXT })
    const [edk] = messageHeader.encryptedDataKeys
    const kms = new AwsKmsProvider({
      region: emu.region,
      endpoint: emu.endpoint,
      credentials: emu.credentials,
    })
    try {
      // The SDK adds its own context entries (the suite's public key); all of them are bound.
      const context = { ...messageHeader.encryptionContext }
      const sealed = new EncryptedData({
        ciphertext: edk!.encryptedDataKey,
        keyReference: kms.reference(edk!.providerInfo),
        algorithm: 'SYMMETRIC_DEFAULT',
        encryptedAt: new Date(0),
        context,
      })
      expect(await kms.decrypt(sealed)).toHaveLength(32)
      await expect(kms.decrypt(sealed, CONTEXT)).rejects.toMatchObject({
        code: 'ERR_KMS_DECRYPTION_FAILED',
      })
    } finally {
      await kms.close()
    }
  })

  it('refuses a message whose data keys were made under a key the keyring does not list', async () => {
    const keyring = new KmsKeyringNode({ clientProvider, generatorKeyId: generator.arn })
    const { result } = await encrypt(keyring, 'payload', { encryptionContext: CONTEXT })
    const other = emu.createKey()
    const start = emu.requests.length
    await expect(
      decrypt(new KmsKeyringNode({ clientProvider, keyIds: [other.arn] }), result),
    ).rejects.toThrow()
    // The keyring filtered by ARN itself: nothing reached KMS.
    expect(emu.requests.slice(start)).toEqual([])
  })

  it('a tampered message never decrypts, whatever KMS answers', async () => {
    const keyring = new KmsKeyringNode({ clientProvider, generatorKeyId: generator.arn })
    const { result } = await encrypt(keyring, 'payload', { encryptionContext: CONTEXT })
    const tampered = Buffer.from(result)
    tampered[tampered.length - 40] = tampered[tampered.length - 40]! ^ 0x01
    await expect(decrypt(keyring, tampered)).rejects.toThrow()
  })
})
