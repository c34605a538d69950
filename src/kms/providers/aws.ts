/**
 * `AwsKmsProvider`: AWS KMS through `@aws-sdk/client-kms` v3, an optional
 * peer dependency imported on first use.
 *
 * What it does on purpose:
 * - The SDK's own retries are off (`maxAttempts: 1`): the base provider is
 *   the only retry layer, so a 2 s budget stays 2 s. One exception, the
 *   SDK's own: when KMS answers "Signature expired" and the SDK has just
 *   corrected its clock offset from the answer's `Date` header, the request
 *   is signed again and sent once more, at once (a host clock minutes off
 *   would otherwise fail every first call as "access denied").
 * - `rotateKey` reads `CurrentKeyMaterialId` (and any on-demand rotation in
 *   progress) first, so an attempt whose answer was lost is checked, never
 *   repeated: each RotateKeyOnDemand spends one of the key's 25.
 * - `Decrypt` always names the key (`KeyId`), so a ciphertext forged under
 *   another key the caller may use is refused (`IncorrectKeyException`).
 * - A key addressed by alias is recorded by its canonical ARN (`keyId`) and
 *   the alias (`keyAlias`): re-pointing the alias later never breaks
 *   decryption of what it encrypted before.
 * - Errors are mapped by their `name`, never `instanceof` (the SDK has no
 *   class for `ThrottlingException`), and only the name and HTTP status are
 *   kept: the SDK error's hidden `$response` holds the signed request.
 * - A `KMSClient` of the user's own (`client`: proxies, FIPS endpoints, their
 *   middleware) is used as given and never destroyed; its connection options
 *   are its own, so ours are refused beside it. Before its first request it
 *   must show `maxAttempts` 1 (two retry layers multiply: 4 x 3 attempts)
 *   and the `region` the provider was given.
 */
import type * as KmsSdk from '@aws-sdk/client-kms'
import { z } from 'zod'
import { ConfigError } from '../../errors.js'
import { importOptional } from '../../internal/optional-import.js'
import { fn, parseOptions } from '../../internal/options.js'
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
  DecryptionError,
  EncryptionError,
  KeyDisabledError,
  KeyNotFoundError,
  KeyRotationError,
  KmsAccessDeniedError,
  KmsError,
  ProviderConnectionError,
  type SanitizedCause,
} from '../errors.js'
import type { EncryptionContext, KeyState, RotationPolicy } from '../models.js'

/** The npm package this provider needs. */
export const AWS_KMS_PACKAGE = '@aws-sdk/client-kms'

/** `EncryptedData.algorithm` for AWS KMS symmetric keys. */
export const AWS_ALGORITHM = 'SYMMETRIC_DEFAULT'

/** Static AWS credentials (our own shape: the SDK's types stay out of our declarations). */
export interface AwsCredentials {
  readonly accessKeyId: string
  readonly secretAccessKey: string
  readonly sessionToken?: string
}

/**
 * A function returning credentials, e.g. one of `@aws-sdk/credential-providers`
 * (`fromTemporaryCredentials(...)`, `fromIni(...)`): the SDK calls it and caches
 * the result until `expiration`.
 */
export type AwsCredentialsProvider = () => Promise<AwsCredentials & { readonly expiration?: Date }>

// Not strict: credentials objects coming from the SDK's own providers carry
// extra fields (`$source`, `expiration`, `accountId`); only these three are used.
const CredentialsSchema = z.object({
  accessKeyId: z.string().min(1),
  secretAccessKey: z.string().min(1),
  sessionToken: z.string().min(1).optional(),
})

/**
 * A command as the provider hands it to {@link AwsKmsClient.send}: an
 * `@aws-sdk/client-kms` command object (`EncryptCommand`, ...), whose
 * `input` is the request.
 */
export interface AwsKmsCommand {
  readonly input: object
}

