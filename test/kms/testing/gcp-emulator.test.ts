/**
 * The Cloud KMS emulator's wire behaviour for what the issue's real-service
 * review found missing: HSM keys' 8 KiB limit on plaintext plus additional
 * authenticated data (service.proto, EncryptRequest), ListCryptoKeyVersions,
 * RetryInfo on quota errors (decoded by google-gax itself), and a change
 * made before the connection dropped. Driven by the real client.
 */
import { createRequire } from 'node:module'
import { KeyManagementServiceClient } from '@google-cloud/kms'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { crc32c } from '../../../src/internal/crc32c.js'
import type { GcpKmsClient } from '../../../src/kms/providers/gcp/client.js'
import { GcpKmsProvider } from '../../../src/kms/providers/gcp.js'
import { type GcpKmsEmulator, startGcpKmsEmulator } from '../../../src/kms/testing/gcp-emulator.js'

const sdkEntry = createRequire(import.meta.url).resolve('@google-cloud/kms')
const gax = createRequire(sdkEntry)('google-gax') as {
  grpc: { credentials: { createInsecure(): never } }
}
const once = () => ({ retry: null, timeout: 5000 })

async function rejection(p: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await p
  } catch (err) {
    return err as Record<string, unknown>
  }
  throw new Error('expected a rejection')
}

describe('Cloud KMS emulator: HSM limits, version listing, quota hints, dropped answers', () => {
  let e: GcpKmsEmulator
  let client: KeyManagementServiceClient
  beforeAll(async () => {
    e = await startGcpKmsEmulator({ keys: ['soft'] })
    e.createCryptoKey('hsm', { protectionLevel: 'HSM' })
    client = new KeyManagementServiceClient({
      apiEndpoint: e.host,
      port: e.port,
      sslCreds: gax.grpc.credentials.createInsecure(),
      universeDomain: 'googleapis.com',
    })
  })
  afterAll(async () => {
    await client.close()
    await e.close()
  })

  const encrypt = (key: string, plaintext: Buffer, aad?: Buffer) =>
    client.encrypt(
      {
        name: e.cryptoKeyName(key),
        plaintext,
        plaintextCrc32c: { value: crc32c(plaintext) },
        ...(aad === undefined
          ? {}
          : {
              additionalAuthenticatedData: aad,
              additionalAuthenticatedDataCrc32c: { value: crc32c(aad) },
            }),
      },
      once(),
    )

  it('HSM keys take at most 8 KiB of plaintext and additional authenticated data together', async () => {
    const [ok] = await encrypt('hsm', Buffer.alloc(8000, 1), Buffer.alloc(192, 2))
    expect(ok.protectionLevel).toBe('HSM')
    const err = await rejection(encrypt('hsm', Buffer.alloc(8000, 1), Buffer.alloc(193, 2)))
    expect(err.code).toBe(3) // INVALID_ARGUMENT
    expect(String(err.details)).toMatch(/8192 bytes for HSM keys/)
    // A software key takes 64 KiB of each.
    const [soft] = await encrypt('soft', Buffer.alloc(60_000, 1), Buffer.alloc(60_000, 2))
    expect(soft.protectionLevel).toBe('SOFTWARE')
    const [key] = await client.getCryptoKey({ name: e.cryptoKeyName('hsm') }, once())
    expect(key.versionTemplate?.protectionLevel).toBe('HSM')
    expect(key.primary?.protectionLevel).toBe('HSM')
  })

  it('lists versions in pages, in id order', async () => {
    const name = e.createCryptoKey('listed')
    for (let i = 0; i < 4; i++)
      await client.createCryptoKeyVersion({ parent: name, cryptoKeyVersion: {} }, once())
    const [versions] = await client.listCryptoKeyVersions(
      { parent: name, pageSize: 2 },
      { ...once(), autoPaginate: true },
    )
    expect(versions.map((v) => v.name)).toEqual(
      [1, 2, 3, 4, 5].map((n) => `${name}/cryptoKeyVersions/${n}`),
    )
  })

  it('a quota error carries RetryInfo (and ErrorInfo), which google-gax decodes', async () => {
    e.faults.failNext(1, 'throttle', { retryAfterMs: 2500 })
    const err = await rejection(client.getCryptoKey({ name: e.cryptoKeyName('soft') }, once()))
    expect(err.code).toBe(8) // RESOURCE_EXHAUSTED
    expect(err.reason).toBe('RATE_LIMIT_EXCEEDED')
    const details = err.statusDetails as Array<{
      retryDelay?: { seconds?: unknown; nanos?: number }
    }>
    const retry = details.find((d) => d.retryDelay !== undefined)?.retryDelay
    expect(Number(retry?.seconds)).toBe(2)
    expect(retry?.nanos).toBe(500_000_000)
  })

  it('reset-after-commit: the version is created, the client sees UNAVAILABLE', async () => {
    const name = e.createCryptoKey('dropped')
    e.faults.failNext(1, 'reset-after-commit')
    const err = await rejection(
      client.createCryptoKeyVersion({ parent: name, cryptoKeyVersion: {} }, once()),
    )
    expect(err.code).toBe(14) // UNAVAILABLE
    const [versions] = await client.listCryptoKeyVersions({ parent: name }, once())
    expect(versions).toHaveLength(2)
  })
})

