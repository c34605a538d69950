/**
 * mercurius's `errorFormatter`, with three levels of detail. Every error
 * answer of the GraphQL route goes through it (mercurius calls it for
 * execution errors, validation failures and errors thrown by hooks), so this
 * is where suggestions are removed and internals masked.
 */
import type { GraphQLError, GraphQLFormattedError, SourceLocation } from 'graphql'
import { SECURITY_ERROR_CODES, SecurityError } from '../errors.js'
import { limitMessage } from './errors.js'
import {
  type GraphqlGuardOptions,
  parseGuardOptions,
  type ResolvedGuardOptions,
} from './options.js'
import { tokenLimitOf } from './source.js'
import { stripFieldSuggestions } from './suggestions.js'

/** The part of a logger the formatter uses (Fastify's fits). */
interface InfoLogger {
  info(obj: object, msg?: string): void
}

/** What mercurius passes as the execution result (errors are always present). */
export interface FormatterExecution {
  readonly data?: unknown
  readonly errors: readonly GraphQLError[]
  /** Set by some mercurius paths; wins over anything the formatter would pick. */
  readonly statusCode?: number
}

/** The part of mercurius's context the formatter reads. */
export interface FormatterContext {
  readonly reply?: { readonly request?: { readonly id?: unknown }; readonly log?: InfoLogger }
  readonly app?: { readonly log?: InfoLogger }
}

/** A mercurius `errorFormatter`. */
export type MercuriusErrorFormatter = (
  execution: FormatterExecution,
  context: FormatterContext,
) => {
  statusCode: number
  response: { data: Record<string, unknown> | null; errors: GraphQLFormattedError[] }
}

const OUR_CODES: ReadonlySet<string> = new Set(SECURITY_ERROR_CODES)

/** Extensions `safe` never sends: where Apollo-style servers put stacks and causes. */
const INTERNAL_EXTENSIONS = new Set(['exception', 'stacktrace', 'originalError'])

/** An error as mercurius hands it over: a GraphQLError, or a plain Error inside a validation wrapper. */
interface ErrorLike {
  readonly message?: unknown
  readonly locations?: readonly SourceLocation[] | undefined
  readonly path?: ReadonlyArray<string | number> | undefined
  readonly extensions?: Readonly<Record<string, unknown>> | undefined
}

function httpStatus(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 400 && value <= 599
    ? value
    : undefined
}

function defaultRequestId(context: FormatterContext): string | undefined {
  const id = context.reply?.request?.id
  return id === undefined || id === null ? undefined : String(id)
}

/**
 * Whether an execution error's cause is unexpected: not a GraphQLError,
 * not an error that carries `extensions` on purpose (mercurius's
 * `ErrorWithProps`), not one of our 4xx errors. Those keep their message in
 * `safe`; anything else is masked, as envelop's `useMaskedErrors` does.
 */
function isUnexpected(original: unknown): boolean {
  if (original === undefined || original === null) return false
  if ((original as { name?: unknown }).name === 'GraphQLError') return false
  if (typeof (original as { extensions?: unknown }).extensions === 'object') return false
  const status = (original as { statusCode?: unknown }).statusCode
  return !(original instanceof SecurityError && typeof status === 'number' && status < 500)
}

/**
 * Whether an error inside a rejection wrapper is something a parser or a
 * validation rule crashed with (a RangeError from a stack overflow, a
 * TypeError from a rule): graphql-js reports what it refuses as
 * GraphQLErrors, so anything else is a failure, whatever its text says. The
 * one exception is mercurius's own wrappers other than its validation one
 * (`MER_ERR_METHOD_NOT_ALLOWED`…), which carry mercurius's fixed messages.
 */
