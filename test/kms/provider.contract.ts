/**
 * The contract every KMS provider passes: local, Vault, AWS and GCP run this
 * same suite against their emulators (and, in live mode, against the real
 * service). A fifth provider is one new file that passes it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type BaseKmsProvider,
  DecryptionError,
  EncryptedData,
  KeyNotFoundError,
  KmsError,
  ProviderConnectionError,
} from '../../src/kms/index.js'
import type { KmsEmulator } from '../../src/kms/testing/index.js'

export interface KmsHarness {
  /** Built with a short budget (e.g. timeoutMs 1500, retryBaseDelayMs 5) so fault tests stay fast. */
  readonly provider: BaseKmsProvider
  /** A key the provider can use now (created beforehand, or auto-created on encrypt). */
  readonly keyId: string
  /** A key id that does not exist. */
  readonly missingKeyId: string
  /** The emulator behind the provider; absent in live mode (the fault tests then skip). */
  readonly emulator?: KmsEmulator
  /** Secrets the provider was configured with (tokens, secret keys): no error may contain them. */
  readonly secrets?: readonly string[]
  close?(): Promise<void>
}

const PLAINTEXT = 'card 4111-1111-1111-1111 belongs to Ada'
const CONTEXT = { tenant: 'acme', table: 'customers' }

export interface ContractOptions {
  /** Run the fault tests (needs `harness.emulator`): on for emulators, off for live services and the local provider. */
  readonly faults?: boolean
  /** Exercise rotation (live AWS limits on-demand rotations per key). @default true */
  readonly rotation?: boolean
}

