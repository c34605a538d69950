import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { checksumOf } from '../../src/api-keys/format.js'
import { hashesEqual, KeyFingerprints, Pepper } from '../../src/api-keys/hash.js'
import {
  API_KEY_PATTERN,
  ApiKeyMalformedError,
  apiKeyPattern,
  formatApiKey,
  MAX_API_KEY_LENGTH,
  parseApiKey,
} from '../../src/api-keys/index.js'
import { BASE62_ALPHABET, encodeBase62, randomBase62 } from '../../src/internal/base62.js'
import { crc32, crc32Table } from '../../src/internal/crc32.js'
import { WYCHEPROOF_DIR, wycheproof } from '../helpers/wycheproof.js'

const region = fc
  .array(fc.stringMatching(/^[a-z0-9]{1,6}$/), { minLength: 1, maxLength: 4 })
  .map((parts) => parts.join('_'))
  .filter((r) => r.length <= 32)
const b62 = (n: number) => fc.stringMatching(new RegExp(`^[0-9A-Za-z]{${n}}$`))
const prefix = fc.constantFrom('fraiseql_live', 'fraiseql_test')
const parts = fc.record({ prefix, region, keyId: b62(12), secret: b62(32) })

const malformed = (key: string) => {
  try {
    parseApiKey(key)
    return false
  } catch (err) {
    return err instanceof ApiKeyMalformedError && (err as Error).message === 'Invalid API key'
  }
}

describe('CRC-32 and base62', () => {
  it('crc32 has the IEEE check value, and the portable table agrees with zlib', () => {
    expect(crc32('123456789')).toBe(0xcbf43926)
    expect(crc32Table(Buffer.from('123456789'))).toBe(0xcbf43926)
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        expect(crc32Table(bytes)).toBe(crc32(bytes))
      }),
    )
  })

  it('base62 uses 0-9A-Za-z in that order, left-pads, and spans 2^32 in 6 characters', () => {
    expect(BASE62_ALPHABET).toBe('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz')
    expect(encodeBase62(0, 6)).toBe('000000')
    expect(encodeBase62(61, 6)).toBe('00000z')
    expect(encodeBase62(62, 6)).toBe('000010')
    expect(encodeBase62(2 ** 32 - 1, 6)).toBe('4gfFC3')
    expect(() => encodeBase62(62 ** 6, 6)).toThrow(RangeError)
  })

  it('randomBase62 draws every character of the alphabet and nothing else', () => {
    const s = randomBase62(20_000)
    expect(s).toMatch(/^[0-9A-Za-z]{20000}$/)
    expect(new Set(s).size).toBe(62)
  })
})

describe('HMAC-SHA256 (Wycheproof hmac_sha256_test.json)', () => {
  interface MacTest {
    tcId: number
    key: string
    msg: string
    tag: string
    result: 'valid' | 'invalid'
  }
  interface MacGroup {
    keySize: number
    tagSize: number
    tests: MacTest[]
  }
  it.skipIf(WYCHEPROOF_DIR === undefined)(
    'full tags: valid vectors match and invalid ones do not; truncated stored tags never match',
    () => {
      const file = wycheproof<{ testGroups: MacGroup[] }>('hmac_sha256_test.json')
      let full = 0
      for (const group of file.testGroups) {
        for (const t of group.tests) {
          const pepper = new Pepper(Buffer.from(t.key, 'hex'))
          const msg = Buffer.from(t.msg, 'hex')
          const computed = pepper.mac(msg)
          // The same tag again (the buffers are reused), and from the string form.
          expect(pepper.mac(msg)).toEqual(computed)
          if (msg.every((b) => b < 0x80))
            expect(pepper.mac(msg.toString('latin1'))).toEqual(computed)
          const tag = Buffer.from(t.tag, 'hex')
          if (group.tagSize === 256) {
            full++
            expect(hashesEqual(computed, tag), `tcId ${t.tcId}`).toBe(t.result === 'valid')
          } else {
            expect(hashesEqual(computed, tag), `tcId ${t.tcId}`).toBe(false)
          }
        }
      }
      expect(full).toBeGreaterThan(50)
    },
  )
})

