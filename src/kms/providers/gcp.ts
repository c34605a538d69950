/**
 * `GcpKmsProvider`: Google Cloud KMS through `@google-cloud/kms` v5 (gRPC).
 *
 * The context is bound as additional authenticated data (canonical JSON,
 * sorted keys). Every Encrypt and Decrypt carries CRC32C checksums both ways,
 * as Google's data-integrity guidelines ask: a mismatch is treated as
 * corruption in transit, retried, and reported as `EncryptionError` /
 * `DecryptionError` if it persists. Cloud KMS has no GenerateDataKey, so data
 * keys are 32 local random bytes, encrypted. Rotation is
 * CreateCryptoKeyVersion + UpdateCryptoKeyPrimaryVersion, never repeated
 * blindly: the versions are listed first, and an attempt whose outcome is
 * unknown is followed by a listing that tells whether it created one (then
 * that version is made primary, no second one). HSM keys take at most 8 KiB
 * of plaintext and context together; a larger request is refused here,
 * before the plaintext leaves the process. RetryInfo on a quota error is
 * honoured.
 *
 * google-gax's own retries are turned off on every call (`retry: null`): the
 * base provider is the only retry layer.
 */

import { constants } from 'node:fs'
import { access } from 'node:fs/promises'
import { createRequire } from 'node:module'
// Type-only: never part of an exported declaration, so users without the SDK
// still get working .d.ts files.
import type { KeyManagementServiceClient } from '@google-cloud/kms'
import { z } from 'zod'
import { canonicalJson } from '../../internal/canonical-json.js'
import { crc32c } from '../../internal/crc32c.js'
import { importOptional, MissingDependencyError } from '../../internal/optional-import.js'
import { parseOptions } from '../../internal/options.js'
import { type RandomBytes, secureRandomBytes } from '../../internal/random.js'
import {
  BaseKmsProvider,
  BaseKmsProviderOptionsSchema,
  baseOptionsOf,
  type CallOptions,
  type DataKeyResult,
  type EncryptResult,
  errorCode,
  isNetworkError,
  type KeyDescription,
  type KmsOperation,
  type RotationState,
} from '../base-provider.js'
import {
  KeyDisabledError,
  KeyNotFoundError,
  KmsAccessDeniedError,
  KmsError,
  ProviderConnectionError,
  type SanitizedCause,
} from '../errors.js'
import type { EncryptionContext, KeyState, RotationPolicy } from '../models.js'

/** `EncryptedData.algorithm` for Cloud KMS symmetric keys. */
export const GCP_ALGORITHM = 'GOOGLE_SYMMETRIC_ENCRYPTION'

const SDK_PACKAGE = '@google-cloud/kms'
const FEATURE = 'GcpKmsProvider'

/** KeyRing and CryptoKey ids, as Cloud KMS defines them. */
const RESOURCE_ID = /^[A-Za-z0-9_-]{1,63}$/
const FULL_KEY_NAME =
  /^projects\/([^/]{1,100})\/locations\/([^/]{1,63})\/keyRings\/([^/]{1,63})\/cryptoKeys\/([^/]{1,63})$/
