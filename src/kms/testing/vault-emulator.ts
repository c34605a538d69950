/**
 * A HashiCorp Vault Transit emulator speaking Vault's HTTP API on 127.0.0.1,
 * for tests that drive `VaultKmsProvider` (or any Vault client) through the
 * real client library. Real cryptography: AES-GCM (or ChaCha20-Poly1305) per
 * key version, `vault:vN:` + base64(nonce || ciphertext || tag), HKDF-SHA256
 * per-context keys for derived keys, `associated_data` as AEAD additional
 * data. Status codes, error bodies and messages follow Vault's
 * (builtin/logical/transit, sdk/logical/response_util.go).
 *
 * Served: `encrypt`, `decrypt`, `rewrap` (each with `batch_input`),
 * `datakey/{plaintext,wrapped}`, `keys/<k>` (read, create), `keys/<k>/rotate`,
 * `keys/<k>/config`, and the unauthenticated `sys/health`. Tokens carry ACL
 * policies (`createToken`), checked per path and capability as Vault does. A
 * Vault Agent / Proxy listener's `require_request_header`, a standby's 307,
 * and Vault 1.4-1.6's 500 on a failed decrypt (hashicorp/vault#10842) are
 * modes of the emulator.
 *
 * This file holds the server and the Transit operations; ACL policies
 * (`./vault/policy.ts`), request fields (`./vault/fields.ts`) and the HTTP
 * answers (`./vault/wire.ts`) stand apart.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, randomUUID } from 'node:crypto'
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { type Clock, systemClock } from '../../internal/clock.js'
import { CallCounter, type FaultDecision, FaultInjector, type KmsEmulator } from './faults.js'
import {
  associatedData,
  boolField,
  duration,
  goBase64,
  ignoredFields,
  intField,
  normalizeNamespace,
  stringField,
  stringOr,
} from './vault/fields.js'
import { capabilityFor, permits, type VaultPolicy } from './vault/policy.js'
import {
  AUTH_FAILED,
  AuthenticationFailure,
  bad,
  envelope,
  header,
  multierror,
  readBody,
  send,
  VaultFailure,
} from './vault/wire.js'

/** Key types the emulator implements (Vault's symmetric AEAD types). */
export type VaultEmulatorKeyType = 'aes256-gcm96' | 'aes128-gcm96' | 'chacha20-poly1305'

export interface VaultEmulatorOptions {
  /**
   * The token `X-Vault-Token` must carry.
   * @default a random `hvs.` token
   */
  token?: string
  /**
   * Path the Transit engine is mounted at; requests elsewhere get 404 "no handler for route".
   * @default 'transit'
   */
  mount?: string
  /**
   * Serve HTTPS with this certificate and key (PEM) instead of HTTP.
   * @default plain HTTP
   */
  tls?: { readonly cert: string | Buffer; readonly key: string | Buffer }
  /**
   * Answer `keys/<k>/rotate` with 204 and no body, as Vault did before it
   * returned the key (current Vault answers 200 with the key's data).
   * @default false
   */
  rotateNoContent?: boolean
  /** Clock for key version creation times (ms). @default Date.now */
  clock?: Clock
  /**
   * Answer like a Vault Agent or Vault Proxy listener with
   * `require_request_header = true`: every request without `X-Vault-Request:
   * true` gets 412 `missing "X-Vault-Request" header` (SSRF protection).
   * @default false
   */
  requireRequestHeader?: boolean
  /**
   * Answer a decrypt whose authentication fails (tampered ciphertext, wrong
   * `context` or `associated_data`) with 500 `cipher: message authentication
   * failed`, as Vault 1.4 to 1.6 did (hashicorp/vault#10842), instead of 400.
   * Also `faults.setDecryptFailuresAsServerErrors(true)`.
   * @default false
   */
  legacyDecryptErrors?: boolean
  /** The `version` `sys/health` reports. @default '1.15.0' */
  version?: string
}

export interface VaultEmulatorKeyOptions {
  /** @default false */
  derived?: boolean
  /** @default 'aes256-gcm96' */
  type?: VaultEmulatorKeyType
  /** Namespace the key lives in (`X-Vault-Namespace`). @default '' (root) */
  namespace?: string
  /** `auto_rotate_period` in seconds (0 = off). @default 0 */
  autoRotatePeriodSeconds?: number
}

