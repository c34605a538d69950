/**
 * `ApiKeyManager`: issue, validate, rotate and revoke API keys.
 *
 * Storage: never the key, only `HMAC-SHA256(pepper, key)`. The 32-byte
 * pepper is generated once, kept in the store only wrapped by the KMS (in
 * its own table, not in the KeyManager's keyring: rotating data keys never
 * touches it), and unwrapped once, at `initialize()`.
 *
 * The hot path (`validate`): strict parse and checksum → the in-process
 * cache by key id (negative entries too) → HMAC and `timingSafeEqual` →
 * state checks. No KMS call, at most one database read (on a cache miss,
 * shared by concurrent callers), and no write: last use, `validated` /
 * `rejected` audit rows and lazy rehashes are queued and written by a
 * periodic flush. Other processes' changes reach the cache through the
 * store's `subscribe` (PostgreSQL `LISTEN/NOTIFY`, SQLite polling).
 */
import { isIP } from 'node:net'
import { z } from 'zod'
import { ConfigError } from '../errors.js'
import {
  RateLimitExceededError,
  RateLimiter,
  type RateLimitInfo,
  type RateLimitStore,
} from '../http/index.js'
import { apiKeyStatus } from '../internal/api-key-status.js'
import { type Clock, systemClock } from '../internal/clock.js'
import { inProduction } from '../internal/environment.js'
import { compileIpList, IpOrCidrSchema, ipKey, normalizeIp } from '../internal/ip-address.js'
import { describeError, type Logger, LoggerOptionSchema, stderrLogger } from '../internal/logger.js'
import { parseOptions } from '../internal/options.js'
import { type RandomBytes, secureRandomBytes } from '../internal/random.js'
import { unwrapReserved, wrapReserved } from '../internal/reserved-access.js'
import { EncryptedData, KeyManager, LocalKmsProvider } from '../kms/index.js'
import {
  type AuditAnchor,
  type AuditChainReport,
  AuditChainVerifier,
  type AuditCheckpoint,
  type AuditEventInput,
  type AuditRecord,
  auditHash,
  auditMac,
  checkpointMac,
} from './audit-chain.js'
import {
  ApiKeyAuditCheckpointError,
  ApiKeyConflictError,
  ApiKeyExpiredError,
  ApiKeyIpNotAllowedError,
  ApiKeyMalformedError,
  ApiKeyNotFoundError,
  ApiKeyPepperInUseError,
  type ApiKeyRejectedError,
  type ApiKeyRejectionReason,
  ApiKeyRequestError,
  ApiKeyRevokedError,
  ApiKeyStoreError,
  ApiKeyTamperedError,
  ApiKeyUnknownError,
} from './errors.js'
import {
  type ApiKeyEventListener,
  type ApiKeyEventName,
  type ApiKeyLifecycleEvent,
  LifecycleEmitter,
} from './events.js'
import {
  DEFAULT_PREFIXES,
  formatApiKey,
  KEY_ID_LENGTH,
  keyIdOf,
  MAX_PREFIX_LENGTH,
  MAX_REGION_LENGTH,
  PREFIX_PATTERN,
  REGION_PATTERN,
  SECRET_LENGTH,
  scanApiKey,
  sortPrefixes,
} from './format.js'
import { hashesEqual, KeyFingerprints, Pepper } from './hash.js'
import { auditKeys, rowMac, rowMacKey, rowMacValid } from './row-mac.js'
import { SqliteApiKeyStore } from './sqlite.js'
import type { ApiKeyChange, ApiKeyRow, ApiKeyStore, ListApiKeysOptions } from './store.js'

const DAY_MS = 24 * 60 * 60 * 1000

const fn = <T>(what: string) =>
  z.custom<T>((v) => typeof v === 'function', { message: `must be a function (${what})` })

const PrefixSchema = z
  .string()
  .max(MAX_PREFIX_LENGTH)
  .regex(PREFIX_PATTERN, 'must be lowercase letters and digits, "_"-separated')
const RegionSchema = z
  .string()
  .min(1)
  .max(MAX_REGION_LENGTH)
  .regex(REGION_PATTERN, 'must match [a-z0-9]+(_[a-z0-9]+)*')
const PermissionSchema = z.string().min(1).max(200)
const TierSchema = z.string().min(1).max(64)

export const ApiKeyCacheOptionsSchema = z
  .object({
    /**
     * How long a key read from the store is trusted without a change
     * notification (a safety net: notifications invalidate it at once).
     * @default 300000
     */
    ttlMs: z.number().int().min(0).max(DAY_MS).default(300_000),
    /**
     * How long an unknown key id is remembered as unknown, so forged ids
     * with valid checksums do not each cost a database read. A key created
     * meanwhile clears its entry through the change notification.
     * @default 60000
     */
    negativeTtlMs: z.number().int().min(0).max(DAY_MS).default(60_000),
    /** Keys kept; the oldest is dropped past this. @default 100000 */
    maxEntries: z.number().int().min(1).max(10_000_000).default(100_000),
    /** Unknown ids kept; the oldest is dropped past this. @default 100000 */
    maxNegativeEntries: z.number().int().min(0).max(10_000_000).default(100_000),
  })
  .strict()

export const FailedAttemptsSchema = z
  .object({
    /** Failed validations per client (IP; IPv6 per /64) per window. @default 20 */
    max: z.number().int().min(1).max(1_000_000).default(20),
    /** @default 60000 */
    windowMs: z
      .number()
      .int()
      .min(1)
      .max(7 * DAY_MS)
      .default(60_000),
    /** Shared rate-limit store (Redis, PostgreSQL) to count across processes. @default memory */
    store: z
      .custom<RateLimitStore>(
        (v) => typeof (v as Partial<RateLimitStore> | null)?.consume === 'function',
        { message: 'must implement consume(key, { policies, weight, now })' },
      )
      .optional(),
  })
  .strict()

export const ApiKeyManagerOptionsSchema = z
  .object({
    /**
     * Where keys live. Default: SQLite in memory (keys die with the
     * process); give a {@link SqliteApiKeyStore} on a file or a
     * `PostgresApiKeyStore` for anything real.
     */
    store: z
      .custom<ApiKeyStore>(
        (v) => typeof (v as Partial<ApiKeyStore> | null)?.getKey === 'function',
        { message: 'must be an ApiKeyStore' },
      )
      .optional(),
    /**
     * Wraps the pepper (one KMS call to create it, one per pepper version to
     * unwrap it at start). Default: a `KeyManager` over an in-memory
     * `LocalKmsProvider`, with a warning: a persistent store then holds a
     * pepper no later process can unwrap.
     */
    keyManager: z.instanceof(KeyManager).optional(),
    /**
     * Accepted key prefixes, matched longest first; the first is the default for `create`.
     * @default ['fraiseql_live', 'fraiseql_test']
     */
    prefixes: z
      .array(PrefixSchema)
      .min(1)
      .max(16)
      .refine((p) => new Set(p).size === p.length, 'must be unique')
      .default([...DEFAULT_PREFIXES]),
    /** Region of keys created without one. @default 'global' */
    defaultRegion: RegionSchema.default('global'),
    /** Lifetime of keys created without `expiresInDays`. @default 90 */
    defaultExpiresInDays: z.number().int().min(1).max(3650).default(90),
    /** Grace period of `rotate` without `graceMinutes`. @default 60 */
    defaultGraceMinutes: z
      .number()
      .int()
      .min(0)
      .max(30 * 24 * 60)
      .default(60),
    /**
     * Share of a key's lifetime after which `shouldRotate` is true and
     * `rotationRecommended` fires (day 72 of 90).
     * @default 0.8
     */
    rotationThreshold: z.number().gt(0).lt(1).default(0.8),
    /** `expiringSoon` fires this many days before expiry. @default 7 */
    expiringSoonDays: z.number().int().min(0).max(365).default(7),
    cache: ApiKeyCacheOptionsSchema.optional(),
    /**
     * Failed validations counted per client IP; past the limit a lookup that
     * would read the database answers 429 instead. `false` turns it off.
     */
    failedAttempts: z.union([FailedAttemptsSchema, z.literal(false)]).optional(),
    /**
     * How often queued work (last use, audit rows, rehashes) is written.
     * @default 1000
     */
    flushIntervalMs: z.number().int().min(10).max(3_600_000).default(1000),
    /**
     * Queued audit aggregates kept between flushes; past it, further
     * events are counted in one overflow row.
     * @default 10000
     */
    maxPendingAudit: z.number().int().min(1).max(1_000_000).default(10_000),
    /**
     * `rejected` rows with an address range written per flush. Rejections
     * are counted per (reason, key, /24 or /64 network); past this many
     * networks in one flush, the rest are counted in one row per reason, so
     * a flood from any number of addresses writes at most this plus one row
     * per reason (and one overflow row) per `flushIntervalMs`.
     * @default 100
     */
    maxRejectedRowsPerFlush: z.number().int().min(1).max(100_000).default(100),
    /** Write aggregated `validated` rows to the audit log. @default true */
    auditValidations: z.boolean().default(true),
    /**
     * Also keep each key sealed with `KeyManager.localEncrypt` (AAD = its
     * id), readable again with `reveal()`. Off by default: a key that
     * cannot be read back cannot leak from the database.
     * @default false
     */
    retainEncryptedKey: z.boolean().default(false),
    /** @default Date.now */
    clock: fn<Clock>('() => ms').optional(),
    /**
     * Source of keys and peppers. For tests only (deterministic keys): a
     * source that is not a CSPRNG makes every key and pepper guessable, so
     * it is refused (`ERR_CONFIG_INVALID`, path `randomBytes`) when
     * `environment` (or `NODE_ENV`) is `production`.
     * @default crypto.randomBytes
     */
    randomBytes: fn<RandomBytes>('size => bytes').optional(),
    /**
     * The deployment environment, read as ProfileEnforcer reads it; in
     * `production` (any case) a `randomBytes` option is refused.
     * @default process.env.NODE_ENV
     */
    environment: z.string().min(1).max(64).optional(),
    /**
     * How often a signed audit checkpoint (`{ sequence, hash, at, mac }` of
     * the chain's newest row) is emitted, when the chain grew since the last
     * one: logged (`info`, else `warn`, message `api-key audit checkpoint`)
     * and passed to `onCheckpoint`. Ship them to an append-only sink and pass
     * the latest to `verifyAuditChain({ anchor })`: that is what detects a
     * deleted tail. `false`: only on `checkpoint()` calls.
     * @default 300000 (5 minutes)
     */
    auditCheckpointIntervalMs: z
      .union([z.number().int().min(1000).max(86_400_000), z.literal(false)])
      .default(300_000),
    /**
     * Receives every checkpoint (timer and `checkpoint()` calls), for a sink
     * of your own (a WORM bucket, a ticket, another database). A rejection is
     * logged at `error` by the timer and rethrown by `checkpoint()`.
     * @default none (the log line only)
     */
    onCheckpoint:
      fn<(checkpoint: AuditCheckpoint) => void | Promise<void>>('checkpoint => void').optional(),
    /** Where warnings go (failed flush, lost notifications). @default stderr */
    logger: LoggerOptionSchema.optional(),
  })
  .strict()

