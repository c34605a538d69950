/**
 * The AWS JSON 1.1 protocol as the emulator speaks it: bounded request
 * bodies, `{"__type", "message"}` error answers with KMS's statuses, and a
 * `Date` header from the service's clock (the SDK corrects its clock from it).
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'

/** Largest request body read; a larger one drops the connection. */
const MAX_BODY = 1024 * 1024

/** A KMS error answer. */
export class WireError extends Error {
  /** Some errors (InvalidCiphertextException) come without a message. */
  readonly omitMessage: boolean

  constructor(
    readonly type: string,
    message: string | undefined,
    readonly status = 400,
  ) {
    super(message ?? type)
    this.omitMessage = message === undefined
  }
}

export function invalidCiphertext(): WireError {
  // Real KMS sends this one without a message.
  return new WireError('InvalidCiphertextException', undefined)
}

export function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name]
  return Array.isArray(value) ? value.join(',') : value
}

/** Header values by lowercased name, repeated headers joined with "," (as SigV4 canonicalizes them). */
export function headerValues(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase()
    const value = req.rawHeaders[i + 1]!
    out[name] = out[name] === undefined ? value : `${out[name]},${value}`
  }
  return out
}

export async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of req) {
      size += (chunk as Buffer).length
      if (size > MAX_BODY) return undefined
      chunks.push(chunk as Buffer)
    }
  } catch {
    return undefined
  }
  return Buffer.concat(chunks)
}

export function reply(
  res: ServerResponse,
  status: number,
  body: Record<string, unknown> | undefined,
  date: Date,
): void {
  if (res.destroyed || res.headersSent) return
  const text = body === undefined ? '' : JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
    // The service's clock, not the host's: the SDK sets its clock offset from it.
    date: date.toUTCString(),
  })
  res.end(text)
}

/** Waits, but stops early when the client goes away or the emulator closes. */
export function wait(ms: number, res: ServerResponse, closing: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      res.off('close', done)
      closing.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    res.once('close', done)
    closing.addEventListener('abort', done, { once: true })
  })
}
