import { mkdtempSync, readdirSync, readlinkSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import Database from 'better-sqlite3'
import { sql } from 'kysely'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type OpenSqlDatabaseOptions,
  openSqlDatabase,
  type SqlDatabase,
} from '../../../src/internal/sql/database.js'
import { SqlMigrationError } from '../../../src/internal/sql/errors.js'
import type { SqlMigration, SqlMigrationSet } from '../../../src/internal/sql/migrate.js'
import type { OwnedPgPool } from '../../../src/internal/sql/postgres.js'
import { rejection } from '../../helpers/rejection.js'
import {
  createPgSchema,
  DATABASE_URL,
  HAS_POSTGRES,
  type PgSchema,
} from '../../helpers/services.js'

const dir = mkdtempSync(join(tmpdir(), 'fsl-sql-'))
afterAll(() => rm(dir, { recursive: true, force: true }))
let n = 0
const freshFile = () => join(dir, `db${++n}.sqlite`)

// biome-ignore lint/suspicious/noExplicitAny: test tables are created on the fly
type Any = any

/** A portable migration: the same definition on both dialects, with the per-dialect byte type. */
const things: SqlMigration = {
  async up(db, { types }) {
    await db.schema
      .createTable('things')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('at_ms', 'bigint', (c) => c.notNull())
      .addColumn('hits', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('payload', types.bytes)
      .addColumn('enabled', types.flag, (c) => c.notNull().defaultTo(1))
      .execute()
  },
}
const thingsSet = (extra: Record<string, SqlMigration> = {}): SqlMigrationSet => ({
  migrationTable: 'things_migrations',
  migrations: { '0001_things': things, ...extra },
})

const countRows = async (h: SqlDatabase<Any>, table: string) =>
  Number(
    (
      await h.db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  )

interface Target {
  name: string
  open(): Promise<SqlDatabase<Any>>
  /** Another handle on the same database (own connection). */
  another(h: SqlDatabase<Any>): Promise<SqlDatabase<Any>>
}

const targets: Array<() => Target> = [
  () => {
    const files = new Map<SqlDatabase<Any>, string>()
    return {
      name: 'sqlite',
      async open() {
        const filename = freshFile()
        const h = await openSqlDatabase<Any>('Test', { location: { dialect: 'sqlite', filename } })
        files.set(h, filename)
        return h
      },
      another: (h) =>
        openSqlDatabase<Any>('Test', { location: { dialect: 'sqlite', filename: files.get(h)! } }),
    }
  },
]

let pgSchema: PgSchema | undefined
if (HAS_POSTGRES) {
  targets.push(() => {
    const schemas = new Map<SqlDatabase<Any>, string>()
    return {
      name: 'postgres',
      async open() {
        const schema = `${pgSchema!.schema}_${++n}`
        const h = await openSqlDatabase<Any>('Test', { pool: pgSchema!.pool, schema })
        schemas.set(h, schema)
        return h
      },
      another: (h) =>
        openSqlDatabase<Any>('Test', {
          location: { dialect: 'postgres', connectionString: DATABASE_URL },
          schema: schemas.get(h)!,
        }),
    }
  })
}

beforeAll(async () => {
  if (HAS_POSTGRES) pgSchema = await createPgSchema(import.meta.url)
})
afterAll(async () => {
  if (pgSchema === undefined) return
  const { rows } = await pgSchema.pool.query({
    text: 'SELECT nspname FROM pg_namespace WHERE nspname LIKE $1',
    values: [`${pgSchema.schema}_%`],
  })
  for (const { nspname } of rows as Array<{ nspname: string }>) {
    await pgSchema.pool.query({ text: `DROP SCHEMA "${nspname}" CASCADE` })
  }
  await pgSchema.drop()
})

describe.each(targets.map((t) => [t().name, t] as const))('SqlDatabase on %s', (_name, make) => {
  const target = make()

  it('migrations are idempotent: each runs once, and a later one alone on the next run', async () => {
    const h = await target.open()
    await h.migrate(thingsSet())
    await h.migrate(thingsSet())
    let ran = 0
    const second: SqlMigration = {
      async up(db) {
        ran++
        await db.schema.alterTable('things').addColumn('note', 'text').execute()
      },
    }
    await h.migrate(thingsSet({ '0002_note': second }))
    await h.migrate(thingsSet({ '0002_note': second }))
    expect(ran).toBe(1)
    expect(await countRows(h, 'things_migrations')).toBe(2)
    await h.close()
  })

  it('two handles migrating a fresh database at once: no race, one history', async () => {
    const h = await target.open()
    const others = [await target.another(h), await target.another(h)]
    await Promise.all([h, ...others, h].map((x) => x.migrate(thingsSet())))
    expect(await countRows(h, 'things_migrations')).toBe(1)
    for (const x of [h, ...others]) await x.close()
  })

  it('eight handles migrating fresh databases at once, ten times over: every run succeeds', async () => {
    // The bookkeeping tables are created before the migrator's lock: racing
    // creations that fail in the catalog are run again, never reported.
    for (let round = 0; round < 10; round++) {
      const h = await target.open()
      const others = await Promise.all(Array.from({ length: 7 }, () => target.another(h)))
      const all = [h, ...others]
      const outcomes = await Promise.allSettled(all.map((x) => x.migrate(thingsSet())))
      expect(outcomes.filter((o) => o.status === 'rejected')).toEqual([])
      expect(await countRows(h, 'things_migrations')).toBe(1)
      for (const x of all) await x.close()
    }
  })

  it('components keep separate histories in one database', async () => {
    const h = await target.open()
    await h.migrate(thingsSet())
    await h.migrate({
      migrationTable: 'other_migrations',
      migrations: {
        '0001_things': {
          async up(db) {
            await db.schema.createTable('other').addColumn('id', 'text').execute()
          },
        },
      },
    })
    expect(await countRows(h, 'things_migrations')).toBe(1)
    expect(await countRows(h, 'other_migrations')).toBe(1)
    await h.close()
  })

  it('one definition gives the same columns on both dialects: text, bigint ms, integer, bytes, flag', async () => {
    const h = await target.open()
    await h.migrate(thingsSet())
    const payload = Buffer.from([0, 1, 2, 254, 255])
    await h.run((db) =>
      db.insertInto('things').values({ id: 'a', at_ms: 1_795_000_000_123, payload }).execute(),
    )
    const row = await h.db.selectFrom('things').selectAll().executeTakeFirstOrThrow()
    expect({ ...row, at_ms: Number(row.at_ms), payload: Buffer.from(row.payload) }).toEqual({
      id: 'a',
      at_ms: 1_795_000_000_123,
      hits: 0,
      payload,
      enabled: 1,
    })
    await h.close()
  })

  it('a failing migration is a SqlMigrationError naming it, with a sanitized cause, and is rolled back whole', async () => {
    const h = await target.open()
    const broken: SqlMigration = {
      async up(db) {
        await db.schema.createTable('half').addColumn('id', 'text').execute()
        await sql`insert into nowhere values ('secret-value')`.execute(db)
      },
    }
    const err = await rejection(h.migrate(thingsSet({ '0002_broken': broken })))
    expect(err).toBeInstanceOf(SqlMigrationError)
    expect((err as SqlMigrationError).migration).toBe('0002_broken')
    expect(Object.keys((err as Error).cause as object).sort()).toEqual(['code', 'service'])
    expect(JSON.stringify((err as Error).cause)).not.toContain('secret')
    // One transaction: neither 0001 nor the half of 0002 stayed.
    const tables = (await h.db.introspection.getTables())
      .filter((t) => t.schema === h.schema)
      .map((t) => t.name)
    expect(tables).toContain('things_migrations')
    expect(tables).not.toContain('half')
    expect(tables).not.toContain('things')
    await h.close()
  })

  it('transaction() commits what resolves and rolls back what throws', async () => {
    const h = await target.open()
    await h.migrate(thingsSet())
    await h.transaction((trx) =>
      trx.insertInto('things').values({ id: 'kept', at_ms: 1 }).execute(),
    )
    await rejection(
      h.transaction(async (trx) => {
        await trx.insertInto('things').values({ id: 'dropped', at_ms: 1 }).execute()
        throw new Error('abort')
      }),
    )
    expect((await h.db.selectFrom('things').select('id').execute()).map((r) => r.id)).toEqual([
      'kept',
    ])
    await h.close()
  })

  it('read-modify-write transactions from two handles at once lose no update', async () => {
    const h = await target.open()
    const other = await target.another(h)
    await h.migrate(thingsSet())
    await h.run((db) => db.insertInto('things').values({ id: 'c', at_ms: 0 }).execute())
    // The advisory lock serializes PostgreSQL; SQLite's write lock (BEGIN
    // IMMEDIATE, and in-process the file lock) serializes SQLite.
    const bump = (x: SqlDatabase<Any>) =>
      x.transaction(
        async (trx) => {
          const { hits } = await trx
            .selectFrom('things')
            .select('hits')
            .where('id', '=', 'c')
            .executeTakeFirstOrThrow()
          await sleep(1)
          await trx
            .updateTable('things')
            .set({ hits: Number(hits) + 1 })
            .where('id', '=', 'c')
            .execute()
        },
        { advisoryLock: `things:${h.schema ?? 'sqlite'}` },
      )
    await Promise.all(Array.from({ length: 20 }, (_, i) => bump(i % 2 === 0 ? h : other)))
    const { hits } = await h.db.selectFrom('things').select('hits').executeTakeFirstOrThrow()
    expect(Number(hits)).toBe(20)
    await Promise.all([h.close(), other.close()])
  })

  it('a closed handle refuses further use, and close() is idempotent', async () => {
    const h = await target.open()
    await h.close()
    await h.close()
    expect(h.closed).toBe(true)
    expect(() => h.db).toThrow(/closed/)
    await expect(h.run(async () => 1)).rejects.toThrow(/closed/)
  })
})

describe('SqlDatabase ownership (SQLite)', () => {
  /** File descriptors of this process open on `path` (Linux). */
  const openFds = (path: string) =>
    readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === path
      } catch {
        return false
      }
    }).length

  it.skipIf(process.platform !== 'linux')(
    'closes a database it opened from a path, even one never queried',
    async () => {
      const filename = freshFile()
      const h = await openSqlDatabase('Test', { location: { dialect: 'sqlite', filename } })
      expect(h.owned).toBe(true)
      expect(openFds(filename)).toBeGreaterThan(0)
      await h.close()
      expect(openFds(filename)).toBe(0)
    },
  )

  it('never closes a borrowed database, and leaves its pragmas alone', async () => {
    const db = new Database(freshFile())
    const h = await openSqlDatabase('Test', { database: db })
    expect(h.owned).toBe(false)
    await h.migrate(thingsSet())
    await h.close()
    expect(db.open).toBe(true)
    expect(db.pragma('journal_mode', { simple: true })).toBe('delete')
    expect(db.prepare('select count(*) as n from things').get()).toEqual({ n: 0 })
    db.close()
  })

  it('opens its own files in WAL mode; :memory: works too', async () => {
    const filename = freshFile()
    const h = await openSqlDatabase('Test', { location: { dialect: 'sqlite', filename } })
    await h.migrate(thingsSet())
    const probe = new Database(filename)
    expect(probe.pragma('journal_mode', { simple: true })).toBe('wal')
    probe.close()
    await h.close()
    const mem = await openSqlDatabase<Any>('Test', {
      location: { dialect: 'sqlite', filename: ':memory:' },
    })
    await mem.migrate(thingsSet())
    expect(await countRows(mem, 'things')).toBe(0)
    await mem.close()
  })

  it('two connections of one process never block each other synchronously (busy timeout 0)', async () => {
    const filename = freshFile()
    const options: OpenSqlDatabaseOptions = {
      location: { dialect: 'sqlite', filename },
      busyTimeoutMs: 0,
    }
    const a = await openSqlDatabase<Any>('Test', options)
    const b = await openSqlDatabase<Any>('Test', options)
    await a.migrate(thingsSet())
    await a.run((db) => db.insertInto('things').values({ id: 'c', at_ms: 0 }).execute())
    // With a zero busy timeout, any overlap of b's write with a's open
    // transaction would fail at once with SQLITE_BUSY.
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        i % 3 === 0
          ? (i % 2 === 0 ? a : b).run((db) =>
              db
                .updateTable('things')
                .set((eb) => ({ hits: eb('hits', '+', 1) }))
                .execute(),
            )
          : (i % 2 === 0 ? a : b).transaction(async (trx) => {
              await trx.selectFrom('things').selectAll().execute()
              await sleep(1)
              await trx
                .updateTable('things')
                .set((eb) => ({ hits: eb('hits', '+', 1) }))
                .execute()
            }),
      ),
    )
    const { hits } = await a.db.selectFrom('things').select('hits').executeTakeFirstOrThrow()
    expect(hits).toBe(30)
    await Promise.all([a.close(), b.close()])
  })
})

