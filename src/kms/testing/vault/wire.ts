/**
 * Vault's HTTP answers as the emulator sends them: `{"errors": [...]}` with
 * Vault's statuses and texts (sdk/logical/response_util.go), the response
 * envelope, and bounded request bodies.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'

/** Vault's default `max_request_size`. */
const MAX_BODY = 32 * 1024 * 1024

/** A Vault error answer: `{"errors": [...]}` with its status. */
export class VaultFailure extends Error {
  constructor(
    readonly status: number,
    readonly errors: readonly string[],
  ) {
    super(errors[0] ?? `status ${status}`)
  }
}

export const bad = (message: string) => new VaultFailure(400, [message])

export const AUTH_FAILED = 'cipher: message authentication failed'

/** A decrypt whose AEAD tag did not verify (400; 500 in Vault 1.4-1.6). */
export class AuthenticationFailure extends VaultFailure {
  constructor() {
    super(400, [AUTH_FAILED])
  }
}

/** go-multierror's text, which Vault's 403 and 500 bodies carry. */
export const multierror = (message: string) => `1 error occurred:\n\t* ${message}\n\n`

export function envelope(
  data: Record<string, unknown>,
  warnings: string[],
): Record<string, unknown> {
  return {
    request_id: randomUUID(),
    lease_id: '',
    renewable: false,
    lease_duration: 0,
    data,
    wrap_info: null,
    warnings: warnings.length === 0 ? null : warnings,
    auth: null,
    mount_type: 'transit',
  }
}

export function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.destroyed || res.writableEnded) return
  const text = JSON.stringify(body)
  res
    .writeHead(status, {
      ...headers,
      'Content-Type': 'application/json',
      'Cache-Control': 'no-store',
      'Content-Length': Buffer.byteLength(text),
    })
    .end(text)
}

/** The body, or undefined when it exceeds Vault's default `max_request_size`. */
export async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY) return undefined
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

export function header(req: IncomingMessage, name: string): string {
  const value = req.headers[name]
  return (Array.isArray(value) ? value[0] : value) ?? ''
}
