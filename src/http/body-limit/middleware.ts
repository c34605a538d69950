import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Transform } from 'node:stream'
import type { SecurityError } from '../../errors.js'
import { toHttpAnswer } from '../../internal/reply/index.js'
import { writeNodeAnswer } from '../../internal/reply/node.js'
import { InvalidContentLengthError, RequestTooLargeError } from '../errors.js'
import { pathOf } from '../paths.js'
import {
  BodyMeter,
  type BodySizeConfig,
  declaredLength,
  inflaterFor,
  resolveBodyLimit,
} from './core.js'

export type NextFunction = (err?: unknown) => void

/** The Express-style middleware, plus a `checkContinue` listener for `node:http` servers. */
export interface BodyLimitMiddleware {
  (req: IncomingMessage, res: ServerResponse, next: NextFunction): void
  /**
   * Install on a plain `node:http` server (`server.on('checkContinue', mw.checkContinue)`)
   * so a client sending `Expect: 100-continue` with an oversized length gets
   * the 413 instead of `100 Continue`.
   */
  readonly checkContinue: (this: Server, req: IncomingMessage, res: ServerResponse) => void
}

/**
 * Express-style `(req, res, next)` body-size limit that works on Express and
 * on plain `node:http`. It meters the request stream in place, so whatever
 * reads the body next (`express.json()`, `raw-body`, your own code) sees at
 * most `maxSize` bytes; with `inflate: true` it sees the inflated body.
 *
 * @example
 * ```ts
 * import express from 'express'
 * import { bodyLimitMiddleware } from 'fraiseql-security/http'
 * const app = express()
 * app.use(bodyLimitMiddleware({ maxSize: 256 * 1024 }))
 * app.use(express.json({ limit: '1mb' }))
 * ```
 */
export function bodyLimitMiddleware(config?: BodySizeConfig): BodyLimitMiddleware {
  const policy = resolveBodyLimit(config)

  function precheck(req: IncomingMessage): SecurityError | 'exempt' | undefined {
    if (policy.exemptMethods.has(req.method ?? 'GET')) return 'exempt'
    if (policy.isExemptPath(pathOf(req.url))) return 'exempt'
    const declared = declaredLength(req.headers['content-length'])
    if (declared.kind === 'invalid') return new InvalidContentLengthError()
    if (declared.kind === 'length' && declared.bytes > policy.maxSize)
      return new RequestTooLargeError(policy.maxSize)
    return undefined
  }

  const middleware = function bodyLimitMiddleware(
    req: IncomingMessage,
    res: ServerResponse,
    next: NextFunction,
  ) {
    const verdict = precheck(req)
    if (verdict === 'exempt') return next()
    if (verdict !== undefined) return writeNodeAnswer(res, toHttpAnswer(verdict))
    const inflater = inflaterFor(policy, req.headers['content-encoding'])
    if (inflater instanceof Error) return writeNodeAnswer(res, toHttpAnswer(inflater))
    meterInPlace(req, res, policy.maxSize, inflater, policy.bodyTimeoutMs)
    next()
  }

  // A listener, so `this` is the server the event came from.
  const checkContinue = function checkContinue(
    this: Server,
    req: IncomingMessage,
    res: ServerResponse,
  ) {
    const verdict = precheck(req)
    if (verdict !== undefined && verdict !== 'exempt')
      return writeNodeAnswer(res, toHttpAnswer(verdict))
    res.writeContinue()
    this.emit('request', req, res)
  }

  return Object.assign(middleware, { checkContinue })
}

type Push = (chunk: unknown, encoding?: BufferEncoding) => boolean

/**
 * Meters the request where the HTTP parser hands it body bytes (`push`), so
 * nothing is read early and any consumer downstream reads the metered body.
 */
function meterInPlace(
  req: IncomingMessage,
  res: ServerResponse,
  limit: number,
  inflater: Transform | undefined,
  timeoutMs: number | false,
): void {
  const push: Push = req.push.bind(req)
  if (inflater !== undefined) {
    // Consumers now read the inflated body: its length is unknown, and the
    // encoding is gone (body-parser would otherwise inflate it again).
    delete req.headers['content-length']
    delete req.headers['content-encoding']
    req.headers['transfer-encoding'] = 'chunked'
  }
  const meter = new BodyMeter(
    limit,
    {
      // Inflated output is not throttled: it is bounded by `limit` anyway, and
      // the parser is already throttled through the inflater's input side.
      write: (chunk) => push(chunk) || inflater !== undefined,
      end: () => push(null),
      fail: (error) => {
        writeNodeAnswer(res, toHttpAnswer(error))
        // Tell a consumer already reading (raw-body, body-parser) why the body stopped.
        if (req.listenerCount('error') > 0) req.emit('error', error)
      },
    },
    inflater,
    timeoutMs,
  )
  // Bytes the parser pushed before this middleware ran still count.
  if (req.readableLength > 0) meter.encodedBytes += req.readableLength
  ;(req as { push: Push }).push = (chunk, encoding) => {
    if (chunk === null) {
      meter.end()
      return false
    }
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : (chunk as Buffer)
    return meter.push(buf)
  }
  req.once('close', () => meter.dispose())
  res.once('close', () => meter.dispose())
}
