import { randomBytes } from 'node:crypto'
import dns from 'node:dns'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KeyManagementServiceClient } from '@google-cloud/kms'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { crc32c } from '../../src/internal/crc32c.js'
import {
  DecryptionError,
  EncryptionError,
  KeyDisabledError,
  KeyNotFoundError,
  KmsAccessDeniedError,
  type KmsError,
  ProviderConnectionError,
} from '../../src/kms/index.js'
import type { GcpKmsClient } from '../../src/kms/providers/gcp/client.js'
import type { GcpKmsProviderOptions } from '../../src/kms/providers/gcp/options.js'
import { setGcpSdkResolver } from '../../src/kms/providers/gcp/sdk.js'
import { GcpKmsProvider } from '../../src/kms/providers/gcp.js'
import { type GcpKmsEmulator, startGcpKmsEmulator } from '../../src/kms/testing/gcp-emulator.js'
import { describeKmsProviderContract, recordingSleep } from '../../src/kms/testing/index.js'
import { rejection } from '../helpers/rejection.js'

const FAST = { timeoutMs: 1500, retryBaseDelayMs: 5, retryMaxDelayMs: 20 }

// ---------------------------------------------------------------------------
// Helpers

const sdkEntry = createRequire(import.meta.url).resolve('@google-cloud/kms')
const gax = createRequire(sdkEntry)('google-gax') as {
  grpc: { credentials: { createInsecure(): never } }
}

/** The real client, straight at the emulator (for wire-level checks). */
function rawClient(e: GcpKmsEmulator): KeyManagementServiceClient {
  return new KeyManagementServiceClient({
    apiEndpoint: e.host,
    port: e.port,
    sslCreds: gax.grpc.credentials.createInsecure(),
    universeDomain: 'googleapis.com',
  })
}

/** One attempt, no gax retry (a fresh object each call: gax writes into it). */
const once = () => ({ retry: null, timeout: 2000 })

const text = (b: Uint8Array) => Buffer.from(b).toString('utf8')

/** Records (and blocks, unless loopback) every TCP connection and DNS lookup. */
function guardNetwork() {
  const connects: string[] = []
  const lookups: string[] = []
  const connect = net.Socket.prototype.connect
  const lookup = dns.lookup
  const promisesLookup = dns.promises.lookup
  const loopback = (host: string) => host === '127.0.0.1'
  net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    // net.connect hands over normalized [options, callback]; direct calls pass (options) or (port, host).
    const first = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0]
    const o: { host?: string | undefined; port?: number | undefined; path?: string | undefined } =
      typeof first === 'object' && first !== null
        ? (first as { host?: string; port?: number; path?: string })
        : { port: first as number, host: args[1] as string | undefined, path: undefined }
    if (o.path !== undefined) return Reflect.apply(connect, this, args)
    const host = o.host ?? 'localhost'
    connects.push(`${host}:${o.port}`)
    if (loopback(host)) return Reflect.apply(connect, this, args)
    process.nextTick(() =>
      this.destroy(Object.assign(new Error(`blocked ${host}`), { code: 'ECONNREFUSED' })),
    )
    return this
  } as typeof connect
  dns.lookup = ((hostname: string, ...rest: unknown[]) => {
    lookups.push(hostname)
    if (loopback(hostname)) return Reflect.apply(lookup, dns, [hostname, ...rest])
    const callback = rest.at(-1) as (err: Error) => void
    process.nextTick(() =>
      callback(Object.assign(new Error(`blocked ${hostname}`), { code: 'ENOTFOUND' })),
    )
  }) as typeof dns.lookup
  dns.promises.lookup = ((hostname: string) => {
    lookups.push(hostname)
    return Promise.reject(Object.assign(new Error(`blocked ${hostname}`), { code: 'ENOTFOUND' }))
  }) as typeof dns.promises.lookup
  return {
    connects,
    lookups,
    restore() {
      net.Socket.prototype.connect = connect
      dns.lookup = lookup
      dns.promises.lookup = promisesLookup
    },
  }
}

/** A client whose every method rejects with `error` (an SDK-shaped failure). */
function failingClient(error: unknown): GcpKmsClient {
  const fail = () => Promise.reject(error)
  return {
    encrypt: fail,
    decrypt: fail,
    getCryptoKey: fail,
    getCryptoKeyVersion: fail,
    createCryptoKeyVersion: fail,
    updateCryptoKeyPrimaryVersion: fail,
  }
}

const GCP_IDS = { projectId: 'test-project', locationId: 'global', keyRingId: 'test-ring' }

// First in the file: google-auth-library caches a metadata-server probe's
// outcome per process, so a probe made by an earlier client would hide one here.
describe('GcpKmsProvider network hygiene', () => {
  it('the guard used below does see and block a non-loopback connection', async () => {
    const guard = guardNetwork()
    try {
      const socket = net.connect({ host: '169.254.169.254', port: 80 })
      await new Promise((resolve) => socket.once('error', resolve))
      expect(guard.connects).toEqual(['169.254.169.254:80'])
    } finally {
      guard.restore()
    }
  })

  it('connects only to 127.0.0.1: no metadata server probe, no DNS lookup', async () => {
    const detection = process.env.METADATA_SERVER_DETECTION
    delete process.env.METADATA_SERVER_DETECTION
    const e = await startGcpKmsEmulator({ keys: ['app'] })
    const guard = guardNetwork()
    // The default deadline, not FAST's 1.5 s: this is the file's first real
    // client (channel set-up, auth), which a loaded machine can slow past it,
    // and the test is about where calls go, not how fast.
    const kms = new GcpKmsProvider({ ...e.providerOptions(), ...FAST, timeoutMs: 10_000 })
    try {
      const enc = await kms.encrypt('payload', 'app', { t: '1' })
      expect(text(await kms.decrypt(enc))).toBe('payload')
      await kms.getKeyInfo('app')
      await kms.rotateKey('app')
      expect(guard.connects.length).toBeGreaterThan(0)
      expect(guard.connects.every((c) => c === `127.0.0.1:${e.port}`)).toBe(true)
      expect(guard.lookups).toEqual([])
    } finally {
      guard.restore()
      if (detection !== undefined) process.env.METADATA_SERVER_DETECTION = detection
      await kms.close()
      await e.close()
    }
  })
})