describe.skipIf(!HAS_POSTGRES)('SqlDatabase ownership (PostgreSQL)', () => {
  it('ends a pool it opened from a connection string; never a borrowed one', async () => {
    const owned = await openSqlDatabase('Test', {
      location: { dialect: 'postgres', connectionString: DATABASE_URL },
    })
    expect(owned.owned).toBe(true)
    await sql`select 1`.execute(owned.db)
    const pool = owned.pgPool as OwnedPgPool
    await owned.close()
    expect(pool.ended).toBe(true)

    const mine = new pg.Pool({ connectionString: DATABASE_URL, max: 2 })
    const borrowed = await openSqlDatabase('Test', { pool: mine })
    expect(borrowed.owned).toBe(false)
    expect(borrowed.schema).toBe('public')
    await sql`select 1`.execute(borrowed.db)
    await borrowed.close()
    expect(mine.ended).toBe(false)
    expect((await mine.query('select 1 as one')).rows).toEqual([{ one: 1 }])
    await mine.end()
  })

  it('scopes queries to its schema, which migrate() creates when missing', async () => {
    const schema = `${pgSchema!.schema}_scoped`
    const h = await openSqlDatabase<Any>('Test', { pool: pgSchema!.pool, schema })
    await h.migrate(thingsSet())
    await h.run((db) => db.insertInto('things').values({ id: 'x', at_ms: 1 }).execute())
    const { rows } = await pgSchema!.pool.query({ text: `SELECT id FROM "${schema}".things` })
    expect(rows).toEqual([{ id: 'x' }])
    await h.close()
  })
})

describe('openSqlDatabase options', () => {
  it('refuses bad options with ERR_CONFIG_INVALID naming the field', async () => {
    const db = new Database(':memory:')
    const pool = { query: async () => ({ rows: [] }), connect: async () => ({}) as never }
    const bad: Array<[OpenSqlDatabaseOptions, string]> = [
      [{}, 'pool'],
      [{ pool, database: db }, 'pool'],
      [{ database: db, schema: 'public' }, 'schema'],
      [{ location: { dialect: 'sqlite', filename: 'x' }, schema: 'public' }, 'schema'],
      [{ pool, schema: 'Robert"); DROP' }, 'schema'],
      [{ pool, schema: 'x'.repeat(64) }, 'schema'],
      [{ pool, schema: 'sqlite_x' }, 'schema'],
      [{ location: { dialect: 'mysql' } as never }, 'location'],
      [{ database: db, busyTimeoutMs: -1 }, 'busyTimeoutMs'],
    ]
    for (const [options, field] of bad) {
      const err = await rejection(openSqlDatabase('Test', options))
      expect(err, field).toMatchObject({ code: 'ERR_CONFIG_INVALID' })
      expect((err as Error).message, field).toContain(`Test option \`${field}\``)
    }
    db.close()
  })
})
