/**
 * The contract every keyring store passes: memory, file, SQLite and
 * PostgreSQL run this same suite, and so can a user's own store. The
 * reference is MemoryKeyringStore: every other store must answer exactly as
 * it does, and keep its guarantees when two instances share one keyring.
 */
import { randomBytes } from 'node:crypto'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type {
  EncryptedDataJson,
  KeyringEntry,
  KeyringStore,
  NewKeyringEntry,
} from '../../src/kms/index.js'

/** A keyring entry whose id is `id` repeated to 32 hex digits (a wrapped key that is never unwrapped). */
export const keyringEntry = (id: string, createdAt = 1) => ({
  id: id.repeat(32),
  wrappedKey: {
    ciphertext: 'ab',
    keyReference: { provider: 'local', keyId: 'app', purpose: 'encrypt_decrypt' as const },
    algorithm: 'AES-256-GCM',
    encryptedAt: '2026-11-25T17:00:00.000Z',
    context: {},
  },
  createdAt,
})

export interface KeyringHarness {
  /** A store over a keyring no other test uses, not yet migrated. */
  store: KeyringStore
  /**
   * Another store over the same keyring: a second instance with its own
   * connection (pool, database handle) where the store persists; the same
   * store for memory.
   */
  other(): Promise<KeyringStore>
  /** Releases everything the harness opened. */
  close?(): Promise<void>
}

const id = () => randomBytes(16).toString('hex')

/** A realistic wrapped key, with a context that must survive the round trip byte for byte. */
function wrapped(n = 0): EncryptedDataJson {
  return {
    ciphertext: randomBytes(60).toString('hex'),
    keyReference: { provider: 'local', keyId: `app-${n}`, purpose: 'encrypt_decrypt' },
    algorithm: 'AES-256-GCM',
    encryptedAt: '2026-11-25T17:00:00.000Z',
    context: { service: 'billing', purpose: 'dek', note: 'clé ✓ "quoted" \\ \u2028' },
  }
}

let generations = 0
/** Generation and MAC are the KeyManager's: a store keeps them exactly as given. */
const newEntry = (createdAt: number, n = 0): NewKeyringEntry => ({
  id: id(),
  wrappedKey: wrapped(n),
  createdAt,
  generation: 2 ** 40 + ++generations,
  mac: randomBytes(32).toString('hex'),
})

/** 2026-11-25, a realistic epoch in ms, far beyond 2^32. */
const T0 = 1_795_000_000_000

