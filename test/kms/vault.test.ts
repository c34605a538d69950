import { execFile, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { inspect, promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  DecryptionError,
  EncryptedData,
  EncryptionError,
  KeyNotFoundError,
  KmsAccessDeniedError,
  KmsError,
  ProviderConnectionError,
} from '../../src/kms/index.js'
import { VaultKmsProvider, type VaultKmsProviderOptions } from '../../src/kms/providers/vault.js'
import { describeKmsProviderContract } from '../../src/kms/testing/index.js'
import { startVaultEmulator, type VaultEmulator } from '../../src/kms/testing/vault-emulator.js'
import { FAST, vaultContractSubject } from './vault-harness.js'

const CONTEXT = { tenant: 'acme', table: 'customers' }
const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64')
/** What the provider sends as associated_data / context: base64 of the canonical JSON. */
const bound = (context: Record<string, string>) =>
  b64(
    JSON.stringify(
      Object.fromEntries(Object.entries(context).sort(([a], [b]) => (a < b ? -1 : 1))),
    ),
  )

async function capture(p: Promise<unknown>): Promise<Error> {
  try {
    await p
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a rejection')
}

/** A raw Vault HTTP call, to check the wire independently of node-vault. */
async function raw(
  vault: VaultEmulator,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = { 'X-Vault-Token': vault.token },
): Promise<{
  status: number
  body: { errors?: string[]; data?: Record<string, unknown>; warnings?: string[] | null }
}> {
  const res = await fetch(`${vault.address}/v1/${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await res.text()
  return { status: res.status, body: text === '' ? {} : JSON.parse(text) }
}

function provider(vault: VaultEmulator, options: Partial<VaultKmsProviderOptions> = {}) {
  return new VaultKmsProvider({ address: vault.address, token: vault.token, ...FAST, ...options })
}

// ---------------------------------------------------------------------------
// The contract, on the emulator and (when configured) on a real Vault.

describeKmsProviderContract(
  'VaultKmsProvider (emulator)',
  () => vaultContractSubject((vault, sleep) => provider(vault, { sleep })),
  { faults: true, kind: 'vault' },
  { describe, it, expect, afterAll },
)

const live = {
  address: process.env.FRAISEQL_LIVE_VAULT_ADDR,
  token: process.env.FRAISEQL_LIVE_VAULT_TOKEN,
  key: process.env.FRAISEQL_LIVE_VAULT_KEY,
  namespace: process.env.FRAISEQL_LIVE_VAULT_NAMESPACE,
  mount: process.env.FRAISEQL_LIVE_VAULT_MOUNT,
}
if (live.address && live.token && live.key) {
  const { address, token, key } = live
  describeKmsProviderContract(
    'VaultKmsProvider (live)',
    async () => ({
      provider: new VaultKmsProvider({
        address,
        token,
        ...(live.namespace ? { namespace: live.namespace } : {}),
        ...(live.mount ? { mount: live.mount } : {}),
        timeoutMs: 10_000,
      }),
      keyId: key,
      missingKeyId: `fraiseql-missing-${randomBytes(8).toString('hex')}`,
      secrets: [token],
    }),
    { faults: false, kind: 'vault' },
    { describe, it, expect, afterAll },
  )
} else {
  console.info(
    'Vault live mode off: set FRAISEQL_LIVE_VAULT_ADDR, FRAISEQL_LIVE_VAULT_TOKEN and FRAISEQL_LIVE_VAULT_KEY (optional FRAISEQL_LIVE_VAULT_NAMESPACE, FRAISEQL_LIVE_VAULT_MOUNT) to run the contract against a real Vault',
  )
}

// ---------------------------------------------------------------------------

describe('VaultKmsProvider', () => {
  let vault: VaultEmulator
  beforeAll(async () => {
    vault = await startVaultEmulator()
  })
  afterAll(async () => {
    await vault.close()
  })
  afterEach(() => {
    vault.faults.reset()
    vault.calls.reset()
    vault.requests.length = 0
  })

  describe('context binding', () => {
    it('binds the context of a non-derived key as associated_data, so a different context fails', async () => {
      vault.createKey('plain')
      const kms = provider(vault)
      const enc = await kms.encrypt('secret', 'plain', CONTEXT)
      const sent = vault.requests.find((r) => r.path === '/v1/transit/encrypt/plain')
      expect(sent?.fields).toEqual(['plaintext', 'associated_data'])
      expect(Buffer.from(enc.ciphertext).toString('utf8')).toMatch(/^vault:v1:[A-Za-z0-9+/]+=*$/)
      expect(
        await capture(kms.decrypt(enc, { tenant: 'evil', table: 'customers' })),
      ).toBeInstanceOf(DecryptionError)
      expect(await capture(kms.decrypt(enc, {}))).toBeInstanceOf(DecryptionError)
      // Vault itself ignores `context` on a non-derived key: a provider sending only
      // `context` would have bound nothing, and this raw decrypt would succeed.
      const ignored = await raw(vault, 'POST', 'transit/decrypt/plain', {
        ciphertext: Buffer.from(enc.ciphertext).toString('utf8'),
        context: b64('anything'),
      })
      expect(ignored.status).toBe(400)
      expect(ignored.body.errors).toEqual(['cipher: message authentication failed'])
      // Any Vault client can decrypt it with the documented associated_data.
      const interop = await raw(vault, 'POST', 'transit/decrypt/plain', {
        ciphertext: Buffer.from(enc.ciphertext).toString('utf8'),
        associated_data: bound(CONTEXT),
      })
      expect(Buffer.from(String(interop.body.data?.plaintext), 'base64').toString()).toBe('secret')
    })

    it('sends neither field for an empty context, so plain Vault ciphertexts interoperate', async () => {
      vault.createKey('interop')
      const made = await raw(vault, 'POST', 'transit/encrypt/interop', { plaintext: b64('hi') })
      const kms = provider(vault)
      const enc = new EncryptedData({
        ciphertext: Buffer.from(String(made.body.data?.ciphertext)),
        keyReference: kms.reference('interop'),
        algorithm: 'vault-transit/aes256-gcm96',
        encryptedAt: new Date(),
      })
      expect(Buffer.from(await kms.decrypt(enc)).toString()).toBe('hi')
      await kms.encrypt('x', 'interop')
      const sent = vault.requests.filter((r) => r.path === '/v1/transit/encrypt/interop')
      expect(sent.at(-1)?.fields).toEqual(['plaintext'])
    })

    it('binds the context of a derived key as `context` (the HKDF input)', async () => {
      vault.createKey('derived', { derived: true })
      const kms = provider(vault)
      const enc = await kms.encrypt('secret', 'derived', CONTEXT)
      const sent = vault.requests.find((r) => r.path === '/v1/transit/encrypt/derived')
      expect(sent?.fields).toEqual(['plaintext', 'context'])
      expect(Buffer.from(await kms.decrypt(enc)).toString()).toBe('secret')
      expect(
        await capture(kms.decrypt(enc, { tenant: 'evil', table: 'customers' })),
      ).toBeInstanceOf(DecryptionError)
      const interop = await raw(vault, 'POST', 'transit/decrypt/derived', {
        ciphertext: Buffer.from(enc.ciphertext).toString('utf8'),
        context: bound(CONTEXT),
      })
      expect(Buffer.from(String(interop.body.data?.plaintext), 'base64').toString()).toBe('secret')
      // A derived key needs a context: Vault refuses, the caller gets EncryptionError.
      const err = await capture(kms.encrypt('secret', 'derived'))
      expect(err).toBeInstanceOf(EncryptionError)
      expect(err.cause).toEqual({ service: 'vault', code: 'missing_context', status: 400 })
    })

    it('reads each key once to learn whether it is derived', async () => {
      vault.createKey('cached')
      const kms = provider(vault)
      for (let i = 0; i < 3; i++) await kms.decrypt(await kms.encrypt('x', 'cached', CONTEXT))
      expect(vault.calls.count('readKey')).toBe(1)
      expect(vault.calls.count('encrypt')).toBe(3)
    })

    it('reads the key again when Vault says a context is missing (key recreated as derived)', async () => {
      vault.createKey('flip')
      const kms = provider(vault)
      await kms.encrypt('x', 'flip', CONTEXT)
      vault.deleteKey('flip')
      vault.createKey('flip', { derived: true })
      const err = await capture(kms.encrypt('x', 'flip', CONTEXT))
      expect(err).toBeInstanceOf(EncryptionError)
      expect(err.cause).toMatchObject({ code: 'missing_context' })
      const enc = await kms.encrypt('x', 'flip', CONTEXT)
      expect(vault.requests.at(-1)?.fields).toEqual(['plaintext', 'context'])
      expect(Buffer.from(await kms.decrypt(enc)).toString()).toBe('x')
    })

    it('upserts an unknown key on encrypt as non-derived, even with a context', async () => {
      const kms = provider(vault)
      const enc = await kms.encrypt('secret', 'upserted', CONTEXT)
      expect(vault.describeKey('upserted')).toMatchObject({ derived: false, latest_version: 1 })
      expect(await capture(kms.decrypt(enc, { tenant: 'other' }))).toBeInstanceOf(DecryptionError)
      expect(Buffer.from(await kms.decrypt(enc)).toString()).toBe('secret')
    })
  })

  describe('data keys', () => {
    it('on a non-derived key with a context: generated locally, wrapped by encrypt with associated_data', async () => {
      vault.createKey('dek-plain')
      const kms = provider(vault)
      const pair = await kms.generateDataKey('dek-plain', CONTEXT)
      expect(vault.calls.count('datakey')).toBe(0)
      expect(vault.requests.at(-1)?.fields).toEqual(['plaintext', 'associated_data'])
      const key = Buffer.from(pair.plaintextKey)
      expect(Buffer.from(await kms.decrypt(pair.toEncryptedData()))).toEqual(key)
      expect(await capture(kms.decrypt(pair.toEncryptedData(), { tenant: 'x' }))).toBeInstanceOf(
        DecryptionError,
      )
      // Through `datakey/plaintext` the wrapped key would decrypt under any context.
      const unbound = await raw(vault, 'POST', 'transit/datakey/plaintext/dek-plain', {
        bits: 256,
        associated_data: bound(CONTEXT),
      })
      expect(unbound.body.warnings).toEqual([
        'Endpoint ignored these unrecognized parameters: [associated_data]',
      ])
    })

    it('uses datakey/plaintext for a derived key (with `context`) and for no context', async () => {
      vault.createKey('dek-derived', { derived: true })
      vault.createKey('dek-bare')
      const kms = provider(vault)
      const derived = await kms.generateDataKey('dek-derived', CONTEXT)
      expect(vault.requests.at(-1)).toMatchObject({
        path: '/v1/transit/datakey/plaintext/dek-derived',
        fields: ['bits', 'context'],
      })
      expect(Buffer.from(await kms.decrypt(derived.toEncryptedData()))).toEqual(
        Buffer.from(derived.plaintextKey),
      )
      expect(await capture(kms.decrypt(derived.toEncryptedData(), { tenant: 'x' }))).toBeInstanceOf(
        DecryptionError,
      )
      const bare = await kms.generateDataKey('dek-bare')
      expect(vault.requests.at(-1)).toMatchObject({
        path: '/v1/transit/datakey/plaintext/dek-bare',
        fields: ['bits'],
      })
      expect(Buffer.from(await kms.decrypt(bare.toEncryptedData()))).toEqual(
        Buffer.from(bare.plaintextKey),
      )
      expect(vault.calls.count('datakey')).toBe(2)
    })

    it('creates an unknown key through encrypt, as datakey never upserts', async () => {
      const kms = provider(vault)
      const pair = await kms.generateDataKey('dek-new')
      expect(vault.keyNames()).toContain('dek-new')
      expect(Buffer.from(await kms.decrypt(pair.toEncryptedData()))).toEqual(
        Buffer.from(pair.plaintextKey),
      )
    })
  })

  describe('rotation and key info', () => {
    it('rotates, keeps old ciphertexts decryptable, and reports versions', async () => {
      vault.createKey('rot')
      const kms = provider(vault)
      const v1 = await kms.encrypt('one', 'rot', CONTEXT)
      const info = await kms.rotateKey('rot')
      expect(info.currentVersion).toBe(2)
      expect(info.versions).toBe(2)
      expect(info.state).toBe('enabled')
      const v2 = await kms.encrypt('two', 'rot', CONTEXT)
      expect(Buffer.from(v2.ciphertext).toString()).toMatch(/^vault:v2:/)
      expect(Buffer.from(await kms.decrypt(v1)).toString()).toBe('one')
      expect(Buffer.from(await kms.decrypt(v2)).toString()).toBe('two')
      expect((await kms.getKeyInfo('rot')).currentVersion).toBe(2)
    })

    it('re-reads the key when rotate answers 204 (Vault before rotate returned the key)', async () => {
      const old = await startVaultEmulator({ rotateNoContent: true })
      try {
        old.createKey('k')
        const info = await provider(old).rotateKey('k')
        expect(info.currentVersion).toBe(2)
        expect(old.calls.count('rotate')).toBe(1)
        // One read before (rotation is not idempotent: the state to compare with), one after the 204.
        expect(old.calls.count('readKey')).toBe(2)
      } finally {
        await old.close()
      }
    })

    it('reflects auto_rotate_period in the rotation policy', async () => {
      let now = Date.UTC(2026, 0, 1)
      const timed = await startVaultEmulator({ clock: () => now })
      try {
        timed.createKey('auto')
        const kms = provider(timed)
        expect(await kms.getRotationPolicy('auto')).toEqual({
          enabled: false,
          rotationPeriodDays: null,
          lastRotation: null,
          nextRotation: null,
        })
        const set = await raw(timed, 'POST', 'transit/keys/auto/config', {
          auto_rotate_period: '720h',
        })
        expect(set.status).toBe(200)
        expect(set.body.data?.auto_rotate_period).toBe(30 * 86_400)
        now = Date.UTC(2026, 0, 10)
        await kms.rotateKey('auto')
        expect(await kms.getRotationPolicy('auto')).toEqual({
          enabled: true,
          rotationPeriodDays: 30,
          lastRotation: new Date(Date.UTC(2026, 0, 10)),
          nextRotation: new Date(Date.UTC(2026, 1, 9)),
        })
        expect((await kms.getKeyInfo('auto')).reference.createdAt).toEqual(
          new Date(Date.UTC(2026, 0, 1)),
        )
      } finally {
        await timed.close()
      }
    })
  })

  describe('paths, namespace and token', () => {
    it('honours the mount on every path', async () => {
      const other = await startVaultEmulator({ mount: 'kms/transit' })
      try {
        const wrong = provider(other, { maxAttempts: 1 })
        const err = await capture(wrong.getKeyInfo('k'))
        expect(err).toBeInstanceOf(KmsError)
        expect(err).not.toBeInstanceOf(KeyNotFoundError)
        expect(err.cause).toEqual({ service: 'vault', code: 'no_handler', status: 404 })

        const kms = provider(other, { mount: '/kms/transit/' })
        expect(kms.mount).toBe('kms/transit')
        other.createKey('derived', { derived: true })
        const enc = await kms.encrypt('x', 'k', CONTEXT)
        await kms.decrypt(enc)
        ;(await kms.generateDataKey('k')).dispose()
        ;(await kms.generateDataKey('derived', CONTEXT)).dispose()
        await kms.rotateKey('k')
        await kms.getKeyInfo('k')
        await kms.getRotationPolicy('k')
        const paths = other.requests.filter((r) => r.path.startsWith('/v1/kms/transit/'))
        const ops = new Set(paths.map((r) => r.path.split('/')[4]))
        expect(ops).toEqual(new Set(['keys', 'encrypt', 'decrypt', 'datakey']))
        expect(paths.some((r) => r.path.endsWith('/rotate'))).toBe(true)
        expect(other.requests.filter((r) => !r.path.startsWith('/v1/kms/transit/'))).toHaveLength(1)
      } finally {
        await other.close()
      }
    })

    it('sends X-Vault-Namespace, and keys of one namespace are invisible from another', async () => {
      vault.createKey('team-key', { namespace: 'team-a' })
      const inNamespace = provider(vault, { namespace: 'team-a/' })
      const root = provider(vault)
      expect((await inNamespace.getKeyInfo('team-key')).currentVersion).toBe(1)
      expect(vault.requests.at(-1)?.namespace).toBe('team-a')
      expect(await capture(root.getKeyInfo('team-key'))).toBeInstanceOf(KeyNotFoundError)
      expect(vault.requests.at(-1)?.namespace).toBe('')
      const enc = await inNamespace.encrypt('x', 'team-key', CONTEXT)
      expect(Buffer.from(await inNamespace.decrypt(enc)).toString()).toBe('x')
      expect(await capture(root.decrypt(enc))).toBeInstanceOf(KeyNotFoundError)
    })

    it('maps a refused token to KmsAccessDeniedError that holds the token nowhere', async () => {
      const token = `hvs.${randomBytes(12).toString('hex')}`
      const kms = new VaultKmsProvider({ address: vault.address, token, ...FAST })
      const err = await capture(kms.encrypt('x', 'orders'))
      expect(err).toBeInstanceOf(KmsAccessDeniedError)
      expect(err.cause).toEqual({ service: 'vault', code: 'permission_denied', status: 403 })
      expect(vault.calls.count()).toBe(1) // not retried
      const everything = `${inspect(err, { depth: 10, showHidden: true })} ${JSON.stringify(err)} ${String(err.stack)}`
      expect(everything).not.toContain(token)
      // A revoked token: the emulator now accepts another one.
      const ok = provider(vault)
      await ok.encrypt('x', 'orders')
      const previous = vault.token
      vault.setToken(`hvs.${randomBytes(12).toString('hex')}`)
      try {
        expect(await capture(ok.getKeyInfo('orders'))).toBeInstanceOf(KmsAccessDeniedError)
      } finally {
        vault.setToken(previous)
      }
    })

    it('keeps the token out of transport errors too (the AxiosError holds it in config.headers)', async () => {
      vault.faults.setOutage(true)
      const kms = provider(vault, { maxAttempts: 2 })
      const err = await capture(kms.getKeyInfo('orders'))
      expect(err).toBeInstanceOf(ProviderConnectionError)
      expect((err as ProviderConnectionError).reason).toBe('network')
      expect(err.cause).toEqual({ service: 'vault', code: 'ECONNRESET' })
      expect(inspect(err, { depth: 10, showHidden: true })).not.toContain(vault.token)
    })

    it('ignores VAULT_* environment variables', async () => {
      const saved = { ...process.env }
      Object.assign(process.env, {
        VAULT_ADDR: 'http://127.0.0.1:1',
        VAULT_TOKEN: 'env-token',
        VAULT_NAMESPACE: 'elsewhere',
        VAULT_PREFIX: '/wrong',
        VAULT_SKIP_VERIFY: '1',
      })
      try {
        const kms = provider(vault)
        await kms.encrypt('x', 'orders')
        expect(vault.requests.at(-1)).toMatchObject({
          path: '/v1/transit/encrypt/orders',
          namespace: '',
        })
      } finally {
        for (const k of [
          'VAULT_ADDR',
          'VAULT_TOKEN',
          'VAULT_NAMESPACE',
          'VAULT_PREFIX',
          'VAULT_SKIP_VERIFY',
        ]) {
          if (saved[k] === undefined) delete process.env[k]
          else process.env[k] = saved[k]
        }
      }
    })
  })

  describe('validation and errors', () => {
    it('refuses key names outside Vault’s name pattern before sending anything', async () => {
      const kms = provider(vault)
      for (const bad of ['a/b', '../keys', 'a b', '-a', 'a-', 'a.', 'ключ', '']) {
        const err = await capture(kms.encrypt('x', bad))
        expect(err).toBeInstanceOf(KmsError)
        expect(err.message).toMatch(/not a valid Vault key name|Key id must be/)
      }
      await expect(kms.getKeyInfo('a/rotate')).rejects.toBeInstanceOf(KmsError)
      expect(vault.calls.count()).toBe(0)
      for (const good of ['a', 'a.b-c_d', '_x_', 'K1']) await kms.encrypt('x', good)
    })

    it('validates its options with ERR_CONFIG_INVALID naming the field', () => {
      const base = { address: 'http://127.0.0.1:8200', token: 't' }
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ ...base, address: 'ftp://x' }, 'address'],
        [{ ...base, address: 'https://user:pw@vault' }, 'address'],
        [{ ...base, token: '' }, 'token'],
        [{ ...base, token: 'a b' }, 'token'],
        [{ ...base, mount: '../sys' }, 'mount'],
        [{ ...base, mount: 'a//b' }, 'mount'],
        [{ ...base, namespace: 'a b' }, 'namespace'],
        [{ ...base, caCert: 'not pem' }, 'caCert'],
        [{ ...base, verifyTls: 'no' }, 'verifyTls'],
        [{ ...base, timeoutMs: 0 }, 'timeoutMs'],
        [{ ...base, tls: false }, 'tls'],
      ]
      for (const [options, field] of cases) {
        expect(() => new VaultKmsProvider(options as VaultKmsProviderOptions)).toThrow(
          expect.objectContaining({
            code: 'ERR_CONFIG_INVALID',
            message: expect.stringContaining(field),
          }),
        )
      }
      const secret = 'hvs.secret value'
      let err: unknown
      try {
        new VaultKmsProvider({ ...base, token: secret })
      } catch (e) {
        err = e
      }
      expect(err).toMatchObject({ code: 'ERR_CONFIG_INVALID' })
      expect(inspect(err, { depth: 10 })).not.toContain(secret)
      expect(new VaultKmsProvider(base).name).toBe('vault')
      expect(new VaultKmsProvider({ ...base, name: 'vault-eu' }).name).toBe('vault-eu')
    })

    it('maps sealed (503) and rate-limited (429) answers to retryable ProviderConnectionError', async () => {
      const once = provider(vault, { maxAttempts: 1 })
      vault.faults.failNext(1, 'unavailable')
      const sealed = await capture(once.getKeyInfo('orders'))
      expect(sealed).toBeInstanceOf(ProviderConnectionError)
      expect(sealed).toMatchObject({ reason: 'unavailable', retryable: true })
      expect(sealed.cause).toEqual({ service: 'vault', code: 'sealed', status: 503 })
      vault.faults.failNext(1, 'throttle')
      const throttled = await capture(once.getKeyInfo('orders'))
      expect(throttled).toMatchObject({ reason: 'throttled', retryable: true })
      expect(throttled.cause).toEqual({ service: 'vault', code: 'rate_limited', status: 429 })
    })

    it('reports missing keys as KeyNotFoundError on every operation that cannot create them', async () => {
      const kms = provider(vault)
      expect(await capture(kms.getKeyInfo('nope'))).toBeInstanceOf(KeyNotFoundError)
      expect(await capture(kms.getRotationPolicy('nope'))).toBeInstanceOf(KeyNotFoundError)
      expect(await capture(kms.rotateKey('nope'))).toBeInstanceOf(KeyNotFoundError)
      const enc = new EncryptedData({
        ciphertext: Buffer.from('vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'),
        keyReference: kms.reference('nope'),
        algorithm: 'vault-transit/aes256-gcm96',
        encryptedAt: new Date(),
      })
      expect(await capture(kms.decrypt(enc))).toBeInstanceOf(KeyNotFoundError)
      expect(vault.keyNames()).not.toContain('nope')
    })

    it('refuses stored bytes that are not a Vault ciphertext without calling Vault', async () => {
      const kms = provider(vault)
      const enc = new EncryptedData({
        ciphertext: new Uint8Array([0xff, 0xfe, 0x00]),
        keyReference: kms.reference('orders'),
        algorithm: 'vault-transit/aes256-gcm96',
        encryptedAt: new Date(),
      })
      expect(await capture(kms.decrypt(enc))).toBeInstanceOf(DecryptionError)
      expect(vault.calls.count()).toBe(0)
    })

    it('throws MissingDependencyError naming node-vault when the package cannot be resolved', async () => {
      // A child process whose module resolver cannot find node-vault: the same
      // failure a user without the optional peer sees. Nothing of ours is mocked.
      const dir = mkdtempSync(join(tmpdir(), 'fsl-vault-dep-'))
      writeFileSync(
        join(dir, 'hooks.mjs'),
        `export async function resolve(specifier, context, next) {
  if (specifier === 'node-vault') {
    const err = new Error("Cannot find package 'node-vault'")
    err.code = 'ERR_MODULE_NOT_FOUND'
    throw err
  }
  return next(specifier, context)
}
`,
      )
      writeFileSync(
        join(dir, 'register.mjs'),
        `import { register } from 'node:module'\nregister(new URL('./hooks.mjs', import.meta.url))\n`,
      )
      const providerUrl = pathToFileURL(resolve('src/kms/providers/vault.ts')).href
      writeFileSync(
        join(dir, 'main.mjs'),
        `const { VaultKmsProvider } = await import(${JSON.stringify(providerUrl)})
const kms = new VaultKmsProvider({ address: 'http://127.0.0.1:9', token: 't' })
try { await kms.encrypt('x', 'k'); console.log('{}') }
catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, packageName: e.packageName, message: e.message })) }
`,
      )
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [
          '--import',
          'tsx',
          '--import',
          pathToFileURL(join(dir, 'register.mjs')).href,
          join(dir, 'main.mjs'),
        ],
        { cwd: process.cwd(), timeout: 15_000 },
      )
      const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}')
      expect(result).toMatchObject({
        name: 'MissingDependencyError',
        code: 'ERR_DEPENDENCY_MISSING',
        packageName: 'node-vault',
      })
      expect(result.message).toContain('npm install node-vault')
    })
  })

  describe('TLS', () => {
    let dir: string
    let tlsVault: VaultEmulator
    let cert: string
    beforeAll(async () => {
      // A self-signed certificate for 127.0.0.1, made now with the openssl CLI
      // (node:crypto makes keys but cannot issue X.509 certificates).
      dir = mkdtempSync(join(tmpdir(), 'fsl-vault-tls-'))
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-days',
          '2',
          '-subj',
          '/CN=127.0.0.1',
          '-addext',
          'subjectAltName=IP:127.0.0.1',
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
        ],
        { stdio: 'ignore' },
      )
      cert = readFileSync(join(dir, 'cert.pem'), 'utf8')
      tlsVault = await startVaultEmulator({
        tls: { cert, key: readFileSync(join(dir, 'key.pem'), 'utf8') },
      })
    })
    afterAll(async () => {
      await tlsVault?.close()
    })

    it('refuses an untrusted certificate by default, without retrying', async () => {
      expect(tlsVault.address).toMatch(/^https:/)
      // node-vault would turn verification off for VAULT_SKIP_VERIFY; the provider pins it.
      const saved = process.env.VAULT_SKIP_VERIFY
      process.env.VAULT_SKIP_VERIFY = '1'
      let err: Error
      try {
        err = await capture(provider(tlsVault).encrypt('x', 'k'))
      } finally {
        if (saved === undefined) delete process.env.VAULT_SKIP_VERIFY
        else process.env.VAULT_SKIP_VERIFY = saved
      }
      expect(err).toBeInstanceOf(ProviderConnectionError)
      expect(err).toMatchObject({ reason: 'network', retryable: false })
      expect((err.cause as { code: string }).code).toMatch(/SELF_SIGNED|CERT/)
      expect(tlsVault.calls.count()).toBe(0)
    })

    it('trusts the certificate given as caCert', async () => {
      const kms = provider(tlsVault, { caCert: cert })
      const enc = await kms.encrypt('over tls', 'k', CONTEXT)
      expect(Buffer.from(await kms.decrypt(enc)).toString()).toBe('over tls')
    })

    it('skips verification only when verifyTls is false', async () => {
      const kms = provider(tlsVault, { verifyTls: false })
      expect((await kms.getKeyInfo('k')).currentVersion).toBe(1)
    })
  })
})

// ---------------------------------------------------------------------------
// The emulator's wire details, checked without node-vault.

describe('Vault emulator wire protocol', () => {
  let vault: VaultEmulator
  beforeAll(async () => {
    vault = await startVaultEmulator()
  })
  afterAll(async () => {
    await vault.close()
  })

  it('checks X-Vault-Token (or a Bearer token) and answers 403 permission denied', async () => {
    const none = await raw(vault, 'GET', 'transit/keys/k', undefined, {})
    expect(none).toEqual({ status: 403, body: { errors: ['permission denied'] } })
    const wrong = await raw(vault, 'GET', 'transit/keys/k', undefined, { 'X-Vault-Token': 'no' })
    expect(wrong.status).toBe(403)
    const bearer = await raw(vault, 'GET', 'transit/keys/k', undefined, {
      Authorization: `Bearer ${vault.token}`,
    })
    expect(bearer.status).toBe(404)
  })

  it('answers 404 "no handler for route" outside the mount, and 404 {"errors":[]} for a missing key', async () => {
    const route = await raw(vault, 'POST', 'other/encrypt/k', { plaintext: b64('x') })
    expect(route).toEqual({
      status: 404,
      body: { errors: ['no handler for route "other/encrypt/k". route entry not found.'] },
    })
    expect(await raw(vault, 'GET', 'transit/keys/missing')).toEqual({
      status: 404,
      body: { errors: [] },
    })
    expect(await raw(vault, 'GET', 'transit/keys/bad%2Fname')).toMatchObject({ status: 404 })
  })

  it('upserts on encrypt, derived iff a context is given; decrypt and datakey never upsert', async () => {
    const plain = await raw(vault, 'POST', 'transit/encrypt/up-plain', { plaintext: b64('x') })
    expect(plain.status).toBe(200)
    expect(plain.body.data).toMatchObject({ key_version: 1 })
    expect(plain.body).toMatchObject({ lease_id: '', renewable: false, warnings: null })
    expect(vault.describeKey('up-plain')?.derived).toBe(false)
    await raw(vault, 'POST', 'transit/encrypt/up-derived', {
      plaintext: b64('x'),
      context: b64('c'),
    })
    expect(vault.describeKey('up-derived')).toMatchObject({ derived: true, kdf: 'hkdf_sha256' })
    for (const path of ['transit/decrypt/none', 'transit/datakey/plaintext/none']) {
      expect(await raw(vault, 'POST', path, { ciphertext: 'vault:v1:AAAA' })).toEqual({
        status: 400,
        body: { errors: ['encryption key not found'] },
      })
    }
    expect(vault.keyNames()).not.toContain('none')
  })

  it('ignores context on a non-derived key (decoded, then ignored), as Vault does', async () => {
    vault.createKey('ctx-ignored')
    const enc = await raw(vault, 'POST', 'transit/encrypt/ctx-ignored', {
      plaintext: b64('x'),
      context: b64('one'),
    })
    const dec = await raw(vault, 'POST', 'transit/decrypt/ctx-ignored', {
      ciphertext: enc.body.data?.ciphertext,
      context: b64('two'),
    })
    expect(Buffer.from(String(dec.body.data?.plaintext), 'base64').toString()).toBe('x')
    const badContext = await raw(vault, 'POST', 'transit/decrypt/ctx-ignored', {
      ciphertext: enc.body.data?.ciphertext,
      context: 'not*base64',
    })
    expect(badContext).toEqual({
      status: 400,
      body: { errors: ['illegal base64 data at input byte 3'] },
    })
  })

  it('uses associated_data as AEAD additional data on derived and non-derived keys', async () => {
    vault.createKey('aad-plain')
    vault.createKey('aad-derived', { derived: true })
    for (const [key, extra] of [
      ['aad-plain', {}],
      ['aad-derived', { context: b64('ctx') }],
    ] as const) {
      const enc = await raw(vault, 'POST', `transit/encrypt/${key}`, {
        plaintext: b64('x'),
        associated_data: b64('aad'),
        ...extra,
      })
      const ct = enc.body.data?.ciphertext
      const ok = await raw(vault, 'POST', `transit/decrypt/${key}`, {
        ciphertext: ct,
        associated_data: b64('aad'),
        ...extra,
      })
      expect(ok.status).toBe(200)
      const wrong = await raw(vault, 'POST', `transit/decrypt/${key}`, {
        ciphertext: ct,
        associated_data: b64('other'),
        ...extra,
      })
      expect(wrong).toEqual({
        status: 400,
        body: { errors: ['cipher: message authentication failed'] },
      })
    }
  })

  it('needs a context for a derived key', async () => {
    vault.createKey('needs-ctx', { derived: true })
    const res = await raw(vault, 'POST', 'transit/encrypt/needs-ctx', { plaintext: b64('x') })
    expect(res.status).toBe(400)
    expect(res.body.errors?.[0]).toMatch(/^missing 'context' for key derivation; /)
  })

  it('answers the invalid-ciphertext variants with 400 and Vault’s messages', async () => {
    vault.createKey('ct')
    const enc = await raw(vault, 'POST', 'transit/encrypt/ct', { plaintext: b64('hello') })
    const good = String(enc.body.data?.ciphertext)
    const payload = good.slice('vault:v1:'.length)
    const cases: Array<[string, string]> = [
      ['', 'missing ciphertext to decrypt'],
      ['nope', 'invalid ciphertext: no prefix'],
      ['vault:v1', 'invalid ciphertext: wrong number of fields'],
      ['vault:vX:AAAA', 'invalid ciphertext: version number could not be decoded'],
      [`vault:v9:${payload}`, 'invalid ciphertext: version is too new'],
      ['vault:v1:@@@@', 'invalid ciphertext: could not decode base64'],
      ['vault:v1:AAAA', 'invalid ciphertext length'],
      [
        // A different character at position 20 (never the one already there).
        `vault:v1:${payload.slice(0, 20)}${payload[20] === 'A' ? 'B' : 'A'}${payload.slice(21)}`,
        'cipher: message authentication failed',
      ],
    ]
    for (const [ciphertext, message] of cases) {
      const res = await raw(vault, 'POST', 'transit/decrypt/ct', { ciphertext })
      expect({ ciphertext, ...res }).toEqual({
        ciphertext,
        status: 400,
        body: { errors: [message] },
      })
    }
    // Version 0 means version 1.
    const v0 = await raw(vault, 'POST', 'transit/decrypt/ct', { ciphertext: `vault:v0:${payload}` })
    expect(Buffer.from(String(v0.body.data?.plaintext), 'base64').toString()).toBe('hello')
  })

  it('serves datakey/plaintext and datakey/wrapped, whose ciphertext decrypts to the key', async () => {
    vault.createKey('dk')
    const plain = await raw(vault, 'POST', 'transit/datakey/plaintext/dk', { bits: 256 })
    const key = String(plain.body.data?.plaintext)
    expect(Buffer.from(key, 'base64')).toHaveLength(32)
    const dec = await raw(vault, 'POST', 'transit/decrypt/dk', {
      ciphertext: plain.body.data?.ciphertext,
    })
    expect(dec.body.data?.plaintext).toBe(key)
    const wrapped = await raw(vault, 'POST', 'transit/datakey/wrapped/dk', {})
    expect(wrapped.body.data).not.toHaveProperty('plaintext')
    expect(await raw(vault, 'POST', 'transit/datakey/other/dk', {})).toMatchObject({
      status: 400,
      body: { errors: ["Invalid path, must be 'plaintext' or 'wrapped'"] },
    })
    expect(await raw(vault, 'POST', 'transit/datakey/plaintext/dk', { bits: 100 })).toMatchObject({
      status: 400,
      body: { errors: ['invalid bit length'] },
    })
  })

  it('creates, rotates and configures keys with Vault’s answers', async () => {
    const created = await raw(vault, 'POST', 'transit/keys/made', { type: 'aes256-gcm96' })
    expect(created.body.data).toMatchObject({ name: 'made', derived: false, latest_version: 1 })
    const again = await raw(vault, 'POST', 'transit/keys/made', {})
    expect(again.body.warnings).toEqual(['key made already existed'])
    const rotated = await raw(vault, 'POST', 'transit/keys/made/rotate', {})
    expect(rotated.body.data).toMatchObject({ latest_version: 2 })
    expect(Object.keys(rotated.body.data?.keys as object)).toEqual(['1', '2'])
    expect(await raw(vault, 'POST', 'transit/keys/nokey/rotate', {})).toEqual({
      status: 400,
      body: { errors: ['key not found'] },
    })
    expect(
      await raw(vault, 'POST', 'transit/keys/made/config', { auto_rotate_period: '30m' }),
    ).toEqual({
      status: 400,
      body: { errors: ['auto rotate period must be 0 to disable or at least an hour'] },
    })
    const cfg = await raw(vault, 'POST', 'transit/keys/made/config', { auto_rotate_period: 86_400 })
    expect(cfg.body.data).toMatchObject({ auto_rotate_period: 86_400 })
    expect(await raw(vault, 'POST', 'transit/keys/nokey/config', {})).toEqual({
      status: 400,
      body: { errors: ['no existing key named nokey could be found'] },
    })
  })

  it('partitions keys by X-Vault-Namespace', async () => {
    const headers = (namespace: string) => ({
      'X-Vault-Token': vault.token,
      'X-Vault-Namespace': namespace,
    })
    await raw(vault, 'POST', 'transit/keys/ns-only', {}, headers('ns1/'))
    expect(
      (await raw(vault, 'GET', 'transit/keys/ns-only', undefined, headers('ns1'))).status,
    ).toBe(200)
    expect(
      (await raw(vault, 'GET', 'transit/keys/ns-only', undefined, headers('ns2'))).status,
    ).toBe(404)
    expect((await raw(vault, 'GET', 'transit/keys/ns-only')).status).toBe(404)
  })

  it('injects sealed (503), rate-limit (429), latency and outage faults, counting operations', async () => {
    vault.calls.reset()
    vault.faults.failNext(1, 'unavailable').failNext(1, 'throttle')
    expect(await raw(vault, 'GET', 'transit/keys/x')).toEqual({
      status: 503,
      body: { errors: ['Vault is sealed'] },
    })
    expect(await raw(vault, 'POST', 'transit/encrypt/x', { plaintext: '' })).toEqual({
      status: 429,
      body: { errors: ['request path "transit/encrypt/x": rate limit quota exceeded'] },
    })
    expect(vault.calls.snapshot()).toEqual({ readKey: 1, encrypt: 1 })
    vault.faults.setOutage(true)
    await expect(raw(vault, 'GET', 'transit/keys/x')).rejects.toThrow()
    vault.faults.reset()
  })
})
