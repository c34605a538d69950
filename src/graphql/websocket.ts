/**
 * GraphQL over WebSocket, held to the rules of the HTTP route. mercurius
 * (lib/subscription-connection.js) parses a `subscribe` message's query
 * before any of its hooks runs, and sends what that and the subscription's
 * own resolver throw as it is, past every error formatter; and a WebSocket
 * message is not bounded by the body limit. So a subscription nested a few
 * thousand levels deep answered `Maximum call stack size exceeded`, one of
 * any length was parsed whole, and a `subscribe` resolver's
 * `db password=hunter2` reached the client under `errorDetail: 'safe'`.
 *
 * Each socket of a guarded mercurius route gets, from the moment it opens
 * (the WebSocket server's `connection` event comes before mercurius's
 * handler):
 *
 * - every `subscribe` / `start` message checked before mercurius sees it:
 *   the token and nesting limits on its text, the nesting bound on its
 *   variables (the checks of the HTTP route's `preParsing` hook); a refusal
 *   is sent as that protocol's `error` message and the message goes no
 *   further;
 * - optionally, each such message charged first (a profile's per-principal
 *   budget: a refused operation is not free over WebSocket either),
 *   messages kept in their order;
 * - every error it sends (`error` messages, `next` / `data` results)
 *   brought to the `errorDetail` level, as the HTTP route's answers are
 *   when mercurius's own formatter wrote them.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { GraphQLError, GraphQLFormattedError } from 'graphql'
import { SecurityError } from '../errors.js'
import { rejection } from '../internal/graphql-rejection.js'
import { type GraphqlRuntime, graphqlRuntime } from '../internal/graphql-runtime.js'
import { isMercuriusRoute } from '../internal/mercurius-context.js'
import { sourceRejection, variablesRejection } from './check.js'
import { relevelSerializedErrors } from './error-formatter.js'
import type { ResolvedGuardOptions } from './options.js'

/** What the sockets of one mercurius instance are held to. */
export interface SocketRules {
  /** The guards' options: limits and `errorDetail`. */
  readonly options: ResolvedGuardOptions
  /**
   * Pays for one operation a socket carries, before it is checked; a
   * rejection refuses it (a `SecurityError` with a status gives its code).
   */
  readonly charge?: ((request: FastifyRequest) => Promise<void>) | undefined
}

/** The part of a `ws` WebSocket this module touches. */
interface Socket {
  send(data: unknown, ...rest: unknown[]): void
  emit(event: string | symbol, ...args: unknown[]): boolean
}

/** The part of `ws`'s server (`@fastify/websocket`'s `websocketServer`) used here. */
interface SocketServer {
  on(event: 'connection', listener: (socket: Socket, raw: object) => void): unknown
}

/** A client message that starts an operation, in either protocol mercurius speaks. */
const STARTS = new Set(['subscribe', 'start'])

/**
 * Holds the WebSocket connections of `app`'s guarded mercurius routes to
 * their rules: `rulesOf(app.graphql)` of the route's instance, `undefined`
 * for one not guarded. One `preHandler` hook (after the HTTP steps of the
 * upgrade request) notes the request; the WebSocket server's `connection`
 * event, which `@fastify/websocket` emits before it calls mercurius,
 * wraps the socket.
 */
export function guardWebSockets(
  app: FastifyInstance,
  component: string,
  rulesOf: (graphql: unknown) => SocketRules | undefined,
): void {
  const listening = new WeakSet<object>()
  const pending = new WeakMap<object, { request: FastifyRequest; rules: SocketRules }>()
  app.addHook('preHandler', (request, _reply, done) => {
    if ((request as { ws?: unknown }).ws !== true || !isMercuriusRoute(request)) return done()
    const server = request.server as { graphql?: unknown; websocketServer?: unknown }
    const rules = rulesOf(server.graphql)
    const wss = server.websocketServer as SocketServer | undefined
    if (rules === undefined || typeof wss?.on !== 'function') return done()
    if (!listening.has(wss)) {
      listening.add(wss)
      const runtime = graphqlRuntime(component)
      wss.on('connection', (socket, raw) => {
        const held = pending.get(raw)
        if (held === undefined) return
        pending.delete(raw)
        holdSocket(socket, held.request, held.rules, runtime)
      })
    }
    pending.set(request.raw, { request, rules })
    done()
  })
}

