/**
 * The keyring row MAC as a property: whatever single covered field of the
 * active row a writer changes in the keyring file (creation time,
 * generation, any byte of the wrapped key's JSON), a new process refuses to
 * start on it with a typed error (the MAC's, or the wrapped-key parser's
 * for a field it does not know), and the untouched file starts fine.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, describe, expect, it } from 'vitest'
import { FileKeyringStore, KeyManager, LocalKmsProvider } from '../../src/kms/index.js'

const dir = mkdtempSync(join(tmpdir(), 'keyring-row-mac-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
const provider = new LocalKmsProvider({ keys: { app: randomBytes(32) } })
const quiet = { warn: () => {}, error: () => {} }
let files = 0

const manager = (path: string) =>
  new KeyManager({
    providers: { local: provider },
    defaultProvider: 'local',
    defaultKeyId: 'app',
    keyring: new FileKeyringStore({ path }),
    logger: quiet,
  })

type Row = { createdAt: number; generation: number; wrappedKey: Record<string, unknown> }
type Edit = (row: Row) => void

const edits: fc.Arbitrary<Edit> = fc.oneof(
  fc.integer({ min: 1, max: 10_000_000 }).map(
    (d): Edit =>
      (row) => {
        row.createdAt += d
      },
  ),
  fc.integer({ min: 1, max: 1000 }).map(
    (d): Edit =>
      (row) => {
        row.generation += d
      },
  ),
  fc.string({ minLength: 1, maxLength: 8 }).map(
    (s): Edit =>
      (row) => {
        row.wrappedKey.encryptedAt = `${String(row.wrappedKey.encryptedAt)}${s}`
      },
  ),
  fc.string({ minLength: 1, maxLength: 8 }).map(
    (s): Edit =>
      (row) => {
        row.wrappedKey.note = s
      },
  ),
)

describe('keyring row MAC', () => {
  it('property: any change to a covered field of the active row is refused at start', async () => {
    await fc.assert(
      fc.asyncProperty(edits, async (edit) => {
        const path = join(dir, `k${++files}.json`)
        await manager(path).initialize()
        const original = readFileSync(path, 'utf8')
        const json = JSON.parse(original) as { entries: Row[] }
        edit(json.entries[0]!)
        writeFileSync(path, JSON.stringify(json))
        let code: string | undefined
        await manager(path)
          .initialize()
          .catch((err: { code?: string }) => {
            code = err.code
          })
        // A field the wrapped-key format does not know fails parsing first.
        expect([
          'ERR_KEYRING_TAMPERED',
          'ERR_KEYRING_ROLLBACK',
          'ERR_KMS_INVALID_FORMAT',
        ]).toContain(code)
        writeFileSync(path, original)
        await manager(path).initialize()
      }),
      { numRuns: 25 },
    )
  })
})
