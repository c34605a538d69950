import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify from 'fastify'
import { afterAll, describe, expect, it, onTestFinished } from 'vitest'
import {
  ApiKeyManager,
  apiKeyAdminRoutes,
  apiKeyAuth,
  SqliteApiKeyStore,
} from '../../src/api-keys/index.js'
import { KeyManager, LocalKmsProvider } from '../../src/kms/index.js'
import { cli } from './run.js'

const dir = mkdtempSync(join(tmpdir(), 'fsl-cli-keys-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const env = { FRAISEQL_LOCAL_KEY_FILE: join(dir, 'master-keys.json') }

describe('keys against a database', () => {
  const db = join(dir, 'api-keys.db')

  it('create prints the key once; list, rotate and revoke by key id', async () => {
    const created = await cli(
      [
        'keys',
        'create',
        '--name',
        'billing',
        '--region',
        'eu_west_1',
        '--permission',
        'orders:read',
        '--database-url',
        db,
      ],
      env,
    )
    expect(created.code).toBe(0)
    expect(created.stdout).toMatch(/^fraiseql_live_eu_west_1_\w+\n$/)
    expect(created.stderr).toMatch(/not shown again/)
    const list = JSON.parse(
      (await cli(['keys', 'list', '--database-url', db, '--json'], env)).stdout,
    ) as { keyId: string; name: string }[]
    expect(list).toEqual([expect.objectContaining({ name: 'billing' })])
    const id = list[0]!.keyId
    expect(JSON.stringify(list)).not.toContain(created.stdout.trim())
    const rotated = await cli(
      ['keys', 'rotate', id, '--grace-minutes', '5', '--database-url', db],
      env,
    )
    expect(rotated.code).toBe(0)
    expect(rotated.stdout.trim()).not.toBe(created.stdout.trim())
    const revoked = await cli(
      ['keys', 'revoke', id, '--reason', 'leaked', '--database-url', db, '--json'],
      env,
    )
    expect(JSON.parse(revoked.stdout)[0]).toMatchObject({ keyId: id, status: 'revoked' })
  })

  it('usage errors exit 2 before any KMS call', async () => {
    expect(
      (await cli(['keys', 'create', '--database-url', db], { FRAISEQL_KMS_PROVIDER: 'vault' }))
        .code,
    ).toBe(2)
    expect(
      (await cli(['keys', 'rotate', '--database-url', db], { FRAISEQL_KMS_PROVIDER: 'vault' }))
        .code,
    ).toBe(2)
    expect((await cli(['keys', 'fly'])).code).toBe(2)
  })
})

describe('keys against the admin API', () => {
  it('creates and lists through a running server', async () => {
    const keyManager = new KeyManager({
      providers: { local: new LocalKmsProvider({ keyFile: join(dir, 'server-master.json') }) },
      defaultProvider: 'local',
      defaultKeyId: 'app',
    })
    const manager = new ApiKeyManager({
      store: new SqliteApiKeyStore({ filename: join(dir, 'server.db') }),
      keyManager,
    })
    await manager.initialize()
    const admin = await manager.create({ name: 'admin', permissions: ['api-keys:admin'] })
    const app = Fastify()
    onTestFinished(async () => {
      await app.close()
      await manager.close()
      await keyManager.dispose()
    })
    await app.register(apiKeyAuth, { manager })
    await app.register(apiKeyAdminRoutes, { manager })
    const url = await app.listen({ host: '127.0.0.1', port: 0 })
    const created = await cli([
      'keys',
      'create',
      '--name',
      'svc',
      '--url',
      url,
      '--api-key',
      admin.key,
      '--json',
    ])
    expect(created.code).toBe(0)
    expect(JSON.parse(created.stdout)).toMatchObject({
      name: 'svc',
      key: expect.stringMatching(/^fraiseql_live_/),
    })
    const list = await cli(['keys', 'list', '--url', url], { FRAISEQL_ADMIN_API_KEY: admin.key })
    expect(list.stdout).toMatch(/svc/)
    const denied = await cli([
      'keys',
      'list',
      '--url',
      url,
      '--api-key',
      'fraiseql_live_local_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB000000',
    ])
    expect(denied.code).toBe(1)
    expect(denied.stderr).toMatch(/401/)
  })
})