/**
 * The part of `KMSClient` (`@aws-sdk/client-kms` v3) the provider uses. A
 * `KMSClient` you configured yourself (proxy agent, FIPS endpoint, custom
 * middleware) satisfies it; pass it as the `client` option. The SDK is still
 * imported, for the command classes.
 */
export interface AwsKmsClient {
  /**
   * Sends one command. `abortSignal` is the attempt's: it ends when the
   * attempt's share of `timeoutMs` is spent.
   */
  send(command: AwsKmsCommand, options: { abortSignal: AbortSignal }): Promise<unknown>
  /** The client's resolved configuration, where these are read. */
  readonly config?: {
    /**
     * Clock offset the SDK learned from KMS's `Date` header; a change after a
     * "Signature expired" refusal lets the provider send once more at once.
     */
    readonly systemClockOffset?: number
    /** Must resolve to 1: the provider's retries are the only layer. */
    readonly maxAttempts?: number | (() => Promise<number>)
    /** Must resolve to the provider's `region`. */
    readonly region?: string | (() => Promise<string>)
  }
}

const isAwsClient = (v: unknown): v is AwsKmsClient =>
  typeof (v as Partial<AwsKmsClient> | null)?.send === 'function'

/** Options that configure the client the provider builds: meaningless beside an injected one. */
const CLIENT_BUILD_OPTIONS = ['endpoint', 'credentials', 'connectTimeoutMs'] as const

export const AwsKmsProviderOptionsSchema = BaseKmsProviderOptionsSchema.extend({
  /**
   * AWS region of the keys, e.g. `eu-west-1`. Required: without it the SDK
   * would go looking for one (environment, profile, then the EC2 metadata
   * service). With `client`, it must be that client's region (checked before
   * its first request).
   */
  region: z
    .string()
    .max(32)
    .regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, 'must be an AWS region such as "eu-west-1"'),
  /**
   * Endpoint override (a VPC endpoint, FIPS endpoint or a local emulator).
   * @default the SDK's regional endpoint, https://kms.<region>.amazonaws.com
   */
  endpoint: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  /**
   * Static credentials, or a function returning them.
   * @default the SDK's default chain (environment, SSO, profile, container and instance roles)
   */
  credentials: z
    .union([CredentialsSchema, fn<AwsCredentialsProvider>('() => Promise<credentials>')])
    .optional(),
  /**
   * Most time to open a TCP/TLS connection; capped by `timeoutMs`.
   * @default 3000
   */
  // Optional rather than defaulted, so that setting it beside `client` can be refused.
  connectTimeoutMs: z.number().int().min(1).max(60_000).optional(),
  /**
   * A `KMSClient` you built yourself (any object with the {@link AwsKmsClient}
   * `send`), built with `maxAttempts: 1`. The provider sends every request
   * through it, with the attempt's `abortSignal`, and does not destroy it.
   * Excludes `endpoint`, `credentials` and `connectTimeoutMs`: configure
   * those on the client.
   * @default a `KMSClient` built from the options above
   */
  client: z
    .custom<AwsKmsClient>(isAwsClient, 'must be a KMSClient (an object with send)')
    .optional(),
})
  .strict()
  .superRefine((o, ctx) => {
    if (o.client === undefined) return
    for (const field of CLIENT_BUILD_OPTIONS)
      if (o[field] !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: [field],
          message: 'cannot be combined with client: configure it on the client',
        })
  })

export type AwsKmsProviderOptions = z.input<typeof AwsKmsProviderOptionsSchema>

type Sdk = typeof KmsSdk
interface Loaded {
  readonly sdk: Sdk
  /**
   * The provider's own `KMSClient`, or the injected client typed as one:
   * only `send` and `config.systemClockOffset` (read optionally) are used.
   */
  readonly client: KmsSdk.KMSClient
}