const PROJECT_ID = /^(?:[a-z0-9.-]{1,63}:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$/
const LOCATION_ID = /^[a-z0-9-]{1,63}$/

/** gRPC status codes by number (grpc/status.h). */
const STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const

/** CryptoKeyVersionState by number (resources.proto), for clients that return numeric enums. */
const VERSION_STATES: Readonly<Record<number, string>> = {
  0: 'CRYPTO_KEY_VERSION_STATE_UNSPECIFIED',
  1: 'ENABLED',
  2: 'DISABLED',
  3: 'DESTROYED',
  4: 'DESTROY_SCHEDULED',
  5: 'PENDING_GENERATION',
  6: 'PENDING_IMPORT',
  7: 'IMPORT_FAILED',
  8: 'GENERATION_FAILED',
  9: 'PENDING_EXTERNAL_DESTRUCTION',
  10: 'EXTERNAL_DESTRUCTION_FAILED',
}

/**
 * How Cloud KMS words a request checksum it refused (INVALID_ARGUMENT). gcloud
 * recognises server-side integrity failures by the same text
 * (googlecloudsdk `ProcessHttpBadRequestError`). Used to classify, never kept.
 */
const CHECKSUM_REJECTED = /The checksum in field \S+ did not match the data in field \S+/

// ---------------------------------------------------------------------------
// The client, as a small structural interface (our own types, no SDK types),
// so users can pass a client they configured themselves and users without the
// SDK get working declarations.

/** An int64 as the client sends or returns it: number, decimal string, bigint or a `Long`. */
export type GcpInt64 = number | string | bigint | { toString(): string }

/** `google.protobuf.Int64Value`: the CRC32C fields. */
export interface GcpInt64Value {
  value?: GcpInt64 | null
}

/** `google.protobuf.Timestamp` / `Duration`. */
export interface GcpSecondsAndNanos {
  seconds?: GcpInt64 | null
  nanos?: number | null
}

/** The fields of a `CryptoKeyVersion` the provider reads. */
export interface GcpCryptoKeyVersion {
  name?: string | null
  /** Enum name (`'ENABLED'`) or number (`1`). */
  state?: string | number | null
  createTime?: GcpSecondsAndNanos | null
  /** Enum name (`'HSM'`) or number (`2`). */
  protectionLevel?: string | number | null
}

/** The fields of a `CryptoKey` the provider reads. */
export interface GcpCryptoKey {
  name?: string | null
  primary?: GcpCryptoKeyVersion | null
  createTime?: GcpSecondsAndNanos | null
  rotationPeriod?: GcpSecondsAndNanos | null
  nextRotationTime?: GcpSecondsAndNanos | null
  versionTemplate?: { protectionLevel?: string | number | null } | null
}

/** Per-call options the provider passes: one attempt, bounded by the attempt's budget. */
export interface GcpCallOptions {
  retry: null
  timeout: number
}

/** Bytes as protobufjs returns them (a string would be base64). */
export type GcpBytes = Uint8Array | string

/**
 * The subset of `KeyManagementServiceClient` the provider calls. The real
 * client satisfies it; pass your own (e.g. configured with an `authClient`)
 * through the `client` option.
 */
export interface GcpKmsClient {
  encrypt(
    request: {
      name: string
      plaintext: Uint8Array
      plaintextCrc32c: { value: number }
      additionalAuthenticatedData?: Uint8Array
      additionalAuthenticatedDataCrc32c?: { value: number }
    },
    options: GcpCallOptions,
  ): Promise<
    readonly [
      {
        name?: string | null
        ciphertext?: GcpBytes | null
        ciphertextCrc32c?: GcpInt64Value | null
        verifiedPlaintextCrc32c?: boolean | null
        verifiedAdditionalAuthenticatedDataCrc32c?: boolean | null
        protectionLevel?: string | number | null
      },
      ...unknown[],
    ]
  >
  decrypt(
    request: {
      name: string
      ciphertext: Uint8Array
      ciphertextCrc32c: { value: number }
      additionalAuthenticatedData?: Uint8Array
      additionalAuthenticatedDataCrc32c?: { value: number }
    },
    options: GcpCallOptions,
  ): Promise<
    readonly [{ plaintext?: GcpBytes | null; plaintextCrc32c?: GcpInt64Value | null }, ...unknown[]]
  >
  getCryptoKey(
    request: { name: string },
    options: GcpCallOptions,
  ): Promise<readonly [GcpCryptoKey, ...unknown[]]>
  getCryptoKeyVersion(
    request: { name: string },
    options: GcpCallOptions,
  ): Promise<readonly [GcpCryptoKeyVersion, ...unknown[]]>
  createCryptoKeyVersion(
    request: { parent: string; cryptoKeyVersion: Record<string, never> },
    options: GcpCallOptions,
  ): Promise<readonly [GcpCryptoKeyVersion, ...unknown[]]>
  updateCryptoKeyPrimaryVersion(
    request: { name: string; cryptoKeyVersionId: string },
    options: GcpCallOptions,
  ): Promise<readonly [GcpCryptoKey, ...unknown[]]>
  /**
   * All versions of a key (the real client pages on its own). Optional for a
   * client of your own; without it `rotateKey` cannot check an attempt whose
   * answer was lost, and reports it (`KeyRotationError`) instead of
   * rotating again.
   */
  listCryptoKeyVersions?(
    request: { parent: string },
    options: GcpCallOptions,
  ): Promise<readonly [readonly GcpCryptoKeyVersion[], ...unknown[]]>
  close?(): Promise<void>
}

const isClient = (v: unknown): v is GcpKmsClient => {
  const c = v as Partial<Record<keyof GcpKmsClient, unknown>> | null
  return (
    typeof c?.encrypt === 'function' &&
    typeof c.decrypt === 'function' &&
    typeof c.getCryptoKey === 'function' &&
    typeof c.getCryptoKeyVersion === 'function' &&
    typeof c.createCryptoKeyVersion === 'function' &&
    typeof c.updateCryptoKeyPrimaryVersion === 'function'
  )
}

// ---------------------------------------------------------------------------
// Options

const ResourceIdSchema = z.string().regex(RESOURCE_ID, 'must be 1-63 letters, digits, "_" or "-"')

export const GcpKmsProviderOptionsSchema = BaseKmsProviderOptionsSchema.extend({
  /**
   * The project ID (not the project number) holding the key ring.
   * @default none (required)
   */
  projectId: z
    .string()
    .regex(PROJECT_ID, 'must be a project ID: 6-30 lowercase letters, digits or "-"'),
  /**
   * The key ring's location, e.g. `'global'`, `'europe-west1'`.
   * @default none (required)
   */
  locationId: z.string().regex(LOCATION_ID, 'must be a location id such as "global"'),
  /**
   * The key ring that short key ids are looked up in.
   * @default none (required)
   */
  keyRingId: ResourceIdSchema,
  /**
   * Host of the API, without scheme or port (a regional or private endpoint,
   * or `127.0.0.1` for an emulator).
   * @default 'cloudkms.googleapis.com' (the client's default)
   */
  apiEndpoint: z
    .string()
    .min(1)
    .max(253)
    .regex(/^[^\s/]+$/, 'must be a host name, without scheme or path')
    .optional(),
  /**
   * Port of the API.
   * @default 443 (the client's default)
   */
  port: z.number().int().min(1).max(65_535).optional(),
  /**
   * Plaintext gRPC without credentials, for a local emulator only. Also pins
   * the universe domain so google-auth-library never probes the GCE metadata
   * server. Needs `apiEndpoint`.
   * @default false
   */
  insecure: z.boolean().default(false),
  /**
   * A service account's key, instead of Application Default Credentials.
   * @default Application Default Credentials
   */
  credentials: z
    .object({ client_email: z.string().min(3).max(320), private_key: z.string().min(1) })
    .strict()
    .optional(),
  /**
   * Path to a service account key file, instead of Application Default Credentials.
   * @default Application Default Credentials
   */
  keyFilename: z.string().min(1).optional(),
  /**
   * A client you built yourself (any object with the {@link GcpKmsClient}
   * methods, such as a configured `KeyManagementServiceClient`). The provider
   * does not close it. Excludes the connection options above.
   * @default a `KeyManagementServiceClient` built from the options above
   */
  client: z
    .custom<GcpKmsClient>(isClient, 'must be a Cloud KMS client (encrypt, decrypt, ...)')
    .optional(),
  /** Source of data keys. @default crypto.randomBytes */
  randomBytes: z.custom<RandomBytes>((v) => typeof v === 'function').optional(),
})
  .strict()
  .superRefine((o, ctx) => {
    const issue = (path: string, message: string) =>
      ctx.addIssue({ code: 'custom', path: [path], message })
    if (o.insecure && o.apiEndpoint === undefined)
      issue(
        'apiEndpoint',
        'is required when insecure is true (plaintext gRPC is for local emulators)',
      )
    if (o.insecure && (o.credentials !== undefined || o.keyFilename !== undefined))
      issue(
        'insecure',
        'cannot be combined with credentials or keyFilename: a plaintext channel sends none',
      )
    if (o.credentials !== undefined && o.keyFilename !== undefined)
      issue('keyFilename', 'cannot be combined with credentials')
    if (
      o.client !== undefined &&
      (o.insecure ||
        o.apiEndpoint !== undefined ||
        o.port !== undefined ||
        o.credentials !== undefined ||
        o.keyFilename !== undefined)
    )
      issue(
        'client',
        'cannot be combined with apiEndpoint, port, insecure, credentials or keyFilename',
      )
  })

export type GcpKmsProviderOptions = z.input<typeof GcpKmsProviderOptionsSchema>
type ParsedOptions = z.output<typeof GcpKmsProviderOptionsSchema>

// ---------------------------------------------------------------------------
// Locating the SDK

/** Finds an installed package's entry file, as seen from this module. */
type Resolver = (packageName: string) => string

const defaultResolver: Resolver = (name) => createRequire(import.meta.url).resolve(name)
let resolver: Resolver = defaultResolver

/**
 * @internal Test seam: replaces how `@google-cloud/kms` is located, so a test
 * can simulate it missing. Pass nothing to restore. Not exported from the
 * package entry.
 *
 * @example
 * ```ts
 * setGcpSdkResolver(() => { throw Object.assign(new Error(), { code: 'MODULE_NOT_FOUND' }) })
 * ```
 */
export function setGcpSdkResolver(replacement?: Resolver): void {
  resolver = replacement ?? defaultResolver
}

/** The SDK's entry file, or MissingDependencyError naming the package. */
function locateSdk(): string {
  try {
    return resolver(SDK_PACKAGE)
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code
    if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND')
      throw new MissingDependencyError(SDK_PACKAGE, FEATURE)
    throw err
  }
}

interface GaxModule {
  grpc: { credentials: { createInsecure(): unknown } }
}

/**
 * google-gax as the SDK itself loads it: its `grpc` must be the very
 * @grpc/grpc-js copy the client uses (it checks `instanceof
 * ChannelCredentials`). Resolved from the SDK's own location because
 * google-gax is its dependency, not necessarily ours (pnpm).
 */
function loadGax(sdkEntry: string): GaxModule {
  try {
    return createRequire(sdkEntry)('google-gax') as GaxModule
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code
    if (code === 'MODULE_NOT_FOUND') throw new MissingDependencyError('google-gax', FEATURE)
    throw err
  }
}

type SdkModule = {
  KeyManagementServiceClient?: typeof KeyManagementServiceClient
  default?: { KeyManagementServiceClient?: typeof KeyManagementServiceClient }
}

// ---------------------------------------------------------------------------
// Helpers

/** A thrown value's gRPC status number, when it has one. */
function grpcStatus(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'number' && Number.isInteger(code) && code >= 0 && code <= 16
    ? code
    : undefined
}

/** An int64 field as a number (the CRC32C values are below 2^32, so exact). */
function int64(v: GcpInt64 | null | undefined): number | undefined {
  if (v === null || v === undefined) return undefined
  const n = typeof v === 'number' ? v : Number(typeof v === 'bigint' ? v : v.toString())
  return Number.isSafeInteger(n) ? n : undefined
}

/** Whether an Int64Value checksum is present and equals CRC32C(data). */
function checksumMatches(field: GcpInt64Value | null | undefined, data: Uint8Array): boolean {
  // A present wrapper with no value is 0 (proto3 default), a legitimate CRC32C.
  if (field === null || field === undefined) return false
  const value = field.value === null || field.value === undefined ? 0 : int64(field.value)
  return value === crc32c(data)
}

function bytesOf(v: GcpBytes | null | undefined): Uint8Array {
  if (v === null || v === undefined) return new Uint8Array(0)
  // protobufjs treats a string for a bytes field as base64.
  return typeof v === 'string' ? Buffer.from(v, 'base64') : v
}

function dateOf(t: GcpSecondsAndNanos | null | undefined): Date | undefined {
  const seconds = int64(t?.seconds)
  if (seconds === undefined) return undefined
  return new Date(seconds * 1000 + Math.floor((t?.nanos ?? 0) / 1e6))
}

function secondsOf(d: GcpSecondsAndNanos | null | undefined): number | undefined {
  const seconds = int64(d?.seconds)
  return seconds === undefined ? undefined : seconds + (d?.nanos ?? 0) / 1e9
}

function stateName(state: string | number | null | undefined): string | undefined {
  return typeof state === 'number' ? VERSION_STATES[state] : (state ?? undefined)
}

/** ProtectionLevel by number (resources.proto). */
const PROTECTION_LEVELS: Readonly<Record<number, string>> = {
  0: 'PROTECTION_LEVEL_UNSPECIFIED',
  1: 'SOFTWARE',
  2: 'HSM',
  3: 'EXTERNAL',
  4: 'EXTERNAL_VPC',
}

function protectionLevel(level: string | number | null | undefined): string | undefined {
  return typeof level === 'number' ? PROTECTION_LEVELS[level] : (level ?? undefined)
}

/** HSM keys: plaintext and additional authenticated data together (service.proto, EncryptRequest). */
const MAX_HSM_DATA = 8192

/**
 * The wait a `google.rpc.RetryInfo` in the error's status details asks for
 * (google-gax decodes `grpc-status-details-bin` into `statusDetails`), in ms.
 */
function retryDelayOf(error: unknown): number | undefined {
  const details = (error as { statusDetails?: unknown } | null)?.statusDetails
  if (!Array.isArray(details)) return undefined
  for (const d of details) {
    const delay = (d as { retryDelay?: GcpSecondsAndNanos | null } | null)?.retryDelay
    if (delay === null || delay === undefined) continue
    const seconds = secondsOf(delay)
    if (seconds !== undefined && seconds >= 0) return Math.ceil(seconds * 1000)
  }
  return undefined
}

/** Cloud KMS version states on our four. A version not yet usable counts as disabled. */
function keyState(state: string | undefined): KeyState {
  switch (state) {
    case 'ENABLED':
      return 'enabled'
    case 'DESTROY_SCHEDULED':
    case 'PENDING_EXTERNAL_DESTRUCTION':
      return 'pending_deletion'
    case 'DESTROYED':
    case 'EXTERNAL_DESTRUCTION_FAILED':
      return 'destroyed'
    default:
      return 'disabled'
  }
}

/** The version number in `<keyName>/cryptoKeyVersions/<n>`, or undefined for any other name. */
function versionOf(name: string | null | undefined, keyName: string): number | undefined {
  const prefix = `${keyName}/cryptoKeyVersions/`
  if (typeof name !== 'string' || !name.startsWith(prefix)) return undefined
  const id = name.slice(prefix.length)
  return /^[1-9][0-9]{0,15}$/.test(id) ? Number(id) : undefined
}

/** The context as additional authenticated data; none for an empty context. */
function additionalData(context: EncryptionContext): Buffer | undefined {
  return Object.keys(context).length === 0 ? undefined : Buffer.from(canonicalJson(context), 'utf8')
}

const view = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)

