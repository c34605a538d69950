/**
 * pg and better-sqlite3 stay optional: with neither resolvable, the keyring
 * stores and the SQL layer import and construct, a borrowed pool needs no
 * `pg`, and only a store that must open a connection itself names the
 * package to install, on first use.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { expect, it } from 'vitest'

it('keyring stores import without pg and better-sqlite3, and name the package on first use', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fsl-keyring-peers-'))
  writeFileSync(
    join(dir, 'hook.mjs'),
    `const blocked = ['pg', 'better-sqlite3']
export async function resolve(specifier, context, next) {
  if (blocked.some((p) => specifier === p || specifier.startsWith(p + '/'))) {
    const err = new Error("Cannot find package '" + specifier + "'")
    err.code = 'ERR_MODULE_NOT_FOUND'
    throw err
  }
  return next(specifier, context)
}
`,
  )
  writeFileSync(
    join(dir, 'register.mjs'),
    `import { register } from 'node:module'\nregister('./hook.mjs', import.meta.url)\n`,
  )
  const script = `
const { PostgresKeyringStore } = await import('./src/kms/keyring/postgres.ts')
const { SqliteKeyringStore } = await import('./src/kms/keyring/sqlite.ts')
const out = {}
const attempt = async (name, store) => {
  try { await store.list(); out[name] = 'no error' } catch (err) { out[name] = err.code + ' ' + (err.packageName ?? '') }
}
await attempt('pgUrl', new PostgresKeyringStore({ connectionString: 'postgres://u@127.0.0.1:1/db' }))
await attempt('sqliteFile', new SqliteKeyringStore({ filename: ${JSON.stringify(join(dir, 'k.db'))} }))
const fakePool = { query: async () => ({ rows: [] }), connect: async () => { throw Object.assign(new Error('down'), { code: 'ECONNREFUSED' }) } }
await attempt('pgBorrowed', new PostgresKeyringStore({ pool: fakePool }))
console.log(JSON.stringify(out))`
  const root = fileURLToPath(new URL('../..', import.meta.url))
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', '--import', join(dir, 'register.mjs'), '--input-type=module', '-e', script],
    { cwd: root, timeout: 20_000 },
  )
  expect(JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}')).toEqual({
    pgUrl: 'ERR_DEPENDENCY_MISSING pg',
    sqliteFile: 'ERR_DEPENDENCY_MISSING better-sqlite3',
    pgBorrowed: 'ERR_KEYRING_STORE ',
  })
})
