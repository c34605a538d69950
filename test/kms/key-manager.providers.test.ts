/**
 * The KeyManager on each of the four providers (three through their real
 * client libraries and emulators): one KMS call to start, none per request,
 * survives a KMS outage, one KMS call per old key however many ask.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KeyManager, MemoryKeyringStore } from '../../src/kms/index.js'
import {
  type EmulatedProvider,
  emulatedProvider,
  PROVIDER_NAMES,
} from '../helpers/kms-emulators.js'

const quiet = { warn: () => {}, error: () => {} }

/** Counts calls into the provider's public methods: KMS calls, whatever the back end. */
function countCalls(p: EmulatedProvider) {
  const counts = { encrypt: 0, decrypt: 0, generateDataKey: 0 }
  for (const method of ['encrypt', 'decrypt', 'generateDataKey'] as const) {
    const original = p.provider[method].bind(p.provider) as (...a: unknown[]) => Promise<unknown>
    ;(p.provider as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      counts[method]++
      return original(...args)
    }
  }
  return {
    total: () => counts.encrypt + counts.decrypt + counts.generateDataKey,
    counts,
    reset: () => {
      counts.encrypt = 0
      counts.decrypt = 0
      counts.generateDataKey = 0
    },
  }
}

for (const name of PROVIDER_NAMES) {
  describe(`KeyManager on ${name}`, () => {
    let p: EmulatedProvider
    let calls: ReturnType<typeof countCalls>
    const keyring = new MemoryKeyringStore()
    const make = () =>
      new KeyManager({
        providers: { [name]: p.provider },
        defaultProvider: name,
        defaultKeyId: p.keyId,
        contextPrefix: 'key-manager-test',
        keyring,
        logger: quiet,
      })

    beforeAll(async () => {
      p = await emulatedProvider(name)
      calls = countCalls(p)
    })
    afterAll(async () => p.close())

    it('initialize() makes one KMS call; 10,000 local operations (5,000 encryptions, 5,000 decryptions) make none', async () => {
      const km = make()
      calls.reset()
      p.emulator?.calls.reset()
      await km.initialize()
      expect(calls.total()).toBe(1) // generateDataKey for the first DEK
      calls.reset()
      p.emulator?.calls.reset()
      for (let i = 0; i < 5000; i++) {
        const sealed = await km.localEncrypt(`value ${i}`, `row ${i}`)
        expect(await km.localDecrypt(sealed, `row ${i}`)).toBe(`value ${i}`)
      }
      expect(calls.total()).toBe(0)
      expect(p.emulator?.calls.count() ?? 0).toBe(0)
    })

    // The local provider has no network to lose: registered for the emulated ones only.
    if (name !== 'local')
      it('keeps encrypting and decrypting with the active DEK through a full KMS outage', async () => {
        const km = make()
        await km.initialize()
        const before = await km.localEncrypt('before the outage')
        p.emulator!.faults.setOutage(true)
        try {
          const during = await km.localEncrypt('during the outage')
          expect(await km.localDecrypt(during)).toBe('during the outage')
          expect(await km.localDecrypt(before)).toBe('before the outage')
        } finally {
          p.emulator!.faults.reset()
        }
      })

    it('a restarted manager decrypts what earlier ones wrote, across rotations', async () => {
      const first = make()
      await first.initialize()
      const sealed: string[] = []
      for (let i = 0; i < 3; i++) {
        sealed.push(await first.localEncrypt(`generation ${i}`))
        await first.rotateDataKey()
      }
      first.dispose()
      const second = make()
      await second.initialize()
      for (const [i, s] of sealed.entries())
        expect(await second.localDecrypt(s)).toBe(`generation ${i}`)
    })

    it('100 concurrent decryptions under an old DEK make one KMS call (single flight)', async () => {
      const writer = make()
      await writer.initialize()
      const old = await writer.localEncrypt('old data')
      await writer.rotateDataKey()
      const reader = make()
      await reader.initialize() // unwraps only the active DEK
      calls.reset()
      const results = await Promise.all(Array.from({ length: 100 }, () => reader.localDecrypt(old)))
      expect(new Set(results)).toEqual(new Set(['old data']))
      expect(calls.counts.decrypt).toBe(1)
    })
  })
}