const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve()
    // Ref'd: the call waiting here is pending work (see base-provider.ts, defaultSleep).
    const t = setTimeout(resolve, ms)
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t)
        resolve()
      },
      { once: true },
    )
  })

/** A key id that cannot name a CryptoKey. Not retried, reported as is. */
class InvalidGcpKeyIdError extends KmsError {}

/** A request over the key's size limit, refused before it is sent. Not retried, reported as is. */
class GcpRequestTooLargeError extends KmsError {}

const INTEGRITY = 'Cloud KMS data failed its CRC32C integrity check'

/** How often a new, still generating (HSM) version is polled before it is made primary. */
const GENERATION_POLL_MS = 50

/**
 * @example
 * ```ts
 * import { GcpKmsProvider } from 'fraiseql-security/kms'
 * const kms = new GcpKmsProvider({ projectId: 'acme-prod', locationId: 'europe-west1', keyRingId: 'app' })
 * const sealed = await kms.encrypt('secret', 'orders', { tenant: 't1' })
 * const plain = await kms.decrypt(sealed)
 * await kms.close()
 * ```
 */
export class GcpKmsProvider extends BaseKmsProvider {
  readonly #o: ParsedOptions
  readonly #random: RandomBytes
  readonly #sdkEntry: string | undefined
  /** Protection level per CryptoKey name, learnt from Encrypt answers and key reads. */
  readonly #levels = new Map<string, string>()
  #client: Promise<GcpKmsClient> | undefined