export type ApiKeyManagerOptions = z.input<typeof ApiKeyManagerOptionsSchema>
type Resolved = z.output<typeof ApiKeyManagerOptionsSchema>

export const CreateApiKeySchema = z
  .object({
    /** A label for people (`"billing service"`). */
    name: z.string().min(1).max(200),
    /** Region written into the key (`eu_west_1`). @default the manager's `defaultRegion` */
    region: RegionSchema.optional(),
    /** Rate-limit tier. @default 'default' */
    tier: TierSchema.default('default'),
    /** @default [] */
    permissions: z.array(PermissionSchema).max(200).default([]),
    /** @default the manager's `defaultExpiresInDays` (90) */
    expiresInDays: z.number().int().min(1).max(3650).optional(),
    /** One of the manager's prefixes (`fraiseql_test` for a test key). @default the first */
    prefix: PrefixSchema.optional(),
    /** IPs/CIDRs the key may be used from (IPv4 and IPv6). @default anywhere */
    allowedIps: z.array(IpOrCidrSchema).max(100).optional(),
  })
  .strict()

export type CreateApiKeyInput = z.input<typeof CreateApiKeySchema>

export const RotateApiKeySchema = z
  .object({
    /** How long the old key keeps working. @default the manager's `defaultGraceMinutes` (60) */
    graceMinutes: z
      .number()
      .int()
      .min(0)
      .max(30 * 24 * 60)
      .optional(),
    /** Lifetime of the new key. @default the old key's lifetime */
    expiresInDays: z.number().int().min(1).max(3650).optional(),
  })
  .strict()

export type RotateApiKeyInput = z.input<typeof RotateApiKeySchema>

/** Who asked, for the audit log. */
export interface ApiKeyActionContext {
  /** The admin principal (API key id, user id). */
  readonly actor?: string
  /** The client address. */
  readonly ip?: string
}

/** Facts about the request a key arrives with. */
export interface ValidateContext {
  /** The client address (`request.ip`): per-key allowlists and failed-attempt counting. */
  readonly ip?: string
}

/** What a valid key grants. */
export interface ApiKeyValidation {
  readonly keyId: string
  readonly tier: string
  readonly permissions: readonly string[]
  readonly expiresAt: Date
  /** True past `rotationThreshold` (80 %) of the key's lifetime. */
  readonly shouldRotate: boolean
}

export type ApiKeyStatus = 'active' | 'grace' | 'rotated' | 'expired' | 'revoked'

/** A key as administrators see it: never the key, never its hash. */
export interface ApiKeyRecord {
  readonly keyId: string
  readonly name: string
  readonly prefix: string
  readonly region: string
  /** The key's first characters, to recognise it (`fraiseql_live_eu_Ab12Cd34Ef56_x9Qz`). */
  readonly start: string
  readonly tier: string
  readonly permissions: readonly string[]
  readonly allowedIps: readonly string[] | null
  readonly status: ApiKeyStatus
  readonly createdAt: Date
  readonly expiresAt: Date
  readonly rotatedAt: Date | null
  readonly graceUntil: Date | null
  readonly replacedBy: string | null
  readonly revokedAt: Date | null
  readonly revokedReason: string | null
  readonly lastUsedAt: Date | null
  readonly createdBy: string | null
  readonly shouldRotate: boolean
}

/** A new key: `key` is shown this once and cannot be read back. */
export interface CreatedApiKey {
  readonly key: string
  readonly keyId: string
  readonly record: ApiKeyRecord
}

export interface RotatedApiKey extends CreatedApiKey {
  /** The old key, now in its grace period. */
  readonly previous: ApiKeyRecord
}

/** What `checkLifecycle()` found (and emitted). */
export interface LifecycleReport {
  readonly rotationRecommended: string[]
  readonly expiringSoon: string[]
  readonly expired: string[]
}

/** A key in the cache, with everything validation needs precomputed. */
interface CachedKey {
  readonly keyId: string
  hash: Buffer
  pepperVersion: number
  readonly name: string
  readonly tier: string
  readonly permissions: readonly string[]
  readonly createdAt: number
  readonly expiresAt: number
  readonly rotateAt: number
  readonly expiringSoonAt: number
  graceUntil: number | null
  revokedAt: number | null
  /** null: any address. */
  readonly allow: ((ip: string) => boolean) | null
  readonly loadedAt: number
  /** The aggregate this key's last successful validation went to (the hot path's shortcut). */
  use: PendingAudit | undefined
  /** The key's fingerprint, once it passed the HMAC check in this process (see KeyFingerprints). */
  verified: Buffer | undefined
  /** The row as loaded (its MAC checked): what a lazy rehash re-MACs. */
  readonly row: ApiKeyRow
}

/** Validations or rejections of one (key, address, reason), counted until the next flush. */
interface PendingAudit {
  readonly event: 'validated' | 'rejected'
  readonly keyId: string | null
  readonly ip: string | null
  readonly reason: ApiKeyRejectionReason | null
  count: number
  firstAt: number
  lastAt: number
  /** The flush batch it belongs to: a cached pointer to it is stale once the batch is written. */
  batch: number
  /** The per-reason row of rejections past `maxRejectedRowsPerFlush` networks. */
  readonly overflow?: true
}

interface PendingRehash {
  readonly keyId: string
  readonly hash: Uint8Array
  readonly pepperVersion: number
  readonly fromVersion: number
  readonly rowMac: Uint8Array
  /** The MAC it replaces: the write is skipped when the row changed since it was read. */
  readonly fromRowMac: Uint8Array | undefined
}

interface Blocked {
  readonly until: number
  readonly info: RateLimitInfo
  readonly headers: Readonly<Record<string, string>>
}

/** What a load returns for a row whose MAC does not match. */
const TAMPERED = Symbol('tampered')

/**
 * The network a rejected attempt is counted under: IPv4 per /24, IPv6 per
 * /64 (one subscriber's allocation; `::ffff:` mapped addresses are IPv4),
 * anything that is not an address under one `invalid` bucket. Rotating
 * source addresses inside such a range then adds to one row's count.
 */
export function auditNetwork(ip: string): string {
  const key = ipKey(normalizeIp(ip), 64)
  if (key.includes(':')) return isIP(key.slice(0, key.lastIndexOf('/'))) === 6 ? key : 'invalid'
  if (isIP(key) !== 4) return 'invalid'
  return `${key.slice(0, key.lastIndexOf('.'))}.0/24`
}

/**
 * The refusal a client's next lookup gets, or undefined while it has
 * failures left. The failure just counted may have used the last unit
 * (`remaining` 0, still `allowed`): the client has then had its `max`
 * failed lookups, so the next one is refused until the window ends, not
 * let through to the database first (that made `max` 20 allow 21 reads).
 */
function exhausted(info: RateLimitInfo): RateLimitInfo | undefined {
  if (!info.allowed) return info
  if (info.remaining > 0) return undefined
  const retryAfterMs = Math.max(1, info.resetMs)
  return {
    ...info,
    allowed: false,
    retryAfterMs,
    policies: info.policies.map((p) =>
      p.remaining > 0 ? p : { ...p, allowed: false, retryAfterMs: Math.max(1, p.resetMs) },
    ),
  }
}

