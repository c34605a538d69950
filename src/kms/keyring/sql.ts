/**
 * The keyring on the shared SQL layer, written once for PostgreSQL and
 * SQLite. One table; every method is one statement or one transaction whose
 * guard lives in the database, so processes sharing it converge:
 *
 * - a partial unique index on `status` where `status = 'active'` allows at
 *   most one active row, and `insertFirstActive` is `INSERT … ON CONFLICT
 *   DO NOTHING` against it followed by a read of the winner;
 * - `rotate` demotes the expected id with `UPDATE … WHERE id = ? AND status =
 *   'active'` and inserts the new key only if that matched, in one
 *   transaction (PostgreSQL READ COMMITTED re-checks the guard once a
 *   concurrent rotation commits; SQLite holds the write lock throughout);
 * - `reserveUses` is one `UPDATE … WHERE id = ? AND status = 'active' AND
 *   uses_reserved + ? <= ? RETURNING uses_reserved` (`status IN ('active',
 *   'decrypt-only')` with `superseded`).
 */
import { type ColumnType, type Kysely, sql } from 'kysely'
import type { SqlDatabase } from '../../internal/sql/database.js'
import { sqlIdentifier } from '../../internal/sql/identifiers.js'
import { LazySqlHandle } from '../../internal/sql/lazy-handle.js'
import type { SqlDialect, SqlMigrationSet } from '../../internal/sql/migrate.js'
import type { EncryptedDataJson } from '../models.js'
import {
  DATA_KEY_STATUSES,
  type DataKeyStatus,
  type KeyringEntry,
  type KeyringStore,
  KeyringStoreError,
  type NewKeyringEntry,
  type ReserveUsesOptions,
} from './store.js'

/**
 * Table names leave room for the derived `<table>_migrations_lock` (16
 * more characters) within PostgreSQL's 63.
 */
export const KeyringTableSchema = sqlIdentifier(47)

export const DEFAULT_KEYRING_TABLE = 'fraiseql_keyring'

/** pg returns `bigint` columns as strings; better-sqlite3 as numbers. */
type Int64 = ColumnType<number | string, number, number>

interface KeyringTable {
  id: string
  status: string
  /** EncryptedData JSON of the wrapped key. */
  wrapped_key: string
  /** Milliseconds since the epoch. */
  created_at: Int64
  uses_reserved: Int64
  /** Insertion order, so entries created in the same millisecond list as MemoryKeyringStore lists them. */
  seq: Int64
  /** Monotonic key generation (migration 0002); null on older rows until sealed. */
  generation: ColumnType<number | string | null, number | null, number>
  /** Hex HMAC-SHA256 of the row (migration 0002); null on older rows until sealed. */
  row_mac: ColumnType<string | null, string | null, string>
}

/** The table's name is an option: queries name it `keyring` and cast the real name to it. */
interface KeyringDb {
  keyring: KeyringTable
}

/** The keyring's migrations, written once for both dialects. */
export function keyringMigrations(table: string): SqlMigrationSet {
  return {
    migrationTable: `${table}_migrations`,
    migrations: {
      '0001_keyring': {
        async up(db) {
          const statuses = sql.join(DATA_KEY_STATUSES.map((s) => sql.lit(s)))
          await db.schema
            .createTable(table)
            .addColumn('id', 'text', (c) => c.primaryKey())
            .addColumn('status', 'text', (c) => c.notNull().check(sql`status in (${statuses})`))
            .addColumn('wrapped_key', 'text', (c) => c.notNull())
            .addColumn('created_at', 'bigint', (c) => c.notNull())
            .addColumn('uses_reserved', 'bigint', (c) => c.notNull().defaultTo(0))
            .addColumn('seq', 'bigint', (c) => c.notNull())
            .execute()
          // At most one active key, enforced by the database for every process.
          await db.schema
            .createIndex(`${table}_one_active`)
            .unique()
            .on(table)
            .column('status')
            .where(sql.ref('status'), '=', sql.lit('active'))
            .execute()
        },
      },
      // Issue 21: rows carry a MAC and a generation the KeyManager checks.
      // Rows already there get neither and are refused until an operator
      // runs KeyManager.sealUnmacedDataKeys() (docs/key-manager.md).
      '0002_keyring_row_mac': {
        async up(db) {
          await db.schema.alterTable(table).addColumn('generation', 'bigint').execute()
          await db.schema.alterTable(table).addColumn('row_mac', 'text').execute()
        },
      },
    },
  }
}

