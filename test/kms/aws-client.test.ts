/**
 * `AwsKmsProvider` with a `KMSClient` of the user's own (`client`): the
 * real SDK client, with the user's middleware, against the AWS emulator.
 */
import { randomUUID } from 'node:crypto'
import { DescribeKeyCommand, KMSClient, type KMSClientConfig } from '@aws-sdk/client-kms'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type AwsKmsClient,
  AwsKmsProvider,
  type AwsKmsProviderOptions,
  ProviderConnectionError,
} from '../../src/kms/index.js'
import {
  type AwsEmulatorCredentials,
  type AwsKmsEmulator,
  describeKmsProviderContract,
  startAwsKmsEmulator,
} from '../../src/kms/testing/index.js'
import { rejection } from '../helpers/rejection.js'
import { awsContractSubject, FAST, temporaryCredentials } from './aws-harness.js'

const ROUTE_HEADER = 'x-app-route'

/**
 * A KMSClient as a user configures one: their own settings and two
 * middlewares, one adding a header before signing (build step), one
 * recording what goes on the wire after signing (deserialize step).
 */
function userClient(
  emu: AwsKmsEmulator,
  credentials: AwsEmulatorCredentials,
  config: Partial<KMSClientConfig> = {},
  { sdkRetries = false } = {},
): { client: KMSClient; sent: Array<Record<string, string>> } {
  const settings: KMSClientConfig = {
    region: emu.region,
    endpoint: emu.endpoint,
    credentials: { ...credentials },
    maxAttempts: 1,
    ...config,
  }
  // The SDK's own default (3 attempts), as a client built without thinking of it has.
  if (sdkRetries) delete settings.maxAttempts
  const client = new KMSClient(settings)
  const sent: Array<Record<string, string>> = []
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers: Record<string, string> }
      request.headers[ROUTE_HEADER] = 'kms-via-proxy'
      return next(args)
    },
    { step: 'build', name: 'appRouteHeader' },
  )
  client.middlewareStack.add(
    (next) => async (args) => {
      sent.push({ ...(args.request as { headers: Record<string, string> }).headers })
      return next(args)
    },
    { step: 'deserialize', name: 'appRecorder' },
  )
  return { client, sent }
}

// The whole contract, faults included, through the injected client.
describeKmsProviderContract(
  'AwsKmsProvider (injected KMSClient, emulator)',
  () =>
    awsContractSubject((emulator, credentials, sleep) => {
      const { client } = userClient(emulator, credentials)
      return {
        provider: new AwsKmsProvider({ region: emulator.region, client, ...FAST, sleep }),
        release: () => client.destroy(),
      }
    }),
  { faults: true, kind: 'aws' },
  { describe, it, expect, afterAll },
)

