/**
 * `LocalKmsProvider`: AES-256-GCM master keys held by this process, for
 * development and tests. Keys come from an option, from a key file (created
 * with mode 0600 when missing, rewritten atomically, refused when another
 * user could read or replace it) or are generated in memory. Versioned:
 * rotation adds a version, older ones still decrypt.
 */

import { z } from 'zod'
import { ConfigError } from '../../errors.js'
import { gcmOpen, gcmSeal } from '../../internal/aead.js'
import { canonicalJson } from '../../internal/canonical-json.js'
import { inProduction } from '../../internal/environment.js'
import { type Logger, stderrLogger } from '../../internal/logger.js'
import {
  LoggerOptionSchema,
  parseOptions,
  RandomBytesOptionSchema,
} from '../../internal/options.js'
import {
  FileLockError,
  readPrivateFileSync,
  type UnsafeFile,
  withFileLockSync,
  writePrivateFileSync,
} from '../../internal/private-file.js'
import { type RandomBytes, secureRandomBytes } from '../../internal/random.js'
import {
  BaseKmsProvider,
  BaseKmsProviderOptionsSchema,
  baseOptionsOf,
  type DataKeyResult,
  type EncryptResult,
  type KeyDescription,
} from '../base-provider.js'
import { DecryptionError, InsecureKeyFileError, KeyNotFoundError, KmsError } from '../errors.js'
import type { EncryptionContext, RotationPolicy } from '../models.js'

const FORMAT = 0x01
const NONCE = 12
const TAG = 16
const HEADER = 1 + 4
export const LOCAL_ALGORITHM = 'AES_256_GCM'

const keyBytes = z
  .union([
    z.instanceof(Uint8Array),
    z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'must be 32 bytes in base64'),
  ])
  .transform((v) => (typeof v === 'string' ? Buffer.from(v, 'base64') : Buffer.from(v)))
  .refine((b) => b.length === 32, 'must be 32 bytes (AES-256)')

export const LocalKmsProviderOptionsSchema = BaseKmsProviderOptionsSchema.extend({
  /** Master keys by id (32 bytes or base64), each as its version 1. */
  keys: z.record(z.string().regex(/^[\x21-\x7e]{1,256}$/), keyBytes).optional(),
  /**
   * JSON file holding the master keys. Created with mode 0600 (its directory
   * 0700) when missing; every change goes to a temporary file with a random
   * name (created exclusively, mode 0600, no symlink followed) renamed over
   * it. An existing file that is a symlink, not a regular file, or has any
   * group or other permission bit is refused (`ERR_KMS_KEY_FILE_INSECURE`).
   * Processes sharing the file change it under `<keyFile>.lock`, each
   * merging what the others wrote. @default none: keys live in memory only
   */
  keyFile: z
    .string()
    .min(1)
    .refine((v) => !v.includes('\0'), 'must not contain a NUL character')
    .optional(),
  /**
   * Like Vault's upsert: `encrypt`/`generateDataKey` under an unknown key id
   * create that key.
   * @default true
   */
  autoCreateKeys: z.boolean().default(true),
  /**
   * This provider keeps master keys in process memory and on local disk. With
   * `NODE_ENV=production` (any case) it refuses to start unless this is
   * true, and then warns once.
   * @default false
   */
  allowInProduction: z.boolean().default(false),
  /** Source of key material and nonces. @default crypto.randomBytes */
  randomBytes: RandomBytesOptionSchema.optional(),
  /**
   * Where the start-up warning goes: once per logger, "for development"
   * outside production, "keys on this machine" with `allowInProduction`.
   * @default stderr
   */
  logger: LoggerOptionSchema.optional(),
}).strict()

export type LocalKmsProviderOptions = z.input<typeof LocalKmsProviderOptionsSchema>

interface LocalKey {
  createdAt: Date
  primary: number
  versions: Map<number, { key: Buffer; createdAt: Date }>
}

const KeyFileSchema = z.object({
  format: z.literal('fraiseql-local-kms'),
  version: z.literal(1),
  keys: z.record(
    z.string(),
    z.object({
      createdAt: z.iso.datetime(),
      primary: z.number().int().min(1),
      versions: z.record(
        z.string().regex(/^[1-9][0-9]*$/),
        z.object({ key: z.string(), createdAt: z.iso.datetime() }),
      ),
    }),
  ),
})

