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

/** How long {@link withFileLockSync} waits, in all, for a lock another process holds. */
const LOCK_WAIT_MS = 10_000
/** Between two attempts to take it. */
const LOCK_POLL_MS = 5
const sleeper = new Int32Array(new SharedArrayBuffer(4))

/** Blocks the thread for `ms` (the lock is taken inside synchronous code). */
function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms)
}

/**
 * {@link withFileLockSync} could not take the lock: a live process held it
 * for too long (`held`), or something else than a lock file is at its name
 * (`unsafe`: a symlink, a directory), which no holder of ours leaves.
 */
export class FileLockError extends Error {
  readonly lock: string
  readonly reason: 'held' | 'unsafe'
  constructor(lock: string, reason: 'held' | 'unsafe') {
    super(
      reason === 'held'
        ? `${lock} stayed locked by another process`
        : `${lock} is not a lock file (a symlink or another kind of file)`,
    )
    this.lock = lock
    this.reason = reason
  }
}

/**
 * Whether the lock file at `lock` was left by a process that is gone (it
 * crashed while holding it): its content is the holder's pid. One that is
 * empty is being written by its holder right now: not stale.
 */
function staleLock(lock: string): { readonly ino: number } | undefined {
  let fd: number
  try {
    fd = openSync(lock, constants.O_RDONLY | NO_FOLLOW | NO_BLOCK)
  } catch {
    return undefined
  }
  try {
    const stat = fstatSync(fd)
    const pid = Number(readFileSync(fd, 'utf8'))
    if (!Number.isSafeInteger(pid) || pid <= 0) return undefined
    // One thread of this process takes the lock at a time, synchronously:
    // our own pid in it is a previous process's, reused.
    if (pid === process.pid) return { ino: stat.ino }
    try {
      process.kill(pid, 0)
      return undefined
    } catch (err) {
      return (err as { code?: unknown }).code === 'ESRCH' ? { ino: stat.ino } : undefined
    }
  } finally {
    closeSync(fd)
  }
}

/**
 * Runs `fn` holding an exclusive lock on `path` across processes: the file
 * `<path>.lock`, created exclusively (mode 0600, no symlink followed) with
 * this process's pid in it, removed afterwards. A lock whose holder is gone
 * (its pid no longer runs) is removed; one held by a live process is waited
 * for, at most 10 s in all, then {@link FileLockError} (`held`); a symlink
 * or anything but a regular file at the lock's name is `unsafe` at once
 * (never followed, never removed). For changes
 * that read a file, merge and write it back (see `LocalKmsProvider`): the
 * holder's work takes milliseconds.
 */
export function withFileLockSync<T>(path: string, fn: () => T): T {
  const lock = `${path}.lock`
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  let waited = 0
  for (;;) {
    let fd: number
    try {
      fd = openSync(lock, CREATE_FLAGS, 0o600)
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'EEXIST') throw err
      let planted = false
      try {
        planted = !lstatSync(lock).isFile()
      } catch {
        // Released in between: try again.
        continue
      }
      if (planted) throw new FileLockError(lock, 'unsafe')
      const stale = staleLock(lock)
      if (stale !== undefined) {
        // The same file still (not one a live process just made): remove it.
        try {
          if (lstatSync(lock).ino === stale.ino) unlinkSync(lock)
        } catch {
          // Gone already.
        }
        continue
      }
      if (waited >= LOCK_WAIT_MS) throw new FileLockError(lock, 'held')
      sleepSync(LOCK_POLL_MS)
      waited += LOCK_POLL_MS
      continue
    }
    try {
      writeFileSync(fd, String(process.pid))
    } finally {
      closeSync(fd)
    }
    try {
      return fn()
    } finally {
      try {
        unlinkSync(lock)
      } catch {
        // Removed as stale by another process: nothing left to release.
      }
    }
  }
}
