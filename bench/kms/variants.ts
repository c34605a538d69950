/**
 * The contenders of `npm run bench -- kms`, each as a pair of calls (seal a
 * payload, open a ciphertext) over one payload size, built once and checked
 * before anything is timed.
 *
 * - `ours`, `ours-aad`: `KeyManager.localEncrypt` / `localDecrypt` from the
 *   package's public entry point (`fraiseql-security/kms`, i.e. dist/), bytes
 *   in and out, without and with a short string `aad`.
 * - `raw`, `raw-aa`: what a caller would write by hand with `node:crypto`:
 *   AES-256-GCM, a fresh random 12-byte nonce per encryption, the output
 *   `nonce || ciphertext || tag`. `raw-aa` is a second, identical instance
 *   measured as if it were another contender (A/A control: its ratio to
 *   `raw` is the noise floor).
 * - `aws-signed`: `@aws-crypto/client-node`'s default suite (committing,
 *   ECDSA P-384 signed) over a raw AES-256 keyring.
 * - `aws-cached`: its fastest configuration: the unsigned committing suite
 *   through a `NodeCachingMaterialsManager` over the same kind of keyring,
 *   with limits generous enough that one data key serves the whole run.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import {
  AlgorithmSuiteIdentifier,
  buildClient,
  CommitmentPolicy,
  getLocalCryptographicMaterialsCache,
  NodeCachingMaterialsManager,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
} from '@aws-crypto/client-node'
import { KeyManager, LocalKmsProvider, MemoryKeyringStore } from 'fraiseql-security/kms'

export const VARIANTS = ['ours', 'ours-aad', 'raw', 'raw-aa', 'aws-signed', 'aws-cached'] as const
export type Variant = (typeof VARIANTS)[number]

/** The AWS variants run at a few hundred to a few thousand ops/s: they get longer windows. */
export const SLOW_VARIANTS: ReadonlySet<Variant> = new Set(['aws-signed', 'aws-cached'])

export const DESCRIPTIONS: Record<Variant, string> = {
  ours: '`ours`: `KeyManager.localEncrypt` / `localDecrypt`, bytes, no aad',
  'ours-aad': '`ours-aad`: the same with `aad` = `"customer:42"` (a string, as in the docs)',
  raw: '`raw`: node:crypto AES-256-GCM by hand, random 12-byte nonce, `nonce || ct || tag`',
  'raw-aa': '`raw-aa`: a second identical `raw` (A/A control)',
  'aws-signed':
    '`aws-signed`: @aws-crypto/client-node default suite (0x0578, committing + ECDSA P-384), raw AES-256 keyring',
  'aws-cached':
    '`aws-cached`: @aws-crypto/client-node unsigned committing suite (0x0478) through `NodeCachingMaterialsManager`',
}

export const AAD = 'customer:42'

/**
 * One operation under test. Sync functions (the raw baseline) are passed as
 * they are: the harness awaits whatever they return, so they pay the same
 * loop cost as the async APIs but no promise of their own, which is what a
 * caller inlining node:crypto would pay.
 */
export type Op = () => Promise<unknown>

export interface Contender {
  readonly encrypt: Op
  readonly decrypt: Op
}

export interface Setup {
  /** `contenders[size][variant]`. */
  readonly contenders: ReadonlyMap<number, Record<Variant, Contender>>
  /** What the checks before timing found, one line each, for the results file. */
  readonly checks: readonly string[]
  /** Times the AWS cache had to fetch materials from the keyring (its misses), so far. */
  readonly cacheMisses: () => { encrypt: number; decrypt: number }
}

const sync = (fn: () => unknown): Op => fn as Op

function rawSeal(key: Buffer, plaintext: Uint8Array): Buffer {
  const nonce = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, nonce)
  const head = cipher.update(plaintext)
  const tail = cipher.final()
  return Buffer.concat([nonce, head, tail, cipher.getAuthTag()])
}

function rawOpen(key: Buffer, sealed: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12))
  decipher.setAuthTag(sealed.subarray(sealed.length - 16))
  const head = decipher.update(sealed.subarray(12, sealed.length - 16))
  decipher.final() // GCM returns nothing here; it throws on a bad tag
  return head
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(b)
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`kms bench sanity check failed: ${what}`)
}

