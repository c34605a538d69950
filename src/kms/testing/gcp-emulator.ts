/**
 * A Google Cloud KMS emulator that speaks the real gRPC protocol on
 * 127.0.0.1: it loads the `.proto` files `@google-cloud/kms` ships and serves
 * `google.cloud.kms.v1.KeyManagementService` with `@grpc/grpc-js`, so the real
 * client library talks to it unchanged. Real AES-256-GCM per key version,
 * the additional authenticated data bound, CRC32C fields filled in every
 * response and checked on every request, errors as gRPC status codes with the
 * real service's wording.
 *
 * Served: CreateKeyRing, CreateCryptoKey, GetCryptoKey, GetCryptoKeyVersion,
 * ListCryptoKeyVersions, CreateCryptoKeyVersion, UpdateCryptoKeyPrimaryVersion,
 * UpdateCryptoKey (rotation_period, next_rotation_time, labels), Encrypt,
 * Decrypt. Other methods answer UNIMPLEMENTED, as grpc-js does for a missing
 * handler. Keys are SOFTWARE or HSM; HSM keys take at most 8 KiB of plaintext
 * and additional authenticated data together (service.proto, EncryptRequest).
 *
 * This file holds the server and the KMS methods; gRPC status answers
 * (`./gcp/status.ts`), request message fields (`./gcp/messages.ts`) and
 * locating the `.proto` files (`./gcp/protos.ts`) stand apart.
 */
// Type-only, for internal use: no grpc type appears in an exported declaration.
import type * as Grpc from '@grpc/grpc-js'
import type * as ProtoLoader from '@grpc/proto-loader'
import { z } from 'zod'
import { gcmOpen, gcmSeal } from '../../internal/aead.js'
import { type Clock, systemClock } from '../../internal/clock.js'
import { crc32c } from '../../internal/crc32c.js'
import { importOptional } from '../../internal/optional-import.js'
import { ClockOptionSchema, parseOptions, RandomBytesOptionSchema } from '../../internal/options.js'
import { type RandomBytes, secureRandomBytes } from '../../internal/random.js'
import { CallCounter, FaultInjector, type KmsEmulator } from './faults.js'
import {
  bytes,
  int64Value,
  type Message,
  millisOf,
  msg,
  secondsOf,
  str,
  timestamp,
} from './gcp/messages.js'
import { protoDirectories } from './gcp/protos.js'
import {
  ALREADY_EXISTS,
  FAILED_PRECONDITION,
  INTERNAL,
  INVALID_ARGUMENT,
  NOT_FOUND,
  RESOURCE_EXHAUSTED,
  Status,
  statusDetails,
  UNAVAILABLE,
} from './gcp/status.js'

const FEATURE = 'startGcpKmsEmulator'
const SERVICE = 'google.cloud.kms.v1.KeyManagementService'

/** Cloud KMS limits: plaintext and additional authenticated data up to 64 KiB. */
const MAX_DATA = 65_536
/** HSM keys: plaintext and additional authenticated data together up to 8 KiB. */
const MAX_HSM_DATA = 8192
const MIN_ROTATION_SECONDS = 86_400
const MAX_ROTATION_SECONDS = 876_000 * 3600
const DESTROY_SCHEDULED_SECONDS = 30 * 86_400
const REQUEST_LOG_LIMIT = 1000

const RESOURCE_ID = /^[A-Za-z0-9_-]{1,63}$/
const LOCATION_NAME = /^projects\/[^/]+\/locations\/[^/]+$/
const KEY_RING_NAME = /^(projects\/[^/]+\/locations\/[^/]+)\/keyRings\/([^/]+)$/
const KEY_NAME = /^(projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+)\/cryptoKeys\/([^/]+)$/
const VERSION_NAME =
  /^(projects\/[^/]+\/locations\/[^/]+\/keyRings\/[^/]+\/cryptoKeys\/[^/]+)\/cryptoKeyVersions\/([^/]+)$/

/** The emulator's opaque ciphertext: `0x47 | version (u32 BE) | nonce (12) | body | tag (16)`. */
const MAGIC = 0x47
const HEADER = 5
const NONCE = 12
const TAG = 16

/** Where a key's versions live: Cloud KMS software keys or Cloud HSM. */
export type GcpEmulatorProtectionLevel = 'SOFTWARE' | 'HSM'

/** Options of {@link GcpKmsEmulator.createCryptoKey}. */
export interface GcpEmulatorKeyOptions {
  /** @default the emulator's default key ring */
  keyRingId?: string
  rotationPeriodSeconds?: number
  nextRotationTime?: Date
  /** @default 'SOFTWARE' */
  protectionLevel?: GcpEmulatorProtectionLevel
}