describe('GcpKmsProvider: HSM limits and rotation checks', () => {
  let e: GcpKmsEmulator
  beforeAll(async () => {
    e = await startGcpKmsEmulator({ keys: ['soft'] })
    e.createCryptoKey('hsm', { protectionLevel: 'HSM' })
  })
  afterAll(async () => {
    await e.close()
  })
  const FAST = { timeoutMs: 1500, retryBaseDelayMs: 5, retryMaxDelayMs: 20 } as const

  it('refuses more than 8 KiB of plaintext and context on an HSM key before sending the plaintext', async () => {
    const kms = new GcpKmsProvider({ ...e.providerOptions(), ...FAST })
    try {
      const context = { tenant: 'acme' } // {"tenant":"acme"}: 17 bytes of AAD
      const fits = Buffer.alloc(8192 - 17, 1)
      const sealed = await kms.encrypt(fits, 'hsm', context)
      expect(Buffer.from(await kms.decrypt(sealed))).toEqual(fits)
      e.calls.reset()
      const err = await rejection(kms.encrypt(Buffer.alloc(8192 - 16, 1), 'hsm', context))
      expect(err).toMatchObject({
        code: 'ERR_KMS_ERROR',
        retryable: false,
        cause: { service: 'gcp', code: 'HSM_SIZE_LIMIT' },
      })
      expect(String(err.message)).toMatch(/8192 bytes.*HSM/)
      // Known from the first Encrypt's answer: no read, and no Encrypt sent.
      expect(e.calls.snapshot()).toEqual({})
      // A software key takes 64 KiB.
      await kms.encrypt(Buffer.alloc(60_000, 1), 'soft', context)
    } finally {
      await kms.close()
    }
  })

  it('a fresh provider reads the protection level once before a large request', async () => {
    const kms = new GcpKmsProvider({ ...e.providerOptions(), ...FAST })
    try {
      e.calls.reset()
      for (let i = 0; i < 2; i++)
        expect(await rejection(kms.encrypt(Buffer.alloc(9000), 'hsm'))).toMatchObject({
          cause: { code: 'HSM_SIZE_LIMIT' },
        })
      expect(e.calls.snapshot()).toEqual({ GetCryptoKey: 1 })
    } finally {
      await kms.close()
    }
  })

  it('a client without listCryptoKeyVersions: an unanswered CreateCryptoKeyVersion is reported, not repeated', async () => {
    const real = new KeyManagementServiceClient({
      apiEndpoint: e.host,
      port: e.port,
      sslCreds: gax.grpc.credentials.createInsecure(),
      universeDomain: 'googleapis.com',
    })
    const client = {
      encrypt: real.encrypt.bind(real),
      decrypt: real.decrypt.bind(real),
      getCryptoKey: real.getCryptoKey.bind(real),
      getCryptoKeyVersion: real.getCryptoKeyVersion.bind(real),
      createCryptoKeyVersion: real.createCryptoKeyVersion.bind(real),
      updateCryptoKeyPrimaryVersion: real.updateCryptoKeyPrimaryVersion.bind(real),
    } as unknown as GcpKmsClient
    const kms = new GcpKmsProvider({ ...GCP_IDS(e), ...FAST, client })
    try {
      const name = e.createCryptoKey('unlisted')
      e.calls.reset()
      e.faults.failNext(1, 'reset-after-commit', { operation: 'CreateCryptoKeyVersion' })
      const err = await rejection(kms.rotateKey('unlisted'))
      expect(err).toMatchObject({
        code: 'ERR_KMS_ROTATION_FAILED',
        cause: { code: 'rotation_outcome_unknown' },
      })
      expect(e.calls.count('CreateCryptoKeyVersion')).toBe(1)
      expect(e.primaryVersion(name)).toBe(1)
    } finally {
      await real.close()
    }
  })
})

const GCP_IDS = (e: GcpKmsEmulator) => ({
  projectId: e.projectId,
  locationId: e.locationId,
  keyRingId: e.keyRingId,
})
