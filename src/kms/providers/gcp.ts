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
 *
 * Its parts, one concept each, are in `./gcp/`: the client interface
 * (`client.ts`), the options (`options.ts`), loading the SDK (`sdk.ts`),
 * resource names, answer fields (`messages.ts`), CRC32C checks
 * (`integrity.ts`) and gRPC error mapping (`errors.ts`).
 */

import { constants } from 'node:fs'
import { access } from 'node:fs/promises'
import { canonicalJson } from '../../internal/canonical-json.js'
import { crc32c } from '../../internal/crc32c.js'
import { parseOptions } from '../../internal/options.js'
import { type RandomBytes, secureRandomBytes } from '../../internal/random.js'
import {
  BaseKmsProvider,
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
import { KmsError, ProviderConnectionError, type SanitizedCause } from '../errors.js'
import type { EncryptionContext, RotationPolicy } from '../models.js'
import type { GcpCallOptions, GcpCryptoKey, GcpKmsClient } from './gcp/client.js'
import {
  GcpRequestTooLargeError,
  grpcErrorToKmsError,
  grpcStatus,
  InvalidGcpKeyIdError,
} from './gcp/errors.js'
import { checksumMatches, INTEGRITY } from './gcp/integrity.js'
import { bytesOf, dateOf, keyState, protectionLevel, secondsOf, stateName } from './gcp/messages.js'
import {
  type GcpKmsProviderOptions,
  GcpKmsProviderOptionsSchema,
  type ParsedGcpKmsProviderOptions,
} from './gcp/options.js'
import {
  FULL_KEY_NAME,
  LOCATION_ID,
  PROJECT_ID,
  RESOURCE_ID,
  versionOf,
} from './gcp/resource-names.js'
import { createKeyManagementServiceClient, locateSdk } from './gcp/sdk.js'

/** `EncryptedData.algorithm` for Cloud KMS symmetric keys. */
export const GCP_ALGORITHM = 'GOOGLE_SYMMETRIC_ENCRYPTION'

/** HSM keys: plaintext and additional authenticated data together (service.proto, EncryptRequest). */
const MAX_HSM_DATA = 8192

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
  readonly #o: ParsedGcpKmsProviderOptions
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
    return grpcErrorToKmsError(error, status, this.name)
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
    return createKeyManagementServiceClient({
      apiEndpoint: o.apiEndpoint,
      port: o.port,
      credentials: o.credentials,
      keyFilename: o.keyFilename,
      insecure: o.insecure,
      sdkEntry: this.#sdkEntry,
    })
  }
}