/** Version states the emulator's helpers can set. */
export type GcpEmulatorVersionState = 'ENABLED' | 'DISABLED' | 'DESTROY_SCHEDULED' | 'DESTROYED'

type VersionState = GcpEmulatorVersionState | 'PENDING_GENERATION'

/**
 * Integrity faults, applied to the next Encrypt/Decrypt requests:
 * - `'response-checksum'`: the checksum in the response (`ciphertext_crc32c`
 *   or `plaintext_crc32c`) is wrong, as if the response were corrupted on the way back;
 * - `'request-data'`: one bit of the received plaintext/ciphertext is
 *   flipped before checking, as if corrupted on the way in (the request's
 *   checksum then fails: INVALID_ARGUMENT);
 * - `'request-checksum-dropped'`: the request's checksums are ignored, as if
 *   not delivered (Encrypt then answers `verified_*: false`).
 */
export type GcpCorruption = 'response-checksum' | 'request-data' | 'request-checksum-dropped'

/** One Encrypt or Decrypt the emulator received (no plaintext kept). */
export interface GcpEmulatorRequest {
  readonly method: 'Encrypt' | 'Decrypt'
  readonly name: string
  /** The additional authenticated data as received; undefined when none was sent. */
  readonly additionalAuthenticatedData: Buffer | undefined
}

export const GcpKmsEmulatorOptionsSchema = z
  .object({
    /** Project of the default key ring. @default 'test-project' */
    projectId: z
      .string()
      .regex(/^[^/\s]{1,100}$/)
      .default('test-project'),
    /** Location of the default key ring. @default 'global' */
    locationId: z
      .string()
      .regex(/^[^/\s]{1,63}$/)
      .default('global'),
    /** The default key ring, created at start. @default 'test-ring' */
    keyRingId: z.string().regex(RESOURCE_ID).default('test-ring'),
    /** CryptoKey ids created in the default key ring at start, each with version 1 primary. @default [] */
    keys: z.array(z.string().regex(RESOURCE_ID)).default([]),
    /**
     * How many GetCryptoKeyVersion reads a version made by
     * CreateCryptoKeyVersion stays PENDING_GENERATION, as HSM versions do.
     * @default 0
     */
    pendingGenerationReads: z.number().int().min(0).max(100).default(0),
    /** Clock for create times and scheduled rotations. @default Date.now */
    clock: ClockOptionSchema.optional(),
    /** Source of key material and nonces. @default crypto.randomBytes */
    randomBytes: RandomBytesOptionSchema.optional(),
  })
  .strict()

export type GcpKmsEmulatorOptions = z.input<typeof GcpKmsEmulatorOptionsSchema>

/** What {@link startGcpKmsEmulator} resolves to. */
export interface GcpKmsEmulator extends KmsEmulator {
  /** Always `127.0.0.1`. */
  readonly host: string
  readonly port: number
  readonly projectId: string
  readonly locationId: string
  readonly keyRingId: string
  /** The last Encrypt/Decrypt requests received (at most 1000), oldest first. */
  readonly requests: readonly GcpEmulatorRequest[]
  /** Options for `GcpKmsProvider` that point at this emulator (plaintext gRPC, no credentials). */
  providerOptions(): {
    projectId: string
    locationId: string
    keyRingId: string
    apiEndpoint: string
    port: number
    insecure: true
  }
  /** `projects/<p>/locations/<l>/keyRings/<ring>`. */
  keyRingName(keyRingId?: string): string
  /** `projects/<p>/locations/<l>/keyRings/<ring>/cryptoKeys/<keyId>`. */
  cryptoKeyName(keyId: string, keyRingId?: string): string
  /** Creates a key ring in-process (not counted as a call); idempotent. Returns its name. */
  createKeyRing(keyRingId: string): string
  /**
   * Creates a symmetric key with version 1 primary, in-process (not counted).
   * Creates the key ring when missing. Returns the key's full name.
   */
  createCryptoKey(keyId: string, options?: GcpEmulatorKeyOptions): string
  /** The primary version number of a key (full name), or null. */
  primaryVersion(keyName: string): number | null
  /** Sets a version's state; DESTROYED also erases its key material. */
  setVersionState(keyName: string, version: number, state: GcpEmulatorVersionState): void
  /** Disables a version (the primary when omitted): using it then fails with FAILED_PRECONDITION. */
  disableVersion(keyName: string, version?: number): void
  /** The next `count` Encrypt/Decrypt requests suffer `kind` (0 clears it). */
  corruptNext(kind: GcpCorruption, count?: number): this
}

interface Version {
  readonly id: number
  state: VersionState
  material: Buffer
  readonly createTime: number
  generateTime: number | undefined
  destroyTime: number | undefined
  pendingReads: number
}

