/**
 * `VaultKmsProvider`: HashiCorp Vault's Transit secrets engine through
 * node-vault 0.12 (an optional peer dependency, imported on first use).
 *
 * Every path goes through node-vault's generic `read`/`write` with the
 * configured mount: its generated transit helpers hard-code `/transit/` and
 * send their arguments, `requestOptions` included, as the request body. The
 * HTTP exchange itself is ours (vault-http.ts): `X-Vault-Request` on every
 * request, one redirect followed without downgrade, `Retry-After` kept.
 *
 * Context binding. Vault ignores `context` on keys that are not derived, so
 * sending the context there would bind nothing. The provider reads each
 * key's metadata once and binds the context as `associated_data` (GCM
 * additional authenticated data, Vault >= 1.13) on non-derived keys and as
 * `context` (the HKDF input that selects the derived key) on derived keys,
 * both as base64 of the context's canonical JSON. An empty context sends
 * neither, so ciphertexts stay interchangeable with plain `vault write
 * transit/encrypt/...`.
 *
 * An injected node-vault client (`client`: the user's auth method, token
 * renewal, proxy) is used as given: its address, token, namespace and TLS
 * are its own, so ours are refused beside it. Its HTTP exchange is its own
 * too; what the provider still guarantees travels in each request's
 * options: `X-Vault-Request` as a header, the attempt's `timeout` and
 * `signal`. Redirects and `Retry-After` are then the client's transport's
 * (node-vault 0.12's axios follows redirects itself and drops the hint).
 */
import { z } from 'zod'
import { canonicalJson } from '../../internal/canonical-json.js'
import { importOptional } from '../../internal/optional-import.js'
import { parseOptions, RandomBytesOptionSchema } from '../../internal/options.js'
import { type RandomBytes, secureRandomBytes } from '../../internal/random.js'
import {
  BaseKmsProvider,
  BaseKmsProviderOptionsSchema,
  baseOptionsOf,
  type CallOptions,
  type DataKeyResult,
  type EncryptResult,
  errorCode,
  type KeyDescription,
  type KmsOperation,
  type RotationState,
} from '../base-provider.js'
import {
  DecryptionError,
  KeyNotFoundError,
  KmsAccessDeniedError,
  KmsConfigurationError,
  KmsError,
  ProviderConnectionError,
  type SanitizedCause,
} from '../errors.js'
import type { EncryptionContext, RotationPolicy } from '../models.js'
import { createVaultTransport, type VaultTransport, VaultTransportError } from './vault-http.js'

/** One attempt's bounds, for every request it makes. */
interface Attempt {
  readonly deadline: number
  readonly signal: AbortSignal
}

/**
 * Vault's route pattern for `:name` (`GenericNameRegex`, `\w(([\w-.]+)?\w)?`
 * in sdk/framework/path.go). node-vault does not encode paths, so a name
 * outside it could reach another endpoint; it is refused before any request.
 */
export const VAULT_KEY_NAME = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$/

const SEGMENT = '[A-Za-z0-9_-][A-Za-z0-9_.-]*'
const MOUNT = new RegExp(`^/?${SEGMENT}(?:/${SEGMENT})*/?$`)

/** The algorithm recorded on data whose key type is not known (Vault's upsert default). */
const DEFAULT_KEY_TYPE = 'aes256-gcm96'
const SERVICE = 'vault'
const NODE_VAULT = 'node-vault'

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value)
    return (
      (url.protocol === 'http:' || url.protocol === 'https:') &&
      url.username === '' &&
      url.password === '' &&
      url.search === '' &&
      url.hash === ''
    )
  } catch {
    return false
  }
}

/**
 * The part of a node-vault 0.12 client the provider calls: its generic
 * `read` and `write`. A client you built yourself (`require('node-vault')({
 * ... })`, logged in with AppRole or Kubernetes auth, renewing its token)
 * satisfies it; pass it as the `client` option.
 *
 * `requestOptions` is what node-vault merges into the request it sends:
 * the provider passes `headers` (`X-Vault-Request: true`, a fresh object
 * each time, which node-vault adds the token to), `timeout` (ms left in the
 * attempt) and `signal` (the attempt's).
 */
export interface VaultKmsClient {
  read(path: string, requestOptions?: Record<string, unknown>): Promise<unknown>
  write(path: string, data: unknown, requestOptions?: Record<string, unknown>): Promise<unknown>
}

