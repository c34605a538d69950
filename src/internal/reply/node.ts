import type { ServerResponse } from 'node:http'
import type { HttpAnswer } from './index.js'

/** Writes an answer on a plain `node:http` response, unless one was already started. */
export function writeNodeAnswer(res: ServerResponse, answer: HttpAnswer): void {
  if (res.headersSent || res.writableEnded) return
  res.statusCode = answer.statusCode
  for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value)
  res.setHeader('content-length', Buffer.byteLength(answer.body))
  if (answer.headers.connection === 'close') res.shouldKeepAlive = false
  res.end(answer.body)
}