export function describeKmsProviderContract(
  name: string,
  factory: () => Promise<KmsHarness>,
  options: ContractOptions = {},
): void {
  const { faults = false, rotation = true } = options
  describe(`KMS provider contract: ${name}`, () => {
    let h: KmsHarness
    const errors: unknown[] = []
    const capture = async (p: Promise<unknown>): Promise<unknown> => {
      try {
        await p
      } catch (err) {
        errors.push(err)
        return err
      }
      throw new Error('expected a rejection')
    }

    beforeAll(async () => {
      h = await factory()
    })
    afterAll(async () => {
      await h?.close?.()
    })

    it('round-trips bytes and strings without a context', async () => {
      const bytes = new Uint8Array([0, 1, 2, 250, 255])
      const a = await h.provider.encrypt(bytes, h.keyId)
      expect(Buffer.from(await h.provider.decrypt(a))).toEqual(Buffer.from(bytes))
      const b = await h.provider.encrypt(PLAINTEXT, h.keyId)
      expect(Buffer.from(await h.provider.decrypt(b)).toString('utf8')).toBe(PLAINTEXT)
      expect(Buffer.from(b.ciphertext).toString('utf8')).not.toContain(PLAINTEXT)
    })

    it('round-trips with a context, and records it on the encrypted data', async () => {
      const enc = await h.provider.encrypt(PLAINTEXT, h.keyId, CONTEXT)
      expect(enc.context).toEqual(CONTEXT)
      expect(enc.keyReference.provider).toBe(h.provider.name)
      expect(enc.keyReference.qualifiedId).toBe(`${h.provider.name}:${enc.keyReference.keyId}`)
      expect(Buffer.from(await h.provider.decrypt(enc)).toString('utf8')).toBe(PLAINTEXT)
      // Context key order does not matter.
      const reordered = { table: 'customers', tenant: 'acme' }
      expect(Buffer.from(await h.provider.decrypt(enc, reordered)).toString('utf8')).toBe(PLAINTEXT)
    })

    it('survives a JSON round trip of the encrypted data', async () => {
      const enc = await h.provider.encrypt(PLAINTEXT, h.keyId, CONTEXT)
      const back = EncryptedData.fromJSON(JSON.parse(JSON.stringify(enc)))
      expect(Buffer.from(await h.provider.decrypt(back)).toString('utf8')).toBe(PLAINTEXT)
    })

    it('refuses a wrong or missing context with DecryptionError', async () => {
      const enc = await h.provider.encrypt(PLAINTEXT, h.keyId, CONTEXT)
      expect(
        await capture(h.provider.decrypt(enc, { tenant: 'evil', table: 'customers' })),
      ).toBeInstanceOf(DecryptionError)
      expect(await capture(h.provider.decrypt(enc, {}))).toBeInstanceOf(DecryptionError)
      const bare = await h.provider.encrypt(PLAINTEXT, h.keyId)
      expect(await capture(h.provider.decrypt(bare, { tenant: 'acme' }))).toBeInstanceOf(
        DecryptionError,
      )
    })

    it('refuses tampered ciphertext with DecryptionError', async () => {
      const enc = await h.provider.encrypt(PLAINTEXT, h.keyId, CONTEXT)
      const bytes = enc.ciphertext
      for (const at of [bytes.length - 1, Math.floor(bytes.length / 2), bytes.length - 20]) {
        const tampered = Uint8Array.from(bytes)
        tampered[at] = tampered[at]! ^ 0x01
        const forged = new EncryptedData({ ...fields(enc), ciphertext: tampered })
        const err = await capture(h.provider.decrypt(forged))
        expect(err).toBeInstanceOf(DecryptionError)
        expect((err as DecryptionError).message).toBe('Decryption failed')
        expect((err as DecryptionError).cause).toBeUndefined()
      }
    })

    it('reports an unknown key as KeyNotFoundError', async () => {
      expect(await capture(h.provider.getKeyInfo(h.missingKeyId))).toBeInstanceOf(KeyNotFoundError)
      const enc = await h.provider.encrypt(PLAINTEXT, h.keyId)
      const elsewhere = new EncryptedData({
        ...fields(enc),
        keyReference: h.provider.reference(h.missingKeyId),
      })
      expect(await capture(h.provider.decrypt(elsewhere))).toBeInstanceOf(KeyNotFoundError)
      if (rotation)
        expect(await capture(h.provider.rotateKey(h.missingKeyId))).toBeInstanceOf(KeyNotFoundError)
    })

    it('generates a 32-byte data key whose wrapped form decrypts back to it', async () => {
      const pair = await h.provider.generateDataKey(h.keyId, CONTEXT)
      expect(pair.plaintextKey).toHaveLength(32)
      const plain = Buffer.from(pair.plaintextKey)
      const unwrapped = await h.provider.decrypt(
        EncryptedData.fromJSON(JSON.parse(JSON.stringify(pair.toEncryptedData()))),
      )
      expect(Buffer.from(unwrapped)).toEqual(plain)
      pair.dispose()
      expect(() => pair.plaintextKey).toThrow()
      expect(
        await capture(h.provider.decrypt(pair.toEncryptedData(), { tenant: 'other' })),
      ).toBeInstanceOf(DecryptionError)
    })

    it('describes the key and its rotation policy', async () => {
      await h.provider.encrypt('x', h.keyId)
      const info = await h.provider.getKeyInfo(h.keyId)
      expect(info.state).toBe('enabled')
      expect(info.reference.provider).toBe(h.provider.name)
      const policy = await h.provider.getRotationPolicy(h.keyId)
      expect(typeof policy.enabled).toBe('boolean')
      expect(policy.rotationPeriodDays === null || policy.rotationPeriodDays > 0).toBe(true)
    })

    // Registered only when asked for, so a live run never reports it as skipped.
    if (rotation)
      it('rotates, and still decrypts what was encrypted before the rotation', async () => {
        const before = await h.provider.encrypt(PLAINTEXT, h.keyId, CONTEXT)
        const pair = await h.provider.generateDataKey(h.keyId)
        const info = await h.provider.rotateKey(h.keyId)
        if (info.currentVersion !== null) {
          const again = await h.provider.getKeyInfo(h.keyId)
          expect(again.currentVersion).toBe(info.currentVersion)
        }
        const after = await h.provider.encrypt(PLAINTEXT, h.keyId, CONTEXT)
        expect(Buffer.from(after.ciphertext)).not.toEqual(Buffer.from(before.ciphertext))
        expect(Buffer.from(await h.provider.decrypt(before)).toString('utf8')).toBe(PLAINTEXT)
        expect(Buffer.from(await h.provider.decrypt(after)).toString('utf8')).toBe(PLAINTEXT)
        expect(Buffer.from(await h.provider.decrypt(pair.toEncryptedData()))).toEqual(
          Buffer.from(pair.plaintextKey),
        )
      })

    if (faults)
      describe('faults', () => {
        const emulator = (): KmsEmulator => {
          if (h.emulator === undefined) throw new Error('fault tests need harness.emulator')
          return h.emulator
        }

        it('retries transient failures and then succeeds', async () => {
          const e = emulator()
          e.faults.reset()
          e.calls.reset()
          e.faults.failNext(2, 'unavailable')
          const enc = await h.provider.encrypt(PLAINTEXT, h.keyId)
          e.faults.failNext(1, 'throttle')
          expect(Buffer.from(await h.provider.decrypt(enc)).toString('utf8')).toBe(PLAINTEXT)
          // Two failed attempts and one success for encrypt, one throttled and one success for decrypt.
          expect(e.calls.count()).toBeGreaterThanOrEqual(5)
        })

        it('gives up on a persistent outage with ProviderConnectionError', async () => {
          const e = emulator()
          e.faults.reset().setOutage(true)
          try {
            const err = await capture(h.provider.encrypt(PLAINTEXT, h.keyId))
            expect(err).toBeInstanceOf(ProviderConnectionError)
            const err2 = await capture(h.provider.getKeyInfo(h.keyId))
            expect(err2).toBeInstanceOf(ProviderConnectionError)
          } finally {
            e.faults.reset()
          }
        })

        it('times out a call that hangs, with ProviderConnectionError("timeout")', async () => {
          const e = emulator()
          e.faults.reset().setLatency(60_000)
          try {
            const err = await capture(h.provider.encrypt(PLAINTEXT, h.keyId))
            expect(err).toBeInstanceOf(ProviderConnectionError)
            expect((err as ProviderConnectionError).reason).toBe('timeout')
          } finally {
            e.faults.reset()
          }
        })
      })

    it('never puts a plaintext, key or credential in an error message or cause', async () => {
      expect(errors.length).toBeGreaterThanOrEqual(faults ? 8 : 5)
      const pair = await h.provider.generateDataKey(h.keyId)
      const forbidden = [
        PLAINTEXT,
        'acme',
        Buffer.from(pair.plaintextKey).toString('hex'),
        Buffer.from(pair.plaintextKey).toString('base64'),
        ...(h.secrets ?? []),
      ]
      for (const err of errors) {
        expect(err).toBeInstanceOf(KmsError)
        const text = `${(err as Error).message} ${JSON.stringify((err as Error).cause ?? null)} ${String((err as Error).stack)}`
        for (const secret of forbidden) expect(text).not.toContain(secret)
      }
    })
  })
}

function fields(enc: EncryptedData) {
  return {
    ciphertext: enc.ciphertext,
    keyReference: enc.keyReference,
    algorithm: enc.algorithm,
    encryptedAt: enc.encryptedAt,
    context: enc.context,
  }
}
