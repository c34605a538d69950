/**
 * Our AWS KMS emulator driven by a client we did not write: Debian's `awscli`
 * (botocore's own SigV4 signer, serializer and parser), `aws kms ...
 * --endpoint-url`, for every emulator action the installed CLI knows. Where
 * the CLI and the emulator disagree, the CLI is right.
 *
 * `.ci/run` installs the `awscli` package when `aws` is absent; with CI=true
 * a missing CLI fails this file instead of skipping it.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import {
  DescribeKeyCommand,
  DisableKeyCommand,
  KMSClient,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AwsKmsProvider, EncryptedData } from '../../../src/kms/index.js'
import {
  AWS_KMS_EMULATOR_ACTIONS,
  type AwsKmsEmulatorAction,
} from '../../../src/kms/testing/aws/actions.js'
import { type AwsKmsEmulator, startAwsKmsEmulator } from '../../../src/kms/testing/aws-emulator.js'
import { IN_CI } from '../../helpers/services.js'

const run = promisify(execFile)

/** Debian's package installs /usr/bin/aws; FRAISEQL_AWS_CLI points elsewhere. */
const CLI = process.env.FRAISEQL_AWS_CLI ?? (existsSync('/usr/bin/aws') ? '/usr/bin/aws' : 'aws')

const home = mkdtempSync(join(tmpdir(), 'fsl-awscli-'))
// CLI v2 prints timestamps as ISO 8601 by default, v1 as the service sent
// them (epoch seconds): the same setting for both, so the tests below check
// that botocore parsed the emulator's timestamps, whichever CLI is installed.
writeFileSync(join(home, 'config'), '[default]\ncli_timestamp_format = iso8601\n')

/** Only what the CLI needs: no profile, no instance metadata, no pager; the config file above. */
function cliEnv(credentials: {
  accessKeyId: string
  secretAccessKey: string
  sessionToken?: string
}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    AWS_CONFIG_FILE: join(home, 'config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'credentials'),
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    ...(credentials.sessionToken === undefined
      ? {}
      : { AWS_SESSION_TOKEN: credentials.sessionToken }),
    AWS_DEFAULT_REGION: 'eu-west-3',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_MAX_ATTEMPTS: '1',
    AWS_PAGER: '',
    LC_ALL: 'C.UTF-8',
  }
}

/** The kms subcommands the installed CLI knows, from its own "Invalid choice" list. */
async function cliOperations(): Promise<Set<string> | undefined> {
  try {
    await run(CLI, ['kms', 'no-such-operation'], {
      env: cliEnv({ accessKeyId: 'x', secretAccessKey: 'y' }),
      timeout: 20_000,
    })
  } catch (err) {
    const e = err as { code?: unknown; stderr?: string }
    if (e.code === 'ENOENT') return undefined
    const list = e.stderr?.split('valid choices are:')[1]
    if (list !== undefined) return new Set(list.match(/[a-z0-9]+(?:-[a-z0-9]+)*/g) ?? [])
    throw err
  }
  throw new Error(`${CLI} accepted an unknown kms operation`)
}

const kebab = (action: string) => action.replace(/(?<!^)([A-Z])/g, '-$1').toLowerCase()

const operations = await cliOperations()
if (operations === undefined && IN_CI) {
  throw new Error(`CI=true but the AWS CLI (${CLI}) is not installed: .ci/run installs awscli`)
}
if (operations === undefined) {
  console.warn(
    `[tests] the AWS CLI (${CLI}) is not installed: the awscli suite is skipped (CI=true makes this a failure).`,
  )
}

// biome-ignore lint/suspicious/noExplicitAny: the CLI's JSON output, checked field by field below
type Json = Record<string, any>

