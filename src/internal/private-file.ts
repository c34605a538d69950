/**
 * Small files only their owner may read: the local KMS provider's master
 * keys, the file keyring's wrapped keys.
 *
 * Writing replaces the file atomically and privately. The content goes to a
 * temporary file with a random name in the same directory, created
 * exclusively (`O_CREAT | O_EXCL | O_NOFOLLOW`) with mode 0600: a stale file
 * or a symlink planted at that name makes the open fail, so no old file
 * lends its mode and no link is followed. It is flushed to disk, then
 * renamed over the target (a rename replaces a symlink at the target, it
 * never writes through it), and the directory is flushed so the rename
 * survives a crash: a crash leaves the old content or the new, never half.
 *
 * Reading refuses what another user could have planted or can read: a
 * symlink (`O_NOFOLLOW`), anything but a regular file, and a file with any
 * group or other permission bit (`fstat` on the opened descriptor, so the
 * checked file is the one read).
 *
 * One sequence of steps serves both ways of calling: the local provider
 * writes synchronously (its constructor creates the file), the keyring
 * store asynchronously (it must not hold the event loop during an fsync).
 */
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { type FileHandle, mkdir, open, rename, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import { secureRandomBytes } from './random.js'

/** Undefined on Windows, where `O_EXCL` alone already refuses an existing link. */
const NO_FOLLOW = constants.O_NOFOLLOW ?? 0
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NO_FOLLOW
/** A FIFO planted at the path must not block the open; regular files ignore the flag. */
const NO_BLOCK = constants.O_NONBLOCK ?? 0
/** Group and other permission bits: any of them and the file is not private. */
const NOT_PRIVATE = 0o077
/** Windows has no POSIX modes (every file reads as 0666 or 0444). */
const HAS_MODES = process.platform !== 'win32'

/**
 * What a step returns, in each mode. The async steps use `FileHandle`s, the
 * sync ones descriptors; the step sequence only passes them back.
 */
type Handle = unknown
const STEPS = {
  mkdir: [
    (dir: string) => mkdirSync(dir, { recursive: true, mode: 0o700 }),
    (dir: string) => mkdir(dir, { recursive: true, mode: 0o700 }),
  ],
  create: [
    (path: string) => openSync(path, CREATE_FLAGS, 0o600),
    (path: string) => open(path, CREATE_FLAGS, 0o600),
  ],
  openDirectory: [
    (path: string) => openSync(path, constants.O_RDONLY),
    (path: string) => open(path, constants.O_RDONLY),
  ],
  write: [
    (fd: Handle, data: string) => writeFileSync(fd as number, data, 'utf8'),
    (fd: Handle, data: string) => (fd as FileHandle).writeFile(data),
  ],
  sync: [(fd: Handle) => fsyncSync(fd as number), (fd: Handle) => (fd as FileHandle).sync()],
  close: [(fd: Handle) => closeSync(fd as number), (fd: Handle) => (fd as FileHandle).close()],
  rename: [(from: string, to: string) => renameSync(from, to), rename],
  unlink: [(path: string) => unlinkSync(path), unlink],
} as const

type StepName = keyof typeof STEPS
type Step = {
  readonly [K in StepName]: readonly [K, ...Parameters<(typeof STEPS)[K][0]>]
}[StepName]

/** The replacement of `path` by `data`, as steps; see the module comment. */
function* replaceSteps(path: string, data: string): Generator<Step, void, Handle> {
  const dir = dirname(path)
  yield ['mkdir', dir]
  const temp = `${path}.${Buffer.from(secureRandomBytes(12)).toString('hex')}.tmp`
  const fd = yield ['create', temp]
  try {
    try {
      yield ['write', fd, data]
      yield ['sync', fd]
    } finally {
      yield ['close', fd]
    }
    yield ['rename', temp, path]
  } catch (err) {
    try {
      yield ['unlink', temp]
    } catch {
      // Never created, or already gone.
    }
    throw err
  }
  try {
    const dirFd = yield ['openDirectory', dir]
    try {
      yield ['sync', dirFd]
    } finally {
      yield ['close', dirFd]
    }
  } catch {
    // Best effort: some platforms cannot open a directory, and the data
    // itself was flushed before the rename.
  }
}

/**
 * Runs `steps` synchronously (`mode` 0) or one promise after another (1):
 * each step's result, or its failure, goes back into the sequence.
 */
function drive(steps: Generator<Step, void, Handle>, mode: 0 | 1): void | Promise<void> {
  const resume = (next: IteratorResult<Step, void>): void | Promise<void> => {
    while (!next.done) {
      const [name, ...args] = next.value
      const run = STEPS[name][mode] as (...a: unknown[]) => unknown
      let result: unknown
      try {
        result = run(...args)
      } catch (err) {
        next = steps.throw(err)
        continue
      }
      if (mode === 1) {
        return (result as Promise<Handle>).then(
          (value) => resume(steps.next(value)),
          (err: unknown) => resume(steps.throw(err)),
        )
      }
      next = steps.next(result)
    }
  }
  return resume(steps.next())
}

/** Replaces `path` with `data` (mode 0600, its directory created 0700), atomically; blocks. */
export function writePrivateFileSync(path: string, data: string): void {
  drive(replaceSteps(path, data), 0)
}

/** Replaces `path` with `data` (mode 0600, its directory created 0700), atomically. */
export async function writePrivateFile(path: string, data: string): Promise<void> {
  await drive(replaceSteps(path, data), 1)
}

/** An existing file another user could have planted or can read. */
export type UnsafeFile =
  | { readonly kind: 'symlink' }
  | { readonly kind: 'not-a-file' }
  /** `mode`: the permission bits found, e.g. `0o644`. */
  | { readonly kind: 'mode'; readonly mode: number }

/** The outcome of {@link readPrivateFileSync}. */
export type PrivateFileRead =
  | { readonly kind: 'missing' }
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'unsafe'; readonly problem: UnsafeFile }

/**
 * Reads `path` if it is a private regular file (no group or other
 * permission bit), without following a symlink; says what is wrong
 * otherwise. Other failures (EACCES, EIO) throw.
 */
export function readPrivateFileSync(path: string): PrivateFileRead {
  let fd: number
  try {
    // Where O_NOFOLLOW does not exist, look first (a race there only swaps one file for another).
    if (NO_FOLLOW === 0 && lstatSync(path).isSymbolicLink()) {
      return { kind: 'unsafe', problem: { kind: 'symlink' } }
    }
    fd = openSync(path, constants.O_RDONLY | NO_FOLLOW | NO_BLOCK)
  } catch (err) {
    const code = (err as { code?: unknown }).code
    if (code === 'ENOENT') return { kind: 'missing' }
    // Linux and macOS answer ELOOP for a trailing symlink under O_NOFOLLOW, FreeBSD EMLINK.
    if (code === 'ELOOP' || code === 'EMLINK') {
      return { kind: 'unsafe', problem: { kind: 'symlink' } }
    }
    throw err
  }
  try {
    const stat = fstatSync(fd)
    if (!stat.isFile()) return { kind: 'unsafe', problem: { kind: 'not-a-file' } }
    const mode = stat.mode & 0o777
    if (HAS_MODES && (mode & NOT_PRIVATE) !== 0) {
      return { kind: 'unsafe', problem: { kind: 'mode', mode } }
    }
    return { kind: 'text', text: readFileSync(fd, 'utf8') }
  } finally {
    closeSync(fd)
  }
}
