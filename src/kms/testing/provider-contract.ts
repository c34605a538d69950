/**
 * The contract every KMS provider passes: local, Vault, AWS and GCP run this
 * same suite against their emulators (and, in live mode, against the real
 * service). A fifth provider is one new file that passes it.
 *
 * The fault tests inject what the real services do: answers lost after the
 * service acted, a skewed service clock, wait hints, a standby's redirect,
 * Vault 1.4-1.6's 500 on a failed decrypt. Each runs on every provider it
 * means something for; {@link FAULT_APPLICABILITY} says why it does not for
 * the others. Runs under vitest, jest or node:test: it takes the framework's
 * `{ describe, it, expect }` and uses five matchers.
 */
import type { ContractRunner } from '../../internal/testing/runner.js'
import type { BaseKmsProvider } from '../base-provider.js'
import { DecryptionError, KeyNotFoundError, KmsError, ProviderConnectionError } from '../errors.js'
import { EncryptedData } from '../models.js'
import type { FaultKind, KmsEmulator } from './faults.js'

/** The four back ends, each held to the same answers. */
export type ProviderKind = 'vault' | 'aws' | 'gcp' | 'local' | 'other'

/** Faults the real services show that the contract injects. */
export type ContractFault =
  | 'reset-after-commit'
  | 'clock-skew'
  | 'retry-after'
  | 'redirect'
  | 'decrypt-server-error'

const OTHER =
  'a provider of yours: run the fault tests through your own emulator (faults: true needs harness.emulator)'

const LOCAL =
  'the local provider has no service and no network: nothing between it and its keys can fail, skew, throttle or redirect'

/**
 * Where each fault is run (`true`), and why it has no meaning elsewhere. The
 * type makes every provider state an answer for every fault.
 */
export const FAULT_APPLICABILITY: Record<ContractFault, Record<ProviderKind, true | string>> = {
  'reset-after-commit': { vault: true, aws: true, gcp: true, local: LOCAL, other: OTHER },
  'clock-skew': {
    vault:
      'Vault authenticates with a bearer token: no request carries a signed time for the server to judge',
    aws: true,
    gcp: "Cloud KMS requests carry an OAuth access token, checked against Google's own clock; nothing the client signs carries its time",
    local: LOCAL,
    other: OTHER,
  },
  'retry-after': {
    vault: true,
    aws: 'AWS KMS names no wait: ThrottlingException has no Retry-After, so the backoff is ours (throttleBaseDelayMs)',
    gcp: true,
    local: LOCAL,
    other: OTHER,
  },
  redirect: {
    vault: true,
    aws: 'AWS KMS endpoints answer, they never redirect (and the SDK would not follow)',
    gcp: 'gRPC has no redirects',
    local: LOCAL,
    other: OTHER,
  },
  'decrypt-server-error': {
    vault: true,
    aws: 'AWS KMS answers a ciphertext that does not authenticate with InvalidCiphertextException (400), in every version',
    gcp: 'Cloud KMS answers a ciphertext that does not authenticate with INVALID_ARGUMENT, in every version',
    local: LOCAL,
    other: OTHER,
  },
}

/** The names the emulator's `calls` counts for the operations the fault tests target. */
export interface OperationNames {
  readonly encrypt: string
  readonly decrypt: string
  /** The request that changes the key when it rotates. */
  readonly rotate: string
  /** The request `getKeyInfo` makes. */
  readonly describe: string
}

export interface KmsProviderHarness {
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
  /** With `faults`: the operation names of the emulator. */
  readonly operations?: OperationNames
  /** With `faults`: the delays the provider's injected `sleep` was asked for (it should wait ~1 ms of each). */
  readonly sleeps?: number[]
  close?(): Promise<void>
}

const PLAINTEXT = 'card 4111-1111-1111-1111 belongs to Ada'
const CONTEXT = { tenant: 'acme', table: 'customers' }

export interface ContractOptions {
  /** Which back end: decides which faults apply (see {@link FAULT_APPLICABILITY}). */
  readonly kind: ProviderKind
  /** Run the fault tests (needs `harness.emulator`): on for emulators, off for live services and the local provider. */
  readonly faults?: boolean
  /** Exercise rotation (live AWS limits on-demand rotations per key). @default true */
  readonly rotation?: boolean
}

