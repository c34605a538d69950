import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { RESTRICTED } from '../../src/profiles/index.js'
import { cli } from './run.js'

const dir = mkdtempSync(join(tmpdir(), 'fsl-cli-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const env = { FRAISEQL_LOCAL_KEY_FILE: join(dir, 'master-keys.json') }

describe('profile show', () => {
  it('prints every setting with the step that enforces it', async () => {
    const r = await cli(['profile', 'show', 'restricted'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^RESTRICTED$/m)
    expect(r.stdout).toMatch(/^mtlsRequired\s+true\s+mtlsGate \(onRequest\)$/m)
    expect(r.stdout).toMatch(/^maxBodySize\s+524288\s+bodyLimit/m)
    expect(r.stdout).toMatch(/^rateLimit\s+100 \/ 60s\s+ipRateLimit/m)
  })

  it('--json is the resolved preset', async () => {
    const r = await cli(['profile', 'show', 'RESTRICTED', '--json'])
    expect(JSON.parse(r.stdout)).toEqual(RESTRICTED)
  })

  it('an unknown profile is a usage error (exit 2) naming the choices', async () => {
    const r = await cli(['profile', 'show', 'paranoid'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/standard, regulated, restricted/)
  })
})

describe('dek', () => {
  const db = join(dir, 'keyring.db')

  it('rotate creates then rotates; status lists one active key and the older decrypt-only ones', async () => {
    expect((await cli(['dek', 'rotate', '--database-url', db], env)).code).toBe(0)
    const rotated = await cli(['dek', 'rotate', '--database-url', db, '--json'], env)
    expect(rotated.code).toBe(0)
    const rows = JSON.parse(rotated.stdout) as { status: string }[]
    expect(rows.filter((r) => r.status === 'active')).toHaveLength(1)
    const status = await cli(['dek', 'status', '--database-url', `sqlite:${db}`, '--json'])
    expect(JSON.parse(status.stdout)).toEqual(
      rows.map((r) => expect.objectContaining({ status: r.status })),
    )
  })

  it('usage errors exit 2', async () => {
    expect((await cli(['dek', 'spin'])).code).toBe(2)
    expect((await cli(['dek', 'status'])).code).toBe(2)
    expect((await cli(['dek', 'status', '--url', 'http://127.0.0.1:1'])).stderr).toMatch(
      /--api-key/,
    )
    expect((await cli(['dek', 'status', '--database-url', 'mysql://x'])).code).toBe(2)
  })

  it('a KMS that cannot be reached is a failure (exit 1), its message on stderr', async () => {
    const r = await cli(['dek', 'rotate', '--database-url', join(dir, 'other.db')], {
      FRAISEQL_KMS_PROVIDER: 'vault',
    })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/VAULT_ADDR/)
  })
})
