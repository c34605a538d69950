/**
 * The API-key store on the shared SQL layer, written once for PostgreSQL and
 * SQLite. Three tables: `api_keys`, `api_key_audit_log` (the hash chain) and
 * `api_key_peppers` (KMS-wrapped peppers, one row per version), indexed on
 * what keys and audit rows are looked up by (migration 0002). Every write
 * that changes a key appends its audit event in the same transaction, under
 * the chain's lock; flushes of deferred work are one transaction too.
 *
 * Cross-process changes: this base class polls the audit log for key events
 * (SQLite); the PostgreSQL store overrides {@link SqlApiKeyStore.subscribe}
 * with `LISTEN/NOTIFY`.
 */
import { type ColumnType, type Kysely, sql } from 'kysely'
import type { SqlDatabase } from '../internal/sql/database.js'
import { LazySqlHandle } from '../internal/sql/lazy-handle.js'
import type { SqlDialect, SqlMigrationSet } from '../internal/sql/migrate.js'
import {
  AUDIT_EVENT_TYPES,
  type AuditChainKey,
  type AuditDetail,
  type AuditEventInput,
  type AuditEventType,
  type AuditRecord,
  chainEvents,
} from './audit-chain.js'
import { ApiKeyStoreError } from './errors.js'
import type {
  ApiKeyChange,
  ApiKeyFlush,
  ApiKeyRow,
  ApiKeyStore,
  ListApiKeysOptions,
  PepperRow,
  RetirePepperOutcome,
  RotateOutcome,
} from './store.js'

/** pg returns `bigint` as strings; better-sqlite3 as numbers. */
type Int64 = ColumnType<number | string, number, number>
type NullableInt64 = ColumnType<number | string | null, number | null, number | null>

interface ApiKeysTable {
  key_id: string
  hash: Uint8Array
  pepper_version: number
  name: string
  prefix: string
  region: string
  start: string
  tier: string
  /** JSON array of strings. */
  permissions: string
  /** JSON array of IPs/CIDRs, or null. */
  allowed_ips: string | null
  created_at: Int64
  expires_at: Int64
  rotated_at: NullableInt64
  grace_until: NullableInt64
  replaced_by: string | null
  revoked_at: NullableInt64
  revoked_reason: string | null
  last_used_at: NullableInt64
  created_by: string | null
  encrypted_key: string | null
  /** row-mac.ts; null for rows written before 0003. */
  row_mac: Uint8Array | null
}

interface AuditTable {
  seq: Int64
  event: string
  key_id: string | null
  actor: string | null
  ip: string | null
  at: Int64
  /** Canonical-enough JSON of the detail object. */
  detail: string
  prev_hash: string
  hash: string
}

interface PeppersTable {
  version: number
  wrapped: string
  created_at: Int64
}

export interface ApiKeysDb {
  api_keys: ApiKeysTable
  api_key_audit_log: AuditTable
  api_key_peppers: PeppersTable
}

