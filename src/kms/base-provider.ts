/**
 * `BaseKmsProvider`: the template every KMS back end fills in. Public methods
 * check inputs and outputs, bound the whole call by one deadline, retry what
 * is worth retrying with jittered backoff (ours is the only retry layer: each
 * provider turns its SDK's own retries off, or a 2 s budget becomes minutes),
 * map failures onto the error taxonomy and record one OpenTelemetry span.
 * Subclasses implement only the `do*` methods (and, usually, `mapError`).
 *
 * What is retried: every operation but `rotateKey` is safe to repeat (reads;
 * encryptions whose lost result is never used), so transient failures are
 * retried as they come. `rotateKey` is not idempotent: after a failed
 * attempt that may have reached the service, the next attempt first reads
 * the key's state (`doRotationState`) and only rotates if the earlier one
 * did not. A service's own wait hint (`retryAfterMs`) is honoured within the
 * call's deadline, or ends the call at once when it does not fit.
 */
import { type Span, SpanKind, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api'
import { z } from 'zod'
import { SecurityError } from '../errors.js'
import { type Clock, systemClock } from '../internal/clock.js'
import { ClockOptionSchema, fn, parseOptions } from '../internal/options.js'
import {
  DecryptionError,
  EncryptionError,
  KeyDisabledError,
  KeyNotFoundError,
  KeyRotationError,
  KmsAccessDeniedError,
  KmsConfigurationError,
  KmsError,
  ProviderConnectionError,
  type SanitizedCause,
} from './errors.js'
import {
  DataKeyPair,
  type EncryptedData,
  EncryptedData as EncryptedDataClass,
  type EncryptionContext,
  isEncryptionContext,
  type KeyInfo,
  KeyReference,
  type KeyState,
  type RotationPolicy,
} from './models.js'

/** The operations every provider implements. */
export type KmsOperation =
  | 'encrypt'
  | 'decrypt'
  | 'generateDataKey'
  | 'rotateKey'
  | 'getKeyInfo'
  | 'getRotationPolicy'

/** Per-attempt call options handed to the `do*` methods. */
export interface CallOptions {
  /** Aborted when this attempt's time is up; pass it to clients that accept one. */
  readonly signal: AbortSignal
  /** Milliseconds this attempt may take (for clients that only take a timeout). */
  readonly timeoutMs: number
}

/** What `doEncrypt` returns. */
export interface EncryptResult {
  readonly ciphertext: Uint8Array
  /** The canonical id of the key that encrypted (e.g. an ARN for an alias); defaults to the id asked for. */
  readonly keyId?: string
  /** Set when the caller addressed the key by alias. */
  readonly keyAlias?: string
  readonly algorithm: string
}

/** What `doGenerateDataKey` returns. */
export interface DataKeyResult extends Omit<EncryptResult, 'ciphertext'> {
  /** 32 bytes (AES-256). The base zeroes it once copied into the {@link DataKeyPair}. */
  readonly plaintextKey: Uint8Array
  readonly encryptedKey: Uint8Array
}

/**
 * The key's state as `rotateKey` compares it before and after an attempt
 * whose outcome is unknown.
 */
export interface RotationState {
  /**
   * A value that changes with every rotation (Vault's `latest_version`, AWS's
   * `CurrentKeyMaterialId`, Cloud KMS's highest version id), or undefined when
   * the back end cannot tell: then an uncertain attempt is never repeated.
   */
  readonly marker: string | undefined
  /** The key as described at the same moment (its canonical id, for the rotation). */
  readonly key: KeyDescription
}

/** What `doGetKeyInfo` and `doRotateKey` return. */
export interface KeyDescription {
  readonly keyId: string
  readonly keyAlias?: string
  readonly state: KeyState
  readonly createdAt?: Date
  readonly currentVersion: number | null
  readonly versions: number | null
}

export const BaseKmsProviderOptionsSchema = z.object({
  /**
   * The name this provider is registered under; `KeyReference.provider` carries it.
   * @default the provider type: 'vault', 'aws', 'gcp' or 'local'
   */
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, "_", "." or "-"')
    .optional(),
  /**
   * Budget for a whole call, retries included. A persistent outage ends in
   * `ProviderConnectionError` within it.
   * @default 10000
   */
  timeoutMs: z.number().int().min(1).max(600_000).default(10_000),
  /**
   * Most attempts per call (1 disables retries).
   * @default 4
   */
  maxAttempts: z.number().int().min(1).max(20).default(4),
  /**
   * First retry delay; doubles each attempt, with full jitter.
   * @default 50
   */
  retryBaseDelayMs: z.number().int().min(0).max(60_000).default(50),
  /**
   * Longest delay between two attempts (a service's own `Retry-After` hint
   * may ask for more; it is honoured while it fits in `timeoutMs`).
   * @default 1000
   */
  retryMaxDelayMs: z.number().int().min(0).max(600_000).default(1000),
  /**
   * First delay after a throttling answer that named no wait of its own
   * (AWS `ThrottlingException`, a 429 without `Retry-After`); doubles each
   * attempt, with full jitter, up to `retryMaxDelayMs`. The AWS SDK's own
   * base for throttling errors.
   * @default 500
   */
  throttleBaseDelayMs: z.number().int().min(0).max(60_000).default(500),
  /** Clock in ms. @default Date.now */
  clock: ClockOptionSchema.optional(),
  /** Uniform random in [0, 1) for jitter. @default Math.random */
  random: fn<() => number>('() => [0, 1)').optional(),
  /** Waits between attempts. @default setTimeout */
  sleep: fn<(ms: number) => Promise<void>>('ms => Promise<void>').optional(),
  /** Tracer for the provider's spans. @default the global tracer provider's 'fraiseql-security' tracer */
  tracer: z
    .custom<Tracer>((v) => typeof (v as Partial<Tracer> | null)?.startActiveSpan === 'function')
    .optional(),
})

export type BaseKmsProviderOptions = z.input<typeof BaseKmsProviderOptionsSchema>

const BASE_KEYS = Object.keys(BaseKmsProviderOptionsSchema.shape) as Array<
  keyof BaseKmsProviderOptions
>

/** The base options inside a provider's (already parsed) options, for `super()`. */
export function baseOptionsOf(
  options: Partial<Record<keyof BaseKmsProviderOptions, unknown>>,
): BaseKmsProviderOptions {
  const out: Record<string, unknown> = {}
  for (const key of BASE_KEYS) if (options[key] !== undefined) out[key] = options[key]
  return out as BaseKmsProviderOptions
}

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
])