function isCrash(inner: unknown, wrapper: unknown): boolean {
  if (inner === null || typeof inner !== 'object') return false
  if ((inner as { name?: unknown }).name === 'GraphQLError') return false
  if (inner instanceof SecurityError) return false
  const code = (wrapper as { code?: unknown } | null | undefined)?.code
  return !(
    typeof code === 'string' &&
    code.startsWith('MER_ERR_') &&
    code !== 'MER_ERR_GQL_VALIDATION'
  )
}

/**
 * Whether an error stopped the request before any field ran: not a
 * GraphQLError (parse, validation and field errors are, and carry their own
 * status or none), no field path, and unexpected (a hook or an
 * authentication backend that threw). mercurius answers 200 to it, which
 * monitoring reads as success; it is a server failure, answered 500.
 */
function isServerFailure(error: ErrorLike & { originalError?: unknown }): boolean {
  if (error.path !== undefined) return false
  const cause = error.originalError ?? error
  return (cause as { name?: unknown }).name !== 'GraphQLError' && isUnexpected(cause)
}

/** The `errors` arrays this module's formatters produced (see {@link isOwnFormat}). */
const produced = new WeakSet<object>()

/** Whether `errors` (of a response about to be sent) came out of one of our formatters. */
export function isOwnFormat(errors: unknown): boolean {
  return typeof errors === 'object' && errors !== null && produced.has(errors)
}

/**
 * GraphQL errors another formatter already serialized (mercurius's default,
 * when our formatter was not spread into its options), brought to the level
 * of `o` as far as a serialized error still tells: one with a `path` and no
 * `extensions` was raised while resolving a field, and `safe` masks it (an
 * unexpected error, or a GraphQLError thrown without a code: the fallback
 * cannot tell them apart, so it masks both); suggestions go; internal
 * extensions go; `minimal` is generic. Ours (with their code) are kept.
 * `origin` says where the errors come from: `socket` (WebSocket errors,
 * which mercurius sends as thrown) also masks an error with neither a
 * location nor a code nor extensions; `failure` (what mercurius's error
 * handler wrote for a {@link isFailure} error) masks every error but ours.
 */
export function relevelSerializedErrors(
  errors: readonly GraphQLFormattedError[],
  o: ResolvedGuardOptions,
  requestId: string | undefined,
  origin: SerializedOrigin = 'formatter',
): GraphQLFormattedError[] {
  const detail = o.errorDetail
  const strip = o.blockFieldSuggestions
  return errors.map((e) => {
    const code = typeof e.extensions?.code === 'string' ? e.extensions.code : undefined
    const ours = code !== undefined && OUR_CODES.has(code)
    // graphql-js locates what it refuses (syntax, validation): sent as
    // thrown (`socket`), an error with neither a location nor a code is
    // something that crashed (a RangeError, a TypeError); after a `failure`
    // every error but ours is.
    const fromResolver =
      (e.path !== undefined && (e.extensions === undefined || code === undefined)) ||
      (origin === 'socket' && e.locations === undefined && code === undefined) ||
      (origin === 'failure' && !ours)
    if (detail === 'minimal') {
      const extensions: Record<string, unknown> = {}
      if (ours) extensions.code = code
      if (requestId !== undefined) extensions.requestId = requestId
      return {
        message: ours || !fromResolver ? 'Request rejected' : 'Internal error',
        ...(e.path === undefined ? {} : { path: e.path }),
        extensions,
      }
    }
    if (detail === 'safe' && fromResolver && (e.extensions === undefined || origin === 'failure')) {
      return {
        ...CRASH,
        ...(e.locations === undefined ? {} : { locations: e.locations }),
        ...(e.path === undefined ? {} : { path: e.path }),
      }
    }
    const out: { -readonly [K in keyof GraphQLFormattedError]: GraphQLFormattedError[K] } = {
      ...e,
      message: strip ? stripFieldSuggestions(e.message) : e.message,
    }
    if (detail !== 'full' && e.extensions !== undefined) {
      const kept = Object.entries(e.extensions).filter(([k]) => !INTERNAL_EXTENSIONS.has(k))
      if (kept.length > 0) out.extensions = Object.fromEntries(kept)
      else delete out.extensions
    }
    return out
  })
}