/** Drops an absent session token (the SDK's types are exact about optional fields). */
function sdkCredentials(
  c: AwsCredentialsProvider | z.output<typeof CredentialsSchema>,
): AwsCredentialsProvider | AwsCredentials {
  if (typeof c === 'function') return c
  return {
    accessKeyId: c.accessKeyId,
    secretAccessKey: c.secretAccessKey,
    ...(c.sessionToken === undefined ? {} : { sessionToken: c.sessionToken }),
  }
}

/** `alias/<name>` or `arn:<partition>:kms:<region>:<account>:alias/<name>`. */
function isAlias(keyId: string): boolean {
  return keyId.startsWith('alias/') || /^arn:[a-z-]+:kms:[^:]*:[^:]*:alias\//.test(keyId)
}

/** AWS treats an empty context as none; sending `{}` is pointless. */
function contextParam(context: EncryptionContext): { EncryptionContext?: Record<string, string> } {
  return Object.keys(context).length === 0 ? {} : { EncryptionContext: { ...context } }
}

const KEY_STATES: Readonly<Record<string, KeyState>> = {
  Enabled: 'enabled',
  Disabled: 'disabled',
  PendingDeletion: 'pending_deletion',
  PendingReplicaDeletion: 'pending_deletion',
}

/**
 * AWS `KeyState` → ours. States where the key cannot be used yet or any more
 * (`Creating`, `PendingImport`, `Unavailable`, `Updating`, ...) are `disabled`:
 * what matters to a caller is that encrypt and decrypt will be refused.
 */
function keyState(state: string | undefined): KeyState {
  return (state === undefined ? undefined : KEY_STATES[state]) ?? 'disabled'
}

const NOT_FOUND = new Set(['NotFoundException', 'InvalidArnException'])
const UNDECRYPTABLE = new Set(['InvalidCiphertextException', 'IncorrectKeyException'])
const DISABLED = new Set(['DisabledException', 'KMSInvalidStateException'])
const DENIED = new Set([
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'IncompleteSignatureException',
  'MissingAuthenticationTokenException',
  'InvalidClientTokenId',
  'ExpiredTokenException',
  'SignatureDoesNotMatch',
])
const THROTTLED = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
])
const UNAVAILABLE = new Set([
  'KMSInternalException',
  'KeyUnavailableException',
  'DependencyTimeoutException',
  'InternalFailure',
  'ServiceUnavailable',
])
const TIMED_OUT = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException'])
/** Refusals of a request's signing time (the SDK's CLOCK_SKEW_ERROR_CODES, less the generic ones). */
const CLOCK_SKEW = new Set([
  'InvalidSignatureException',
  'RequestExpired',
  'RequestInTheFuture',
  'RequestTimeTooSkewed',
])

/**
 * Whether KMS refused the request's time and the SDK has corrected its clock
 * since it signed it (`$metadata.clockSkewCorrected`, set by the SDK's SigV4
 * signer for skews of 4 minutes or more; or the offset moved, which also
 * covers a correction back towards zero).
 */
function skewCorrected(err: unknown, offsetBefore: number, offsetAfter: number): boolean {
  const e = err as { $metadata?: { clockSkewCorrected?: unknown }; message?: unknown } | null
  if (e?.$metadata?.clockSkewCorrected === true) return true
  const name = errorName(err)
  if (name === undefined || !CLOCK_SKEW.has(name) || offsetAfter === offsetBefore) return false
  return (
    name !== 'InvalidSignatureException' ||
    (typeof e?.message === 'string' && /Signature (expired|not yet current)/.test(e.message))
  )
}

/** The error's `name` when it looks like an identifier (it comes from the server's `__type`). */
function errorName(err: unknown): string | undefined {
  const name = (err as { name?: unknown } | null)?.name
  return typeof name === 'string' && /^[A-Za-z][A-Za-z0-9_.]{0,63}$/.test(name) ? name : undefined
}

