import { execFile } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { inspect, promisify } from 'node:util'
import {
  DisableKeyCommand,
  DisableKeyRotationCommand,
  EnableKeyCommand,
  KMSClient,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  DecryptionError,
  EncryptedData,
  KeyDisabledError,
  KeyNotFoundError,
  KeyRotationError,
  KmsAccessDeniedError,
  KmsError,
  type KmsOperation,
  ProviderConnectionError,
} from '../../src/kms/index.js'
import { AwsKmsProvider, type AwsKmsProviderOptions } from '../../src/kms/providers/aws.js'
import type { AwsEmulatorCredentials } from '../../src/kms/testing/aws/sigv4.js'
import { type AwsKmsEmulator, startAwsKmsEmulator } from '../../src/kms/testing/aws-emulator.js'
import { describeKmsProviderContract } from '../../src/kms/testing/index.js'
import { rejection } from '../helpers/rejection.js'
import { awsContractSubject, FAST, temporaryCredentials } from './aws-harness.js'

// ---------------------------------------------------------------------------
// The contract suite, on the emulator and (when configured) on AWS itself.

describeKmsProviderContract(
  'AwsKmsProvider (emulator)',
  () =>
    awsContractSubject((emulator, credentials, sleep) => ({
      provider: new AwsKmsProvider({
        region: emulator.region,
        endpoint: emulator.endpoint,
        credentials,
        ...FAST,
        sleep,
      }),
    })),
  { faults: true, kind: 'aws' },
  { describe, it, expect, afterAll },
)

const LIVE_KEY = process.env.FRAISEQL_LIVE_AWS_KEY_ID
const LIVE_REGION = process.env.AWS_REGION
if (LIVE_KEY !== undefined && LIVE_KEY !== '' && LIVE_REGION !== undefined && LIVE_REGION !== '') {
  // Rotation stays off: AWS allows a key only a few on-demand rotations in its lifetime.
  describeKmsProviderContract(
    'AwsKmsProvider (live AWS KMS)',
    async () => {
      const provider = new AwsKmsProvider({ region: LIVE_REGION, timeoutMs: 15_000 })
      return {
        provider,
        keyId: LIVE_KEY,
        missingKeyId: randomUUID(),
        close: () => provider.close(),
      }
    },
    { faults: false, rotation: false, kind: 'aws' },
    { describe, it, expect, afterAll },
  )
} else {
  console.info(
    'AWS KMS live mode off: set FRAISEQL_LIVE_AWS_KEY_ID (a symmetric key id, ARN or alias) and AWS_REGION, with credentials in the AWS SDK default chain, to run the contract suite against AWS KMS',
  )
}

// ---------------------------------------------------------------------------

/** Everything an error exposes, hidden properties and causes included. */
function everything(err: unknown): string {
  return [
    inspect(err, { showHidden: true, depth: null, getters: true }),
    JSON.stringify(err),
    String((err as Error).stack),
    JSON.stringify((err as Error).cause ?? null),
  ].join('\n')
}