interface CryptoKey {
  readonly name: string
  readonly createTime: number
  primary: number | null
  readonly versions: Map<number, Version>
  rotationPeriodSeconds: number | undefined
  nextRotationTime: number | undefined
  labels: Record<string, string>
  protectionLevel: GcpEmulatorProtectionLevel
}

/**
 * Starts a Cloud KMS emulator on 127.0.0.1 (a free port). Needs the optional
 * peers `@grpc/grpc-js`, `@grpc/proto-loader` and `@google-cloud/kms` (for
 * its `.proto` files).
 *
 * @example
 * ```ts
 * import { startGcpKmsEmulator } from 'fraiseql-security/kms/testing'
 * import { GcpKmsProvider } from 'fraiseql-security/kms'
 * const emulator = await startGcpKmsEmulator({ keys: ['app'] })
 * const kms = new GcpKmsProvider(emulator.providerOptions())
 * await kms.encrypt('secret', 'app')
 * emulator.faults.failNext(1, 'unavailable') // the next request answers UNAVAILABLE
 * await kms.close()
 * await emulator.close()
 * ```
 */
export async function startGcpKmsEmulator(
  options?: GcpKmsEmulatorOptions,
): Promise<GcpKmsEmulator> {
  const o = parseOptions('startGcpKmsEmulator', GcpKmsEmulatorOptionsSchema, options ?? {})
  const includeDirs = protoDirectories()
  const grpcModule = await importOptional<typeof Grpc & { default?: typeof Grpc }>(
    '@grpc/grpc-js',
    FEATURE,
  )
  const loaderModule = await importOptional<typeof ProtoLoader & { default?: typeof ProtoLoader }>(
    '@grpc/proto-loader',
    FEATURE,
  )
  // The CommonJS namespace: `default` is module.exports whatever the interop.
  const grpc = grpcModule.default ?? grpcModule
  const loader = loaderModule.default ?? loaderModule
  const definition = loader.loadSync(
    ['google/cloud/kms/v1/service.proto', 'google/cloud/kms/v1/resources.proto'],
    // As the wire is: snake_case fields, int64 as decimal strings, enums by name,
    // and absent fields left absent (a checksum's presence is meaningful).
    { includeDirs, keepCase: true, longs: String, enums: String, defaults: false, oneofs: true },
  )
  const service = definition[SERVICE] as Grpc.ServiceDefinition | undefined
  if (service === undefined)
    throw new Error(`${SERVICE} is missing from the @google-cloud/kms protos`)
  const emulator = new Emulator(o, grpc)
  await emulator.listen(service)
  return emulator
}

