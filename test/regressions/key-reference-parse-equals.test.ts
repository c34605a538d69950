/**
 * Regression (specification parity): `KeyReference` had `qualifiedId`
 * (`"<provider>:<keyId>"`) but no way back, `KeyReference.parse`, and no
 * `equals`; callers compared references field by field or by `===`, which is
 * false for two equal references. Key ids contain colons (AWS ARNs), so the
 * text splits on the first colon only.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { InvalidKeyReferenceError, KeyReference } from '../../src/kms/index.js'

const ARN = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'
const GCP = 'projects/acme/locations/global/keyRings/app/cryptoKeys/orders'

describe('KeyReference.parse', () => {
  it.each([
    ['vault:orders', 'vault', 'orders'],
    [`aws:${ARN}`, 'aws', ARN],
    ['aws:alias/orders', 'aws', 'alias/orders'],
    [`gcp:${GCP}`, 'gcp', GCP],
    ['local:a:b:c', 'local', 'a:b:c'],
    ['my-vault.eu_1:k', 'my-vault.eu_1', 'k'],
  ])('%s → provider %s, key id %s (split on the first colon)', (text, provider, keyId) => {
    const ref = KeyReference.parse(text)
    expect(ref).toBeInstanceOf(KeyReference)
    expect(ref).toMatchObject({ provider, keyId, purpose: 'encrypt_decrypt' })
    expect(ref.qualifiedId).toBe(text)
    expect(Object.isFrozen(ref)).toBe(true)
  })

  it('takes the other fields as a second argument', () => {
    const ref = KeyReference.parse('vault:orders', { purpose: 'mac', keyAlias: 'orders-mac' })
    expect(ref).toMatchObject({ provider: 'vault', keyId: 'orders', purpose: 'mac' })
    expect(ref.keyAlias).toBe('orders-mac')
  })

  it.each([
    ['no colon', 'vault'],
    ['empty', ''],
    ['empty provider', ':orders'],
    ['empty key id', 'vault:'],
    ['space in the provider', 'my vault:orders'],
    ['colon-free but spaced key id', 'vault:my key'],
    ['control character in the key id', 'vault:or\nders'],
    ['key id too long', `vault:${'k'.repeat(257)}`],
    ['provider too long', `${'p'.repeat(65)}:k`],
    ['leading space', ' vault:orders'],
  ])('%s: ERR_KMS_INVALID_KEY_REFERENCE', (_, text) => {
    let error: unknown
    try {
      KeyReference.parse(text)
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(InvalidKeyReferenceError)
    expect(error).toMatchObject({
      code: 'ERR_KMS_INVALID_KEY_REFERENCE',
      message: expect.stringContaining('<provider>:<keyId>'),
    })
  })

  it.each([undefined, null, 42, { provider: 'vault', keyId: 'k' }])(
    'a non-string (%o) is ERR_KMS_INVALID_KEY_REFERENCE, not a TypeError',
    (value) => {
      expect(() => KeyReference.parse(value as never)).toThrow(
        expect.objectContaining({ code: 'ERR_KMS_INVALID_KEY_REFERENCE' }),
      )
    },
  )

  it('never echoes the text it refused', () => {
    const text = 'tenant secret value without colon'
    expect(() => KeyReference.parse(text)).toThrow(
      expect.not.objectContaining({ message: expect.stringContaining('secret value') }),
    )
  })
})

describe('keyReference.equals', () => {
  const ref = new KeyReference({ provider: 'aws', keyId: ARN })

  it('is true for the same provider and key id, whatever object, alias or creation time', () => {
    expect(ref.equals(ref)).toBe(true)
    expect(ref.equals(KeyReference.parse(`aws:${ARN}`))).toBe(true)
    expect(
      ref.equals(
        new KeyReference({ provider: 'aws', keyId: ARN, keyAlias: 'alias/x', createdAt: 0 }),
      ),
    ).toBe(true)
  })

  it('is false for another provider, another key id (case counts), or not a reference', () => {
    expect(ref.equals(new KeyReference({ provider: 'aws2', keyId: ARN }))).toBe(false)
    expect(ref.equals(new KeyReference({ provider: 'aws', keyId: ARN.toUpperCase() }))).toBe(false)
    expect(ref.equals(new KeyReference({ provider: 'aws', keyId: `${ARN}x` }))).toBe(false)
    for (const other of [undefined, null, `aws:${ARN}`, { provider: 'aws', keyId: ARN }]) {
      expect(ref.equals(other as never)).toBe(false)
    }
  })

  it('is symmetric', () => {
    const a = new KeyReference({ provider: 'v', keyId: 'k', keyAlias: 'x' })
    const b = new KeyReference({ provider: 'v', keyId: 'k' })
    expect(a.equals(b)).toBe(b.equals(a))
  })
})

const printable = fc.string({
  unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
  minLength: 1,
  maxLength: 64,
})
const providerName = fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/)

describe('property: parse and qualifiedId are inverse', () => {
  it('parse(ref.qualifiedId) equals ref and prints the same text, for any valid names', () => {
    fc.assert(
      fc.property(providerName, printable, (provider, keyId) => {
        const ref = new KeyReference({ provider, keyId })
        const back = KeyReference.parse(ref.qualifiedId)
        expect(back.equals(ref)).toBe(true)
        expect(back.provider).toBe(provider)
        expect(back.keyId).toBe(keyId)
        expect(back.qualifiedId).toBe(ref.qualifiedId)
      }),
      { numRuns: 500 },
    )
  })

  it('any string either parses to a reference that prints it back, or is the typed error', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (text) => {
        let ref: KeyReference | undefined
        try {
          ref = KeyReference.parse(text)
        } catch (err) {
          expect(err).toBeInstanceOf(InvalidKeyReferenceError)
          return
        }
        expect(ref.qualifiedId).toBe(text)
      }),
      { numRuns: 500 },
    )
  })
})