describe('parseApiKey', () => {
  it('round-trips every key formatApiKey makes, regions with underscores included', () => {
    fc.assert(
      fc.property(parts, (p) => {
        const key = formatApiKey(p)
        expect(parseApiKey(key)).toEqual(p)
        expect(key.length).toBeLessThanOrEqual(MAX_API_KEY_LENGTH)
        expect(API_KEY_PATTERN.test(`leaked: ${key}.`)).toBe(true)
      }),
      { numRuns: 300 },
    )
  })

  it('the checksum is the base62 CRC-32 of everything before it, 6 characters', () => {
    const key = formatApiKey({
      prefix: 'fraiseql_live',
      region: 'eu_west_1',
      keyId: 'AbCdEfGhIjKl',
      secret: '0123456789abcdefghijABCDEFGHIJ01',
    })
    const body = 'fraiseql_live_eu_west_1_AbCdEfGhIjKl_0123456789abcdefghijABCDEFGHIJ01'
    expect(key).toBe(body + encodeBase62(crc32(body), 6))
    expect(checksumOf(body)).toHaveLength(6)
  })

  it('parses right to left: region eu_west_1 under prefix fraiseql_live', () => {
    const key = formatApiKey({ prefix: 'fraiseql_live', region: 'eu_west_1' })
    expect(parseApiKey(key)).toMatchObject({ prefix: 'fraiseql_live', region: 'eu_west_1' })
  })

  it('matches configured prefixes longest first', () => {
    const key = formatApiKey({ prefix: 'acme_live', region: 'us' })
    expect(parseApiKey(key, { prefixes: ['acme', 'acme_live'] })).toMatchObject({
      prefix: 'acme_live',
      region: 'us',
    })
    expect(parseApiKey(key, { prefixes: ['acme'] })).toMatchObject({
      prefix: 'acme',
      region: 'live_us',
    })
    expect(malformed(key)).toBe(true) // not a default prefix
  })

  it('rejects every one-character substitution (the checksum or the shape catches it)', () => {
    fc.assert(
      fc.property(parts, fc.nat(), fc.constantFrom(...`${BASE62_ALPHABET}_-.`), (p, at, ch) => {
        const key = formatApiKey(p)
        const i = at % key.length
        fc.pre(key[i] !== ch)
        const mutated = key.slice(0, i) + ch + key.slice(i + 1)
        expect(malformed(mutated)).toBe(true)
      }),
      { numRuns: 2000 },
    )
  })

  it('rejects deletions, insertions and transpositions of a key', () => {
    fc.assert(
      fc.property(parts, fc.nat(), (p, at) => {
        const key = formatApiKey(p)
        const i = at % (key.length - 1)
        expect(malformed(key.slice(0, i) + key.slice(i + 1))).toBe(true)
        expect(malformed(`${key.slice(0, i)}x${key.slice(i)}`)).toBe(true)
        if (key[i] !== key[i + 1]) {
          expect(malformed(key.slice(0, i) + key[i + 1] + key[i] + key.slice(i + 2))).toBe(true)
        }
      }),
      { numRuns: 500 },
    )
  })

  it('rejects random garbage and non-strings with ERR_API_KEY_MALFORMED', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 120 }), (s) => {
        expect(malformed(s)).toBe(true)
      }),
      { numRuns: 500 },
    )
    for (const v of [undefined, null, 42, {}, ['x'], 'x'.repeat(10_000)]) {
      expect(malformed(v as never)).toBe(true)
    }
  })

  it('rejects bad regions and a well-formed tail behind an unknown prefix, whatever the checksum', () => {
    const fix = (body: string) => body + checksumOf(body)
    const tail = '_AbCdEfGhIjKl_0123456789abcdefghijABCDEFGHIJ01'
    for (const bad of [
      `fraiseql_live_EU${tail}`,
      `fraiseql_live_eu__west${tail}`,
      `fraiseql_live__eu${tail}`,
      `fraiseql_live_eu_${tail}`,
      `fraiseql_live${tail}`,
      `fraiseql_live_${'a'.repeat(33)}${tail}`,
      `fraiseql_prod_eu${tail}`,
      `xfraiseql_live_eu${tail}`,
    ]) {
      expect(malformed(fix(bad)), bad).toBe(true)
    }
    expect(malformed(fix(`fraiseql_live_eu${tail}`))).toBe(false)
  })

  it('the error never contains the key', () => {
    const key = formatApiKey({ prefix: 'fraiseql_live', region: 'eu' })
    const bad = `${key.slice(0, -1)}${key.endsWith('0') ? '1' : '0'}`
    let err: unknown
    try {
      parseApiKey(bad)
    } catch (e) {
      err = e
    }
    expect(err).toMatchObject({ code: 'ERR_API_KEY_MALFORMED', statusCode: 401 })
    const text = `${(err as Error).message} ${(err as Error).stack} ${JSON.stringify(err)}`
    expect(text).not.toContain(parseApiKey(key).secret)
  })
})