describe('AwsKmsProvider on the emulator', () => {
  let emu: AwsKmsEmulator
  let creds: Required<AwsEmulatorCredentials>
  let admin: KMSClient
  const opened: Array<AwsKmsProvider | KMSClient> = []

  const provider = (overrides: Partial<AwsKmsProviderOptions> = {}): AwsKmsProvider => {
    const p = new AwsKmsProvider({
      region: emu.region,
      endpoint: emu.endpoint,
      credentials: creds,
      ...FAST,
      ...overrides,
    })
    opened.push(p)
    return p
  }
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
  const count = (action: string) => emu.calls.count(action)

  beforeAll(async () => {
    creds = temporaryCredentials()
    emu = await startAwsKmsEmulator({ credentials: creds, onDemandRotationLimit: 3 })
    admin = client()
  })
  afterAll(async () => {
    for (const o of opened) {
      if (o instanceof AwsKmsProvider) await o.close()
      else o.destroy()
    }
    await emu.close()
  })

  describe('Decrypt names the key', () => {
    it('sends the reference key ARN as KeyId on every Decrypt, data keys included', async () => {
      const kms = provider()
      const { arn } = emu.createKey()
      const start = emu.requests.length
      const enc = await kms.encrypt('hello', arn, { tenant: 't1' })
      expect(Buffer.from(await kms.decrypt(enc)).toString()).toBe('hello')
      const pair = await kms.generateDataKey(arn, { tenant: 't1' })
      expect(Buffer.from(await kms.decrypt(pair.toEncryptedData()))).toEqual(
        Buffer.from(pair.plaintextKey),
      )
      const decrypts = emu.requests.slice(start).filter((r) => r.action === 'Decrypt')
      expect(decrypts).toHaveLength(2)
      for (const r of decrypts) {
        expect(r.keyId).toBe(arn)
        expect(r.fields).toContain('KeyId')
        expect(r.fields).toContain('EncryptionContext')
      }
    })

    it('omits an empty EncryptionContext from the request', async () => {
      const kms = provider()
      const { arn } = emu.createKey()
      const start = emu.requests.length
      await kms.decrypt(await kms.encrypt('x', arn))
      for (const r of emu.requests.slice(start)) expect(r.fields).not.toContain('EncryptionContext')
    })

    it('refuses a blob of another key presented under this key (IncorrectKeyException) as DecryptionError', async () => {
      const kms = provider()
      const a = emu.createKey()
      const b = emu.createKey()
      const underB = await kms.encrypt('secret', b.arn)
      const forged = new EncryptedData({
        ciphertext: underB.ciphertext,
        keyReference: kms.reference(a.arn),
        algorithm: underB.algorithm,
        encryptedAt: underB.encryptedAt,
      })
      const before = count('Decrypt')
      const err = await rejection(kms.decrypt(forged))
      expect(err).toBeInstanceOf(DecryptionError)
      expect((err as DecryptionError).cause).toBeUndefined()
      expect(count('Decrypt') - before).toBe(1)
    })
  })

  describe('aliases', () => {
    it('records the canonical ARN and the alias, and still decrypts after the alias is re-pointed', async () => {
      const kms = provider()
      const a = emu.createKey()
      const b = emu.createKey()
      emu.createAlias('alias/orders', a.arn)

      const enc = await kms.encrypt('order 66', 'alias/orders', { tenant: 't1' })
      expect(enc.keyReference.keyId).toBe(a.arn)
      expect(enc.keyReference.keyAlias).toBe('alias/orders')
      const pair = await kms.generateDataKey('alias/orders')
      expect(pair.keyReference.keyId).toBe(a.arn)
      expect(pair.keyReference.keyAlias).toBe('alias/orders')

      emu.updateAlias('alias/orders', b.arn)
      const stored = EncryptedData.fromJSON(JSON.parse(JSON.stringify(enc)))
      expect(Buffer.from(await kms.decrypt(stored)).toString()).toBe('order 66')
      expect(Buffer.from(await kms.decrypt(pair.toEncryptedData()))).toEqual(
        Buffer.from(pair.plaintextKey),
      )
      const after = await kms.encrypt('order 67', 'alias/orders')
      expect(after.keyReference.keyId).toBe(b.arn)
    })

    it('accepts an alias ARN and reports the key behind an alias', async () => {
      const kms = provider()
      const { arn } = emu.createKey()
      emu.createAlias('alias/billing', arn)
      const aliasArn = `arn:aws:kms:${emu.region}:${emu.accountId}:alias/billing`
      const enc = await kms.encrypt('x', aliasArn)
      expect(enc.keyReference.keyId).toBe(arn)
      expect(enc.keyReference.keyAlias).toBe(aliasArn)
      const info = await kms.getKeyInfo('alias/billing')
      expect(info.reference.keyId).toBe(arn)
      expect(info.reference.keyAlias).toBe('alias/billing')
      expect(info.state).toBe('enabled')
      expect(info.reference.createdAt).toBeInstanceOf(Date)
      expect(info.currentVersion).toBeNull()
    })

    it('an unknown alias is KeyNotFoundError', async () => {
      const err = await rejection(provider().encrypt('x', 'alias/nothing-here'))
      expect(err).toBeInstanceOf(KeyNotFoundError)
      expect((err as KmsError).cause).toEqual({
        service: 'aws-kms',
        code: 'NotFoundException',
        status: 400,
      })
    })
  })

  describe('SigV4', () => {
    const leaked: unknown[] = []

    it('a client with the wrong secret gets KmsAccessDeniedError, once, not retried', async () => {
      const { arn } = emu.createKey()
      const wrong = { ...creds, secretAccessKey: randomBytes(30).toString('base64') }
      const kms = provider({ credentials: wrong })
      const before = count('Encrypt')
      const err = await rejection(kms.encrypt('x', arn))
      leaked.push(err)
      expect(err).toBeInstanceOf(KmsAccessDeniedError)
      expect((err as KmsError).cause).toEqual({
        service: 'aws-kms',
        code: 'InvalidSignatureException',
        status: 400,
      })
      expect(count('Encrypt') - before).toBe(1)
      const err2 = await rejection(kms.decrypt(await provider().encrypt('x', arn)))
      leaked.push(err2)
      expect(err2).toBeInstanceOf(KmsAccessDeniedError)
    })

    it('an unknown access key, or a wrong or missing session token, is KmsAccessDeniedError', async () => {
      const { arn } = emu.createKey()
      const cases: AwsEmulatorCredentials[] = [
        { ...creds, accessKeyId: 'AKIAUNKNOWNKEY000000' },
        { ...creds, sessionToken: `${creds.sessionToken}x` },
        { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey },
      ]
      for (const credentials of cases) {
        const err = await rejection(provider({ credentials }).getKeyInfo(arn))
        leaked.push(err)
        expect(err).toBeInstanceOf(KmsAccessDeniedError)
        expect((err as KmsError).cause).toMatchObject({ code: 'UnrecognizedClientException' })
      }
    })

    it('a client signing for another region is refused', async () => {
      const err = await rejection(
        provider({ region: 'eu-west-3' }).encrypt('x', emu.createKey().arn),
      )
      leaked.push(err)
      expect(err).toBeInstanceOf(KmsAccessDeniedError)
    })

    it('no error holds the secret key, the session token or the Authorization header', async () => {
      // Also the errors of ordinary failures, whose SDK errors carried the signed request.
      const kms = provider()
      leaked.push(await rejection(kms.getKeyInfo(randomUUID())))
      const enc = await kms.encrypt('x', emu.createKey().arn, { a: 'b' })
      leaked.push(await rejection(kms.decrypt(enc, { a: 'c' })))
      emu.faults.reset().failNext(4, 'throttle')
      leaked.push(await rejection(kms.encrypt('x', enc.keyReference.keyId)))
      emu.faults.reset()
      expect(leaked.length).toBeGreaterThanOrEqual(9)
      for (const err of leaked) {
        expect(err).toBeInstanceOf(KmsError)
        const text = everything(err)
        for (const secret of [
          creds.secretAccessKey,
          creds.sessionToken,
          creds.accessKeyId,
          'AWS4-HMAC-SHA256',
          'Signature=',
          'x-amz-security-token',
        ]) {
          expect(text).not.toContain(secret)
        }
      }
    })
  })

  describe('key states', () => {
    it('a disabled key is KeyDisabledError for encrypt, decrypt and data keys, without retries', async () => {
      const kms = provider()
      const { arn } = emu.createKey()
      const enc = await kms.encrypt('x', arn)
      await admin.send(new DisableKeyCommand({ KeyId: arn }))
      const before = count('Encrypt')
      const err = await rejection(kms.encrypt('x', arn))
      expect(err).toBeInstanceOf(KeyDisabledError)
      expect((err as KmsError).cause).toMatchObject({ code: 'DisabledException' })
      expect(count('Encrypt') - before).toBe(1)
      expect(await rejection(kms.decrypt(enc))).toBeInstanceOf(KeyDisabledError)
      expect(await rejection(kms.generateDataKey(arn))).toBeInstanceOf(KeyDisabledError)
      expect(await rejection(kms.rotateKey(arn))).toBeInstanceOf(KeyDisabledError)
      expect((await kms.getKeyInfo(arn)).state).toBe('disabled')

      await admin.send(new EnableKeyCommand({ KeyId: arn }))
      expect(Buffer.from(await kms.decrypt(enc)).toString()).toBe('x')
      expect((await kms.getKeyInfo(arn)).state).toBe('enabled')
    })

    it('a key pending deletion is KeyDisabledError (KMSInvalidStateException), and described as pending_deletion', async () => {
      const kms = provider()
      const { arn } = emu.createKey()
      const enc = await kms.encrypt('x', arn)
      const scheduled = await admin.send(
        new ScheduleKeyDeletionCommand({ KeyId: arn, PendingWindowInDays: 7 }),
      )
      expect(scheduled.KeyState).toBe('PendingDeletion')
      expect(scheduled.DeletionDate).toBeInstanceOf(Date)
      const err = await rejection(kms.encrypt('x', arn))
      expect(err).toBeInstanceOf(KeyDisabledError)
      expect((err as KmsError).cause).toMatchObject({ code: 'KMSInvalidStateException' })
      expect(await rejection(kms.decrypt(enc))).toBeInstanceOf(KeyDisabledError)
      expect(await rejection(kms.getRotationPolicy(arn))).toBeInstanceOf(KeyDisabledError)
      expect((await kms.getKeyInfo(arn)).state).toBe('pending_deletion')
    })
  })

  describe('retries', () => {
    it("the SDK's own retries are off: one 500 means exactly 2 requests (ours retried once)", async () => {
      const kms = provider()
      const { arn } = emu.createKey()
      emu.faults.reset()
      emu.calls.reset()
      emu.faults.failNext(1, 'unavailable')
      await kms.encrypt('x', arn)
      expect(count('Encrypt')).toBe(2)

      emu.calls.reset()
      emu.faults.failNext(1, 'throttle')
      await kms.encrypt('x', arn)
      expect(count('Encrypt')).toBe(2)
    })

    it('with our retries off too, a 500 is one request and ProviderConnectionError("unavailable")', async () => {
      const kms = provider({ maxAttempts: 1 })
      const { arn } = emu.createKey()
      emu.faults.reset()
      emu.calls.reset()
      emu.faults.failNext(1, 'unavailable')
      const err = await rejection(kms.encrypt('x', arn))
      expect(err).toBeInstanceOf(ProviderConnectionError)
      expect((err as ProviderConnectionError).reason).toBe('unavailable')
      expect((err as KmsError).cause).toEqual({
        service: 'aws-kms',
        code: 'KMSInternalException',
        status: 500,
      })
      expect(count('Encrypt')).toBe(1)

      emu.faults.failNext(1, 'throttle')
      const throttled = await rejection(kms.encrypt('x', arn))
      expect((throttled as ProviderConnectionError).reason).toBe('throttled')
      expect(count('Encrypt')).toBe(2)
    })

    it('an outage is a network failure, retried, then ProviderConnectionError("network")', async () => {
      const kms = provider({ maxAttempts: 2 })
      const { arn } = emu.createKey()
      emu.faults.reset().setOutage(true)
      emu.calls.reset()
      try {
        const err = await rejection(kms.encrypt('x', arn))
        expect(err).toBeInstanceOf(ProviderConnectionError)
        expect((err as ProviderConnectionError).reason).toBe('network')
        expect(count('Encrypt')).toBe(2)
      } finally {
        emu.faults.reset()
      }
    })
  })

  describe('rotation', () => {
    it('RotateKeyOnDemand past the per-key limit is KeyRotationError, with one request and no retry', async () => {
      const kms = provider()
      const { arn } = emu.createKey()
      const before = await kms.encrypt('before', arn)
      for (let i = 0; i < 3; i++) {
        const info = await kms.rotateKey(arn)
        expect(info.reference.keyId).toBe(arn)
        expect(info.state).toBe('enabled')
      }
      emu.calls.reset()
      const err = await rejection(kms.rotateKey(arn))
      expect(err).toBeInstanceOf(KeyRotationError)
      expect((err as KmsError).retryable).toBe(false)
      expect((err as KmsError).cause).toEqual({
        service: 'aws-kms',
        code: 'LimitExceededException',
        status: 400,
      })
      expect(count('RotateKeyOnDemand')).toBe(1)
      expect(Buffer.from(await kms.decrypt(before)).toString()).toBe('before')
    })

    it('rotates a key addressed by alias (RotateKeyOnDemand gets the ARN)', async () => {
      const kms = provider()
      const { arn } = emu.createKey()
      emu.createAlias('alias/rotating', arn)
      const start = emu.requests.length
      const info = await kms.rotateKey('alias/rotating')
      expect(info.reference.keyId).toBe(arn)
      expect(info.reference.keyAlias).toBe('alias/rotating')
      const rotate = emu.requests.slice(start).filter((r) => r.action === 'RotateKeyOnDemand')
      expect(rotate.map((r) => r.keyId)).toEqual([arn])
    })

    it('maps GetKeyRotationStatus, and enableRotation turns automatic rotation on', async () => {
      const kms = provider()
      const { arn } = emu.createKey()
      emu.createAlias('alias/auto', arn)
      expect(await kms.getRotationPolicy('alias/auto')).toEqual({
        enabled: false,
        rotationPeriodDays: null,
        lastRotation: null,
        nextRotation: null,
      })

      const start = emu.requests.length
      const policy = await kms.enableRotation('alias/auto', 180)
      expect(policy.enabled).toBe(true)
      expect(policy.rotationPeriodDays).toBe(180)
      expect(policy.lastRotation).toBeNull()
      const days = ((policy.nextRotation?.getTime() ?? 0) - Date.now()) / 86_400_000
      expect(days).toBeGreaterThan(179)
      expect(days).toBeLessThanOrEqual(180)
      // The rotation calls take a key id or ARN, never an alias.
      for (const r of emu.requests.slice(start)) {
        if (r.action !== 'DescribeKey') expect(r.keyId).toBe(arn)
      }

      await admin.send(new DisableKeyRotationCommand({ KeyId: arn }))
      expect(await kms.getRotationPolicy(arn)).toMatchObject({
        enabled: false,
        rotationPeriodDays: null,
      })
      expect((await kms.enableRotation(arn)).rotationPeriodDays).toBe(365)
    })

    it('enableRotation checks the period before any request, and maps a missing key', async () => {
      const kms = provider()
      const { arn } = emu.createKey()
      emu.calls.reset()
      for (const days of [30, 2561, 90.5]) {
        const err = await rejection(kms.enableRotation(arn, days))
        expect(err).toBeInstanceOf(KmsError)
        expect((err as Error).message).toContain('90 to 2560')
      }
      expect(emu.calls.count()).toBe(0)
      expect(await rejection(kms.enableRotation(randomUUID(), 90))).toBeInstanceOf(KeyNotFoundError)
    })
  })

  describe('limits and options', () => {
    it('rejects plaintext over 4096 bytes before any request', async () => {
      const kms = provider()
      const { arn } = emu.createKey()
      emu.calls.reset()
      const err = await rejection(kms.encrypt(new Uint8Array(4097), arn))
      expect(err).toBeInstanceOf(KmsError)
      expect((err as Error).message).toContain('4096')
      expect(emu.calls.count()).toBe(0)
      const max = await kms.encrypt(new Uint8Array(4096).fill(7), arn)
      expect(await kms.decrypt(max)).toHaveLength(4096)
    })

    it('requires a region (ERR_CONFIG_INVALID naming it) and validates the other options', () => {
      const invalid = (options: unknown, field: string) =>
        expect(() => new AwsKmsProvider(options as AwsKmsProviderOptions)).toThrow(
          expect.objectContaining({
            code: 'ERR_CONFIG_INVALID',
            message: expect.stringContaining(field),
          }),
        )
      invalid({}, 'region')
      invalid(undefined, 'region')
      invalid({ region: 'US East' }, 'region')
      invalid({ region: 'us-east-1', endpoint: 'ftp://127.0.0.1' }, 'endpoint')
      invalid({ region: 'us-east-1', credentials: { accessKeyId: 'AKIA' } }, 'credentials')
      invalid({ region: 'us-east-1', maxRetries: 3 }, 'maxRetries')
      invalid({ region: 'us-east-1', timeoutMs: 0 }, 'timeoutMs')
      const secret = randomBytes(20).toString('hex')
      expect(
        () =>
          new AwsKmsProvider({
            region: 'us-east-1',
            credentials: { accessKeyId: '', secretAccessKey: secret },
          }),
      ).toThrow(expect.not.objectContaining({ message: expect.stringContaining(secret) }))
      expect(new AwsKmsProvider({ region: 'eu-west-1', credentials: async () => creds }).name).toBe(
        'aws',
      )
      expect(new AwsKmsProvider({ region: 'eu-west-1', name: 'aws-eu' }).name).toBe('aws-eu')
    })

    it('uses credentials from a provider function', async () => {
      let asked = 0
      const kms = provider({
        credentials: async () => {
          asked++
          return creds
        },
      })
      const { arn } = emu.createKey()
      await kms.decrypt(await kms.encrypt('x', arn))
      expect(asked).toBeGreaterThanOrEqual(1)
    })
  })

  describe('error mapping', () => {
    class Probe extends AwsKmsProvider {
      map(error: unknown, operation: KmsOperation = 'encrypt'): KmsError {
        return this.mapError(error, operation)
      }
    }
    const probe = new Probe({
      region: 'us-east-1',
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    })
    const sdkError = (name: string, status?: number, extra: Record<string, unknown> = {}) =>
      Object.assign(new Error('from the service'), {
        name,
        ...(status === undefined ? {} : { $metadata: { httpStatusCode: status, attempts: 1 } }),
        ...extra,
      })

    it('maps every AWS error name the issue lists', () => {
      const cases: Array<
        [string, number | undefined, KmsOperation, new (...a: never[]) => KmsError, string?]
      > = [
        ['NotFoundException', 400, 'encrypt', KeyNotFoundError],
        ['InvalidArnException', 400, 'getKeyInfo', KeyNotFoundError],
        ['InvalidCiphertextException', 400, 'decrypt', DecryptionError],
        ['IncorrectKeyException', 400, 'decrypt', DecryptionError],
        ['DisabledException', 400, 'encrypt', KeyDisabledError],
        ['KMSInvalidStateException', 400, 'decrypt', KeyDisabledError],
        ['AccessDeniedException', 400, 'encrypt', KmsAccessDeniedError],
        ['UnrecognizedClientException', 400, 'encrypt', KmsAccessDeniedError],
        ['InvalidSignatureException', 400, 'encrypt', KmsAccessDeniedError],
        ['ExpiredTokenException', 400, 'encrypt', KmsAccessDeniedError],
        ['ThrottlingException', 400, 'encrypt', ProviderConnectionError, 'throttled'],
        ['LimitExceededException', 400, 'generateDataKey', ProviderConnectionError, 'throttled'],
        ['LimitExceededException', 400, 'rotateKey', KeyRotationError],
        ['ThrottlingException', 400, 'rotateKey', ProviderConnectionError, 'throttled'],
        ['KMSInternalException', 500, 'encrypt', ProviderConnectionError, 'unavailable'],
        ['KeyUnavailableException', 500, 'decrypt', ProviderConnectionError, 'unavailable'],
        ['DependencyTimeoutException', 503, 'encrypt', ProviderConnectionError, 'unavailable'],
        ['SyntaxError', 502, 'encrypt', ProviderConnectionError, 'unavailable'],
        ['Unknown', 504, 'encrypt', ProviderConnectionError, 'unavailable'],
        ['Unknown', 429, 'encrypt', ProviderConnectionError, 'throttled'],
        ['TimeoutError', undefined, 'encrypt', ProviderConnectionError, 'timeout'],
        ['ValidationException', 400, 'encrypt', KmsError],
      ]
      for (const [name, status, operation, type, reason] of cases) {
        const mapped = probe.map(sdkError(name, status), operation)
        expect(mapped, name).toBeInstanceOf(type)
        if (type === KmsError) expect(mapped.constructor).toBe(KmsError)
        if (reason !== undefined) expect((mapped as ProviderConnectionError).reason).toBe(reason)
        expect(mapped.retryable, name).toBe(type === ProviderConnectionError)
      }
      // node-http-handler names a reset socket "TimeoutError": the errno code wins.
      for (const name of ['Error', 'TimeoutError']) {
        const reset = probe.map(
          Object.assign(new Error('socket hang up'), { name, code: 'ECONNRESET' }),
        )
        expect(reset).toBeInstanceOf(ProviderConnectionError)
        expect((reset as ProviderConnectionError).reason).toBe('network')
        expect(reset.cause).toEqual({ service: 'aws-kms', code: 'ECONNRESET' })
      }
      const slow = probe.map(
        Object.assign(new Error('requestTimeout'), { name: 'TimeoutError', code: 'ETIMEDOUT' }),
      )
      expect((slow as ProviderConnectionError).reason).toBe('timeout')
    })

    it('keeps only the name and status of an SDK error, never its hidden $response', () => {
      const secret = randomBytes(30).toString('base64')
      const err = sdkError('AccessDeniedException', 400, { message: `denied for ${secret}` })
      Object.defineProperty(err, '$response', {
        enumerable: false,
        value: {
          body: {
            req: {
              headers: {
                authorization: `AWS4-HMAC-SHA256 Credential=AKIA/x, Signature=${secret}`,
                'x-amz-security-token': secret,
              },
            },
          },
        },
      })
      const mapped = probe.map(err)
      expect(mapped.cause).toEqual({
        service: 'aws-kms',
        code: 'AccessDeniedException',
        status: 400,
      })
      expect(everything(mapped)).not.toContain(secret)
      // A name that is not an identifier (it comes from the wire) is not copied.
      expect(probe.map(sdkError(`Bad ${secret}`, 400)).cause).toEqual({
        service: 'aws-kms',
        status: 400,
      })
    })
  })
})

