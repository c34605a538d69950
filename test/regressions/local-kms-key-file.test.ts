/**
 * Regression: `LocalKmsProvider` wrote its master-key file through a
 * guessable temporary name (`<file>.<pid>.tmp`) with a plain
 * `writeFileSync`. A stale temporary file of mode 0644 kept its mode (the
 * mode option applies only on creation), so the key file became 0644; a
 * symlink planted at that name was followed, writing the master keys
 * wherever it pointed (and the rename then made the key file that symlink).
 * An existing key file was read whatever its mode and even through a
 * symlink, so a planted file of known keys was adopted silently. And the
 * provider said nothing outside production, although it is a development
 * provider.
 */
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest'
import { LocalKmsProvider } from '../../src/kms/index.js'

const root = mkdtempSync(join(tmpdir(), 'fsl-local-kms-file-'))
afterAll(() => rm(root, { recursive: true, force: true }))
afterEach(() => {
  vi.unstubAllEnvs()
})
let n = 0
/** A fresh directory (0700, as the provider makes it) and the key file's path in it. */
function fresh(): { dir: string; keyFile: string } {
  const dir = mkdtempSync(join(root, `d${++n}-`))
  return { dir, keyFile: join(dir, 'master-keys.json') }
}

const quiet = () => ({ warn: vi.fn(), error: vi.fn() })

/** A valid key file holding one key the "attacker" knows. */
function knownKeyFile(path: string, mode: number): void {
  const key = Buffer.alloc(32, 0x41).toString('base64')
  const at = '2026-01-01T00:00:00.000Z'
  writeFileSync(
    path,
    JSON.stringify({
      format: 'fraiseql-local-kms',
      version: 1,
      keys: { app: { createdAt: at, primary: 1, versions: { 1: { key, createdAt: at } } } },
    }),
    { mode },
  )
  chmodSync(path, mode)
}

describe('the key file is written safely', () => {
  it('a stale 0644 file at the old temporary name does not make the key file 0644', async () => {
    const { keyFile } = fresh()
    const stale = `${keyFile}.${process.pid}.tmp`
    writeFileSync(stale, 'stale', { mode: 0o644 })
    chmodSync(stale, 0o644)
    const kms = new LocalKmsProvider({ keyFile, logger: quiet() })
    await kms.encrypt('x', 'app')
    expect(statSync(keyFile).mode & 0o777).toBe(0o600)
    expect(readFileSync(stale, 'utf8')).toBe('stale')
  })

  it('a symlink planted at the old temporary name is not followed', async () => {
    const { dir, keyFile } = fresh()
    const elsewhere = join(dir, 'elsewhere.json')
    symlinkSync(elsewhere, `${keyFile}.${process.pid}.tmp`)
    const kms = new LocalKmsProvider({ keyFile, logger: quiet() })
    await kms.encrypt('x', 'app')
    expect(existsSync(elsewhere)).toBe(false)
    expect(lstatSync(keyFile).isFile()).toBe(true)
    expect(statSync(keyFile).mode & 0o777).toBe(0o600)
    expect(JSON.parse(readFileSync(keyFile, 'utf8')).keys.app).toBeDefined()
  })

  it('each write goes through a fresh temporary name and leaves none behind', async () => {
    const { dir, keyFile } = fresh()
    const kms = new LocalKmsProvider({ keyFile, logger: quiet() })
    await kms.encrypt('x', 'a')
    await kms.rotateKey('a')
    await kms.encrypt('x', 'b')
    expect(readdirSync(dir)).toEqual(['master-keys.json'])
  })
})

describe('an existing key file is checked before it is used', () => {
  it('a symlink at the key path is refused (ERR_KMS_KEY_FILE_INSECURE), and its target left alone', () => {
    const { dir, keyFile } = fresh()
    const planted = join(dir, 'planted.json')
    knownKeyFile(planted, 0o600)
    symlinkSync(planted, keyFile)
    expect(() => new LocalKmsProvider({ keyFile, logger: quiet() })).toThrow(
      expect.objectContaining({
        code: 'ERR_KMS_KEY_FILE_INSECURE',
        message: expect.stringContaining('symbolic link'),
      }),
    )
    expect(lstatSync(keyFile).isSymbolicLink()).toBe(true)
  })

  it('a dangling symlink at the key path is refused too, not replaced', () => {
    const { dir, keyFile } = fresh()
    symlinkSync(join(dir, 'nothing-here.json'), keyFile)
    expect(() => new LocalKmsProvider({ keyFile, logger: quiet() })).toThrow(
      expect.objectContaining({ code: 'ERR_KMS_KEY_FILE_INSECURE' }),
    )
    expect(existsSync(join(dir, 'nothing-here.json'))).toBe(false)
  })

  it.each([
    { mode: 0o640, what: 'group-readable (0640)' },
    { mode: 0o644, what: 'world-readable (0644)' },
    { mode: 0o620, what: 'group-writable (0620)' },
    { mode: 0o604, what: 'readable by others only (0604)' },
  ])('a $what key file is refused with how to fix it', ({ mode }) => {
    const { keyFile } = fresh()
    knownKeyFile(keyFile, mode)
    let error: unknown
    try {
      new LocalKmsProvider({ keyFile, logger: quiet() })
    } catch (err) {
      error = err
    }
    expect(error).toMatchObject({
      code: 'ERR_KMS_KEY_FILE_INSECURE',
      message: expect.stringContaining('chmod 600'),
    })
    // The message names the mode and the file, never a key.
    expect((error as Error).message).toContain(`0${mode.toString(8)}`)
    expect((error as Error).message).toContain(keyFile)
    expect((error as Error).message).not.toContain(Buffer.alloc(32, 0x41).toString('base64'))
    expect(statSync(keyFile).mode & 0o777).toBe(mode)
  })

  it('a 0600 (or 0400) key file is accepted', () => {
    for (const mode of [0o600, 0o400]) {
      const { keyFile } = fresh()
      knownKeyFile(keyFile, mode)
      expect(new LocalKmsProvider({ keyFile, logger: quiet() }).keyIds()).toEqual(['app'])
    }
  })
})

describe('the development warning', () => {
  it('outside production, one warning at start through the configured logger', () => {
    vi.stubEnv('NODE_ENV', 'development')
    const logger = quiet()
    new LocalKmsProvider({ logger })
    expect(logger.warn).toHaveBeenCalledTimes(1)
    expect(logger.warn.mock.calls[0]?.[1]).toMatch(/development/)
    // A second provider on the same logger says nothing more.
    new LocalKmsProvider({ logger })
    expect(logger.warn).toHaveBeenCalledTimes(1)
  })

  it('with NODE_ENV unset too', () => {
    vi.stubEnv('NODE_ENV', undefined)
    const logger = quiet()
    new LocalKmsProvider({ logger })
    expect(logger.warn).toHaveBeenCalledTimes(1)
  })
})
