import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  DataKeyExhaustedError,
  DecryptionError,
  KeyManager,
  type KeyManagerOptions,
  type KeyringStore,
  LocalKmsProvider,
  MemoryKeyringStore,
  ProviderConnectionError,
} from '../../src/kms/index.js'
import { rejection } from '../helpers/rejection.js'

const quiet = { warn: () => {}, error: () => {} }

function manager(
  overrides: Partial<KeyManagerOptions> = {},
  local = new LocalKmsProvider({ keys: { app: randomBytes(32) } }),
) {
  return new KeyManager({
    providers: { local },
    defaultProvider: 'local',
    defaultKeyId: 'app',
    keyring: new MemoryKeyringStore(),
    logger: quiet,
    ...overrides,
  })
}

/** A keyring that counts its calls, to prove what the hot path does (and does not) write. */
function counting(store: KeyringStore) {
  const calls: Record<string, number> = {}
  const wrapped = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        calls[String(prop)] = (calls[String(prop)] ?? 0) + 1
        return value.apply(target, args)
      }
    },
  })
  return { store: wrapped, calls }
}

describe('KeyManager: local operations', () => {
  it('refuses local operations before initialize() with ERR_KEY_MANAGER_NOT_INITIALIZED', async () => {
    const km = manager()
    for (const op of [
      () => km.localEncrypt('x'),
      () => km.localDecrypt('AQ'),
      () => km.rotateDataKey(),
    ]) {
      expect(await rejection(op())).toMatchObject({ code: 'ERR_KEY_MANAGER_NOT_INITIALIZED' })
    }
    expect(km.hasCachedDataKey()).toBe(false)
    await km.initialize()
    expect(km.hasCachedDataKey()).toBe(true)
  })

  it('gives strings for strings (base64url text) and bytes for bytes', async () => {
    const km = manager()
    await km.initialize()
    const text = await km.localEncrypt('123-45-6789')
    expect(text).toMatch(/^[A-Za-z0-9_-]+$/)
    expect(await km.localDecrypt(text)).toBe('123-45-6789')
    const bytes = await km.localEncrypt(new Uint8Array([0, 255, 7]))
    expect(bytes).toBeInstanceOf(Uint8Array)
    expect([...(await km.localDecrypt(bytes))]).toEqual([0, 255, 7])
    expect(await km.localDecrypt(await km.localEncrypt(''))).toBe('')
  })

  it('writes the documented format: version 1, the DEK id, a 12-byte nonce, ciphertext, 16-byte tag', async () => {
    const km = manager()
    await km.initialize()
    const out = Buffer.from(await km.localEncrypt(new Uint8Array(10)))
    expect(out.length).toBe(1 + 16 + 12 + 10 + 16)
    expect(out[0]).toBe(1)
    const [active] = (await km.dataKeys()).filter((k) => k.status === 'active')
    expect(out.subarray(1, 17).toString('hex')).toBe(active!.id)
    const again = Buffer.from(await km.localEncrypt(new Uint8Array(10)))
    expect(again.subarray(17, 29)).not.toEqual(out.subarray(17, 29))
  })

  it('binds aad: the same aad decrypts, another or none does not', async () => {
    const km = manager()
    await km.initialize()
    const sealed = await km.localEncrypt('secret', 'customer:42')
    expect(await km.localDecrypt(sealed, 'customer:42')).toBe('secret')
    expect(await km.localDecrypt(sealed, Buffer.from('customer:42'))).toBe('secret')
    expect(await rejection(km.localDecrypt(sealed, 'customer:43'))).toBeInstanceOf(DecryptionError)
    expect(await rejection(km.localDecrypt(sealed))).toBeInstanceOf(DecryptionError)
  })

  it('answers everything that is not a valid ciphertext with DecryptionError and nothing else', async () => {
    const km = manager()
    await km.initialize()
    const good = Buffer.from(await km.localEncrypt(new Uint8Array([1, 2, 3])))
    const text = good.toString('base64url')
    const variants: Array<string | Uint8Array> = [
      '',
      'A',
      '!!!!',
      `${text}=`, // padding is not base64url here
      `${text.slice(0, -1)}${text.at(-1) === 'A' ? 'B' : 'A'}`, // last character changed
      `+${text.slice(1)}`, // a base64 character outside the base64url alphabet
      good.subarray(0, 28),
      good.subarray(0, good.length - 1),
      Buffer.concat([Buffer.from([2]), good.subarray(1)]), // unknown version
      Buffer.concat([good.subarray(0, 1), randomBytes(16), good.subarray(17)]), // unknown DEK
      new Uint8Array(0),
    ]
    for (const v of variants) {
      const err = await rejection(km.localDecrypt(v as never))
      expect(err).toBeInstanceOf(DecryptionError)
      expect((err as Error).message).toBe('Decryption failed')
    }
  })

  it('rejects non-canonical base64url (trailing bits set), so each ciphertext has one text form', async () => {
    const km = manager()
    await km.initialize()
    // 45 bytes → 60 characters: no partial group. 46 bytes → 62 characters, 4 unused bits in the last one.
    const text = await km.localEncrypt('x')
    expect(text.length % 4).not.toBe(0)
    const last = text.at(-1)!
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const twin = alphabet[alphabet.indexOf(last) + 1]!
    expect(Buffer.from(`${text.slice(0, -1)}${twin}`, 'base64url')).toEqual(
      Buffer.from(text, 'base64url'),
    )
    expect(await rejection(km.localDecrypt(`${text.slice(0, -1)}${twin}`))).toBeInstanceOf(
      DecryptionError,
    )
  })

  it('flipping any bit of the header (17 bytes, exhaustively) fails with DecryptionError', async () => {
    const km = manager()
    await km.initialize()
    const good = Buffer.from(await km.localEncrypt(new Uint8Array([9, 9, 9]), 'aad'))
    for (let byte = 0; byte < 29; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const bad = Buffer.from(good)
        bad[byte] = bad[byte]! ^ (1 << bit)
        expect(await rejection(km.localDecrypt(new Uint8Array(bad), 'aad'))).toBeInstanceOf(
          DecryptionError,
        )
      }
    }
  })

  it('property: round trip for arbitrary bytes, strings and aad', async () => {
    const km = manager()
    await km.initialize()
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 300 }),
        fc.string({ unit: 'grapheme', maxLength: 100 }),
        // An empty aad is refused (it binds nothing): see the aad-required regression.
        fc.option(fc.uint8Array({ minLength: 1, maxLength: 40 }), { nil: undefined }),
        async (bytes, text, aad) => {
          expect(
            Buffer.from(await km.localDecrypt(await km.localEncrypt(bytes, aad), aad)),
          ).toEqual(Buffer.from(bytes))
          expect(await km.localDecrypt(await km.localEncrypt(text, aad), aad)).toBe(text)
        },
      ),
      { numRuns: 200 },
    )
  })

  it('property: a flipped bit anywhere gives DecryptionError', async () => {
    const km = manager()
    await km.initialize()
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
        fc.nat(),
        fc.nat({ max: 7 }),
        async (bytes, at, bit) => {
          const sealed = Buffer.from(await km.localEncrypt(bytes))
          const i = at % sealed.length
          sealed[i] = sealed[i]! ^ (1 << bit)
          expect(await rejection(km.localDecrypt(new Uint8Array(sealed)))).toBeInstanceOf(
            DecryptionError,
          )
        },
      ),
      { numRuns: 150 },
    )
  })

  it('keeps decrypting old ciphertexts across rotations and restarts', async () => {
    const local = new LocalKmsProvider({ keys: { app: randomBytes(32) } })
    const keyring = new MemoryKeyringStore()
    const first = manager({ keyring }, local)
    await first.initialize()
    const sealed: Array<[string, string]> = []
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 3; i++) {
        const value = `round ${round} value ${i}`
        sealed.push([value, await first.localEncrypt(value, `row:${round}:${i}`)])
      }
      await first.rotateDataKey()
    }
    expect((await first.dataKeys()).filter((k) => k.status === 'active')).toHaveLength(1)
    expect(await first.dataKeys()).toHaveLength(5)
    const restarted = manager({ keyring }, local)
    await restarted.initialize()
    for (const [i, [value, text]] of sealed.entries()) {
      expect(await restarted.localDecrypt(text, `row:${Math.floor(i / 3)}:${i % 3}`)).toBe(value)
    }
    first.dispose()
    expect(await rejection(first.localDecrypt(sealed[0]![1]))).toMatchObject({
      code: 'ERR_KEY_MANAGER_NOT_INITIALIZED',
    })
  })

  it('reserves uses in blocks: one keyring write per block, never one per encryption', async () => {
    const { store, calls } = counting(new MemoryKeyringStore())
    const km = manager({ keyring: store, limits: { reserveBlock: 1000 } })
    await km.initialize()
    for (let i = 0; i < 10_000; i++) await km.localEncrypt('x')
    expect(calls.reserveUses).toBe(10)
    const [info] = await km.dataKeys()
    expect(info!.usesReserved).toBe(10_000)
  })

  it('rotates in the background before maxEncryptions, and the ciphertexts of every key still decrypt', async () => {
    const km = manager({ limits: { maxEncryptions: 20, hardMaxEncryptions: 40, reserveBlock: 5 } })
    await km.initialize()
    const sealed: string[] = []
    for (let i = 0; i < 100; i++) sealed.push(await km.localEncrypt(`v${i}`))
    const keys = await km.dataKeys()
    expect(keys.length).toBeGreaterThanOrEqual(4)
    expect(keys.every((k) => k.usesReserved <= 40)).toBe(true)
    for (const [i, s] of sealed.entries()) expect(await km.localDecrypt(s)).toBe(`v${i}`)
  })

  it('rotates when the DEK is older than maxAgeMs', async () => {
    let now = 1_800_000_000_000
    const km = manager({ clock: () => now, limits: { maxAgeMs: 1000 } })
    await km.initialize()
    const before = (await km.dataKeys())[0]!.id
    now += 1001
    await km.localEncrypt('trigger')
    await km.rotateDataKey().catch(() => {}) // wait for the background rotation to settle
    const active = (await km.dataKeys()).find((k) => k.status === 'active')!
    expect(active.id).not.toBe(before)
  })

  it('keeps serving while the KMS is down and rotation is due, up to the hard limit, then refuses', async () => {
    const local = new LocalKmsProvider({ keys: { app: randomBytes(32) }, maxAttempts: 1 })
    const warnings: string[] = []
    let now = 1_800_000_000_000
    const km = manager(
      {
        clock: () => now,
        logger: { warn: (_o: object, m?: string) => warnings.push(m ?? ''), error: () => {} },
        limits: {
          maxEncryptions: 4,
          hardMaxEncryptions: 10,
          reserveBlock: 2,
          rotationRetryMs: 1000,
        },
      },
      local,
    )
    await km.initialize()
    // The KMS stops answering: generateDataKey fails.
    const real = local.generateDataKey.bind(local)
    let down = true
    local.generateDataKey = async (...args) => {
      if (down) throw new ProviderConnectionError('unavailable', { provider: 'local' })
      return real(...args)
    }
    const sealed: string[] = []
    for (let i = 0; i < 10; i++) sealed.push(await km.localEncrypt(`v${i}`))
    await new Promise((r) => setImmediate(r))
    expect(warnings).toContain('data key rotation failed; still encrypting with the current key')
    const err = await rejection(km.localEncrypt('one too many'))
    expect(err).toBeInstanceOf(DataKeyExhaustedError)
    expect(err).toMatchObject({ code: 'ERR_KEY_MANAGER_KEY_EXHAUSTED' })
    // The KMS comes back: the next encryption rotates and succeeds.
    down = false
    now += 5000
    sealed.push(await km.localEncrypt('after recovery'))
    expect((await km.dataKeys()).length).toBe(2)
    for (const [i, s] of sealed.entries())
      expect(await km.localDecrypt(s)).toBe(i < 10 ? `v${i}` : 'after recovery')
  })

  it('logs a warning at initialize() when the keyring lives in memory', async () => {
    const warnings: string[] = []
    const km = new KeyManager({
      providers: { local: new LocalKmsProvider() },
      defaultProvider: 'local',
      defaultKeyId: 'app',
      logger: { warn: (_o: object, m?: string) => warnings.push(m ?? ''), error: () => {} },
    })
    await km.initialize()
    expect(warnings.join()).toMatch(/will not survive a restart/)
  })

  it('two managers racing initialize() on one empty keyring end on the same DEK', async () => {
    const local = new LocalKmsProvider({ keys: { app: randomBytes(32) } })
    const keyring = new MemoryKeyringStore()
    const a = manager({ keyring }, local)
    const b = manager({ keyring }, local)
    await Promise.all([a.initialize(), b.initialize()])
    expect((await keyring.list()).filter((e) => e.status === 'active')).toHaveLength(1)
    expect(await b.localDecrypt(await a.localEncrypt('shared'))).toBe('shared')
  })
})

