/**
 * The options of `ApiKeyManager` and the inputs of `create` and `rotate`:
 * their zod schemas (parsed once, `ERR_CONFIG_INVALID` on a bad value) and
 * the defaults the manager falls back to for the store, the KMS and the
 * failed-attempt limiter.
 */
import { z } from 'zod'
import { ConfigError } from '../errors.js'
import { type Clock, systemClock } from '../internal/clock.js'
import { inProduction } from '../internal/environment.js'
import { IpOrCidrSchema } from '../internal/ip-address.js'
import { type Logger, stderrLogger } from '../internal/logger.js'
import {
  ClockOptionSchema,
  fn,
  LoggerOptionSchema,
  parseOptions,
  RandomBytesOptionSchema,
  RateLimitStoreOptionSchema,
} from '../internal/options.js'
import { type RandomBytes, secureRandomBytes } from '../internal/random.js'
import { KeyManager, LocalKmsProvider } from '../kms/index.js'
import type { AuditCheckpoint } from './audit-chain.js'
import {
  DEFAULT_PREFIXES,
  MAX_PREFIX_LENGTH,
  MAX_REGION_LENGTH,
  PREFIX_PATTERN,
  REGION_PATTERN,
} from './format.js'
import { SqliteApiKeyStore } from './sqlite.js'
import type { ApiKeyStore } from './store.js'

/** Key lifetimes and lifecycle offsets are configured in days. */
export const DAY_MS = 24 * 60 * 60 * 1000

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
    store: RateLimitStoreOptionSchema.optional(),
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
    clock: ClockOptionSchema.optional(),
    /**
     * Source of keys and peppers. For tests only (deterministic keys): a
     * source that is not a CSPRNG makes every key and pepper guessable, so
     * it is refused (`ERR_CONFIG_INVALID`, path `randomBytes`) when
     * `environment` (or `NODE_ENV`) is `production`.
     * @default crypto.randomBytes
     */
    randomBytes: RandomBytesOptionSchema.optional(),
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
/** The options after parsing, defaults filled in. */
export type ResolvedApiKeyManagerOptions = z.output<typeof ApiKeyManagerOptionsSchema>

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

/** What the manager is built from: its parsed options and the defaults it fell back to. */
export interface ApiKeyManagerSetup {
  readonly options: ResolvedApiKeyManagerOptions
  readonly store: ApiKeyStore
  /** The store is the in-memory default: the manager closes it. */
  readonly ownsStore: boolean
  readonly keyManager: KeyManager
  /** The KeyManager is the in-memory development default (warned about at start). */
  readonly defaultKms: boolean
  readonly clock: Clock
  readonly random: RandomBytes
  readonly logger: Logger
  readonly cache: z.output<typeof ApiKeyCacheOptionsSchema>
  /** undefined: failed attempts are not counted (`failedAttempts: false`). */
  readonly failedAttempts: z.output<typeof FailedAttemptsSchema> | undefined
}

/** Parses the options once and fills in the default store, KMS, clock, randomness and logger. */
export function resolveApiKeyManagerOptions(options: ApiKeyManagerOptions): ApiKeyManagerSetup {
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
  const store = o.store ?? new SqliteApiKeyStore({ filename: ':memory:' })
  const keyManager =
    o.keyManager ??
    new KeyManager({
      providers: { local: new LocalKmsProvider({ logger: o.logger ?? stderrLogger }) },
      defaultProvider: 'local',
      defaultKeyId: 'api-key-pepper',
    })
  return {
    options: o,
    store,
    ownsStore: o.store === undefined,
    keyManager,
    defaultKms: o.keyManager === undefined,
    clock: o.clock ?? systemClock,
    random: o.randomBytes ?? secureRandomBytes,
    logger: o.logger ?? stderrLogger,
    cache: parseOptions('ApiKeyManager', ApiKeyCacheOptionsSchema, o.cache ?? {}),
    failedAttempts:
      o.failedAttempts === false
        ? undefined
        : parseOptions('ApiKeyManager', FailedAttemptsSchema, o.failedAttempts ?? {}),
  }
}