class Emulator implements GcpKmsEmulator {
  readonly calls = new CallCounter()
  readonly faults = new FaultInjector()
  readonly host = '127.0.0.1'
  port = 0
  readonly projectId: string
  readonly locationId: string
  readonly keyRingId: string
  readonly requests: GcpEmulatorRequest[] = []
  readonly #grpc: typeof Grpc
  readonly #server: Grpc.Server
  readonly #clock: Clock
  readonly #random: RandomBytes
  readonly #pendingReads: number
  readonly #rings = new Map<string, number>()
  readonly #keys = new Map<string, CryptoKey>()
  readonly #corruption: Record<GcpCorruption, number> = {
    'response-checksum': 0,
    'request-data': 0,
    'request-checksum-dropped': 0,
  }
  readonly #waits = new Set<() => void>()
  #closed = false

  constructor(o: z.output<typeof GcpKmsEmulatorOptionsSchema>, grpc: typeof Grpc) {
    this.#grpc = grpc
    this.#server = new grpc.Server()
    this.#clock = o.clock ?? systemClock
    this.#random = o.randomBytes ?? secureRandomBytes
    this.#pendingReads = o.pendingGenerationReads
    this.projectId = o.projectId
    this.locationId = o.locationId
    this.keyRingId = o.keyRingId
    this.createKeyRing(o.keyRingId)
    for (const id of o.keys) this.createCryptoKey(id)
  }

  async listen(service: Grpc.ServiceDefinition): Promise<void> {
    const handlers: Record<string, (request: Message) => Message> = {
      CreateKeyRing: (r) => this.#createKeyRing(r),
      CreateCryptoKey: (r) => this.#createCryptoKey(r),
      GetCryptoKey: (r) => this.#keyMessage(this.#key(str(r.name))),
      GetCryptoKeyVersion: (r) => this.#getVersion(r),
      ListCryptoKeyVersions: (r) => this.#listVersions(r),
      CreateCryptoKeyVersion: (r) => this.#createVersion(r),
      UpdateCryptoKeyPrimaryVersion: (r) => this.#updatePrimary(r),
      UpdateCryptoKey: (r) => this.#updateCryptoKey(r),
      Encrypt: (r) => this.#encrypt(r),
      Decrypt: (r) => this.#decrypt(r),
    }
    const implementation: Grpc.UntypedServiceImplementation = {}
    for (const [method, handle] of Object.entries(handlers))
      implementation[method] = this.#unary(method, handle)
    this.#server.addService(service, implementation)
    this.port = await new Promise<number>((resolve, reject) =>
      this.#server.bindAsync(
        '127.0.0.1:0',
        this.#grpc.ServerCredentials.createInsecure(),
        (err, port) => (err ? reject(err) : resolve(port)),
      ),
    )
  }

  async close(): Promise<void> {
    this.#closed = true
    for (const wake of this.#waits) wake()
    this.#waits.clear()
    this.#server.forceShutdown()
  }

  providerOptions() {
    return {
      projectId: this.projectId,
      locationId: this.locationId,
      keyRingId: this.keyRingId,
      apiEndpoint: this.host,
      port: this.port,
      insecure: true as const,
    }
  }

  keyRingName(keyRingId: string = this.keyRingId): string {
    return `projects/${this.projectId}/locations/${this.locationId}/keyRings/${keyRingId}`
  }

  cryptoKeyName(keyId: string, keyRingId: string = this.keyRingId): string {
    return `${this.keyRingName(keyRingId)}/cryptoKeys/${keyId}`
  }

  createKeyRing(keyRingId: string): string {
    const name = this.keyRingName(keyRingId)
    if (!this.#rings.has(name)) this.#rings.set(name, this.#clock())
    return name
  }

  createCryptoKey(keyId: string, options: GcpEmulatorKeyOptions = {}): string {
    const ring = this.createKeyRing(options.keyRingId ?? this.keyRingId)
    const name = `${ring}/cryptoKeys/${keyId}`
    if (!RESOURCE_ID.test(keyId)) throw new TypeError('CryptoKey id must match [A-Za-z0-9_-]{1,63}')
    if (this.#keys.has(name)) throw new TypeError(`CryptoKey ${name} already exists`)
    const key = this.#newKey(name, false)
    key.protectionLevel = options.protectionLevel ?? 'SOFTWARE'
    key.rotationPeriodSeconds = options.rotationPeriodSeconds
    key.nextRotationTime = options.nextRotationTime?.getTime()
    this.#keys.set(name, key)
    return name
  }

  primaryVersion(keyName: string): number | null {
    return this.#keys.get(keyName)?.primary ?? null
  }

  setVersionState(keyName: string, version: number, state: GcpEmulatorVersionState): void {
    const v = this.#keys.get(keyName)?.versions.get(version)
    if (v === undefined) throw new TypeError(`No version ${version} of ${keyName}`)
    v.state = state
    if (state === 'DESTROYED') {
      v.material.fill(0)
      v.destroyTime = this.#clock()
    }
  }

  disableVersion(keyName: string, version?: number): void {
    const id = version ?? this.primaryVersion(keyName)
    if (id === null) throw new TypeError(`${keyName} has no primary version`)
    this.setVersionState(keyName, id, 'DISABLED')
  }

  corruptNext(kind: GcpCorruption, count = 1): this {
    this.#corruption[kind] = Math.max(0, count)
    return this
  }

  // ---- transport: counting, faults, status answers

  #unary(
    method: string,
    handle: (request: Message) => Message,
  ): Grpc.handleUnaryCall<Message, Message> {
    return (call, callback) => {
      this.calls.increment(method)
      const decision = this.faults.next(method)
      void (async () => {
        if (decision.delayMs > 0) await this.#wait(decision.delayMs, call)
        if (this.#closed || call.cancelled) return
        try {
          if (decision.outage || decision.fail === 'unavailable')
            throw new Status(UNAVAILABLE, 'The service is currently unavailable.')
          if (decision.fail === 'throttle')
            throw new Status(
              RESOURCE_EXHAUSTED,
              "Quota exceeded for quota metric 'Cryptographic requests' and limit 'Cryptographic requests per minute' of service 'cloudkms.googleapis.com'.",
              decision.retryAfterMs,
            )
          const answer = handle(call.request)
          // Done, then the connection drops: what the client sees of a reset
          // stream is UNAVAILABLE, with no way to tell the change was made.
          if (decision.fail === 'reset-after-commit')
            throw new Status(UNAVAILABLE, 'Connection dropped')
          callback(null, answer)
        } catch (err) {
          const status =
            err instanceof Status ? err : new Status(INTERNAL, 'Internal error encountered.')
          const metadata = new this.#grpc.Metadata()
          if (status.retryAfterMs !== undefined)
            metadata.set(
              'grpc-status-details-bin',
              statusDetails(status.code, status.details, status.retryAfterMs),
            )
          callback({ code: status.code, details: status.details, metadata })
        }
      })()
    }
  }

  /** Waits `ms`, or less if the client gives up or the emulator closes. */
  #wait(ms: number, call: Grpc.ServerUnaryCall<Message, Message>): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.#waits.delete(done)
        call.removeListener('cancelled', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      timer.unref?.()
      this.#waits.add(done)
      call.once('cancelled', done)
    })
  }

  #take(kind: GcpCorruption): boolean {
    if (this.#corruption[kind] === 0) return false
    this.#corruption[kind]--
    return true
  }

  #log(entry: GcpEmulatorRequest): void {
    this.requests.push(entry)
    if (this.requests.length > REQUEST_LOG_LIMIT) this.requests.shift()
  }

  // ---- resources

  #newKey(name: string, skipInitialVersion: boolean): CryptoKey {
    const now = this.#clock()
    const key: CryptoKey = {
      name,
      createTime: now,
      primary: null,
      versions: new Map(),
      rotationPeriodSeconds: undefined,
      nextRotationTime: undefined,
      labels: {},
      protectionLevel: 'SOFTWARE',
    }
    if (!skipInitialVersion) {
      this.#addVersion(key, 'ENABLED', now)
      key.primary = 1
    }
    return key
  }

  #addVersion(key: CryptoKey, state: VersionState, at: number): Version {
    const id = Math.max(0, ...key.versions.keys()) + 1
    const material = Buffer.alloc(32)
    material.set(this.#random(32))
    const version: Version = {
      id,
      state,
      material,
      createTime: at,
      generateTime: state === 'PENDING_GENERATION' ? undefined : at,
      destroyTime: undefined,
      pendingReads: state === 'PENDING_GENERATION' ? this.#pendingReads : 0,
    }
    key.versions.set(id, version)
    return version
  }

  #keyRing(name: string): string {
    if (!KEY_RING_NAME.test(name)) throw invalidName(name, 'KeyRing')
    if (!this.#rings.has(name)) throw new Status(NOT_FOUND, `KeyRing ${name} not found.`)
    return name
  }

  /** The key, after any scheduled rotation that is due (the service rotates at next_rotation_time). */
  #key(name: string): CryptoKey {
    if (!KEY_NAME.test(name)) throw invalidName(name, 'CryptoKey')
    const key = this.#keys.get(name)
    if (key === undefined) throw new Status(NOT_FOUND, `CryptoKey ${name} not found.`)
    const now = this.#clock()
    while (key.nextRotationTime !== undefined && key.nextRotationTime <= now) {
      const at = key.nextRotationTime
      key.primary = this.#addVersion(key, 'ENABLED', at).id
      key.nextRotationTime =
        key.rotationPeriodSeconds === undefined ? undefined : at + key.rotationPeriodSeconds * 1000
    }
    return key
  }

  #version(name: string): { key: CryptoKey; version: Version } {
    const m = VERSION_NAME.exec(name)
    if (m === null) throw invalidName(name, 'CryptoKeyVersion')
    const key = this.#key(m[1]!)
    const version = /^[1-9][0-9]{0,9}$/.test(m[2]!) ? key.versions.get(Number(m[2])) : undefined
    if (version === undefined) throw new Status(NOT_FOUND, `CryptoKeyVersion ${name} not found.`)
    return { key, version }
  }

  #usable(key: CryptoKey, version: Version): void {
    if (version.state !== 'ENABLED')
      throw new Status(
        FAILED_PRECONDITION,
        `${key.name}/cryptoKeyVersions/${version.id} is not enabled, current state is: ${version.state}.`,
      )
  }

  #versionMessage(key: CryptoKey, v: Version): Message {
    return {
      name: `${key.name}/cryptoKeyVersions/${v.id}`,
      state: v.state,
      protection_level: key.protectionLevel,
      algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION',
      create_time: timestamp(v.createTime),
      ...(v.generateTime === undefined ? {} : { generate_time: timestamp(v.generateTime) }),
      ...(v.destroyTime === undefined ? {} : { destroy_time: timestamp(v.destroyTime) }),
      ...(v.state === 'DESTROY_SCHEDULED'
        ? { destroy_time: timestamp(this.#clock() + DESTROY_SCHEDULED_SECONDS * 1000) }
        : {}),
    }
  }

  #keyMessage(key: CryptoKey): Message {
    const primary = key.primary === null ? undefined : key.versions.get(key.primary)
    return {
      name: key.name,
      ...(primary === undefined ? {} : { primary: this.#versionMessage(key, primary) }),
      purpose: 'ENCRYPT_DECRYPT',
      create_time: timestamp(key.createTime),
      ...(key.nextRotationTime === undefined
        ? {}
        : { next_rotation_time: timestamp(key.nextRotationTime) }),
      ...(key.rotationPeriodSeconds === undefined
        ? {}
        : { rotation_period: { seconds: String(key.rotationPeriodSeconds), nanos: 0 } }),
      version_template: {
        protection_level: key.protectionLevel,
        algorithm: 'GOOGLE_SYMMETRIC_ENCRYPTION',
      },
      labels: { ...key.labels },
      destroy_scheduled_duration: { seconds: String(DESTROY_SCHEDULED_SECONDS), nanos: 0 },
    }
  }

  /** Rotation fields as the service validates them (resources.proto). */
  #rotation(periodSeconds: number | undefined, next: number | undefined): void {
    if (
      periodSeconds !== undefined &&
      (periodSeconds < MIN_ROTATION_SECONDS || periodSeconds > MAX_ROTATION_SECONDS)
    )
      throw new Status(
        INVALID_ARGUMENT,
        'rotation_period must be at least 24 hours and at most 876,000 hours.',
      )
    if (periodSeconds !== undefined && next === undefined)
      throw new Status(
        INVALID_ARGUMENT,
        'next_rotation_time must be set if rotation_period is set.',
      )
  }

  // ---- methods

  #createKeyRing(r: Message): Message {
    const parent = str(r.parent)
    if (!LOCATION_NAME.test(parent)) throw invalidName(parent, 'Location')
    const id = str(r.key_ring_id)
    if (!RESOURCE_ID.test(id))
      throw new Status(INVALID_ARGUMENT, 'key_ring_id must match [a-zA-Z0-9_-]{1,63}.')
    const name = `${parent}/keyRings/${id}`
    if (this.#rings.has(name)) throw new Status(ALREADY_EXISTS, `KeyRing ${name} already exists.`)
    const now = this.#clock()
    this.#rings.set(name, now)
    return { name, create_time: timestamp(now) }
  }

  #createCryptoKey(r: Message): Message {
    const parent = this.#keyRing(str(r.parent))
    const id = str(r.crypto_key_id)
    if (!RESOURCE_ID.test(id))
      throw new Status(INVALID_ARGUMENT, 'crypto_key_id must match [a-zA-Z0-9_-]{1,63}.')
    const name = `${parent}/cryptoKeys/${id}`
    if (this.#keys.has(name)) throw new Status(ALREADY_EXISTS, `CryptoKey ${name} already exists.`)
    const spec = msg(r.crypto_key) ?? {}
    if (spec.purpose !== 'ENCRYPT_DECRYPT')
      throw new Status(
        INVALID_ARGUMENT,
        'The emulator supports only CryptoKeys with purpose ENCRYPT_DECRYPT.',
      )
    const template = msg(spec.version_template)
    const level = template?.protection_level ?? 'SOFTWARE'
    if (level !== 'SOFTWARE' && level !== 'HSM' && level !== 'PROTECTION_LEVEL_UNSPECIFIED')
      throw new Status(
        INVALID_ARGUMENT,
        'The emulator supports SOFTWARE and HSM protection levels.',
      )
    const algorithm = template?.algorithm
    if (
      algorithm !== undefined &&
      algorithm !== 'GOOGLE_SYMMETRIC_ENCRYPTION' &&
      algorithm !== 'CRYPTO_KEY_VERSION_ALGORITHM_UNSPECIFIED'
    )
      throw new Status(
        INVALID_ARGUMENT,
        'Algorithm must be GOOGLE_SYMMETRIC_ENCRYPTION for purpose ENCRYPT_DECRYPT.',
      )
    const period = secondsOf(spec.rotation_period)
    const next = millisOf(spec.next_rotation_time)
    this.#rotation(period, next)
    const key = this.#newKey(name, r.skip_initial_version_creation === true)
    key.protectionLevel = level === 'HSM' ? 'HSM' : 'SOFTWARE'
    key.rotationPeriodSeconds = period
    key.nextRotationTime = next
    key.labels = { ...((msg(spec.labels) ?? {}) as Record<string, string>) }
    this.#keys.set(name, key)
    return this.#keyMessage(key)
  }

  #getVersion(r: Message): Message {
    const { key, version } = this.#version(str(r.name))
    if (version.state === 'PENDING_GENERATION') {
      if (version.pendingReads > 0) version.pendingReads--
      else {
        version.state = 'ENABLED'
        version.generateTime = this.#clock()
      }
    }
    return this.#versionMessage(key, version)
  }

  /** Versions by id, paged (`page_size` 1-1000, default 1000; `next_page_token`). */
  #listVersions(r: Message): Message {
    const key = this.#key(str(r.parent))
    if (str(r.filter) !== '' || str(r.order_by) !== '')
      throw new Status(INVALID_ARGUMENT, 'The emulator does not filter or sort list results.')
    const size = r.page_size === undefined || r.page_size === 0 ? 1000 : Number(r.page_size)
    if (!Number.isInteger(size) || size < 0 || size > 1000)
      throw new Status(INVALID_ARGUMENT, 'page_size must be between 0 and 1000.')
    const token = str(r.page_token)
    const start = token === '' ? 0 : Number.parseInt(Buffer.from(token, 'base64').toString(), 10)
    if (!Number.isInteger(start) || start < 0)
      throw new Status(INVALID_ARGUMENT, 'Invalid page_token.')
    const all = [...key.versions.values()].sort((a, b) => a.id - b.id)
    const slice = all.slice(start, start + size)
    const next = start + slice.length
    return {
      crypto_key_versions: slice.map((v) => this.#versionMessage(key, v)),
      next_page_token: next < all.length ? Buffer.from(String(next)).toString('base64') : '',
      total_size: all.length,
    }
  }

  #createVersion(r: Message): Message {
    const key = this.#key(str(r.parent))
    const requested = msg(r.crypto_key_version)?.state
    if (requested !== undefined && requested !== 'ENABLED' && requested !== 'DISABLED')
      throw new Status(INVALID_ARGUMENT, 'The initial state must be ENABLED or DISABLED.')
    const state: VersionState =
      requested === 'DISABLED'
        ? 'DISABLED'
        : this.#pendingReads > 0
          ? 'PENDING_GENERATION'
          : 'ENABLED'
    // A new version does not become primary (CreateCryptoKeyVersion's contract).
    return this.#versionMessage(key, this.#addVersion(key, state, this.#clock()))
  }

  #updatePrimary(r: Message): Message {
    const key = this.#key(str(r.name))
    const id = str(r.crypto_key_version_id)
    if (!/^[1-9][0-9]{0,9}$/.test(id))
      throw new Status(INVALID_ARGUMENT, 'crypto_key_version_id must be a version number.')
    const version = key.versions.get(Number(id))
    if (version === undefined)
      throw new Status(NOT_FOUND, `CryptoKeyVersion ${key.name}/cryptoKeyVersions/${id} not found.`)
    this.#usable(key, version)
    key.primary = version.id
    return this.#keyMessage(key)
  }

  #updateCryptoKey(r: Message): Message {
    const spec = msg(r.crypto_key) ?? {}
    const key = this.#key(str(spec.name))
    const paths = msg(r.update_mask)?.paths
    if (!Array.isArray(paths) || paths.length === 0)
      throw new Status(INVALID_ARGUMENT, 'update_mask must be set.')
    let period = key.rotationPeriodSeconds
    let next = key.nextRotationTime
    let labels = key.labels
    for (const path of paths) {
      if (path === 'rotation_period') period = secondsOf(spec.rotation_period)
      else if (path === 'next_rotation_time') next = millisOf(spec.next_rotation_time)
      else if (path === 'labels')
        labels = { ...((msg(spec.labels) ?? {}) as Record<string, string>) }
      else throw new Status(INVALID_ARGUMENT, `Unsupported update_mask path: ${String(path)}.`)
    }
    this.#rotation(period, next)
    key.rotationPeriodSeconds = period
    key.nextRotationTime = next
    key.labels = labels
    return this.#keyMessage(key)
  }

  #encrypt(r: Message): Message {
    const name = str(r.name)
    const target = VERSION_NAME.test(name)
      ? this.#version(name)
      : (() => {
          const key = this.#key(name)
          const version = key.primary === null ? undefined : key.versions.get(key.primary)
          if (version === undefined)
            throw new Status(FAILED_PRECONDITION, `CryptoKey ${name} has no primary version.`)
          return { key, version }
        })()
    const { key, version } = target
    const request = this.#received(r, 'plaintext', 'plaintext_crc32c')
    const aad = bytes(r.additional_authenticated_data)
    this.#log({
      method: 'Encrypt',
      name,
      additionalAuthenticatedData: aad.length === 0 ? undefined : Buffer.from(aad),
    })
    const verifiedAad = this.#verify(
      aad,
      request.dropped ? undefined : r.additional_authenticated_data_crc32c,
      'additional_authenticated_data',
    )
    const plaintext = request.data
    if (plaintext.length === 0)
      throw new Status(INVALID_ARGUMENT, 'The request is missing the required field plaintext.')
    if (plaintext.length > MAX_DATA)
      throw new Status(INVALID_ARGUMENT, `plaintext must be at most ${MAX_DATA} bytes.`)
    if (aad.length > MAX_DATA)
      throw new Status(
        INVALID_ARGUMENT,
        `additional_authenticated_data must be at most ${MAX_DATA} bytes.`,
      )
    if (key.protectionLevel === 'HSM' && plaintext.length + aad.length > MAX_HSM_DATA)
      throw new Status(
        INVALID_ARGUMENT,
        `The combined length of plaintext and additional_authenticated_data must be at most ${MAX_HSM_DATA} bytes for HSM keys.`,
      )
    this.#usable(key, version)
    const ciphertext = this.#seal(key, version, plaintext, aad)
    return {
      name: `${key.name}/cryptoKeyVersions/${version.id}`,
      ciphertext,
      ciphertext_crc32c: { value: String(this.#responseChecksum(ciphertext)) },
      verified_plaintext_crc32c: request.verified,
      verified_additional_authenticated_data_crc32c: verifiedAad,
      protection_level: key.protectionLevel,
    }
  }

  #decrypt(r: Message): Message {
    const name = str(r.name)
    if (VERSION_NAME.test(name))
      throw new Status(INVALID_ARGUMENT, `Decrypt requires a CryptoKey name, got ${name}.`)
    const key = this.#key(name)
    const request = this.#received(r, 'ciphertext', 'ciphertext_crc32c')
    const aad = bytes(r.additional_authenticated_data)
    this.#log({
      method: 'Decrypt',
      name,
      additionalAuthenticatedData: aad.length === 0 ? undefined : Buffer.from(aad),
    })
    this.#verify(
      aad,
      request.dropped ? undefined : r.additional_authenticated_data_crc32c,
      'additional_authenticated_data',
    )
    const ciphertext = request.data
    if (ciphertext.length === 0)
      throw new Status(INVALID_ARGUMENT, 'The request is missing the required field ciphertext.')
    const failed = new Status(
      INVALID_ARGUMENT,
      "Decryption failed: verify that 'name' refers to the correct CryptoKey.",
    )
    if (ciphertext.length < HEADER + NONCE + TAG || ciphertext[0] !== MAGIC) throw failed
    const version = key.versions.get(ciphertext.readUInt32BE(1))
    if (version === undefined) throw failed
    this.#usable(key, version)
    const plaintext = gcmOpen(
      version.material,
      ciphertext.subarray(HEADER, HEADER + NONCE),
      ciphertext.subarray(HEADER + NONCE),
      gcmAad(key, ciphertext.subarray(0, HEADER), aad),
    )
    if (plaintext === undefined) throw failed
    return {
      plaintext,
      plaintext_crc32c: { value: String(this.#responseChecksum(plaintext)) },
      used_primary: version.id === key.primary,
      protection_level: key.protectionLevel,
    }
  }

  /** The request's data as received (maybe corrupted in "transit"), checked against its checksum. */
  #received(
    r: Message,
    field: 'plaintext' | 'ciphertext',
    checksumField: 'plaintext_crc32c' | 'ciphertext_crc32c',
  ): { data: Buffer; verified: boolean; dropped: boolean } {
    let data = bytes(r[field])
    if (data.length > 0 && this.#take('request-data')) {
      data = Buffer.from(data)
      data[0] = data[0]! ^ 0x01
    }
    const dropped = this.#take('request-checksum-dropped')
    const verified = this.#verify(data, dropped ? undefined : r[checksumField], field)
    return { data, verified, dropped }
  }

  /** Whether a request checksum was sent and matches; a mismatch is INVALID_ARGUMENT. */
  #verify(data: Buffer, checksum: unknown, field: string): boolean {
    const expected = int64Value(checksum)
    if (expected === undefined) return false
    if (expected !== crc32c(data))
      throw new Status(
        INVALID_ARGUMENT,
        `The checksum in field ${field}_crc32c did not match the data in field ${field}.`,
      )
    return true
  }

  #responseChecksum(data: Buffer): number {
    const sum = crc32c(data)
    return this.#take('response-checksum') ? (sum ^ 0x1) >>> 0 : sum
  }

  #seal(key: CryptoKey, version: Version, plaintext: Buffer, aad: Buffer): Buffer {
    const header = Buffer.alloc(HEADER)
    header[0] = MAGIC
    header.writeUInt32BE(version.id, 1)
    const nonce = Buffer.from(this.#random(NONCE))
    return Buffer.concat([
      header,
      nonce,
      gcmSeal(version.material, nonce, plaintext, gcmAad(key, header, aad)),
    ])
  }
}

/** GCM's AAD: the key's name and the header bind the ciphertext to its key and version. */
function gcmAad(key: CryptoKey, header: Buffer, aad: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${key.name}\0`, 'utf8'), header, aad])
}

function invalidName(name: string, kind: string): Status {
  return new Status(
    INVALID_ARGUMENT,
    `Resource name [${name}] does not represent a valid ${kind} resource name.`,
  )
}