describe.runIf(operations !== undefined)('AWS KMS emulator driven by the AWS CLI', () => {
  let emu: AwsKmsEmulator
  let env: NodeJS.ProcessEnv
  const dir = mkdtempSync(join(tmpdir(), 'fsl-awscli-data-'))

  /** One `aws kms` call; its JSON output (or `{}` for operations that print nothing). */
  async function aws(...args: string[]): Promise<Json> {
    const { stdout } = await run(
      CLI,
      ['kms', ...args, '--endpoint-url', emu.endpoint, '--output', 'json'],
      { env, timeout: 20_000 },
    )
    return stdout.trim() === '' ? {} : (JSON.parse(stdout) as Json)
  }

  /** The CLI's error output (stderr) of a call that must fail. */
  async function awsFails(...args: string[]): Promise<string> {
    try {
      await aws(...args)
    } catch (err) {
      return String((err as { stderr?: string }).stderr)
    }
    throw new Error(`aws kms ${args[0]} succeeded`)
  }

  function file(name: string, bytes: Uint8Array | string): string {
    const path = join(dir, name)
    writeFileSync(path, bytes)
    return `fileb://${path}`
  }

  const blob = (b64: string) =>
    file(`${randomBytes(6).toString('hex')}.bin`, Buffer.from(b64, 'base64'))

  let kms: AwsKmsProvider
  let admin: KMSClient
  /** Our provider decrypts a blob the CLI got from KMS (base64, as the CLI prints it). */
  function unwrap(arn: string, b64: string, context: Record<string, string> = {}) {
    return kms.decrypt(
      new EncryptedData({
        ciphertext: Buffer.from(b64, 'base64'),
        keyReference: kms.reference(arn),
        algorithm: 'SYMMETRIC_DEFAULT',
        encryptedAt: new Date(0),
        context,
      }),
    )
  }

  async function keyMeta(keyId: string): Promise<Json> {
    return (await admin.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata as Json
  }

  beforeAll(async () => {
    const credentials = {
      accessKeyId: `ASIA${randomBytes(8).toString('hex').toUpperCase()}`,
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: randomBytes(40).toString('base64'),
    }
    emu = await startAwsKmsEmulator({ region: 'eu-west-3', credentials })
    env = cliEnv(credentials)
    kms = new AwsKmsProvider({ region: emu.region, endpoint: emu.endpoint, credentials })
    admin = new KMSClient({
      region: emu.region,
      endpoint: emu.endpoint,
      credentials: { ...credentials },
      maxAttempts: 1,
    })
  })
  afterAll(async () => {
    await kms?.close()
    admin?.destroy()
    await emu?.close()
  })

  // One CLI call per scenario where possible (each costs a Python start-up);
  // state is set up and checked in-process, through the emulator and the SDK.
  const scenarios: Record<AwsKmsEmulatorAction, () => Promise<void>> = {
    async CreateKey() {
      const meta = (await aws('create-key', '--description', 'awscli')).KeyMetadata
      expect(meta.Arn).toBe(`arn:aws:kms:eu-west-3:${emu.accountId}:key/${meta.KeyId}`)
      expect(await keyMeta(meta.KeyId)).toMatchObject({
        KeyState: 'Enabled',
        Description: 'awscli',
      })
    },
    async DescribeKey() {
      const { keyId, arn } = emu.createKey({ description: 'd' })
      const meta = (await aws('describe-key', '--key-id', arn)).KeyMetadata
      expect(meta).toMatchObject({
        KeyId: keyId,
        Arn: arn,
        KeyUsage: 'ENCRYPT_DECRYPT',
        Enabled: true,
      })
      // botocore parsed the epoch-seconds timestamp into its own ISO form.
      expect(Math.abs(Date.parse(meta.CreationDate) - Date.now())).toBeLessThan(3_600_000)
    },
    async CreateAlias() {
      const { keyId } = emu.createKey()
      await aws('create-alias', '--alias-name', 'alias/cli-create', '--target-key-id', keyId)
      expect((await keyMeta('alias/cli-create')).KeyId).toBe(keyId)
    },
    async UpdateAlias() {
      const a = emu.createKey()
      const b = emu.createKey()
      emu.createAlias('alias/cli-update', a.keyId)
      await aws('update-alias', '--alias-name', 'alias/cli-update', '--target-key-id', b.keyId)
      expect((await keyMeta('alias/cli-update')).KeyId).toBe(b.keyId)
    },
    async DeleteAlias() {
      emu.createAlias('alias/cli-delete', emu.createKey().keyId)
      await aws('delete-alias', '--alias-name', 'alias/cli-delete')
      expect(await awsFails('delete-alias', '--alias-name', 'alias/cli-delete')).toContain(
        'NotFoundException',
      )
    },
    async ListAliases() {
      const { keyId } = emu.createKey()
      emu.createAlias('alias/cli-list-a', keyId)
      emu.createAlias('alias/cli-list-b', keyId)
      // --page-size 1: the CLI follows NextMarker itself until Truncated is false.
      const mine = await aws('list-aliases', '--key-id', keyId, '--page-size', '1')
      expect(mine.Aliases.map((a: Json) => a.AliasName)).toEqual([
        'alias/cli-list-a',
        'alias/cli-list-b',
      ])
      expect(mine.Aliases[0]).toMatchObject({
        TargetKeyId: keyId,
        AliasArn: `arn:aws:kms:eu-west-3:${emu.accountId}:alias/cli-list-a`,
      })
    },
    async ListKeys() {
      const { keyId, arn } = emu.createKey()
      const paged = await aws('list-keys', '--page-size', '2')
      expect(paged.Keys).toContainEqual({ KeyId: keyId, KeyArn: arn })
      expect(new Set(paged.Keys.map((k: Json) => k.KeyId)).size).toBe(paged.Keys.length)
    },
    async Encrypt() {
      const { arn } = emu.createKey()
      const out = await aws(
        'encrypt',
        '--key-id',
        arn,
        '--plaintext',
        file('plain.txt', 'from the cli'),
        '--encryption-context',
        'tenant=acme,table=orders',
      )
      expect(out).toMatchObject({ KeyId: arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' })
      // Our provider reads what the CLI wrote.
      const back = await unwrap(arn, out.CiphertextBlob, { tenant: 'acme', table: 'orders' })
      expect(Buffer.from(back).toString()).toBe('from the cli')
    },
    async Decrypt() {
      const { arn } = emu.createKey()
      const sealed = await kms.encrypt('round trip', arn, { tenant: 'acme' })
      const b64 = Buffer.from(sealed.ciphertext).toString('base64')
      const out = await aws(
        'decrypt',
        '--ciphertext-blob',
        blob(b64),
        '--encryption-context',
        'tenant=acme',
      )
      expect(out.KeyId).toBe(arn)
      expect(Buffer.from(out.Plaintext, 'base64').toString()).toBe('round trip')
      expect(
        await awsFails(
          'decrypt',
          '--key-id',
          arn,
          '--ciphertext-blob',
          blob(b64),
          '--encryption-context',
          'tenant=evil',
        ),
      ).toContain('InvalidCiphertextException')
    },
    async GenerateDataKey() {
      const { arn } = emu.createKey()
      const out = await aws('generate-data-key', '--key-id', arn, '--number-of-bytes', '48')
      const plaintext = Buffer.from(out.Plaintext, 'base64')
      expect(plaintext).toHaveLength(48)
      const back = await unwrap(arn, out.CiphertextBlob)
      expect(Buffer.from(back)).toEqual(plaintext)
    },
    async GenerateDataKeyWithoutPlaintext() {
      const { arn } = emu.createKey()
      const out = await aws(
        'generate-data-key-without-plaintext',
        '--key-id',
        arn,
        '--key-spec',
        'AES_128',
        '--encryption-context',
        'purpose=dek',
      )
      expect(out.Plaintext).toBeUndefined()
      const back = await unwrap(arn, out.CiphertextBlob, { purpose: 'dek' })
      expect(back).toHaveLength(16)
    },
    async GenerateRandom() {
      const out = await aws('generate-random', '--number-of-bytes', '64')
      expect(Buffer.from(out.Plaintext, 'base64')).toHaveLength(64)
    },
    async ReEncrypt() {
      const a = emu.createKey()
      const b = emu.createKey()
      const sealed = await kms.encrypt('moved', a.arn, { k: '1' })
      const moved = await aws(
        're-encrypt',
        '--ciphertext-blob',
        blob(Buffer.from(sealed.ciphertext).toString('base64')),
        '--source-encryption-context',
        'k=1',
        '--destination-key-id',
        b.arn,
        '--destination-encryption-context',
        'k=2',
      )
      expect(moved).toMatchObject({ SourceKeyId: a.arn, KeyId: b.arn })
      const back = await unwrap(b.arn, moved.CiphertextBlob, { k: '2' })
      expect(Buffer.from(back).toString()).toBe('moved')
    },
    async EnableKeyRotation() {
      const { keyId } = emu.createKey()
      await aws('enable-key-rotation', '--key-id', keyId)
      expect((await kms.getRotationPolicy(keyId)).enabled).toBe(true)
    },
    async DisableKeyRotation() {
      const { keyId } = emu.createKey()
      await kms.enableRotation(keyId, 90)
      await aws('disable-key-rotation', '--key-id', keyId)
      expect((await kms.getRotationPolicy(keyId)).enabled).toBe(false)
    },
    async GetKeyRotationStatus() {
      const { keyId } = emu.createKey()
      await kms.enableRotation(keyId, 120)
      const status = await aws('get-key-rotation-status', '--key-id', keyId)
      expect(status.KeyRotationEnabled).toBe(true)
    },
    async RotateKeyOnDemand() {
      const { keyId } = emu.createKey()
      await aws('rotate-key-on-demand', '--key-id', keyId)
      expect(emu.rotations(keyId)).toHaveLength(1)
    },
    async ListKeyRotations() {
      const { keyId } = emu.createKey()
      await kms.rotateKey(keyId)
      const out = await aws('list-key-rotations', '--key-id', keyId)
      expect(out.Rotations).toHaveLength(1)
      expect(out.Rotations[0]).toMatchObject({ RotationType: 'ON_DEMAND' })
    },
    async DisableKey() {
      const { keyId } = emu.createKey()
      await aws('disable-key', '--key-id', keyId)
      expect((await keyMeta(keyId)).KeyState).toBe('Disabled')
    },
    async EnableKey() {
      const { keyId } = emu.createKey()
      await kms.encrypt('x', keyId)
      await admin.send(new DisableKeyCommand({ KeyId: keyId }))
      await aws('enable-key', '--key-id', keyId)
      expect((await keyMeta(keyId)).KeyState).toBe('Enabled')
    },
    async ScheduleKeyDeletion() {
      const { keyId, arn } = emu.createKey()
      const out = await aws(
        'schedule-key-deletion',
        '--key-id',
        keyId,
        '--pending-window-in-days',
        '7',
      )
      expect(out).toMatchObject({ KeyId: arn, KeyState: 'PendingDeletion', PendingWindowInDays: 7 })
      // botocore parsed DeletionDate (epoch seconds) as a timestamp.
      expect(Date.parse(out.DeletionDate)).toBeGreaterThan(Date.now())
    },
    async CancelKeyDeletion() {
      const { keyId } = emu.createKey()
      await admin.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }))
      await aws('cancel-key-deletion', '--key-id', keyId)
      expect((await keyMeta(keyId)).KeyState).toBe('Disabled')
    },
  }

  const supported = AWS_KMS_EMULATOR_ACTIONS.filter((a) => operations?.has(kebab(a)))

  it('the CLI knows most of what the emulator serves (a sanity check of the parsing)', () => {
    for (const core of ['Encrypt', 'Decrypt', 'GenerateDataKey', 'ReEncrypt', 'ListKeys'])
      expect(supported).toContain(core)
  })

  for (const action of supported) {
    it(`aws kms ${kebab(action)}`, scenarios[action], 60_000)
  }

  it('refuses the CLI signing with a wrong secret, as AWS does', async () => {
    const wrong = cliEnv({ accessKeyId: emu.credentials.accessKeyId, secretAccessKey: 'wrong' })
    const err = await run(CLI, ['kms', 'list-keys', '--endpoint-url', emu.endpoint], {
      env: { ...wrong, AWS_SESSION_TOKEN: env.AWS_SESSION_TOKEN },
      timeout: 20_000,
    }).catch((e: { stderr?: string }) => String(e.stderr))
    expect(err).toContain('InvalidSignatureException')
  })
})
