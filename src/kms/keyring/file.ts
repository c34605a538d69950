import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { z } from 'zod'
import { SecurityError } from '../../errors.js'
import { parseOptions } from '../../internal/options.js'
import { writePrivateFile } from '../../internal/private-file.js'
import type { EncryptedDataJson } from '../models.js'
import {
  DATA_KEY_STATUSES,
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
 * Options of {@link FileKeyringStore}.
 *
 * @example
 * ```ts
 * const options = FileKeyringStoreOptionsSchema.parse({ path: '.data/keyring.json' })
 * ```
 */
export const FileKeyringStoreOptionsSchema = z
  .object({
    /**
     * Path of the JSON file. Created (mode 0600, its directory 0700) on the
     * first write or by `migrate()`.
     */
    path: z
      .string()
      .min(1)
      .refine((v) => !v.includes('\0'), 'must not contain a NUL character'),
  })
  .strict()

export type FileKeyringStoreOptions = z.input<typeof FileKeyringStoreOptionsSchema>

const FORMAT = 'fraiseql-keyring'

const EntrySchema = z
  .object({
    id: z.string().min(1),
    status: z.enum(DATA_KEY_STATUSES as [DataKeyStatus, ...DataKeyStatus[]]),
    wrappedKey: z.record(z.string(), z.unknown()),
    createdAt: z.number(),
    usesReserved: z.number(),
    // Absent in files written before row MACs: such entries are refused until sealed.
    generation: z.number().int().min(1).nullable().optional(),
    mac: z.string().nullable().optional(),
  })
  .strict()

const FileSchema = z
  .object({
    format: z.literal(FORMAT),
    version: z.literal(1),
    /** In insertion order, as MemoryKeyringStore keeps them. */
    entries: z.array(EntrySchema),
  })
  .strict()

/**
 * Operations on one file run one after another in this process, whichever
 * store instance issues them: each reads the file, decides, and replaces it
 * before the next starts, so two instances on one path never overwrite each
 * other's changes.
 */
const queues = new Map<string, Promise<unknown>>()

function serialize<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const run = (queues.get(key) ?? Promise.resolve()).then(fn)
  const tail = run.then(
    () => undefined,
    () => undefined,
  )
  queues.set(key, tail)
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key)
  })
  return run
}

/**
 * The keyring in a JSON file: one small file, no database. For a single
 * process only: instances in one process share a queue per path, but two
 * processes writing the same file would lose each other's changes (and the
 * use counters that bound each data key with them). Use SQLite or
 * PostgreSQL when several processes share a keyring.
 *
 * Every change replaces the file atomically: the new content is written to
 * a temporary file with a random name in the same directory (created
 * exclusively, mode 0600, no symlink followed), flushed to disk, and renamed
 * over the old one, so a crash leaves the old or the new keyring, never half
 * of one.
 *
 * @example
 * ```ts
 * import { FileKeyringStore, KeyManager } from 'fraiseql-security/kms'
 * const keyring = new FileKeyringStore({ path: '.data/keyring.json' })
 * const keys = new KeyManager({ providers, defaultProvider: 'local', defaultKeyId: 'app', keyring })
 * await keys.initialize()
 * ```
 */
export class FileKeyringStore implements KeyringStore {
  readonly #path: string

  constructor(options: FileKeyringStoreOptions) {
    const o = parseOptions('FileKeyringStore', FileKeyringStoreOptionsSchema, options)
    this.#path = resolve(o.path)
  }

