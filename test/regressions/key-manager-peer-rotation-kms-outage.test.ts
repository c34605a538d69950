/**
 * Regression (issue 17, item 2): a peer's rotation broke serving through a
 * KMS outage. Three processes share a keyring; one rotates; then the KMS
 * goes down. The others, at their next block, found their key no longer
 * active, tried to unwrap the new one (a KMS call), failed, and refused
 * `localEncrypt` with ERR_KMS_PROVIDER_UNAVAILABLE although their current
 * key was well within its limits (7 of 30 calls served).
 *
 * Now they keep encrypting with their current key, its uses still counted in
 * the keyring against its hard limit, keep decrypting with every cached key,
 * retry the unwrap in the background and switch once it succeeds. Data the
 * rotating peer sealed under the new key cannot be read by the others until
 * then: a typed ERR_KMS_PROVIDER_UNAVAILABLE, never a wrong answer.
 *
 * Three real processes, a real SQLite keyring file, the Vault emulator (over
 * loopback HTTP) made to go down.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { SqliteKeyringStore } from '../../src/kms/index.js'
import { startVaultEmulator, type VaultEmulator } from '../../src/kms/testing/vault-emulator.js'

const fixture = fileURLToPath(new URL('./fixtures/key-manager-peer.ts', import.meta.url))
const root = fileURLToPath(new URL('../..', import.meta.url))
const tmp = mkdtempSync(join(tmpdir(), 'fsl-km-peer-'))
const keyringFile = join(tmp, 'keyring.db')

type Answer = { ok: true; value: string } | { ok: false; code: string }

class Peer {
  readonly #child: ChildProcess
  readonly #pending = new Map<number, (a: Answer) => void>()
  #next = 0
  readonly ready: Promise<void>

  constructor(vault: VaultEmulator) {
    this.#child = fork(fixture, [vault.address, vault.token, keyringFile], {
      cwd: root,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    this.ready = new Promise((resolve, reject) => {
      this.#child.once('exit', (code) => reject(new Error(`peer exited with ${code}`)))
      this.#child.on('message', (m: { ready?: true; id?: number } & Answer) => {
        if (m.ready) return resolve()
        this.#pending.get(m.id!)?.(m)
        this.#pending.delete(m.id!)
      })
    })
  }

  call(op: string, value?: string): Promise<Answer> {
    const id = this.#next++
    return new Promise((resolve) => {
      this.#pending.set(id, resolve)
      this.#child.send({ id, op, value })
    })
  }

  async ok(op: string, value?: string): Promise<string> {
    const a = await this.call(op, value)
    if (!a.ok) throw new Error(`${op} failed with ${a.code}`)
    return a.value
  }

  close(): void {
    this.#child.disconnect()
  }
}

/** The data key id a local ciphertext names (bytes 1-16). */
const keyIdOf = (sealed: string) => Buffer.from(sealed, 'base64url').subarray(1, 17).toString('hex')

describe('a peer rotates, then the KMS goes down: the others keep serving', () => {
  let vault: VaultEmulator
  let peers: Peer[] = []
  beforeAll(async () => {
    vault = await startVaultEmulator()
    vault.createKey('app')
  })
  afterAll(async () => {
    for (const p of peers) p.close()
    await vault?.close()
    await rm(tmp, { recursive: true, force: true })
  })

  it('encrypts with the current key within its limits, decrypts every cached key, adopts the new key once the KMS is back', async () => {
    // A first, so the three share one first key (no race needed here).
    const a = new Peer(vault)
    await a.ready
    const b = new Peer(vault)
    const c = new Peer(vault)
    peers = [a, b, c]
    await Promise.all([b.ready, c.ready])

    const before = await Promise.all(peers.map((p, i) => p.ok('encrypt', `before ${i}`)))
    const oldKey = keyIdOf(before[0]!)
    expect(before.map(keyIdOf)).toEqual([oldKey, oldKey, oldKey])

    const newKey = await a.ok('rotate')
    expect(newKey).not.toBe(oldKey)
    const fromA = await a.ok('encrypt', 'after rotation, by a')
    expect(keyIdOf(fromA)).toBe(newKey)

    vault.faults.setOutage(true)
    for (const [name, peer] of [
      ['b', b],
      ['c', c],
    ] as const) {
      const sealed: string[] = []
      for (let i = 0; i < 30; i++) {
        const r = await peer.call('encrypt', `${name} during outage ${i}`)
        expect(r, `${name} call ${i}`).toMatchObject({ ok: true })
        if (r.ok) sealed.push(r.value)
      }
      // All under the key it held: the new one could not be unwrapped.
      expect(new Set(sealed.map(keyIdOf))).toEqual(new Set([oldKey]))
      // Every cached key still decrypts: its own and the others' old-key data.
      for (const [i, s] of before.entries()) expect(await peer.ok('decrypt', s)).toBe(`before ${i}`)
      expect(await peer.ok('decrypt', sealed[29]!)).toBe(`${name} during outage 29`)
      // The rotating peer's new-key data waits for the KMS: a typed error.
      expect(await peer.call('decrypt', fromA)).toMatchObject({
        ok: false,
        code: 'ERR_KMS_PROVIDER_UNAVAILABLE',
      })
    }
    // The old key's uses were counted in the shared keyring (2 × 30 at least).
    const keyring = new SqliteKeyringStore({ filename: keyringFile })
    const entries = await keyring.list()
    await keyring.close()
    const old = entries.find((e) => e.id === oldKey)!
    expect(old.status).toBe('decrypt-only')
    expect(old.usesReserved).toBeGreaterThanOrEqual(63)

    // The KMS is back: the background retry unwraps the new key and they switch.
    vault.faults.setOutage(false)
    for (const peer of [b, c]) {
      await vi.waitFor(
        async () => expect(keyIdOf(await peer.ok('encrypt', 'after outage'))).toBe(newKey),
        { timeout: 15_000, interval: 20 },
      )
      expect(await peer.ok('decrypt', fromA)).toBe('after rotation, by a')
    }
    // And the rotating peer reads what the others wrote during the outage.
    const fromB = await b.ok('encrypt', 'b, last')
    expect(await a.ok('decrypt', fromB)).toBe('b, last')
  }, 120_000)
})
