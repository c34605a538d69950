/**
 * `VaultKmsProvider` with a node-vault client of the user's own (`client`):
 * node-vault 0.12 with its own (axios) transport, against the Vault emulator.
 */
import { createRequire } from 'node:module'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  KmsConfigurationError,
  ProviderConnectionError,
  type VaultKmsClient,
  VaultKmsProvider,
  type VaultKmsProviderOptions,
} from '../../src/kms/index.js'
import {
  describeKmsProviderContract,
  recordingSleep,
  startVaultEmulator,
  type VaultEmulator,
} from '../../src/kms/testing/index.js'
import { rejection } from '../helpers/rejection.js'
import { FAST, vaultContractSubject } from './vault-harness.js'

type NodeVault = (config: Record<string, unknown>) => VaultKmsClient & { token?: string }
const nodeVault = createRequire(import.meta.url)('node-vault') as NodeVault

/** A node-vault client as a user builds one: its own transport, its own token. */
const userClient = (vault: VaultEmulator) =>
  nodeVault({ endpoint: vault.address, token: vault.token, apiVersion: 'v1' })

// The contract through the injected client. Faults stay off: redirects and
// Retry-After belong to the client's transport (see the tests below).
describeKmsProviderContract(
  'VaultKmsProvider (injected node-vault client, emulator)',
  () =>
    vaultContractSubject((vault) => new VaultKmsProvider({ client: userClient(vault), ...FAST }), {
      requireRequestHeader: true,
    }),
  { faults: false, kind: 'vault' },
  { describe, it, expect, afterAll },
)

