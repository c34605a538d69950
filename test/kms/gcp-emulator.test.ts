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
import { crc32c } from '../../src/internal/crc32c.js'
import { type GcpKmsEmulator, startGcpKmsEmulator } from '../../src/kms/testing/gcp-emulator.js'

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