  constructor(options: GcpKmsProviderOptions) {
    const o = parseOptions('GcpKmsProvider', GcpKmsProviderOptionsSchema, options)
    super('gcp', baseOptionsOf(o))
    this.#o = o
    this.#random = o.randomBytes ?? secureRandomBytes
    // Fail at construction, not on the first call, when the SDK is missing.
    this.#sdkEntry = o.client === undefined ? locateSdk() : undefined
    if (o.client !== undefined) this.#client = Promise.resolve(o.client)
  }

  /**
   * The full CryptoKey name a key id stands for: a CryptoKey id in the
   * configured key ring, or a full `projects/.../cryptoKeys/<id>` name as is.
   *
   * @example
   * ```ts
   * kms.cryptoKeyName('orders') // 'projects/acme-prod/locations/europe-west1/keyRings/app/cryptoKeys/orders'
   * ```
   */
  cryptoKeyName(keyId: string): string {
    if (RESOURCE_ID.test(keyId)) {
      const o = this.#o
      return `projects/${o.projectId}/locations/${o.locationId}/keyRings/${o.keyRingId}/cryptoKeys/${keyId}`
    }
    const m = FULL_KEY_NAME.exec(keyId)
    if (
      m !== null &&
      PROJECT_ID.test(m[1]!) &&
      LOCATION_ID.test(m[2]!) &&
      RESOURCE_ID.test(m[3]!) &&
      RESOURCE_ID.test(m[4]!)
    )
      return keyId
    throw new InvalidGcpKeyIdError(
      'Cloud KMS key id must be a CryptoKey id (1-63 letters, digits, "_" or "-") or a full projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k> name',
      { provider: this.name },
    )
  }