/** Context bound to a wrapped pepper: it cannot be swapped for another version's. */
const pepperContext = (version: number) => ({ 'fraiseql.api-key-pepper': String(version) })

let warnedDefaultKms = false

/**
 * @example
 * ```ts
 * import { ApiKeyManager, SqliteApiKeyStore } from 'fraiseql-security/api-keys'
 *
 * const keys = new ApiKeyManager({
 *   store: new SqliteApiKeyStore({ filename: '.data/api-keys.db' }),
 *   keyManager, // a KeyManager over Vault, AWS KMS or Cloud KMS
 * })
 * await keys.initialize()                        // migrations, one KMS call
 * const { key } = await keys.create({ name: 'billing', region: 'eu_west_1', tier: 'pro', permissions: ['orders:read'] })
 * const grant = await keys.validate(key, { ip: request.ip }) // no KMS call, no write
 * ```
 */
export class ApiKeyManager {
  readonly #o: Resolved
  readonly #store: ApiKeyStore
  readonly #ownsStore: boolean
  readonly #keyManager: KeyManager
  readonly #defaultKms: boolean
  readonly #prefixes: readonly string[]
  readonly #clock: Clock
  readonly #random: RandomBytes
  readonly #logger: Logger
  readonly #cacheOptions: z.output<typeof ApiKeyCacheOptionsSchema>
  readonly #events: LifecycleEmitter
  readonly #failures: RateLimiter | undefined

  readonly #keys = new Map<string, CachedKey>()
  readonly #negative = new Map<string, number>()
  readonly #loading = new Map<string, Promise<CachedKey | typeof TAMPERED | undefined>>()
  /** Bumped by every invalidation: a load that started before one does not cache its row. */
  #generation = 0
  readonly #blocked = new Map<string, Blocked>()

  readonly #peppers = new Map<number, Pepper>()
  /** Row-MAC subkeys by pepper version (row-mac.ts). */
  readonly #rowMacKeys = new Map<number, Pepper>()
  readonly #fingerprints = new KeyFingerprints()
  /** Audit-chain link and checkpoint subkeys of pepper version 1 (row-mac.ts). */
  #auditKeys: { chain: Pepper; checkpoint: Pepper } | undefined
  #checkpointTimer: NodeJS.Timeout | undefined
  /** The sequence of the last checkpoint emitted by the timer: one per growth of the chain. */
  #checkpointedSeq = -1
  #currentPepper = 0
  #loadingPeppers: Promise<void> | undefined

  /** The latest `validated` aggregate per key, for `lastUsedAt` in records before a flush. */
  #pendingUse = new Map<string, PendingAudit>()
  /** Last use of a failed flush, written by the next one. */
  #carriedLastUsed = new Map<string, number>()
  #batch = 0
  #pendingRehash = new Map<string, PendingRehash>()
  #pendingAudit = new Map<string, PendingAudit>()
  #overflow = 0
  /** Rejection aggregates with a network in this batch (bounded by `maxRejectedRowsPerFlush`). */
  #pendingRejected = 0
  #flushing: Promise<void> | undefined
  #flushTimer: NodeJS.Timeout | undefined
  readonly #emitted = new Set<string>()

  #ready = false
  #initializing: Promise<void> | undefined
  #unsubscribe: (() => Promise<void>) | undefined
  #closed = false

  constructor(options: ApiKeyManagerOptions = {}) {
    const o = parseOptions('ApiKeyManager', ApiKeyManagerOptionsSchema, options)
    // Precondition: an injected random source is a test fixture; production
    // keys and peppers come from the CSPRNG only.
    if (o.randomBytes !== undefined && inProduction(o.environment)) {
      throw new ConfigError('ApiKeyManager', [
        {
          path: ['randomBytes'],
          message: 'is for tests only: refused when environment (or NODE_ENV) is production',
        },
      ])
    }
    this.#o = o
    this.#ownsStore = o.store === undefined
    this.#store = o.store ?? new SqliteApiKeyStore({ filename: ':memory:' })
    this.#defaultKms = o.keyManager === undefined
    this.#keyManager =
      o.keyManager ??
      new KeyManager({
        providers: { local: new LocalKmsProvider({ logger: o.logger ?? stderrLogger }) },
        defaultProvider: 'local',
        defaultKeyId: 'api-key-pepper',
      })
    this.#prefixes = sortPrefixes(o.prefixes)
    this.#clock = o.clock ?? systemClock
    this.#random = o.randomBytes ?? secureRandomBytes
    this.#logger = o.logger ?? stderrLogger
    this.#cacheOptions = parseOptions('ApiKeyManager', ApiKeyCacheOptionsSchema, o.cache ?? {})
    this.#events = new LifecycleEmitter(this.#logger)
    const failed =
      o.failedAttempts === false
        ? undefined
        : parseOptions('ApiKeyManager', FailedAttemptsSchema, o.failedAttempts ?? {})
    this.#failures =
      failed === undefined
        ? undefined
        : new RateLimiter(
            {
              max: failed.max,
              windowMs: failed.windowMs,
              clock: this.#clock,
              logger: this.#logger,
              ...(failed.store === undefined ? {} : { store: failed.store }),
            },
            this.#logger,
          )
  }

  /** The store keys live in. */
  get store(): ApiKeyStore {
    return this.#store
  }

  /** Subscribes to a lifecycle event; returns the unsubscribe function. */
  on<E extends ApiKeyEventName>(event: E, listener: ApiKeyEventListener<E>): () => void {
    return this.#events.on(event, listener)
  }

  off<E extends ApiKeyEventName>(event: E, listener: ApiKeyEventListener<E>): void {
    this.#events.off(event, listener)
  }

  // ------------------------------------------------------------ start, stop

  /**
   * Migrates the store, unwraps the pepper (creating it on first start: one
   * KMS call either way, per pepper version), subscribes to other processes'
   * changes and starts the flush timer. Idempotent; every other method calls
   * it first.
   */
  async initialize(): Promise<void> {
    if (this.#ready) return
    if (this.#closed) throw new ApiKeyStoreError('ApiKeyManager is closed')
    this.#initializing ??= this.#initialize().finally(() => {
      this.#initializing = undefined
    })
    return this.#initializing
  }

