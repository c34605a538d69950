import {
  type DataKeyStatus,
  type KeyringEntry,
  type KeyringStore,
  KeyringStoreError,
  type NewKeyringEntry,
  newActiveEntry,
  type ReserveUsesOptions,
  reservable,
} from './store.js'

/**
 * The keyring in process memory: what a KeyManager uses without a `keyring`
 * option. Everything is lost on restart, and with it the ability to decrypt
 * every local ciphertext: fine for tests, never for stored data.
 *
 * @example
 * ```ts
 * const keyring = new MemoryKeyringStore()
 * const manager = new KeyManager({ providers: { local: new LocalKmsProvider() }, defaultProvider: 'local', defaultKeyId: 'app', keyring })
 * ```
 */
export class MemoryKeyringStore implements KeyringStore {
  readonly #entries = new Map<string, KeyringEntry>()

  async list(): Promise<KeyringEntry[]> {
    return [...this.#entries.values()].sort((a, b) => a.createdAt - b.createdAt)
  }

  async get(id: string): Promise<KeyringEntry | undefined> {
    return this.#entries.get(id)
  }

  async active(): Promise<KeyringEntry | undefined> {
    return this.#active()
  }

  // Every check-and-change below runs without an await in between: that is
  // what makes each method atomic for callers sharing this store.
  #active(): KeyringEntry | undefined {
    for (const e of this.#entries.values()) if (e.status === 'active') return e
    return undefined
  }

  async insertFirstActive(entry: NewKeyringEntry): Promise<KeyringEntry> {
    const current = this.#active()
    if (current !== undefined) return current
    const created = newActiveEntry(entry)
    this.#entries.set(entry.id, created)
    return created
  }

  async rotate(expectedActiveId: string, entry: NewKeyringEntry): Promise<KeyringEntry> {
    const current = this.#entries.get(expectedActiveId)
    if (current?.status !== 'active') {
      const active = this.#active()
      if (active !== undefined) return active
      const created = newActiveEntry(entry)
      this.#entries.set(entry.id, created)
      return created
    }
    this.#entries.set(current.id, { ...current, status: 'decrypt-only' })
    const created = newActiveEntry(entry)
    this.#entries.set(entry.id, created)
    return created
  }

  async reserveUses(
    id: string,
    count: number,
    limit: number,
    options?: ReserveUsesOptions,
  ): Promise<number | undefined> {
    const e = this.#entries.get(id)
    if (e === undefined || !reservable(e.status, options) || e.usesReserved + count > limit)
      return undefined
    const usesReserved = e.usesReserved + count
    this.#entries.set(id, { ...e, usesReserved })
    return usesReserved
  }

  async sealEntry(id: string, generation: number, mac: string): Promise<boolean> {
    const e = this.#entries.get(id)
    if (e === undefined || (e.mac ?? null) !== null) return false
    this.#entries.set(id, { ...e, generation, mac })
    return true
  }

  async setStatus(id: string, status: Exclude<DataKeyStatus, 'active'>): Promise<void> {
    // Activation only happens through insertFirstActive/rotate, which keep one active key.
    if ((status as DataKeyStatus) === 'active')
      throw new KeyringStoreError('setStatus never activates a key')
    const e = this.#entries.get(id)
    if (e !== undefined) this.#entries.set(id, { ...e, status })
  }
}
