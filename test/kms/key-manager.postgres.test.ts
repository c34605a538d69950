/**
 * Processes sharing one PostgreSQL keyring converge on one active DEK and
 * decrypt each other's ciphertexts, before and after rotations.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KeyManager, LocalKmsProvider, PostgresKeyringStore } from '../../src/kms/index.js'
import { createPgSchema, DATABASE_URL, HAS_POSTGRES, type PgSchema } from '../helpers/services.js'

const quiet = { warn: () => {}, error: () => {} }
const fixture = fileURLToPath(new URL('./fixtures/key-manager-process.ts', import.meta.url))
const root = fileURLToPath(new URL('../..', import.meta.url))

describe.skipIf(!HAS_POSTGRES)('KeyManager on a shared PostgreSQL keyring', () => {
  let db: PgSchema
  let keyFile: string
  beforeAll(async () => {
    db = await createPgSchema(import.meta.url)
    keyFile = join(mkdtempSync(join(tmpdir(), 'fsl-km-pg-')), 'master-keys.json')
  })
  afterAll(async () => db.drop())

  const managerOn = (pool: PgSchema['pool'], options: { reserveBlock?: number } = {}) =>
    new KeyManager({
      providers: { local: new LocalKmsProvider({ keyFile }) },
      defaultProvider: 'local',
      defaultKeyId: 'app',
      keyring: new PostgresKeyringStore({ pool, schema: db.schema }),
      logger: quiet,
      limits: { reserveBlock: options.reserveBlock ?? 1024 },
    })

  async function processRun(
    foreign = '',
  ): Promise<{ active: string; decrypted: string | null; sealed: string }> {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', fixture, DATABASE_URL, db.schema, keyFile, foreign],
      { cwd: root, timeout: 120_000 },
    )
    return JSON.parse(stdout.trim().split('\n').at(-1)!)
  }

  it('two processes converge on one DEK and read each other’s ciphertexts', async () => {
    const here = managerOn(db.pool)
    await here.initialize()
    const mine = await here.localEncrypt('written by the test process', 'shared')
    const child = await processRun(mine)
    expect(child.decrypted).toBe('written by the test process')
    expect(child.active).toBe((await here.dataKeys()).find((k) => k.status === 'active')!.id)
    expect(await here.localDecrypt(child.sealed, 'shared')).toMatch(/^written by \d+$/)

    // After a rotation here, a new process uses the new DEK and still reads the old data.
    const rotated = await here.rotateDataKey()
    const child2 = await processRun(mine)
    expect(child2.active).toBe(rotated.id)
    expect(child2.decrypted).toBe('written by the test process')
    expect(await here.localDecrypt(child2.sealed, 'shared')).toMatch(/^written by \d+$/)
    here.dispose()
    // A bound against a hang: two cold tsx processes on a loaded machine.
  }, 120_000)

  it('a running manager adopts the DEK another one rotated to, at its next block', async () => {
    const a = managerOn(db.pool, { reserveBlock: 2 })
    const b = managerOn(db.pool, { reserveBlock: 2 })
    await Promise.all([a.initialize(), b.initialize()])
    const fromB = await b.localEncrypt('b before', 'x')
    const rotated = await a.rotateDataKey()
    const sealed: string[] = []
    for (let i = 0; i < 4; i++) sealed.push(await b.localEncrypt(`b ${i}`, 'x'))
    const lastId = Buffer.from(sealed.at(-1)!, 'base64url').subarray(1, 17).toString('hex')
    expect(lastId).toBe(rotated.id)
    for (const [i, s] of sealed.entries()) expect(await a.localDecrypt(s, 'x')).toBe(`b ${i}`)
    expect(await a.localDecrypt(fromB, 'x')).toBe('b before')
    a.dispose()
    b.dispose()
  })
})