/** A thrown value's `code`, when it has a string one. */
export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}

/** Whether a thrown value is a transport failure (reset, refused, DNS, socket timeout). */
export function isNetworkError(err: unknown): boolean {
  const code = errorCode(err)
  return code !== undefined && NETWORK_CODES.has(code)
}

/**
 * Failures that prove a request was not acted on: throttled (refused before
 * processing), or a connection that never opened. Anything else sent to the
 * service may have taken effect.
 */
function notReceived(error: KmsError): boolean {
  if (!(error instanceof ProviderConnectionError)) return !error.retryable
  if (error.reason === 'throttled') return true
  const code = (error.cause as SanitizedCause | undefined)?.code
  return code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN'
}

// A ref'd timer on purpose: a call waiting out its backoff is pending work.
// Unref'd, a server whose only pending work was `await keyManager.initialize()`
// during a KMS outage exited (code 13, or 0 from a `.then()` chain) with the
// promise never settled, instead of getting ERR_KMS_PROVIDER_UNAVAILABLE.
const defaultSleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms)
  })

/**
 * @example
 * ```ts
 * class MyKms extends BaseKmsProvider {
 *   protected async doEncrypt(plaintext, keyId, context, call) { ... }
 *   // doDecrypt, doGenerateDataKey, doRotateKey, doGetKeyInfo, doGetRotationPolicy
 * }
 * ```
 */
export abstract class BaseKmsProvider {
  /** The registered name (`KeyReference.provider`). */
  readonly name: string
  /** Largest plaintext the back end accepts in one call. */
  protected readonly maxPlaintextBytes: number = 64 * 1024
  protected readonly clock: Clock
  readonly #options: z.output<typeof BaseKmsProviderOptionsSchema>
  readonly #random: () => number
  readonly #sleep: (ms: number) => Promise<void>
  readonly #tracer: Tracer

