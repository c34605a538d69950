/**
 * The contenders of `npm run bench -- api-keys`, built once and checked
 * before anything is timed:
 *
 * - `warm`: `ApiKeyManager.validate(key)` with the key in the cache
 *   (`fraiseql-security/api-keys` from dist/, PostgreSQL store, flush every
 *   second as in production).
 * - `miss`: the same call with a cache TTL of 0, so every call reads the
 *   key's row from PostgreSQL (one `SELECT` by primary key).
 * - `prefixed`: `prefixed-api-key`'s `checkAPIKey(token, hash)`: a bare
 *   SHA-256 of the long token compared with the stored hash.
 * - `hmac`, `hmac-aa`: HMAC-SHA256 of the key under a 32-byte pepper and
 *   `timingSafeEqual` with the stored tag, written by hand (`hmac-aa` is a
 *   second identical instance: the A/A control).
 */
import { createHmac, createSecretKey, randomBytes, timingSafeEqual } from 'node:crypto'
import { ApiKeyManager, type ApiKeyStore, PostgresApiKeyStore } from 'fraiseql-security/api-keys'
import { KeyManager, LocalKmsProvider } from 'fraiseql-security/kms'
import pg from 'pg'
import { checkAPIKey, generateAPIKey } from 'prefixed-api-key'

export const VARIANTS = ['warm', 'miss', 'prefixed', 'hmac', 'hmac-aa'] as const
export type Variant = (typeof VARIANTS)[number]

export const DESCRIPTIONS: Record<Variant, string> = {
  warm: '`warm`: `ApiKeyManager.validate(key)`, key cached (no KMS call, no read, no write)',
  miss: '`miss`: `ApiKeyManager.validate(key)` with `cache.ttlMs: 0`: one PostgreSQL read per call',
  prefixed: "`prefixed`: `prefixed-api-key`'s `checkAPIKey(token, longTokenHash)` (SHA-256)",
  hmac: '`hmac`: HMAC-SHA256(pepper, key) + `timingSafeEqual`, by hand',
  'hmac-aa': '`hmac-aa`: a second identical `hmac` (A/A control)',
}

export type Op = () => Promise<unknown>

/** Store calls and KMS calls seen so far, for the per-validation counts. */
export interface Counters {
  /** `validate()` calls made by the timed ops. */
  calls: number
  reads: number
  writes: number
  kms: number
}

export interface Setup {
  readonly ops: Record<Variant, Op>
  readonly counters: Counters
  readonly checks: readonly string[]
  close(): Promise<void>
}

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`api-keys bench sanity check failed: ${what}`)
}

const READS = new Set(['getKey', 'listKeys', 'listPeppers', 'readAudit'])
const WRITES = new Set(['insertKey', 'rotateKey', 'revokeKey', 'flush', 'appendAudit', 'addPepper'])

function counted(store: ApiKeyStore, counters: Counters): ApiKeyStore {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        if (READS.has(String(prop))) counters.reads++
        if (WRITES.has(String(prop))) counters.writes++
        return (value as (...a: unknown[]) => unknown).apply(target, args)
      }
    },
  })
}

const sync = (fn: () => unknown): Op => fn as Op

