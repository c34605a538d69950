import type { IncomingMessage } from 'node:http'
import { PassThrough, type Readable, type Transform } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { SecurityError } from '../../errors.js'
import { pathOf } from '../../internal/path-matcher.js'
import { answerOptionsFor, deliverRefusal, ensureErrorReply } from '../../internal/reply/fastify.js'
import { InvalidContentLengthError, RequestTooLargeError } from '../errors.js'
import { ANSWERED, addRequestGuard } from '../guard-hook.js'
import {
  type BodyLimitPolicy,
  type BodyLimitRouteConfig,
  BodyMeter,
  type BodySizeConfig,
  declaredLength,
  decoderFor,
  isExemptByMethod,
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
    // Methods exempt nothing here: a GET or OPTIONS with a body is limited.
    if (policy.isExemptPath(route.url)) return
    const limit = override?.maxSize ?? route.bodyLimit ?? policy.maxSize
    // Only ever raised, never lowered: the guard enforces `limit` before
    // Fastify's reader sees a byte past it.
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

  // Shares one `onRequest` hook with a rate limit registered right before or
  // after it (see guard-hook.ts).
  addRequestGuard(app, (request, reply) => {
    const limit = limitFor(policy, request)
    if (limit === undefined) return undefined
    const declared = declaredLength(request.headers['content-length'])
    if (declared.kind === 'invalid') return reject(reply, new InvalidContentLengthError())
    // Fast path: refuse before a single body byte is read. `Connection: close`
    // stops Node from draining a body we already know we will refuse.
    if (declared.kind === 'length' && declared.bytes > limit) {
      return reject(reply, new RequestTooLargeError(limit, declared.bytes))
    }
    return undefined
  })

  app.addHook('preParsing', (request, reply, payload, done) => {
    const limit = limitFor(policy, request)
    if (limit === undefined) {
      writeContinue(request, reply)
      return done(null, payload)
    }
    const decoder = decoderFor(policy, request.headers['content-encoding'], limit)
    // Answered here rather than through `done(error)`, for the reason given in `meter`.
    if (decoder instanceof Error) {
      reject(reply, decoder)
      return
    }
    // Whatever reads the body gets it decoded: a parser of ours or the
    // user's must not decode it a second time.
    if (decoder !== undefined) delete request.headers['content-encoding']
    writeContinue(request, reply)
    const body = meter(request, reply, payload, limit, policy, decoder)
    if (!isBodylessMethod(request)) return done(null, body)
    // Fastify never reads a body on this method (GET, HEAD, TRACE): the
    // handler would answer while the body still streams in, and an oversized
    // one would never get its 413. Count it to its end first, dropping it.
    body.once('end', () => done(null, body))
    body.resume()
  })
}

/** Fastify 5's bodyless methods, for when its own table cannot be found. */
const BODYLESS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'TRACE'])

/**
 * The symbol of Fastify's method table, found once by its description on the
 * instance or its prototypes (a plugin's instance inherits it); `null` when
 * absent (another Fastify major), and {@link BODYLESS} applies.
 */
let kMethodTable: symbol | null | undefined

/** Whether Fastify skips body parsing for this request's method (`addHttpMethod` without `hasBody`). */
function isBodylessMethod(request: FastifyRequest): boolean {
  const server = request.server as unknown as Record<symbol, { bodyless?: unknown } | undefined>
  if (kMethodTable === undefined) {
    kMethodTable = null
    for (let o: object | null = server; o !== null; o = Object.getPrototypeOf(o)) {
      const found = Object.getOwnPropertySymbols(o).find(
        (s) => s.description === 'fastify.acceptedHTTPMethods',
      )
      if (found !== undefined) {
        kMethodTable = found
        break
      }
    }
  }
  const table = kMethodTable === null ? undefined : server[kMethodTable]?.bodyless
  return (table instanceof Set ? (table as Set<string>) : BODYLESS).has(request.method)
}

/** The limit that applies to this request, or undefined when the guard does not. */
function limitFor(policy: BodyLimitPolicy, request: FastifyRequest): number | undefined {
  if (isExemptByMethod(policy, request.method, request.raw)) return undefined
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

function reject(reply: FastifyReply, error: SecurityError): typeof ANSWERED {
  // The hooks that call this never call `done` after it: nothing runs on.
  void deliverRefusal(reply, error, refusal(error, answerOptionsFor(reply.request)))
  return ANSWERED
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
  decoder: Transform | undefined,
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
    decoder,
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
 * arrive, on every method that carries a body, decodes compressed bodies
 * under the same budget, and answers every oversized body with the same 413
 * JSON.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { bodyLimit } from 'fraiseql-security/http'
 * const app = Fastify()
 * await app.register(bodyLimit, { maxSize: 512 * 1024, exemptPaths: ['/uploads/*'] })
 * app.post('/import', { config: { bodyLimit: { maxSize: 10 * 1024 * 1024 } } }, handler)
 * ```
 */
export const bodyLimit = fp(bodyLimitPlugin, {
  name: 'fraiseql-security/body-limit',
  fastify: '5.x',
})
