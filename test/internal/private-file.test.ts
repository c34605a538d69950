/**
 * The private-file helper both key files use: atomic, private replacement
 * (the same steps run synchronously and asynchronously) and a read that
 * refuses what another user could have planted or can read.
 */
import { execFileSync } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
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
import { afterAll, describe, expect, it } from 'vitest'
import {
  readPrivateFileSync,
  withFileLockSync,
  writePrivateFile,
  writePrivateFileSync,
} from '../../src/internal/private-file.js'
import { rejection } from '../helpers/rejection.js'

const root = mkdtempSync(join(tmpdir(), 'fsl-private-file-'))
afterAll(() => rm(root, { recursive: true, force: true }))
let n = 0
const freshDir = () => mkdtempSync(join(root, `d${++n}-`))

const writers = {
  sync: async (path: string, data: string) => writePrivateFileSync(path, data),
  async: writePrivateFile,
}

describe.each(Object.entries(writers))('write (%s)', (_, write) => {
  it('creates the file 0600 and its missing directories 0700, and leaves no temporary file', async () => {
    const dir = join(freshDir(), 'a', 'b')
    const path = join(dir, 'f.json')
    await write(path, 'one')
    expect(readFileSync(path, 'utf8')).toBe('one')
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(statSync(dir).mode & 0o777).toBe(0o700)
    expect(readdirSync(dir)).toEqual(['f.json'])
  })

  it('replaces an existing file, and a 0644 one becomes 0600 (a new inode, not a rewrite)', async () => {
    const dir = freshDir()
    const path = join(dir, 'f.json')
    writeFileSync(path, 'old', { mode: 0o644 })
    chmodSync(path, 0o644)
    const before = statSync(path).ino
    await write(path, 'new')
    expect(readFileSync(path, 'utf8')).toBe('new')
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(statSync(path).ino).not.toBe(before)
  })

  it('replaces a symlink at the target instead of writing through it', async () => {
    const dir = freshDir()
    const target = join(dir, 'target')
    writeFileSync(target, 'untouched')
    symlinkSync(target, join(dir, 'f.json'))
    await write(join(dir, 'f.json'), 'new')
    expect(readFileSync(target, 'utf8')).toBe('untouched')
    expect(readPrivateFileSync(join(dir, 'f.json'))).toEqual({ kind: 'text', text: 'new' })
  })

  it('a failed rename throws and removes its temporary file', async () => {
    const dir = freshDir()
    const path = join(dir, 'f.json')
    mkdirSync(path)
    writeFileSync(join(path, 'inside'), 'x')
    const err = await rejection(write(path, 'data'))
    expect(err).toMatchObject({ code: expect.stringMatching(/^(EISDIR|ENOTEMPTY|EEXIST)$/) })
    expect(readdirSync(dir)).toEqual(['f.json'])
  })
})

describe('readPrivateFileSync', () => {
  it('reads a private file, and says when there is none', () => {
    const dir = freshDir()
    const path = join(dir, 'f')
    expect(readPrivateFileSync(path)).toEqual({ kind: 'missing' })
    writePrivateFileSync(path, 'text')
    expect(readPrivateFileSync(path)).toEqual({ kind: 'text', text: 'text' })
    chmodSync(path, 0o400)
    expect(readPrivateFileSync(path)).toEqual({ kind: 'text', text: 'text' })
  })

  it.each([0o640, 0o604, 0o660, 0o606, 0o610, 0o601, 0o777])(
    'refuses mode %o (a group or other bit)',
    (mode) => {
      const path = join(freshDir(), 'f')
      writeFileSync(path, 'k')
      chmodSync(path, mode)
      expect(readPrivateFileSync(path)).toEqual({ kind: 'unsafe', problem: { kind: 'mode', mode } })
    },
  )

  it('refuses a symlink, even to a private file, and a dangling one', () => {
    const dir = freshDir()
    writePrivateFileSync(join(dir, 'real'), 'k')
    symlinkSync(join(dir, 'real'), join(dir, 'link'))
    symlinkSync(join(dir, 'none'), join(dir, 'dangling'))
    for (const name of ['link', 'dangling']) {
      expect(readPrivateFileSync(join(dir, name))).toEqual({
        kind: 'unsafe',
        problem: { kind: 'symlink' },
      })
    }
  })

  it('refuses a directory and a FIFO (without blocking on the FIFO)', () => {
    const dir = freshDir()
    mkdirSync(join(dir, 'sub'), { mode: 0o700 })
    execFileSync('mkfifo', ['-m', '600', join(dir, 'fifo')])
    for (const name of ['sub', 'fifo']) {
      expect(readPrivateFileSync(join(dir, name))).toEqual({
        kind: 'unsafe',
        problem: { kind: 'not-a-file' },
      })
    }
  })
})

describe('withFileLockSync', () => {
  it('holds <path>.lock (0600, this pid) while fn runs, removes it after, returns its result', () => {
    const path = join(freshDir(), 'keys.json')
    const result = withFileLockSync(path, () => {
      expect(readFileSync(`${path}.lock`, 'utf8')).toBe(String(process.pid))
      expect(statSync(`${path}.lock`).mode & 0o777).toBe(0o600)
      return 42
    })
    expect(result).toBe(42)
    expect(existsSync(`${path}.lock`)).toBe(false)
  })

  it('removes the lock when fn throws, and passes the error on', () => {
    const path = join(freshDir(), 'keys.json')
    expect(() =>
      withFileLockSync(path, () => {
        throw new Error('boom')
      }),
    ).toThrow('boom')
    expect(existsSync(`${path}.lock`)).toBe(false)
  })

  it('takes over a lock whose holder is gone (a pid past any pid_max, or a reused pid of ours)', () => {
    for (const pid of [2 ** 22 + 1, process.pid]) {
      const path = join(freshDir(), 'keys.json')
      writeFileSync(`${path}.lock`, String(pid), { mode: 0o600 })
      expect(withFileLockSync(path, () => 'ran')).toBe('ran')
      expect(existsSync(`${path}.lock`)).toBe(false)
    }
  })

  it('does not follow a symlink planted at the lock name', () => {
    const dir = freshDir()
    const path = join(dir, 'keys.json')
    const target = join(dir, 'elsewhere')
    symlinkSync(target, `${path}.lock`)
    // A link is no lock of ours: refused at once, never followed, never removed.
    let ran = false
    expect(() =>
      withFileLockSync(path, () => {
        ran = true
      }),
    ).toThrow(expect.objectContaining({ reason: 'unsafe' }))
    expect(ran).toBe(false)
    expect(existsSync(target)).toBe(false)
    expect(lstatSync(`${path}.lock`).isSymbolicLink()).toBe(true)
  })
})
