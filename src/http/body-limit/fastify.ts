import type { IncomingMessage } from 'node:http'
import { PassThrough, type Readable, type Transform } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { SecurityError } from '../../errors.js'
import { ensureErrorReply, sendFastifyAnswer } from '../../internal/reply/fastify.js'
import { toHttpAnswer } from '../../internal/reply/index.js'
import { InvalidContentLengthError, RequestTooLargeError } from '../errors.js'
import { pathOf } from '../paths.js'
import {
  type BodyLimitPolicy,
  type BodyLimitRouteConfig,
  BodyMeter,
  type BodySizeConfig,
  declaredLength,
  inflaterFor,
  parseRouteOverride,
  resolveBodyLimit,
} from './core.js'

/** Where the route's effective limit is kept, inside its Fastify route config. */
const kRouteLimit = Symbol('fraiseql-security.bodyLimit')

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Per-route body limit, or `false` to exempt the route. */
    bodyLimit?: BodyLimitRouteConfig
    [kRouteLimit]?: number
  }
}

/** A stream Fastify's body reader accepts in place of the raw request. */
type MeteredPayload = PassThrough & { receivedEncodedLength: number }

/** Node answers `100 Continue` itself unless someone listens for `checkContinue`. */
const kContinueGuard = Symbol.for('fraiseql-security.checkContinue')

async function bodyLimitPlugin(app: FastifyInstance, options: BodySizeConfig): Promise<void> {
  const policy = resolveBodyLimit(options)
  await ensureErrorReply(app)

  // Make Fastify's own limit agree with ours, route by route: a route allowed
  // 5 MB here must not be cut at Fastify's 1 MiB default, and a body over
  // either limit gets the same 413.
  app.addHook('onRoute', (route) => {
    const override = parseRouteOverride(
      route.config?.bodyLimit,
      `${String(route.method)} ${route.url}`,
    )
    if (override === false) return
    const limit = override?.maxSize ?? route.bodyLimit ?? policy.maxSize
    route.bodyLimit = limit
    route.config = { ...route.config, [kRouteLimit]: limit }
  })

  // Hold `100 Continue` until the route's limit has been checked: an oversized
  // declared length gets the 413 instead, before the client sends a byte.
  const server = app.server as typeof app.server & { [kContinueGuard]?: true }
  if (server[kContinueGuard] !== true && server.listenerCount('checkContinue') === 0) {
    server[kContinueGuard] = true
    server.on('checkContinue', (req: IncomingMessage, res) => server.emit('request', req, res))
  }

  app.addHook('onRequest', (request, reply, done) => {
    const limit = limitFor(policy, request)
    if (limit === undefined) return done()
    const declared = declaredLength(request.headers['content-length'])
    if (declared.kind === 'invalid') return reject(reply, new InvalidContentLengthError())
    // Fast path: refuse before a single body byte is read. `Connection: close`
    // stops Node from draining a body we already know we will refuse.
    if (declared.kind === 'length' && declared.bytes > limit) {
      return reject(reply, new RequestTooLargeError(limit))
    }
    done()
  })

  app.addHook('preParsing', (request, reply, payload, done) => {
    const limit = limitFor(policy, request)
    if (limit === undefined) {
      writeContinue(request, reply)
      return done(null, payload)
    }
    const inflater = inflaterFor(policy, request.headers['content-encoding'])
    if (inflater instanceof Error) return done(inflater)
    writeContinue(request, reply)
    done(null, meter(payload, limit, policy, inflater))
  })
}

/** The limit that applies to this request, or undefined when the guard does not. */
function limitFor(policy: BodyLimitPolicy, request: FastifyRequest): number | undefined {
  if (policy.exemptMethods.has(request.method)) return undefined
  const config = request.routeOptions.config
  if (config.bodyLimit === false) return undefined
  if (policy.isExemptPath(pathOf(request.url))) return undefined
  return config[kRouteLimit] ?? (config.bodyLimit ? config.bodyLimit.maxSize : policy.maxSize)
}

function reject(reply: FastifyReply, error: SecurityError): void {
  sendFastifyAnswer(reply, toHttpAnswer(error))
}

function writeContinue(request: FastifyRequest, reply: FastifyReply): void {
  const expect = request.headers.expect
  if (
    typeof expect === 'string' &&
    expect.toLowerCase() === '100-continue' &&
    !reply.raw.headersSent
  ) {
    reply.raw.writeContinue()
  }
}

/** Wraps the body in a metered stream Fastify's parsers read from. */
function meter(
  source: Readable,
  limit: number,
  policy: BodyLimitPolicy,
  inflater: Transform | undefined,
): MeteredPayload {
  const out = new PassThrough() as MeteredPayload
  out.receivedEncodedLength = 0
  const meter = new BodyMeter(
    limit,
    {
      write: (chunk) => out.write(chunk),
      end: () => out.end(),
      fail: (error) => {
        // Stop reading without destroying the socket: the answer still has to go out.
        source.removeListener('data', onData)
        source.pause()
        out.destroy(error)
      },
    },
    inflater,
    policy.bodyTimeoutMs,
  )
  function onData(chunk: Buffer) {
    if (!meter.push(chunk)) source.pause()
    out.receivedEncodedLength = meter.encodedBytes
  }
  source.on('data', onData)
  source.once('end', () => meter.end())
  source.once('error', (err: Error) => {
    meter.dispose()
    out.destroy(err)
  })
  out.on('drain', () => {
    meter.resume()
    source.resume()
  })
  out.once('close', () => meter.dispose())
  return out
}

/**
 * Request body size limit for Fastify. Rejects a declared `Content-Length`
 * over the limit before reading the body, counts chunked bodies as they
 * arrive, optionally inflates compressed bodies under the same budget, and
 * answers every oversized body with the same 413 JSON.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { bodyLimit } from 'fraiseql-security/http'
 * const app = Fastify()
 * await app.register(bodyLimit, { maxSize: 512 * 1024, exemptPaths: ['/uploads/*'], inflate: true })
 * app.post('/import', { config: { bodyLimit: { maxSize: 10 * 1024 * 1024 } } }, handler)
 * ```
 */
export const bodyLimit = fp(bodyLimitPlugin, {
  name: 'fraiseql-security/body-limit',
  fastify: '5.x',
})