const isVaultClient = (v: unknown): v is VaultKmsClient => {
  const c = v as Partial<VaultKmsClient> | null
  return typeof c?.read === 'function' && typeof c.write === 'function'
}

/** Options that configure the client the provider builds: meaningless beside an injected one. */
const CLIENT_BUILD_OPTIONS = ['address', 'token', 'namespace', 'verifyTls', 'caCert'] as const

export const VaultKmsProviderOptionsSchema = BaseKmsProviderOptionsSchema.extend({
  /**
   * Vault's address, e.g. `https://vault.internal:8200`. Required unless
   * `client` is given: `VAULT_ADDR` is deliberately not read, so the
   * environment never redirects the token.
   * @default none (required without `client`)
   */
  address: z
    .string()
    .refine(isHttpUrl, 'must be an http(s) URL without credentials, query or fragment')
    .transform((v) => v.replace(/\/+$/, ''))
    .optional(),
  /**
   * Vault token sent as `X-Vault-Token`. Required unless `client` is given:
   * `VAULT_TOKEN` is not read. Never appears in an error, a message or a span.
   * @default none (required without `client`)
   */
  token: z
    .string()
    .regex(/^[\x21-\x7e]{1,4096}$/, 'must be 1-4096 printable ASCII characters')
    .optional(),
  /**
   * Vault Enterprise namespace sent as `X-Vault-Namespace` (e.g. `team-a` or
   * `parent/child`). `VAULT_NAMESPACE` is not read.
   * @default none (the root namespace)
   */
  namespace: z
    .string()
    .regex(
      new RegExp(`^${SEGMENT}(?:/${SEGMENT})*/?$`),
      'must be namespace path segments of letters, digits, "_", "-" or "."',
    )
    .optional(),
  /**
   * Path the Transit engine is mounted at; used on every request. A leading
   * or trailing `/` is accepted (as `vault secrets list` prints it).
   * @default 'transit'
   */
  mount: z
    .string()
    .regex(MOUNT, 'must be path segments of letters, digits, "_", "-" or "."')
    .refine((v) => !v.split('/').some((s) => s === '.' || s === '..'), 'must not contain . or ..')
    .transform((v) => v.replace(/^\/|\/$/g, ''))
    .default('transit'),
  /**
   * Verify Vault's TLS certificate. `VAULT_SKIP_VERIFY` is not read: turning
   * verification off takes this option.
   * @default true
   */
  // Optional rather than defaulted, so that setting it beside `client` can be refused.
  verifyTls: z.boolean().optional(),
  /**
   * PEM certificate(s) to trust for Vault's TLS certificate, in addition to
   * nothing else (a private CA). `VAULT_CACERT` is not read.
   * @default Node's bundled root certificates
   */
  caCert: z
    .string()
    .refine((v) => v.includes('-----BEGIN CERTIFICATE-----'), 'must be a PEM certificate')
    .optional(),
  /** Source of the data keys generated locally (see `generateDataKey`). @default crypto.randomBytes */
  randomBytes: RandomBytesOptionSchema.optional(),
  /**
   * A node-vault client you built yourself (any object with the
   * {@link VaultKmsClient} `read` and `write`). Requests go to `mount` through
   * it; the provider does not close it. Excludes `address`, `token`,
   * `namespace`, `verifyTls` and `caCert`: configure those on the client.
   * @default a node-vault client built from the options above, over the provider's own HTTP transport
   */
  client: z
    .custom<VaultKmsClient>(isVaultClient, 'must be a node-vault client (read and write)')
    .optional(),
})
  .strict()
  .superRefine((o, ctx) => {
    const issue = (path: string, message: string) =>
      ctx.addIssue({ code: 'custom', path: [path], message })
    if (o.client !== undefined) {
      for (const field of CLIENT_BUILD_OPTIONS)
        if (o[field] !== undefined)
          issue(field, 'cannot be combined with client: configure it on the client')
      return
    }
    if (o.address === undefined) issue('address', 'is required (or pass a client)')
    if (o.token === undefined) issue('token', 'is required (or pass a client)')
  })

export type VaultKmsProviderOptions = z.input<typeof VaultKmsProviderOptionsSchema>

