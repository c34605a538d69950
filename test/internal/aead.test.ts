/**
 * The AES-256-GCM layer every local seal uses, against Wycheproof: every
 * group our primitive supports (256-bit key, 96-bit IV, 128-bit tag). Valid
 * vectors must encrypt to the expected bytes and decrypt back; invalid ones
 * must fail to open.
 */
import { describe, expect, it } from 'vitest'
import { gcmOpen, gcmSeal } from '../../src/internal/aead.js'
import { type AeadGroup, WYCHEPROOF_DIR, wycheproof } from '../helpers/wycheproof.js'

const hex = (s: string) => Buffer.from(s, 'hex')

describe.skipIf(WYCHEPROOF_DIR === undefined)(
  'AES-256-GCM against Wycheproof (aes_gcm_test.json)',
  () => {
    const groups =
      WYCHEPROOF_DIR === undefined
        ? []
        : wycheproof<{ testGroups: AeadGroup[] }>('aes_gcm_test.json').testGroups
    const ours = groups.filter((g) => g.keySize === 256 && g.ivSize === 96 && g.tagSize === 128)
    const tests = ours.flatMap((g) => g.tests)

    it('covers the groups our primitive supports', () => {
      expect(ours.length).toBeGreaterThan(0)
      expect(tests.filter((t) => t.result === 'valid').length).toBeGreaterThan(20)
      expect(tests.filter((t) => t.result === 'invalid').length).toBeGreaterThan(5)
    })

    it.each(tests.map((t) => [t.tcId, t.comment, t] as const))('tcId %i %s', (_, __, t) => {
      const sealed = Buffer.concat([hex(t.ct), hex(t.tag)])
      const opened = gcmOpen(hex(t.key), hex(t.iv), sealed, hex(t.aad))
      if (t.result === 'invalid') {
        expect(opened).toBeUndefined()
        return
      }
      expect(opened?.toString('hex')).toBe(t.msg)
      expect(gcmSeal(hex(t.key), hex(t.iv), hex(t.msg), hex(t.aad)).toString('hex')).toBe(
        t.ct + t.tag,
      )
    })
  },
)