function httpStatus(err: unknown): number | undefined {
  const status = (err as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata
    ?.httpStatusCode
  return typeof status === 'number' && Number.isInteger(status) ? status : undefined
}

/**
 * @example
 * ```ts
 * import { AwsKmsProvider } from 'fraiseql-security/kms'
 * const kms = new AwsKmsProvider({ region: 'eu-west-1' })   // default credential chain
 * const sealed = await kms.encrypt('secret', 'alias/app', { tenant: 't1' })
 * sealed.keyReference.keyId    // 'arn:aws:kms:eu-west-1:111122223333:key/…'
 * sealed.keyReference.keyAlias // 'alias/app'
 * const plain = await kms.decrypt(sealed)
 * ```
 */
export class AwsKmsProvider extends BaseKmsProvider {
  /** AWS KMS `Encrypt` takes at most 4096 bytes; use a data key for more. */
  protected override readonly maxPlaintextBytes: number = 4096
  /** The region the keys live in. */
  readonly region: string
  readonly #clientConfig: KmsSdk.KMSClientConfig
  readonly #injected: AwsKmsClient | undefined
  readonly #timeoutMs: number
  #loaded: Promise<Loaded> | undefined

  constructor(options: AwsKmsProviderOptions) {
    const o = parseOptions('AwsKmsProvider', AwsKmsProviderOptionsSchema, options)
    super('aws', baseOptionsOf(o))
    this.region = o.region
    this.#timeoutMs = o.timeoutMs
    this.#injected = o.client
    const connectTimeoutMs = o.connectTimeoutMs ?? 3000
    this.#clientConfig = {
      region: o.region,
      ...(o.endpoint === undefined ? {} : { endpoint: o.endpoint }),
      ...(o.credentials === undefined ? {} : { credentials: sdkCredentials(o.credentials) }),
      // Ours is the only retry layer: SDK retries would multiply our attempts.
      maxAttempts: 1,
      requestHandler: {
        requestTimeout: o.timeoutMs,
        // Without it node-http-handler only logs a warning when requestTimeout passes.
        throwOnRequestTimeout: true,
        connectionTimeout: Math.min(connectTimeoutMs, o.timeoutMs),
      },
    }
  }

  /**
   * Turns on automatic rotation every `periodDays` days (`EnableKeyRotation`;
   * AWS accepts 90 to 2560) and returns the resulting policy. An
   * administrative call: one attempt within `timeoutMs`, not retried
   * (it is idempotent, so calling it again is safe).
   *
   * @example
   * ```ts
   * const policy = await kms.enableRotation('alias/app', 180)
   * policy.nextRotation // about 180 days from now
   * ```
   */
  async enableRotation(keyId: string, periodDays = 365): Promise<RotationPolicy> {
    if (typeof keyId !== 'string' || !/^[\x21-\x7e]{1,256}$/.test(keyId)) {
      throw new KmsError('Key id must be 1-256 printable ASCII characters', { provider: this.name })
    }
    if (!Number.isInteger(periodDays) || periodDays < 90 || periodDays > 2560) {
      throw new KmsError('Rotation period must be a whole number of days from 90 to 2560', {
        provider: this.name,
      })
    }
    const { sdk } = await this.#load()
    const signal = AbortSignal.timeout(this.#timeoutMs)
    const call = { signal, timeoutMs: this.#timeoutMs }
    try {
      const target = await this.#keyArn(keyId, call)
      await this.#send(
        (c, o) =>
          c.send(
            new sdk.EnableKeyRotationCommand({ KeyId: target, RotationPeriodInDays: periodDays }),
            o,
          ),
        call,
      )
    } catch (err) {
      if (signal.aborted) throw new ProviderConnectionError('timeout', { provider: this.name })
      const mapped = this.mapError(err, 'rotateKey')
      if (mapped.constructor !== KmsError) throw mapped
      throw new KeyRotationError({
        provider: this.name,
        ...(mapped.cause === undefined ? {} : { cause: mapped.cause as SanitizedCause }),
      })
    }
    return this.getRotationPolicy(keyId)
  }

  /**
   * Releases the sockets of the client the provider built (it builds a new
   * one if used again). An injected client is left open: it is its owner's.
   */
  async close(): Promise<void> {
    const loaded = this.#loaded
    this.#loaded = undefined
    if (loaded === undefined || this.#injected !== undefined) return
    ;(await loaded.catch(() => undefined))?.client.destroy()
  }

  protected async doEncrypt(
    plaintext: Uint8Array,
    keyId: string,
    context: EncryptionContext,
    call: CallOptions,
  ): Promise<EncryptResult> {
    const { sdk } = await this.#load()
    const out = await this.#send(
      (c, o) =>
        c.send(
          new sdk.EncryptCommand({ KeyId: keyId, Plaintext: plaintext, ...contextParam(context) }),
          o,
        ),
      call,
    )
    if (!(out.CiphertextBlob instanceof Uint8Array))
      throw new EncryptionError({ provider: this.name })
    return {
      ciphertext: out.CiphertextBlob,
      ...this.#identity(keyId, out.KeyId),
      algorithm: out.EncryptionAlgorithm ?? AWS_ALGORITHM,
    }
  }

  protected async doDecrypt(
    ciphertext: Uint8Array,
    keyId: string,
    context: EncryptionContext,
    call: CallOptions,
  ): Promise<Uint8Array> {
    const { sdk } = await this.#load()
    // Always the explicit KeyId: KMS then refuses a blob made under any other key.
    const out = await this.#send(
      (c, o) =>
        c.send(
          new sdk.DecryptCommand({
            CiphertextBlob: ciphertext,
            KeyId: keyId,
            ...contextParam(context),
          }),
          o,
        ),
      call,
    )
    if (!(out.Plaintext instanceof Uint8Array)) throw new DecryptionError({ provider: this.name })
    return out.Plaintext
  }

  protected async doGenerateDataKey(
    keyId: string,
    context: EncryptionContext,
    call: CallOptions,
  ): Promise<DataKeyResult> {
    const { sdk } = await this.#load()
    const out = await this.#send(
      (c, o) =>
        c.send(
          new sdk.GenerateDataKeyCommand({
            KeyId: keyId,
            KeySpec: 'AES_256',
            ...contextParam(context),
          }),
          o,
        ),
      call,
    )
    if (!(out.Plaintext instanceof Uint8Array) || !(out.CiphertextBlob instanceof Uint8Array)) {
      out.Plaintext?.fill(0)
      throw new EncryptionError({ provider: this.name })
    }
    return {
      plaintextKey: out.Plaintext,
      encryptedKey: out.CiphertextBlob,
      ...this.#identity(keyId, out.KeyId),
      algorithm: AWS_ALGORITHM,
    }
  }

  /**
   * `CurrentKeyMaterialId` changes when a rotation completes; an on-demand
   * rotation KMS has started but not finished shows in GetKeyRotationStatus's
   * `OnDemandRotationStartDate`. Either moving means a rotation happened.
   */
  protected override async doRotationState(
    keyId: string,
    call: CallOptions,
  ): Promise<RotationState> {
    const { sdk } = await this.#load()
    const meta = await this.#describe(keyId, call)
    const arn = meta.Arn ?? meta.KeyId ?? keyId
    const status = await this.#send(
      (c, o) => c.send(new sdk.GetKeyRotationStatusCommand({ KeyId: arn }), o),
      call,
    )
    const material = meta.CurrentKeyMaterialId
    const started = status.OnDemandRotationStartDate?.getTime()
    return {
      // Without a material id (a service that predates it) a lost answer cannot be checked.
      marker: material === undefined ? undefined : `${material}|${started ?? ''}`,
      key: this.#description(keyId, meta),
    }
  }

  protected async doRotateKey(
    _keyId: string,
    call: CallOptions,
    before: RotationState,
  ): Promise<KeyDescription> {
    const { sdk } = await this.#load()
    // RotateKeyOnDemand takes a key id or ARN only: the ARN the state read resolved.
    await this.#send(
      (c, o) => c.send(new sdk.RotateKeyOnDemandCommand({ KeyId: before.key.keyId }), o),
      call,
    )
    // Nothing KMS describes changes with a rotation (it numbers no versions):
    // the key as read before is the answer, and no read after can fail a
    // rotation that happened.
    return before.key
  }

  protected async doGetKeyInfo(keyId: string, call: CallOptions): Promise<KeyDescription> {
    return this.#description(keyId, await this.#describe(keyId, call))
  }

  protected async doGetRotationPolicy(keyId: string, call: CallOptions): Promise<RotationPolicy> {
    const { sdk } = await this.#load()
    const arn = await this.#keyArn(keyId, call)
    const out = await this.#send(
      (c, o) => c.send(new sdk.GetKeyRotationStatusCommand({ KeyId: arn }), o),
      call,
    )
    const enabled = out.KeyRotationEnabled === true
    const period = out.RotationPeriodInDays
    return {
      enabled,
      rotationPeriodDays: enabled && typeof period === 'number' && period > 0 ? period : null,
      // Only an on-demand rotation in progress is reported here; completed ones
      // need ListKeyRotations, a permission this provider does not ask for.
      lastRotation: out.OnDemandRotationStartDate ?? null,
      nextRotation: enabled ? (out.NextRotationDate ?? null) : null,
    }
  }

  /**
   * AWS error names onto the taxonomy. Only the name and the HTTP status are
   * kept: the SDK error's hidden `$response` holds the signed request (access
   * key id, signature, session token).
   */
  protected override mapError(error: unknown, operation: KmsOperation): KmsError {
    if (error instanceof KmsError) return error
    const name = errorName(error)
    const status = httpStatus(error)
    // node-http-handler renames socket failures (ECONNRESET, EPIPE) to
    // `TimeoutError`: the errno code says what really happened.
    const errno = errorCode(error)
    const network = isNetworkError(error) && errno !== 'ETIMEDOUT' ? errno : undefined
    const code = network ?? name
    const cause: SanitizedCause = {
      service: 'aws-kms',
      ...(code === undefined ? {} : { code }),
      ...(status === undefined ? {} : { status }),
    }
    const options = { provider: this.name, cause }
    if (network !== undefined) return new ProviderConnectionError('network', options)
    if (errno === 'ETIMEDOUT') return new ProviderConnectionError('timeout', options)
    if (name !== undefined) {
      if (NOT_FOUND.has(name)) return new KeyNotFoundError(options)
      if (UNDECRYPTABLE.has(name)) return new DecryptionError({ provider: this.name })
      if (DISABLED.has(name)) return new KeyDisabledError(options)
      if (DENIED.has(name)) return new KmsAccessDeniedError(options)
      // On RotateKeyOnDemand, LimitExceeded is the per-key cap on on-demand
      // rotations: retrying cannot help. Elsewhere it is a request-rate limit.
      if (name === 'LimitExceededException') {
        return operation === 'rotateKey'
          ? new KeyRotationError(options)
          : new ProviderConnectionError('throttled', options)
      }
      if (THROTTLED.has(name)) return new ProviderConnectionError('throttled', options)
      if (UNAVAILABLE.has(name)) return new ProviderConnectionError('unavailable', options)
      if (TIMED_OUT.has(name)) return new ProviderConnectionError('timeout', options)
    }
    if (status === 429) return new ProviderConnectionError('throttled', options)
    if (status !== undefined && status >= 500) {
      return new ProviderConnectionError('unavailable', options)
    }
    return new KmsError('AWS KMS call failed', options)
  }

  /** The canonical ARN KMS answered with, and the alias when the caller used one. */
  #identity(asked: string, answered: string | undefined): { keyId: string; keyAlias?: string } {
    return {
      keyId: answered ?? asked,
      ...(isAlias(asked) && answered !== undefined ? { keyAlias: asked } : {}),
    }
  }

  async #describe(keyId: string, call: CallOptions): Promise<KmsSdk.KeyMetadata> {
    const { sdk } = await this.#load()
    const out = await this.#send(
      (c, o) => c.send(new sdk.DescribeKeyCommand({ KeyId: keyId }), o),
      call,
    )
    if (out.KeyMetadata === undefined) {
      throw new KmsError('AWS KMS described no key', { provider: this.name })
    }
    return out.KeyMetadata
  }

  /**
   * One request, and one more if KMS refused its signing time and the SDK has
   * corrected its clock from the refusal (the SDK's own retry policy, which
   * `maxAttempts: 1` turns off with the rest). Same signal: same attempt.
   */
  async #send<T>(
    request: (client: KmsSdk.KMSClient, options: { abortSignal: AbortSignal }) => Promise<T>,
    call: CallOptions,
  ): Promise<T> {
    const { client } = await this.#load()
    const options = { abortSignal: call.signal }
    // Optional: an injected client need not expose its configuration.
    const clockOffset = () => (client as AwsKmsClient).config?.systemClockOffset ?? 0
    const offset = clockOffset()
    try {
      return await request(client, options)
    } catch (err) {
      if (!skewCorrected(err, offset, clockOffset())) throw err
      return await request(client, options)
    }
  }

  /** Rotation calls take a key id or ARN only: resolve an alias first. */
  async #keyArn(keyId: string, call: CallOptions): Promise<string> {
    if (!isAlias(keyId)) return keyId
    const meta = await this.#describe(keyId, call)
    return meta.Arn ?? meta.KeyId ?? keyId
  }

  #description(asked: string, meta: KmsSdk.KeyMetadata): KeyDescription {
    return {
      ...this.#identity(asked, meta.Arn ?? meta.KeyId),
      state: keyState(meta.KeyState),
      ...(meta.CreationDate instanceof Date ? { createdAt: meta.CreationDate } : {}),
      // AWS does not number key material versions.
      currentVersion: null,
      versions: null,
    }
  }

  /**
   * Imports the SDK (the command classes) and builds the client, or checks
   * the injected one, once; a failure is tried again on the next call.
   */
  #load(): Promise<Loaded> {
    this.#loaded ??= this.#open().catch((err: unknown) => {
      this.#loaded = undefined
      throw err
    })
    return this.#loaded
  }

  async #open(): Promise<Loaded> {
    const sdk = await importOptional<Sdk>(AWS_KMS_PACKAGE, 'AwsKmsProvider')
    const injected = this.#injected
    if (injected === undefined) return { sdk, client: new sdk.KMSClient(this.#clientConfig) }
    await this.#checkInjected(injected)
    return { sdk, client: injected as unknown as KmsSdk.KMSClient }
  }

  /**
   * Precondition of using an injected client: it does not retry on its own
   * (the SDK's default is 3 attempts, which our 4 would multiply into 12
   * and a 2 s budget into minutes of waiting), and it signs for the region
   * the provider reports. What it does not expose cannot be checked.
   */
  async #checkInjected(client: AwsKmsClient): Promise<void> {
    const config = client.config
    const issues: Array<{ path: string[]; message: string }> = []
    const attempts = await resolved(config?.maxAttempts)
    if (attempts !== undefined && attempts !== 1)
      issues.push({
        path: ['client'],
        message: `retries on its own (maxAttempts ${String(attempts)}): build it with maxAttempts: 1, this provider's maxAttempts is the one retry layer`,
      })
    const region = await resolved(config?.region)
    if (region !== undefined && region !== this.region)
      issues.push({ path: ['region'], message: `is not the injected client's region (${region})` })
    if (issues.length > 0) throw new ConfigError('AwsKmsProvider', issues)
  }
}

/** A configuration value, or the SDK's provider function of one. */
async function resolved<T>(value: T | (() => Promise<T>) | undefined): Promise<T | undefined> {
  return typeof value === 'function' ? await (value as () => Promise<T>)() : value
}