describe('AwsKmsProvider with an injected KMSClient', () => {
  let emu: AwsKmsEmulator
  let creds: Required<AwsEmulatorCredentials>
  const clients: KMSClient[] = []
  const make = (config: Partial<KMSClientConfig> = {}, sdkRetries = false) => {
    const made = userClient(emu, creds, config, { sdkRetries })
    clients.push(made.client)
    return made
  }

  beforeAll(async () => {
    creds = temporaryCredentials()
    emu = await startAwsKmsEmulator({ credentials: creds })
  })
  afterAll(async () => {
    for (const c of clients) c.destroy()
    await emu.close()
  })

  it("sends every request through the user's client: its middleware runs and its header reaches KMS signed", async () => {
    const { client, sent } = make()
    const kms = new AwsKmsProvider({ region: emu.region, client, ...FAST })
    const { arn } = emu.createKey()
    const before = emu.requests.length
    const sealed = await kms.encrypt('through your client', arn, { tenant: 't1' })
    expect(Buffer.from(await kms.decrypt(sealed)).toString()).toBe('through your client')
    ;(await kms.generateDataKey(arn)).dispose()
    await kms.getKeyInfo(arn)
    await kms.getRotationPolicy(arn)
    const arrived = emu.requests.length - before
    expect(arrived).toBeGreaterThanOrEqual(5)
    // One recorded request per request the emulator authenticated (it checks SigV4).
    expect(sent).toHaveLength(arrived)
    for (const headers of sent) {
      expect(headers[ROUTE_HEADER]).toBe('kms-via-proxy')
      // Added before signing, so it is one of the signed headers.
      expect(headers.authorization).toMatch(/SignedHeaders=[^,]*x-app-route/)
    }
  })

  it('close() leaves an injected client open: it belongs to the caller', async () => {
    const { client } = make()
    const kms = new AwsKmsProvider({ region: emu.region, client, ...FAST })
    const { arn } = emu.createKey()
    await kms.encrypt('x', arn)
    await kms.close()
    const out = await client.send(new DescribeKeyCommand({ KeyId: arn }))
    expect(out.KeyMetadata?.Arn).toBe(arn)
    // And the provider still works through it.
    expect(Buffer.from(await kms.decrypt(await kms.encrypt('y', arn))).toString()).toBe('y')
  })

  it("the attempt's deadline still ends a call that hangs inside the user's client", async () => {
    const { client } = make()
    const kms = new AwsKmsProvider({ region: emu.region, client, ...FAST, maxAttempts: 1 })
    const { arn } = emu.createKey()
    emu.faults.reset().setLatency(60_000)
    try {
      const err = await rejection(kms.encrypt('x', arn))
      expect(err).toBeInstanceOf(ProviderConnectionError)
      expect(err).toMatchObject({ reason: 'timeout', code: 'ERR_KMS_PROVIDER_UNAVAILABLE' })
    } finally {
      emu.faults.reset()
    }
  })

  it("our retries stay the only layer: a client built with the SDK's own retries is refused before any request", async () => {
    const { client } = make({}, true)
    const kms = new AwsKmsProvider({ region: emu.region, client, ...FAST })
    const { arn } = emu.createKey()
    emu.calls.reset()
    const err = await rejection(kms.encrypt('x', arn))
    expect(err).toMatchObject({ code: 'ERR_CONFIG_INVALID', issues: [{ field: 'client' }] })
    expect((err as Error).message).toContain('maxAttempts 3')
    expect(emu.calls.count()).toBe(0)
  })

  it("refuses a client signing for another region than the provider's, before any request", async () => {
    const { client } = make({ region: 'eu-central-1' })
    const kms = new AwsKmsProvider({ region: emu.region, client, ...FAST })
    emu.calls.reset()
    const err = await rejection(kms.getKeyInfo(randomUUID()))
    expect(err).toMatchObject({ code: 'ERR_CONFIG_INVALID', issues: [{ field: 'region' }] })
    expect(emu.calls.count()).toBe(0)
  })

  it('refuses the connection options an injected client makes meaningless, naming the field', () => {
    const { client } = make()
    const invalid = (options: Record<string, unknown>, field: string) =>
      expect(
        () =>
          new AwsKmsProvider({
            region: emu.region,
            client,
            ...options,
          } as AwsKmsProviderOptions),
      ).toThrow(
        expect.objectContaining({
          code: 'ERR_CONFIG_INVALID',
          message: expect.stringContaining(`\`${field}\`: cannot be combined with client`),
        }),
      )
    invalid({ endpoint: emu.endpoint }, 'endpoint')
    invalid({ credentials: { ...creds } }, 'credentials')
    invalid({ credentials: async () => creds }, 'credentials')
    invalid({ connectTimeoutMs: 3000 }, 'connectTimeoutMs')
    const err = rejectionSync(
      () =>
        new AwsKmsProvider({
          region: emu.region,
          client,
          endpoint: emu.endpoint,
          credentials: { ...creds },
        }),
    )
    expect(err).toMatchObject({ issues: [{ field: 'endpoint' }, { field: 'credentials' }] })
    // No secret of the refused credentials in the error.
    expect(JSON.stringify(err)).not.toContain(creds.secretAccessKey)
    expect((err as Error).message).not.toContain(creds.secretAccessKey)
    for (const notAClient of [{}, { send: 'no' }, 42])
      expect(
        () =>
          new AwsKmsProvider({
            region: emu.region,
            client: notAClient as unknown as AwsKmsClient,
          }),
      ).toThrow(
        expect.objectContaining({
          code: 'ERR_CONFIG_INVALID',
          message: expect.stringContaining('`client`'),
        }),
      )
    // Everything else (our retry, deadline and naming options) combines with it.
    expect(
      new AwsKmsProvider({ region: emu.region, client, name: 'aws-own', timeoutMs: 500 }).name,
    ).toBe('aws-own')
  })

  it('a structural client of your own (send only, no config) works: the interface names only what is called', async () => {
    const { client: sdkClient } = make()
    const calls: string[] = []
    const own: AwsKmsClient = {
      send(command, options) {
        calls.push(command.constructor.name)
        return sdkClient.send(command as DescribeKeyCommand, options)
      },
    }
    const kms = new AwsKmsProvider({ region: emu.region, client: own, ...FAST })
    const { arn } = emu.createKey()
    const sealed = await kms.encrypt('own', arn)
    expect(Buffer.from(await kms.decrypt(sealed)).toString()).toBe('own')
    expect(calls).toEqual(['EncryptCommand', 'DecryptCommand'])
  })
})

function rejectionSync(f: () => unknown): unknown {
  try {
    f()
  } catch (err) {
    return err
  }
  throw new Error('expected a throw')
}
