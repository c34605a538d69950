/**
 * Shared set-up of the ApiKeyManager suites: a counting store (reads and
 * writes per method), a counting local KMS, an injected clock, a logger
 * that keeps every line.
 */
import { randomBytes } from 'node:crypto'
import Database from 'better-sqlite3'
import { expect } from 'vitest'
import {
  ApiKeyManager,
  type ApiKeyManagerOptions,
  type ApiKeyStore,
  SqliteApiKeyStore,
} from '../../src/api-keys/index.js'
import { KeyManager, LocalKmsProvider } from '../../src/kms/index.js'

export const T0 = 1_795_000_000_000
export const DAY = 86_400_000

const READS = ['getKey', 'listKeys', 'listPeppers', 'readAudit'] as const
const WRITES = ['insertKey', 'rotateKey', 'revokeKey', 'flush', 'appendAudit', 'addPepper'] as const

export interface Counted {
  store: ApiKeyStore
  reads: () => number
  writes: () => number
  calls: Record<string, number>
}

/** Wraps a store so every read and write method call is counted. */
export function countCalls(inner: ApiKeyStore): Counted {
  const calls: Record<string, number> = {}
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        calls[String(prop)] = (calls[String(prop)] ?? 0) + 1
        return (value as (...a: unknown[]) => unknown).apply(target, args)
      }
    },
  })
  const sum = (names: readonly string[]) => names.reduce((n, k) => n + (calls[k] ?? 0), 0)
  return { store, reads: () => sum(READS), writes: () => sum(WRITES), calls }
}

/** A KeyManager over a local provider whose KMS operations are counted. */
export function countingKms(): { keyManager: KeyManager; kmsCalls: () => number } {
  const provider = new LocalKmsProvider({ keys: { app: randomBytes(32) } })
  let n = 0
  for (const op of ['encrypt', 'decrypt', 'generateDataKey'] as const) {
    const original = provider[op].bind(provider) as (...a: unknown[]) => Promise<unknown>
    ;(provider as unknown as Record<string, unknown>)[op] = (...args: unknown[]) => {
      n++
      return original(...args)
    }
  }
  const keyManager = new KeyManager({
    providers: { local: provider },
    defaultProvider: 'local',
    defaultKeyId: 'app',
    logger: { warn: () => {}, error: () => {} },
  })
  return { keyManager, kmsCalls: () => n }
}

export interface LogLine {
  level: string
  obj: object
  msg: string | undefined
}

export function memoryLogger(): { logger: ApiKeyManagerOptions['logger']; lines: LogLine[] } {
  const lines: LogLine[] = []
  return {
    lines,
    logger: {
      warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
      error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
    },
  }
}

export interface Fixture {
  manager: ApiKeyManager
  /** A second manager on the same database: another process. */
  peer(options?: Partial<ApiKeyManagerOptions>): ApiKeyManager
  db: Database.Database
  counted: Counted
  keyManager: KeyManager
  kmsCalls: () => number
  clock: { now: number }
  lines: LogLine[]
  close(): Promise<void>
}

/** A manager on a borrowed in-memory SQLite database, with counters and an injected clock. */
export function fixture(options: Partial<ApiKeyManagerOptions> = {}): Fixture {
  const db = new Database(':memory:')
  const counted = countCalls(new SqliteApiKeyStore({ database: db, pollIntervalMs: 20 }))
  const { keyManager, kmsCalls } = countingKms()
  const clock = { now: T0 }
  const { logger, lines } = memoryLogger()
  const base: ApiKeyManagerOptions = {
    store: counted.store,
    keyManager,
    clock: () => clock.now,
    logger,
    flushIntervalMs: 3_600_000,
    ...options,
  }
  const managers = [new ApiKeyManager(base)]
  return {
    manager: managers[0]!,
    peer(extra = {}) {
      const m = new ApiKeyManager({
        ...base,
        store: new SqliteApiKeyStore({ database: db, pollIntervalMs: 20 }),
        ...extra,
      })
      managers.push(m)
      return m
    },
    db,
    counted,
    keyManager,
    kmsCalls,
    clock,
    lines,
    async close() {
      for (const m of managers) await m.close()
      await counted.store.close()
      db.close()
    },
  }
}

/**
 * `vi.waitFor` options for changes that reach another instance
 * asynchronously (a notification, a cache refresh): polled often, bounded
 * generously, since the bound guards against a hang, not a slow machine.
 */
export const WAIT = { timeout: 15_000, interval: 20 } as const

/** The code a promise rejects with, or 'resolved'. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
    return 'resolved'
  } catch (err) {
    return String((err as { code?: unknown }).code)
  }
}

/**
 * Constructing with each `[options, field]` throws ERR_CONFIG_INVALID naming
 * that field; `closed`: the name is the whole quoted path, not its start.
 */
export function expectConfigErrors(
  make: (options: never) => unknown,
  cases: ReadonlyArray<readonly [unknown, string]>,
  { closed = false }: { closed?: boolean } = {},
): void {
  for (const [options, field] of cases) {
    let thrown: unknown
    try {
      make(options as never)
    } catch (err) {
      thrown = err
    }
    expect(thrown, field).toMatchObject({ code: 'ERR_CONFIG_INVALID' })
    expect((thrown as Error).message, field).toContain(closed ? `\`${field}\`` : `\`${field}`)
  }
}

/** Fresh PostgreSQL schemas under a test file's own, dropped together at the end. */
export function schemasOf(
  base: () => { schema: string; pool: { query(text: string): Promise<unknown> } },
) {
  const made: string[] = []
  return {
    fresh(): string {
      const s = `${base().schema}_${made.length + 1}`
      made.push(s)
      return s
    },
    async dropAll(): Promise<void> {
      for (const s of made) await base().pool.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`)
    },
  }
}