// ---------------------------------------------------------------------------
// The contract, on the emulator with faults.

describeKmsProviderContract(
  'GcpKmsProvider (emulator)',
  async () => {
    const emulator = await startGcpKmsEmulator({ keys: ['app'] })
    const { sleeps, sleep } = recordingSleep()
    const provider = new GcpKmsProvider({ ...emulator.providerOptions(), ...FAST, sleep })
    return {
      provider,
      keyId: 'app',
      missingKeyId: 'never-created',
      emulator,
      operations: {
        encrypt: 'Encrypt',
        decrypt: 'Decrypt',
        rotate: 'CreateCryptoKeyVersion',
        describe: 'GetCryptoKey',
      },
      sleeps,
      close: async () => {
        await provider.close()
        await emulator.close()
      },
    }
  },
  { faults: true, kind: 'gcp' },
  { describe, it, expect, afterAll },
)

// ---------------------------------------------------------------------------
// Live mode: the same contract against Cloud KMS, with Application Default Credentials.

const LIVE_VARS = [
  'FRAISEQL_LIVE_GCP_PROJECT',
  'FRAISEQL_LIVE_GCP_LOCATION',
  'FRAISEQL_LIVE_GCP_KEY_RING',
  'FRAISEQL_LIVE_GCP_KEY',
] as const
const live = Object.fromEntries(LIVE_VARS.map((v) => [v, process.env[v] ?? ''])) as Record<
  (typeof LIVE_VARS)[number],
  string
>

if (LIVE_VARS.every((v) => live[v] !== '')) {
  describeKmsProviderContract(
    'GcpKmsProvider (live Cloud KMS)',
    async () => {
      const provider = new GcpKmsProvider({
        projectId: live.FRAISEQL_LIVE_GCP_PROJECT,
        locationId: live.FRAISEQL_LIVE_GCP_LOCATION,
        keyRingId: live.FRAISEQL_LIVE_GCP_KEY_RING,
        timeoutMs: 15_000,
      })
      return {
        provider,
        keyId: live.FRAISEQL_LIVE_GCP_KEY,
        missingKeyId: `fraiseql-missing-${randomBytes(6).toString('hex')}`,
        close: () => provider.close(),
      }
    },
    { faults: false, kind: 'gcp' },
    { describe, it, expect, afterAll },
  )
} else {
  console.info(
    `GCP KMS live mode off: set ${LIVE_VARS.join(', ')} (with Application Default Credentials) to run the contract against Cloud KMS`,
  )
}

// ---------------------------------------------------------------------------