  /** Closes the gRPC channel of a client this provider built (a later call opens a new one). */
  async close(): Promise<void> {
    const pending = this.#client
    if (pending === undefined || this.#o.client !== undefined) return
    this.#client = undefined
    const client = await pending.catch(() => undefined)
    await client?.close?.()
  }

  protected async doEncrypt(
    plaintext: Uint8Array,
    keyId: string,
    context: EncryptionContext,
    call: CallOptions,
  ): Promise<EncryptResult> {
    const ciphertext = await this.#encrypt(this.cryptoKeyName(keyId), plaintext, context, call)
    return { ciphertext, algorithm: GCP_ALGORITHM }
  }

  protected async doDecrypt(
    ciphertext: Uint8Array,
    keyId: string,
    context: EncryptionContext,
    call: CallOptions,
  ): Promise<Uint8Array> {
    const name = this.cryptoKeyName(keyId)
    const client = await this.#connect()
    const aad = additionalData(context)
    const [response] = await client.decrypt(
      {
        name,
        ciphertext: view(ciphertext),
        ciphertextCrc32c: { value: crc32c(ciphertext) },
        ...(aad === undefined
          ? {}
          : {
              additionalAuthenticatedData: aad,
              additionalAuthenticatedDataCrc32c: { value: crc32c(aad) },
            }),
      },
      this.#callOptions(call, this.clock()),
    )
    const received = bytesOf(response.plaintext)
    try {
      // Postcondition: the plaintext is what the service sent (Decrypt has no
      // verified_* flags: the service refuses a request checksum that fails).
      if (!checksumMatches(response.plaintextCrc32c, received)) throw this.#integrityError()
      return Uint8Array.from(received)
    } finally {
      received.fill(0)
    }
  }

  protected async doGenerateDataKey(
    keyId: string,
    context: EncryptionContext,
    call: CallOptions,
  ): Promise<DataKeyResult> {
    const name = this.cryptoKeyName(keyId)
    // Buffer.alloc: an unpooled buffer holding only this key (the base zeroes it).
    const plaintextKey = Buffer.alloc(32)
    const random = this.#random(32)
    plaintextKey.set(random)
    random.fill(0)
    try {
      const encryptedKey = await this.#encrypt(name, plaintextKey, context, call)
      return { plaintextKey, encryptedKey, algorithm: GCP_ALGORITHM }
    } catch (err) {
      plaintextKey.fill(0)
      throw err
    }
  }

  /** The highest version id: a rotation's CreateCryptoKeyVersion raises it. */
  protected override async doRotationState(
    keyId: string,
    call: CallOptions,
  ): Promise<RotationState> {
    const started = this.clock()
    const name = this.cryptoKeyName(keyId)
    const client = await this.#connect()
    const [key] = await client.getCryptoKey({ name }, this.#callOptions(call, started))
    const description = this.#describe(keyId, name, key)
    if (client.listCryptoKeyVersions === undefined) return { marker: undefined, key: description }
    const [versions] = await client.listCryptoKeyVersions(
      { parent: name },
      this.#callOptions(call, started),
    )
    const ids = versions.map((v) => versionOf(v.name, name) ?? 0)
    return { marker: String(Math.max(0, ...ids)), key: description }
  }

  protected async doRotateKey(keyId: string, call: CallOptions): Promise<KeyDescription> {
    const started = this.clock()
    const name = this.cryptoKeyName(keyId)
    const client = await this.#connect()
    const [created] = await client.createCryptoKeyVersion(
      { parent: name, cryptoKeyVersion: {} },
      this.#callOptions(call, started),
    )
    const version = versionOf(created.name, name)
    if (version === undefined)
      throw new KmsError('Cloud KMS returned a version of another key', {
        provider: this.name,
        cause: { service: 'gcp', code: 'UNEXPECTED_RESPONSE' },
      })
    return this.#makePrimary(keyId, name, version, stateName(created.state), call, started)
  }

  /**
   * An earlier attempt created a version (the highest id moved): make the
   * newest one primary instead of creating another.
   */
  protected override async doRotationResume(
    keyId: string,
    before: RotationState,
    now: RotationState,
    call: CallOptions,
  ): Promise<KeyDescription> {
    const started = this.clock()
    const name = this.cryptoKeyName(keyId)
    const version = Number(now.marker)
    if (!(version > Number(before.marker)))
      throw new KmsError('Cloud KMS listed no new version', { provider: this.name })
    const client = await this.#connect()
    const [current] = await client.getCryptoKeyVersion(
      { name: `${name}/cryptoKeyVersions/${version}` },
      this.#callOptions(call, started),
    )
    return this.#makePrimary(keyId, name, version, stateName(current.state), call, started)
  }

  /** Waits for a new (HSM) version to be generated, then makes it primary (idempotent). */
  async #makePrimary(
    keyId: string,
    name: string,
    version: number,
    initial: string | undefined,
    call: CallOptions,
    started: number,
  ): Promise<KeyDescription> {
    const client = await this.#connect()
    // HSM versions start in PENDING_GENERATION; only an ENABLED version can be primary.
    let state = initial
    while (state === 'PENDING_GENERATION' && !call.signal.aborted) {
      await pause(GENERATION_POLL_MS, call.signal)
      const [current] = await client.getCryptoKeyVersion(
        { name: `${name}/cryptoKeyVersions/${version}` },
        this.#callOptions(call, started),
      )
      state = stateName(current.state)
    }
    if (state !== 'ENABLED')
      throw new KmsError('The new key version is not enabled', {
        provider: this.name,
        cause: { service: 'gcp', code: state ?? 'UNKNOWN_STATE' },
      })
    const [key] = await client.updateCryptoKeyPrimaryVersion(
      { name, cryptoKeyVersionId: String(version) },
      this.#callOptions(call, started),
    )
    return this.#describe(keyId, name, key)
  }

  protected async doGetKeyInfo(keyId: string, call: CallOptions): Promise<KeyDescription> {
    const name = this.cryptoKeyName(keyId)
    const client = await this.#connect()
    const [key] = await client.getCryptoKey({ name }, this.#callOptions(call, this.clock()))
    return this.#describe(keyId, name, key)
  }

  protected async doGetRotationPolicy(keyId: string, call: CallOptions): Promise<RotationPolicy> {
    const name = this.cryptoKeyName(keyId)
    const client = await this.#connect()
    const [key] = await client.getCryptoKey({ name }, this.#callOptions(call, this.clock()))
    const period = secondsOf(key.rotationPeriod)
    const nextRotation = dateOf(key.nextRotationTime) ?? null
    // Version 1 is the key's first version, not a rotation.
    const primary = versionOf(key.primary?.name, name)
    const lastRotation =
      primary !== undefined && primary > 1 ? (dateOf(key.primary?.createTime) ?? null) : null
    return {
      // Cloud KMS rotates automatically whenever next_rotation_time is set
      // (with rotation_period for a schedule, alone for a one-off rotation).
      enabled: nextRotation !== null,
      rotationPeriodDays: period !== undefined && period > 0 ? period / 86_400 : null,
      lastRotation,
      nextRotation,
    }
  }

  protected override mapError(error: unknown, _operation: KmsOperation): KmsError {
    if (error instanceof KmsError) return error
    const status = grpcStatus(error)
    if (status === undefined) {
      // Not a gRPC status: the client failed before any RPC (credentials that
      // could not be loaded, say). The SDK caches that failed setup for good, so
      // build a fresh client next time.
      this.#discard()
      const code = errorCode(error)
      const cause: SanitizedCause = { service: 'gcp', ...(code === undefined ? {} : { code }) }
      return isNetworkError(error)
        ? new ProviderConnectionError('network', { provider: this.name, cause })
        : new KmsError('Cloud KMS call failed', { provider: this.name, cause })
    }
    const code = STATUS_NAMES[status]!
    const cause: SanitizedCause = { service: 'gcp', code, status }
    const retryAfterMs = retryDelayOf(error)
    const options = {
      provider: this.name,
      cause,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    }
    switch (code) {
      case 'NOT_FOUND':
        return new KeyNotFoundError(options)
      case 'FAILED_PRECONDITION':
        return new KeyDisabledError(options)
      case 'PERMISSION_DENIED':
      case 'UNAUTHENTICATED':
        return new KmsAccessDeniedError(options)
      case 'DEADLINE_EXCEEDED':
        return new ProviderConnectionError('timeout', options)
      case 'UNAVAILABLE':
      case 'ABORTED':
      case 'INTERNAL':
        return new ProviderConnectionError('unavailable', options)
      case 'RESOURCE_EXHAUSTED':
        return new ProviderConnectionError('throttled', options)
      case 'INVALID_ARGUMENT': {
        // Google's guidance for a refused request checksum: we computed it
        // ourselves, so the request was corrupted in transit; retry a few times.
        const details = (error as { details?: unknown }).details
        if (typeof details === 'string' && CHECKSUM_REJECTED.test(details))
          return new KmsError(INTEGRITY, { ...options, retryable: true })
        break
      }
    }
    return new KmsError('Cloud KMS call failed', options)
  }

  /** Encrypt under `name`, verifying every integrity field of the response. */
  async #encrypt(
    name: string,
    plaintext: Uint8Array,
    context: EncryptionContext,
    call: CallOptions,
  ): Promise<Uint8Array> {
    const client = await this.#connect()
    const aad = additionalData(context)
    // Precondition: an HSM key's limit, checked before the plaintext leaves the process.
    if (plaintext.length + (aad?.length ?? 0) > MAX_HSM_DATA)
      await this.#refuseOverHsmLimit(client, name, call)
    const [response] = await client.encrypt(
      {
        name,
        plaintext: view(plaintext),
        plaintextCrc32c: { value: crc32c(plaintext) },
        ...(aad === undefined
          ? {}
          : {
              additionalAuthenticatedData: aad,
              additionalAuthenticatedDataCrc32c: { value: crc32c(aad) },
            }),
      },
      this.#callOptions(call, this.clock()),
    )
    const level = protectionLevel(response.protectionLevel)
    if (level !== undefined) this.#levels.set(name, level)
    const ciphertext = bytesOf(response.ciphertext)
    // Postconditions (Cloud KMS data-integrity guidelines): the service saw our
    // checksums, the ciphertext is what it sent, and it used a version of the
    // key we named. Anything else is corruption in transit: retried.
    if (
      response.verifiedPlaintextCrc32c !== true ||
      (aad !== undefined && response.verifiedAdditionalAuthenticatedDataCrc32c !== true) ||
      ciphertext.length === 0 ||
      !checksumMatches(response.ciphertextCrc32c, ciphertext) ||
      versionOf(response.name, name) === undefined
    )
      throw this.#integrityError()
    return Uint8Array.from(ciphertext)
  }

  /** Refuses a request over 8 KiB when the key is an HSM key (read once, then remembered). */
  async #refuseOverHsmLimit(client: GcpKmsClient, name: string, call: CallOptions): Promise<void> {
    let level = this.#levels.get(name)
    if (level === undefined) {
      const [key] = await client.getCryptoKey({ name }, this.#callOptions(call, this.clock()))
      level =
        protectionLevel(key.versionTemplate?.protectionLevel) ??
        protectionLevel(key.primary?.protectionLevel) ??
        'SOFTWARE'
      this.#levels.set(name, level)
    }
    if (level === 'HSM')
      throw new GcpRequestTooLargeError(
        `Plaintext and context together exceed ${MAX_HSM_DATA} bytes, the limit of Cloud KMS HSM keys: encrypt a data key instead (generateDataKey, or KeyManager)`,
        { provider: this.name, cause: { service: 'gcp', code: 'HSM_SIZE_LIMIT' } },
      )
  }

  #integrityError(): KmsError {
    return new KmsError(INTEGRITY, {
      provider: this.name,
      retryable: true,
      cause: { service: 'gcp', code: 'CHECKSUM_MISMATCH' },
    })
  }

  /**
   * One attempt, bounded by what is left of this attempt's budget. Never
   * `maxRetries`: google-gax mutates the client's shared retry settings with
   * it. A fresh object per call, because gax writes into it.
   */
  #callOptions(call: CallOptions, started: number): GcpCallOptions {
    return { retry: null, timeout: Math.max(1, call.timeoutMs - (this.clock() - started)) }
  }