export function describeKmsProviderContract(
  name: string,
  factory: () => Promise<KmsProviderHarness> | KmsProviderHarness,
  options: ContractOptions,
  runner: ContractRunner,
): void {
  const { faults = false, rotation = true } = options
  const { describe, it, expect } = runner
  describe(`KMS provider contract: ${name}`, () => {
    // One harness for the suite (emulators are slow to start), made by the
    // first test; the errors every test collects are checked by the last.
    let made: Promise<KmsProviderHarness> | undefined
    let h: KmsProviderHarness
    const open = async () => {
      made ??= Promise.resolve(factory())
      h = await made
    }
    const test = (title: string, body: () => Promise<void>) =>
      it(title, async () => {
        await open()
        await body()
      })
    const close = async () => {
      if (made !== undefined) await (await made).close?.()
      made = undefined
    }
    if (runner.afterAll !== undefined) runner.afterAll(close)
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

    test('round-trips bytes and strings without a context', async () => {
      const bytes = new Uint8Array([0, 1, 2, 250, 255])
      const a = await h.provider.encrypt(bytes, h.keyId)
      expect(Buffer.from(await h.provider.decrypt(a))).toEqual(Buffer.from(bytes))
      const b = await h.provider.encrypt(PLAINTEXT, h.keyId)
      expect(Buffer.from(await h.provider.decrypt(b)).toString('utf8')).toBe(PLAINTEXT)
      expect(Buffer.from(b.ciphertext).toString('utf8').includes(PLAINTEXT)).toBe(false)
    })

    test('round-trips with a context, and records it on the encrypted data', async () => {
      const enc = await h.provider.encrypt(PLAINTEXT, h.keyId, CONTEXT)
      expect(enc.context).toEqual(CONTEXT)
      expect(enc.keyReference.provider).toBe(h.provider.name)
      expect(enc.keyReference.qualifiedId).toBe(`${h.provider.name}:${enc.keyReference.keyId}`)
      expect(Buffer.from(await h.provider.decrypt(enc)).toString('utf8')).toBe(PLAINTEXT)
      // Context key order does not matter.
      const reordered = { table: 'customers', tenant: 'acme' }
      expect(Buffer.from(await h.provider.decrypt(enc, reordered)).toString('utf8')).toBe(PLAINTEXT)
    })

    test('survives a JSON round trip of the encrypted data', async () => {
      const enc = await h.provider.encrypt(PLAINTEXT, h.keyId, CONTEXT)
      const back = EncryptedData.fromJSON(JSON.parse(JSON.stringify(enc)))
      expect(Buffer.from(await h.provider.decrypt(back)).toString('utf8')).toBe(PLAINTEXT)
    })

    test('refuses a wrong or missing context with DecryptionError', async () => {
      const enc = await h.provider.encrypt(PLAINTEXT, h.keyId, CONTEXT)
      expect(
        (await capture(h.provider.decrypt(enc, { tenant: 'evil', table: 'customers' }))) instanceof
          DecryptionError,
      ).toBe(true)
      expect((await capture(h.provider.decrypt(enc, {}))) instanceof DecryptionError).toBe(true)
      const bare = await h.provider.encrypt(PLAINTEXT, h.keyId)
      expect(
        (await capture(h.provider.decrypt(bare, { tenant: 'acme' }))) instanceof DecryptionError,
      ).toBe(true)
    })

    test('refuses tampered ciphertext with DecryptionError', async () => {
      const enc = await h.provider.encrypt(PLAINTEXT, h.keyId, CONTEXT)
      const bytes = enc.ciphertext
      for (const at of [bytes.length - 1, Math.floor(bytes.length / 2), bytes.length - 20]) {
        const tampered = Uint8Array.from(bytes)
        tampered[at] = tampered[at]! ^ 0x01
        const forged = new EncryptedData({ ...fields(enc), ciphertext: tampered })
        const err = await capture(h.provider.decrypt(forged))
        expect(err instanceof DecryptionError).toBe(true)
        expect((err as DecryptionError).message).toBe('Decryption failed')
        expect((err as DecryptionError).cause).toBe(undefined)
      }
    })

    test('reports an unknown key as KeyNotFoundError', async () => {
      expect(
        (await capture(h.provider.getKeyInfo(h.missingKeyId))) instanceof KeyNotFoundError,
      ).toBe(true)
      const enc = await h.provider.encrypt(PLAINTEXT, h.keyId)
      const elsewhere = new EncryptedData({
        ...fields(enc),
        keyReference: h.provider.reference(h.missingKeyId),
      })
      expect((await capture(h.provider.decrypt(elsewhere))) instanceof KeyNotFoundError).toBe(true)
      if (rotation)
        expect(
          (await capture(h.provider.rotateKey(h.missingKeyId))) instanceof KeyNotFoundError,
        ).toBe(true)
    })

    test('generates a 32-byte data key whose wrapped form decrypts back to it', async () => {
      const pair = await h.provider.generateDataKey(h.keyId, CONTEXT)
      expect(pair.plaintextKey.length).toBe(32)
      const plain = Buffer.from(pair.plaintextKey)
      const unwrapped = await h.provider.decrypt(
        EncryptedData.fromJSON(JSON.parse(JSON.stringify(pair.toEncryptedData()))),
      )
      expect(Buffer.from(unwrapped)).toEqual(plain)
      pair.dispose()
      let disposedError: unknown
      try {
        void pair.plaintextKey
      } catch (error) {
        disposedError = error
      }
      expect(disposedError instanceof TypeError).toBe(true)
      expect((disposedError as Error).message).toBe('data key was disposed')
      expect(
        (await capture(h.provider.decrypt(pair.toEncryptedData(), { tenant: 'other' }))) instanceof
          DecryptionError,
      ).toBe(true)
    })

    test('describes the key and its rotation policy', async () => {
      await h.provider.encrypt('x', h.keyId)
      const info = await h.provider.getKeyInfo(h.keyId)
      expect(info.state).toBe('enabled')
      expect(info.reference.provider).toBe(h.provider.name)
      const policy = await h.provider.getRotationPolicy(h.keyId)
      expect(typeof policy.enabled).toBe('boolean')
      // No period (rotation off or unknown) or a positive whole number of days.
      if (policy.rotationPeriodDays !== null) expect(policy.rotationPeriodDays).toBeGreaterThan(0)
    })

    // Registered only when asked for, so a live run never reports it as skipped.
    if (rotation)
      test('rotates, and still decrypts what was encrypted before the rotation', async () => {
        const before = await h.provider.encrypt(PLAINTEXT, h.keyId, CONTEXT)
        const pair = await h.provider.generateDataKey(h.keyId)
        const info = await h.provider.rotateKey(h.keyId)
        if (info.currentVersion !== null) {
          const again = await h.provider.getKeyInfo(h.keyId)
          expect(again.currentVersion).toBe(info.currentVersion)
        }
        const after = await h.provider.encrypt(PLAINTEXT, h.keyId, CONTEXT)
        expect(Buffer.from(after.ciphertext).equals(Buffer.from(before.ciphertext))).toBe(false)
        expect(Buffer.from(await h.provider.decrypt(before)).toString('utf8')).toBe(PLAINTEXT)
        expect(Buffer.from(await h.provider.decrypt(after)).toString('utf8')).toBe(PLAINTEXT)
        expect(Buffer.from(await h.provider.decrypt(pair.toEncryptedData()))).toEqual(
          Buffer.from(pair.plaintextKey),
        )
      })

    if (rotation)
      test('makes exactly one new version per rotateKey call (where versions are numbered)', async () => {
        const before = await h.provider.getKeyInfo(h.keyId)
        const info = await h.provider.rotateKey(h.keyId)
        if (before.currentVersion === null) expect(info.currentVersion).toBe(null)
        else expect(info.currentVersion).toBe(before.currentVersion + 1)
      })

    if (faults)
      describe('faults', () => {
        const emulator = (): KmsEmulator => {
          if (h.emulator === undefined) throw new Error('fault tests need harness.emulator')
          return h.emulator
        }

        test('retries transient failures and then succeeds', async () => {
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

        test('gives up on a persistent outage with ProviderConnectionError', async () => {
          const e = emulator()
          e.faults.reset().setOutage(true)
          try {
            const err = await capture(h.provider.encrypt(PLAINTEXT, h.keyId))
            expect(err instanceof ProviderConnectionError).toBe(true)
            const err2 = await capture(h.provider.getKeyInfo(h.keyId))
            expect(err2 instanceof ProviderConnectionError).toBe(true)
          } finally {
            e.faults.reset()
          }
        })

        const ops = (): OperationNames => {
          if (h.operations === undefined) throw new Error('fault tests need harness.operations')
          return h.operations
        }
        const applies = (fault: ContractFault) => FAULT_APPLICABILITY[fault][options.kind] === true
        /** One encrypt whose first request meets `kind`: two requests, and the result decrypts. */
        const encryptThrough = async (kind: FaultKind) => {
          const e = emulator()
          e.faults.reset()
          e.calls.reset()
          e.faults.failNext(1, kind, { operation: ops().encrypt })
          const enc = await h.provider.encrypt(PLAINTEXT, h.keyId, CONTEXT)
          expect(e.calls.count(ops().encrypt)).toBe(2)
          expect(Buffer.from(await h.provider.decrypt(enc)).toString('utf8')).toBe(PLAINTEXT)
        }

        if (applies('reset-after-commit')) {
          test('reset after commit: an encrypt whose answer was lost is retried (safe: the lost ciphertext is never used)', () =>
            encryptThrough('reset-after-commit'))

          if (rotation)
            test('reset after commit: a rotation whose answer was lost is checked, not repeated (one rotation per call)', async () => {
              const e = emulator()
              e.faults.reset()
              const before = await h.provider.getKeyInfo(h.keyId)
              const sealed = await h.provider.encrypt(PLAINTEXT, h.keyId, CONTEXT)
              e.calls.reset()
              e.faults.failNext(1, 'reset-after-commit', { operation: ops().rotate })
              const info = await h.provider.rotateKey(h.keyId)
              expect(e.calls.count(ops().rotate)).toBe(1)
              if (before.currentVersion !== null)
                expect(info.currentVersion).toBe(before.currentVersion + 1)
              expect(Buffer.from(await h.provider.decrypt(sealed)).toString('utf8')).toBe(PLAINTEXT)
              // And a rotation that never reached the service is made once it is back.
              e.calls.reset()
              e.faults.failNext(1, 'unavailable', { operation: ops().rotate })
              await h.provider.rotateKey(h.keyId)
              expect(e.calls.count(ops().rotate)).toBe(2)
            })
        }

        if (applies('clock-skew'))
          test('clock skew: with the service clock 10 minutes off, calls succeed once the client corrects its clock', async () => {
            const e = emulator()
            e.faults.reset().setClockSkew(10 * 60_000)
            try {
              e.calls.reset()
              const enc = await h.provider.encrypt(PLAINTEXT, h.keyId)
              expect(e.calls.count(ops().encrypt)).toBe(2)
              expect(Buffer.from(await h.provider.decrypt(enc)).toString('utf8')).toBe(PLAINTEXT)
              expect(e.calls.count(ops().decrypt)).toBe(1)
            } finally {
              e.faults.reset()
            }
            // Back to no skew: corrected again.
            await h.provider.getKeyInfo(h.keyId)
          })

        if (applies('retry-after')) {
          test("throttling hint: the next attempt waits at least the service's hint", async () => {
            const e = emulator()
            const sleeps = h.sleeps
            if (sleeps === undefined) throw new Error('fault tests need harness.sleeps')
            e.faults.reset()
            e.calls.reset()
            sleeps.length = 0
            e.faults.failNext(1, 'throttle', { retryAfterMs: 1000, operation: ops().describe })
            await h.provider.getKeyInfo(h.keyId)
            expect(sleeps.length).toBe(1)
            expect(sleeps[0]).toBeGreaterThanOrEqual(1000)
            expect(e.calls.count(ops().describe)).toBe(2)
          })

          test('throttling hint: a hint beyond the deadline ends the call at once, throttled', async () => {
            const e = emulator()
            e.faults.reset()
            e.calls.reset()
            e.faults.failNext(1, 'throttle', { retryAfterMs: 120_000, operation: ops().describe })
            const err = await capture(h.provider.getKeyInfo(h.keyId))
            expect(err instanceof ProviderConnectionError).toBe(true)
            expect((err as ProviderConnectionError).reason).toBe('throttled')
            expect(e.calls.count(ops().describe)).toBe(1)
          })
        }

        if (applies('redirect'))
          test("redirect: a standby's 307 to the active node is followed once", () =>
            encryptThrough('redirect'))

        if (applies('decrypt-server-error'))
          test('a failed decrypt answered as a server error (Vault 1.4-1.6) is DecryptionError, not retried', async () => {
            const e = emulator()
            const enc = await h.provider.encrypt(PLAINTEXT, h.keyId, CONTEXT)
            e.faults.reset().setDecryptFailuresAsServerErrors(true)
            try {
              e.calls.reset()
              const err = await capture(
                h.provider.decrypt(enc, { tenant: 'evil', table: 'customers' }),
              )
              expect(err instanceof DecryptionError).toBe(true)
              expect(e.calls.count(ops().decrypt)).toBe(1)
            } finally {
              e.faults.reset()
            }
          })

        test('times out a call that hangs, with ProviderConnectionError("timeout")', async () => {
          const e = emulator()
          e.faults.reset().setLatency(60_000)
          try {
            const err = await capture(h.provider.encrypt(PLAINTEXT, h.keyId))
            expect(err instanceof ProviderConnectionError).toBe(true)
            expect((err as ProviderConnectionError).reason).toBe('timeout')
          } finally {
            e.faults.reset()
          }
        })
      })

    test('never puts a plaintext, key or credential in an error message or cause', async () => {
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
        expect(err instanceof KmsError).toBe(true)
        const text = `${(err as Error).message} ${JSON.stringify((err as Error).cause ?? null)} ${String((err as Error).stack)}`
        for (const secret of forbidden) expect(text.includes(secret)).toBe(false)
      }
    })
    if (runner.afterAll === undefined) it('closes the harness', close)
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

/**
 * A `sleep` for a harness's provider that records each delay asked for and
 * waits 1 ms of it: the hint tests check the asked-for delays, not the clock.
 */
export function recordingSleep(): { sleeps: number[]; sleep: (ms: number) => Promise<void> } {
  const sleeps: number[] = []
  return {
    sleeps,
    sleep: (ms) => {
      sleeps.push(ms)
      return new Promise((resolve) => setTimeout(resolve, 1))
    },
  }
}
