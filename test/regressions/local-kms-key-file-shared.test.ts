/**
 * Regression (review of issue 14): `LocalKmsProvider` rewrote its whole key
 * file from what its own process held. Two providers on one key file (a dev
 * server and a CLI, two test workers, two cluster workers) each loaded the
 * file once; whichever wrote last dropped every key and version the other had
 * added since — not only when both rotated "at the same time": B creating a
 * key an hour after A created one erased A's, and A's ciphertexts could never
 * be decrypted again. Two providers creating the same key id each made their
 * own material. And a key created (or a version rotated in) whose write then
 * failed stayed in use in memory: data encrypted under a key that no file
 * holds.
 *
 * Every change now happens under a lock file, on the file as it is on disk
 * (re-read and merged), and is undone in memory when the write fails; a key
 * or version this process does not know is looked for in the file before it
 * is called missing.
 */
import { execFile } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { LocalKmsProvider } from '../../src/kms/index.js'

const root = mkdtempSync(join(tmpdir(), 'fsl-local-kms-shared-'))
afterAll(() => rm(root, { recursive: true, force: true }))
let n = 0
function keyFile(): string {
  const dir = join(root, `d${++n}`)
  mkdirSync(dir, { mode: 0o700 })
  return join(dir, 'master-keys.json')
}
const quiet = () => ({ warn: vi.fn(), error: vi.fn() })
const provider = (file: string) => new LocalKmsProvider({ keyFile: file, logger: quiet() })
const keysIn = (file: string) =>
  Object.keys((JSON.parse(readFileSync(file, 'utf8')) as { keys: object }).keys).sort()

describe('two providers on one key file keep each other’s keys', () => {
  it('a key B creates later does not erase the key A created', async () => {
    const file = keyFile()
    const a = provider(file)
    const b = provider(file)
    const fromA = await a.encrypt('from a', 'key-a')
    const fromB = await b.encrypt('from b', 'key-b')
    expect(keysIn(file)).toEqual(['key-a', 'key-b'])
    const c = provider(file)
    expect(Buffer.from(await c.decrypt(fromA)).toString()).toBe('from a')
    expect(Buffer.from(await c.decrypt(fromB)).toString()).toBe('from b')
  })

  it('both create the same key id: the second adopts the first one’s material', async () => {
    const file = keyFile()
    const a = provider(file)
    const b = provider(file)
    const fromA = await a.encrypt('from a', 'app')
    const fromB = await b.encrypt('from b', 'app')
    // Each decrypts the other's: one key, not two.
    expect(Buffer.from(await b.decrypt(fromA)).toString()).toBe('from a')
    expect(Buffer.from(await a.decrypt(fromB)).toString()).toBe('from b')
  })

  it('a version A rotated in survives a key B creates afterwards', async () => {
    const file = keyFile()
    const a = provider(file)
    await a.encrypt('v1', 'app')
    const b = provider(file)
    await a.rotateKey('app')
    const v2 = await a.encrypt('v2', 'app')
    await b.encrypt('other', 'other')
    const c = provider(file)
    expect((await c.getKeyInfo('app')).currentVersion).toBe(2)
    expect(Buffer.from(await c.decrypt(v2)).toString()).toBe('v2')
  })

  it('B decrypts under a key A created after B loaded the file', async () => {
    const file = keyFile()
    const b = provider(file)
    const a = provider(file)
    const sealed = await a.encrypt('late', 'late-key')
    expect(Buffer.from(await b.decrypt(sealed)).toString()).toBe('late')
  })

  it('an unknown key is still KeyNotFoundError after looking in the file', async () => {
    const file = keyFile()
    const a = provider(file)
    await expect(a.getKeyInfo('nope')).rejects.toMatchObject({ code: 'ERR_KMS_KEY_NOT_FOUND' })
  })
})

describe('a change whose write fails is not kept', () => {
  it('a key created, or a version rotated in, while the file cannot be written is not used', async () => {
    const file = keyFile()
    const dir = join(file, '..')
    const a = provider(file)
    await a.encrypt('kept', 'kept')
    // A regular file where the key file's directory was: every write fails
    // (as root too, which a read-only mode would not stop).
    renameSync(dir, `${dir}.away`)
    writeFileSync(dir, 'not a directory')
    try {
      await expect(a.encrypt('lost', 'new-key')).rejects.toThrow()
      // Not held in memory either: it would encrypt under a key no file has.
      expect(a.keyIds()).not.toContain('new-key')
      await expect(a.encrypt('lost', 'new-key')).rejects.toThrow()
      await expect(a.rotateKey('kept')).rejects.toThrow()
      expect((await a.getKeyInfo('kept')).currentVersion).toBe(1)
    } finally {
      rmSync(dir)
      renameSync(`${dir}.away`, dir)
    }
    // Writable again: the key is created and persisted.
    await a.encrypt('now', 'new-key')
    expect(keysIn(file)).toEqual(['kept', 'new-key'])
  })
})

describe('two processes', () => {
  it('creating 20 keys each at once: the file holds all 40', async () => {
    const file = keyFile()
    const dist = pathToFileURL(resolve('dist/kms/index.js')).href
    expect(existsSync(resolve('dist/kms/index.js')), 'npm run build first').toBe(true)
    const script = `
      const { LocalKmsProvider } = await import(${JSON.stringify(dist)})
      const kms = new LocalKmsProvider({ keyFile: process.argv[1], logger: { warn() {}, error() {} } })
      for (let i = 0; i < 20; i++) await kms.encrypt('x', process.argv[2] + i)
    `
    const run = promisify(execFile)
    const one = (prefix: string) =>
      run(process.execPath, ['--input-type=module', '-e', script, file, prefix], {
        timeout: 120_000,
      })
    await Promise.all([one('p'), one('q')])
    const ids = keysIn(file)
    expect(ids).toHaveLength(40)
    expect(existsSync(`${file}.lock`)).toBe(false)
    // A bound against a hang, not a speed: two cold processes on a loaded machine.
  }, 120_000)
})