/** The node-vault client the provider builds (its own types stay out of our declarations). */
interface VaultClient extends VaultKmsClient {
  endpoint: string
  token: string | undefined
  namespace: string | undefined
  pathPrefix: string
  apiVersion: string
}

type NodeVaultFactory = (config: Record<string, unknown>) => VaultClient

interface KeyMeta {
  readonly derived: boolean
  readonly type: string
}

/** The fields of Vault's "read key" answer this provider relies on. */
const KeyDataSchema = z.object({
  type: z.string(),
  derived: z.boolean(),
  latest_version: z.number().int().min(1),
  min_decryption_version: z.number().int().min(0).default(1),
  auto_rotate_period: z.number().min(0).default(0),
  keys: z.record(
    z.string().regex(/^[0-9]+$/),
    z.union([z.number(), z.object({ creation_time: z.string() }).loose()]),
  ),
})
type KeyData = z.output<typeof KeyDataSchema>

const envelope = <T extends z.ZodType>(data: T) => z.object({ data }).loose()
const EncryptAnswer = envelope(z.object({ ciphertext: z.string().startsWith('vault:') }).loose())
const DecryptAnswer = envelope(z.object({ plaintext: z.string() }).loose())
const DataKeyAnswer = envelope(
  z.object({ ciphertext: z.string().startsWith('vault:'), plaintext: z.string() }).loose(),
)
const KeyAnswer = envelope(KeyDataSchema.loose())

/** TLS failures: retrying cannot help, the certificate will not change in a second. */
const TLS_CODE = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_(?:GET|VERIFY)/

/**
 * @example
 * ```ts
 * import { VaultKmsProvider } from 'fraiseql-security/kms'
 * const kms = new VaultKmsProvider({
 *   address: 'https://vault.internal:8200',
 *   token: process.env.APP_VAULT_TOKEN!,
 *   mount: 'transit',
 * })
 * const sealed = await kms.encrypt('secret', 'orders', { tenant: 't1' })
 * const plain = await kms.decrypt(sealed)
 * ```
 */
export class VaultKmsProvider extends BaseKmsProvider {
  /** Vault's default `max_request_size` is 32 MiB; base64 and JSON add a third. */
  protected override readonly maxPlaintextBytes = 16 * 1024 * 1024
  readonly #options: z.output<typeof VaultKmsProviderOptionsSchema>
  readonly #random: RandomBytes
  /** Derived-or-not per key: decides how the context is bound. */
  readonly #meta = new Map<string, KeyMeta>()
  #client: Promise<VaultKmsClient> | undefined
  #transport: VaultTransport | undefined

  constructor(options: VaultKmsProviderOptions) {
    const o = parseOptions('VaultKmsProvider', VaultKmsProviderOptionsSchema, options)
    super('vault', baseOptionsOf(o))
    this.#options = o
    this.#random = o.randomBytes ?? secureRandomBytes
    if (o.client !== undefined) this.#client = Promise.resolve(o.client)
  }

  /** The mount path requests go to (normalized, without slashes at either end). */
  get mount(): string {
    return this.#options.mount
  }

  /**
   * Closes idle keep-alive connections of the provider's own transport (it
   * reconnects if used again). An injected client is left as it is.
   */
  async close(): Promise<void> {
    this.#transport?.close()
  }

  /** Checks the key name before anything is sent, and loads node-vault once. */
  protected override async prepare(keyId: string): Promise<void> {
    await this.#prepare(keyId)
  }

  protected async doEncrypt(
    plaintext: Uint8Array,
    keyId: string,
    context: EncryptionContext,
    call: CallOptions,
  ): Promise<EncryptResult> {
    const at = this.#attempt(call)
    const meta = await this.#keyMeta(keyId, at)
    const ciphertext = await this.#encrypt(plaintext, keyId, meta, context, at)
    return { ciphertext, algorithm: algorithm(meta) }
  }

  protected async doDecrypt(
    ciphertext: Uint8Array,
    keyId: string,
    context: EncryptionContext,
    call: CallOptions,
  ): Promise<Uint8Array> {
    const text = vaultCiphertext(ciphertext)
    if (text === undefined) throw new DecryptionError({ provider: this.name })
    const at = this.#attempt(call)
    const meta = await this.#keyMeta(keyId, at)
    // Decrypt never creates a key: a missing one is reported as such.
    if (meta === undefined) throw new KeyNotFoundError({ provider: this.name })
    const body: Record<string, unknown> = { ciphertext: text }
    bindContext(body, meta, context)
    const answer = await this.#write(keyId, `decrypt/${keyId}`, body, at)
    const parsed = this.#parse(DecryptAnswer, answer)
    const decoded = Buffer.from(parsed.data.plaintext, 'base64')
    const plaintext = new Uint8Array(decoded)
    // Small Buffers share Node's pool: clear this copy rather than leave it there.
    decoded.fill(0)
    return plaintext
  }