describe('GcpKmsProvider on the emulator', () => {
  let e: GcpKmsEmulator
  let kms: GcpKmsProvider
  let raw: KeyManagementServiceClient

  beforeAll(async () => {
    e = await startGcpKmsEmulator({ keys: ['app', 'disabled', 'rotating'] })
    kms = new GcpKmsProvider({ ...e.providerOptions(), ...FAST })
    raw = rawClient(e)
  })
  afterEach(() => {
    e.faults.reset()
    e.corruptNext('response-checksum', 0)
      .corruptNext('request-data', 0)
      .corruptNext('request-checksum-dropped', 0)
    e.calls.reset()
  })
  afterAll(async () => {
    await raw.close()
    await kms.close()
    await e.close()
  })

  describe('CRC32C integrity', () => {
    it('detects a corrupted Encrypt response checksum and retries', async () => {
      e.corruptNext('response-checksum', 1)
      const enc = await kms.encrypt('payload', 'app')
      expect(e.calls.count('Encrypt')).toBe(2)
      expect(text(await kms.decrypt(enc))).toBe('payload')
    })

    it('detects a corrupted Decrypt response checksum and retries', async () => {
      const enc = await kms.encrypt('payload', 'app')
      e.corruptNext('response-checksum', 1)
      expect(text(await kms.decrypt(enc))).toBe('payload')
      expect(e.calls.count('Decrypt')).toBe(2)
    })

    it('ends a persistent response mismatch in EncryptionError / DecryptionError after maxAttempts', async () => {
      e.corruptNext('response-checksum', 100)
      const err = await rejection(kms.encrypt('payload', 'app'))
      expect(err).toBeInstanceOf(EncryptionError)
      expect((err as EncryptionError).cause).toEqual({ service: 'gcp', code: 'CHECKSUM_MISMATCH' })
      expect(e.calls.count('Encrypt')).toBe(4)
      e.corruptNext('response-checksum', 0)
      const enc = await kms.encrypt('payload', 'app')
      e.corruptNext('response-checksum', 100)
      const err2 = await rejection(kms.decrypt(enc))
      expect(err2).toBeInstanceOf(DecryptionError)
      expect((err2 as DecryptionError).cause).toBeUndefined()
    })

    it('retries when the service did not verify the request checksums (verified_* false)', async () => {
      e.corruptNext('request-checksum-dropped', 1)
      const bare = await kms.encrypt('payload', 'app')
      expect(e.calls.count('Encrypt')).toBe(2)
      e.corruptNext('request-checksum-dropped', 1)
      const bound = await kms.encrypt('payload', 'app', { tenant: 't1' })
      expect(e.calls.count('Encrypt')).toBe(4)
      expect(text(await kms.decrypt(bare))).toBe('payload')
      expect(text(await kms.decrypt(bound))).toBe('payload')
    })

    it('refuses an Encrypt response naming a version of another key', async () => {
      const other = `${e.cryptoKeyName('disabled')}/cryptoKeyVersions/1`
      let calls = 0
      const client = new Proxy(raw, {
        get(target, prop) {
          const value = Reflect.get(target, prop)
          if (prop !== 'encrypt') return typeof value === 'function' ? value.bind(target) : value
          return async (...args: unknown[]) => {
            calls++
            const [res] = (await Reflect.apply(value, target, args)) as [Record<string, unknown>]
            return [{ ...res, name: other }]
          }
        },
      }) as unknown as GcpKmsClient
      const p = new GcpKmsProvider({ ...GCP_IDS, ...FAST, client })
      const err = await rejection(p.encrypt('payload', 'app'))
      expect(err).toBeInstanceOf(EncryptionError)
      expect((err as EncryptionError).cause).toEqual({ service: 'gcp', code: 'CHECKSUM_MISMATCH' })
      expect(calls).toBe(4)
    })

    it('retries a request whose checksum the service rejects (corrupted on the way in)', async () => {
      e.corruptNext('request-data', 1)
      const enc = await kms.encrypt('payload', 'app')
      expect(e.calls.count('Encrypt')).toBe(2)
      e.corruptNext('request-data', 1)
      expect(text(await kms.decrypt(enc))).toBe('payload')
      expect(e.calls.count('Decrypt')).toBe(2)
    })

    it('reports a persistent request checksum rejection as EncryptionError with the status only', async () => {
      e.corruptNext('request-data', 100)
      const err = await rejection(kms.encrypt('payload', 'app'))
      expect(err).toBeInstanceOf(EncryptionError)
      expect((err as EncryptionError).cause).toEqual({
        service: 'gcp',
        code: 'INVALID_ARGUMENT',
        status: 3,
      })
      expect(e.calls.count('Encrypt')).toBe(4)
    })

    it('compares Int64 checksums as numbers, whether strings or Long objects', async () => {
      class LongLike {
        constructor(
          readonly low: number,
          readonly high: number,
        ) {}
        toString() {
          return String((this.high >>> 0) * 2 ** 32 + (this.low >>> 0))
        }
      }
      const toLong = (v: unknown) => new LongLike(Number(v) | 0, 0)
      const client: GcpKmsClient = {
        encrypt: async (req, opts) => {
          const [res] = await raw.encrypt(req, opts)
          expect(typeof res.ciphertextCrc32c?.value).toBe('string')
          return [{ ...res, ciphertextCrc32c: { value: toLong(res.ciphertextCrc32c?.value) } }]
        },
        decrypt: async (req, opts) => {
          const [res] = await raw.decrypt(req, opts)
          return [{ ...res, plaintextCrc32c: { value: toLong(res.plaintextCrc32c?.value) } }]
        },
        getCryptoKey: (req, opts) => raw.getCryptoKey(req, opts),
        getCryptoKeyVersion: (req, opts) => raw.getCryptoKeyVersion(req, opts),
        createCryptoKeyVersion: (req, opts) => raw.createCryptoKeyVersion(req, opts),
        updateCryptoKeyPrimaryVersion: (req, opts) => raw.updateCryptoKeyPrimaryVersion(req, opts),
      }
      const withLongs = new GcpKmsProvider({ ...GCP_IDS, ...FAST, client })
      // CRC32C('hello') is above 2^31: read as a signed 32-bit value it would not match.
      expect(crc32c(Buffer.from('hello'))).toBeGreaterThan(2 ** 31)
      const enc = await withLongs.encrypt('hello', 'app')
      expect(text(await withLongs.decrypt(enc))).toBe('hello')
      expect(e.calls.count('Encrypt')).toBe(1)
    })
  })

  describe('context as additional authenticated data', () => {
    it('sends the canonical JSON of the context (sorted keys), whatever its key order', async () => {
      const enc = await kms.encrypt('payload', 'app', { tenant: 'acme', b: '2', a: '1' })
      const sent = e.requests.at(-1)
      expect(sent?.method).toBe('Encrypt')
      expect(sent?.additionalAuthenticatedData?.toString('utf8')).toBe(
        '{"a":"1","b":"2","tenant":"acme"}',
      )
      expect(text(await kms.decrypt(enc, { a: '1', tenant: 'acme', b: '2' }))).toBe('payload')
      expect(e.requests.at(-1)?.additionalAuthenticatedData?.toString('utf8')).toBe(
        '{"a":"1","b":"2","tenant":"acme"}',
      )
    })

    it('sends no additional authenticated data for an empty context', async () => {
      await kms.decrypt(await kms.encrypt('payload', 'app', {}))
      expect(e.requests.at(-2)?.additionalAuthenticatedData).toBeUndefined()
      expect(e.requests.at(-1)?.additionalAuthenticatedData).toBeUndefined()
    })
  })

  describe('retries are ours alone', () => {
    it('one UNAVAILABLE makes exactly 2 requests reach the service for one encrypt', async () => {
      e.faults.failNext(1, 'unavailable')
      await kms.encrypt('payload', 'app')
      expect(e.calls.count('Encrypt')).toBe(2)
      // The client's shared retry settings are untouched: the same happens again.
      e.calls.reset()
      e.faults.failNext(1, 'unavailable')
      await kms.encrypt('payload', 'app')
      expect(e.calls.count('Encrypt')).toBe(2)
    })

    it('with maxAttempts 1, one UNAVAILABLE is one request and a ProviderConnectionError', async () => {
      const single = new GcpKmsProvider({ ...e.providerOptions(), ...FAST, maxAttempts: 1 })
      try {
        e.faults.failNext(1, 'unavailable')
        const err = await rejection(single.encrypt('payload', 'app'))
        expect(err).toBeInstanceOf(ProviderConnectionError)
        expect((err as ProviderConnectionError).reason).toBe('unavailable')
        expect((err as ProviderConnectionError).cause).toEqual({
          service: 'gcp',
          code: 'UNAVAILABLE',
          status: 14,
        })
        expect(e.calls.count('Encrypt')).toBe(1)
        e.faults.failNext(1, 'throttle')
        const throttled = await rejection(single.getKeyInfo('app'))
        expect((throttled as ProviderConnectionError).reason).toBe('throttled')
        expect(e.calls.count('GetCryptoKey')).toBe(1)
      } finally {
        await single.close()
      }
    })

    it('passes { retry: null, timeout } on every call and never maxRetries', async () => {
      const seen: Array<{ method: string; options: Record<string, unknown> }> = []
      const spy = new Proxy(raw, {
        get(target, prop) {
          const value = Reflect.get(target, prop)
          if (typeof value !== 'function') return value
          return (...args: unknown[]) => {
            seen.push({ method: String(prop), options: { ...(args[1] as object) } })
            return Reflect.apply(value, target, args)
          }
        },
      }) as unknown as GcpKmsClient
      const p = new GcpKmsProvider({ ...GCP_IDS, ...FAST, client: spy })
      await p.decrypt(await p.encrypt('payload', 'rotating'))
      await p.generateDataKey('rotating')
      await p.rotateKey('rotating')
      await p.getKeyInfo('rotating')
      await p.getRotationPolicy('rotating')
      expect(seen.map((s) => s.method)).toEqual([
        'encrypt',
        'decrypt',
        'encrypt',
        // rotateKey reads the key and its versions first (it is not idempotent).
        'getCryptoKey',
        'listCryptoKeyVersions',
        'createCryptoKeyVersion',
        'updateCryptoKeyPrimaryVersion',
        'getCryptoKey',
        'getCryptoKey',
      ])
      for (const { options } of seen) {
        expect(Object.keys(options).sort()).toEqual(['retry', 'timeout'])
        expect(options.retry).toBeNull()
        expect(options.timeout).toBeGreaterThan(0)
        expect(options.timeout).toBeLessThanOrEqual(1500)
      }
    })
  })

  describe('key names', () => {
    it('accepts a short CryptoKey id and a full resource name, and keeps the one given', async () => {
      const short = await kms.encrypt('payload', 'app')
      expect(short.keyReference.keyId).toBe('app')
      const full = await kms.encrypt('payload', e.cryptoKeyName('app'))
      expect(full.keyReference.keyId).toBe(e.cryptoKeyName('app'))
      expect(text(await kms.decrypt(short))).toBe('payload')
      expect(text(await kms.decrypt(full))).toBe('payload')
      expect(kms.cryptoKeyName('app')).toBe(e.cryptoKeyName('app'))
      // Both name the same key: one decrypts what the other encrypted.
      const crossed = kms.reference(e.cryptoKeyName('app'))
      const { EncryptedData } = await import('../../src/kms/index.js')
      const moved = new EncryptedData({
        ciphertext: short.ciphertext,
        keyReference: crossed,
        algorithm: short.algorithm,
        encryptedAt: short.encryptedAt,
      })
      expect(text(await kms.decrypt(moved))).toBe('payload')
    })

    it('reaches a key in another key ring by its full name', async () => {
      const other = e.createCryptoKey('elsewhere', { keyRingId: 'second-ring' })
      const enc = await kms.encrypt('payload', other)
      expect(text(await kms.decrypt(enc))).toBe('payload')
      const info = await kms.getKeyInfo(other)
      expect(info.reference.keyId).toBe(other)
      expect(info.currentVersion).toBe(1)
      expect(await rejection(kms.encrypt('payload', 'elsewhere'))).toBeInstanceOf(KeyNotFoundError)
    })

    it('rejects ids that cannot name a CryptoKey before any request', async () => {
      for (const bad of [
        'a/b',
        'x'.repeat(64),
        'has.dot',
        'projects/test-project/locations/global/keyRings/test-ring/cryptoKeys/',
        'projects/test-project/locations/global/keyRings/test-ring/cryptoKeys/app/cryptoKeyVersions/1',
        'projects/P/locations/global/keyRings/test-ring/cryptoKeys/app',
      ]) {
        const err = await rejection(kms.encrypt('payload', bad))
        expect(err).toMatchObject({ code: 'ERR_KMS_ERROR' })
        expect((err as Error).message).toContain('CryptoKey id')
        expect(await rejection(kms.getKeyInfo(bad))).toMatchObject({ code: 'ERR_KMS_ERROR' })
      }
      expect(e.calls.count()).toBe(0)
    })
  })

  describe('key state', () => {
    it('reports a disabled primary version as KeyDisabledError, for new and old data', async () => {
      const name = e.cryptoKeyName('disabled')
      const before = await kms.encrypt('payload', 'disabled')
      e.disableVersion(name)
      try {
        const enc = await rejection(kms.encrypt('payload', 'disabled'))
        expect(enc).toBeInstanceOf(KeyDisabledError)
        expect((enc as KeyDisabledError).cause).toEqual({
          service: 'gcp',
          code: 'FAILED_PRECONDITION',
          status: 9,
        })
        expect(await rejection(kms.decrypt(before))).toBeInstanceOf(KeyDisabledError)
        expect(await rejection(kms.generateDataKey('disabled'))).toBeInstanceOf(KeyDisabledError)
        expect((await kms.getKeyInfo('disabled')).state).toBe('disabled')
        // Not retried: a disabled key stays disabled.
        expect(e.calls.count('Encrypt')).toBe(3)
      } finally {
        e.setVersionState(name, 1, 'ENABLED')
      }
      expect(text(await kms.decrypt(before))).toBe('payload')
    })

    it('describes the key: state, creation time, primary version', async () => {
      const info = await kms.getKeyInfo('app')
      expect(info).toMatchObject({ state: 'enabled', currentVersion: 1, versions: null })
      expect(info.reference).toMatchObject({ provider: 'gcp', keyId: 'app' })
      expect(info.reference.createdAt).toBeInstanceOf(Date)
    })

    it('maps destroyed and scheduled-for-destruction primaries onto the key states', async () => {
      const name = e.createCryptoKey('doomed')
      e.setVersionState(name, 1, 'DESTROY_SCHEDULED')
      expect((await kms.getKeyInfo('doomed')).state).toBe('pending_deletion')
      e.setVersionState(name, 1, 'DESTROYED')
      expect((await kms.getKeyInfo('doomed')).state).toBe('destroyed')
      expect(await rejection(kms.encrypt('payload', 'doomed'))).toBeInstanceOf(KeyDisabledError)
    })
  })

  describe('rotation', () => {
    it('makes the new version primary, and ciphertexts of the old one still decrypt', async () => {
      const name = e.cryptoKeyName('rotating')
      const start = e.primaryVersion(name)!
      const before = await kms.encrypt('before', 'rotating', { t: '1' })
      const info = await kms.rotateKey('rotating')
      expect(info.currentVersion).toBe(start + 1)
      expect(e.primaryVersion(name)).toBe(start + 1)
      expect(info.state).toBe('enabled')
      expect(e.calls.count('CreateCryptoKeyVersion')).toBe(1)
      expect(e.calls.count('UpdateCryptoKeyPrimaryVersion')).toBe(1)
      const after = await kms.encrypt('after', 'rotating', { t: '1' })
      expect(Buffer.from(after.ciphertext).readUInt32BE(1)).toBe(start + 1)
      expect(text(await kms.decrypt(before))).toBe('before')
      expect(text(await kms.decrypt(after))).toBe('after')
    })

    it('reports a rotation of a missing key as KeyNotFoundError', async () => {
      expect(await rejection(kms.rotateKey('no-such-key'))).toBeInstanceOf(KeyNotFoundError)
    })
  })

  describe('emulator wire protocol (through the real client)', () => {
    it('fills ciphertext_crc32c, and sets verified_* only for checksums the request carried', async () => {
      const name = e.cryptoKeyName('app')
      const plaintext = Buffer.from('wire')
      const aad = Buffer.from('{"k":"v"}')
      const [bare] = await raw.encrypt(
        { name, plaintext, additionalAuthenticatedData: aad },
        once(),
      )
      expect(bare.name).toBe(`${name}/cryptoKeyVersions/1`)
      expect(bare.verifiedPlaintextCrc32c).toBe(false)
      expect(bare.verifiedAdditionalAuthenticatedDataCrc32c).toBe(false)
      expect(bare.protectionLevel).toBe('SOFTWARE')
      expect(Number(bare.ciphertextCrc32c?.value)).toBe(crc32c(bare.ciphertext as Buffer))
      const [checked] = await raw.encrypt(
        {
          name,
          plaintext,
          plaintextCrc32c: { value: crc32c(plaintext) },
          additionalAuthenticatedData: aad,
          additionalAuthenticatedDataCrc32c: { value: crc32c(aad) },
        },
        once(),
      )
      expect(checked.verifiedPlaintextCrc32c).toBe(true)
      expect(checked.verifiedAdditionalAuthenticatedDataCrc32c).toBe(true)
      const [plain] = await raw.decrypt(
        {
          name,
          ciphertext: checked.ciphertext as Buffer,
          ciphertextCrc32c: { value: crc32c(checked.ciphertext as Buffer) },
          additionalAuthenticatedData: aad,
        },
        once(),
      )
      expect(Buffer.from(plain.plaintext as Buffer).toString()).toBe('wire')
      expect(Number(plain.plaintextCrc32c?.value)).toBe(crc32c(plaintext))
      expect(plain.usedPrimary).toBe(true)
    })

    it('rejects a request whose checksum does not match with INVALID_ARGUMENT, as Cloud KMS words it', async () => {
      const name = e.cryptoKeyName('app')
      const plaintext = Buffer.from('wire')
      await expect(
        raw.encrypt({ name, plaintext, plaintextCrc32c: { value: 1 } }, once()),
      ).rejects.toMatchObject({
        code: 3,
        details:
          'The checksum in field plaintext_crc32c did not match the data in field plaintext.',
      })
      await expect(
        raw.encrypt(
          {
            name,
            plaintext,
            additionalAuthenticatedData: Buffer.from('x'),
            additionalAuthenticatedDataCrc32c: { value: '7' },
          },
          once(),
        ),
      ).rejects.toMatchObject({
        code: 3,
        details:
          'The checksum in field additional_authenticated_data_crc32c did not match the data in field additional_authenticated_data.',
      })
      const [enc] = await raw.encrypt({ name, plaintext }, once())
      await expect(
        raw.decrypt(
          { name, ciphertext: enc.ciphertext as Buffer, ciphertextCrc32c: { value: 0 } },
          once(),
        ),
      ).rejects.toMatchObject({
        code: 3,
        details:
          'The checksum in field ciphertext_crc32c did not match the data in field ciphertext.',
      })
    })

    it('accepts a checksum of 0 for data whose CRC32C is 0 (an empty AAD wrapper)', async () => {
      const name = e.cryptoKeyName('app')
      const [res] = await raw.encrypt(
        {
          name,
          plaintext: Buffer.from('z'),
          additionalAuthenticatedDataCrc32c: { value: 0 },
        },
        once(),
      )
      expect(res.verifiedAdditionalAuthenticatedDataCrc32c).toBe(true)
    })

    it('encrypts with a named version, decrypts by key only, and fails opaquely on a wrong AAD', async () => {
      const name = e.cryptoKeyName('app')
      const [enc] = await raw.encrypt(
        { name: `${name}/cryptoKeyVersions/1`, plaintext: Buffer.from('v1') },
        once(),
      )
      expect(enc.name).toBe(`${name}/cryptoKeyVersions/1`)
      await expect(
        raw.decrypt(
          { name: `${name}/cryptoKeyVersions/1`, ciphertext: enc.ciphertext as Buffer },
          once(),
        ),
      ).rejects.toMatchObject({ code: 3 })
      await expect(
        raw.decrypt(
          {
            name,
            ciphertext: enc.ciphertext as Buffer,
            additionalAuthenticatedData: Buffer.from('x'),
          },
          once(),
        ),
      ).rejects.toMatchObject({
        code: 3,
        details: "Decryption failed: verify that 'name' refers to the correct CryptoKey.",
      })
    })

    it('answers missing, duplicate and unserved resources with the real status codes', async () => {
      await expect(
        raw.getCryptoKey({ name: e.cryptoKeyName('nope') }, once()),
      ).rejects.toMatchObject({
        code: 5,
        details: `CryptoKey ${e.cryptoKeyName('nope')} not found.`,
      })
      await expect(
        raw.getCryptoKeyVersion({ name: `${e.cryptoKeyName('app')}/cryptoKeyVersions/99` }, once()),
      ).rejects.toMatchObject({ code: 5 })
      await expect(
        raw.createKeyRing(
          { parent: 'projects/test-project/locations/global', keyRingId: 'test-ring', keyRing: {} },
          once(),
        ),
      ).rejects.toMatchObject({ code: 6 })
      await expect(
        raw.createCryptoKey(
          {
            parent: e.keyRingName('absent-ring'),
            cryptoKeyId: 'k',
            cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
          },
          once(),
        ),
      ).rejects.toMatchObject({ code: 5 })
      await expect(raw.getCryptoKey({ name: 'not/a/key' }, once())).rejects.toMatchObject({
        code: 3,
      })
      await expect(
        raw.listKeyRings({ parent: 'projects/test-project/locations/global' }, once()),
      ).rejects.toMatchObject({ code: 12 })
    })

    it('creates key rings and keys over gRPC, and counts every call per method', async () => {
      const [ring] = await raw.createKeyRing(
        {
          parent: 'projects/test-project/locations/global',
          keyRingId: 'made-over-grpc',
          keyRing: {},
        },
        once(),
      )
      expect(ring.name).toBe(e.keyRingName('made-over-grpc'))
      const [key] = await raw.createCryptoKey(
        {
          parent: ring.name!,
          cryptoKeyId: 'k1',
          cryptoKey: {
            purpose: 'ENCRYPT_DECRYPT',
            versionTemplate: { algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION' },
          },
        },
        once(),
      )
      expect(key).toMatchObject({
        name: `${ring.name}/cryptoKeys/k1`,
        purpose: 'ENCRYPT_DECRYPT',
        primary: { name: `${ring.name}/cryptoKeys/k1/cryptoKeyVersions/1`, state: 'ENABLED' },
      })
      await expect(
        raw.createCryptoKey(
          { parent: ring.name!, cryptoKeyId: 'k2', cryptoKey: { purpose: 'ASYMMETRIC_SIGN' } },
          once(),
        ),
      ).rejects.toMatchObject({ code: 3 })
      const [empty] = await raw.createCryptoKey(
        {
          parent: ring.name!,
          cryptoKeyId: 'k3',
          cryptoKey: { purpose: 'ENCRYPT_DECRYPT' },
          skipInitialVersionCreation: true,
        },
        once(),
      )
      expect(empty.primary).toBeNull()
      expect(e.calls.snapshot()).toEqual({ CreateKeyRing: 1, CreateCryptoKey: 3 })
    })

    it('answers injected faults with UNAVAILABLE and RESOURCE_EXHAUSTED', async () => {
      const name = e.cryptoKeyName('app')
      e.faults.failNext(1, 'throttle')
      await expect(raw.getCryptoKey({ name }, once())).rejects.toMatchObject({ code: 8 })
      e.faults.failNext(1, 'unavailable')
      await expect(raw.getCryptoKey({ name }, once())).rejects.toMatchObject({ code: 14 })
      e.faults.setOutage(true)
      await expect(raw.getCryptoKey({ name }, once())).rejects.toMatchObject({ code: 14 })
      e.faults.setOutage(false)
      await raw.getCryptoKey({ name }, once())
      expect(e.calls.count('GetCryptoKey')).toBe(4)
    })

    it('validates rotation settings on UpdateCryptoKey as the service does', async () => {
      const name = e.createCryptoKey('policy-checks')
      const day = 86_400
      await expect(
        raw.updateCryptoKey(
          {
            cryptoKey: { name, rotationPeriod: { seconds: 3600 } },
            updateMask: { paths: ['rotation_period'] },
          },
          once(),
        ),
      ).rejects.toMatchObject({ code: 3 })
      await expect(
        raw.updateCryptoKey(
          {
            cryptoKey: { name, rotationPeriod: { seconds: 30 * day } },
            updateMask: { paths: ['rotation_period'] },
          },
          once(),
        ),
      ).rejects.toMatchObject({
        code: 3,
        details: 'next_rotation_time must be set if rotation_period is set.',
      })
      await expect(
        raw.updateCryptoKey(
          { cryptoKey: { name, purpose: 'MAC' }, updateMask: { paths: ['purpose'] } },
          once(),
        ),
      ).rejects.toMatchObject({ code: 3 })
    })
  })
})

describe('GcpKmsProvider rotation policy and scheduled rotation (emulator clock)', () => {
  const DAY = 86_400_000
  let now = Date.UTC(2026, 0, 1)
  let e: GcpKmsEmulator
  let kms: GcpKmsProvider
  let raw: KeyManagementServiceClient

  beforeAll(async () => {
    e = await startGcpKmsEmulator({ keys: ['plain'], clock: () => now })
    kms = new GcpKmsProvider({ ...e.providerOptions(), ...FAST })
    raw = rawClient(e)
  })
  afterAll(async () => {
    await raw.close()
    await kms.close()
    await e.close()
  })

  it('maps a key without a schedule to a disabled policy', async () => {
    expect(await kms.getRotationPolicy('plain')).toEqual({
      enabled: false,
      rotationPeriodDays: null,
      lastRotation: null,
      nextRotation: null,
    })
  })

  it('maps rotation_period / next_rotation_time, and the primary version time as the last rotation', async () => {
    const start = now
    const name = e.createCryptoKey('scheduled')
    await raw.updateCryptoKey(
      {
        cryptoKey: {
          name,
          rotationPeriod: { seconds: 90 * 86_400 },
          nextRotationTime: { seconds: Math.floor((start + 90 * DAY) / 1000) },
        },
        updateMask: { paths: ['rotation_period', 'next_rotation_time'] },
      },
      once(),
    )
    expect(await kms.getRotationPolicy('scheduled')).toEqual({
      enabled: true,
      rotationPeriodDays: 90,
      lastRotation: null,
      nextRotation: new Date(start + 90 * DAY),
    })
    now = start + 3 * DAY
    await kms.rotateKey('scheduled')
    expect(await kms.getRotationPolicy('scheduled')).toMatchObject({
      lastRotation: new Date(start + 3 * DAY),
      // A manual rotation does not move the schedule.
      nextRotation: new Date(start + 90 * DAY),
    })
    // At next_rotation_time the service rotates by itself and moves the schedule on.
    now = start + 91 * DAY
    const info = await kms.getKeyInfo('scheduled')
    expect(info.currentVersion).toBe(3)
    expect(await kms.getRotationPolicy('scheduled')).toEqual({
      enabled: true,
      rotationPeriodDays: 90,
      lastRotation: new Date(start + 90 * DAY),
      nextRotation: new Date(start + 180 * DAY),
    })
  })

  it('clears the schedule through update_mask', async () => {
    const name = e.createCryptoKey('unscheduled', {
      rotationPeriodSeconds: 30 * 86_400,
      nextRotationTime: new Date(now + 30 * DAY),
    })
    expect((await kms.getRotationPolicy('unscheduled')).rotationPeriodDays).toBe(30)
    await raw.updateCryptoKey(
      { cryptoKey: { name }, updateMask: { paths: ['rotation_period', 'next_rotation_time'] } },
      once(),
    )
    expect(await kms.getRotationPolicy('unscheduled')).toMatchObject({
      enabled: false,
      rotationPeriodDays: null,
      nextRotation: null,
    })
  })
})

describe('GcpKmsProvider with versions that start PENDING_GENERATION (HSM)', () => {
  it('waits for the new version to be ENABLED before making it primary', async () => {
    const e = await startGcpKmsEmulator({ keys: ['hsm'], pendingGenerationReads: 2 })
    const kms = new GcpKmsProvider({ ...e.providerOptions(), ...FAST })
    try {
      const info = await kms.rotateKey('hsm')
      expect(info.currentVersion).toBe(2)
      expect(e.calls.count('GetCryptoKeyVersion')).toBe(3)
      expect(e.calls.count('UpdateCryptoKeyPrimaryVersion')).toBe(1)
    } finally {
      await kms.close()
      await e.close()
    }
  })
})

describe('GcpKmsProvider error mapping', () => {
  const cases: Array<[number, string, new (...a: never[]) => KmsError, string?]> = [
    [5, 'NOT_FOUND', KeyNotFoundError],
    [9, 'FAILED_PRECONDITION', KeyDisabledError],
    [7, 'PERMISSION_DENIED', KmsAccessDeniedError],
    [16, 'UNAUTHENTICATED', KmsAccessDeniedError],
    [14, 'UNAVAILABLE', ProviderConnectionError, 'unavailable'],
    [4, 'DEADLINE_EXCEEDED', ProviderConnectionError, 'timeout'],
    [10, 'ABORTED', ProviderConnectionError, 'unavailable'],
    [13, 'INTERNAL', ProviderConnectionError, 'unavailable'],
    [8, 'RESOURCE_EXHAUSTED', ProviderConnectionError, 'throttled'],
  ]

  for (const [status, name, type, reason] of cases) {
    it(`maps ${name} (${status}) to ${type.name}${reason ? ` (${reason})` : ''} with a sanitized cause`, async () => {
      // An SDK-shaped error carrying things that must not leak.
      const error = Object.assign(new Error(`${status} ${name}: token ya29.secret-token`), {
        code: status,
        details: 'ya29.secret-token',
        metadata: { authorization: 'Bearer ya29.secret-token' },
      })
      const kms = new GcpKmsProvider({
        ...GCP_IDS,
        ...FAST,
        maxAttempts: 1,
        client: failingClient(error),
      })
      const err = await rejection(kms.getKeyInfo('app'))
      expect(err).toBeInstanceOf(type)
      if (reason !== undefined) expect((err as ProviderConnectionError).reason).toBe(reason)
      expect((err as KmsError).cause).toEqual({ service: 'gcp', code: name, status })
      expect(JSON.stringify({ m: (err as Error).message, c: (err as Error).cause })).not.toContain(
        'secret-token',
      )
    })
  }

  it('maps a socket failure to ProviderConnectionError("network") and anything else to a plain KmsError', async () => {
    const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET', secret: 'x' })
    const a = new GcpKmsProvider({
      ...GCP_IDS,
      ...FAST,
      maxAttempts: 1,
      client: failingClient(reset),
    })
    const err = await rejection(a.getKeyInfo('app'))
    expect(err).toBeInstanceOf(ProviderConnectionError)
    expect((err as ProviderConnectionError).reason).toBe('network')
    expect((err as Error).cause).toEqual({ service: 'gcp', code: 'ECONNRESET' })
    const odd = new GcpKmsProvider({ ...GCP_IDS, ...FAST, client: failingClient(new Error('odd')) })
    const err2 = await rejection(odd.getKeyInfo('app'))
    expect(err2).toMatchObject({ code: 'ERR_KMS_ERROR', message: 'Cloud KMS call failed' })
    expect((err2 as Error).cause).toEqual({ service: 'gcp' })
  })

  it('rebuilds its client after a setup failure (the SDK would cache it), keeping only the code', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fsl-gcp-'))
    const keyFilename = join(dir, 'service-account.json')
    // A loopback port nothing listens on.
    const closed = net.createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as net.AddressInfo).port
    await new Promise((resolve) => closed.close(resolve))
    const guard = guardNetwork()
    const kms = new GcpKmsProvider({
      ...GCP_IDS,
      ...FAST,
      apiEndpoint: '127.0.0.1',
      port,
      keyFilename,
    })
    try {
      // The key file is missing: the client fails before any RPC.
      const first = await rejection(kms.encrypt('payload', 'app'))
      expect(first).toBeInstanceOf(EncryptionError)
      expect((first as Error).cause).toEqual({ service: 'gcp', code: 'ENOENT' })
      expect(guard.connects).toEqual([])
      // With a file in place, a rebuilt client gets further (to the closed
      // port); a cached failed client would report ENOENT again.
      writeFileSync(keyFilename, '{}')
      const second = await rejection(kms.encrypt('payload', 'app'))
      expect((second as Error).cause).not.toEqual({ service: 'gcp', code: 'ENOENT' })
      expect(guard.connects.every((c) => c === `127.0.0.1:${port}`)).toBe(true)
      expect(guard.lookups).toEqual([])
    } finally {
      guard.restore()
      await kms.close()
    }
  })

  it('maps INVALID_ARGUMENT on decrypt to the opaque DecryptionError, elsewhere to a plain KmsError', async () => {
    const error = Object.assign(new Error('3 INVALID_ARGUMENT: Decryption failed'), {
      code: 3,
      details: "Decryption failed: verify that 'name' refers to the correct CryptoKey.",
    })
    const kms = new GcpKmsProvider({ ...GCP_IDS, ...FAST, client: failingClient(error) })
    const { EncryptedData } = await import('../../src/kms/index.js')
    const enc = new EncryptedData({
      ciphertext: new Uint8Array([1, 2, 3]),
      keyReference: kms.reference('app'),
      algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION',
      encryptedAt: new Date(0),
    })
    const dec = await rejection(kms.decrypt(enc))
    expect(dec).toBeInstanceOf(DecryptionError)
    expect((dec as Error).cause).toBeUndefined()
    const info = await rejection(kms.getKeyInfo('app'))
    expect(info).toMatchObject({ code: 'ERR_KMS_ERROR' })
    expect((info as Error).cause).toEqual({ service: 'gcp', code: 'INVALID_ARGUMENT', status: 3 })
    expect(await rejection(kms.encrypt('x', 'app'))).toBeInstanceOf(EncryptionError)
  })
})