describe('KeyManager: KMS-backed operations', () => {
  it('encrypts and decrypts through the named provider, with context.service = contextPrefix', async () => {
    const km = manager({ contextPrefix: 'orders-api' })
    const enc = await km.encrypt('card', { context: { table: 'payments' } })
    expect(enc.context).toEqual({ table: 'payments', service: 'orders-api' })
    // The stored context is never trusted: the caller names the one it expects.
    expect(await rejection(km.decrypt(enc))).toMatchObject({ code: 'ERR_KMS_CONTEXT_REQUIRED' })
    expect(Buffer.from(await km.decrypt(enc, { table: 'payments' })).toString()).toBe('card')
  })

  it('routes decrypt by the key reference, and names an unknown provider', async () => {
    const km = manager()
    const other = new LocalKmsProvider({ name: 'elsewhere' })
    const enc = await other.encrypt('x', 'k')
    const err = await rejection(km.decrypt(enc))
    expect(err).toMatchObject({
      code: 'ERR_KMS_UNKNOWN_PROVIDER',
      message: 'Unknown provider: elsewhere',
    })
  })

  it('works without initialize()', async () => {
    const km = manager()
    const field = await km.encryptField('plain text')
    expect(km.hasCachedDataKey()).toBe(false)
    expect(await km.decryptField(field)).toBe('plain text')
  })

  it('encrypts fields: strings and JSON values, recording the encoding', async () => {
    const km = manager()
    for (const value of ['é', 42, true, null, { a: [1, 'x', { b: false }] }]) {
      const field = await km.encryptField(value)
      expect(field.encoding).toBe('utf-8')
      expect(field.valueType).toBe(typeof value === 'string' ? 'string' : 'json')
      expect(await km.decryptField(JSON.stringify(field))).toEqual(value)
    }
    expect(await rejection(km.decryptField('{"not":"a field"}'))).toBeInstanceOf(DecryptionError)
  })

  it('generates data keys through the default provider', async () => {
    const km = manager()
    const pair = await km.generateDataKey()
    expect(pair.plaintextKey).toHaveLength(32)
    expect(pair.keyReference.qualifiedId).toBe('local:app')
  })

  it('rejects bad options with ERR_CONFIG_INVALID naming the field', () => {
    const local = new LocalKmsProvider()
    const cases: Array<[object, string]> = [
      [{ providers: {}, defaultProvider: 'x', defaultKeyId: 'k' }, 'providers'],
      [{ providers: { local }, defaultProvider: 'nope', defaultKeyId: 'k' }, 'defaultProvider'],
      [{ providers: { local }, defaultProvider: 'local', defaultKeyId: '' }, 'defaultKeyId'],
      [
        {
          providers: { local },
          defaultProvider: 'local',
          defaultKeyId: 'k',
          limits: { maxEncryptions: 10, hardMaxEncryptions: 5 },
        },
        'limits.maxEncryptions',
      ],
      [
        {
          providers: { local },
          defaultProvider: 'local',
          defaultKeyId: 'k',
          limits: { hardMaxEncryptions: 2 ** 33 },
        },
        'limits.hardMaxEncryptions',
      ],
    ]
    for (const [options, field] of cases) {
      expect(() => new KeyManager(options as KeyManagerOptions)).toThrow(
        expect.objectContaining({
          code: 'ERR_CONFIG_INVALID',
          message: expect.stringContaining(`\`${field}\``),
        }),
      )
    }
  })
})