  /**
   * Vault's `datakey/plaintext` takes no `associated_data` (Transit accepts it
   * only on encrypt and decrypt), so on a non-derived key it could not bind a
   * context: the wrapped key would decrypt under any context. There, and for
   * a key that does not exist yet (datakey never upserts, encrypt does), 32
   * random bytes are generated here and wrapped with `encrypt` plus
   * `associated_data`. Derived keys, and non-derived keys without a context,
   * use `datakey/plaintext` (Vault's RNG, HSM-backed where configured).
   */
  protected async doGenerateDataKey(
    keyId: string,
    context: EncryptionContext,
    call: CallOptions,
  ): Promise<DataKeyResult> {
    const at = this.#attempt(call)
    const meta = await this.#keyMeta(keyId, at)
    const plaintextKey = Buffer.alloc(32)
    try {
      if (meta === undefined || (!meta.derived && Object.keys(context).length > 0)) {
        plaintextKey.set(this.#random(32))
        const encryptedKey = await this.#encrypt(plaintextKey, keyId, meta, context, at)
        return { plaintextKey, encryptedKey, algorithm: algorithm(meta) }
      }
      const body: Record<string, unknown> = { bits: 256 }
      bindContext(body, meta, context)
      const answer = await this.#write(keyId, `datakey/plaintext/${keyId}`, body, at)
      const parsed = this.#parse(DataKeyAnswer, answer)
      const raw = Buffer.from(parsed.data.plaintext, 'base64')
      try {
        if (raw.length !== 32) throw this.#badResponse()
        plaintextKey.set(raw)
      } finally {
        raw.fill(0)
      }
      return {
        plaintextKey,
        encryptedKey: new Uint8Array(Buffer.from(parsed.data.ciphertext, 'utf8')),
        algorithm: algorithm(meta),
      }
    } catch (err) {
      plaintextKey.fill(0)
      throw err
    }
  }

  /** `latest_version` changes with every rotation. */
  protected override async doRotationState(
    keyId: string,
    call: CallOptions,
  ): Promise<RotationState> {
    const data = await this.#readKey(keyId, this.#attempt(call))
    if (data === undefined) throw new KeyNotFoundError({ provider: this.name })
    return { marker: String(data.latest_version), key: this.#describe(keyId, data) }
  }

  protected async doRotateKey(keyId: string, call: CallOptions): Promise<KeyDescription> {
    const at = this.#attempt(call)
    const answer = await this.#write(keyId, `keys/${keyId}/rotate`, {}, at)
    // Current Vault answers 200 with the key; older versions 204 with no body.
    const parsed = KeyAnswer.safeParse(answer)
    const data = parsed.success ? parsed.data.data : await this.#readKey(keyId, at)
    if (data === undefined) throw new KeyNotFoundError({ provider: this.name })
    return this.#describe(keyId, data)
  }

  protected async doGetKeyInfo(keyId: string, call: CallOptions): Promise<KeyDescription> {
    const data = await this.#readKey(keyId, this.#attempt(call))
    if (data === undefined) throw new KeyNotFoundError({ provider: this.name })
    return this.#describe(keyId, data)
  }

  /**
   * From `auto_rotate_period` (seconds, 0 = off). Vault rotates when the
   * latest version is older than the period, so the next rotation is the
   * latest version's creation time plus the period.
   */
  protected async doGetRotationPolicy(keyId: string, call: CallOptions): Promise<RotationPolicy> {
    const data = await this.#readKey(keyId, this.#attempt(call))
    if (data === undefined) throw new KeyNotFoundError({ provider: this.name })
    const latest = versionTime(data, data.latest_version)
    const periodMs = data.auto_rotate_period * 1000
    const enabled = periodMs > 0
    return {
      enabled,
      rotationPeriodDays: enabled ? data.auto_rotate_period / 86_400 : null,
      lastRotation: data.latest_version > 1 ? latest : null,
      nextRotation: enabled && latest !== null ? new Date(latest.getTime() + periodMs) : null,
    }
  }

  /**
   * Vault answers with `{"errors": [...]}` and a status; node-vault rejects
   * with `{ response: { statusCode, body } }`, or with the raw AxiosError on
   * transport failures, whose `config.headers` holds `X-Vault-Token`. Only
   * the status and a short code are kept.
   */
  protected override mapError(error: unknown, operation: KmsOperation): KmsError {
    if (error instanceof KmsError) return error
    const provider = this.name
    const status = httpStatus(error)
    if (error instanceof VaultTransportError) {
      const cause: SanitizedCause = { service: SERVICE, code: error.code }
      if (error.code === 'redirect_downgrade')
        return new KmsConfigurationError(
          'Vault redirected the request from https to a plaintext or unknown address: refused, the token would travel in the clear',
          { provider, cause },
        )
      // A second redirect: a standby pointing at another standby, mid-election.
      if (error.code === 'redirect_loop')
        return new ProviderConnectionError('unavailable', { provider, cause })
      return new KmsError('Unexpected answer from Vault', { provider, cause })
    }
    if (status === undefined) {
      const code = errorCode(error)
      const cause: SanitizedCause = { service: SERVICE, ...(code === undefined ? {} : { code }) }
      if (
        code === 'ECONNABORTED' ||
        code === 'ETIMEDOUT' ||
        code === 'ERR_CANCELED' ||
        code === 'ABORT_ERR'
      )
        return new ProviderConnectionError('timeout', { provider, cause })
      if (code !== undefined && TLS_CODE.test(code))
        return new ProviderConnectionError('network', { provider, cause, retryable: false })
      if ((error as { isAxiosError?: unknown } | null)?.isAxiosError === true)
        return new ProviderConnectionError('network', { provider, cause })
      return super.mapError(error, operation)
    }
    const message = firstError(error)
    const cause = (code: string): SanitizedCause => ({ service: SERVICE, code, status })
    if (status === 401 || status === 403)
      return new KmsAccessDeniedError({ provider, cause: cause('permission_denied') })
    const retryAfterMs = (error as { retryAfterMs?: unknown }).retryAfterMs
    const hint = typeof retryAfterMs === 'number' ? { retryAfterMs } : {}
    if (status === 429)
      return new ProviderConnectionError('throttled', {
        provider,
        cause: cause('rate_limited'),
        ...hint,
      })
    // Vault Agent / Proxy's require_request_header: the header left this process
    // (vault-http.ts sends it on every request), so something in between dropped it.
    if (status === 412 && /missing "X-Vault-Request" header/.test(message)) {
      return new KmsConfigurationError(
        'A Vault Agent or Vault Proxy listener (require_request_header) refused the request for lack of the X-Vault-Request header, which this provider sends: a proxy between them removes it',
        { provider, cause: cause('missing_request_header') },
      )
    }
    // Vault 1.4-1.6 answer a failed GCM tag (tampered, wrong context) with 500
    // (hashicorp/vault#10842): a decryption failure, not an outage.
    if (
      operation === 'decrypt' &&
      status === 500 &&
      /cipher: message authentication failed/.test(message)
    )
      return new DecryptionError({ provider })
    // 412: a performance standby has not caught up yet; 5xx: sealed, standby, storage.
    if (status >= 500 || status === 412) {
      const code = /sealed/i.test(message) ? 'sealed' : `http_${status}`
      return new ProviderConnectionError('unavailable', { provider, cause: cause(code), ...hint })
    }
    if (/^no handler for route/i.test(message)) {
      // The mount does not exist (or is not Transit): a configuration problem, not a missing key.
      return new KmsError('Vault has no handler at the configured mount', {
        provider,
        cause: cause('no_handler'),
      })
    }
    if (status === 404 || /not found/i.test(message))
      return new KeyNotFoundError({ provider, cause: cause('key_not_found') })
    if (/missing 'context' for key derivation/.test(message)) {
      return new KmsError('Vault key is derived and needs a non-empty context', {
        provider,
        cause: cause('missing_context'),
      })
    }
    // Decrypt failures become the opaque DecryptionError in the base.
    return new KmsError('Vault rejected the request', { provider, cause: cause(`http_${status}`) })
  }

  async #prepare(keyId: unknown): Promise<void> {
    // Precondition: a Vault route name, so the path cannot be redirected elsewhere.
    if (typeof keyId !== 'string' || !VAULT_KEY_NAME.test(keyId)) {
      throw new KmsError(
        'Key id is not a valid Vault key name (letters, digits, "_", "-" and "."; first and last a letter, digit or "_")',
        { provider: this.name },
      )
    }
    await this.#vault()
  }

  #vault(): Promise<VaultKmsClient> {
    this.#client ??= this.#connect()
    return this.#client
  }