describe('GcpKmsProvider options and packaging', () => {
  it('throws MissingDependencyError naming @google-cloud/kms when the SDK is not installed', () => {
    const asked: string[] = []
    setGcpSdkResolver((name) => {
      asked.push(name)
      throw Object.assign(new Error(`Cannot find module '${name}'`), { code: 'MODULE_NOT_FOUND' })
    })
    try {
      expect(() => new GcpKmsProvider(GCP_IDS)).toThrow(
        expect.objectContaining({
          code: 'ERR_DEPENDENCY_MISSING',
          packageName: '@google-cloud/kms',
          message: expect.stringContaining('npm install @google-cloud/kms'),
        }),
      )
      expect(asked).toEqual(['@google-cloud/kms'])
      // A client passed in needs no SDK.
      expect(
        () => new GcpKmsProvider({ ...GCP_IDS, client: failingClient(new Error('unused')) }),
      ).not.toThrow()
    } finally {
      setGcpSdkResolver()
    }
  })

  it('rejects bad options with ERR_CONFIG_INVALID naming the field', () => {
    const bad: Array<[unknown, string]> = [
      [{ locationId: 'global', keyRingId: 'r' }, 'projectId'],
      [{ ...GCP_IDS, projectId: 'Bad Project' }, 'projectId'],
      [{ ...GCP_IDS, keyRingId: 'a/b' }, 'keyRingId'],
      [{ ...GCP_IDS, locationId: 'Europe West' }, 'locationId'],
      [{ ...GCP_IDS, port: 70_000 }, 'port'],
      [{ ...GCP_IDS, apiEndpoint: 'https://kms.example/' }, 'apiEndpoint'],
      [{ ...GCP_IDS, insecure: true }, 'apiEndpoint'],
      [
        { ...GCP_IDS, insecure: true, apiEndpoint: '127.0.0.1', keyFilename: '/k.json' },
        'insecure',
      ],
      [
        { ...GCP_IDS, credentials: { client_email: 'a@b.c', private_key: 'k' }, keyFilename: '/k' },
        'keyFilename',
      ],
      [{ ...GCP_IDS, client: failingClient(1), apiEndpoint: '127.0.0.1' }, 'client'],
      [{ ...GCP_IDS, client: {} }, 'client'],
      [{ ...GCP_IDS, region: 'us' }, 'region'],
    ]
    for (const [options, field] of bad) {
      expect(() => new GcpKmsProvider(options as GcpKmsProviderOptions)).toThrow(
        expect.objectContaining({
          code: 'ERR_CONFIG_INVALID',
          message: expect.stringContaining(field),
        }),
      )
    }
  })

  it('never puts a service account private key in a configuration error', () => {
    const privateKey = '-----BEGIN PRIVATE KEY-----\nMIIsecret\n-----END PRIVATE KEY-----\n'
    try {
      new GcpKmsProvider({
        ...GCP_IDS,
        credentials: { client_email: 'svc@p.iam.gserviceaccount.com', private_key: privateKey },
        keyFilename: '/k.json',
      })
      throw new Error('expected a configuration error')
    } catch (err) {
      expect((err as Error).message).not.toContain('MIIsecret')
    }
  })
})