/** The API-key tables, written once for both dialects. */
export const API_KEY_MIGRATIONS: SqlMigrationSet = {
  migrationTable: 'api_keys_migrations',
  migrations: {
    '0001_api_keys': {
      async up(db, { types }) {
        await db.schema
          .createTable('api_keys')
          .addColumn('key_id', 'text', (c) => c.primaryKey())
          .addColumn('hash', types.bytes, (c) => c.notNull())
          .addColumn('pepper_version', 'integer', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('prefix', 'text', (c) => c.notNull())
          .addColumn('region', 'text', (c) => c.notNull())
          .addColumn('start', 'text', (c) => c.notNull())
          .addColumn('tier', 'text', (c) => c.notNull())
          .addColumn('permissions', 'text', (c) => c.notNull())
          .addColumn('allowed_ips', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .addColumn('rotated_at', 'bigint')
          .addColumn('grace_until', 'bigint')
          .addColumn('replaced_by', 'text')
          .addColumn('revoked_at', 'bigint')
          .addColumn('revoked_reason', 'text')
          .addColumn('last_used_at', 'bigint')
          .addColumn('created_by', 'text')
          .addColumn('encrypted_key', 'text')
          .execute()
        await db.schema
          .createIndex('api_keys_created_at')
          .on('api_keys')
          .columns(['created_at', 'key_id'])
          .execute()
        const events = sql.join(AUDIT_EVENT_TYPES.map((e) => sql.lit(e)))
        await db.schema
          .createTable('api_key_audit_log')
          .addColumn('seq', 'bigint', (c) => c.primaryKey())
          .addColumn('event', 'text', (c) => c.notNull().check(sql`event in (${events})`))
          .addColumn('key_id', 'text')
          .addColumn('actor', 'text')
          .addColumn('ip', 'text')
          .addColumn('at', 'bigint', (c) => c.notNull())
          .addColumn('detail', 'text', (c) => c.notNull())
          .addColumn('prev_hash', 'text', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull())
          .execute()
        await db.schema
          .createTable('api_key_peppers')
          .addColumn('version', 'integer', (c) => c.primaryKey())
          .addColumn('wrapped', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute()
      },
    },
    // What keys and their trail are looked up by besides the id: expiry
    // sweeps and lifecycle checks (`expires_at`), unrevoked keys
    // (`revoked_at IS NULL`: B-trees index NULLs on both dialects), one key's
    // audit trail in time order (`key_id, at`) and a time range of the log
    // (`at`). Plain CREATE INDEX: the run is one transaction, which
    // CONCURRENTLY cannot join; the tables are small (a row per key, a few per
    // key change).
    '0002_api_key_lookup_indexes': {
      async up(db) {
        const indexes = [
          ['api_keys_expires_at', 'api_keys', ['expires_at']],
          ['api_keys_revoked_at', 'api_keys', ['revoked_at']],
          ['api_key_audit_log_key_id_at', 'api_key_audit_log', ['key_id', 'at']],
          ['api_key_audit_log_at', 'api_key_audit_log', ['at']],
        ] as const
        for (const [name, table, columns] of indexes) {
          await db.schema
            .createIndex(name)
            .ifNotExists()
            .on(table)
            .columns([...columns])
            .execute()
        }
      },
    },
    // The per-row MAC (row-mac.ts). Existing rows get NULL, which the
    // manager refuses: nothing written before this migration is trusted
    // until an operator runs ApiKeyManager.sealUnmacedRows() (docs/api-keys.md).
    '0003_api_key_row_mac': {
      async up(db, { types }) {
        await db.schema.alterTable('api_keys').addColumn('row_mac', types.bytes).execute()
      },
    },
  },
}

/** Keys per last-use UPDATE of a flush: two bound parameters each, far below SQLite's 32,766. */
const LAST_USED_CHUNK = 500

export const KEY_COLUMNS = [
  'key_id',
  'hash',
  'pepper_version',
  'name',
  'prefix',
  'region',
  'start',
  'tier',
  'permissions',
  'allowed_ips',
  'created_at',
  'expires_at',
  'rotated_at',
  'grace_until',
  'replaced_by',
  'revoked_at',
  'revoked_reason',
  'last_used_at',
  'created_by',
  'encrypted_key',
  'row_mac',
] as const

export type KeyRowDb = {
  key_id: string
  hash: Uint8Array
  pepper_version: number
  name: string
  prefix: string
  region: string
  start: string
  tier: string
  permissions: string
  allowed_ips: string | null
  created_at: number | string
  expires_at: number | string
  rotated_at: number | string | null
  grace_until: number | string | null
  replaced_by: string | null
  revoked_at: number | string | null
  revoked_reason: string | null
  last_used_at: number | string | null
  created_by: string | null
  encrypted_key: string | null
  row_mac: Uint8Array | null
}

function corrupt(): ApiKeyStoreError {
  return new ApiKeyStoreError('API-key store holds a row that is not valid')
}

function int(v: number | string): number {
  const n = Number(v)
  if (!Number.isSafeInteger(n)) throw corrupt()
  return n
}
const intOrNull = (v: number | string | null) => (v === null ? null : int(v))

function stringArray(text: string | null): string[] | null {
  if (text === null) return null
  let v: unknown
  try {
    v = JSON.parse(text)
  } catch {
    throw corrupt()
  }
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw corrupt()
  return v as string[]
}

export function toRow(r: KeyRowDb): ApiKeyRow {
  const hash = r.hash instanceof Uint8Array ? r.hash : undefined
  if (hash === undefined || hash.length !== 32) throw corrupt()
  return {
    keyId: r.key_id,
    hash: new Uint8Array(hash),
    pepperVersion: int(r.pepper_version),
    name: r.name,
    prefix: r.prefix,
    region: r.region,
    start: r.start,
    tier: r.tier,
    permissions: stringArray(r.permissions) ?? [],
    allowedIps: stringArray(r.allowed_ips),
    createdAt: int(r.created_at),
    expiresAt: int(r.expires_at),
    rotatedAt: intOrNull(r.rotated_at),
    graceUntil: intOrNull(r.grace_until),
    replacedBy: r.replaced_by,
    revokedAt: intOrNull(r.revoked_at),
    revokedReason: r.revoked_reason,
    lastUsedAt: intOrNull(r.last_used_at),
    createdBy: r.created_by,
    encryptedKey: r.encrypted_key,
    // Absent, not null, for rows without one: a store of the contract may omit it.
    ...(r.row_mac instanceof Uint8Array ? { rowMac: new Uint8Array(r.row_mac) } : {}),
  }
}

function toDb(row: ApiKeyRow) {
  return {
    key_id: row.keyId,
    hash: Buffer.from(row.hash),
    pepper_version: row.pepperVersion,
    name: row.name,
    prefix: row.prefix,
    region: row.region,
    start: row.start,
    tier: row.tier,
    permissions: JSON.stringify(row.permissions),
    allowed_ips: row.allowedIps === null ? null : JSON.stringify(row.allowedIps),
    created_at: row.createdAt,
    expires_at: row.expiresAt,
    rotated_at: row.rotatedAt,
    grace_until: row.graceUntil,
    replaced_by: row.replacedBy,
    revoked_at: row.revokedAt,
    revoked_reason: row.revokedReason,
    last_used_at: row.lastUsedAt,
    created_by: row.createdBy,
    encrypted_key: row.encryptedKey,
    ...(row.rowMac == null ? {} : { row_mac: Buffer.from(row.rowMac) }),
  }
}

type AuditRowDb = {
  seq: number | string
  event: string
  key_id: string | null
  actor: string | null
  ip: string | null
  at: number | string
  detail: string
  prev_hash: string
  hash: string
}

function toAudit(r: AuditRowDb): AuditRecord {
  let detail: unknown
  try {
    detail = JSON.parse(r.detail)
  } catch {
    // A row whose detail no longer parses was tampered with: keep it
    // verifiable (its hash will not match) instead of failing the read.
    detail = { unparseable: r.detail }
  }
  if (detail === null || typeof detail !== 'object' || Array.isArray(detail)) {
    detail = { unparseable: r.detail }
  }
  return {
    seq: int(r.seq),
    event: r.event as AuditEventType,
    keyId: r.key_id,
    actor: r.actor,
    ip: r.ip,
    at: int(r.at),
    detail: detail as AuditDetail,
    prevHash: r.prev_hash,
    hash: r.hash,
  }
}

/** Events whose key changed in a way other processes' caches must see. */
const CHANGE_EVENTS = ['created', 'rotated', 'revoked', 'pepper'] as const

export interface SqlApiKeyStoreInit {
  readonly dialect: SqlDialect
  readonly open: () => Promise<SqlDatabase<unknown>>
  /** Lock name of the audit chain (PostgreSQL advisory lock). */
  readonly chainLock: string
  /** How often {@link SqlApiKeyStore.subscribe} polls the audit log. */
  readonly pollIntervalMs: number
}

/**
 * An API-key store on the SQL layer. The handle is opened on first use (a
 * store constructs without importing or connecting) and reopened after a
 * failed open.
 */
export abstract class SqlApiKeyStore implements ApiKeyStore {
  readonly #handle: LazySqlHandle<ApiKeysDb>
  readonly #chainLock: string
  readonly #pollIntervalMs: number
  readonly #unsubscribers = new Set<() => Promise<void>>()
  #auditKey: AuditChainKey | undefined

  protected constructor(init: SqlApiKeyStoreInit) {
    this.#handle = new LazySqlHandle<ApiKeysDb>({
      dialect: init.dialect,
      open: init.open,
      noun: 'API-key store',
      fail: (message, options) => new ApiKeyStoreError(message, options),
    })
    this.#chainLock = init.chainLock
    this.#pollIntervalMs = init.pollIntervalMs
  }

  /** Sends change notifications inside a write transaction; nothing by default. */
  protected notify(_trx: Kysely<ApiKeysDb>, _changes: readonly ApiKeyChange[]): Promise<void> {
    return Promise.resolve()
  }

  async migrate(): Promise<void> {
    await this.op('migrate', (h) => h.migrate(API_KEY_MIGRATIONS))
  }

  async listPeppers(): Promise<PepperRow[]> {
    const rows = await this.op('read peppers', (h) =>
      h.db
        .selectFrom('api_key_peppers')
        .select(['version', 'wrapped', 'created_at'])
        .orderBy('version')
        .execute(),
    )
    return rows.map((r) => ({
      version: int(r.version),
      wrapped: r.wrapped,
      createdAt: int(r.created_at),
    }))
  }

  async addPepper(row: PepperRow, audit: AuditEventInput): Promise<boolean> {
    return this.op('add a pepper', (h) =>
      this.#write(h, async (trx) => {
        const inserted = await trx
          .insertInto('api_key_peppers')
          .values({ version: row.version, wrapped: row.wrapped, created_at: row.createdAt })
          .onConflict((oc) => oc.column('version').doNothing())
          .returning('version')
          .executeTakeFirst()
        if (inserted === undefined) return false
        await this.#append(trx, [audit])
        await this.notify(trx, [{ event: 'pepper', keyId: null }])
        return true
      }),
    )
  }

  async insertKey(row: ApiKeyRow, audit: AuditEventInput): Promise<boolean> {
    return this.op('add a key', (h) =>
      this.#write(h, async (trx) => {
        await this.#requirePepper(trx, row.pepperVersion)
        const inserted = await trx
          .insertInto('api_keys')
          .values(toDb(row))
          .onConflict((oc) => oc.column('key_id').doNothing())
          .returning('key_id')
          .executeTakeFirst()
        if (inserted === undefined) return false
        await this.#append(trx, [audit])
        await this.notify(trx, [{ event: 'created', keyId: row.keyId }])
        return true
      }),
    )
  }

  async getKey(keyId: string): Promise<ApiKeyRow | undefined> {
    const row = await this.op('read a key', (h) =>
      h.db
        .selectFrom('api_keys')
        .select(KEY_COLUMNS)
        .where('key_id', '=', keyId)
        .executeTakeFirst(),
    )
    return row === undefined ? undefined : toRow(row)
  }

  async listKeys(options: ListApiKeysOptions = {}): Promise<ApiKeyRow[]> {
    const limit = options.limit ?? 1000
    const offset = options.offset ?? 0
    const rows = await this.op('list keys', (h) => {
      let q = h.db.selectFrom('api_keys').select(KEY_COLUMNS)
      if (options.includeRevoked === false) q = q.where('revoked_at', 'is', null)
      return q.orderBy('created_at', 'desc').orderBy('key_id').limit(limit).offset(offset).execute()
    })
    return rows.map(toRow)
  }

  async rotateKey(
    keyId: string,
    change: { rotatedAt: number; graceUntil: number; replacement: ApiKeyRow; rowMac?: Uint8Array },
    audit: readonly AuditEventInput[],
  ): Promise<RotateOutcome> {
    return this.op('rotate a key', (h) =>
      this.#write(h, async (trx) => {
        const updated = await trx
          .updateTable('api_keys')
          .set({
            rotated_at: change.rotatedAt,
            grace_until: change.graceUntil,
            replaced_by: change.replacement.keyId,
            row_mac: change.rowMac === undefined ? null : Buffer.from(change.rowMac),
          })
          .where('key_id', '=', keyId)
          .where('revoked_at', 'is', null)
          .where('replaced_by', 'is', null)
          .returning('key_id')
          .executeTakeFirst()
        if (updated === undefined) {
          const exists = await trx
            .selectFrom('api_keys')
            .select('key_id')
            .where('key_id', '=', keyId)
            .executeTakeFirst()
          return exists === undefined ? 'missing' : 'conflict'
        }
        await this.#requirePepper(trx, change.replacement.pepperVersion)
        await trx.insertInto('api_keys').values(toDb(change.replacement)).execute()
        await this.#append(trx, audit)
        await this.notify(trx, [
          { event: 'rotated', keyId },
          { event: 'created', keyId: change.replacement.keyId },
        ])
        return 'rotated'
      }),
    )
  }

  async revokeKey(
    keyId: string,
    change: { revokedAt: number; reason: string; rowMac?: Uint8Array },
    audit: AuditEventInput,
  ): Promise<ApiKeyRow | undefined> {
    const row = await this.op('revoke a key', (h) =>
      this.#write(h, async (trx) => {
        const updated = await trx
          .updateTable('api_keys')
          .set({
            revoked_at: change.revokedAt,
            revoked_reason: change.reason,
            row_mac: change.rowMac === undefined ? null : Buffer.from(change.rowMac),
          })
          .where('key_id', '=', keyId)
          .where('revoked_at', 'is', null)
          .returning(KEY_COLUMNS)
          .executeTakeFirst()
        if (updated === undefined) {
          return trx
            .selectFrom('api_keys')
            .select(KEY_COLUMNS)
            .where('key_id', '=', keyId)
            .executeTakeFirst()
        }
        await this.#append(trx, [audit])
        await this.notify(trx, [{ event: 'revoked', keyId }])
        return updated
      }),
    )
    return row === undefined ? undefined : toRow(row)
  }

  async flush(batch: ApiKeyFlush): Promise<void> {
    if (batch.lastUsed.size === 0 && batch.rehash.length === 0 && batch.audit.length === 0) return
    await this.op('flush', (h) =>
      this.#write(h, async (trx) => {
        // One UPDATE per chunk, not per key: a flush carries every key used
        // since the last one (1e5 with 1e5 active keys), and a round trip
        // each made the flush outlast its interval (bench/api-keys growth).
        // VALUES columns are `column1`, `column2` on both dialects.
        const used = [...batch.lastUsed]
        for (let i = 0; i < used.length; i += LAST_USED_CHUNK) {
          const rows = used
            .slice(i, i + LAST_USED_CHUNK)
            .map(([keyId, at]) => sql`(cast(${keyId} as text), cast(${at} as bigint))`)
          await trx
            .updateTable('api_keys')
            .from(sql<{ column1: string; column2: number }>`(values ${sql.join(rows)})`.as('v'))
            .set((eb) => ({ last_used_at: eb.ref('v.column2') }))
            .whereRef('api_keys.key_id', '=', 'v.column1')
            .where((eb) =>
              eb.or([
                eb('api_keys.last_used_at', 'is', null),
                eb('api_keys.last_used_at', '<', eb.ref('v.column2')),
              ]),
            )
            .execute()
        }
        const retired = new Map<number, boolean>()
        for (const r of batch.rehash) {
          // A process that has not seen a retirement yet would rehash onto
          // it; the row keeps its own version instead (the flush goes on).
          let gone = retired.get(r.pepperVersion)
          if (gone === undefined) {
            gone = await this.#pepperRetired(trx, r.pepperVersion)
            retired.set(r.pepperVersion, gone)
          }
          if (gone) continue
          await trx
            .updateTable('api_keys')
            .set({
              hash: Buffer.from(r.hash),
              pepper_version: r.pepperVersion,
              row_mac: r.rowMac === undefined ? null : Buffer.from(r.rowMac),
            })
            .where('key_id', '=', r.keyId)
            .where('pepper_version', '=', r.fromVersion)
            .where((eb) =>
              r.fromRowMac === undefined
                ? eb('row_mac', 'is', null)
                : eb('row_mac', '=', Buffer.from(r.fromRowMac)),
            )
            .execute()
        }
        await this.#append(trx, batch.audit)
      }),
    )
  }

  async setRowMac(keyId: string, rowMac: Uint8Array): Promise<boolean> {
    const updated = await this.op('seal a key row', (h) =>
      this.#write(h, (trx) =>
        trx
          .updateTable('api_keys')
          .set({ row_mac: Buffer.from(rowMac) })
          .where('key_id', '=', keyId)
          .where('row_mac', 'is', null)
          .returning('key_id')
          .executeTakeFirst(),
      ),
    )
    return updated !== undefined
  }

  async appendAudit(events: readonly AuditEventInput[]): Promise<void> {
    if (events.length === 0) return
    await this.op('append audit events', (h) => this.#write(h, (trx) => this.#append(trx, events)))
  }

  async lastAudit(): Promise<AuditRecord | undefined> {
    const row = await this.op('read the audit log', (h) =>
      h.db
        .selectFrom('api_key_audit_log')
        .selectAll()
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirst(),
    )
    return row === undefined ? undefined : toAudit(row)
  }

  useAuditKey(key: AuditChainKey | undefined): void {
    this.#auditKey = key
  }

  async readAudit(afterSeq: number, limit: number): Promise<AuditRecord[]> {
    const rows = await this.op('read the audit log', (h) =>
      h.db
        .selectFrom('api_key_audit_log')
        .selectAll()
        .where('seq', '>', afterSeq)
        .orderBy('seq')
        .limit(limit)
        .execute(),
    )
    return rows.map(toAudit)
  }

  /**
   * Polls the audit log for key changes every `pollIntervalMs` (one indexed
   * read per interval, never per request). `onReset` fires when a poll
   * fails: changes may have been missed.
   */
  async subscribe(
    onChange: (change: ApiKeyChange) => void,
    onReset: () => void,
  ): Promise<() => Promise<void>> {
    let last = await this.op('read the audit log', async (h) => {
      const row = await h.db
        .selectFrom('api_key_audit_log')
        .select((eb) => eb.fn.max('seq').as('seq'))
        .executeTakeFirst()
      return row?.seq === null || row?.seq === undefined ? 0 : int(row.seq)
    })
    let failed = false
    let running = false
    const poll = async () => {
      if (running || this.#handle.closed) return
      running = true
      try {
        for (;;) {
          const rows = await this.op('poll the audit log', (h) =>
            h.db
              .selectFrom('api_key_audit_log')
              .select(['seq', 'event', 'key_id'])
              .where('seq', '>', last)
              .orderBy('seq')
              .limit(1000)
              .execute(),
          )
          if (failed) {
            failed = false
            onReset()
          }
          for (const r of rows) {
            last = int(r.seq)
            if ((CHANGE_EVENTS as readonly string[]).includes(r.event)) {
              onChange({ event: r.event as ApiKeyChange['event'], keyId: r.key_id })
            }
          }
          if (rows.length < 1000) break
        }
      } catch {
        failed = true
      } finally {
        running = false
      }
    }
    const timer = setInterval(() => void poll(), this.#pollIntervalMs)
    timer.unref?.()
    const stop = async () => {
      clearInterval(timer)
      this.#unsubscribers.delete(stop)
    }
    this.#unsubscribers.add(stop)
    return stop
  }

  /** Registers a subscription's stop function, so `close()` ends it. */
  protected registerUnsubscriber(stop: () => Promise<void>): void {
    this.#unsubscribers.add(stop)
  }

  async close(): Promise<void> {
    for (const stop of [...this.#unsubscribers]) await stop()
    await this.#handle.close()
  }

  async retirePepper(version: number, audit: AuditEventInput): Promise<RetirePepperOutcome> {
    return this.op('retire a pepper', (h) =>
      this.#write(h, async (trx) => {
        const used = await trx
          .selectFrom('api_keys')
          .select('key_id')
          .where('pepper_version', '=', version)
          .limit(1)
          .executeTakeFirst()
        if (used !== undefined) return 'in-use'
        const deleted = await trx
          .deleteFrom('api_key_peppers')
          .where('version', '=', version)
          .returning('version')
          .executeTakeFirst()
        if (deleted === undefined) return 'missing'
        await this.#append(trx, [audit])
        await this.notify(trx, [{ event: 'pepper', keyId: null }])
        return 'retired'
      }),
    )
  }

  /**
   * Precondition of every key write: its pepper version was not retired
   * (missing while a newer one exists; versions only grow). The chain lock
   * orders it with `retirePepper`, so a process that has not yet seen a
   * retirement cannot write a key no process could validate.
   */
  async #requirePepper(trx: Kysely<ApiKeysDb>, version: number): Promise<void> {
    if (await this.#pepperRetired(trx, version)) {
      throw new ApiKeyStoreError('the API-key pepper version was retired')
    }
  }

  /** Whether `version` is missing while a newer one exists (versions only grow). */
  async #pepperRetired(trx: Kysely<ApiKeysDb>, version: number): Promise<boolean> {
    const rows = await trx
      .selectFrom('api_key_peppers')
      .select('version')
      .where((eb) => eb.or([eb('version', '=', version), eb('version', '>', version)]))
      .orderBy('version')
      .limit(1)
      .execute()
    const first = rows[0]
    return first !== undefined && int(first.version) !== version
  }

  /** A write transaction holding the chain's lock. */
  #write<T>(h: SqlDatabase<ApiKeysDb>, fn: (trx: Kysely<ApiKeysDb>) => Promise<T>): Promise<T> {
    return h.transaction(fn, { advisoryLock: this.#chainLock })
  }

  /** Appends `events` after the chain's last row; the caller holds the chain's lock. */
  async #append(trx: Kysely<ApiKeysDb>, events: readonly AuditEventInput[]): Promise<void> {
    if (events.length === 0) return
    const last = await trx
      .selectFrom('api_key_audit_log')
      .select(['seq', 'hash'])
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst()
    const records = chainEvents(
      last === undefined ? undefined : { seq: int(last.seq), hash: last.hash },
      events,
      this.#auditKey,
    )
    // Bounded batches: SQLite allows 32,766 bound parameters per statement.
    for (let i = 0; i < records.length; i += 500) {
      await trx
        .insertInto('api_key_audit_log')
        .values(
          records.slice(i, i + 500).map((r) => ({
            seq: r.seq,
            event: r.event,
            key_id: r.keyId,
            actor: r.actor,
            ip: r.ip,
            at: r.at,
            detail: JSON.stringify(r.detail),
            prev_hash: r.prevHash,
            hash: r.hash,
          })),
        )
        .execute()
    }
  }

  /** Runs `fn` on the handle (opened on first use); failures become a sanitized ApiKeyStoreError. */
  protected op<T>(what: string, fn: (h: SqlDatabase<ApiKeysDb>) => Promise<T>): Promise<T> {
    return this.#handle.op(what, fn)
  }
}
