import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DataKeyPair, EncryptedData, KeyReference } from '../../src/kms/index.js'

const ref = new KeyReference({
  provider: 'vault',
  keyId: 'orders',
  keyAlias: 'alias/orders',
  createdAt: '2026-01-02T03:04:05.000Z',
})

describe('KeyReference', () => {
  it('is frozen and qualifies its id with the provider name', () => {
    expect(ref.qualifiedId).toBe('vault:orders')
    expect(Object.isFrozen(ref)).toBe(true)
    expect(() => {
      ;(ref as { keyId: string }).keyId = 'x'
    }).toThrow(TypeError)
    expect(ref.purpose).toBe('encrypt_decrypt')
  })

  it('rejects bad fields with ERR_CONFIG_INVALID naming the field', () => {
    expect(() => new KeyReference({ provider: 'has space', keyId: 'k' })).toThrow(/`provider`/)
    expect(() => new KeyReference({ provider: 'p', keyId: '' })).toThrow(/`keyId`/)
    expect(() => new KeyReference({ provider: 'p', keyId: 'k', purpose: 'sign' as never })).toThrow(
      /`purpose`/,
    )
  })
})

describe('EncryptedData', () => {
  const sample = () =>
    new EncryptedData({
      ciphertext: new Uint8Array([1, 2, 3, 254]),
      keyReference: ref,
      algorithm: 'AES_256_GCM',
      encryptedAt: new Date('2026-05-06T07:08:09.010Z'),
      context: { tenant: 'acme' },
    })

  it('serializes the ciphertext as hex and round-trips exactly', () => {
    const json = sample().toJSON()
    expect(json).toEqual({
      ciphertext: '010203fe',
      keyReference: {
        provider: 'vault',
        keyId: 'orders',
        keyAlias: 'alias/orders',
        purpose: 'encrypt_decrypt',
        createdAt: '2026-01-02T03:04:05.000Z',
      },
      algorithm: 'AES_256_GCM',
      encryptedAt: '2026-05-06T07:08:09.010Z',
      context: { tenant: 'acme' },
    })
    expect(EncryptedData.fromJSON(JSON.parse(JSON.stringify(json))).toJSON()).toEqual(json)
  })

  it('is immutable: bytes are copied in and out, the context is frozen', () => {
    const bytes = new Uint8Array([9, 9])
    const e = new EncryptedData({
      ciphertext: bytes,
      keyReference: ref,
      algorithm: 'a',
      encryptedAt: new Date(0),
    })
    bytes[0] = 0
    e.ciphertext[0] = 0
    expect([...e.ciphertext]).toEqual([9, 9])
    expect(Object.isFrozen(e.context)).toBe(true)
    expect(Object.isFrozen(e)).toBe(true)
  })

  it.each([
    ['not an object', 'x'],
    ['odd hex', { ...sample().toJSON(), ciphertext: 'abc' }],
    ['uppercase hex', { ...sample().toJSON(), ciphertext: 'AB' }],
    ['empty ciphertext', { ...sample().toJSON(), ciphertext: '' }],
    ['bad date', { ...sample().toJSON(), encryptedAt: 'yesterday' }],
    ['context with a number', { ...sample().toJSON(), context: { a: 1 } }],
    ['unknown field', { ...sample().toJSON(), extra: true }],
    ['a __proto__ context key', { ...sample().toJSON(), context: JSON.parse('{"__proto__":"x"}') }],
    ['missing key reference', { ...sample().toJSON(), keyReference: undefined }],
  ])('fromJSON rejects %s with ERR_KMS_INVALID_FORMAT', (_, input) => {
    expect(() => EncryptedData.fromJSON(input)).toThrow(
      expect.objectContaining({ code: 'ERR_KMS_INVALID_FORMAT' }),
    )
  })

  it('property: fromJSON(toJSON(x)) equals x for any bytes, context and time', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 200 }),
        fc.dictionary(
          fc.string({ maxLength: 20 }).filter((k) => k !== '__proto__'),
          fc.string({ maxLength: 40 }),
        ),
        fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }),
        (ciphertext, context, encryptedAt) => {
          const e = new EncryptedData({
            ciphertext,
            keyReference: ref,
            algorithm: 'x',
            encryptedAt,
            context,
          })
          const back = EncryptedData.fromJSON(JSON.parse(JSON.stringify(e)))
          expect(Buffer.from(back.ciphertext)).toEqual(Buffer.from(ciphertext))
          expect(back.context).toEqual(context)
          expect(back.encryptedAt.getTime()).toBe(encryptedAt.getTime())
        },
      ),
      { numRuns: 200 },
    )
  })

  it('refuses a "__proto__" context key (it would not survive a round trip)', () => {
    const context = JSON.parse('{"__proto__":"x"}') as Record<string, string>
    expect(
      () =>
        new EncryptedData({
          ciphertext: new Uint8Array([1]),
          keyReference: ref,
          algorithm: 'a',
          encryptedAt: new Date(0),
          context,
        }),
    ).toThrow(expect.objectContaining({ code: 'ERR_KMS_INVALID_FORMAT' }))
  })

  it('property: fromJSON never throws anything but ERR_KMS_INVALID_FORMAT on garbage', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (garbage) => {
        try {
          EncryptedData.fromJSON(garbage)
        } catch (err) {
          expect((err as { code?: string }).code).toBe('ERR_KMS_INVALID_FORMAT')
        }
      }),
      { numRuns: 300 },
    )
  })
})

describe('DataKeyPair', () => {
  it('zeroes the plaintext key on dispose, and refuses access afterwards', () => {
    const key = Buffer.alloc(32, 0xab)
    const pair = new DataKeyPair(key, new Uint8Array([1]), ref)
    const held = pair.plaintextKey
    expect(held.equals(key)).toBe(true)
    pair.dispose()
    expect(held.every((b) => b === 0)).toBe(true)
    expect(pair.disposed).toBe(true)
    expect(() => pair.plaintextKey).toThrow(new TypeError('data key was disposed'))
    // The caller's buffer was copied, not adopted.
    expect(key.every((b) => b === 0xab)).toBe(true)
  })
})