/** Where serialized errors come from, for {@link relevelSerializedErrors}. */
export type SerializedOrigin = 'formatter' | 'socket' | 'failure'

/**
 * A GraphQL response, or a batch of them, with the errors another formatter
 * serialized brought to `o`'s level by {@link relevelSerializedErrors}; those
 * our formatters produced, and anything without errors, as they are.
 * `requestId` is given to `minimal` errors; `failed`: the answer is what
 * mercurius's error handler wrote for a failure ({@link isFailure}).
 */
export function relevelResponse(
  payload: unknown,
  o: ResolvedGuardOptions,
  requestId: string,
  failed = false,
): unknown {
  const one = (item: unknown): unknown => {
    const errors = (item as { errors?: unknown } | null | undefined)?.errors
    if (!Array.isArray(errors) || isOwnFormat(errors)) return item
    const id = o.errorDetail === 'minimal' ? requestId : undefined
    const origin = failed ? 'failure' : 'formatter'
    return { ...(item as object), errors: relevelSerializedErrors(errors, o, id, origin) }
  }
  return Array.isArray(payload) ? payload.map(one) : one(payload)
}

/**
 * Whether an error that reaches mercurius's error handler (thrown by a
 * hook, by `authenticate`, by mercurius's pipeline) is a failure whose text
 * is not for a client: anything {@link isUnexpected} says is, and a
 * validation wrapper around a non-GraphQL error. mercurius's own errors
 * (`MER_ERR_*`, fixed messages) and GraphQL rejections are not.
 */
export function isFailure(error: unknown): boolean {
  if (error === null || typeof error !== 'object') return true
  const nested = (error as { errors?: unknown }).errors
  if (Array.isArray(nested)) return nested.some((inner) => isCrash(inner, error))
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && code.startsWith('MER_ERR_')) return false
  return isUnexpected(error)
}

const CRASH: GraphQLFormattedError = {
  message: 'Internal error',
  extensions: { code: 'ERR_INTERNAL' },
}

