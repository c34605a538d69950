import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { SecurityError } from '../../errors.js'
import { pathOf } from '../../internal/path-matcher.js'
import { writeNodeAnswer } from '../../internal/reply/node.js'
import { InvalidContentLengthError, RequestTooLargeError } from '../errors.js'
import {
  BodyMeter,
  type BodySizeConfig,
  declaredLength,
  decodingFor,
  isExemptByMethod,
  refusal,
  resolveBodyLimit,
} from './core.js'
import { type BodyEncoding, createDecoder, inflateWhole } from './decoder.js'

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
 * on plain `node:http`. It meters the request stream in place, on every
 * method that carries a body, and decodes compressed bodies itself (each
 * decoded layer counted), so whatever reads the body next (`express.json()`,
 * `raw-body`, your own code) sees at most `maxSize` decoded bytes and no
 * `Content-Encoding` left to inflate. Install it before any body parser.
 *
 * @example
 * ```ts
 * import express from 'express'
 * import { bodyLimitMiddleware } from 'fraiseql-security/http'
 * const app = express()
 * // First, so that every parser after it reads the metered, decoded body.
 * app.use(bodyLimitMiddleware({ maxSize: 256 * 1024 }))
 * app.use(express.json())
 * ```
 */
export function bodyLimitMiddleware(config?: BodySizeConfig): BodyLimitMiddleware {
  const policy = resolveBodyLimit(config)

  function precheck(req: IncomingMessage): SecurityError | 'exempt' | undefined {
    if (isExemptByMethod(policy, req.method, req)) return 'exempt'
    if (policy.isExemptPath(pathOf(req.url))) return 'exempt'
    const declared = declaredLength(req.headers['content-length'])
    if (declared.kind === 'invalid') return new InvalidContentLengthError()
    if (declared.kind === 'length' && declared.bytes > policy.maxSize)
      return new RequestTooLargeError(policy.maxSize, declared.bytes)
    return undefined
  }

  const middleware = function bodyLimitMiddleware(
    req: IncomingMessage,
    res: ServerResponse,
    next: NextFunction,
  ) {
    const verdict = precheck(req)
    if (verdict === 'exempt') return next()
    if (verdict !== undefined) return writeNodeAnswer(res, refusal(verdict))
    const order = decodingFor(policy, req.headers['content-encoding'])
    if (order instanceof Error) return writeNodeAnswer(res, refusal(order))
    if (meterInPlace(req, res, policy.maxSize, order, policy.bodyTimeoutMs)) next()
  }

  // A listener, so `this` is the server the event came from.
  const checkContinue = function checkContinue(
    this: Server,
    req: IncomingMessage,
    res: ServerResponse,
  ) {
    const verdict = precheck(req)
    if (verdict !== undefined && verdict !== 'exempt') return writeNodeAnswer(res, refusal(verdict))
    res.writeContinue()
    this.emit('request', req, res)
  }

  return Object.assign(middleware, { checkContinue })
}

type Push = (chunk: unknown, encoding?: BufferEncoding) => boolean

/**
 * Meters the request where the HTTP parser hands it body bytes (`push`), so
 * nothing is read early and any consumer downstream reads the metered body.
 * Returns false when it already answered (the body was over the limit or
 * corrupt before this middleware ran).
 */
function meterInPlace(
  req: IncomingMessage,
  res: ServerResponse,
  limit: number,
  order: readonly BodyEncoding[],
  timeoutMs: number | false,
): boolean {
  // An async middleware ran first, so the parser may have pushed body bytes,
  // or the whole body, into `req` already. They count like any other: a
  // chunked body that fit in one read must not slip past the limit.
  if (req.complete) return checkArrived(req, res, limit, order)
  const push: Push = req.push.bind(req)
  const inflater = order.length === 0 ? undefined : createDecoder(order, limit)
  if (inflater !== undefined) hideEncoding(req)
  const meter = new BodyMeter(
    limit,
    {
      // Inflated output is not throttled: it is bounded by `limit` anyway, and
      // the parser is already throttled through the inflater's input side.
      write: (chunk) => push(chunk) || inflater !== undefined,
      end: () => push(null),
      // The parser stopped reading when the inflater's input was full; start it
      // again as Node's own `IncomingMessage._read` would.
      drain: () => {
        if (req.socket?.readable) req.socket.resume()
      },
      fail: (error) => {
        if (res.headersSent) {
          // Too late for an answer (the response started, or went out before the
          // body ended): dropping the connection is all that is left.
          req.destroy(error)
          return
        }
        writeNodeAnswer(res, refusal(error))
        // Tell a consumer already reading (raw-body, body-parser) why the body stopped.
        if (req.listenerCount('error') > 0) req.emit('error', error)
      },
    },
    inflater,
    timeoutMs,
  )
  const buffered = req.readableLength
  ;(req as { push: Push }).push = (chunk, encoding) => {
    if (chunk === null) {
      meter.end()
      return false
    }
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, encoding) : (chunk as Buffer)
    return meter.push(buf)
  }
  if (buffered > 0) {
    // Identity bytes stay where they are and are only counted; compressed ones
    // are taken back out and go through the inflater like the rest.
    if (inflater === undefined) meter.count(buffered)
    else meter.push(req.read(buffered) as Buffer)
    // Already past the limit: answered, and nothing downstream may run.
    if (meter.done) return false
  }
  // Not on the response's `close`: a body still arriving after the answer is
  // still bounded by the limit and the timeout.
  req.once('close', () => meter.dispose())
  return true
}

/** Consumers read the inflated body: its length is unknown and its encoding is gone. */
function hideEncoding(req: IncomingMessage): void {
  // body-parser would otherwise inflate it again, or check the compressed length.
  delete req.headers['content-length']
  delete req.headers['content-encoding']
  req.headers['transfer-encoding'] = 'chunked'
}

/**
 * The whole body is already in `req`'s buffer: count it there and, when it
 * is compressed, swap it for its inflated form in one step (it can no longer
 * be streamed through an inflater, `req` has ended).
 */
function checkArrived(
  req: IncomingMessage,
  res: ServerResponse,
  limit: number,
  order: readonly BodyEncoding[],
): boolean {
  const fail = (error: SecurityError) => {
    writeNodeAnswer(res, refusal(error))
    return false
  }
  if (req.readableLength > limit) return fail(new RequestTooLargeError(limit, req.readableLength))
  if (order.length === 0) return true
  hideEncoding(req)
  const compressed = req.read() as Buffer | null
  // An empty body inflates to nothing, as it does through the streaming inflater.
  if (compressed === null) return true
  const inflated = inflateWhole(order, compressed, limit)
  if (inflated instanceof Error) return fail(inflated)
  // `unshift` before `end` is emitted puts the bytes back in front, in order.
  if (inflated.length > 0) req.unshift(inflated)
  return true
}