  async #connect(): Promise<VaultClient> {
    const mod = await importOptional<{ default: NodeVaultFactory }>(NODE_VAULT, 'VaultKmsProvider')
    const o = this.#options
    // The schema's refinement: both are present whenever no client was given.
    const address = o.address ?? ''
    const token = o.token ?? ''
    this.#transport ??= createVaultTransport({
      verifyTls: o.verifyTls ?? true,
      caCert: o.caCert,
      clock: this.clock,
    })
    const client = mod.default({
      endpoint: address,
      apiVersion: 'v1',
      token,
      ...(o.namespace === undefined ? {} : { namespace: o.namespace }),
      // node-vault's debug logger prints request bodies (plaintexts) under DEBUG=node-vault.
      debug: () => {},
      // Ours, not axios: TLS from our options only (VAULT_SKIP_VERIFY is never read).
      'request-promise': this.#transport.requestPromise,
    })
    // node-vault falls back to VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE and
    // VAULT_PREFIX for anything falsy in its config: pin every one of them.
    client.endpoint = address
    client.apiVersion = 'v1'
    client.token = token
    client.namespace = o.namespace ?? ''
    client.pathPrefix = ''
    return client
  }

  async #write(keyId: string, path: string, body: unknown, at: Attempt): Promise<unknown> {
    const client = await this.#vault()
    try {
      return await client.write(`${this.#options.mount}/${path}`, body, this.#request(at))
    } catch (err) {
      // Vault wanted a context: read the key again next time (it may have been recreated derived).
      if (/missing 'context' for key derivation/.test(firstError(err))) this.#meta.delete(keyId)
      throw err
    }
  }

  #attempt(call: CallOptions): Attempt {
    return { deadline: this.clock() + call.timeoutMs, signal: call.signal }
  }

  /**
   * Each request gets the attempt's signal, what is left of it as its
   * timeout, and `X-Vault-Request` (Vault Agent / Proxy's
   * require_request_header): our transport adds it anyway, an injected
   * client's sends it from here. A fresh `headers` object each time:
   * node-vault writes the token into it.
   */
  #request(at: Attempt): Record<string, unknown> {
    return {
      timeout: Math.max(1, Math.ceil(at.deadline - this.clock())),
      signal: at.signal,
      headers: { 'X-Vault-Request': 'true' },
    }
  }

  /** `GET <mount>/keys/<key>`; undefined when the key does not exist. */
  async #readKey(keyId: string, at: Attempt): Promise<KeyData | undefined> {
    const client = await this.#vault()
    let answer: unknown
    try {
      answer = await client.read(`${this.#options.mount}/keys/${keyId}`, this.#request(at))
    } catch (err) {
      // 404 `{"errors":[]}` is a missing key; 404 "no handler for route" a missing mount.
      if (httpStatus(err) === 404 && firstError(err) === '') return undefined
      throw err
    }
    const data = this.#parse(KeyAnswer, answer).data
    this.#meta.set(keyId, { derived: data.derived, type: data.type })
    return data
  }

  /** Whether the key is derived, read once per key; undefined when it does not exist (yet). */
  async #keyMeta(keyId: string, at: Attempt): Promise<KeyMeta | undefined> {
    const known = this.#meta.get(keyId)
    if (known !== undefined) return known
    // A missing key is not remembered: encrypt upserts it, and the next call reads it.
    await this.#readKey(keyId, at)
    return this.#meta.get(keyId)
  }

  async #encrypt(
    plaintext: Uint8Array,
    keyId: string,
    meta: KeyMeta | undefined,
    context: EncryptionContext,
    at: Attempt,
  ): Promise<Uint8Array> {
    const body: Record<string, unknown> = { plaintext: Buffer.from(plaintext).toString('base64') }
    // A missing key is upserted by this request; with associated_data (not
    // context) it is created non-derived, which is what `meta` undefined assumes.
    bindContext(body, meta, context)
    const answer = await this.#write(keyId, `encrypt/${keyId}`, body, at)
    const parsed = this.#parse(EncryptAnswer, answer)
    // Postcondition: a server that did not know associated_data (< 1.13) and
    // says so left the context unbound; that ciphertext is thrown away.
    if (body.associated_data !== undefined && ignoredAssociatedData(answer)) {
      throw new KmsError('Vault ignored associated_data: Vault 1.13 or later is required', {
        provider: this.name,
        cause: { service: SERVICE, code: 'associated_data_unsupported' },
      })
    }
    return new Uint8Array(Buffer.from(parsed.data.ciphertext, 'utf8'))
  }

  #parse<T extends z.ZodType>(schema: T, answer: unknown): z.output<T> {
    const parsed = schema.safeParse(answer)
    if (!parsed.success) throw this.#badResponse()
    return parsed.data
  }

  #badResponse(): KmsError {
    return new KmsError('Unexpected answer from Vault', {
      provider: this.name,
      cause: { service: SERVICE, code: 'bad_response' },
    })
  }

  #describe(keyId: string, data: KeyData): KeyDescription {
    const versions = Object.keys(data.keys)
      .map(Number)
      .filter((v) => v >= Math.max(1, data.min_decryption_version))
    const first = Math.min(...Object.keys(data.keys).map(Number))
    const createdAt = Number.isFinite(first) ? versionTime(data, first) : null
    return {
      keyId,
      state: 'enabled',
      ...(createdAt === null ? {} : { createdAt }),
      currentVersion: data.latest_version,
      versions: versions.length,
    }
  }
}

