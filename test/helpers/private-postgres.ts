/**
 * A private PostgreSQL server for fault tests that stop and restart it: its
 * own data directory (initdb, trust auth, fsync off), a free loopback port,
 * started and stopped with `pg_ctl`. PostgreSQL refuses to run as root, so
 * as root every command runs as the `postgres` user through `runuser`.
 *
 * The shared server on 5432 is never touched. With `CI=true` a missing
 * `initdb` fails the run; locally the suites that need it skip.
 */
import { execFile } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { IN_CI } from './services.js'

const run = promisify(execFile)

const asRoot = process.getuid?.() === 0

function findBin(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const path = join(dir, name)
    if (dir !== '' && existsSync(path)) return path
  }
  return undefined
}

const initdb = findBin('initdb')
const pgCtl = findBin('pg_ctl')

function note(): boolean {
  const ok = initdb !== undefined && pgCtl !== undefined
  if (!ok && IN_CI) throw new Error('initdb and pg_ctl must be on PATH when CI=true')
  if (!ok) console.warn('[tests] initdb/pg_ctl not found: private-PostgreSQL suites are skipped.')
  return ok
}

/** True when a private PostgreSQL can be started (never false in CI: that throws). */
export const HAS_PRIVATE_POSTGRES = note()

/** Runs a PostgreSQL tool as a user it accepts, bounded in time. */
async function pg(bin: string, args: string[], timeoutMs = 60_000): Promise<string> {
  const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args]
  const { stdout } = await run(file, argv, { timeout: timeoutMs })
  return stdout
}

/** A port the kernel just handed out on 127.0.0.1 (free now; PostgreSQL binds it next). */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

export interface PrivatePostgres {
  readonly port: number
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string
  /** `pg_ctl restart`: `fast` disconnects every client (SQLSTATE 57P01), `immediate` is a crash. */
  restart(mode?: 'fast' | 'immediate'): Promise<void>
  stop(mode?: 'fast' | 'immediate'): Promise<void>
  start(): Promise<void>
  /** Stops the server (if running) and deletes its directory. */
  destroy(): Promise<void>
}

/** Creates, starts and returns a private server; `destroy()` it in `afterAll`. */
export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  if (initdb === undefined || pgCtl === undefined) throw new Error('initdb/pg_ctl not found')
  const dir = mkdtempSync(join(tmpdir(), 'fraiseql-pg-'))
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres'])
    const { stdout: gid } = await run('id', ['-g', 'postgres'])
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()))
  }
  const data = join(dir, 'data')
  const port = await freePort()
  await pg(initdb, ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync'])
  const options = [
    `-p ${port}`,
    '-c listen_addresses=127.0.0.1',
    `-k ${dir}`,
    '-c fsync=off',
    '-c max_connections=50',
  ].join(' ')
  const ctl = (args: string[]) =>
    pg(pgCtl, ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '60', ...args])
  await ctl(['-o', options, 'start'])
  let running = true
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async restart(mode = 'fast') {
      await ctl(['-m', mode, '-o', options, 'restart'])
      running = true
    },
    async stop(mode = 'fast') {
      await ctl(['-m', mode, 'stop'])
      running = false
    },
    async start() {
      await ctl(['-o', options, 'start'])
      running = true
    },
    async destroy() {
      if (running) await ctl(['-m', 'immediate', 'stop']).catch(() => {})
      running = false
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
