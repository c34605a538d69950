/**
 * The AWS KMS emulator itself, on the wire, through `@aws-sdk/client-kms`
 * and raw requests: SigV4 verification (AWS's SigV4 test suite vectors
 * included), key resolution, data keys and injected faults. The provider's
 * own behaviour on it is tested in test/kms/aws.test.ts.
 */
import { createHash } from 'node:crypto'
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  KMSClient,
  RotateKeyOnDemandCommand,
} from '@aws-sdk/client-kms'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type AwsEmulatorCredentials,
  computeSigV4Signature,
} from '../../../src/kms/testing/aws/sigv4.js'
import { type AwsKmsEmulator, startAwsKmsEmulator } from '../../../src/kms/testing/aws-emulator.js'
import { temporaryCredentials } from '../aws-harness.js'

describe('AWS KMS emulator', () => {
  let emu: AwsKmsEmulator
  let creds: Required<AwsEmulatorCredentials>
  let admin: KMSClient
  const opened: KMSClient[] = []

  const client = (credentials: AwsEmulatorCredentials = creds, region = emu.region): KMSClient => {
    const c = new KMSClient({
      region,
      endpoint: emu.endpoint,
      // A copy: the SDK writes its bookkeeping ($source) into the object it is given.
      credentials: { ...credentials },
      maxAttempts: 1,
    })
    opened.push(c)
    return c
  }

  beforeAll(async () => {
    creds = temporaryCredentials()
    emu = await startAwsKmsEmulator({ credentials: creds, onDemandRotationLimit: 3 })
    admin = client()
  })
  afterAll(async () => {
    for (const c of opened) c.destroy()
    await emu.close()
  })

  describe('SigV4', () => {
    it('the emulator rejects a request without Authorization: 400 MissingAuthenticationTokenException', async () => {
      const res = await fetch(emu.endpoint, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-amz-json-1.1',
          'x-amz-target': 'TrentService.DescribeKey',
        },
        body: JSON.stringify({ KeyId: emu.createKey().keyId }),
      })
      expect(res.status).toBe(400)
      expect(res.headers.get('content-type')).toBe('application/x-amz-json-1.1')
      expect(res.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/)
      expect(await res.json()).toEqual({
        __type: 'MissingAuthenticationTokenException',
        message: 'Missing Authentication Token',
      })
    })

    it('the emulator rejects a body or a signed header changed after signing', async () => {
      const { arn } = emu.createKey()
      const tamper = (change: (req: { body: string; headers: Record<string, string> }) => void) => {
        const c = client()
        c.middlewareStack.add(
          (next) => async (args) => {
            change(args.request as { body: string; headers: Record<string, string> })
            return next(args)
          },
          { step: 'deserialize', name: 'tamperAfterSigning' },
        )
        return c
      }
      const plaintext = Buffer.from('hello')
      const body = tamper((req) => {
        // Same length, different plaintext ("jello").
        req.body = req.body.replace('aGVsbG8=', 'amVsbG8=')
      })
      await expect(
        body.send(new EncryptCommand({ KeyId: arn, Plaintext: plaintext })),
      ).rejects.toMatchObject({
        name: 'InvalidSignatureException',
        $metadata: { httpStatusCode: 400 },
      })
      const target = tamper((req) => {
        req.headers['x-amz-target'] = 'TrentService.DescribeKey'
      })
      await expect(
        target.send(new EncryptCommand({ KeyId: arn, Plaintext: plaintext })),
      ).rejects.toMatchObject({ name: 'InvalidSignatureException' })
      // Untampered, the same request goes through.
      const ok = await tamper(() => {}).send(
        new EncryptCommand({ KeyId: arn, Plaintext: plaintext }),
      )
      expect(ok.KeyId).toBe(arn)
    })

    it('the emulator rejects a request signed too long ago', async () => {
      const late = await startAwsKmsEmulator({
        credentials: creds,
        clock: () => Date.now() + 16 * 60_000,
      })
      try {
        const c = new KMSClient({
          region: late.region,
          endpoint: late.endpoint,
          credentials: { ...creds },
          maxAttempts: 1,
          // The SDK corrects its clock from the server's Date header after a skew error; keep it from retrying.
          systemClockOffset: 0,
        })
        await expect(
          c.send(new DescribeKeyCommand({ KeyId: late.createKey().keyId })),
        ).rejects.toMatchObject({
          name: 'InvalidSignatureException',
          message: expect.stringContaining('Signature expired'),
        })
        c.destroy()
      } finally {
        await late.close()
      }
    })

    it('computes the signatures of the AWS SigV4 test suite', () => {
      const base = {
        path: '/',
        headers: { host: 'example.amazonaws.com', 'x-amz-date': '20150830T123600Z' },
        signedHeaders: ['host', 'x-amz-date'],
        payloadHash: createHash('sha256').update('').digest('hex'),
        amzDate: '20150830T123600Z',
        region: 'us-east-1',
        service: 'service',
        secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
      }
      // get-vanilla, get-vanilla-query-order-key-case, post-vanilla.
      expect(computeSigV4Signature({ ...base, method: 'GET', query: '' })).toBe(
        '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
      )
      expect(
        computeSigV4Signature({ ...base, method: 'GET', query: 'Param2=value2&Param1=value1' }),
      ).toBe('b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500')
      expect(computeSigV4Signature({ ...base, method: 'POST', query: '' })).toBe(
        '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b',
      )
    })
  })

  describe('the emulator on the wire', () => {
    it('resolves key ids, ARNs, alias names and alias ARNs; decrypts without KeyId', async () => {
      const create = await admin.send(new CreateKeyCommand({ Description: 'wire' }))
      const meta = create.KeyMetadata!
      expect(meta.Arn).toBe(`arn:aws:kms:${emu.region}:${emu.accountId}:key/${meta.KeyId}`)
      expect(meta.KeyState).toBe('Enabled')
      expect(meta.CreationDate).toBeInstanceOf(Date)
      await admin.send(new CreateAliasCommand({ AliasName: 'alias/wire', TargetKeyId: meta.KeyId }))
      await expect(
        admin.send(new CreateAliasCommand({ AliasName: 'alias/wire', TargetKeyId: meta.KeyId })),
      ).rejects.toMatchObject({ name: 'AlreadyExistsException' })
      for (const keyId of [
        meta.KeyId!,
        meta.Arn!,
        'alias/wire',
        `arn:aws:kms:${emu.region}:${emu.accountId}:alias/wire`,
      ]) {
        const d = await admin.send(new DescribeKeyCommand({ KeyId: keyId }))
        expect(d.KeyMetadata?.Arn).toBe(meta.Arn)
      }
      await expect(
        admin.send(
          new DescribeKeyCommand({
            KeyId: `arn:aws:kms:eu-west-1:${emu.accountId}:key/${meta.KeyId}`,
          }),
        ),
      ).rejects.toMatchObject({ name: 'NotFoundException', $metadata: { httpStatusCode: 400 } })
      // Rotation calls take a key id or ARN only, as on AWS.
      await expect(
        admin.send(new RotateKeyOnDemandCommand({ KeyId: 'alias/wire' })),
      ).rejects.toMatchObject({ name: 'NotFoundException' })

      const enc = await admin.send(
        new EncryptCommand({
          KeyId: 'alias/wire',
          Plaintext: Buffer.from('wire'),
          EncryptionContext: { b: '2', a: '1' },
        }),
      )
      expect(enc.KeyId).toBe(meta.Arn)
      const dec = await admin.send(
        new DecryptCommand({
          CiphertextBlob: enc.CiphertextBlob,
          EncryptionContext: { a: '1', b: '2' },
        }),
      )
      expect(Buffer.from(dec.Plaintext!).toString()).toBe('wire')
      expect(dec.KeyId).toBe(meta.Arn)
      await expect(
        admin.send(
          new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { a: '1' } }),
        ),
      ).rejects.toMatchObject({
        name: 'InvalidCiphertextException',
        $metadata: { httpStatusCode: 400 },
      })
      const other = emu.createKey()
      await expect(
        admin.send(
          new DecryptCommand({
            CiphertextBlob: enc.CiphertextBlob,
            KeyId: other.arn,
            EncryptionContext: { a: '1', b: '2' },
          }),
        ),
      ).rejects.toMatchObject({ name: 'IncorrectKeyException' })
    })

    it('generates data keys by KeySpec or NumberOfBytes, not both', async () => {
      const { arn } = emu.createKey()
      const a = await admin.send(new GenerateDataKeyCommand({ KeyId: arn, KeySpec: 'AES_128' }))
      expect(a.Plaintext).toHaveLength(16)
      const b = await admin.send(new GenerateDataKeyCommand({ KeyId: arn, NumberOfBytes: 64 }))
      expect(b.Plaintext).toHaveLength(64)
      const back = await admin.send(
        new DecryptCommand({ CiphertextBlob: b.CiphertextBlob, KeyId: arn }),
      )
      expect(Buffer.from(back.Plaintext!)).toEqual(Buffer.from(b.Plaintext!))
      await expect(
        admin.send(
          new GenerateDataKeyCommand({ KeyId: arn, KeySpec: 'AES_256', NumberOfBytes: 32 }),
        ),
      ).rejects.toMatchObject({ name: 'ValidationException', $metadata: { httpStatusCode: 400 } })
    })

    it('answers injected faults as KMS does: 500 KMSInternalException, 400 ThrottlingException, reset connections', async () => {
      const { arn } = emu.createKey()
      emu.faults.reset().failNext(1, 'unavailable').failNext(1, 'throttle')
      try {
        await expect(admin.send(new DescribeKeyCommand({ KeyId: arn }))).rejects.toMatchObject({
          name: 'KMSInternalException',
          $metadata: { httpStatusCode: 500 },
        })
        await expect(admin.send(new DescribeKeyCommand({ KeyId: arn }))).rejects.toMatchObject({
          name: 'ThrottlingException',
          $metadata: { httpStatusCode: 400 },
        })
        emu.faults.setOutage(true)
        await expect(admin.send(new DescribeKeyCommand({ KeyId: arn }))).rejects.toMatchObject({
          code: 'ECONNRESET',
        })
      } finally {
        emu.faults.reset()
      }
    })
  })
})