describe('VaultKmsProvider with an injected node-vault client', () => {
  let vault: VaultEmulator
  beforeAll(async () => {
    // A Vault Agent / Proxy listener's require_request_header: 412 without X-Vault-Request.
    vault = await startVaultEmulator({ requireRequestHeader: true, mount: 'kv-transit' })
    vault.createKey('orders')
  })
  afterAll(async () => {
    await vault.close()
  })

  it("still sends X-Vault-Request on every request, through the client's own transport", async () => {
    const client = userClient(vault)
    const kms = new VaultKmsProvider({ client, mount: 'kv-transit', ...FAST })
    const start = vault.requests.length
    const sealed = await kms.encrypt('behind the agent', 'orders', { tenant: 'acme' })
    expect(Buffer.from(await kms.decrypt(sealed)).toString()).toBe('behind the agent')
    ;(await kms.generateDataKey('orders', { tenant: 'acme' })).dispose()
    await kms.getKeyInfo('orders')
    await kms.getRotationPolicy('orders')
    await kms.rotateKey('orders')
    const sent = vault.requests.slice(start)
    expect(sent.length).toBeGreaterThanOrEqual(6)
    expect(sent.every((r) => r.requestHeader)).toBe(true)
    // At the configured mount, with the client's own token (the emulator checks it).
    expect(sent.every((r) => r.path.startsWith('/v1/kv-transit/'))).toBe(true)
  })

  it("uses the client's token as it changes (a login or renewal of the user's own)", async () => {
    const client = nodeVault({ endpoint: vault.address, token: 'hvs.not-yet', apiVersion: 'v1' })
    const kms = new VaultKmsProvider({ client, mount: 'kv-transit', ...FAST })
    const denied = await rejection(kms.getKeyInfo('orders'))
    expect(denied).toMatchObject({ code: 'ERR_KMS_ACCESS_DENIED' })
    client.token = vault.token
    expect((await kms.getKeyInfo('orders')).state).toBe('enabled')
  })

  it("the attempt's deadline still ends a call that hangs in the client's transport", async () => {
    const kms = new VaultKmsProvider({
      client: userClient(vault),
      mount: 'kv-transit',
      ...FAST,
      maxAttempts: 1,
    })
    vault.faults.reset().setLatency(60_000)
    try {
      const err = await rejection(kms.getKeyInfo('orders'))
      expect(err).toBeInstanceOf(ProviderConnectionError)
      expect(err).toMatchObject({ reason: 'timeout' })
    } finally {
      vault.faults.reset()
    }
  })

  it("Retry-After is the transport's: node-vault's axios drops it, so our own backoff applies (within the deadline)", async () => {
    const { sleeps, sleep } = recordingSleep()
    const kms = new VaultKmsProvider({
      client: userClient(vault),
      mount: 'kv-transit',
      ...FAST,
      sleep,
    })
    vault.faults.reset()
    vault.calls.reset()
    // With the provider's own transport this hint, beyond the deadline, ends the call at once.
    vault.faults.failNext(1, 'throttle', { retryAfterMs: 120_000, operation: 'readKey' })
    expect((await kms.getKeyInfo('orders')).state).toBe('enabled')
    expect(vault.calls.count('readKey')).toBe(2)
    expect(sleeps).toHaveLength(1)
    expect(sleeps[0]).toBeLessThanOrEqual(FAST.retryMaxDelayMs)
  })

  it('a proxy that drops the header is still reported as what it is: a configuration error, one request', async () => {
    // A client whose transport strips the header: node-vault's request-promise hook.
    const stripping = nodeVault({
      endpoint: vault.address,
      token: vault.token,
      'request-promise': {
        defaults:
          () =>
          async (o: {
            uri: string
            method: string
            headers: Record<string, string>
            json?: unknown
          }) => {
            const { 'X-Vault-Request': _dropped, ...headers } = o.headers
            const res = await fetch(o.uri, {
              method: o.method,
              headers: { ...headers, 'Content-Type': 'application/json' },
              ...(o.json === undefined ? {} : { body: JSON.stringify(o.json) }),
            })
            const text = await res.text()
            return {
              statusCode: res.status,
              body: text === '' ? undefined : JSON.parse(text),
              request: { path: new URL(o.uri).pathname },
            }
          },
      },
    })
    const kms = new VaultKmsProvider({ client: stripping, mount: 'kv-transit', ...FAST })
    vault.calls.reset()
    const err = await rejection(kms.getKeyInfo('orders'))
    expect(err).toBeInstanceOf(KmsConfigurationError)
    expect(vault.calls.count()).toBe(1)
  })

  it('close() leaves an injected client usable', async () => {
    const client = userClient(vault)
    const kms = new VaultKmsProvider({ client, mount: 'kv-transit', ...FAST })
    await kms.getKeyInfo('orders')
    await kms.close()
    const answer = (await client.read('kv-transit/keys/orders', {
      headers: { 'X-Vault-Request': 'true' },
    })) as { data: { name: string } }
    expect(answer.data.name).toBe('orders')
  })

  it('refuses the connection options an injected client makes meaningless, naming the field', () => {
    const client = userClient(vault)
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ address: vault.address }, 'address'],
      [{ token: vault.token }, 'token'],
      [{ namespace: 'team-a' }, 'namespace'],
      [{ verifyTls: true }, 'verifyTls'],
      [{ verifyTls: false }, 'verifyTls'],
      [{ caCert: '-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----' }, 'caCert'],
    ]
    for (const [options, field] of cases) {
      let err: unknown
      try {
        new VaultKmsProvider({ client, ...options } as VaultKmsProviderOptions)
      } catch (e) {
        err = e
      }
      expect(err).toMatchObject({
        code: 'ERR_CONFIG_INVALID',
        message: expect.stringContaining(`\`${field}\`: cannot be combined with client`),
      })
      expect(JSON.stringify(err)).not.toContain(vault.token)
      expect((err as Error).message).not.toContain(vault.token)
    }
    for (const notAClient of [{}, { read: () => 0 }, 'node-vault'])
      expect(
        () => new VaultKmsProvider({ client: notAClient as unknown as VaultKmsClient }),
      ).toThrow(
        expect.objectContaining({
          code: 'ERR_CONFIG_INVALID',
          message: expect.stringContaining('`client`'),
        }),
      )
    // Without a client, address and token stay required.
    for (const [options, field] of [
      [{ token: vault.token }, 'address'],
      [{ address: vault.address }, 'token'],
      [{}, 'address'],
    ] as const)
      expect(() => new VaultKmsProvider(options as VaultKmsProviderOptions)).toThrow(
        expect.objectContaining({
          code: 'ERR_CONFIG_INVALID',
          message: expect.stringContaining(`\`${field}\`: is required`),
        }),
      )
    // What is the provider's own combines with it.
    expect(
      new VaultKmsProvider({ client, mount: '/kv-transit/', name: 'vault-own', timeoutMs: 500 })
        .mount,
    ).toBe('kv-transit')
  })
})
