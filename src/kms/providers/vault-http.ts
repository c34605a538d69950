/**
 * The HTTP exchange under `VaultKmsProvider`, handed to node-vault through its
 * `request-promise` hook: node-vault builds the path and the token and
 * namespace headers, this does the rest the way Vault's own Go client
 * (api/client.go) does it, which node-vault's axios transport does not:
 *
 * - every request carries `X-Vault-Request: true`, which Vault Agent and
 *   Vault Proxy listeners with `require_request_header` demand (412
 *   otherwise);
 * - a 301/302/307 (a standby pointing at the active node) is followed once,
 *   same method, body and headers, never from https to http ("redirect would
 *   cause protocol downgrade"); axios followed up to 21 and would downgrade;
 * - an error answer keeps its `Retry-After` (Vault's rate-limit quotas send
 *   it), which node-vault's error drops;
 * - the attempt's `AbortSignal` cancels the request.
 *
 * Errors are thrown in node-vault's own shape (`response.statusCode`,
 * `response.body`), so the provider classifies them the same way.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import type { Clock } from '../../internal/clock.js'

/** Largest answer read (a 16 MiB plaintext is ~22 MiB of base64 in JSON). */
const MAX_RESPONSE = 64 * 1024 * 1024
const REDIRECTS = new Set([301, 302, 307, 308])

/** An answer other than 200/204, in the shape node-vault's `ApiResponseError` has. */
export class VaultResponseError extends Error {
  readonly response: { readonly statusCode: number; readonly body: unknown }
  /** From `Retry-After` (seconds or an HTTP date), when the answer had one. */
  readonly retryAfterMs: number | undefined

  constructor(statusCode: number, body: unknown, retryAfterMs: number | undefined) {
    super(`Vault answered ${statusCode}`)
    this.response = { statusCode, body }
    this.retryAfterMs = retryAfterMs
  }
}

/** A failure of the exchange itself that the provider reports by `code`. */
export class VaultTransportError extends Error {
  constructor(
    readonly code: 'redirect_downgrade' | 'redirect_loop' | 'response_too_large' | 'bad_response',
  ) {
    super(`Vault transport: ${code}`)
  }
}

/** The options node-vault passes to its request function (those used here). */
interface NodeVaultRequest {
  readonly method: string
  readonly uri: string
  readonly headers?: Record<string, string>
  readonly json?: unknown
  readonly timeout?: number
  readonly signal?: AbortSignal
}

interface NodeVaultResponse {
  readonly statusCode: number
  readonly body: unknown
  readonly request: { readonly path: string }
}

export interface VaultTransport {
  /** What node-vault's `request-promise` config option expects. */
  readonly requestPromise: { defaults(): (options: NodeVaultRequest) => Promise<NodeVaultResponse> }
  /** Closes idle keep-alive sockets. */
  close(): void
}

/** `Retry-After`: delta seconds, or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined
  const text = value.trim()
  if (/^[0-9]{1,9}$/.test(text)) return Number(text) * 1000
  const at = Date.parse(text)
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined
}

export function createVaultTransport(options: {
  readonly verifyTls: boolean
  readonly caCert: string | undefined
  readonly clock: Clock
}): VaultTransport {
  const http = new HttpAgent({ keepAlive: true })
  const https = new HttpsAgent({
    keepAlive: true,
    rejectUnauthorized: options.verifyTls,
    ...(options.caCert === undefined ? {} : { ca: options.caCert }),
  })

  function exchange(
    url: URL,
    method: string,
    headers: Record<string, string>,
    body: Buffer | undefined,
    timeout: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ res: IncomingMessage; data: Buffer }> {
    return new Promise((resolve, reject) => {
      const secure = url.protocol === 'https:'
      const req = (secure ? httpsRequest : httpRequest)(url, {
        method,
        headers: { ...headers, ...(body === undefined ? {} : { 'Content-Length': body.length }) },
        agent: secure ? https : http,
        ...(signal === undefined ? {} : { signal }),
      })
      if (timeout !== undefined)
        req.setTimeout(timeout, () =>
          req.destroy(Object.assign(new Error('Vault request timed out'), { code: 'ETIMEDOUT' })),
        )
      req.on('error', reject)
      req.on('response', (res) => {
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size > MAX_RESPONSE) {
            req.destroy()
            reject(new VaultTransportError('response_too_large'))
            return
          }
          chunks.push(chunk)
        })
        res.on('error', reject)
        res.on('end', () => resolve({ res, data: Buffer.concat(chunks) }))
      })
      req.end(body)
    })
  }

  async function request(o: NodeVaultRequest): Promise<NodeVaultResponse> {
    let url = new URL(o.uri)
    const path = url.pathname
    const headers: Record<string, string> = {
      ...o.headers,
      // Vault Agent / Proxy's SSRF check (require_request_header); the official clients always send it.
      'X-Vault-Request': 'true',
      Accept: 'application/json',
    }
    const hasBody = o.json !== undefined && o.json !== null && typeof o.json === 'object'
    const body = hasBody ? Buffer.from(JSON.stringify(o.json), 'utf8') : undefined
    if (body !== undefined) headers['Content-Type'] = 'application/json'
    for (let redirects = 0; ; redirects++) {
      const { res, data } = await exchange(url, o.method, headers, body, o.timeout, o.signal)
      const status = res.statusCode ?? 0
      const location = res.headers.location
      if (REDIRECTS.has(status) && location !== undefined) {
        // Vault's client follows one redirect: a standby points at the active node.
        if (redirects > 0) throw new VaultTransportError('redirect_loop')
        const next = new URL(location, url)
        if (url.protocol === 'https:' && next.protocol !== 'https:')
          throw new VaultTransportError('redirect_downgrade')
        if (next.protocol !== 'http:' && next.protocol !== 'https:')
          throw new VaultTransportError('redirect_downgrade')
        url = next
        continue
      }
      let parsed: unknown
      if (data.length > 0) {
        try {
          parsed = JSON.parse(data.toString('utf8'))
        } catch {
          // A proxy's HTML page, say: classified by status alone.
          parsed = undefined
          if (status === 200) throw new VaultTransportError('bad_response')
        }
      }
      if (status === 200 || status === 204)
        return { statusCode: status, body: parsed, request: { path } }
      const retryAfter = res.headers['retry-after']
      throw new VaultResponseError(
        status,
        parsed ?? {},
        parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, options.clock()),
      )
    }
  }

  return {
    requestPromise: { defaults: () => request },
    close() {
      http.destroy()
      https.destroy()
    },
  }
}