/** Loggers that heard the start-up warning: one line per logger, however many providers. */
const warned = new WeakSet<Logger>()

/** What to say about an unsafe key file, and how to fix it. */
function unsafeKeyFile(file: string, problem: UnsafeFile): InsecureKeyFileError {
  switch (problem.kind) {
    case 'symlink':
      return new InsecureKeyFileError(
        file,
        'is a symbolic link (whoever controls its target chooses the master keys)',
        'set keyFile to the real file',
      )
    case 'not-a-file':
      return new InsecureKeyFileError(file, 'is not a regular file', 'set keyFile to a file path')
    case 'mode':
      return new InsecureKeyFileError(
        file,
        `has mode 0${problem.mode.toString(8).padStart(3, '0')}: other users can read or change the master keys`,
        `run \`chmod 600 ${file}\` (and check who may have read it)`,
      )
  }
}

/**
 * @example
 * ```ts
 * import { LocalKmsProvider } from 'fraiseql-security/kms'
 * const kms = new LocalKmsProvider({ keyFile: '.data/master-keys.json' })
 * const sealed = await kms.encrypt('secret', 'app', { tenant: 't1' })
 * ```
 */
export class LocalKmsProvider extends BaseKmsProvider {
  protected override readonly maxPlaintextBytes = 16 * 1024 * 1024
  readonly #keys = new Map<string, LocalKey>()
  readonly #keyFile: string | undefined
  readonly #autoCreate: boolean
  readonly #random: RandomBytes

