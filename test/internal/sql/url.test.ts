import { describe, expect, it } from 'vitest'
import { databaseUrlSchema, parseDatabaseUrl } from '../../../src/internal/sql/url.js'

describe('parseDatabaseUrl', () => {
  it('passes postgres:// and postgresql:// URLs to pg unchanged', () => {
    for (const url of [
      'postgres://u:p%40ss@db.internal:5432/app?sslmode=require',
      'postgresql://localhost/app',
      'POSTGRES://localhost/app',
    ]) {
      expect(parseDatabaseUrl(url)).toEqual({ dialect: 'postgres', connectionString: url })
    }
  })

  it('reads sqlite: paths verbatim, relative or absolute', () => {
    expect(parseDatabaseUrl('sqlite:data/keys.db')).toEqual({
      dialect: 'sqlite',
      filename: 'data/keys.db',
    })
    expect(parseDatabaseUrl('sqlite:/var/lib/app/keys.db')).toEqual({
      dialect: 'sqlite',
      filename: '/var/lib/app/keys.db',
    })
    expect(parseDatabaseUrl('sqlite::memory:')).toEqual({ dialect: 'sqlite', filename: ':memory:' })
  })

  it('reads sqlite:/// and file:/// URLs as absolute paths, percent-decoded', () => {
    expect(parseDatabaseUrl('sqlite:///var/lib/app/my%20keys.db')).toEqual({
      dialect: 'sqlite',
      filename: '/var/lib/app/my keys.db',
    })
    expect(parseDatabaseUrl('file:///tmp/keys.db')).toEqual({
      dialect: 'sqlite',
      filename: '/tmp/keys.db',
    })
  })

  it('takes a plain path or :memory: as SQLite', () => {
    expect(parseDatabaseUrl('keys.db')).toEqual({ dialect: 'sqlite', filename: 'keys.db' })
    expect(parseDatabaseUrl('./odd:name.db')).toEqual({
      dialect: 'sqlite',
      filename: './odd:name.db',
    })
    expect(parseDatabaseUrl('/abs/keys.db')).toEqual({
      dialect: 'sqlite',
      filename: '/abs/keys.db',
    })
    expect(parseDatabaseUrl(':memory:')).toEqual({ dialect: 'sqlite', filename: ':memory:' })
  })

  it('refuses other schemes, query strings, remote file URLs, empty strings and NUL', () => {
    const bad: Array<[string, RegExp]> = [
      ['mysql://h/db', /must be a postgres/],
      ['postgre://h/db', /must be a postgres/],
      ['redis:foo', /must be a postgres/],
      ['sqlite:keys.db?mode=ro', /query/],
      ['file:///tmp/keys.db?mode=ro', /query/],
      ['sqlite://remote-host/keys.db', /absolute file URL/],
      ['sqlite:', /needs a path/],
      ['', /empty/],
      ['keys\0.db', /NUL/],
      ['postgres://[bad', /valid PostgreSQL URL/],
    ]
    for (const [value, message] of bad)
      expect(() => parseDatabaseUrl(value), value).toThrow(message)
  })

  it('never repeats the value (it may hold a password) in its errors', () => {
    expect(() => parseDatabaseUrl('postgres://u:hunter2@[bad')).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('hunter2') }),
    )
  })
})

describe('databaseUrlSchema', () => {
  it('with a dialect, refuses the other database', () => {
    expect(databaseUrlSchema('postgres').safeParse('sqlite:x.db').success).toBe(false)
    expect(databaseUrlSchema('sqlite').safeParse('postgres://h/db').success).toBe(false)
    expect(databaseUrlSchema('sqlite').parse('x.db')).toEqual({
      dialect: 'sqlite',
      filename: 'x.db',
    })
    expect(databaseUrlSchema().parse('postgres://h/db')).toMatchObject({ dialect: 'postgres' })
  })
})
