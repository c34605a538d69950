/**
 * Regression (issue 15, item 2): with the host clock minutes off, AWS KMS
 * answers `InvalidSignatureException` "Signature expired" with a `Date`
 * header; the SDK corrects its clock offset from it, and by default retries
 * once. The provider turned the SDK's retries off (`maxAttempts: 1`) and
 * mapped the error to `KmsAccessDeniedError`, so the first call after start
 * failed as "access denied". A skew the SDK has corrected is now retried
 * once; a real signature failure stays access denied.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AwsKmsProvider } from '../../src/kms/index.js'
import { type AwsKmsEmulator, startAwsKmsEmulator } from '../../src/kms/testing/aws-emulator.js'
import { rejection } from '../helpers/rejection.js'

const FAST = { timeoutMs: 3000, retryBaseDelayMs: 5, retryMaxDelayMs: 20 } as const
const MINUTE = 60_000

describe('AWS KMS with the host clock off by more than five minutes', () => {
  let emu: AwsKmsEmulator
  let arn: string
  const opened: AwsKmsProvider[] = []
  const provider = (credentials = emu.credentials) => {
    const p = new AwsKmsProvider({
      region: emu.region,
      endpoint: emu.endpoint,
      credentials,
      ...FAST,
    })
    opened.push(p)
    return p
  }
  beforeAll(async () => {
    emu = await startAwsKmsEmulator()
    arn = emu.createKey().arn
  })
  afterAll(async () => {
    for (const p of opened) await p.close()
    await emu.close()
  })

  for (const skew of [10 * MINUTE, -10 * MINUTE, 3 * 60 * MINUTE]) {
    it(`the first call succeeds after the SDK corrects its clock (service clock ${skew / MINUTE} min off): two requests`, async () => {
      emu.faults.reset().setClockSkew(skew)
      const kms = provider()
      emu.calls.reset()
      const sealed = await kms.encrypt('on time', arn)
      expect(emu.calls.count('Encrypt')).toBe(2)
      // Corrected for good: the next call is signed right the first time.
      expect(Buffer.from(await kms.decrypt(sealed)).toString()).toBe('on time')
      expect(emu.calls.count('Decrypt')).toBe(1)
      // The host clock is fixed (the skew goes away): corrected back, again with one retry.
      emu.faults.setClockSkew(0)
      emu.calls.reset()
      await kms.getKeyInfo(arn)
      expect(emu.calls.count('DescribeKey')).toBe(2)
    })
  }

  it('a wrong secret stays KmsAccessDeniedError, sent once', async () => {
    emu.faults.reset()
    const kms = provider({
      accessKeyId: emu.credentials.accessKeyId,
      secretAccessKey: randomBytes(30).toString('base64'),
    })
    emu.calls.reset()
    const err = await rejection(kms.encrypt('x', arn))
    expect(err).toMatchObject({
      code: 'ERR_KMS_ACCESS_DENIED',
      cause: { service: 'aws-kms', code: 'InvalidSignatureException', status: 400 },
    })
    expect(emu.calls.count('Encrypt')).toBe(1)
  })

  it('a skew the SDK cannot correct (a wrong secret, too) is not retried', async () => {
    emu.faults.reset().setClockSkew(10 * MINUTE)
    const kms = provider({
      accessKeyId: emu.credentials.accessKeyId,
      secretAccessKey: randomBytes(30).toString('base64'),
    })
    emu.calls.reset()
    const err = await rejection(kms.encrypt('x', arn))
    expect(err).toMatchObject({ code: 'ERR_KMS_ACCESS_DENIED' })
    // One expired, one re-signed with the corrected clock and refused for the secret: no more.
    expect(emu.calls.count('Encrypt')).toBe(2)
    emu.faults.reset()
  })
})