/** One request as the emulator saw it: body field names only, never their values. */
export interface VaultEmulatorRequest {
  readonly method: string
  /** URL path, e.g. `/v1/transit/encrypt/orders`. */
  readonly path: string
  /** `X-Vault-Namespace`, normalized (no surrounding slashes; '' for root). */
  readonly namespace: string
  /** Names of the JSON body's fields. */
  readonly fields: readonly string[]
  /** Whether the request carried `X-Vault-Request: true`. */
  readonly requestHeader: boolean
}

interface KeyVersion {
  readonly key: Buffer
  /** Unix seconds, as Vault reports them. */
  readonly createdAt: number
}

interface EmulatedKey {
  readonly name: string
  readonly type: VaultEmulatorKeyType
  readonly derived: boolean
  readonly versions: Map<number, KeyVersion>
  latest: number
  minDecryptionVersion: number
  minEncryptionVersion: number
  autoRotatePeriod: number
  deletionAllowed: boolean
  exportable: boolean
}

const CIPHERS: Record<VaultEmulatorKeyType, { cipher: string; keyBytes: number }> = {
  'aes256-gcm96': { cipher: 'aes-256-gcm', keyBytes: 32 },
  'aes128-gcm96': { cipher: 'aes-128-gcm', keyBytes: 16 },
  'chacha20-poly1305': { cipher: 'chacha20-poly1305', keyBytes: 32 },
}
const NONCE = 12
const TAG = 16
/** Vault's `GenericNameRegex`. */
const NAME = '\\w(?:[\\w.-]*\\w)?'
const MISSING_CONTEXT =
  "missing 'context' for key derivation; the key was created using a derived key, which means additional, per-request information must be included in order to perform operations with the key"

/**
 * @example
 * ```ts
 * import { startVaultEmulator } from 'fraiseql-security/kms/testing'
 * const vault = await startVaultEmulator()
 * vault.createKey('orders', { derived: true })
 * const kms = new VaultKmsProvider({ address: vault.address, token: vault.token })
 * // ... vault.faults.failNext(2, 'unavailable'); vault.calls.count('encrypt')
 * await vault.close()
 * ```
 */
export class VaultEmulator implements KmsEmulator {
  readonly calls = new CallCounter()
  readonly faults = new FaultInjector()
  /** Every request received, oldest first (at most the last 1000). */
  readonly requests: VaultEmulatorRequest[] = []
  /** The Transit mount path, without slashes at either end. */
  readonly mount: string
  readonly #server: Server
  readonly #scheme: 'http' | 'https'
  readonly #clock: Clock
  readonly #rotateNoContent: boolean
  readonly #version: string
  /** Token → its policy; the root token (`token`) may do anything. */
  readonly #policies = new Map<string, VaultPolicy>()
  #requireRequestHeader: boolean
  #legacyDecryptErrors: boolean
  #activeAddress: string | undefined
  /** namespace → key name → key. */
  readonly #namespaces = new Map<string, Map<string, EmulatedKey>>()
  readonly #waits = new Set<() => void>()
  #token: string
  #closed = false

