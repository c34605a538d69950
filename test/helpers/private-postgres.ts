/**
 * A private PostgreSQL cluster on a free loopback port, for tests that stop
 * or restart the server (the shared one at 5432 must never be touched). The
 * cluster runs as the `postgres` user when the tests run as root (PostgreSQL
 * refuses to run as root), trust auth on 127.0.0.1 only.
 */
import { execFile } from 'node:child_process'
import { chownSync, mkdtempSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface PrivatePostgres {
  readonly port: number
  readonly url: string
  /** `pg_ctl restart -m fast`: every connection is terminated, then the server is back. */
  restart(): Promise<void>
  stop(): Promise<void>
}

/** Whether initdb and pg_ctl are on the PATH. */
export async function privatePostgresAvailable(): Promise<boolean> {
  try {
    await run('pg_ctl', ['--version'])
    await run('initdb', ['--version'])
    return true
  } catch {
    return false
  }
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const root = mkdtempSync(join(tmpdir(), 'fsl-private-pg-'))
  const data = join(root, 'data')
  const asRoot = process.getuid?.() === 0
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres'])
    const { stdout: gid } = await run('id', ['-g', 'postgres'])
    chownSync(root, Number(stdout.trim()), Number(gid.trim()))
  }
  const as = (cmd: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', cmd, ...args]) : run(cmd, args)
  await as('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8'])
  const port = await freePort()
  const options = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off`
  const ctl = (action: string, extra: string[] = []) =>
    as('pg_ctl', [action, '-D', data, '-w', '-t', '60', '-l', join(root, 'log'), ...extra])
  await ctl('start', ['-o', options])
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    restart: async () => {
      await ctl('restart', ['-m', 'fast', '-o', options])
    },
    stop: async () => {
      await ctl('stop', ['-m', 'fast']).catch(() => {})
      await rm(root, { recursive: true, force: true })
    },
  }
}