export async function setup(): Promise<Setup> {
  const counters: Counters = { calls: 0, reads: 0, writes: 0, kms: 0 }
  const provider = new LocalKmsProvider({ keys: { app: randomBytes(32) } })
  for (const op of ['encrypt', 'decrypt', 'generateDataKey'] as const) {
    const original = provider[op].bind(provider) as (...a: unknown[]) => Promise<unknown>
    ;(provider as unknown as Record<string, unknown>)[op] = (...args: unknown[]) => {
      counters.kms++
      return original(...args)
    }
  }
  const keyManager = new KeyManager({
    providers: { local: provider },
    defaultProvider: 'local',
    defaultKeyId: 'app',
  })
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 })
  pool.on('error', () => {})
  const schema = `bench_api_keys_${randomBytes(4).toString('hex')}`
  const storeWarm = new PostgresApiKeyStore({ pool, schema })
  const storeMiss = new PostgresApiKeyStore({ pool, schema })
  const warmManager = new ApiKeyManager({
    store: counted(storeWarm, counters),
    keyManager,
    failedAttempts: false,
  })
  const missManager = new ApiKeyManager({
    store: counted(storeMiss, counters),
    keyManager,
    cache: { ttlMs: 0 },
    failedAttempts: false,
  })
  const { key } = await warmManager.create({
    name: 'bench',
    region: 'eu_west_1',
    tier: 'pro',
    permissions: ['orders:read'],
  })
  await missManager.initialize()
  const checks: string[] = []

  const warmGrant = await warmManager.validate(key)
  const missGrant = await missManager.validate(key)
  check(warmGrant.tier === 'pro' && missGrant.tier === 'pro', 'both managers validate the key')
  const wrong = await warmManager
    .validate(`${key.slice(0, -1)}${key.endsWith('x') ? 'y' : 'x'}`)
    .then(
      () => false,
      () => true,
    )
  check(wrong, 'a mutated key must be refused')

  // Per-validation counts, measured over a burst outside the timed windows.
  const N = 1000
  /** Reads, writes and KMS calls made by N validations of `key`. */
  const burst = async (manager: ApiKeyManager) => {
    const c0 = { ...counters }
    for (let i = 0; i < N; i++) await manager.validate(key)
    return {
      reads: counters.reads - c0.reads,
      writes: counters.writes - c0.writes,
      kms: counters.kms - c0.kms,
    }
  }
  const warm = await burst(warmManager)
  const miss = await burst(missManager)
  check(warm.kms === 0 && warm.reads === 0, `warm: ${JSON.stringify(warm)}`)
  check(miss.kms === 0 && miss.reads === N, `miss: ${JSON.stringify(miss)}`)
  checks.push(
    `Over ${N.toLocaleString('en-US')} validations each, outside the timed windows: \`warm\` made ${warm.kms} KMS calls, ${warm.reads} store reads and ${warm.writes} store writes; \`miss\` made ${miss.kms} KMS calls, ${miss.reads.toLocaleString('en-US')} store reads (one per validation) and ${miss.writes} store writes. Writes (last use, aggregated \`validated\` audit rows) happen only in the flush, one transaction per second per manager, off the request path.`,
  )

  const prefixedKey = await generateAPIKey({ keyPrefix: 'fraiseql' })
  check(prefixedKey.token !== undefined, 'prefixed-api-key generated a key')
  const token = prefixedKey.token!
  const tokenHash = prefixedKey.longTokenHash!
  check(checkAPIKey(token, tokenHash), 'prefixed-api-key accepts its own key')
  check(
    !checkAPIKey(`${token.slice(0, -1)}${token.endsWith('x') ? 'y' : 'x'}`, tokenHash),
    'prefixed-api-key refuses a mutated key',
  )

  const hmacSetup = () => {
    const pepper = createSecretKey(randomBytes(32))
    const stored = createHmac('sha256', pepper).update(key).digest()
    return () => timingSafeEqual(createHmac('sha256', pepper).update(key).digest(), stored)
  }
  const hmac = hmacSetup()
  const hmacAa = hmacSetup()
  check(hmac() && hmacAa(), 'the bare HMAC matches its stored tag')
  checks.push(
    `Every contender accepts its valid key and refuses a mutated one; our key is ${key.length} characters, prefixed-api-key's ${token.length}.`,
  )

  return {
    ops: {
      warm: () => {
        counters.calls++
        return warmManager.validate(key)
      },
      miss: () => {
        counters.calls++
        return missManager.validate(key)
      },
      prefixed: sync(() => checkAPIKey(token, tokenHash)),
      hmac: sync(hmac),
      'hmac-aa': sync(hmacAa),
    },
    counters,
    checks,
    async close() {
      await warmManager.close()
      await missManager.close()
      await storeWarm.close()
      await storeMiss.close()
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      await pool.end()
    },
  }
}
