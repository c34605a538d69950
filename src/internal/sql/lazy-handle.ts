/**
 * A store's SQL handle, opened on first use (so constructing a store
 * imports nothing and connects nowhere) and reopened after a failed open,
 * with every failure mapped to the store's own sanitized error: the
 * message says what the store was doing, the cause keeps only the
 * database's error code.
 */
import { SecurityError, type SecurityErrorOptions } from '../../errors.js'
import type { SqlDatabase } from './database.js'
import { SqlMigrationError, sanitizeSqlError } from './errors.js'
import type { SqlDialect } from './migrate.js'

export class LazySqlHandle<DB> {
  readonly #dialect: SqlDialect
  readonly #open: () => Promise<SqlDatabase<DB>>
  /** The store's name in messages: `Keyring store`, `API-key store`. */
  readonly #noun: string
  readonly #fail: (message: string, options?: SecurityErrorOptions) => SecurityError
  #handle: Promise<SqlDatabase<DB>> | undefined
  #closed = false

  constructor(init: {
    dialect: SqlDialect
    open: () => Promise<SqlDatabase<unknown>>
    noun: string
    fail: (message: string, options?: SecurityErrorOptions) => SecurityError
  }) {
    this.#dialect = init.dialect
    this.#open = init.open as () => Promise<SqlDatabase<DB>>
    this.#noun = init.noun
    this.#fail = init.fail
  }

  get closed(): boolean {
    return this.#closed
  }

  /** Runs `fn` on the handle; `what` completes "could not …" in the error. */
  async op<T>(what: string, fn: (h: SqlDatabase<DB>) => Promise<T>): Promise<T> {
    try {
      if (this.#closed) throw this.#fail(`${this.#noun} is closed`)
      this.#handle ??= this.#open().catch((err: unknown) => {
        this.#handle = undefined
        throw err
      })
      return await fn(await this.#handle)
    } catch (err) {
      throw this.#map(what, err)
    }
  }

  /** Closes what the handle opened (a borrowed pool or database stays open). */
  async close(): Promise<void> {
    this.#closed = true
    const handle = this.#handle
    this.#handle = undefined
    const h = await handle?.catch(() => undefined)
    await h?.close()
  }

  #map(what: string, err: unknown): SecurityError {
    // Ours already (closed store, missing package, bad option): unchanged.
    if (err instanceof SecurityError) return err
    if (err instanceof SqlMigrationError) {
      return this.#fail(`${this.#noun} could not ${what}: migration ${err.migration} failed`, {
        cause: err.cause,
      })
    }
    return this.#fail(`${this.#noun} could not ${what}`, {
      cause: sanitizeSqlError(this.#dialect, err),
    })
  }
}