describe('API_KEY_PATTERN', () => {
  it('is the documented expression, neither global nor anchored', () => {
    expect(API_KEY_PATTERN.source).toBe(
      '\\b(?:fraiseql_live|fraiseql_test)_[a-z0-9]+(?:_[a-z0-9]+)*_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}\\b',
    )
    expect(API_KEY_PATTERN.flags).toBe('')
  })

  it('finds every key in surrounding text and skips near misses', () => {
    const keys = [
      formatApiKey({ prefix: 'fraiseql_live', region: 'eu_west_1' }),
      formatApiKey({ prefix: 'fraiseql_test', region: 'us' }),
    ]
    const text = `config:\n  KEY=${keys[0]}\n  other="${keys[1]}"\n  fraiseql_live_eu_short_tail`
    const found = text.match(new RegExp(API_KEY_PATTERN.source, 'g'))
    expect(found).toEqual(keys)
    expect(
      apiKeyPattern(['acme_live']).test(formatApiKey({ prefix: 'acme_live', region: 'x' })),
    ).toBe(true)
  })
})

describe('Pepper', () => {
  it('computes HMAC-SHA256 exactly as createHmac does, for UTF-8 strings and long messages too', async () => {
    const { createHmac, randomBytes } = await import('node:crypto')
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 100 }),
        fc.oneof(fc.string({ maxLength: 300 }), fc.string({ minLength: 1000, maxLength: 1100 })),
        (key, msg) => {
          expect(new Pepper(key).mac(msg)).toEqual(
            createHmac('sha256', key).update(msg, 'utf8').digest(),
          )
        },
      ),
      { numRuns: 200 },
    )
    const pepper = new Pepper(randomBytes(32))
    pepper.dispose()
    expect(() => pepper.mac('x')).toThrow(/disposed/)
  })
})

describe('KeyFingerprints', () => {
  it('is SHA-256 of a per-instance random block and the key: stable, distinct per instance and per key', async () => {
    const { createHash } = await import('node:crypto')
    const a = new KeyFingerprints()
    const b = new KeyFingerprints()
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 300 }), fc.string({ minLength: 1100, maxLength: 1200 })),
        fc.string({ maxLength: 300 }),
        (key, other) => {
          const fp = a.of(key)
          expect(fp).toHaveLength(32)
          expect(a.of(key)).toEqual(fp)
          expect(b.of(key)).not.toEqual(fp)
          if (other !== key) expect(a.of(other)).not.toEqual(fp)
          expect(fp).not.toEqual(createHash('sha256').update(key).digest())
        },
      ),
      { numRuns: 200 },
    )
    const before = a.of('fraiseql_live_eu_west_1_x')
    a.dispose()
    expect(a.of('fraiseql_live_eu_west_1_x')).not.toEqual(before)
  })
})