export function describeKeyringStoreContract(
  name: string,
  factory: () => Promise<KeyringHarness>,
): void {
  describe(`KeyringStore contract: ${name}`, () => {
    let h: KeyringHarness
    let store: KeyringStore
    let other: KeyringStore
    beforeEach(async () => {
      h = await factory()
      store = h.store
      other = await h.other()
      // Two instances migrating a fresh keyring at once, and again: idempotent.
      await Promise.all([store.migrate?.(), other.migrate?.(), store.migrate?.()])
      await store.migrate?.()
    })
    afterEach(async () => {
      await h.close?.()
    })

    describe('reads', () => {
      it('an empty keyring lists nothing, has no active key, and get() of any id is undefined', async () => {
        expect(await store.list()).toEqual([])
        expect(await store.active()).toBeUndefined()
        expect(await store.get(id())).toBeUndefined()
      })

      it('entries carry exactly id, status, wrappedKey, createdAt, usesReserved, generation, mac, round-tripped exactly', async () => {
        const e = newEntry(T0)
        const created = await store.insertFirstActive(e)
        const expected: KeyringEntry = { ...e, status: 'active', usesReserved: 0 }
        expect(created).toStrictEqual(expected)
        expect(await store.get(e.id)).toStrictEqual(expected)
        expect(await other.get(e.id)).toStrictEqual(expected)
        expect(await store.active()).toStrictEqual(expected)
        expect(await store.list()).toStrictEqual([expected])
      })

      it('an entry added without generation or MAC (as rows written before them) reads back with both null', async () => {
        const { generation: _g, mac: _m, ...bare } = newEntry(T0)
        const created = await store.insertFirstActive(bare)
        expect(created).toMatchObject({ generation: null, mac: null })
        expect(await other.get(bare.id)).toStrictEqual(created)
      })

      it('sealEntry sets generation and MAC on a row without a MAC, and never overwrites one', async () => {
        if (store.sealEntry === undefined) return
        const { generation: _g, mac: _m, ...bare } = newEntry(T0)
        await store.insertFirstActive(bare)
        const mac = randomBytes(32).toString('hex')
        expect(await store.sealEntry(bare.id, 7, mac)).toBe(true)
        expect(await other.get(bare.id)).toMatchObject({ generation: 7, mac })
        expect(await store.sealEntry(bare.id, 8, randomBytes(32).toString('hex'))).toBe(false)
        expect(await store.sealEntry(id(), 9, mac)).toBe(false)
        expect(await other.get(bare.id)).toMatchObject({ generation: 7, mac })
      })

      it('get() of an unknown id is undefined when the keyring has entries', async () => {
        await store.insertFirstActive(newEntry(T0))
        expect(await store.get(id())).toBeUndefined()
      })

      it('list() is oldest first by createdAt, whatever the insertion order, and keeps insertion order for equal times', async () => {
        const first = await store.insertFirstActive(newEntry(T0 + 3000))
        const b = await store.rotate(first.id, newEntry(T0 + 1000))
        const c = await store.rotate(b.id, newEntry(T0 + 2000))
        const d = await store.rotate(c.id, newEntry(T0 + 2000))
        const e = await store.rotate(d.id, newEntry(T0 + 2000))
        expect((await store.list()).map((x) => x.id)).toEqual([b.id, c.id, d.id, e.id, first.id])
        expect((await other.list()).map((x) => x.id)).toEqual([b.id, c.id, d.id, e.id, first.id])
      })

      it('every status read back is one of active, decrypt-only, retired', async () => {
        const a = await store.insertFirstActive(newEntry(T0))
        const b = await store.rotate(a.id, newEntry(T0 + 1))
        await store.rotate(b.id, newEntry(T0 + 2))
        await store.setStatus(a.id, 'retired')
        expect((await store.list()).map((e) => e.status)).toEqual([
          'retired',
          'decrypt-only',
          'active',
        ])
      })
    })

    describe('insertFirstActive', () => {
      it('adds the entry as active with zero uses when none is active', async () => {
        const e = newEntry(T0)
        const created = await store.insertFirstActive(e)
        expect(created).toMatchObject({ id: e.id, status: 'active', usesReserved: 0 })
      })

      it('returns the existing active entry and adds nothing when one is active', async () => {
        const first = await store.insertFirstActive(newEntry(T0))
        await store.reserveUses(first.id, 5, 100)
        const late = newEntry(T0 + 1)
        const got = await other.insertFirstActive(late)
        expect(got).toStrictEqual({ ...first, usesReserved: 5 })
        expect(await store.get(late.id)).toBeUndefined()
        expect(await store.list()).toHaveLength(1)
      })

      it('adds a new active key once the active one was demoted by setStatus', async () => {
        const first = await store.insertFirstActive(newEntry(T0))
        await store.setStatus(first.id, 'retired')
        const second = await store.insertFirstActive(newEntry(T0 + 1))
        expect(second.id).not.toBe(first.id)
        expect((await store.active())?.id).toBe(second.id)
      })
    })

    describe('rotate', () => {
      it('with the active id: demotes it to decrypt-only (uses kept) and makes the new entry active', async () => {
        const first = await store.insertFirstActive(newEntry(T0))
        await store.reserveUses(first.id, 7, 100)
        const next = newEntry(T0 + 1)
        const got = await store.rotate(first.id, next)
        expect(got).toStrictEqual({ ...next, status: 'active', usesReserved: 0 })
        expect(await store.get(first.id)).toStrictEqual({
          ...first,
          status: 'decrypt-only',
          usesReserved: 7,
        })
        expect((await store.active())?.id).toBe(next.id)
      })

      it('with a stale expected id: changes nothing and returns the current active', async () => {
        const first = await store.insertFirstActive(newEntry(T0))
        const second = await store.rotate(first.id, newEntry(T0 + 1))
        const before = await store.list()
        const late = newEntry(T0 + 2)
        const got = await other.rotate(first.id, late)
        expect(got).toStrictEqual(second)
        expect(await store.get(late.id)).toBeUndefined()
        expect(await store.list()).toStrictEqual(before)
      })

      it('with an unknown expected id while a key is active: changes nothing, returns the active', async () => {
        const first = await store.insertFirstActive(newEntry(T0))
        const got = await store.rotate(id(), newEntry(T0 + 1))
        expect(got).toStrictEqual(first)
        expect(await store.list()).toHaveLength(1)
      })

      it('when no key is active at all: adds the entry as active', async () => {
        const e = newEntry(T0)
        const got = await store.rotate(id(), e)
        expect(got).toStrictEqual({ ...e, status: 'active', usesReserved: 0 })
        const first = await store.rotate(e.id, newEntry(T0 + 1))
        await store.setStatus(first.id, 'decrypt-only')
        const again = newEntry(T0 + 2)
        expect((await store.rotate(first.id, again)).id).toBe(again.id)
        expect((await store.list()).filter((x) => x.status === 'active')).toHaveLength(1)
      })
    })

    describe('reserveUses', () => {
      it('returns the running total and allows reaching the limit exactly', async () => {
        const a = await store.insertFirstActive(newEntry(T0))
        expect(await store.reserveUses(a.id, 400, 1000)).toBe(400)
        expect(await other.reserveUses(a.id, 400, 1000)).toBe(800)
        expect(await store.reserveUses(a.id, 200, 1000)).toBe(1000)
        expect((await store.get(a.id))?.usesReserved).toBe(1000)
      })

      it('refuses a reservation that would pass the limit, and changes nothing', async () => {
        const a = await store.insertFirstActive(newEntry(T0))
        expect(await store.reserveUses(a.id, 900, 1000)).toBe(900)
        expect(await store.reserveUses(a.id, 101, 1000)).toBeUndefined()
        expect((await store.get(a.id))?.usesReserved).toBe(900)
        expect(await store.reserveUses(a.id, 100, 1000)).toBe(1000)
      })

      it('refuses decrypt-only, retired and unknown ids', async () => {
        const a = await store.insertFirstActive(newEntry(T0))
        const b = await store.rotate(a.id, newEntry(T0 + 1))
        const c = await store.rotate(b.id, newEntry(T0 + 2))
        await store.setStatus(b.id, 'retired')
        expect(await store.reserveUses(a.id, 1, 1000)).toBeUndefined()
        expect(await store.reserveUses(b.id, 1, 1000)).toBeUndefined()
        expect(await store.reserveUses(id(), 1, 1000)).toBeUndefined()
        expect((await store.get(a.id))?.usesReserved).toBe(0)
        expect(await store.reserveUses(c.id, 1, 1000)).toBe(1)
      })

      it('with superseded: reserves from a decrypt-only key within the limit, never a retired or unknown one', async () => {
        const a = await store.insertFirstActive(newEntry(T0))
        expect(await store.reserveUses(a.id, 10, 100)).toBe(10)
        const b = await store.rotate(a.id, newEntry(T0 + 1))
        const c = await store.rotate(b.id, newEntry(T0 + 2))
        await store.setStatus(b.id, 'retired')
        const superseded = { superseded: true }
        // The superseded key's count goes on from every process's earlier uses.
        expect(await store.reserveUses(a.id, 40, 100, superseded)).toBe(50)
        expect(await other.reserveUses(a.id, 50, 100, superseded)).toBe(100)
        expect(await store.reserveUses(a.id, 1, 100, superseded)).toBeUndefined()
        expect(await store.reserveUses(b.id, 1, 100, superseded)).toBeUndefined()
        expect(await store.reserveUses(id(), 1, 100, superseded)).toBeUndefined()
        expect(await store.reserveUses(c.id, 1, 100, superseded)).toBe(1)
        expect((await store.get(a.id))?.status).toBe('decrypt-only')
        expect((await store.get(b.id))?.usesReserved).toBe(0)
      })

      it('counts beyond 2^32 exactly (the NIST SP 800-38D bound is 2^32 invocations)', async () => {
        const a = await store.insertFirstActive(newEntry(T0))
        const limit = 2 ** 40
        expect(await store.reserveUses(a.id, 2 ** 32, limit)).toBe(2 ** 32)
        expect(await store.reserveUses(a.id, 2 ** 32 + 1, limit)).toBe(2 ** 33 + 1)
        expect((await other.get(a.id))?.usesReserved).toBe(2 ** 33 + 1)
      })
    })

    describe('setStatus', () => {
      it('demotes the active key (leaving none active) and retires keys; never activates', async () => {
        const a = await store.insertFirstActive(newEntry(T0))
        const b = await store.rotate(a.id, newEntry(T0 + 1))
        await store.setStatus(a.id, 'retired')
        expect((await store.get(a.id))?.status).toBe('retired')
        await store.setStatus(a.id, 'decrypt-only')
        expect((await store.get(a.id))?.status).toBe('decrypt-only')
        expect((await store.active())?.id).toBe(b.id)
        await store.setStatus(b.id, 'decrypt-only')
        expect(await store.active()).toBeUndefined()
        expect((await store.list()).map((e) => e.status)).toEqual(['decrypt-only', 'decrypt-only'])
      })

      it('keeps the use counter and the wrapped key', async () => {
        const a = await store.insertFirstActive(newEntry(T0))
        await store.reserveUses(a.id, 3, 10)
        await store.setStatus(a.id, 'retired')
        expect(await store.get(a.id)).toStrictEqual({ ...a, status: 'retired', usesReserved: 3 })
      })

      it('refuses to activate a key (only insertFirstActive and rotate make a key active)', async () => {
        const a = await store.insertFirstActive(newEntry(T0))
        await store.setStatus(a.id, 'decrypt-only')
        await expect(store.setStatus(a.id, 'active' as never)).rejects.toMatchObject({
          code: 'ERR_KEYRING_STORE',
        })
        expect(await store.active()).toBeUndefined()
      })

      it('is a no-op for an unknown id', async () => {
        const a = await store.insertFirstActive(newEntry(T0))
        await store.setStatus(id(), 'retired')
        expect(await store.list()).toStrictEqual([a])
      })
    })

    describe('two instances sharing the keyring', () => {
      it('20 concurrent insertFirstActive: exactly one active, and every caller gets its id', async () => {
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 === 0 ? store : other).insertFirstActive(newEntry(T0 + i)),
          ),
        )
        const ids = new Set(results.map((r) => r.id))
        expect(ids.size).toBe(1)
        const all = await store.list()
        expect(all).toHaveLength(1)
        expect(all[0]).toMatchObject({ id: [...ids][0], status: 'active' })
      })

      it('concurrent rotate with the same expected id from both: exactly one rotation happens', async () => {
        const first = await store.insertFirstActive(newEntry(T0))
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            (i % 2 === 0 ? store : other).rotate(first.id, newEntry(T0 + 1 + i)),
          ),
        )
        expect(new Set(results.map((r) => r.id)).size).toBe(1)
        const all = await other.list()
        expect(all).toHaveLength(2)
        expect(all.find((e) => e.id === first.id)?.status).toBe('decrypt-only')
        expect(all.filter((e) => e.status === 'active').map((e) => e.id)).toEqual([results[0]!.id])
      })

      it('200 concurrent reserveUses(id, 10, 1000): exactly 100 succeed and the total is 1000', async () => {
        const a = await store.insertFirstActive(newEntry(T0))
        const results = await Promise.all(
          Array.from({ length: 200 }, (_, i) =>
            (i % 2 === 0 ? store : other).reserveUses(a.id, 10, 1000),
          ),
        )
        const granted = results.filter((r): r is number => r !== undefined)
        expect(granted).toHaveLength(100)
        // Every block is distinct: no two callers were handed the same range.
        expect(new Set(granted).size).toBe(100)
        expect(Math.max(...granted)).toBe(1000)
        expect((await store.get(a.id))?.usesReserved).toBe(1000)
      })

      it('a reservation racing a rotation either lands on the old key before it is demoted or is refused', async () => {
        const a = await store.insertFirstActive(newEntry(T0))
        const [reserved, rotated] = await Promise.all([
          Promise.all(Array.from({ length: 20 }, () => other.reserveUses(a.id, 1, 1000))),
          store.rotate(a.id, newEntry(T0 + 1)),
        ])
        const granted = reserved.filter((r) => r !== undefined).length
        expect((await store.get(a.id))?.usesReserved).toBe(granted)
        expect((await store.get(rotated.id))?.usesReserved).toBe(0)
        expect(await store.reserveUses(a.id, 1, 1000)).toBeUndefined()
      })
    })
  })
}
