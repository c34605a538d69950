/**
 * Regression check (issue 17, item 7): two processes starting together on a
 * fresh `LocalKmsProvider` key file crashed in about half the runs, each
 * creating its own master key. They must converge on one, as the keyring
 * does. Checked with real processes released at the same moment, 20 times:
 * each encrypts under the same new key id, and a third provider on the file
 * decrypts both ciphertexts (two different master keys could not both be in
 * the file under one version).
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { EncryptedData, LocalKmsProvider } from '../../src/kms/index.js'

const root = mkdtempSync(join(tmpdir(), 'fsl-local-kms-fresh-'))
afterAll(() => rm(root, { recursive: true, force: true }))
const dist = resolve('dist/kms/index.js')

// Prints `ready`, waits for one line on stdin (so both start at once), then
// creates the key by using it and prints the ciphertext as JSON.
const script = `
  const { LocalKmsProvider } = await import(${JSON.stringify(pathToFileURL(dist).href)})
  const { once } = await import('node:events')
  console.log('ready')
  await once(process.stdin, 'data')
  process.stdin.pause()
  const kms = new LocalKmsProvider({ keyFile: process.argv[1], logger: { warn() {}, error() {} } })
  const sealed = await kms.encrypt('from ' + process.argv[2], 'app')
  console.log(JSON.stringify(sealed.toJSON()))
`

function starter(keyFile: string, name: string) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, keyFile, name], {
    stdio: ['pipe', 'pipe', 'pipe'],
    timeout: 30_000,
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
  })
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString()
  })
  const ready = new Promise<void>((res) => {
    const check = () => (out.includes('ready') ? res() : child.stdout.once('data', check))
    check()
  })
  const done = new Promise<{ code: number | null; out: string; err: string }>((res) =>
    child.on('close', (code) => res({ code, out, err })),
  )
  return { go: () => child.stdin.end('go\n'), ready, done }
}

describe('two processes on a fresh key file converge on one master key', () => {
  it('20 runs: both succeed, and one provider decrypts both ciphertexts', async () => {
    expect(existsSync(dist), 'npm run build first').toBe(true)
    for (let run = 0; run < 20; run++) {
      const dir = join(root, `r${run}`)
      mkdirSync(dir, { mode: 0o700 })
      const keyFile = join(dir, 'master-keys.json')
      const p = starter(keyFile, 'p')
      const q = starter(keyFile, 'q')
      await Promise.all([p.ready, q.ready])
      p.go()
      q.go()
      const results = await Promise.all([p.done, q.done])
      for (const r of results) expect(r, `run ${run}: ${r.err}`).toMatchObject({ code: 0 })
      const reader = new LocalKmsProvider({ keyFile, logger: { warn() {}, error() {} } })
      for (const [i, r] of results.entries()) {
        const sealed = EncryptedData.fromJSON(JSON.parse(r.out.trim().split('\n').at(-1)!))
        const plain = Buffer.from(await reader.decrypt(sealed)).toString()
        expect(plain, `run ${run}`).toBe(`from ${i === 0 ? 'p' : 'q'}`)
      }
      expect((await reader.getKeyInfo('app')).currentVersion).toBe(1)
      expect(existsSync(`${keyFile}.lock`)).toBe(false)
    }
  }, 240_000)
})