  private constructor(options: VaultEmulatorOptions) {
    this.#token = options.token ?? `hvs.${randomBytes(18).toString('base64url')}`
    this.mount = (options.mount ?? 'transit').replace(/^\/+|\/+$/g, '')
    this.#clock = options.clock ?? systemClock
    this.#rotateNoContent = options.rotateNoContent ?? false
    this.#requireRequestHeader = options.requireRequestHeader ?? false
    this.#legacyDecryptErrors = options.legacyDecryptErrors ?? false
    this.#version = options.version ?? '1.15.0'
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.#handle(req, res).catch(() => {
        if (!res.headersSent && !res.destroyed) send(res, 500, { errors: ['internal error'] })
      })
    }
    if (options.tls === undefined) {
      this.#scheme = 'http'
      this.#server = createHttpServer(handler)
    } else {
      this.#scheme = 'https'
      this.#server = createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler)
    }
  }

  /** Starts an emulator on 127.0.0.1 and an ephemeral port. */
  static async start(options: VaultEmulatorOptions = {}): Promise<VaultEmulator> {
    const emulator = new VaultEmulator(options)
    await new Promise<void>((resolve, reject) => {
      emulator.#server.once('error', reject)
      emulator.#server.listen(0, '127.0.0.1', () => resolve())
    })
    return emulator
  }

  /** `http://127.0.0.1:<port>` (or `https://`), for the provider's `address`. */
  get address(): string {
    const { port } = this.#server.address() as AddressInfo
    return `${this.#scheme}://127.0.0.1:${port}`
  }

  /** The token requests must carry. */
  get token(): string {
    return this.#token
  }

  /** Accept only `token` from now on as the root token (the old one gets 403, as after a revocation). */
  setToken(token: string): void {
    this.#token = token
  }

  /**
   * A new token limited to `policy` (paths relative to the namespace), as
   * `vault token create -policy=...` would make. Requests outside it get 403
   * `permission denied`, before anything is read or changed.
   */
  createToken(policy: VaultPolicy): string {
    const token = `hvs.${randomBytes(18).toString('base64url')}`
    this.#policies.set(token, policy)
    return token
  }

  /** Turn the Agent/Proxy `require_request_header` mode on or off (see the option). */
  setRequireRequestHeader(on: boolean): void {
    this.#requireRequestHeader = on
  }

  /**
   * Act as a standby node of a cluster whose active node is at
   * `activeAddress`: every request but `sys/health` is answered `307
   * Temporary Redirect` to the same path there (Vault's `respondStandby`).
   * `undefined` makes this node active again.
   */
  setStandby(activeAddress: string | undefined): void {
    this.#activeAddress = activeAddress?.replace(/\/+$/, '')
  }

  /** Creates a key (as `POST <mount>/keys/<name>` would). Throws if it exists. */
  createKey(name: string, options: VaultEmulatorKeyOptions = {}): void {
    if (!new RegExp(`^${NAME}$`).test(name)) throw new TypeError('not a Vault key name')
    const keys = this.#keys(normalizeNamespace(options.namespace))
    if (keys.has(name)) throw new TypeError('key exists')
    const key = this.#newKey(name, options.type ?? 'aes256-gcm96', options.derived ?? false)
    key.autoRotatePeriod = options.autoRotatePeriodSeconds ?? 0
    keys.set(name, key)
  }

  /** Deletes a key and all its versions (as `DELETE <mount>/keys/<name>` with deletion allowed). */
  deleteKey(name: string, namespace?: string): boolean {
    return this.#keys(normalizeNamespace(namespace)).delete(name)
  }

  /** The key as `GET <mount>/keys/<name>` returns it (`data`), or undefined. */
  describeKey(name: string, namespace?: string): Record<string, unknown> | undefined {
    const key = this.#keys(normalizeNamespace(namespace)).get(name)
    return key === undefined ? undefined : formatKey(key)
  }

  /** Key names in a namespace. */
  keyNames(namespace?: string): string[] {
    return [...this.#keys(normalizeNamespace(namespace)).keys()]
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const wake of this.#waits) wake()
    this.#waits.clear()
    this.#server.closeAllConnections()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req)
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    const path = url.pathname
    const method = (req.method ?? 'GET').toUpperCase()
    const namespace = normalizeNamespace(header(req, 'x-vault-namespace'))
    const route = this.#route(path)
    const write = method === 'POST' || method === 'PUT'
    const operation =
      route?.operation === 'readKey' && write ? 'createKey' : (route?.operation ?? 'unknown')
    const decision = this.faults.next(operation)
    if (decision.delayMs > 0) await this.#wait(decision.delayMs)
    // Outage (or closing): the service is gone, the connection just drops.
    if (this.#closed || decision.outage) {
      req.socket.destroy()
      return
    }
    this.calls.increment(operation)
    let body: Record<string, unknown> = {}
    let parseError: string | undefined
    if (raw !== undefined && raw.length > 0 && method !== 'GET') {
      try {
        const parsed: unknown = JSON.parse(raw.toString('utf8'))
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
          parseError = 'failed to parse JSON input: request body must be a JSON object'
        else body = parsed as Record<string, unknown>
      } catch {
        // Not the parser's message: it quotes the input, which may be a plaintext.
        parseError = 'failed to parse JSON input: invalid character in request body'
      }
    }
    // Agent's check is exactly this: one header, value "true" (command/agent.go verifyRequestHeader).
    const requestHeader = req.headers['x-vault-request'] === 'true'
    this.requests.push({ method, path, namespace, fields: Object.keys(body), requestHeader })
    if (this.requests.length > 1000) this.requests.shift()

    // An Agent / Proxy listener refuses before anything reaches Vault.
    if (this.#requireRequestHeader && !requestHeader)
      return send(res, 412, { errors: ['missing "X-Vault-Request" header'] })
    if (raw === undefined) return send(res, 413, { errors: ['request body too large'] })
    const vaultPath = path.replace(/^\/v1\//, '')
    if (route?.operation === 'health') return this.#health(res, url, decision.fail, method)
    // A standby redirects before looking at the token (http/handler.go respondStandby).
    const active = decision.fail === 'redirect' ? this.address : this.#activeAddress
    if (active !== undefined) {
      res
        .writeHead(307, { Location: `${active}${path}${url.search}`, 'Cache-Control': 'no-store' })
        .end()
      return
    }
    // Transient failures come before authentication, as a sealed Vault or a
    // rate-limit quota answers before any token is looked at.
    if (decision.fail === 'unavailable') return send(res, 503, { errors: ['Vault is sealed'] })
    if (decision.fail === 'throttle') {
      // Vault sends Retry-After (whole seconds) with its rate-limit headers
      // (vault/quotas/quotas_rate_limit.go).
      const retryAfter =
        decision.retryAfterMs === undefined
          ? {}
          : { 'Retry-After': String(Math.ceil(decision.retryAfterMs / 1000)) }
      return send(
        res,
        429,
        { errors: [`request path ${JSON.stringify(vaultPath)}: rate limit quota exceeded`] },
        retryAfter,
      )
    }
    const token = this.#tokenOf(req)
    if (token === undefined) return send(res, 403, { errors: ['permission denied'] })
    if (route === undefined) {
      return send(res, 404, {
        errors: [`no handler for route ${JSON.stringify(vaultPath)}. route entry not found.`],
      })
    }
    if (parseError !== undefined) return send(res, 400, { errors: [parseError] })

    const allowed = route.operation === 'readKey' ? method === 'GET' || write : write
    if (!allowed) return send(res, 405, { errors: [] })

    const keys = this.#keys(namespace)
    const policy = this.#policies.get(token)
    if (policy !== undefined) {
      const needed = capabilityFor(operation, keys.has(route.name))
      const relative = `${this.mount}/${path.slice(`/v1/${this.mount}/`.length)}`
      if (!permits(policy, relative, needed))
        return send(res, 403, { errors: [multierror('permission denied')] })
    }
    try {
      const answer = this.#dispatch(operation, route, keys, body)
      // Done, then the connection drops before the answer: the client cannot tell.
      if (decision.fail === 'reset-after-commit') {
        req.socket.destroy()
        return
      }
      if (answer === undefined) {
        res.writeHead(204, { 'Cache-Control': 'no-store' }).end()
        return
      }
      const warnings = [...answer.warnings, ...ignoredFields(operation, body)]
      send(res, answer.status ?? 200, envelope(answer.data, warnings))
    } catch (err) {
      if (!(err instanceof VaultFailure)) throw err
      if (err instanceof AuthenticationFailure && this.#legacy())
        return send(res, 500, { errors: [multierror(AUTH_FAILED)] })
      send(res, err.status, { errors: err.errors })
    }
  }

  /** Vault 1.4-1.6's answer to a failed decrypt, from the option or the shared fault switch. */
  #legacy(): boolean {
    return this.#legacyDecryptErrors || this.faults.decryptFailuresAsServerErrors
  }

  /** `GET sys/health`: unauthenticated, status by state (http/sys_health.go). */
  #health(res: ServerResponse, url: URL, fail: FaultDecision['fail'], method: string): void {
    if (method !== 'GET' && method !== 'HEAD') {
      send(res, 405, { errors: [] })
      return
    }
    const sealed = fail === 'unavailable'
    const standby = !sealed && this.#activeAddress !== undefined
    const code = (name: string, fallback: number) => {
      const v = url.searchParams.get(name)
      return v !== null && /^[0-9]{3}$/.test(v) ? Number(v) : fallback
    }
    const status = sealed
      ? code('sealedcode', 503)
      : standby
        ? url.searchParams.has('standbyok')
          ? 200
          : code('standbycode', 429)
        : code('activecode', 200)
    send(res, status, {
      initialized: true,
      sealed,
      standby,
      performance_standby: false,
      replication_performance_mode: 'disabled',
      replication_dr_mode: 'disabled',
      server_time_utc: Math.floor(this.#clock() / 1000),
      version: this.#version,
      cluster_name: 'vault-emulator',
      cluster_id: CLUSTER_ID,
    })
  }

  #dispatch(
    operation: string,
    route: Route,
    keys: Map<string, EmulatedKey>,
    body: Record<string, unknown>,
  ): { data: Record<string, unknown>; warnings: string[]; status?: number } | undefined {
    const name = route.name
    switch (operation) {
      case 'encrypt':
        return this.#batch(body, 'plaintext', (item) => this.#encrypt(keys, name, item))
      case 'decrypt':
        return this.#batch(body, 'ciphertext', (item) => this.#decrypt(keys, name, item))
      case 'rewrap':
        return this.#batch(body, 'ciphertext', (item) => this.#rewrap(keys, name, item))
      case 'datakey':
        return { data: this.#datakey(keys, name, route.kind ?? '', body), warnings: [] }
      case 'readKey': {
        const key = keys.get(name)
        // A read that finds nothing is a nil response: 404 with an empty error list.
        if (key === undefined) throw new VaultFailure(404, [])
        return { data: formatKey(key), warnings: [] }
      }
      case 'createKey':
        return this.#create(keys, name, body)
      case 'rotate': {
        const key = keys.get(name)
        if (key === undefined) throw bad('key not found')
        this.#addVersion(key)
        return this.#rotateNoContent ? undefined : { data: formatKey(key), warnings: [] }
      }
      case 'configKey':
        return { data: this.#configure(keys, name, body), warnings: [] }
      default:
        throw new VaultFailure(404, [])
    }
  }

  /**
   * One item, or `batch_input` (path_encrypt.go / path_decrypt.go /
   * path_rewrap.go): every item gets a result in input order, its `error` on
   * failure, and its `reference` back; any failed item makes the answer 400
   * (500 when only internal errors failed), unless some succeeded and
   * `partial_failure_response_code` says otherwise.
   */
  #batch(
    body: Record<string, unknown>,
    required: 'plaintext' | 'ciphertext',
    one: (item: Record<string, unknown>) => Record<string, unknown>,
  ): { data: Record<string, unknown>; warnings: string[]; status?: number } {
    if (body.batch_input === undefined || body.batch_input === null)
      return { data: one(body), warnings: [] }
    const items = body.batch_input
    if (!Array.isArray(items))
      throw new VaultFailure(500, [
        multierror(
          `failed to parse batch input: source data must be an array or slice, got ${typeof items}`,
        ),
      ])
    if (items.length === 0) throw bad('missing batch input to process')
    const decoded = items.map((item, i) => {
      if (item === null || typeof item !== 'object' || Array.isArray(item))
        throw new VaultFailure(500, [
          multierror(`failed to parse batch input: [${i}] expected a map`),
        ])
      const entry = item as Record<string, unknown>
      if (entry[required] === undefined)
        throw new VaultFailure(500, [
          multierror(
            `failed to parse batch input: '[${i}].${required}' missing ${required} to ${required === 'plaintext' ? 'encrypt' : 'decrypt'}`,
          ),
        ])
      return entry
    })
    const contextSet = stringOr(decoded[0]!.context) !== ''
    if (decoded.some((item) => (stringOr(item.context) !== '') !== contextSet))
      throw bad('context should be set either in all the request blocks or in none')
    let userError = false
    let internalError = false
    let success = false
    const results = decoded.map((item) => {
      const reference = stringOr(item.reference)
      try {
        const out = one(item)
        success = true
        return { ...out, reference }
      } catch (err) {
        if (!(err instanceof VaultFailure)) throw err
        if (err instanceof AuthenticationFailure && this.#legacy()) internalError = true
        else userError = true
        return { error: err.errors[0] ?? 'internal error', reference }
      }
    })
    let status: number | undefined
    if (userError || internalError) {
      status = userError ? 400 : 500
      const override = body.partial_failure_response_code
      if (
        success &&
        typeof override === 'number' &&
        Number.isInteger(override) &&
        override >= 1 &&
        override <= 599
      )
        status = override
    }
    return {
      data: { batch_results: results },
      warnings: [],
      ...(status === undefined ? {} : { status }),
    }
  }

  #encrypt(
    keys: Map<string, EmulatedKey>,
    name: string,
    body: Record<string, unknown>,
  ): Record<string, unknown> {
    if (body.plaintext === undefined) throw bad('missing plaintext to encrypt')
    const contextText = stringField(body, 'context')
    const context = goBase64(contextText)
    let key = keys.get(name)
    if (key === undefined) {
      // Upsert (the token has `create`, upsert is not disabled): derived iff a context was sent.
      const type = (stringField(body, 'type') || 'aes256-gcm96') as VaultEmulatorKeyType
      if (!(type in CIPHERS)) throw bad(`unknown key type ${type}`)
      key = this.#newKey(name, type, contextText !== '')
      keys.set(name, key)
    }
    const aad = associatedData(body)
    const version = intField(body, 'key_version') ?? 0
    if (version < 0) throw bad('requested version for encryption is negative')
    if (version > key.latest)
      throw bad('requested version for encryption is higher than the latest key version')
    const use = version === 0 ? key.latest : version
    if (key.minEncryptionVersion > 0 && use < key.minEncryptionVersion)
      throw bad('requested version for encryption is less than the minimum encryption key version')
    const plaintext = goBase64(stringField(body, 'plaintext'))
    const material = this.#material(key, use, context)
    const nonce = randomBytes(NONCE)
    const cipher = createCipheriv(CIPHERS[key.type].cipher as 'aes-256-gcm', material, nonce, {
      authTagLength: TAG,
    })
    if (aad !== undefined) cipher.setAAD(aad)
    const sealed = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
    return {
      ciphertext: `vault:v${use}:${Buffer.concat([nonce, sealed]).toString('base64')}`,
      key_version: use,
    }
  }

  #decrypt(
    keys: Map<string, EmulatedKey>,
    name: string,
    body: Record<string, unknown>,
  ): Record<string, unknown> {
    return { plaintext: this.#openItem(keys, name, body, associatedData(body)).toString('base64') }
  }

  /** The plaintext of one decrypt or rewrap item; neither ever upserts the key. */
  #openItem(
    keys: Map<string, EmulatedKey>,
    name: string,
    body: Record<string, unknown>,
    aad: Buffer | undefined,
  ): Buffer {
    const value = stringField(body, 'ciphertext')
    if (value === '') throw bad('missing ciphertext to decrypt')
    const key = keys.get(name)
    if (key === undefined) throw bad('encryption key not found')
    return this.#open(key, value, goBase64(stringField(body, 'context')), aad)
  }

  /** Decrypt, then encrypt under `key_version` (latest): `associated_data` is not a field here. */
  #rewrap(
    keys: Map<string, EmulatedKey>,
    name: string,
    body: Record<string, unknown>,
  ): Record<string, unknown> {
    const plaintext = this.#openItem(keys, name, body, undefined)
    try {
      return this.#encrypt(keys, name, {
        plaintext: plaintext.toString('base64'),
        ...(body.context === undefined ? {} : { context: body.context }),
        ...(body.key_version === undefined ? {} : { key_version: body.key_version }),
      })
    } finally {
      plaintext.fill(0)
    }
  }

  #datakey(
    keys: Map<string, EmulatedKey>,
    name: string,
    kind: string,
    body: Record<string, unknown>,
  ): Record<string, unknown> {
    if (kind !== 'plaintext' && kind !== 'wrapped')
      throw bad("Invalid path, must be 'plaintext' or 'wrapped'")
    try {
      goBase64(stringField(body, 'context'))
    } catch {
      throw bad('failed to base64-decode context')
    }
    const key = keys.get(name)
    if (key === undefined) throw bad('encryption key not found')
    const bits = intField(body, 'bits') ?? 256
    if (bits !== 128 && bits !== 256 && bits !== 512) throw bad('invalid bit length')
    const fresh = randomBytes(bits / 8)
    // Vault encrypts the new key through the key's ordinary encrypt path (no associated_data).
    const sealed = this.#encrypt(keys, name, {
      plaintext: fresh.toString('base64'),
      ...(body.context === undefined ? {} : { context: body.context }),
      ...(body.key_version === undefined ? {} : { key_version: body.key_version }),
    })
    return {
      ciphertext: sealed.ciphertext,
      key_version: sealed.key_version,
      ...(kind === 'plaintext' ? { plaintext: fresh.toString('base64') } : {}),
    }
  }

  #create(
    keys: Map<string, EmulatedKey>,
    name: string,
    body: Record<string, unknown>,
  ): { data: Record<string, unknown>; warnings: string[] } {
    const existing = keys.get(name)
    if (existing !== undefined)
      return { data: formatKey(existing), warnings: [`key ${name} already existed`] }
    const type = (stringField(body, 'type') || 'aes256-gcm96') as VaultEmulatorKeyType
    if (!(type in CIPHERS)) throw bad(`unknown key type ${type}`)
    const derived = boolField(body, 'derived') ?? false
    if ((boolField(body, 'convergent_encryption') ?? false) && !derived)
      throw bad('convergent encryption requires derivation to be enabled')
    const period = body.auto_rotate_period === undefined ? 0 : duration(body.auto_rotate_period)
    if (period !== 0 && period < 3600)
      throw bad('auto rotate period must be 0 to disable or at least an hour')
    const key = this.#newKey(name, type, derived)
    key.autoRotatePeriod = period
    key.exportable = boolField(body, 'exportable') ?? false
    keys.set(name, key)
    return { data: formatKey(key), warnings: [] }
  }

  #configure(
    keys: Map<string, EmulatedKey>,
    name: string,
    body: Record<string, unknown>,
  ): Record<string, unknown> {
    const key = keys.get(name)
    if (key === undefined) throw bad(`no existing key named ${name} could be found`)
    const minDecryption = intField(body, 'min_decryption_version')
    if (minDecryption !== undefined) {
      if (minDecryption > key.latest) {
        throw bad(
          `cannot set min decryption version of ${minDecryption}, latest key version is ${key.latest}`,
        )
      }
      key.minDecryptionVersion = Math.max(1, minDecryption)
    }
    const minEncryption = intField(body, 'min_encryption_version')
    if (minEncryption !== undefined) {
      if (minEncryption > key.latest)
        throw bad(
          `cannot set min encryption version of ${minEncryption}, latest key version is ${key.latest}`,
        )
      key.minEncryptionVersion = minEncryption
    }
    const deletionAllowed = boolField(body, 'deletion_allowed')
    if (deletionAllowed !== undefined) key.deletionAllowed = deletionAllowed
    const exportable = boolField(body, 'exportable')
    if (exportable !== undefined) key.exportable = key.exportable || exportable
    if (body.auto_rotate_period !== undefined) {
      const period = duration(body.auto_rotate_period)
      if (period !== 0 && period < 3600)
        throw bad('auto rotate period must be 0 to disable or at least an hour')
      key.autoRotatePeriod = period
    }
    return formatKey(key)
  }

  /** Vault's `DecryptWithFactory`, checks in its order. */
  #open(key: EmulatedKey, value: string, context: Buffer, aad: Buffer | undefined): Buffer {
    if (!value.startsWith('vault:v')) throw bad('invalid ciphertext: no prefix')
    const rest = value.slice('vault:v'.length)
    const colon = rest.indexOf(':')
    if (colon < 0) throw bad('invalid ciphertext: wrong number of fields')
    const versionText = rest.slice(0, colon)
    if (!/^[+-]?[0-9]+$/.test(versionText))
      throw bad('invalid ciphertext: version number could not be decoded')
    let version = Number(versionText)
    if (version === 0) version = 1
    if (version > key.latest) throw bad('invalid ciphertext: version is too new')
    if (key.minDecryptionVersion > 0 && version < key.minDecryptionVersion)
      throw bad('ciphertext or signature version is disallowed by policy (too old)')
    let decoded: Buffer
    try {
      decoded = goBase64(rest.slice(colon + 1))
    } catch {
      throw bad('invalid ciphertext: could not decode base64')
    }
    const material = this.#material(key, version, context)
    if (decoded.length < NONCE) throw bad('invalid ciphertext length')
    try {
      const decipher = createDecipheriv(
        CIPHERS[key.type].cipher as 'aes-256-gcm',
        material,
        decoded.subarray(0, NONCE),
        { authTagLength: TAG },
      )
      if (decoded.length < NONCE + TAG) throw new Error('short')
      if (aad !== undefined) decipher.setAAD(aad)
      decipher.setAuthTag(decoded.subarray(decoded.length - TAG))
      return Buffer.concat([
        decipher.update(decoded.subarray(NONCE, decoded.length - TAG)),
        decipher.final(),
      ])
    } catch {
      throw new AuthenticationFailure()
    }
  }

  /**
   * The key for a version: the version's key itself for non-derived keys
   * (the context is decoded, then ignored, as Vault's `GetKey` does), or
   * HKDF-SHA256(key, salt = none, info = context) for derived ones.
   */
  #material(key: EmulatedKey, version: number, context: Buffer): Buffer {
    const entry = key.versions.get(version)
    if (entry === undefined) throw bad('invalid ciphertext: version is too new')
    if (!key.derived) return entry.key
    if (context.length === 0) throw bad(MISSING_CONTEXT)
    return Buffer.from(
      hkdfSync('sha256', entry.key, Buffer.alloc(0), context, CIPHERS[key.type].keyBytes),
    )
  }

  #newKey(name: string, type: VaultEmulatorKeyType, derived: boolean): EmulatedKey {
    const key: EmulatedKey = {
      name,
      type,
      derived,
      versions: new Map(),
      latest: 0,
      minDecryptionVersion: 1,
      minEncryptionVersion: 0,
      autoRotatePeriod: 0,
      deletionAllowed: false,
      exportable: false,
    }
    this.#addVersion(key)
    return key
  }

  #addVersion(key: EmulatedKey): void {
    key.latest += 1
    key.versions.set(key.latest, {
      key: randomBytes(CIPHERS[key.type].keyBytes),
      createdAt: Math.floor(this.#clock() / 1000),
    })
  }

  #keys(namespace: string): Map<string, EmulatedKey> {
    let keys = this.#namespaces.get(namespace)
    if (keys === undefined) {
      keys = new Map()
      this.#namespaces.set(namespace, keys)
    }
    return keys
  }

  /** The request's token when it is the root token or one `createToken` made; undefined otherwise. */
  #tokenOf(req: IncomingMessage): string | undefined {
    const bearer = /^Bearer (.+)$/.exec(header(req, 'authorization'))?.[1]
    const token = header(req, 'x-vault-token') || bearer || ''
    if (token === '') return undefined
    return token === this.#token || this.#policies.has(token) ? token : undefined
  }

  #route(path: string): Route | undefined {
    if (path === '/v1/sys/health') return { operation: 'health', name: '' }
    const prefix = `/v1/${this.mount}/`
    if (!path.startsWith(prefix)) return undefined
    const rest = path.slice(prefix.length)
    const patterns: Array<[RegExp, Route['operation']]> = [
      [new RegExp(`^encrypt/(${NAME})$`), 'encrypt'],
      [new RegExp(`^decrypt/(${NAME})$`), 'decrypt'],
      [new RegExp(`^rewrap/(${NAME})$`), 'rewrap'],
      [new RegExp(`^datakey/(${NAME})/(${NAME})$`), 'datakey'],
      [new RegExp(`^keys/(${NAME})/rotate$`), 'rotate'],
      [new RegExp(`^keys/(${NAME})/config$`), 'configKey'],
      [new RegExp(`^keys/(${NAME})$`), 'readKey'],
    ]
    for (const [pattern, operation] of patterns) {
      const m = pattern.exec(rest)
      if (m === null) continue
      if (operation === 'datakey') return { operation, kind: m[1]!, name: m[2]! }
      return { operation, name: m[1]! }
    }
    return undefined
  }

  /** A delay that `close()` cuts short. */
  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer)
        this.#waits.delete(wake)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      this.#waits.add(wake)
    })
  }
}