  #describe(keyId: string, name: string, key: GcpCryptoKey): KeyDescription {
    const primary = key.primary ?? undefined
    const createdAt = dateOf(key.createTime)
    return {
      keyId,
      state: primary === undefined ? 'disabled' : keyState(stateName(primary.state)),
      ...(createdAt === undefined ? {} : { createdAt }),
      currentVersion: versionOf(primary?.name, name) ?? null,
      // Counting versions would need ListCryptoKeyVersions (and its permission).
      versions: null,
    }
  }

  /**
   * Drops a client this provider built, so the next call builds a new one. It
   * is not closed: its setup failed, so it holds no channel, and `close()` on
   * it would run the failed setup again and reject inside the SDK, unhandled.
   */
  #discard(): void {
    if (this.#client === undefined || this.#o.client !== undefined) return
    this.#client = undefined
  }

  #connect(): Promise<GcpKmsClient> {
    if (this.#client === undefined) {
      const pending = this.#build()
      this.#client = pending
      pending.catch(() => {
        if (this.#client === pending) this.#client = undefined
      })
    }
    return this.#client
  }

  async #build(): Promise<GcpKmsClient> {
    const o = this.#o
    // Checked here first: given a missing key file, google-auth-library rejects
    // a promise of its own that nobody handles, besides failing the call.
    if (o.keyFilename !== undefined) await access(o.keyFilename, constants.R_OK)
    const sdk = await importOptional<SdkModule>(SDK_PACKAGE, FEATURE)
    const Client = sdk.KeyManagementServiceClient ?? sdk.default?.KeyManagementServiceClient
    if (Client === undefined) throw new MissingDependencyError(SDK_PACKAGE, FEATURE)
    const plaintextChannel = o.insecure
      ? {
          sslCreds: loadGax(
            this.#sdkEntry ?? locateSdk(),
          ).grpc.credentials.createInsecure() as never,
          // Without it GoogleAuth.getUniverseDomain() runs the ADC chain, which
          // probes the GCE metadata server (169.254.169.254).
          universeDomain: 'googleapis.com',
        }
      : {}
    const client: GcpKmsClient = new Client({
      ...(o.apiEndpoint === undefined ? {} : { apiEndpoint: o.apiEndpoint }),
      ...(o.port === undefined ? {} : { port: o.port }),
      ...(o.credentials === undefined ? {} : { credentials: { ...o.credentials } }),
      ...(o.keyFilename === undefined ? {} : { keyFilename: o.keyFilename }),
      ...plaintextChannel,
    })
    return client
  }
}