  protected constructor(defaultName: string, options: BaseKmsProviderOptions | undefined) {
    this.#options = parseOptions(
      `${defaultName} KMS provider`,
      BaseKmsProviderOptionsSchema,
      options ?? {},
    )
    this.name = this.#options.name ?? defaultName
    this.clock = this.#options.clock ?? systemClock
    this.#random = this.#options.random ?? Math.random
    this.#sleep = this.#options.sleep ?? defaultSleep
    this.#tracer = this.#options.tracer ?? trace.getTracer('fraiseql-security')
  }

  /** Encrypts `plaintext` (bytes, or a string as UTF-8) under `keyId`, binding `context`. */
  async encrypt(
    plaintext: Uint8Array | string,
    keyId: string,
    context?: EncryptionContext,
  ): Promise<EncryptedData> {
    const bytes = this.#plaintextBytes(plaintext)
    const ctx = this.#context(context)
    await this.#ready(keyId)
    const result = await this.#run('encrypt', keyId, (call) =>
      this.doEncrypt(bytes, keyId, ctx, call),
    )
    // Postcondition: a provider never hands back an empty ciphertext or the plaintext itself.
    if (result.ciphertext.length === 0 || Buffer.from(result.ciphertext).equals(bytes)) {
      throw new EncryptionError({ provider: this.name })
    }
    return new EncryptedDataClass({
      ciphertext: result.ciphertext,
      keyReference: this.reference(result.keyId ?? keyId, result.keyAlias),
      algorithm: result.algorithm,
      encryptedAt: new Date(this.clock()),
      context: ctx,
    })
  }

  /**
   * Decrypts data this provider encrypted. The context defaults to the one
   * recorded in `encrypted`; a different one fails with `DecryptionError`.
   */
  async decrypt(encrypted: EncryptedData, context?: EncryptionContext): Promise<Uint8Array> {
    // Precondition: the reference names this provider (a KeyManager routes by it).
    if (!(encrypted instanceof EncryptedDataClass))
      throw new DecryptionError({ provider: this.name })
    if (encrypted.keyReference.provider !== this.name) {
      throw new KmsError(
        `Encrypted data belongs to provider "${encrypted.keyReference.provider}", not "${this.name}"`,
        {
          provider: this.name,
        },
      )
    }
    const ctx = this.#context(context ?? encrypted.context)
    const keyId = encrypted.keyReference.keyId
    await this.prepare(keyId)
    return this.#run('decrypt', keyId, (call) =>
      this.doDecrypt(encrypted.ciphertext, keyId, ctx, call),
    )
  }

  /** A new AES-256 data key: plaintext for local use and its wrapped form for storage. */
  async generateDataKey(keyId: string, context?: EncryptionContext): Promise<DataKeyPair> {
    const ctx = this.#context(context)
    await this.#ready(keyId)
    const result = await this.#run('generateDataKey', keyId, (call) =>
      this.doGenerateDataKey(keyId, ctx, call),
    )
    try {
      // Postcondition: exactly 32 bytes of key, and a wrapped form that is not the key.
      if (result.plaintextKey.length !== 32 || result.encryptedKey.length === 0) {
        throw new EncryptionError({ provider: this.name })
      }
      return new DataKeyPair(
        result.plaintextKey,
        result.encryptedKey,
        this.reference(result.keyId ?? keyId, result.keyAlias),
        { algorithm: result.algorithm, context: ctx, createdAt: new Date(this.clock()) },
      )
    } finally {
      result.plaintextKey.fill(0)
    }
  }

  /**
   * Creates a new key version; data encrypted before stays decryptable.
   * Never blindly retried (see the module comment): one call makes at most
   * one rotation.
   */
  async rotateKey(keyId: string): Promise<KeyInfo> {
    await this.#ready(keyId)
    let before: RotationState | undefined
    // Whether an earlier attempt sent the rotation and failed without saying it did not happen.
    let uncertain = false
    const d = await this.#run('rotateKey', keyId, async (call) => {
      before ??= await this.doRotationState(keyId, call)
      if (uncertain) {
        // Precondition of a second rotation: the first one did not take effect.
        const now = await this.doRotationState(keyId, call)
        if (before.marker === undefined || now.marker === undefined) {
          throw new KeyRotationError({
            provider: this.name,
            cause: { service: this.name, code: 'rotation_outcome_unknown' },
          })
        }
        if (now.marker !== before.marker) return this.doRotationResume(keyId, before, now, call)
      }
      uncertain = true
      try {
        return await this.doRotateKey(keyId, call, before)
      } catch (err) {
        const error = err instanceof SecurityError ? err : this.mapError(err, 'rotateKey')
        if (error instanceof KmsError && notReceived(error)) uncertain = false
        throw error
      }
    })
    return this.#info(d)
  }

  async getKeyInfo(keyId: string): Promise<KeyInfo> {
    await this.#ready(keyId)
    return this.#info(
      await this.#run('getKeyInfo', keyId, (call) => this.doGetKeyInfo(keyId, call)),
    )
  }

  async getRotationPolicy(keyId: string): Promise<RotationPolicy> {
    await this.#ready(keyId)
    return this.#run('getRotationPolicy', keyId, (call) => this.doGetRotationPolicy(keyId, call))
  }

  /** A reference to a key of this provider. */
  reference(keyId: string, keyAlias?: string, createdAt?: Date): KeyReference {
    return new KeyReference({
      provider: this.name,
      keyId,
      ...(keyAlias === undefined ? {} : { keyAlias }),
      ...(createdAt === undefined ? {} : { createdAt }),
    })
  }

  /**
   * Runs before each operation, outside the retry loop: provider-specific
   * input checks (a back end's key-name rules) and one-time setup. What it
   * throws reaches the caller as is.
   */
  protected prepare(_keyId: string): Promise<void> | void {}

  protected abstract doEncrypt(
    plaintext: Uint8Array,
    keyId: string,
    context: EncryptionContext,
    call: CallOptions,
  ): Promise<EncryptResult>
  protected abstract doDecrypt(
    ciphertext: Uint8Array,
    keyId: string,
    context: EncryptionContext,
    call: CallOptions,
  ): Promise<Uint8Array>
  protected abstract doGenerateDataKey(
    keyId: string,
    context: EncryptionContext,
    call: CallOptions,
  ): Promise<DataKeyResult>
  /**
   * One rotation attempt. `before` is the key's state read at the start of
   * this `rotateKey` call (its canonical id, e.g. an alias resolved).
   */
  protected abstract doRotateKey(
    keyId: string,
    call: CallOptions,
    before: RotationState,
  ): Promise<KeyDescription>

  /**
   * The key's state, to tell whether a rotation took effect. The default
   * describes the key and knows no marker, so a rotation attempt whose
   * outcome is unknown is reported (`KeyRotationError`, cause code
   * `rotation_outcome_unknown`) rather than repeated: override it where the
   * back end shows a rotation.
   */
  protected async doRotationState(keyId: string, call: CallOptions): Promise<RotationState> {
    return { marker: undefined, key: await this.doGetKeyInfo(keyId, call) }
  }

  /**
   * Finishes a rotation an earlier attempt made (its marker changed): by
   * default, the key as now described. A multi-step rotation (Cloud KMS:
   * create a version, then make it primary) completes its remaining steps.
   */
  protected doRotationResume(
    _keyId: string,
    _before: RotationState,
    now: RotationState,
    _call: CallOptions,
  ): Promise<KeyDescription> {
    return Promise.resolve(now.key)
  }
  protected abstract doGetKeyInfo(keyId: string, call: CallOptions): Promise<KeyDescription>
  protected abstract doGetRotationPolicy(keyId: string, call: CallOptions): Promise<RotationPolicy>

  /**
   * Turns whatever a back end threw into the taxonomy. The default knows
   * transport failures and aborts; providers add their service's codes. Never
   * keep `error` itself as a cause: build a {@link SanitizedCause}.
   */
  protected mapError(error: unknown, _operation: KmsOperation): KmsError {
    if (error instanceof KmsError) return error
    const code = errorCode(error)
    if (isNetworkError(error)) {
      return new ProviderConnectionError('network', {
        provider: this.name,
        ...(code === undefined ? {} : { cause: { service: this.name, code } }),
      })
    }
    return new KmsError('KMS call failed', {
      provider: this.name,
      cause: { service: this.name, ...(code === undefined ? {} : { code }) },
    })
  }

  #plaintextBytes(plaintext: Uint8Array | string): Uint8Array {
    const bytes = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext
    if (!(bytes instanceof Uint8Array))
      throw new KmsError('Plaintext must be bytes or a string', { provider: this.name })
    if (bytes.length > this.maxPlaintextBytes) {
      throw new KmsError(
        `Plaintext exceeds this provider's maximum of ${this.maxPlaintextBytes} bytes`,
        {
          provider: this.name,
        },
      )
    }
    return bytes
  }

  #context(context: EncryptionContext | undefined): EncryptionContext {
    if (context === undefined) return {}
    if (!isEncryptionContext(context)) {
      throw new KmsError('Encryption context must map strings to strings', { provider: this.name })
    }
    return Object.freeze({ ...context })
  }

  /** The generic key-id check, then the provider's own {@link prepare}. */
  async #ready(keyId: string): Promise<void> {
    this.#keyId(keyId)
    await this.prepare(keyId)
  }

  #keyId(keyId: string): void {
    if (typeof keyId !== 'string' || !/^[\x21-\x7e]{1,256}$/.test(keyId)) {
      throw new KmsError('Key id must be 1-256 printable ASCII characters', { provider: this.name })
    }
  }

  #info(d: KeyDescription): KeyInfo {
    return {
      reference: this.reference(d.keyId, d.keyAlias, d.createdAt),
      state: d.state,
      currentVersion: d.currentVersion,
      versions: d.versions,
    }
  }

  /** One deadline, bounded jittered retries, the error mapping and the span. */
  async #run<T>(
    operation: KmsOperation,
    keyId: string,
    attempt: (call: CallOptions) => Promise<T>,
  ): Promise<T> {
    const o = this.#options
    return this.#tracer.startActiveSpan(
      `kms ${operation}`,
      {
        kind: SpanKind.CLIENT,
        attributes: { 'kms.provider': this.name, 'kms.operation': operation, 'kms.key_id': keyId },
      },
      async (span: Span) => {
        const deadline = this.clock() + o.timeoutMs
        let attempts = 0
        try {
          for (;;) {
            attempts++
            const remaining = deadline - this.clock()
            if (remaining <= 0)
              throw new ProviderConnectionError('timeout', { provider: this.name })
            const failure = await this.#attempt(operation, attempt, remaining)
            if (failure.ok) return failure.value
            const error = failure.error
            if (!error.retryable || attempts >= o.maxAttempts) throw this.#final(error, operation)
            const throttled =
              error instanceof ProviderConnectionError && error.reason === 'throttled'
            const base = throttled
              ? Math.max(o.throttleBaseDelayMs, o.retryBaseDelayMs)
              : o.retryBaseDelayMs
            const ceiling = Math.min(o.retryMaxDelayMs, base * 2 ** (attempts - 1))
            // The service's own hint is a floor: retrying earlier only spends an attempt.
            const delay = Math.max(Math.floor(this.#random() * ceiling), error.retryAfterMs ?? 0)
            // A wait that does not fit in the deadline ends the call now, not at the deadline.
            if (this.clock() + delay >= deadline) throw this.#final(error, operation)
            await this.#sleep(delay)
          }
        } catch (err) {
          // Our own non-KMS errors (a missing optional SDK, a bad option) pass through as they are.
          const error = err instanceof SecurityError ? err : this.mapError(err, operation)
          span.setAttribute('error.type', error.code)
          span.setStatus({ code: SpanStatusCode.ERROR, message: error.code })
          throw error
        } finally {
          span.setAttribute('kms.attempts', attempts)
          span.end()
        }
      },
    )
  }

  async #attempt<T>(
    operation: KmsOperation,
    attempt: (call: CallOptions) => Promise<T>,
    timeoutMs: number,
  ): Promise<{ ok: true; value: T } | { ok: false; error: KmsError }> {
    const controller = new AbortController()
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort()
        reject(new ProviderConnectionError('timeout', { provider: this.name }))
      }, timeoutMs)
    })
    try {
      const value = await Promise.race([
        attempt({ signal: controller.signal, timeoutMs }),
        timedOut,
      ])
      return { ok: true, value }
    } catch (err) {
      if (controller.signal.aborted)
        return { ok: false, error: new ProviderConnectionError('timeout', { provider: this.name }) }
      // Not a back-end failure: never retried, never remapped.
      if (err instanceof SecurityError && !(err instanceof KmsError)) throw err
      return { ok: false, error: this.mapError(err, operation) }
    } finally {
      clearTimeout(timer)
      timedOut.catch(() => {})
    }
  }

  /**
   * The error a caller sees once retrying is over. Decryption failures other
   * than an unreachable provider or a missing, disabled or forbidden key
   * become the one opaque `DecryptionError`; a generic failure of another
   * operation becomes that operation's error class, keeping its sanitized cause.
   */
  #final(error: KmsError, operation: KmsOperation): KmsError {
    if (error instanceof ProviderConnectionError) return error
    if (operation === 'decrypt') {
      const kept =
        error instanceof KeyNotFoundError ||
        error instanceof KeyDisabledError ||
        error instanceof KmsAccessDeniedError ||
        error instanceof KmsConfigurationError
      return kept ? error : new DecryptionError({ provider: this.name })
    }
    if (error.constructor !== KmsError) return error
    const options = {
      provider: this.name,
      ...(error.cause === undefined ? {} : { cause: error.cause as SanitizedCause }),
    }
    if (operation === 'rotateKey') return new KeyRotationError(options)
    if (operation === 'encrypt' || operation === 'generateDataKey')
      return new EncryptionError(options)
    return error
  }
}