interface Route {
  readonly operation:
    | 'encrypt'
    | 'decrypt'
    | 'rewrap'
    | 'health'
    | 'datakey'
    | 'rotate'
    | 'configKey'
    | 'readKey'
    | 'createKey'
  readonly name: string
  readonly kind?: string
}

/**
 * Starts a {@link VaultEmulator} on 127.0.0.1.
 *
 * @example
 * ```ts
 * const vault = await startVaultEmulator({ mount: 'kms' })
 * const kms = new VaultKmsProvider({ address: vault.address, token: vault.token, mount: 'kms' })
 * ```
 */
export function startVaultEmulator(options?: VaultEmulatorOptions): Promise<VaultEmulator> {
  return VaultEmulator.start(options)
}

/** Vault's `formatKeyPolicy` for symmetric keys. */
function formatKey(key: EmulatedKey): Record<string, unknown> {
  const keys: Record<string, number> = {}
  for (const [version, entry] of key.versions) {
    if (version >= key.minDecryptionVersion) keys[String(version)] = entry.createdAt
  }
  return {
    name: key.name,
    type: key.type,
    derived: key.derived,
    ...(key.derived ? { kdf: 'hkdf_sha256', convergent_encryption: false } : {}),
    deletion_allowed: key.deletionAllowed,
    min_available_version: 0,
    min_decryption_version: key.minDecryptionVersion,
    min_encryption_version: key.minEncryptionVersion,
    latest_version: key.latest,
    exportable: key.exportable,
    allow_plaintext_backup: false,
    supports_encryption: true,
    supports_decryption: true,
    supports_signing: false,
    supports_derivation: true,
    auto_rotate_period: key.autoRotatePeriod,
    imported_key: false,
    keys,
  }
}

const CLUSTER_ID = randomUUID()
