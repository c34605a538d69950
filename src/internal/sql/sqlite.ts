/**
 * The SQLite side of the shared SQL layer, over better-sqlite3.
 *
 * better-sqlite3 is synchronous: a statement that meets a locked database
 * blocks the whole thread until the busy timeout. Between another process's
 * transaction and ours that is the right behaviour (the other process makes
 * progress meanwhile). Between two connections of one process it is a
 * deadlock: the connection holding the write lock cannot run its next
 * statement while the thread waits. So every write in this process goes
 * through {@link withFileLock}, an async lock per database file, and only
 * other processes are left to SQLite's own locking.
 */
import { closeSync, mkdirSync, openSync, realpathSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import {
  CompiledQuery,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  SqliteAdapter,
  SqliteDialect,
  SqliteDriver,
} from 'kysely'
import { z } from 'zod'
import { importOptional } from '../optional-import.js'
import { SQLITE_MEMORY } from './url.js'

/** What the SQL layer needs of a better-sqlite3 `Database`. */
export interface SqliteDatabaseLike {
  prepare(sql: string): {
    readonly reader: boolean
    all(parameters: ReadonlyArray<unknown>): unknown[]
    run(parameters: ReadonlyArray<unknown>): {
      changes: number | bigint
      lastInsertRowid: number | bigint
    }
    iterate(parameters: ReadonlyArray<unknown>): IterableIterator<unknown>
  }
  close(): unknown
  /** The file name it was opened with (better-sqlite3 sets it). */
  readonly name?: string
  /** True for `:memory:` and temporary databases. */
  readonly memory?: boolean
  /** False once closed. */
  readonly open?: boolean
}

/** A database we opened from a file name, and therefore close. */
export interface OwnedSqliteDatabase extends SqliteDatabaseLike {
  pragma(source: string, options?: { simple?: boolean }): unknown
}

export const SqliteDatabaseSchema = z.custom<SqliteDatabaseLike>(
  (v) =>
    typeof (v as Partial<SqliteDatabaseLike> | null)?.prepare === 'function' &&
    typeof (v as Partial<SqliteDatabaseLike> | null)?.close === 'function' &&
    (v as Partial<SqliteDatabaseLike>).open !== false,
  { message: 'must be an open better-sqlite3 Database' },
)

/**
 * Begins every transaction with `BEGIN IMMEDIATE`: it takes the write lock
 * up front (waiting out the busy timeout), so a transaction that reads then
 * writes never fails halfway with SQLITE_BUSY when, in WAL mode, another
 * connection committed after its read (a deferred transaction cannot be
 * upgraded then, and SQLite does not wait).
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'))
  }
}

/**
 * SQLite's DDL is transactional; Kysely's adapter says otherwise, which makes
 * its migrator run without a transaction and without a lock on SQLite.
 * Declaring it lets migrations run as one `BEGIN IMMEDIATE` transaction.
 */
class TransactionalSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  readonly #database: SqliteDatabaseLike
  constructor(database: SqliteDatabaseLike) {
    // Kysely closes the database in destroy(); the wrapper makes that a
    // no-op so a borrowed database stays open (owned ones are closed by us).
    const wrapper = { prepare: (sql: string) => database.prepare(sql), close() {} }
    super({ database: wrapper })
    this.#database = wrapper
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver({ database: this.#database })
  }
  override createAdapter(): DialectAdapter {
    return new TransactionalSqliteAdapter()
  }
}

/** Kysely's SQLite dialect with immediate transactions and transactional DDL. */
export function sqliteDialect(database: SqliteDatabaseLike): SqliteDialect {
  return new ImmediateSqliteDialect(database)
}

interface SqliteModule {
  default: new (filename: string, options?: { timeout?: number }) => OwnedSqliteDatabase
}

/**
 * Opens `filename` with better-sqlite3 (imported on first use): WAL, so
 * readers never wait for the writer, and `busyTimeoutMs` for writers of
 * other processes. `synchronous` stays FULL: a keyring row lost to a power
 * cut would leave ciphertexts no key can decrypt.
 *
 * A missing file is created empty with mode 0600 (and its directory with
 * 0700) before SQLite opens it: SQLite gives its -wal and -shm files the
 * database file's mode, so none of them is readable by other users, where
 * SQLite alone would create 0644 files.
 */
export async function openSqliteDatabase(
  filename: string,
  feature: string,
  busyTimeoutMs: number,
): Promise<OwnedSqliteDatabase> {
  const { default: Database } = await importOptional<SqliteModule>('better-sqlite3', feature)
  if (filename !== SQLITE_MEMORY && filename !== '') createPrivateFile(filename)
  const db = new Database(filename, { timeout: busyTimeoutMs })
  try {
    if (db.memory !== true) db.pragma('journal_mode = WAL')
  } catch (err) {
    db.close()
    throw err
  }
  return db
}

function createPrivateFile(filename: string): void {
  mkdirSync(dirname(resolve(filename)), { recursive: true, mode: 0o700 })
  try {
    closeSync(openSync(filename, 'wx', 0o600))
  } catch (err) {
    // Another process (or an earlier run) created it: SQLite opens it as is.
    if ((err as { code?: unknown }).code !== 'EEXIST') throw err
  }
}

/**
 * The key under which in-process writers of one database serialize: the
 * file's real path, or the connection itself for in-memory databases (each
 * is private to its connection).
 */
export function sqliteLockKey(database: SqliteDatabaseLike): unknown {
  const name = database.name
  if (database.memory === true || name === undefined || name === '' || name === ':memory:') {
    return database
  }
  const path = resolve(name)
  try {
    return realpathSync(path)
  } catch {
    return path
  }
}

const tails = new Map<unknown, Promise<unknown>>()

/**
 * Runs `fn` once every earlier holder of `key` in this process is done. Not
 * reentrant: `fn` must not take the same key again.
 */
export async function withFileLock<T>(key: unknown, fn: () => Promise<T>): Promise<T> {
  const previous = tails.get(key) ?? Promise.resolve()
  const run = previous.then(fn, fn)
  // The chain stores a promise that never rejects, so one failure does not
  // poison the next holder.
  const tail = run.then(
    () => undefined,
    () => undefined,
  )
  tails.set(key, tail)
  try {
    return await run
  } finally {
    if (tails.get(key) === tail) tails.delete(key)
  }
}