/** {@link createErrorFormatter} from options already parsed. */
export function errorFormatterFor(o: ResolvedGuardOptions): MercuriusErrorFormatter {
  const detail = o.errorDetail
  const strip = o.blockFieldSuggestions
  const reveal = o.revealLimits
  const requestIdOf =
    (o.requestId as ((context: FormatterContext) => string) | undefined) ?? defaultRequestId

  /** One error; `rejected` when it came inside a rejection (validation, a guard). */
  function formatOne(e: ErrorLike, rejected: boolean, requestId: string | undefined) {
    let message = typeof e.message === 'string' ? e.message : 'Error'
    const given = e.extensions?.code
    let code = typeof given === 'string' ? given : undefined
    if (code === undefined) {
      // graphql-js's own token-limit error has no code and states the limit.
      const max = tokenLimitOf(message)
      if (max !== undefined) {
        code = 'ERR_GRAPHQL_TOKEN_LIMIT'
        message = limitMessage('tokens', max + 1, max, reveal)
      }
    }
    const ours = code !== undefined && OUR_CODES.has(code)
    const out: { -readonly [K in keyof GraphQLFormattedError]: GraphQLFormattedError[K] } = {
      message: '',
    }
    if (detail === 'minimal') {
      out.message = ours || rejected ? 'Request rejected' : 'Internal error'
      if (e.path !== undefined) out.path = e.path
      const extensions: Record<string, unknown> = {}
      if (ours) extensions.code = code
      if (requestId !== undefined) extensions.requestId = requestId
      out.extensions = extensions
      return out
    }
    out.message = strip ? stripFieldSuggestions(message) : message
    if (e.locations !== undefined) out.locations = e.locations
    if (e.path !== undefined) out.path = e.path
    let extensions: Record<string, unknown> | undefined
    if (e.extensions !== undefined) {
      extensions = {}
      for (const [k, v] of Object.entries(e.extensions)) {
        if (detail === 'full' || !INTERNAL_EXTENSIONS.has(k)) extensions[k] = v
      }
    }
    if (code !== undefined) extensions = { ...extensions, code }
    if (extensions !== undefined && Object.keys(extensions).length > 0) out.extensions = extensions
    return out
  }

  return function errorFormatter(execution, context) {
    const log = context.reply?.log ?? context.app?.log
    const requestId = detail === 'minimal' ? requestIdOf(context) : undefined
    const errors: GraphQLFormattedError[] = []
    let rejectionStatus: number | undefined
    for (const error of execution.errors) {
      // What the client no longer sees, the log keeps (with the request id).
      log?.info({ err: error }, error.message)
      const original = error.originalError as { errors?: unknown; statusCode?: unknown } | undefined
      const nested = original?.errors
      if (Array.isArray(nested)) {
        // mercurius's validation error or one of our rejections: a wrapper
        // around the real errors, with the status to answer.
        rejectionStatus ??= httpStatus(original?.statusCode) ?? 400
        for (const inner of nested) {
          if (detail === 'safe' && isCrash(inner, original)) errors.push(CRASH)
          else errors.push(formatOne(inner as ErrorLike, true, requestId))
        }
      } else if (detail === 'safe' && isUnexpected(error.originalError)) {
        // A resolver's plain Error is a bug or a driver's message (a
        // connection string, a row): its text is not for the client.
        const out: GraphQLFormattedError = {
          message: 'Internal error',
          ...(error.locations === undefined ? {} : { locations: error.locations }),
          ...(error.path === undefined ? {} : { path: error.path }),
          extensions: { code: 'ERR_INTERNAL' },
        }
        errors.push(out)
      } else {
        errors.push(formatOne(error, false, requestId))
      }
    }
    produced.add(errors)
    // mercurius's defaults (GraphQL over HTTP): 200 when there is data;
    // else the status a rejection carries, whatever the number of errors
    // (mercurius answers 200 to a rejection with two); else 200.
    const data = execution.data as Record<string, unknown> | null | undefined
    let statusCode = 200
    if (data === undefined || data === null) {
      const only = execution.errors.length === 1 ? execution.errors[0] : undefined
      statusCode =
        execution.statusCode ??
        rejectionStatus ??
        httpStatus((only?.originalError as { statusCode?: unknown } | undefined)?.statusCode) ??
        (execution.errors.length > 0 && execution.errors.every(isServerFailure) ? 500 : 200)
    }
    return { statusCode, response: { data: data ?? null, errors } }
  }
}

/**
 * A mercurius `errorFormatter`. `full` keeps graphql-js's messages; `safe`
 * (the default) keeps messages but drops `extensions.exception` and stack
 * traces, and masks a resolver's unexpected error (a plain `Error`, not a
 * `GraphQLError`, an `ErrorWithProps` or one of our 4xx errors) as
 * "Internal error" with code `ERR_INTERNAL`; both remove "Did you mean …?" suggestions unless
 * `blockFieldSuggestions` is `false`. `minimal` answers "Request rejected"
 * (our codes, validation) or "Internal error" (anything else), keeps
 * `extensions.code` for our codes so a client can tell why, and adds
 * `extensions.requestId` (the Fastify request id) to find the log line.
 * Rejections answer their own status (400, 429...), even with several errors.
 *
 * @example
 * ```ts
 * await app.register(mercurius, { schema, resolvers, errorFormatter: createErrorFormatter({ errorDetail: 'minimal' }) })
 * ```
 */
export function createErrorFormatter(options?: GraphqlGuardOptions): MercuriusErrorFormatter {
  return errorFormatterFor(parseGuardOptions('createErrorFormatter', options))
}
