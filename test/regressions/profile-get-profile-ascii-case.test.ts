/**
 * Regression (review of issue 14): `getProfile(name)` folded case with
 * `toUpperCase()`, which maps some non-ASCII letters onto ASCII ones:
 * `getProfile('ſtandard')` (U+017F LONG S) was STANDARD and
 * `getProfile('restrıcted')` (U+0131 DOTLESS I) RESTRICTED. A configuration
 * value that is not the name should be refused, not reinterpreted: case is
 * folded for ASCII letters only.
 */
import { describe, expect, it } from 'vitest'
import { getProfile, REGULATED, RESTRICTED, STANDARD } from '../../src/profiles/index.js'

describe('getProfile folds ASCII case only', () => {
  it('any ASCII case still names a preset', () => {
    expect(getProfile('sTaNdArD')).toBe(STANDARD)
    expect(getProfile('regulated')).toBe(REGULATED)
    expect(getProfile(' Restricted\n')).toBe(RESTRICTED)
  })

  for (const name of ['ſtandard', 'restrıcted', 'ＳＴＡＮＤＡＲＤ', 'regulated\u200b']) {
    it(`${JSON.stringify(name)} is ERR_PROFILE_UNKNOWN`, () => {
      expect(() => getProfile(name)).toThrow(
        expect.objectContaining({ code: 'ERR_PROFILE_UNKNOWN' }),
      )
    })
  }
})