  /** Creates the file (empty keyring) if missing, and checks an existing one parses. */
  async migrate(): Promise<void> {
    await this.#op('migrate', async () => {
      const entries = await this.#read()
      if (entries === undefined) await this.#write([])
    })
  }

  async list(): Promise<KeyringEntry[]> {
    const entries = await this.#op('list keys', () => this.#entries())
    // Array.prototype.sort is stable: equal times keep insertion order.
    return entries.sort((a, b) => a.createdAt - b.createdAt)
  }

  async get(id: string): Promise<KeyringEntry | undefined> {
    return this.#op('read a key', async () => (await this.#entries()).find((e) => e.id === id))
  }

  async active(): Promise<KeyringEntry | undefined> {
    return this.#op('read the active key', async () => activeOf(await this.#entries()))
  }

  async insertFirstActive(entry: NewKeyringEntry): Promise<KeyringEntry> {
    return this.#op('add the first key', async () => {
      const entries = await this.#entries()
      const current = activeOf(entries)
      if (current !== undefined) return current
      const created = newActiveEntry(entry)
      await this.#write(upsert(entries, created))
      return created
    })
  }

  async rotate(expectedActiveId: string, entry: NewKeyringEntry): Promise<KeyringEntry> {
    return this.#op('rotate keys', async () => {
      const entries = await this.#entries()
      const expected = entries.find((e) => e.id === expectedActiveId)
      if (expected?.status !== 'active') {
        const current = activeOf(entries)
        if (current !== undefined) return current
        const created = newActiveEntry(entry)
        await this.#write(upsert(entries, created))
        return created
      }
      const created = newActiveEntry(entry)
      await this.#write(upsert(upsert(entries, { ...expected, status: 'decrypt-only' }), created))
      return created
    })
  }

  async reserveUses(
    id: string,
    count: number,
    limit: number,
    options?: ReserveUsesOptions,
  ): Promise<number | undefined> {
    return this.#op('reserve uses', async () => {
      const entries = await this.#entries()
      const e = entries.find((x) => x.id === id)
      if (e === undefined || !reservable(e.status, options) || e.usesReserved + count > limit)
        return undefined
      const usesReserved = e.usesReserved + count
      await this.#write(upsert(entries, { ...e, usesReserved }))
      return usesReserved
    })
  }

  async setStatus(id: string, status: Exclude<DataKeyStatus, 'active'>): Promise<void> {
    // Precondition: activation happens only through insertFirstActive and rotate.
    if (status !== 'decrypt-only' && status !== 'retired') {
      throw new KeyringStoreError('setStatus only sets decrypt-only or retired')
    }
    await this.#op('change a key status', async () => {
      const entries = await this.#entries()
      const e = entries.find((x) => x.id === id)
      if (e !== undefined) await this.#write(upsert(entries, { ...e, status }))
    })
  }

  async sealEntry(id: string, generation: number, mac: string): Promise<boolean> {
    return this.#op('seal a key', async () => {
      const entries = await this.#entries()
      const e = entries.find((x) => x.id === id)
      if (e === undefined || (e.mac ?? null) !== null) return false
      await this.#write(upsert(entries, { ...e, generation, mac }))
      return true
    })
  }

  /** Queues `fn` behind every other operation on this path; maps failures to KeyringStoreError. */
  #op<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return serialize(this.#path, fn).catch((err: unknown) => {
      if (err instanceof SecurityError) throw err
      const code = (err as { code?: unknown } | null)?.code
      throw new KeyringStoreError(`Keyring store could not ${what}`, {
        cause: typeof code === 'string' ? { service: 'file', code } : { service: 'file' },
      })
    })
  }

  async #entries(): Promise<KeyringEntry[]> {
    return (await this.#read()) ?? []
  }

  /** The file's entries, or undefined when there is no file yet. */
  async #read(): Promise<KeyringEntry[] | undefined> {
    let text: string
    try {
      text = await readFile(this.#path, 'utf8')
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ENOENT') return undefined
      throw err
    }
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
    const parsed = FileSchema.safeParse(json)
    // The message never quotes the file: it holds wrapped keys.
    if (!parsed.success) throw new KeyringStoreError('Keyring file is not a valid keyring')
    return parsed.data.entries.map((e) => ({
      ...e,
      wrappedKey: e.wrappedKey as unknown as EncryptedDataJson,
      generation: e.generation ?? null,
      mac: e.mac ?? null,
    }))
  }

  async #write(entries: readonly KeyringEntry[]): Promise<void> {
    await writePrivateFile(
      this.#path,
      `${JSON.stringify({ format: FORMAT, version: 1, entries }, null, 2)}\n`,
    )
  }
}

function activeOf(entries: readonly KeyringEntry[]): KeyringEntry | undefined {
  return entries.find((e) => e.status === 'active')
}

/** Replaces the entry with the same id in place (keeping its position), or appends. */
function upsert(entries: readonly KeyringEntry[], entry: KeyringEntry): KeyringEntry[] {
  const i = entries.findIndex((e) => e.id === entry.id)
  return i === -1 ? [...entries, entry] : entries.map((e, j) => (j === i ? entry : e))
}
