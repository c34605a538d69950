/**
 * A raw HTTP/1.1 client over `node:net`, for the tests that must control
 * exactly which bytes go on the wire (headers without a body, a body cut
 * short, `Expect: 100-continue`) and observe exactly what comes back, which
 * `fetch` and `http.request` hide. Every wait is bounded: a test fails with a
 * message naming what it waited for instead of hanging.
 */
import type { Server } from 'node:http'
import { connect, type Socket } from 'node:net'

/** Starts a server on 127.0.0.1, port 0, and returns the port it got. */
export async function listenLocal(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('server has no port')
  return address.port
}

/** Closes a server and every connection still open on it. */
export async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
}

/** Rejects with a message naming the wait when `promise` takes longer than `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** How the server ended the connection. */
export interface Closed {
  /** True when the server reset the connection instead of closing it with a FIN. */
  readonly reset: boolean
}

export interface RawClient {
  readonly socket: Socket
  /** Everything received so far, decoded as latin1 (byte for byte). */
  text(): string
  /** Resolves with the received text once `predicate` holds; rejects after `ms`. */
  until(predicate: (text: string) => boolean, what: string, ms?: number): Promise<string>
  /** Resolves when the connection is gone, whoever closed it. */
  readonly closed: Promise<Closed>
  /** True once the server ended its side (FIN or reset). */
  serverClosed(): boolean
  /**
   * Writes, and resolves once the bytes are flushed to the kernel or the
   * connection is gone (a server that stopped reading makes this wait forever
   * otherwise, so callers race it against the answer).
   */
  write(data: string | Buffer): Promise<void>
  destroy(): void
}

/** Opens a connection to 127.0.0.1:port. Socket errors (a reset) are recorded, not thrown. */
export async function rawConnect(port: number): Promise<RawClient> {
  const socket = connect(port, '127.0.0.1')
  socket.setNoDelay(true)
  const chunks: Buffer[] = []
  let text = ''
  let ended = false
  let reset = false
  const waiters = new Set<() => void>()
  const wake = () => {
    for (const w of waiters) w()
  }
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk)
    text += chunk.toString('latin1')
    wake()
  })
  socket.on('end', () => {
    ended = true
    wake()
  })
  socket.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'ECONNRESET' || err.code === 'EPIPE') reset = true
    ended = true
    wake()
  })
  const closed = new Promise<Closed>((resolve) => socket.once('close', () => resolve({ reset })))
  closed.then(wake)
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })

  return {
    socket,
    text: () => text,
    serverClosed: () => ended,
    closed,
    until(predicate, what, ms = 5000) {
      if (predicate(text)) return Promise.resolve(text)
      let waiter: (() => void) | undefined
      const done = new Promise<string>((resolve, reject) => {
        waiter = () => {
          if (predicate(text)) resolve(text)
          else if (socket.destroyed) reject(new Error(`connection closed before ${what}`))
        }
        waiters.add(waiter)
      })
      return within(done, ms, what).finally(() => {
        if (waiter !== undefined) waiters.delete(waiter)
      })
    },
    write(data) {
      if (socket.destroyed || !socket.writable) return Promise.resolve()
      return new Promise<void>((resolve) => {
        const flushed = socket.write(data, () => resolve())
        if (!flushed) closed.then(() => resolve())
      })
    },
    destroy: () => socket.destroy(),
  }
}

/** One parsed HTTP/1.1 response (status line, headers, `Content-Length` body). */
export interface RawResponse {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  /** The interim `1xx` status lines that came before it, e.g. `['HTTP/1.1 100 Continue']`. */
  readonly interim: readonly string[]
}

/** True once `text` holds a whole final response (headers and its `Content-Length` body). */
export function hasFullResponse(text: string): boolean {
  return tryParseResponse(text) !== undefined
}

/** Parses the first final response in `text`; throws when it is incomplete. */
export function parseResponse(text: string): RawResponse {
  const parsed = tryParseResponse(text)
  if (parsed === undefined) throw new Error(`incomplete response: ${JSON.stringify(text)}`)
  return parsed
}

function tryParseResponse(text: string): RawResponse | undefined {
  const interim: string[] = []
  let rest = text
  for (;;) {
    const end = rest.indexOf('\r\n\r\n')
    if (end === -1) return undefined
    const [statusLine = '', ...lines] = rest.slice(0, end).split('\r\n')
    const status = Number(statusLine.split(' ')[1])
    rest = rest.slice(end + 4)
    if (status >= 100 && status < 200) {
      interim.push(statusLine)
      continue
    }
    const headers: Record<string, string> = {}
    for (const line of lines) {
      const colon = line.indexOf(':')
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
    }
    const length = Number(headers['content-length'] ?? 0)
    if (Buffer.byteLength(rest, 'latin1') < length) return undefined
    return { status, headers, body: rest.slice(0, length), interim }
  }
}

/** A request head (request line and headers, blank line included) for a raw write. */
export function requestHead(
  method: string,
  path: string,
  headers: Record<string, string | number> = {},
): string {
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1']
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`)
  return `${lines.join('\r\n')}\r\n\r\n`
}

/** One chunk of a `Transfer-Encoding: chunked` body. */
export function chunk(data: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')])
}

/** The last chunk of a chunked body. */
export const LAST_CHUNK = '0\r\n\r\n'

/**
 * Streams `total` bytes as a chunked body, `size` at a time, until everything
 * is sent or the server answered or closed (a guard that stopped reading
 * leaves writes pending forever). Returns how many body bytes were handed to
 * the kernel.
 */
export async function sendChunked(
  client: RawClient,
  total: number,
  size = 64 * 1024,
): Promise<number> {
  const piece = chunk(Buffer.alloc(size, 0x61))
  let sent = 0
  const answered = client.until(hasFullResponse, 'an answer while streaming', 60_000).then(
    () => true,
    () => true,
  )
  let stop = false
  answered.then(() => {
    stop = true
  })
  while (sent < total && !stop && !client.serverClosed()) {
    await Promise.race([client.write(piece), answered])
    sent += size
  }
  if (!stop && !client.serverClosed()) await client.write(LAST_CHUNK)
  return sent
}

/**
 * Sends one whole request on a new connection and returns the parsed answer
 * (the connection is then dropped).
 */
export async function roundTrip(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string | number> = {},
  body: string | Buffer = '',
): Promise<RawResponse> {
  const client = await rawConnect(port)
  try {
    await client.write(requestHead(method, path, headers))
    if (body.length > 0)
      await Promise.race([
        client.write(body),
        client.until(hasFullResponse, 'an answer', 60_000).catch(() => {}),
      ])
    return parseResponse(await client.until(hasFullResponse, `the answer to ${method} ${path}`))
  } finally {
    client.destroy()
  }
}
