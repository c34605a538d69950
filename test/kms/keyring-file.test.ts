import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { FileKeyringStore } from '../../src/kms/keyring/file.js'
import { KeyringStoreError } from '../../src/kms/keyring/store.js'
import { rejection } from '../helpers/rejection.js'
import { describeKeyringStoreContract, keyringEntry } from './keyring.contract.js'

const dir = mkdtempSync(join(tmpdir(), 'fsl-keyring-file-'))
afterAll(() => rm(dir, { recursive: true, force: true }))
let n = 0
const freshPath = () => join(dir, `k${++n}`, 'keyring.json')

const entry = keyringEntry

describeKeyringStoreContract('FileKeyringStore (two instances on one path)', async () => {
  const path = freshPath()
  return {
    store: new FileKeyringStore({ path }),
    other: async () => new FileKeyringStore({ path }),
  }
})

describe('FileKeyringStore', () => {
  it('writes the file with mode 0600 (directory 0700) and leaves no temporary file behind', async () => {
    const path = freshPath()
    const store = new FileKeyringStore({ path })
    await store.insertFirstActive(entry('a'))
    await store.reserveUses('a'.repeat(32), 1, 10)
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(statSync(join(path, '..')).mode & 0o777).toBe(0o700)
    expect(readdirSync(join(path, '..'))).toEqual(['keyring.json'])
  })

  it('a new instance (a restart) reads everything an earlier one wrote', async () => {
    const path = freshPath()
    const a = await new FileKeyringStore({ path }).insertFirstActive(entry('a'))
    const restarted = new FileKeyringStore({ path })
    expect(await restarted.list()).toStrictEqual([a])
  })

  it('migrate() creates an empty keyring file once and never overwrites an existing one', async () => {
    const path = freshPath()
    const store = new FileKeyringStore({ path })
    await store.migrate()
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({
      format: 'fraiseql-keyring',
      version: 1,
      entries: [],
    })
    await store.insertFirstActive(entry('a'))
    await new FileKeyringStore({ path }).migrate()
    expect(await store.list()).toHaveLength(1)
  })

  it('a corrupt file is ERR_KEYRING_STORE whose message and cause quote nothing from it', async () => {
    const path = freshPath()
    await new FileKeyringStore({ path }).migrate()
    writeFileSync(path, '{"format":"fraiseql-keyring","version":1,"entries":[{"id":"SECRET-ish"}]}')
    const err = await rejection(new FileKeyringStore({ path }).list())
    expect(err).toBeInstanceOf(KeyringStoreError)
    expect((err as KeyringStoreError).code).toBe('ERR_KEYRING_STORE')
    expect(JSON.stringify({ m: (err as Error).message, c: (err as Error).cause })).not.toContain(
      'SECRET',
    )
    writeFileSync(path, 'not json')
    expect(await rejection(new FileKeyringStore({ path }).active())).toBeInstanceOf(
      KeyringStoreError,
    )
  })

  it('an unwritable location is ERR_KEYRING_STORE with the fs code only', async () => {
    const blocker = join(dir, `blocker${++n}`)
    writeFileSync(blocker, '')
    const err = await rejection(
      new FileKeyringStore({ path: join(blocker, 'keyring.json') }).insertFirstActive(entry('a')),
    )
    expect(err).toBeInstanceOf(KeyringStoreError)
    expect((err as Error).cause).toEqual({ service: 'file', code: 'ENOTDIR' })
  })

  it('setStatus refuses to activate a key, even from untyped callers', async () => {
    const store = new FileKeyringStore({ path: freshPath() })
    const a = await store.insertFirstActive(entry('a'))
    await store.rotate(a.id, entry('b', 2))
    expect(await rejection(store.setStatus(a.id, 'active' as never))).toBeInstanceOf(
      KeyringStoreError,
    )
    expect((await store.get(a.id))?.status).toBe('decrypt-only')
  })

  it('refuses bad options with ERR_CONFIG_INVALID naming the field', () => {
    expect(() => new FileKeyringStore({ path: '' })).toThrow(/`path`/)
    expect(() => new FileKeyringStore({ path: 'a', extra: 1 } as never)).toThrow(/`extra`/)
  })
})
