/**
 * Regression: passphrases, passcodes and `privkey` fields were recorded in
 * clear by the default redaction (`walletPassphrase`, `smsPasscode`,
 * `sshPrivkey` kept their values in spans and logs). They are strong words
 * now: redacted wherever they appear in a name.
 */
import { describe, expect, it } from 'vitest'
import { DEFAULT_SENSITIVE_PATTERNS, redactSensitive } from '../../src/graphql/index.js'

const R = '[REDACTED]'

describe('passphrase, passcode and privkey are redacted by default', () => {
  it.each([
    'passphrase',
    'walletPassphrase',
    'key_passphrase',
    'passcode',
    'smsPasscode',
    'PASSCODE',
    'privkey',
    'sshPrivkey',
    'privkeypem',
  ])('%s', (name) => {
    expect(redactSensitive({ [name]: 'hunter2', id: 7 })).toEqual({ [name]: R, id: 7 })
  })

  it('are default patterns', () => {
    expect(DEFAULT_SENSITIVE_PATTERNS).toEqual(
      expect.arrayContaining(['passphrase', 'passcode', 'privkey']),
    )
  })
})