/**
 * Context → request fields. Non-derived (or not yet existing, hence upserted
 * non-derived): `associated_data`, since Vault decodes and then ignores
 * `context` there. Derived: `context`. Same bytes either way.
 */
function bindContext(
  body: Record<string, unknown>,
  meta: KeyMeta | undefined,
  context: EncryptionContext,
): void {
  if (Object.keys(context).length === 0) return
  const bytes = Buffer.from(canonicalJson(context), 'utf8').toString('base64')
  if (meta?.derived === true) body.context = bytes
  else body.associated_data = bytes
}

function algorithm(meta: KeyMeta | undefined): string {
  return `vault-transit/${meta?.type ?? DEFAULT_KEY_TYPE}`
}

/** The stored bytes as Vault's `vault:vN:...` string; undefined when they cannot be one. */
function vaultCiphertext(bytes: Uint8Array): string | undefined {
  let text: string
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    return undefined
  }
  return /^vault:[\x21-\x7e]+$/.test(text) ? text : undefined
}

/** Creation time of a version: Unix seconds for symmetric keys, RFC 3339 for asymmetric ones. */
function versionTime(data: KeyData, version: number): Date | null {
  const entry = data.keys[String(version)]
  if (entry === undefined) return null
  const ms = typeof entry === 'number' ? entry * 1000 : Date.parse(entry.creation_time)
  return Number.isFinite(ms) ? new Date(ms) : null
}

/** The HTTP status node-vault's ApiResponseError carries (not exported by node-vault, so duck-typed). */
function httpStatus(error: unknown): number | undefined {
  const status = (error as { response?: { statusCode?: unknown } } | null)?.response?.statusCode
  return typeof status === 'number' ? status : undefined
}

/** Vault's first error string, for classification only: never copied into an error. */
function firstError(error: unknown): string {
  const errors = (error as { response?: { body?: { errors?: unknown } } } | null)?.response?.body
    ?.errors
  return Array.isArray(errors) && typeof errors[0] === 'string' ? errors[0] : ''
}

/**
 * Vault 1.10-1.12 know no `associated_data` and say so in a warning
 * ("Endpoint ignored these unrecognized parameters: [associated_data]");
 * versions before those ignore unknown fields silently (hence: Vault >= 1.13).
 */
function ignoredAssociatedData(answer: unknown): boolean {
  const warnings = (answer as { warnings?: unknown } | null)?.warnings
  return (
    Array.isArray(warnings) &&
    warnings.some(
      (w) => typeof w === 'string' && /ignored/i.test(w) && w.includes('associated_data'),
    )
  )
}