  async #initialize(): Promise<void> {
    if (this.#defaultKms && !warnedDefaultKms) {
      warnedDefaultKms = true
      this.#logger.warn(
        { component: 'ApiKeyManager' },
        'no keyManager given: the pepper is wrapped by an in-memory development KMS key, so stored keys will not validate after a restart',
      )
    }
    await this.#store.migrate()
    await this.#loadPeppers()
    if (this.#peppers.size === 0) await this.#addPepper(1, 'system')
    this.#installAuditKeys()
    await this.#keyLegacyChain()
    if (this.#o.retainEncryptedKey) await this.#keyManager.initialize()
    this.#unsubscribe = await this.#store.subscribe(
      (change) => this.#onChange(change),
      () => this.#invalidateAll(),
    )
    this.#flushTimer = setInterval(() => {
      void this.flush().catch(() => {})
    }, this.#o.flushIntervalMs)
    this.#flushTimer.unref?.()
    const every = this.#o.auditCheckpointIntervalMs
    if (every !== false) {
      this.#checkpointTimer = setInterval(() => void this.#timedCheckpoint(), every)
      this.#checkpointTimer.unref?.()
    }
    this.#ready = true
  }

  /**
   * The chain is keyed from pepper version 1: the one every store has from
   * its first start, and one `retirePepper()` refuses, so links written
   * under any later pepper stay verifiable after that pepper is retired.
   */
  #installAuditKeys(): void {
    if (this.#auditKeys !== undefined) return
    const first = this.#pepperPlain.get(1)
    if (first === undefined) {
      throw new ApiKeyStoreError('API-key pepper version 1 (the audit chain key) is missing')
    }
    this.#auditKeys = auditKeys(first)
    first.fill(0)
    this.#pepperPlain.delete(1)
    this.#store.useAuditKey(this.#auditKeys.chain)
  }

  /**
   * A chain written before it was keyed ends in a SHA-256 row, which the
   * verifier refuses (`unkeyed`: anyone could have written it). One keyed
   * row after it authenticates the legacy prefix through its `prevHash`.
   */
  async #keyLegacyChain(): Promise<void> {
    const last = await this.#store.lastAudit()
    if (last === undefined || this.#auditKeys === undefined) return
    if (auditMac(this.#auditKeys.chain, last.seq, last.prevHash, last) === last.hash) return
    if (auditHash(last.seq, last.prevHash, last) !== last.hash) return
    await this.#store.appendAudit([
      {
        event: 'pepper',
        keyId: null,
        actor: 'system',
        ip: null,
        at: this.#clock(),
        detail: { version: 1, auditChain: 'keyed', legacyUntil: last.seq },
      },
    ])
  }

  /**
   * Writes what is queued, stops listening and flushing, and wipes what it
   * can: the padded HMAC keys (`K ⊕ ipad`, `K ⊕ opad`) of every pepper and
   * of every row-MAC subkey, and the fingerprint salt. Each pepper's
   * plaintext was zeroed right after unwrapping. What cannot be wiped: the
   * Node.js `KeyObject` each pepper also keeps (for `createHmac` where
   * `crypto.hash` is missing, or a message over 1 KiB) lives in OpenSSL
   * memory JavaScript cannot zero; it is released to the garbage collector.
   * Closes the store only if the manager created it (the default).
   */
  async close(): Promise<void> {
    if (this.#closed) return
    await this.#initializing?.catch(() => {})
    this.#closed = true
    if (this.#flushTimer !== undefined) clearInterval(this.#flushTimer)
    if (this.#checkpointTimer !== undefined) clearInterval(this.#checkpointTimer)
    if (this.#ready) await this.flush().catch(() => {})
    this.#ready = false
    await this.#unsubscribe?.().catch(() => {})
    await this.#failures?.close()
    for (const pepper of this.#peppers.values()) pepper.dispose()
    for (const key of this.#rowMacKeys.values()) key.dispose()
    this.#rowMacKeys.clear()
    this.#auditKeys?.chain.dispose()
    this.#auditKeys?.checkpoint.dispose()
    this.#auditKeys = undefined
    this.#store.useAuditKey(undefined)
    for (const plain of this.#pepperPlain.values()) plain.fill(0)
    this.#pepperPlain.clear()
    this.#peppers.clear()
    this.#fingerprints.dispose()
    this.#keys.clear()
    this.#negative.clear()
    if (this.#ownsStore) await this.#store.close()
  }

  // ------------------------------------------------------------ hot path

  /**
   * Checks a key. Resolves what it grants, or rejects with an
   * {@link ApiKeyRejectedError} (`ERR_API_KEY_MALFORMED`, `_UNKNOWN`,
   * `_REVOKED`, `_EXPIRED`, `_IP_NOT_ALLOWED`; all answer the same 401) or,
   * for a client over its failed-attempt limit whose lookup would read the
   * database, a `RateLimitExceededError` (429).
   *
   * No KMS call; at most one database read (cache miss); no write.
   */
  async validate(key: string, context?: ValidateContext): Promise<ApiKeyValidation> {
    if (!this.#ready) await this.initialize()
    const now = this.#clock()
    const rawIp = context?.ip
    const ip = rawIp === undefined || rawIp === '' ? null : normalizeIp(rawIp)
    if (scanApiKey(key, this.#prefixes) === undefined) {
      throw this.#reject(new ApiKeyMalformedError(), null, ip, now)
    }
    const keyId = keyIdOf(key)
    let entry = this.#keys.get(keyId)
    if (entry === undefined || now - entry.loadedAt >= this.#cacheOptions.ttlMs) {
      const loaded = await this.#load(keyId, ip, now)
      // No such key: the id is the caller's choice, so it stays out of the
      // aggregate (random ids would each make their own row).
      if (loaded === undefined) throw this.#reject(new ApiKeyUnknownError(), null, ip, now)
      // A stored row that fails its MAC: its id is real, and the audit names it.
      if (loaded === TAMPERED) throw this.#reject(new ApiKeyTamperedError(), keyId, ip, now)
      entry = loaded
    }
    // A key this process already checked against the stored HMAC is
    // recognized by its fingerprint: one hash call instead of two.
    const fingerprint = this.#fingerprints.of(key)
    if (entry.verified === undefined || !hashesEqual(fingerprint, entry.verified)) {
      const pepper = this.#peppers.get(entry.pepperVersion)
      if (pepper === undefined) throw new ApiKeyStoreError('API key hashed with an unknown pepper')
      if (!hashesEqual(pepper.mac(key), entry.hash)) {
        throw this.#reject(new ApiKeyUnknownError(), keyId, ip, now)
      }
      entry.verified = fingerprint
    }
    if (entry.revokedAt !== null) throw this.#reject(new ApiKeyRevokedError(), keyId, ip, now)
    if (now >= entry.expiresAt || (entry.graceUntil !== null && now >= entry.graceUntil)) {
      if (now >= entry.expiresAt) this.#emitOnce('expired', entry)
      throw this.#reject(new ApiKeyExpiredError(), keyId, ip, now)
    }
    if (entry.allow !== null && (ip === null || !entry.allow(ip))) {
      throw this.#reject(new ApiKeyIpNotAllowedError(), keyId, ip, now)
    }
    this.#used(entry, key, ip, now)
    const shouldRotate = now >= entry.rotateAt
    if (shouldRotate) this.#emitOnce('rotationRecommended', entry)
    if (now >= entry.expiringSoonAt) this.#emitOnce('expiringSoon', entry)
    return {
      keyId,
      tier: entry.tier,
      permissions: entry.permissions,
      expiresAt: new Date(entry.expiresAt),
      shouldRotate,
    }
  }

  /** Queues what a successful validation must eventually write. */
  #used(entry: CachedKey, key: string, ip: string | null, now: number): void {
    // The same client as last time, in the same batch: one increment, no lookup.
    const use = entry.use
    if (use !== undefined && use.ip === ip && use.batch === this.#batch) {
      use.count++
      if (now > use.lastAt) use.lastAt = now
    } else {
      const agg = this.#queueValidated(entry.keyId, ip, now)
      entry.use = agg
      if (agg !== undefined) this.#pendingUse.set(entry.keyId, agg)
    }
    // Lazy rehash under the current pepper: queued for the flush, and the
    // cache switches at once (both peppers stay loaded).
    if (entry.pepperVersion !== this.#currentPepper) {
      const pepper = this.#peppers.get(this.#currentPepper)
      if (pepper !== undefined) {
        const hash = pepper.mac(key)
        const mac = this.#rowMacOf({ ...entry.row, hash, pepperVersion: this.#currentPepper })
        this.#pendingRehash.set(entry.keyId, {
          keyId: entry.keyId,
          hash,
          pepperVersion: this.#currentPepper,
          fromVersion: entry.pepperVersion,
          rowMac: mac,
          fromRowMac: entry.row.rowMac ?? undefined,
        })
        entry.hash = hash
        entry.pepperVersion = this.#currentPepper
      }
    }
  }

  /** Counts a failure (audit aggregate, failed-attempt limiter) and returns the error to throw. */
  #reject<E extends ApiKeyRejectedError>(
    err: E,
    keyId: string | null,
    ip: string | null,
    now: number,
  ): E {
    this.#queueRejected(
      err.reason ?? null,
      keyId,
      ip === null ? null : auditNetwork(ip),
      1,
      now,
      now,
    )
    const limiter = this.#failures
    if (limiter !== undefined && ip !== null) {
      const client = ipKey(ip)
      const set = limiter.globalPolicies
      const onInfo = (info: RateLimitInfo | undefined) => {
        const refused = info === undefined ? undefined : exhausted(info)
        if (refused !== undefined) {
          this.#blocked.set(client, {
            until: this.#clock() + refused.retryAfterMs,
            info: refused,
            headers: limiter.headersFor(refused, set),
          })
          if (this.#blocked.size > 100_000) this.#blocked.delete(this.#blocked.keys().next().value!)
        }
      }
      const result = limiter.consume(client, set, 1)
      if (result instanceof Promise) result.then(onInfo, () => {})
      else onInfo(result)
    }
    return err
  }

  /** Throws 429 when the client is over its failed-attempt limit. */
  #checkBlocked(ip: string | null, now: number): void {
    if (ip === null || this.#blocked.size === 0) return
    const client = ipKey(ip)
    const blocked = this.#blocked.get(client)
    if (blocked === undefined) return
    if (now >= blocked.until) {
      this.#blocked.delete(client)
      return
    }
    const retryAfterMs = blocked.until - now
    throw new RateLimitExceededError({ ...blocked.info, retryAfterMs }, blocked.headers)
  }

  /** Cache miss: the negative cache, the failed-attempt gate, then one shared read. */
  async #load(
    keyId: string,
    ip: string | null,
    now: number,
  ): Promise<CachedKey | typeof TAMPERED | undefined> {
    const negativeUntil = this.#negative.get(keyId)
    if (negativeUntil !== undefined) {
      if (now < negativeUntil) return undefined
      this.#negative.delete(keyId)
    }
    this.#checkBlocked(ip, now)
    let pending = this.#loading.get(keyId)
    if (pending === undefined) {
      pending = this.#read(keyId).finally(() => this.#loading.delete(keyId))
      this.#loading.set(keyId, pending)
    }
    return pending
  }

  async #read(keyId: string): Promise<CachedKey | typeof TAMPERED | undefined> {
    const generation = this.#generation
    const row = await this.#store.getKey(keyId)
    const now = this.#clock()
    if (row === undefined) {
      const { negativeTtlMs, maxNegativeEntries } = this.#cacheOptions
      if (generation === this.#generation && negativeTtlMs > 0 && maxNegativeEntries > 0) {
        this.#negative.delete(keyId)
        this.#negative.set(keyId, now + negativeTtlMs)
        if (this.#negative.size > maxNegativeEntries)
          this.#negative.delete(this.#negative.keys().next().value!)
      }
      return undefined
    }
    if (!this.#peppers.has(row.pepperVersion)) await this.#loadPeppers()
    // Precondition: revocation, expiry, permissions, tier and addresses are
    // the ones this package wrote. Not cached either way: a repaired row is
    // seen on the next request.
    if (!this.#rowIntact(row)) return TAMPERED
    const entry = this.#toCached(row, now)
    if (generation === this.#generation) this.#cache(entry)
    return entry
  }

  #cache(entry: CachedKey): void {
    this.#keys.delete(entry.keyId)
    this.#keys.set(entry.keyId, entry)
    this.#negative.delete(entry.keyId)
    if (this.#keys.size > this.#cacheOptions.maxEntries)
      this.#keys.delete(this.#keys.keys().next().value!)
  }

  #toCached(row: ApiKeyRow, now: number): CachedKey {
    const life = row.expiresAt - row.createdAt
    return {
      keyId: row.keyId,
      hash: Buffer.from(row.hash),
      pepperVersion: row.pepperVersion,
      name: row.name,
      tier: row.tier,
      permissions: Object.freeze([...row.permissions]),
      createdAt: row.createdAt,
      expiresAt: row.expiresAt,
      rotateAt: row.createdAt + Math.floor(life * this.#o.rotationThreshold),
      expiringSoonAt: row.expiresAt - this.#o.expiringSoonDays * DAY_MS,
      graceUntil: row.graceUntil,
      revokedAt: row.revokedAt,
      allow:
        row.allowedIps === null || row.allowedIps.length === 0
          ? null
          : compileIpList(row.allowedIps),
      loadedAt: now,
      use: undefined,
      verified: undefined,
      row,
    }
  }

  /** Whether `row` carries the MAC of its security-relevant columns. */
  #rowIntact(row: ApiKeyRow): boolean {
    const key = this.#rowMacKeys.get(row.pepperVersion)
    return key !== undefined && rowMacValid(key, row)
  }

  /** The MAC `row` must carry (under its pepper version's subkey). */
  #rowMacOf(row: Parameters<typeof rowMac>[1]): Buffer {
    const key = this.#rowMacKeys.get(row.pepperVersion)
    if (key === undefined) throw new ApiKeyStoreError('no API-key pepper is loaded')
    return rowMac(key, row)
  }

  // ------------------------------------------------------------ cache upkeep

  #onChange(change: ApiKeyChange): void {
    if (change.event === 'pepper') {
      void this.#loadPeppers().catch((err: unknown) =>
        this.#logger.warn({ err: describeError(err) }, 'could not load a new API-key pepper'),
      )
      return
    }
    if (change.keyId === null) return
    // A new key only makes an "unknown" entry wrong; a cached row of it is current.
    if (change.event === 'created') {
      this.#negative.delete(change.keyId)
      return
    }
    this.#generation++
    this.#keys.delete(change.keyId)
    this.#negative.delete(change.keyId)
  }

  #invalidateAll(): void {
    this.#generation++
    this.#keys.clear()
    this.#negative.clear()
  }

  #emitOnce(event: 'rotationRecommended' | 'expiringSoon' | 'expired', entry: CachedKey): void {
    if (!this.#events.has(event)) return
    const id = `${event}:${entry.keyId}`
    if (this.#emitted.has(id)) return
    if (this.#emitted.size >= 100_000) this.#emitted.clear()
    this.#emitted.add(id)
    this.#events.emit(event, lifecycleEvent(entry))
  }

  // ------------------------------------------------------------ peppers

  /** Loads and unwraps every pepper version this process does not hold yet (single flight). */
  #loadPeppers(): Promise<void> {
    this.#loadingPeppers ??= (async () => {
      const rows = await this.#store.listPeppers()
      const listed = new Set(rows.map((r) => r.version))
      for (const version of [...this.#peppers.keys()]) {
        if (!listed.has(version)) this.#dropPepper(version)
      }
      for (const row of rows) {
        if (this.#peppers.has(row.version)) continue
        const wrapped = EncryptedData.fromJSON(JSON.parse(row.wrapped))
        const plain = await unwrapReserved(this.#keyManager, wrapped, pepperContext(row.version))
        try {
          if (plain.length !== 32) throw new ApiKeyStoreError('API-key pepper has the wrong length')
          this.#peppers.set(row.version, new Pepper(plain))
          this.#rowMacKeys.set(row.version, rowMacKey(plain))
          this.#keepForAuditKeys(row.version, plain)
        } finally {
          plain.fill(0)
        }
        if (row.version > this.#currentPepper) this.#currentPepper = row.version
      }
    })().finally(() => {
      this.#loadingPeppers = undefined
    })
    return this.#loadingPeppers
  }

  /** Pepper 1's plaintext, copied until `#installAuditKeys` derives from it and zeroes it. */
  readonly #pepperPlain = new Map<number, Buffer>()

  #keepForAuditKeys(version: number, plain: Uint8Array): void {
    if (version !== 1 || this.#auditKeys !== undefined) return
    this.#pepperPlain.get(1)?.fill(0)
    this.#pepperPlain.set(1, Buffer.from(plain))
  }

  async #addPepper(version: number, actor: string): Promise<void> {
    const plain = Buffer.from(this.#random(32))
    // The first pepper's own audit row is the chain's first: keyed by it.
    // If another process wins version 1, that row is not written and the
    // key is replaced by the winner's below (#installAuditKeys).
    const tentative = version === 1 && this.#auditKeys === undefined ? auditKeys(plain) : undefined
    if (tentative !== undefined) this.#store.useAuditKey(tentative.chain)
    try {
      if (plain.length !== 32) throw new ApiKeyStoreError('randomBytes returned the wrong length')
      const wrapped = await wrapReserved(this.#keyManager, plain, pepperContext(version))
      const at = this.#clock()
      const added = await this.#store.addPepper(
        { version, wrapped: JSON.stringify(wrapped.toJSON()), createdAt: at },
        { event: 'pepper', keyId: null, actor, ip: null, at, detail: { version } },
      )
      if (added) {
        // Ours won the version: keep it without a KMS round trip to unwrap it again.
        this.#peppers.set(version, new Pepper(plain))
        this.#rowMacKeys.set(version, rowMacKey(plain))
        this.#keepForAuditKeys(version, plain)
        if (version > this.#currentPepper) this.#currentPepper = version
      }
    } finally {
      plain.fill(0)
      if (tentative !== undefined) {
        this.#store.useAuditKey(undefined)
        tentative.chain.dispose()
        tentative.checkpoint.dispose()
      }
    }
    // Another process's, if it won the version; and any version added meanwhile.
    await this.#loadPeppers()
  }

  /**
   * Starts a new pepper version (one KMS call). New keys are hashed with it;
   * existing keys are rehashed on their next successful validation (written
   * by the flush). Other processes load it when notified.
   */
  async rotatePepper(context: ApiKeyActionContext = {}): Promise<{ version: number }> {
    await this.initialize()
    const before = this.#currentPepper
    await this.#addPepper(before + 1, context.actor ?? 'system')
    return { version: this.#currentPepper }
  }
  /**
   * Retires an old pepper version once no stored key uses it: deletes its
   * wrapped row (audited as a `pepper` event with `retired: true`) and
   * wipes this process's copy; other processes drop theirs on the change
   * notification. Keys still hashed under it are moved by the lazy rehash
   * of their next validation. Refuses, with
   * `ERR_API_KEY_PEPPER_IN_USE`, while any key row (revoked ones too: they
   * must still be refused as revoked) uses it, for the current version,
   * and for version 1, which keys the audit chain. Retiring a version that
   * does not exist (any more) returns `retired: false`.
   *
   * @example
   * ```ts
   * await manager.rotatePepper()            // version 2
   * // ... once every key has validated or been rotated since:
   * await manager.retirePepper(1)           // refused: version 1 keys the audit chain
   * ```
   */
  async retirePepper(
    version: number,
    context: ApiKeyActionContext = {},
  ): Promise<{ version: number; retired: boolean }> {
    await this.initialize()
    if (!Number.isSafeInteger(version) || version < 1) {
      throw new ApiKeyRequestError('version must be a pepper version (an integer from 1)')
    }
    await this.#loadPeppers()
    // Precondition: never the key of new hashes or of the audit chain.
    if (version === this.#currentPepper) {
      throw new ApiKeyPepperInUseError('the current pepper version cannot be retired')
    }
    if (version === 1) {
      throw new ApiKeyPepperInUseError('pepper version 1 keys the audit chain and is kept')
    }
    // Queued rehashes move keys off the old version: write them first.
    await this.flush()
    const outcome = await this.#store.retirePepper(
      version,
      this.#auditOf(
        'pepper',
        null,
        { ...context, actor: context.actor ?? 'system' },
        this.#clock(),
        {
          version,
          retired: true,
        },
      ),
    )
    if (outcome === 'in-use') {
      throw new ApiKeyPepperInUseError('a stored key still uses this pepper version')
    }
    this.#dropPepper(version)
    return { version, retired: outcome === 'retired' }
  }

  /** Wipes a retired version's pepper and row-MAC subkey. */
  #dropPepper(version: number): void {
    this.#peppers.get(version)?.dispose()
    this.#peppers.delete(version)
    this.#rowMacKeys.get(version)?.dispose()
    this.#rowMacKeys.delete(version)
  }

  // ------------------------------------------------------------ administration

  /**
   * Creates a key. The key is returned this once; the store keeps only its
   * HMAC. Writes the row and its `created` audit event in one transaction.
   */
  async create(
    input: CreateApiKeyInput,
    context: ApiKeyActionContext = {},
  ): Promise<CreatedApiKey> {
    const i = parseOptions('ApiKeyManager.create', CreateApiKeySchema, input)
    if (i.prefix !== undefined && !this.#o.prefixes.includes(i.prefix)) {
      throw new ApiKeyConflictError('prefix is not one of the configured prefixes')
    }
    await this.initialize()
    const now = this.#clock()
    const prefix = i.prefix ?? this.#o.prefixes[0]!
    const region = i.region ?? this.#o.defaultRegion
    const expiresAt = now + (i.expiresInDays ?? this.#o.defaultExpiresInDays) * DAY_MS
    for (let attempt = 0; attempt < 5; attempt++) {
      const key = formatApiKey({ prefix, region }, this.#random)
      const keyId = keyIdOf(key)
      const row = await this.#newRow(key, keyId, {
        prefix,
        region,
        name: i.name,
        tier: i.tier,
        permissions: i.permissions,
        allowedIps: i.allowedIps ?? null,
        createdAt: now,
        expiresAt,
        createdBy: context.actor ?? null,
      })
      const inserted = await this.#store.insertKey(
        row,
        this.#auditOf('created', keyId, context, now, {
          name: i.name,
          tier: i.tier,
          prefix,
          region,
          expiresAt,
        }),
      )
      if (!inserted) continue // a 71-bit id collision: draw again
      this.#cache(this.#toCached(row, now))
      const record = this.#record(row)
      this.#events.emit('created', lifecycleEvent(record))
      return { key, keyId, record }
    }
    throw new ApiKeyStoreError('could not draw an unused key id')
  }

  /**
   * Replaces a key: a new key with the same name, region, tier, permissions
   * and allowlist; the old one keeps working for `graceMinutes`, then is
   * refused as expired. A revoked or already rotated key cannot be rotated
   * (`ERR_API_KEY_CONFLICT`).
   */
  async rotate(
    keyId: string,
    options: RotateApiKeyInput = {},
    context: ApiKeyActionContext = {},
  ): Promise<RotatedApiKey> {
    const o = parseOptions('ApiKeyManager.rotate', RotateApiKeySchema, options)
    await this.initialize()
    const old = await this.#store.getKey(keyId)
    if (old === undefined) throw new ApiKeyNotFoundError()
    if (!this.#peppers.has(old.pepperVersion)) await this.#loadPeppers()
    // Precondition: the replacement inherits tier, permissions and
    // addresses: from an edited row it would launder the edit into a valid MAC.
    if (!this.#rowIntact(old)) {
      throw this.#reject(new ApiKeyTamperedError(), keyId, null, this.#clock())
    }
    if (old.revokedAt !== null) throw new ApiKeyConflictError('a revoked API key cannot be rotated')
    if (old.replacedBy !== null) throw new ApiKeyConflictError('this API key was already rotated')
    const now = this.#clock()
    const graceUntil = now + (o.graceMinutes ?? this.#o.defaultGraceMinutes) * 60_000
    const lifetime =
      o.expiresInDays === undefined ? old.expiresAt - old.createdAt : o.expiresInDays * DAY_MS
    for (let attempt = 0; attempt < 5; attempt++) {
      const key = formatApiKey({ prefix: old.prefix, region: old.region }, this.#random)
      const newId = keyIdOf(key)
      if ((await this.#store.getKey(newId)) !== undefined) continue
      const row = await this.#newRow(key, newId, {
        prefix: old.prefix,
        region: old.region,
        name: old.name,
        tier: old.tier,
        permissions: old.permissions,
        allowedIps: old.allowedIps,
        createdAt: now,
        expiresAt: now + lifetime,
        createdBy: context.actor ?? null,
      })
      const outcome = await this.#store.rotateKey(
        keyId,
        {
          rotatedAt: now,
          graceUntil,
          replacement: row,
          rowMac: this.#rowMacOf({ ...old, rotatedAt: now, graceUntil, replacedBy: newId }),
        },
        [
          this.#auditOf('rotated', keyId, context, now, { replacedBy: newId, graceUntil }),
          this.#auditOf('created', newId, context, now, {
            name: row.name,
            tier: row.tier,
            prefix: row.prefix,
            region: row.region,
            expiresAt: row.expiresAt,
            rotatedFrom: keyId,
          }),
        ],
      )
      if (outcome === 'missing') throw new ApiKeyNotFoundError()
      if (outcome === 'conflict') {
        throw new ApiKeyConflictError('this API key was revoked or rotated meanwhile')
      }
      this.#cache(this.#toCached(row, now))
      const cachedOld = this.#keys.get(keyId)
      if (cachedOld !== undefined) cachedOld.graceUntil = graceUntil
      const previous = this.#record({
        ...old,
        rotatedAt: now,
        graceUntil,
        replacedBy: newId,
      })
      const record = this.#record(row)
      this.#events.emit('rotated', {
        ...lifecycleEvent(previous),
        replacedBy: newId,
        graceUntil: new Date(graceUntil),
      })
      return { key, keyId: newId, record, previous }
    }
    throw new ApiKeyStoreError('could not draw an unused key id')
  }

  /**
   * Revokes a key at once, in every process sharing the store (PostgreSQL:
   * as soon as the notification arrives). Revoking twice keeps the first
   * time and reason. `ERR_API_KEY_NOT_FOUND` for an unknown id.
   */
  async revoke(
    keyId: string,
    reason = 'unspecified',
    context: ApiKeyActionContext = {},
  ): Promise<ApiKeyRecord> {
    const why = String(reason).slice(0, 500)
    await this.initialize()
    const now = this.#clock()
    const current = await this.#store.getKey(keyId)
    if (current === undefined) throw new ApiKeyNotFoundError()
    if (!this.#peppers.has(current.pepperVersion)) await this.#loadPeppers()
    // Revoking is always safe, even on an edited row: the MAC written covers
    // revokedAt, so undoing the revocation in the database breaks it again.
    const row = await this.#store.revokeKey(
      keyId,
      {
        revokedAt: now,
        reason: why,
        rowMac: this.#rowMacOf({ ...current, revokedAt: now }),
      },
      this.#auditOf('revoked', keyId, context, now, { reason: why }),
    )
    if (row === undefined) throw new ApiKeyNotFoundError()
    const cached = this.#keys.get(keyId)
    if (cached !== undefined) cached.revokedAt = row.revokedAt
    const record = this.#record(row)
    if (row.revokedAt === now) {
      this.#events.emit('revoked', { ...lifecycleEvent(record), reason: row.revokedReason ?? why })
    }
    return record
  }

  /**
   * The upgrade path for rows written before the per-row MAC existed
   * (migration `0003_api_key_row_mac` leaves them without one, and
   * validation refuses them with `ERR_API_KEY_TAMPERED`): MACs every row that
   * has none, as it stands now, and returns how many. Run it once, by hand,
   * right after upgrading and before the database could have been written by
   * anyone else: it trusts those rows' columns. Never automatic, so a writer
   * who clears a row's MAC later does not get the edit sealed.
   */
  async sealUnmacedRows(): Promise<{ sealed: number }> {
    await this.initialize()
    const setRowMac = this.#store.setRowMac?.bind(this.#store)
    if (setRowMac === undefined) {
      throw new ApiKeyStoreError('this API-key store cannot set row MACs (no setRowMac)')
    }
    let sealed = 0
    const page = 500
    for (let offset = 0; ; offset += page) {
      const rows = await this.#store.listKeys({ limit: page, offset })
      for (const row of rows) {
        if (row.rowMac != null) continue
        if (!this.#peppers.has(row.pepperVersion)) await this.#loadPeppers()
        if (await setRowMac(row.keyId, this.#rowMacOf(row))) sealed++
      }
      if (rows.length < page) break
    }
    this.#invalidateAll()
    return { sealed }
  }

  /** Keys, newest first (never a key or hash). */
  async list(options: ListApiKeysOptions = {}): Promise<ApiKeyRecord[]> {
    await this.initialize()
    const rows = await this.#store.listKeys(options)
    return rows.map((r) => this.#record(r))
  }

  /** One key's record, or undefined. */
  async get(keyId: string): Promise<ApiKeyRecord | undefined> {
    await this.initialize()
    if (typeof keyId !== 'string' || keyId.length !== KEY_ID_LENGTH) return undefined
    const row = await this.#store.getKey(keyId)
    return row === undefined ? undefined : this.#record(row)
  }

  /**
   * The key itself, with `retainEncryptedKey` (one local AES-GCM decryption,
   * no KMS call); undefined when it was not retained.
   */
  async reveal(keyId: string): Promise<string | undefined> {
    await this.initialize()
    const row = await this.#store.getKey(keyId)
    if (row?.encryptedKey == null) return undefined
    await this.#keyManager.initialize()
    return this.#keyManager.localDecrypt(row.encryptedKey, `api-key:${keyId}`)
  }

  /**
   * Handles a key reported as leaked (a secret-scanning report): if `token`
   * is one of our keys, exactly (its HMAC matches), it is revoked and this
   * returns `true`; anything else (malformed, unknown id, wrong secret)
   * returns `false` and changes nothing.
   */
  async reportLeak(
    token: string,
    details: { source?: string; url?: string } = {},
    context: ApiKeyActionContext = {},
  ): Promise<boolean> {
    await this.initialize()
    if (scanApiKey(token, this.#prefixes) === undefined) return false
    const keyId = keyIdOf(token)
    const row = await this.#store.getKey(keyId)
    if (row === undefined) return false
    if (!this.#peppers.has(row.pepperVersion)) await this.#loadPeppers()
    const pepper = this.#peppers.get(row.pepperVersion)
    if (pepper === undefined) return false
    const hash = pepper.mac(token)
    if (!hashesEqual(hash, row.hash)) return false
    const where = [details.source, details.url].filter((x) => typeof x === 'string' && x !== '')
    await this.revoke(
      keyId,
      `leaked${where.length > 0 ? `: ${where.join(' ')}` : ''}`.slice(0, 500),
      context,
    )
    return true
  }

  /**
   * Emits `rotationRecommended`, `expiringSoon` and `expired` for every
   * unrevoked key in that state now, and returns their ids. Schedule it
   * (daily, from one process) to notify owners of keys nobody is using.
   */
  async checkLifecycle(): Promise<LifecycleReport> {
    await this.initialize()
    const report: LifecycleReport = { rotationRecommended: [], expiringSoon: [], expired: [] }
    const now = this.#clock()
    for (let offset = 0; ; offset += 1000) {
      const rows = await this.#store.listKeys({ includeRevoked: false, limit: 1000, offset })
      for (const row of rows) {
        if (row.replacedBy !== null) continue
        const entry = this.#toCached(row, now)
        const event = lifecycleEvent(entry)
        if (now >= entry.expiresAt) {
          report.expired.push(row.keyId)
          this.#events.emit('expired', event)
          continue
        }
        if (now >= entry.rotateAt) {
          report.rotationRecommended.push(row.keyId)
          this.#events.emit('rotationRecommended', event)
        }
        if (now >= entry.expiringSoonAt) {
          report.expiringSoon.push(row.keyId)
          this.#events.emit('expiringSoon', event)
        }
      }
      if (rows.length < 1000) break
    }
    return report
  }

  /**
   * Re-reads the whole audit log in order and checks every keyed link of
   * the chain; reports the `seq` of the first broken one. Flushes queued
   * events first. With `anchor` (the newest checkpoint from your
   * append-only sink, or any `{ sequence, hash }` you recorded), a deleted
   * tail (`truncated`) or a rewritten chain (`anchor`) is reported too; an
   * anchor carrying a `mac` that is not ours throws
   * `ERR_API_KEY_AUDIT_CHECKPOINT_INVALID`.
   *
   * @example
   * ```ts
   * const report = await manager.verifyAuditChain({ anchor: latestShippedCheckpoint })
   * if (!report.ok) alert(`audit log altered at row ${report.brokenAt} (${report.reason})`)
   * ```
   */
  async verifyAuditChain(
    options: { readonly anchor?: AuditAnchor | AuditCheckpoint } = {},
  ): Promise<AuditChainReport> {
    await this.initialize()
    const keys = this.#auditKeysOrThrow()
    const anchor = options.anchor
    if (anchor !== undefined) {
      if (
        !Number.isSafeInteger(anchor.sequence) ||
        anchor.sequence < 1 ||
        typeof anchor.hash !== 'string'
      ) {
        throw new ApiKeyAuditCheckpointError('the anchor needs a sequence from 1 and a hash')
      }
      if ('mac' in anchor && !this.verifyCheckpoint(anchor)) {
        throw new ApiKeyAuditCheckpointError('the anchor is not a checkpoint this pepper signed')
      }
    }
    await this.flush()
    return readAndVerify(this.#store, new AuditChainVerifier({ key: keys.chain, anchor }))
  }

  /**
   * Takes a signed checkpoint of the chain's newest row now (flushing
   * queued events first), logs it and passes it to `onCheckpoint`; rejects
   * if `onCheckpoint` does. Undefined while the log is empty.
   */
  async checkpoint(): Promise<AuditCheckpoint | undefined> {
    await this.initialize()
    const keys = this.#auditKeysOrThrow()
    await this.flush()
    const last = await this.#store.lastAudit()
    if (last === undefined) return undefined
    const body = { sequence: last.seq, hash: last.hash, at: this.#clock() }
    const checkpoint: AuditCheckpoint = { ...body, mac: checkpointMac(keys.checkpoint, body) }
    const log = this.#logger.info ?? this.#logger.warn
    log.call(this.#logger, { auditCheckpoint: checkpoint }, 'api-key audit checkpoint')
    await this.#o.onCheckpoint?.(checkpoint)
    return checkpoint
  }

  /** Whether `checkpoint` carries this store's checkpoint MAC (constant time). */
  verifyCheckpoint(checkpoint: AuditCheckpoint): boolean {
    const keys = this.#auditKeysOrThrow()
    if (typeof checkpoint.mac !== 'string' || !/^[0-9a-f]{64}$/.test(checkpoint.mac)) return false
    const expected = checkpointMac(keys.checkpoint, checkpoint)
    return hashesEqual(Buffer.from(expected, 'hex'), Buffer.from(checkpoint.mac, 'hex'))
  }

  #auditKeysOrThrow(): { chain: Pepper; checkpoint: Pepper } {
    if (this.#auditKeys === undefined)
      throw new ApiKeyStoreError('ApiKeyManager is not initialized')
    return this.#auditKeys
  }

  /** The timer's checkpoint: only when the chain grew since the last one. */
  async #timedCheckpoint(): Promise<void> {
    try {
      const last = await this.#store.lastAudit()
      if (last === undefined || last.seq === this.#checkpointedSeq) return
      const checkpoint = await this.checkpoint()
      if (checkpoint !== undefined) this.#checkpointedSeq = checkpoint.sequence
    } catch (err) {
      // The next tick retries: the sequence is not marked as checkpointed.
      this.#logger.error({ err: describeError(err) }, 'could not emit an api-key audit checkpoint')
    }
  }

  /** Audit rows after `afterSeq` (never a key or hash). */
  async auditLog(afterSeq = 0, limit = 1000): Promise<AuditRecord[]> {
    await this.initialize()
    return this.#store.readAudit(afterSeq, Math.min(Math.max(1, limit), 10_000))
  }

  // ------------------------------------------------------------ flush

  /**
   * Writes queued work now: last use, lazy rehashes and audit aggregates, in
   * one transaction (the audit chain extended under its lock). Runs every
   * `flushIntervalMs` and at `close()`. A failed flush keeps its work queued.
   */
  flush(): Promise<void> {
    this.#flushing ??= this.#flush().finally(() => {
      this.#flushing = undefined
    })
    return this.#flushing
  }

  async #flush(): Promise<void> {
    if (
      this.#carriedLastUsed.size === 0 &&
      this.#pendingRehash.size === 0 &&
      this.#pendingAudit.size === 0 &&
      this.#overflow === 0
    ) {
      return
    }
    const lastUsed = this.#carriedLastUsed
    const rehash = this.#pendingRehash
    const aggregates = this.#pendingAudit
    const overflow = this.#overflow
    this.#carriedLastUsed = new Map()
    this.#pendingRehash = new Map()
    this.#pendingAudit = new Map()
    this.#pendingUse = new Map()
    this.#overflow = 0
    this.#pendingRejected = 0
    this.#batch++
    for (const a of aggregates.values()) {
      if (a.event !== 'validated' || a.keyId === null) continue
      const last = lastUsed.get(a.keyId)
      if (last === undefined || last < a.lastAt) lastUsed.set(a.keyId, a.lastAt)
    }
    const audited = this.#o.auditValidations
      ? [...aggregates.values()]
      : [...aggregates.values()].filter((a) => a.event !== 'validated')
    const audit: AuditEventInput[] = audited.map((a) => ({
      event: a.event,
      keyId: a.keyId,
      actor: null,
      ip: a.ip,
      at: a.lastAt,
      detail: {
        count: a.count,
        firstAt: a.firstAt,
        ...(a.reason === null ? {} : { reason: a.reason }),
        ...(a.overflow === true ? { overflow: true } : {}),
      },
    }))
    if (overflow > 0) {
      audit.push({
        event: 'rejected',
        keyId: null,
        actor: null,
        ip: null,
        at: this.#clock(),
        detail: { count: overflow, overflow: true },
      })
    }
    try {
      await this.#store.flush({ lastUsed, rehash: [...rehash.values()], audit })
    } catch (err) {
      this.#requeue(lastUsed, rehash, aggregates, overflow)
      this.#logger.warn(
        { err: describeError(err), queued: audit.length },
        'API-key flush failed; the work stays queued',
      )
      throw err
    }
  }

  #requeue(
    lastUsed: Map<string, number>,
    rehash: Map<string, PendingRehash>,
    aggregates: Map<string, PendingAudit>,
    overflow: number,
  ): void {
    for (const [k, at] of lastUsed) {
      const carried = this.#carriedLastUsed.get(k)
      if (carried === undefined || carried < at) this.#carriedLastUsed.set(k, at)
    }
    for (const [k, r] of rehash) if (!this.#pendingRehash.has(k)) this.#pendingRehash.set(k, r)
    for (const [k, a] of aggregates) {
      if (a.event === 'rejected') {
        this.#queueRejected(a.reason, a.keyId, a.ip, a.count, a.firstAt, a.lastAt, a.overflow)
        continue
      }
      const current = this.#pendingAudit.get(k)
      if (current !== undefined) {
        current.count += a.count
        if (a.lastAt > current.lastAt) current.lastAt = a.lastAt
      } else if (this.#pendingAudit.size < this.#o.maxPendingAudit) {
        a.batch = this.#batch
        this.#pendingAudit.set(k, a)
      }
    }
    this.#overflow += overflow
  }

  /**
   * Counts rejections in their (reason, key, network) aggregate. The rows a
   * flush writes for rejections are bounded whatever the number of clients:
   * addresses are grouped by /24 (IPv4) or /64 (IPv6), and past
   * `maxRejectedRowsPerFlush` networks the rest go to one row per reason.
   * Past `maxPendingAudit` aggregates, to the one overflow count.
   */
  #queueRejected(
    reason: ApiKeyRejectionReason | null,
    keyId: string | null,
    network: string | null,
    count: number,
    firstAt: number,
    lastAt: number,
    overflow?: true,
  ): void {
    let id =
      overflow === true
        ? `rejected|${reason ?? ''}|*`
        : `rejected|${reason ?? ''}|${keyId ?? ''}|${network ?? ''}`
    let current = this.#pendingAudit.get(id)
    if (
      current === undefined &&
      overflow !== true &&
      this.#pendingRejected >= this.#o.maxRejectedRowsPerFlush
    ) {
      overflow = true
      id = `rejected|${reason ?? ''}|*`
      current = this.#pendingAudit.get(id)
    }
    if (current === undefined) {
      if (this.#pendingAudit.size >= this.#o.maxPendingAudit) {
        this.#overflow += count
        return
      }
      current = {
        event: 'rejected',
        keyId: overflow === true ? null : keyId,
        ip: overflow === true ? null : network,
        reason,
        count: 0,
        firstAt,
        lastAt,
        batch: this.#batch,
        ...(overflow === true ? { overflow } : {}),
      }
      this.#pendingAudit.set(id, current)
      if (overflow !== true) this.#pendingRejected++
    }
    current.count += count
    if (firstAt < current.firstAt) current.firstAt = firstAt
    if (lastAt > current.lastAt) current.lastAt = lastAt
  }

  /**
   * Counts one validation in its (key, address) aggregate. Past
   * `maxPendingAudit` aggregates, in one address-less aggregate per key
   * (bounded by the number of valid keys), so last use is never lost.
   */
  #queueValidated(keyId: string, ip: string | null, now: number): PendingAudit | undefined {
    let id = `validated||${keyId}|${ip ?? ''}`
    let current = this.#pendingAudit.get(id)
    if (current === undefined && this.#pendingAudit.size >= this.#o.maxPendingAudit) {
      id = `validated||${keyId}|`
      ip = null
      current = this.#pendingAudit.get(id)
    }
    if (current !== undefined) {
      current.count++
      if (now > current.lastAt) current.lastAt = now
      current.batch = this.#batch
      return current
    }
    const created: PendingAudit = {
      event: 'validated',
      keyId,
      ip,
      reason: null,
      count: 1,
      firstAt: now,
      lastAt: now,
      batch: this.#batch,
    }
    this.#pendingAudit.set(id, created)
    return created
  }

  // ------------------------------------------------------------ helpers

  async #newRow(
    key: string,
    keyId: string,
    f: {
      prefix: string
      region: string
      name: string
      tier: string
      permissions: readonly string[]
      allowedIps: readonly string[] | null
      createdAt: number
      expiresAt: number
      createdBy: string | null
    },
  ): Promise<ApiKeyRow> {
    const version = this.#currentPepper
    const pepper = this.#peppers.get(version)
    if (pepper === undefined) throw new ApiKeyStoreError('no API-key pepper is loaded')
    const encryptedKey = this.#o.retainEncryptedKey
      ? await this.#keyManager.localEncrypt(key, `api-key:${keyId}`)
      : null
    const row: ApiKeyRow = {
      keyId,
      hash: pepper.mac(key),
      pepperVersion: version,
      name: f.name,
      prefix: f.prefix,
      region: f.region,
      // Prefix, region, id and 4 of the 32 secret characters (≈ 24 of 190 bits).
      start: key.slice(0, key.length - (SECRET_LENGTH - 4) - 6),
      tier: f.tier,
      permissions: [...f.permissions],
      allowedIps: f.allowedIps === null ? null : [...f.allowedIps],
      createdAt: f.createdAt,
      expiresAt: f.expiresAt,
      rotatedAt: null,
      graceUntil: null,
      replacedBy: null,
      revokedAt: null,
      revokedReason: null,
      lastUsedAt: null,
      createdBy: f.createdBy,
      encryptedKey,
    }
    return { ...row, rowMac: this.#rowMacOf(row) }
  }

  #auditOf(
    event: AuditEventInput['event'],
    keyId: string | null,
    context: ApiKeyActionContext,
    at: number,
    detail: AuditEventInput['detail'],
  ): AuditEventInput {
    return {
      event,
      keyId,
      actor: context.actor ?? null,
      ip: context.ip === undefined ? null : normalizeIp(context.ip),
      at,
      detail,
    }
  }

  #record(row: ApiKeyRow): ApiKeyRecord {
    const now = this.#clock()
    const pendingUse =
      this.#pendingUse.get(row.keyId)?.lastAt ?? this.#carriedLastUsed.get(row.keyId)
    const lastUsedAt =
      pendingUse !== undefined && (row.lastUsedAt === null || pendingUse > row.lastUsedAt)
        ? pendingUse
        : row.lastUsedAt
    const status = apiKeyStatus(row, now)
    const date = (ms: number | null) => (ms === null ? null : new Date(ms))
    const life = row.expiresAt - row.createdAt
    return {
      keyId: row.keyId,
      name: row.name,
      prefix: row.prefix,
      region: row.region,
      start: row.start,
      tier: row.tier,
      permissions: [...row.permissions],
      allowedIps: row.allowedIps === null ? null : [...row.allowedIps],
      status,
      createdAt: new Date(row.createdAt),
      expiresAt: new Date(row.expiresAt),
      rotatedAt: date(row.rotatedAt),
      graceUntil: date(row.graceUntil),
      replacedBy: row.replacedBy,
      revokedAt: date(row.revokedAt),
      revokedReason: row.revokedReason,
      lastUsedAt: date(lastUsedAt),
      createdBy: row.createdBy,
      shouldRotate: now >= row.createdAt + Math.floor(life * this.#o.rotationThreshold),
    }
  }
}

function lifecycleEvent(k: {
  keyId: string
  name: string
  createdAt: number | Date
  expiresAt: number | Date
}): ApiKeyLifecycleEvent {
  return {
    keyId: k.keyId,
    name: k.name,
    createdAt: new Date(k.createdAt),
    expiresAt: new Date(k.expiresAt),
  }
}

/**
 * Reads a store's whole audit log in order and checks the hash chain; the
 * report names the `seq` of the first broken link. Without the pepper it
 * checks plain SHA-256 links only: the chain of a store used on its own.
 * An `ApiKeyManager` keys its chain, so verify that one with
 * `manager.verifyAuditChain()` (a keyed row here reports `hash`).
 *
 * @example
 * ```ts
 * const report = await verifyAuditChain(store)
 * if (!report.ok) alert(`audit log altered at row ${report.brokenAt} (${report.reason})`)
 * ```
 */
export async function verifyAuditChain(
  store: ApiKeyStore,
  options: { readonly anchor?: AuditAnchor } = {},
): Promise<AuditChainReport> {
  return readAndVerify(store, new AuditChainVerifier({ anchor: options.anchor }))
}

/** Feeds the whole log to `verifier`, 1000 rows a read. */
async function readAndVerify(
  store: ApiKeyStore,
  verifier: AuditChainVerifier,
): Promise<AuditChainReport> {
  let after = 0
  for (;;) {
    const rows = await store.readAudit(after, 1000)
    for (const row of rows) if (!verifier.push(row)) return verifier.report()
    if (rows.length < 1000) return verifier.report()
    after = rows[rows.length - 1]!.seq
  }
}
