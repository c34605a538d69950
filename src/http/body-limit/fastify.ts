import type { IncomingMessage } from 'node:http'
import { PassThrough, type Readable, type Transform } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { SecurityError } from '../../errors.js'
import {
  answerOptionsFor,
  ensureErrorReply,
  sendFastifyAnswer,
} from '../../internal/reply/fastify.js'
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
  refusal,
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
    // A route the guard ignores keeps Fastify's own limit too: otherwise a path
    // in `exemptPaths` would still be cut at `maxSize`, by Fastify instead of us.
    if (isExemptRoute(policy, route.url, route.method)) return
    const limit = override?.maxSize ?? route.bodyLimit ?? policy.maxSize
    // Only ever raised, never lowered: the guard enforces `limit` before
    // Fastify's reader sees a byte past it, while a request the guard exempts
    // on a shared route (the OPTIONS of a POST/OPTIONS route) keeps Fastify's
    // own limit, as if the plugin were not there.
    route.bodyLimit = Math.max(limit, route.bodyLimit ?? app.initialConfig.bodyLimit ?? limit)
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
      return reject(reply, new RequestTooLargeError(limit, declared.bytes))
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
    // Answered here rather than through `done(error)`, for the reason given in `meter`.
    if (inflater instanceof Error) return reject(reply, inflater)
    writeContinue(request, reply)
    done(null, meter(request, reply, payload, limit, policy, inflater))
  })
}

/**
 * Whether every request a route can match is exempt: its URL is an exempt
 * path (a parametric route such as `/files/:id` under `/files/*` is), or
 * each of its methods is exempt.
 */
function isExemptRoute(
  policy: BodyLimitPolicy,
  url: string,
  method: string | readonly string[],
): boolean {
  if (policy.isExemptPath(url)) return true
  const methods = typeof method === 'string' ? [method] : method
  return methods.every((m) => policy.exemptMethods.has(m.toUpperCase()))
}

/** The limit that applies to this request, or undefined when the guard does not. */
function limitFor(policy: BodyLimitPolicy, request: FastifyRequest): number | undefined {
  if (policy.exemptMethods.has(request.method)) return undefined
  const options = request.routeOptions
  const config = options.config
  if (config.bodyLimit === false) return undefined
  if (policy.isExemptPath(pathOf(request.url))) return undefined
  return config[kRouteLimit] ?? unseenRouteLimit(policy, options)
}

/** Overrides of routes `onRoute` never saw, validated once per route. */
const unseenOverrides = new WeakMap<object, BodyLimitRouteConfig | undefined>()

/**
 * A route declared before the plugin (or the 404 route): `onRoute` never saw
 * it, so Fastify's own limit for it was not raised or lowered to ours. The
 * lower of the two applies, and the guard enforces it itself: Fastify binds a
 * route's error handler when the route is declared, so such a route would
 * answer Fastify's own 413 in Fastify's shape, never ours.
 */
function unseenRouteLimit(
  policy: BodyLimitPolicy,
  options: FastifyRequest['routeOptions'],
): number {
  const config = options.config
  let override = unseenOverrides.get(config)
  if (override === undefined && !unseenOverrides.has(config)) {
    // Throws ERR_CONFIG_INVALID (a 500): a bad override is never swapped for a default.
    override = parseRouteOverride(config.bodyLimit, `${String(options.method)} ${options.url}`)
    unseenOverrides.set(config, override)
  }
  const ours = typeof override === 'object' ? override.maxSize : policy.maxSize
  return Math.min(ours, options.bodyLimit)
}

function reject(reply: FastifyReply, error: SecurityError): void {
  sendFastifyAnswer(reply, refusal(error, answerOptionsFor(reply.request)))
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

/** Errors reach the body reader through its own listener. */
function ignore(): void {}

/** Wraps the body in a metered stream Fastify's parsers read from. */
function meter(
  request: FastifyRequest,
  reply: FastifyReply,
  source: Readable,
  limit: number,
  policy: BodyLimitPolicy,
  inflater: Transform | undefined,
): MeteredPayload {
  const out = new PassThrough() as MeteredPayload
  out.receivedEncodedLength = 0
  // Without a listener of its own, an error on `out` while nothing reads it
  // (the body timeout firing after Fastify answered a 415 without reading the
  // body, a client aborting between hooks) would be an uncaught exception.
  out.on('error', ignore)
  // Set when the answer went out while the body was still arriving and nothing
  // read it (Fastify's 415 for an unknown media type, a 404). The rest is still
  // counted and timed, then dropped, as Node would drain it: the keep-alive
  // connection stays usable, yet the server never reads past the limit.
  let discarding = false
  const meter = new BodyMeter(
    limit,
    {
      write: (chunk) => discarding || out.write(chunk),
      end: () => out.end(),
      drain: () => source.resume(),
      fail: (error) => {
        // Stop reading without destroying the socket: the answer still has to go out.
        source.removeListener('data', onData)
        source.pause()
        if (discarding || reply.sent) {
          // The answer is already out; all that is left is to drop the connection.
          request.raw.destroy()
          return
        }
        // Answer here, not by failing the body reader: Fastify would hand that
        // error to the route's error handler, and a route declared before this
        // plugin keeps the one it was declared with (Fastify's default, which
        // answers in Fastify's shape). Destroyed without an error, `out` ends
        // the reader silently, so it does not answer a second time.
        reject(reply, error)
        out.destroy()
      },
    },
    inflater,
    policy.bodyTimeoutMs,
  )
  function onData(chunk: Buffer) {
    // Before pushing: Fastify's reader checks this against its limit on each chunk.
    out.receivedEncodedLength = meter.encodedBytes + chunk.length
    if (!meter.push(chunk)) source.pause()
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
  out.once('close', () => {
    if (!discarding) meter.dispose()
  })
  reply.raw.once('finish', () => {
    if (meter.done) return
    discarding = true
    meter.resume()
    source.resume()
  })
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