  constructor(options?: LocalKmsProviderOptions) {
    const o = parseOptions('LocalKmsProvider', LocalKmsProviderOptionsSchema, options ?? {})
    super('local', baseOptionsOf(o))
    const production = inProduction()
    // Precondition: in production only when the caller says so, in writing.
    if (production && !o.allowInProduction) {
      throw new ConfigError('LocalKmsProvider', [
        { path: ['allowInProduction'], message: 'must be true to run with NODE_ENV=production' },
      ])
    }
    const logger = o.logger ?? stderrLogger
    if (!warned.has(logger)) {
      warned.add(logger)
      logger.warn(
        { provider: 'local' },
        production
          ? 'LocalKmsProvider keeps master keys on this machine: use Vault, AWS KMS or Cloud KMS in production'
          : 'LocalKmsProvider is for development: master keys live in this process and its key file; use Vault, AWS KMS or Cloud KMS in production',
      )
    }
    this.#autoCreate = o.autoCreateKeys
    this.#random = o.randomBytes ?? secureRandomBytes
    this.#keyFile = o.keyFile
    const found = o.keyFile === undefined ? undefined : this.#read(o.keyFile)
    if (found !== undefined) this.#merge(found)
    const given = Object.entries(o.keys ?? {})
    const addGiven = () => {
      const now = new Date(this.clock())
      const added: string[] = []
      for (const [id, key] of given) {
        if (this.#keys.has(id)) continue
        this.#keys.set(id, {
          createdAt: now,
          primary: 1,
          versions: new Map([[1, { key, createdAt: now }]]),
        })
        added.push(id)
      }
      return {
        result: undefined,
        undo: () => {
          for (const id of added) this.#keys.delete(id)
        },
      }
    }
    // A missing key file is created now; given keys join the file's.
    if (o.keyFile === undefined) addGiven()
    else if (found === undefined || given.length > 0) this.#change(addGiven)
  }

  /** Key ids held. */
  keyIds(): string[] {
    return [...this.#keys.keys()]
  }

  protected async doEncrypt(
    plaintext: Uint8Array,
    keyId: string,
    context: EncryptionContext,
  ): Promise<EncryptResult> {
    const key = this.#key(keyId, this.#autoCreate)
    return { ciphertext: this.#seal(key, keyId, plaintext, context), algorithm: LOCAL_ALGORITHM }
  }

  protected async doDecrypt(
    ciphertext: Uint8Array,
    keyId: string,
    context: EncryptionContext,
  ): Promise<Uint8Array> {
    const key = this.#key(keyId, false)
    if (ciphertext.length < HEADER + NONCE + TAG || ciphertext[0] !== FORMAT)
      throw new DecryptionError({ provider: this.name })
    const buf = Buffer.from(ciphertext)
    const version = buf.readUInt32BE(1)
    // A version another process rotated in since this one read the key file.
    if (!key.versions.has(version)) this.#refresh()
    const material = key.versions.get(version)
    if (material === undefined) throw new DecryptionError({ provider: this.name })
    const nonce = buf.subarray(HEADER, HEADER + NONCE)
    const opened = gcmOpen(
      material.key,
      nonce,
      buf.subarray(HEADER + NONCE),
      aad(keyId, buf.subarray(0, HEADER), context),
    )
    if (opened === undefined) throw new DecryptionError({ provider: this.name })
    return new Uint8Array(opened)
  }

  protected async doGenerateDataKey(
    keyId: string,
    context: EncryptionContext,
  ): Promise<DataKeyResult> {
    const key = this.#key(keyId, this.#autoCreate)
    const plaintextKey = Buffer.alloc(32)
    plaintextKey.set(this.#random(32))
    return {
      plaintextKey,
      encryptedKey: this.#seal(key, keyId, plaintextKey, context),
      algorithm: LOCAL_ALGORITHM,
    }
  }

  protected async doRotateKey(keyId: string): Promise<KeyDescription> {
    this.#key(keyId, false)
    return this.#change(() => {
      // As the key file holds it now: another process may have rotated it.
      const key = this.#keys.get(keyId)!
      const previous = key.primary
      const next = Math.max(...key.versions.keys()) + 1
      key.versions.set(next, { key: this.#material(), createdAt: new Date(this.clock()) })
      key.primary = next
      return {
        result: this.#describe(keyId, key),
        undo: () => {
          key.versions.get(next)?.key.fill(0)
          key.versions.delete(next)
          key.primary = previous
        },
      }
    })
  }

  protected async doGetKeyInfo(keyId: string): Promise<KeyDescription> {
    return this.#describe(keyId, this.#key(keyId, false))
  }

  protected async doGetRotationPolicy(keyId: string): Promise<RotationPolicy> {
    const key = this.#key(keyId, false)
    const last = key.versions.get(key.primary)?.createdAt ?? key.createdAt
    // Local keys rotate only when asked to.
    return {
      enabled: false,
      rotationPeriodDays: null,
      lastRotation: key.primary > 1 ? last : null,
      nextRotation: null,
    }
  }

  #describe(keyId: string, key: LocalKey): KeyDescription {
    return {
      keyId,
      state: 'enabled',
      createdAt: key.createdAt,
      currentVersion: key.primary,
      versions: key.versions.size,
    }
  }

  #key(keyId: string, create: boolean): LocalKey {
    const held = this.#keys.get(keyId)
    if (held !== undefined) return held
    // Another process sharing the key file may have created it since.
    this.#refresh()
    const found = this.#keys.get(keyId)
    if (found !== undefined) return found
    if (!create) throw new KeyNotFoundError({ provider: this.name })
    return this.#change(() => {
      const current = this.#keys.get(keyId)
      if (current !== undefined) return { result: current, undo: () => {} }
      const now = new Date(this.clock())
      const key: LocalKey = {
        createdAt: now,
        primary: 1,
        versions: new Map([[1, { key: this.#material(), createdAt: now }]]),
      }
      this.#keys.set(keyId, key)
      return {
        result: key,
        undo: () => {
          key.versions.get(1)?.key.fill(0)
          this.#keys.delete(keyId)
        },
      }
    })
  }

  #material(): Buffer {
    const key = Buffer.alloc(32)
    key.set(this.#random(32))
    return key
  }

  /** `0x01 | version (u32 BE) | nonce (12) | ciphertext | tag (16)`; header, key id and context are the AAD. */
  #seal(
    key: LocalKey,
    keyId: string,
    plaintext: Uint8Array,
    context: EncryptionContext,
  ): Uint8Array {
    const material = key.versions.get(key.primary)
    if (material === undefined)
      throw new KmsError('Local key has no primary version', { provider: this.name })
    const header = Buffer.alloc(HEADER)
    header[0] = FORMAT
    header.writeUInt32BE(key.primary, 1)
    const nonce = Buffer.from(this.#random(NONCE))
    const sealed = gcmSeal(material.key, nonce, plaintext, aad(keyId, header, context))
    return new Uint8Array(Buffer.concat([header, nonce, sealed]))
  }

  /**
   * The keys `file` holds, or `undefined` when there is none. An unsafe file
   * (a symlink, another user's, readable by others) is refused.
   */
  #read(file: string): Map<string, LocalKey> | undefined {
    const read = readPrivateFileSync(file)
    if (read.kind === 'missing') return undefined
    if (read.kind === 'unsafe') throw unsafeKeyFile(file, read.problem)
    let parsed: z.output<typeof KeyFileSchema>
    try {
      parsed = KeyFileSchema.parse(JSON.parse(read.text))
    } catch {
      throw new ConfigError('LocalKmsProvider', [
        { path: ['keyFile'], message: 'is not a fraiseql-local-kms key file' },
      ])
    }
    const keys = new Map<string, LocalKey>()
    for (const [id, k] of Object.entries(parsed.keys)) {
      const versions = new Map<number, { key: Buffer; createdAt: Date }>()
      for (const [v, entry] of Object.entries(k.versions)) {
        const key = Buffer.alloc(32)
        const raw = Buffer.from(entry.key, 'base64')
        if (raw.length !== 32)
          throw new ConfigError('LocalKmsProvider', [
            { path: ['keyFile'], message: 'holds a key that is not 32 bytes' },
          ])
        key.set(raw)
        raw.fill(0)
        versions.set(Number(v), { key, createdAt: new Date(entry.createdAt) })
      }
      keys.set(id, { createdAt: new Date(k.createdAt), primary: k.primary, versions })
    }
    return keys
  }

  /**
   * Adds what another process wrote to the key file: keys and versions this
   * one does not hold, and a newer primary version. A version held here
   * with other material means the file was written past the lock: refused
   * rather than lose either.
   */
  #merge(found: Map<string, LocalKey>): void {
    for (const [id, theirs] of found) {
      const ours = this.#keys.get(id)
      if (ours === undefined) {
        this.#keys.set(id, theirs)
        continue
      }
      for (const [v, m] of theirs.versions) {
        const mine = ours.versions.get(v)
        if (mine === undefined) {
          ours.versions.set(v, m)
          continue
        }
        const same = mine.key.equals(m.key)
        m.key.fill(0)
        if (!same) {
          throw new KmsError(
            'The key file holds other material for a key version this provider uses (written without the lock?)',
            { provider: this.name },
          )
        }
      }
      if (theirs.primary > ours.primary) ours.primary = theirs.primary
    }
  }

  /** Merges the key file as it is now (no lock: it is only ever replaced whole). */
  #refresh(): void {
    const file = this.#keyFile
    if (file === undefined) return
    const found = this.#read(file)
    if (found !== undefined) this.#merge(found)
  }

  /**
   * Applies `change` to the keys as the key file holds them and writes the
   * result, holding the file's lock (so two processes never drop each
   * other's keys); when the write fails, `undo` takes the change back, so no
   * key or version is used that no file holds.
   */
  #change<T>(change: () => { result: T; undo: () => void }): T {
    const file = this.#keyFile
    if (file === undefined) return change().result
    try {
      return withFileLockSync(file, () => {
        this.#refresh()
        const { result, undo } = change()
        try {
          this.#save()
        } catch (err) {
          undo()
          throw err
        }
        return result
      })
    } catch (err) {
      if (!(err instanceof FileLockError)) throw err
      if (err.reason === 'unsafe') {
        throw new InsecureKeyFileError(
          err.lock,
          'is not a lock file (a symlink or another kind of file was planted at its name)',
          'remove it',
        )
      }
      throw new KmsError(
        `The key file's lock (${err.lock}) stayed held by another process; remove it if no process is using the key file`,
        { provider: this.name },
      )
    }
  }

  /** Writes the key file atomically and privately (see internal/private-file.ts). */
  #save(): void {
    const file = this.#keyFile
    if (file === undefined) return
    const keys: Record<string, unknown> = {}
    for (const [id, k] of this.#keys) {
      keys[id] = {
        createdAt: k.createdAt.toISOString(),
        primary: k.primary,
        versions: Object.fromEntries(
          [...k.versions].map(([v, m]) => [
            String(v),
            { key: m.key.toString('base64'), createdAt: m.createdAt.toISOString() },
          ]),
        ),
      }
    }
    writePrivateFileSync(
      file,
      JSON.stringify({ format: 'fraiseql-local-kms', version: 1, keys }, null, 2),
    )
  }
}

function aad(keyId: string, header: Uint8Array, context: EncryptionContext): Buffer {
  return Buffer.concat([
    Buffer.from(header),
    Buffer.from(`|${keyId}|${canonicalJson(context)}`, 'utf8'),
  ])
}