const COLUMNS = [
  'id',
  'status',
  'wrapped_key',
  'created_at',
  'uses_reserved',
  'generation',
  'row_mac',
] as const

type Row = {
  id: string
  status: string
  wrapped_key: string
  created_at: number | string
  uses_reserved: number | string
  generation: number | string | null
  row_mac: string | null
}

function corrupt(): KeyringStoreError {
  return new KeyringStoreError('Keyring store holds a row that is not a valid keyring entry')
}

function toEntry(row: Row): KeyringEntry {
  const createdAt = Number(row.created_at)
  const usesReserved = Number(row.uses_reserved)
  const generation = row.generation === null ? null : Number(row.generation)
  if (
    !(DATA_KEY_STATUSES as readonly string[]).includes(row.status) ||
    !Number.isSafeInteger(createdAt) ||
    !Number.isSafeInteger(usesReserved) ||
    (generation !== null && !Number.isSafeInteger(generation)) ||
    (row.row_mac !== null && typeof row.row_mac !== 'string')
  ) {
    throw corrupt()
  }
  let wrappedKey: unknown
  try {
    wrappedKey = JSON.parse(row.wrapped_key)
  } catch {
    throw corrupt()
  }
  if (typeof wrappedKey !== 'object' || wrappedKey === null || Array.isArray(wrappedKey)) {
    throw corrupt()
  }
  return {
    id: row.id,
    status: row.status as DataKeyStatus,
    wrappedKey: wrappedKey as EncryptedDataJson,
    createdAt,
    usesReserved,
    generation,
    mac: row.row_mac,
  }
}

/**
 * A keyring store on the SQL layer. Subclasses choose the database; the
 * handle is opened on first use (so constructing a store imports nothing
 * and connects nowhere) and reopened after a failed open.
 */
export abstract class SqlKeyringStore implements KeyringStore {
  readonly #table: 'keyring'
  readonly #handle: LazySqlHandle<KeyringDb>