export async function setup(sizes: readonly number[]): Promise<Setup> {
  const keyManager = new KeyManager({
    providers: { local: new LocalKmsProvider() },
    defaultProvider: 'local',
    defaultKeyId: 'app',
    keyring: new MemoryKeyringStore(),
  })
  await keyManager.initialize()

  const rawKey = randomBytes(32)
  const rawAaKey = randomBytes(32)

  const keyring = () =>
    new RawAesKeyringNode({
      keyNamespace: 'fraiseql-bench',
      keyName: 'wrapping-key',
      unencryptedMasterKey: randomBytes(32),
      wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
    })
  const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
  const signedKeyring = keyring()
  // Every cache put follows a miss (materials fetched from the keyring), so
  // counting puts says whether the cache really served the measured calls.
  const misses = { encrypt: 0, decrypt: 0 }
  const localCache = getLocalCryptographicMaterialsCache(16)
  const cache: typeof localCache = {
    ...localCache,
    putEncryptionMaterial(...args) {
      misses.encrypt++
      localCache.putEncryptionMaterial(...args)
    },
    putDecryptionMaterial(...args) {
      misses.decrypt++
      localCache.putDecryptionMaterial(...args)
    },
  }
  const cmm = new NodeCachingMaterialsManager({
    backingMaterials: keyring(),
    cache,
    maxAge: 60 * 60 * 1000,
    maxMessagesEncrypted: 2 ** 32, // the SDK's ceiling (Maximum.MESSAGES_PER_CACHED_KEY_LIMIT)
  })
  const cachedSuite = AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY

  const checks: string[] = []
  const contenders = new Map<number, Record<Variant, Contender>>()
  for (const size of sizes) {
    const payload = randomBytes(size)
    const label = `${size / 1024} KiB`

    const ours = await keyManager.localEncrypt(payload)
    const oursAad = await keyManager.localEncrypt(payload, AAD)
    check(ours.length === 1 + 16 + 12 + size + 16, `${label} ours: ciphertext length`)
    check(same(await keyManager.localDecrypt(ours), payload), `${label} ours: round trip`)
    check(same(await keyManager.localDecrypt(oursAad, AAD), payload), `${label} ours-aad`)
    const wrongAad = await keyManager.localDecrypt(oursAad, 'customer:43').then(
      () => false,
      () => true,
    )
    check(wrongAad, `${label} ours-aad: a wrong aad must fail`)

    const raw = rawSeal(rawKey, payload)
    const rawAa = rawSeal(rawAaKey, payload)
    check(raw.length === 12 + size + 16, `${label} raw: ciphertext length`)
    check(same(rawOpen(rawKey, raw), payload), `${label} raw: round trip`)
    check(same(rawOpen(rawAaKey, rawAa), payload), `${label} raw-aa: round trip`)

    const signed = await encrypt(signedKeyring, payload)
    check(
      signed.messageHeader.suiteId ===
        AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384,
      `${label} aws-signed: suite is ${signed.messageHeader.suiteId}`,
    )
    check(
      same((await decrypt(signedKeyring, signed.result)).plaintext, payload),
      `${label} aws-signed: round trip`,
    )
    const cached = await encrypt(cmm, payload, { suiteId: cachedSuite })
    const cachedAgain = await encrypt(cmm, payload, { suiteId: cachedSuite })
    check(
      cached.messageHeader.suiteId === cachedSuite,
      `${label} aws-cached: suite is ${cached.messageHeader.suiteId}`,
    )
    check(
      same(
        cached.messageHeader.encryptedDataKeys[0]!.encryptedDataKey,
        cachedAgain.messageHeader.encryptedDataKeys[0]!.encryptedDataKey,
      ),
      `${label} aws-cached: two messages must share one cached data key`,
    )
    check(
      same((await decrypt(cmm, cached.result)).plaintext, payload),
      `${label} aws-cached: round trip`,
    )
    check(
      same((await decrypt(cmm, cachedAgain.result)).plaintext, payload),
      `${label} aws-cached: round trip (second message)`,
    )

    checks.push(
      `${label}: every contender's ciphertext decrypts back to the payload; ours is ${ours.length} bytes (17-byte header + 12-byte nonce + ${size} + 16-byte tag), raw ${raw.length}, aws-signed ${signed.result.length}, aws-cached ${cached.result.length}; ours-aad refuses a wrong aad; aws-signed used suite 0x0578 and aws-cached 0x0478, whose two test messages carried the same encrypted data key (served from the cache).`,
    )

    contenders.set(size, {
      ours: {
        encrypt: () => keyManager.localEncrypt(payload),
        decrypt: () => keyManager.localDecrypt(ours),
      },
      'ours-aad': {
        encrypt: () => keyManager.localEncrypt(payload, AAD),
        decrypt: () => keyManager.localDecrypt(oursAad, AAD),
      },
      raw: {
        encrypt: sync(() => rawSeal(rawKey, payload)),
        decrypt: sync(() => rawOpen(rawKey, raw)),
      },
      'raw-aa': {
        encrypt: sync(() => rawSeal(rawAaKey, payload)),
        decrypt: sync(() => rawOpen(rawAaKey, rawAa)),
      },
      'aws-signed': {
        encrypt: () => encrypt(signedKeyring, payload),
        decrypt: () => decrypt(signedKeyring, signed.result),
      },
      'aws-cached': {
        encrypt: () => encrypt(cmm, payload, { suiteId: cachedSuite }),
        decrypt: () => decrypt(cmm, cached.result),
      },
    })
  }
  return { contenders, checks, cacheMisses: () => ({ ...misses }) }
}