describe('AwsKmsProvider without @aws-sdk/client-kms', () => {
  it('throws MissingDependencyError naming the package on first use (import and construction work)', async () => {
    // A child process whose module resolution cannot find the SDK, as on a
    // machine where it is not installed.
    const dir = mkdtempSync(join(tmpdir(), 'fsl-aws-'))
    writeFileSync(
      join(dir, 'hook.mjs'),
      `export async function resolve(specifier, context, next) {
  if (specifier === '@aws-sdk/client-kms' || specifier.startsWith('@aws-sdk/client-kms/')) {
    const err = new Error("Cannot find package '" + specifier + "'")
    err.code = 'ERR_MODULE_NOT_FOUND'
    throw err
  }
  return next(specifier, context)
}
`,
    )
    writeFileSync(
      join(dir, 'register.mjs'),
      `import { register } from 'node:module'\nregister('./hook.mjs', import.meta.url)\n`,
    )
    const providerFile = fileURLToPath(new URL('../../src/kms/providers/aws.ts', import.meta.url))
    const script = `
const { AwsKmsProvider } = await import(${JSON.stringify(providerFile)})
const kms = new AwsKmsProvider({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } })
try {
  await kms.encrypt('x', 'alias/app')
  console.log(JSON.stringify({ ok: true }))
} catch (err) {
  console.log(JSON.stringify({ name: err.name, code: err.code, packageName: err.packageName, message: err.message }))
}`
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        '--import',
        'tsx',
        '--import',
        join(dir, 'register.mjs'),
        '--input-type=module',
        '-e',
        script,
      ],
      { cwd: fileURLToPath(new URL('../..', import.meta.url)), timeout: 15_000 },
    )
    const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}')
    expect(result).toEqual({
      name: 'MissingDependencyError',
      code: 'ERR_DEPENDENCY_MISSING',
      packageName: '@aws-sdk/client-kms',
      message: expect.stringContaining('npm install @aws-sdk/client-kms'),
    })
  })
})