  protected constructor(
    dialect: SqlDialect,
    table: string,
    open: () => Promise<SqlDatabase<unknown>>,
  ) {
    // The row type is fixed; only the name varies (see KeyringDb).
    this.#table = table as 'keyring'
    this.#handle = new LazySqlHandle<KeyringDb>({
      dialect,
      open,
      noun: 'Keyring store',
      fail: (message, options) => new KeyringStoreError(message, options),
    })
  }

  /** Creates or upgrades the keyring table; idempotent, serialized across processes. */
  async migrate(): Promise<void> {
    await this.#op('migrate', (h) => h.migrate(keyringMigrations(this.#table)))
  }

  async list(): Promise<KeyringEntry[]> {
    const rows = await this.#op('list keys', (h) =>
      h.db.selectFrom(this.#table).select(COLUMNS).orderBy('created_at').orderBy('seq').execute(),
    )
    return rows.map(toEntry)
  }

  async get(id: string): Promise<KeyringEntry | undefined> {
    const row = await this.#op('read a key', (h) =>
      h.db.selectFrom(this.#table).select(COLUMNS).where('id', '=', id).executeTakeFirst(),
    )
    return row === undefined ? undefined : toEntry(row)
  }

  async active(): Promise<KeyringEntry | undefined> {
    const row = await this.#op('read the active key', (h) => this.#selectActive(h.db))
    return row === undefined ? undefined : toEntry(row)
  }

  async insertFirstActive(entry: NewKeyringEntry): Promise<KeyringEntry> {
    // The winner can only disappear again if someone demotes it with
    // setStatus between our insert and our read: retry a few times.
    for (let attempt = 0; attempt < 3; attempt++) {
      const row = await this.#op('add the first key', async (h) => {
        const inserted = await h.run((db) => this.#insertActive(db, entry, true))
        return inserted ?? (await this.#selectActive(h.db))
      })
      if (row !== undefined) return toEntry(row)
    }
    throw new KeyringStoreError('Keyring store could not add the first key: no key stayed active')
  }

  async rotate(expectedActiveId: string, entry: NewKeyringEntry): Promise<KeyringEntry> {
    const row = await this.#op('rotate keys', (h) =>
      h.transaction(async (trx) => {
        const demoted = await trx
          .updateTable(this.#table)
          .set({ status: 'decrypt-only' })
          .where('id', '=', expectedActiveId)
          .where('status', '=', 'active')
          .returning('id')
          .executeTakeFirst()
        if (demoted !== undefined) return this.#insertActive(trx, entry, false)
        // Another process rotated first (or the expected key was demoted):
        // the current active key wins; with none, ours becomes active.
        return (
          (await this.#selectActive(trx)) ??
          (await this.#insertActive(trx, entry, true)) ??
          (await this.#selectActive(trx))
        )
      }),
    )
    if (row === undefined) {
      throw new KeyringStoreError('Keyring store could not rotate keys: no key stayed active')
    }
    return toEntry(row)
  }

  async reserveUses(
    id: string,
    count: number,
    limit: number,
    options?: ReserveUsesOptions,
  ): Promise<number | undefined> {
    const statuses: DataKeyStatus[] = options?.superseded ? ['active', 'decrypt-only'] : ['active']
    const row = await this.#op('reserve uses', (h) =>
      h.run((db) =>
        db
          .updateTable(this.#table)
          .set((eb) => ({ uses_reserved: eb('uses_reserved', '+', count).$castTo<number>() }))
          .where('id', '=', id)
          .where('status', 'in', statuses)
          .where((eb) => eb(eb('uses_reserved', '+', count), '<=', limit))
          .returning('uses_reserved')
          .executeTakeFirst(),
      ),
    )
    if (row === undefined) return undefined
    const total = Number(row.uses_reserved)
    if (!Number.isSafeInteger(total)) throw corrupt()
    return total
  }

  async setStatus(id: string, status: Exclude<DataKeyStatus, 'active'>): Promise<void> {
    // Precondition: the type says so, and a JavaScript caller gets the same
    // answer: activation happens only through insertFirstActive and rotate.
    if (status !== 'decrypt-only' && status !== 'retired') {
      throw new KeyringStoreError('setStatus only sets decrypt-only or retired')
    }
    await this.#op('change a key status', (h) =>
      h.run((db) => db.updateTable(this.#table).set({ status }).where('id', '=', id).execute()),
    )
  }

  async sealEntry(id: string, generation: number, mac: string): Promise<boolean> {
    const row = await this.#op('seal a key', (h) =>
      h.run((db) =>
        db
          .updateTable(this.#table)
          .set({ generation, row_mac: mac })
          .where('id', '=', id)
          .where('row_mac', 'is', null)
          .returning('id')
          .executeTakeFirst(),
      ),
    )
    return row !== undefined
  }

  /** Closes the connection or database the store opened itself; a borrowed one stays open. */
  async close(): Promise<void> {
    await this.#handle.close()
  }

  #selectActive(db: Kysely<KeyringDb>): Promise<Row | undefined> {
    return db
      .selectFrom(this.#table)
      .select(COLUMNS)
      .where('status', '=', 'active')
      .executeTakeFirst()
  }

  /**
   * Inserts `entry` as the active key. With `ifNoneActive`, a conflict on the
   * one-active index inserts nothing and resolves undefined; a duplicate id
   * is an error either way. The index predicate is a literal: PostgreSQL
   * infers a partial index only from a predicate it can prove at plan time.
   */
  #insertActive(
    db: Kysely<KeyringDb>,
    entry: NewKeyringEntry,
    ifNoneActive: boolean,
  ): Promise<Row | undefined> {
    const insert = db.insertInto(this.#table).values({
      id: entry.id,
      status: 'active',
      wrapped_key: JSON.stringify(entry.wrappedKey),
      created_at: entry.createdAt,
      uses_reserved: 0,
      generation: entry.generation ?? null,
      row_mac: entry.mac ?? null,
      seq: db.selectFrom(this.#table).select(sql<number>`coalesce(max(seq), 0) + 1`.as('next')),
    })
    const guarded = ifNoneActive
      ? insert.onConflict((oc) =>
          oc.column('status').where(sql.ref('status'), '=', sql.lit('active')).doNothing(),
        )
      : insert
    return guarded.returning(COLUMNS).executeTakeFirst()
  }

  #op<T>(what: string, fn: (h: SqlDatabase<KeyringDb>) => Promise<T>): Promise<T> {
    return this.#handle.op(what, fn)
  }
}
