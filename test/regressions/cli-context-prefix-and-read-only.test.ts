import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ApiKeyManager, SqliteApiKeyStore } from '../../src/api-keys/index.js'
import { KeyManager, kmsFromEnv, SqliteKeyringStore } from '../../src/kms/index.js'
import { cli } from '../cli/run.js'

// Issue 20: `keys list` / `dek rotate --database-url` against the example
// server's own files failed with ERR_KMS_DECRYPTION_FAILED: the server binds
// its keys to contextPrefix 'example' and the CLI could not be told so.
// `keys list` unwrapped the pepper it does not need, and read-only commands
// created an empty database at a mistyped path.

const dir = mkdtempSync(join(tmpdir(), 'fsl-cli-prefix-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const env = { FRAISEQL_LOCAL_KEY_FILE: join(dir, 'master-keys.json') }
const keyringDb = join(dir, 'keyring.db')
const apiKeysDb = join(dir, 'api-keys.db')

/** What the example server does at start: everything under contextPrefix 'example'. */
async function serverStart() {
  const keyManager = new KeyManager({
    ...kmsFromEnv(env).keyManagerOptions,
    contextPrefix: 'example',
    keyring: new SqliteKeyringStore({ filename: keyringDb }),
  })
  await keyManager.initialize()
  const apiKeys = new ApiKeyManager({
    store: new SqliteApiKeyStore({ filename: apiKeysDb }),
    keyManager,
  })
  await apiKeys.initialize()
  const created = await apiKeys.create({ name: 'demo', region: 'local' })
  await apiKeys.close()
  keyManager.dispose()
  return created.record.keyId
}

describe('CLI against a server that uses a contextPrefix', () => {
  it('dek rotate and keys rotate work with --context-prefix or FRAISEQL_KMS_CONTEXT_PREFIX', async () => {
    const keyId = await serverStart()
    const rotated = await cli(
      ['dek', 'rotate', '--database-url', keyringDb, '--context-prefix', 'example', '--json'],
      env,
    )
    expect(rotated.stderr).toBe('')
    expect(rotated.code).toBe(0)
    expect(JSON.parse(rotated.stdout)).toHaveLength(2)
    const keys = await cli(['keys', 'rotate', keyId, '--database-url', apiKeysDb], {
      ...env,
      FRAISEQL_KMS_CONTEXT_PREFIX: 'example',
    })
    expect(keys.code).toBe(0)
    expect(keys.stdout).toMatch(/^fraiseql_/)
  })

  it('without the prefix the failure is one line with the code, no stack', async () => {
    const r = await cli(['dek', 'rotate', '--database-url', keyringDb], env)
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/ERR_KMS_DECRYPTION_FAILED/)
    // The progress note ("rotating: …"), then the failure on one line.
    const lines = r.stderr.trim().split('\n')
    expect(lines.filter((l) => !l.startsWith('rotating:'))).toHaveLength(1)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it('keys list needs no KMS: it lists with no key file at all', async () => {
    const r = await cli(['keys', 'list', '--database-url', apiKeysDb, '--json'], {
      FRAISEQL_LOCAL_KEY_FILE: join(dir, 'no-such-key-file.json'),
    })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout).map((k: { name: string }) => k.name)).toContain('demo')
    expect(existsSync(join(dir, 'no-such-key-file.json'))).toBe(false)
  })

  it.each([
    ['keys', 'list'],
    ['dek', 'status'],
  ])('%s %s at a mistyped path is an error and creates no file', async (command, action) => {
    const typo = join(dir, 'api-kyes.db')
    const r = await cli([command, action, '--database-url', typo], env)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/no database at/)
    expect(existsSync(typo)).toBe(false)
  })

  it('--url against a closed port is one line naming the refusal, exit 1, no stack', async () => {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as AddressInfo
    await new Promise((resolve) => server.close(resolve))
    const r = await cli(['keys', 'list', '--url', `http://127.0.0.1:${port}`, '--api-key', 'x'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/ECONNREFUSED/)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
  })
})
