/**
 * Regression (issue 17, item 1): a KMS outage at boot ended the process
 * silently. The provider's backoff between retries slept on an unref'd
 * timer, so while `await keyManager.initialize()` (or `apiKeys.initialize()`)
 * waited there nothing kept the event loop alive: a server that initializes
 * before `listen()` exited with code 13 (unsettled top-level await) and no
 * output, or with code 0 from a `.then()` chain; a supervisor reads 0 as a
 * clean stop. Now the wait is pending work like any other and the call ends
 * in ERR_KMS_PROVIDER_UNAVAILABLE.
 *
 * Each boot runs in a child process with nothing else on its event loop,
 * against a closed loopback port, for every network provider and the CLI;
 * the local provider (no retries) with a key file it cannot read.
 */
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

const fixture = fileURLToPath(new URL('./fixtures/kms-boot-outage.ts', import.meta.url))
const cliEntry = fileURLToPath(new URL('../../src/cli/index.ts', import.meta.url))
const root = fileURLToPath(new URL('../..', import.meta.url))
const tmp = mkdtempSync(join(tmpdir(), 'fsl-kms-boot-'))
afterAll(() => rm(tmp, { recursive: true, force: true }))

/** A loopback port nothing listens on: connections are refused. */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

interface Exit {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

function run(args: string[], env: Record<string, string> = {}): Promise<Exit> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', ...args],
      { cwd: root, timeout: 30_000, env: { ...process.env, ...env } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null
        resolve({ code, stdout, stderr })
      },
    )
  })
}

describe('a KMS outage at boot fails the process loudly, never silently', () => {
  // Each provider under both boot styles, and apiKeys.initialize() once each.
  const cases = [
    ['keyManager', 'await'],
    ['keyManager', 'then'],
    ['apiKeys', 'await'],
  ] as const
  for (const provider of ['vault', 'aws', 'gcp'] as const) {
    for (const [what, mode] of cases) {
      it(`${provider}, ${what}.initialize() with ${mode}: exits 1 with ERR_KMS_PROVIDER_UNAVAILABLE`, async () => {
        const port = await closedPort()
        const exit = await run([fixture, provider, String(port), mode, what])
        expect(exit.stdout).not.toContain('listening')
        expect(exit.stderr).toContain('ERR_KMS_PROVIDER_UNAVAILABLE')
        // Neither 13 (unsettled top-level await) nor 0 (a clean stop).
        expect(exit.code).toBe(1)
      })
    }
  }

  it('local, with a key file it cannot read: exits 1 with a typed error', async () => {
    // A directory where the key file should be: unreadable even for root.
    const keyFile = join(tmp, 'master-keys.json')
    mkdirSync(keyFile)
    const exit = await run([fixture, 'local', keyFile, 'await', 'keyManager'])
    expect(exit.stdout).not.toContain('listening')
    expect(exit.stderr).toMatch(/ERR_KMS_[A-Z_]+/)
    expect(exit.code).toBe(1)
  })

  it('the CLI (dek rotate against an unreachable Vault): exits 1 with ERR_KMS_PROVIDER_UNAVAILABLE', async () => {
    const port = await closedPort()
    const exit = await run([cliEntry, 'dek', 'rotate', '--database-url', join(tmp, 'keyring.db')], {
      FRAISEQL_KMS_PROVIDER: 'vault',
      VAULT_ADDR: `http://127.0.0.1:${port}`,
      VAULT_TOKEN: 'boot-outage-token',
    })
    expect(exit.stderr).toContain('ERR_KMS_PROVIDER_UNAVAILABLE')
    expect(exit.code).toBe(1)
  })
})