/** The id and payload of a message that starts an operation; `undefined` for any other. */
function startOf(data: unknown): { id: unknown; payload: Record<string, unknown> } | undefined {
  let text: string
  if (typeof data === 'string') text = data
  else if (Buffer.isBuffer(data)) text = data.toString('utf8')
  else if (Array.isArray(data)) text = Buffer.concat(data as Buffer[]).toString('utf8')
  else if (data instanceof ArrayBuffer) text = Buffer.from(data).toString('utf8')
  else return undefined
  let message: { type?: unknown; id?: unknown; payload?: unknown } | null
  try {
    message = JSON.parse(text) as typeof message
  } catch {
    // mercurius answers a message that is not JSON itself.
    return undefined
  }
  if (typeof message !== 'object' || message === null || !STARTS.has(message.type as string)) {
    return undefined
  }
  const payload = message.payload
  return {
    id: message.id,
    payload:
      typeof payload === 'object' && payload !== null ? (payload as Record<string, unknown>) : {},
  }
}

/** `text` (a message mercurius sends) with its errors brought to `o`'s level. */
function relevelMessage(text: string, o: ResolvedGuardOptions, requestId: string): string {
  // mercurius writes `{"type":…,"id":…,"payload":…}`: most messages carry no error.
  if (!text.startsWith('{"type":"error"') && !text.includes('"errors":')) return text
  let message: { type?: unknown; payload?: unknown }
  try {
    message = JSON.parse(text) as typeof message
  } catch {
    return text
  }
  const id = o.errorDetail === 'minimal' ? requestId : undefined
  const payload = message.payload as { errors?: unknown } | unknown[] | null | undefined
  if (message.type === 'error' && Array.isArray(payload)) {
    // Sent as thrown: a parser's or a resolver's crash, unlocated, is internal.
    message.payload = relevelSerializedErrors(payload as GraphQLFormattedError[], o, id, 'socket')
  } else if (
    typeof payload === 'object' &&
    payload !== null &&
    !Array.isArray(payload) &&
    Array.isArray(payload.errors)
  ) {
    message.payload = {
      ...payload,
      errors: relevelSerializedErrors(payload.errors as GraphQLFormattedError[], o, id),
    }
  } else {
    return text
  }
  return JSON.stringify(message)
}

function holdSocket(
  socket: Socket,
  request: FastifyRequest,
  rules: SocketRules,
  runtime: GraphqlRuntime,
): void {
  const o = rules.options
  const requestId = String(request.id)
  if (o.errorDetail !== 'full') {
    const send = socket.send
    socket.send = function (this: Socket, data: unknown, ...rest: unknown[]) {
      return send.call(
        this,
        typeof data === 'string' ? relevelMessage(data, o, requestId) : data,
        ...rest,
      )
    }
  }
  const emit = socket.emit
  const deliver = (args: unknown[]): void => {
    emit.call(socket, 'message', ...args)
  }
  const refuse = (id: unknown, error: GraphQLError): void => {
    socket.send(JSON.stringify({ type: 'error', id, payload: [error.toJSON()] }))
  }
  const check = (payload: Record<string, unknown>): GraphQLError | undefined => {
    const query = payload.query
    // A query given as an AST is refused by the guards' subscription hook.
    const error = typeof query === 'string' ? sourceRejection(runtime, o, query) : undefined
    return error ?? variablesRejection(runtime, o, payload.variables)
  }
  const charge = rules.charge
  /** Messages wait for the charge of an earlier one: mercurius reads them in order. */
  let queue: Promise<void> = Promise.resolve()
  let waiting = 0

  socket.emit = function (this: Socket, event: string | symbol, ...args: unknown[]): boolean {
    if (event !== 'message') return emit.call(this, event, ...args)
    const start = startOf(args[0])
    if (charge === undefined || (start === undefined && waiting === 0)) {
      const error = start === undefined ? undefined : check(start.payload)
      if (start !== undefined && error !== undefined) refuse(start.id, error)
      else deliver(args)
      return true
    }
    waiting++
    queue = queue.then(async () => {
      try {
        if (start === undefined) return deliver(args)
        try {
          await charge(request)
        } catch (err) {
          return refuse(start.id, chargeRefusal(runtime, err))
        }
        const error = check(start.payload)
        if (error !== undefined) refuse(start.id, error)
        else deliver(args)
      } catch (err) {
        request.log.error({ err }, 'GraphQL WebSocket message failed')
      } finally {
        waiting--
      }
    })
    return true
  }
}

/** A charge's refusal as a GraphQL error: its code and status (429, 503), or internal. */
function chargeRefusal(runtime: GraphqlRuntime, err: unknown): GraphQLError {
  if (err instanceof SecurityError && err.statusCode !== undefined) {
    return rejection(runtime, err.code, err.message)
  }
  return rejection(runtime, 'ERR_INTERNAL', 'Internal error')
}
