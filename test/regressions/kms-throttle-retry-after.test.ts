/**
 * Regression (issue 15, item 5): throttling hints were ignored. Vault's 429
 * carries `Retry-After` (whole seconds) and Cloud KMS's RESOURCE_EXHAUSTED a
 * `google.rpc.RetryInfo`; the backoff retried after a few milliseconds of
 * jitter regardless, and so spent the call's attempts inside the very
 * window the service asked it to stay away. Now the next attempt waits at
 * least the hint, and a hint that does not fit in what is left of the call's
 * deadline ends the call at once (`ProviderConnectionError('throttled')`)
 * instead of retrying early or sleeping past the deadline.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type BaseKmsProvider, GcpKmsProvider, VaultKmsProvider } from '../../src/kms/index.js'
import type { KmsEmulator } from '../../src/kms/testing/faults.js'
import { startGcpKmsEmulator } from '../../src/kms/testing/gcp-emulator.js'
import { recordingSleep } from '../../src/kms/testing/index.js'
import { startVaultEmulator } from '../../src/kms/testing/vault-emulator.js'
import { rejection } from '../helpers/rejection.js'

/** Short backoff, a whole-call budget, and the recording sleep. */
const backoff = (sleep: (ms: number) => Promise<void>, timeoutMs: number) => ({
  timeoutMs,
  retryBaseDelayMs: 5,
  retryMaxDelayMs: 20,
  sleep,
})

interface Case {
  readonly name: string
  start(
    sleep: (ms: number) => Promise<void>,
    timeoutMs: number,
  ): Promise<{
    provider: BaseKmsProvider
    emulator: KmsEmulator
    keyId: string
    operation: string
    close(): Promise<void>
  }>
}

const cases: Case[] = [
  {
    name: 'Vault (429 Retry-After)',
    async start(sleep, timeoutMs) {
      const vault = await startVaultEmulator()
      vault.createKey('orders')
      const provider = new VaultKmsProvider({
        address: vault.address,
        token: vault.token,
        ...backoff(sleep, timeoutMs),
      })
      return {
        provider,
        emulator: vault,
        keyId: 'orders',
        operation: 'readKey',
        close: () => vault.close(),
      }
    },
  },
  {
    name: 'Cloud KMS (RESOURCE_EXHAUSTED with RetryInfo)',
    async start(sleep, timeoutMs) {
      const e = await startGcpKmsEmulator({ keys: ['app'] })
      const provider = new GcpKmsProvider({
        ...e.providerOptions(),
        ...backoff(sleep, timeoutMs),
      })
      return {
        provider,
        emulator: e,
        keyId: 'app',
        operation: 'GetCryptoKey',
        async close() {
          await provider.close()
          await e.close()
        },
      }
    },
  },
]

for (const c of cases) {
  describe(`throttling hints: ${c.name}`, () => {
    const recorder = recordingSleep()
    const delays = recorder.sleeps
    let h: Awaited<ReturnType<Case['start']>>
    beforeAll(async () => {
      h = await c.start(recorder.sleep, 10_000)
    })
    afterAll(async () => {
      await h.close()
    })

    it('waits at least the hint before the next attempt, then succeeds', async () => {
      delays.length = 0
      h.emulator.calls.reset()
      h.emulator.faults.failNext(1, 'throttle', { retryAfterMs: 2000, operation: h.operation })
      await h.provider.getKeyInfo(h.keyId)
      expect(delays).toHaveLength(1)
      expect(delays[0]).toBeGreaterThanOrEqual(2000)
      expect(h.emulator.calls.count(h.operation)).toBe(2)
    })

    it('a hint beyond the deadline ends the call at once, throttled, after one request', async () => {
      delays.length = 0
      h.emulator.calls.reset()
      h.emulator.faults.failNext(1, 'throttle', { retryAfterMs: 60_000, operation: h.operation })
      const err = await rejection(h.provider.getKeyInfo(h.keyId))
      expect(err).toMatchObject({ code: 'ERR_KMS_PROVIDER_UNAVAILABLE', reason: 'throttled' })
      expect(delays).toEqual([])
      expect(h.emulator.calls.count(h.operation)).toBe(1)
    })

    it('without a hint, the ordinary jittered backoff', async () => {
      delays.length = 0
      h.emulator.faults.failNext(1, 'throttle', { operation: h.operation })
      await h.provider.getKeyInfo(h.keyId)
      expect(delays).toHaveLength(1)
      expect(delays[0]).toBeLessThan(2000)
    })
  })
}
