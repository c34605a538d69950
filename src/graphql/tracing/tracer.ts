/**
 * `GraphQLTracer`: OpenTelemetry spans for GraphQL operations that never
 * carry a secret. Depends on `@opentelemetry/api` only; the SDK, the sampler
 * and the exporter are the application's.
 *
 * Span shape (semantic conventions for GraphQL server spans, copied here as
 * strings: they live only in the incubating entry of
 * `@opentelemetry/semantic-conventions`): name `{type} {name}`, `{type}`, or
 * `GraphQL Operation` when the type is unknown; kind SERVER;
 * `graphql.operation.type`, `graphql.operation.name`, `graphql.document`.
 * Errors follow "Recording errors": status ERROR and `error.type` when the
 * result has errors, even though execution itself returned normally.
 *
 * Everything past starting the span is done only for a recording span: a
 * sampled-out or no-op span costs a branch, no printing, no redaction.
 */
import {
  type Attributes,
  type Context,
  context,
  createContextKey,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api'
import type {
  DocumentNode,
  ExecutionArgs,
  ExecutionResult,
  GraphQLField,
  GraphQLFieldResolver,
  GraphQLObjectType,
  GraphQLResolveInfo,
  GraphQLSchema,
} from 'graphql'
import { ConfigError } from '../../errors.js'
import { type GraphqlRuntime, graphqlRuntime } from '../../internal/graphql-runtime.js'
import { parseOptions } from '../../internal/options.js'
import {
  collectSensitiveValues,
  type KeyMatcher,
  matcherFor,
  REDACTED,
  redactValue,
  scrubList,
  scrubText,
  truncate,
} from '../redact.js'
import { type ResolvedTracingConfig, type TracingConfig, TracingConfigSchema } from './config.js'
import {
  redactedDocument,
  type SensitiveFacts,
  selectOperation,
  sensitiveFacts,
} from './document.js'

/** Instrumentation scope of every span. */
export const TRACER_NAME = 'fraiseql-security'

// Semantic-convention keys, as strings (see the module comment).
const ATTR_OPERATION_TYPE = 'graphql.operation.type'
const ATTR_OPERATION_NAME = 'graphql.operation.name'
const ATTR_DOCUMENT = 'graphql.document'
const ATTR_ERROR_TYPE = 'error.type'
const ATTR_EXCEPTION_TYPE = 'exception.type'
const ATTR_EXCEPTION_MESSAGE = 'exception.message'
// Ours: no convention exists for these.
const ATTR_VARIABLES = 'graphql.variables'
const ATTR_FIELD_NAME = 'graphql.field.name'
const ATTR_FIELD_PATH = 'graphql.field.path'
const ATTR_FIELD_TYPE = 'graphql.field.type'
const ATTR_DROPPED = 'fraiseql.graphql.resolver_spans.dropped'
const ATTR_HOOK_ERROR = 'fraiseql.graphql.response_hook.error'

/** The name of an operation span whose type is unknown. */
export const UNKNOWN_OPERATION = 'GraphQL Operation'
/** `error.type` when an error carries no code or class of its own. */
export const OTHER_ERROR = '_OTHER'
/** Errors of one result recorded as events; the status and `error.type` come from the first. */
const MAX_ERROR_EVENTS = 10
/** Parsed documents one generation of {@link GraphQLTracer.documentFor}'s cache holds. */
const DOCUMENTS_PER_GENERATION = 500
/** Longer sources are parsed for their span, never cached (a cache must not hold megabytes). */
const MAX_CACHED_SOURCE = 20_000

/**
 * Operation names remembered per document: a client can send one document
 * with any number of made-up names, each costing an entry.
 */
const MAX_NAMES_PER_DOCUMENT = 16

/** What names an operation span: the selected operation's type and name. */
interface OperationInfo {
  readonly type: string
  readonly name: string | undefined
  readonly spanName: string
}

/** A code or class name low-cardinality enough to be an `error.type`. */
const ERROR_TYPE = /^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/

/** Options of an operation span started before its document is known (read, never written, by the SDK). */
const SERVER_SPAN = Object.freeze({ kind: SpanKind.SERVER })

/** The operation of the current context, for resolvers run under the execute wrapper. */
const OPERATION_KEY = createContextKey('fraiseql-security.graphql.operation')
/** The operation of a mercurius context object (hooks cannot set the active context). */
export const kOperation = Symbol('fraiseql-security.graphql.operation')
/** Stored under {@link kOperation} when the operation span does not record. */
export const NOT_RECORDING = Symbol('fraiseql-security.graphql.not-recording')

type Resolver = GraphQLFieldResolver<unknown, unknown>

/** One traced operation. @internal */
export class OperationTrace {
  readonly span: Span
  readonly #parent: Context
  #context: Context | undefined
  /** Resolvers must enter {@link context} themselves (mercurius: execution is not run inside it). */
  readonly viaHooks: boolean
  resolverSpans = 0
  dropped = 0
  ended = false
  document: DocumentNode | undefined
  variables: unknown
  /** The execute wrapper's `fieldResolver`, for fields without their own resolver. */
  fieldResolver: Resolver | undefined
  /** The index of the operation in a mercurius batch. */
  operationId: number | undefined
  secrets: readonly string[] | undefined
  /** Names of the response paths resolver spans were made under (see `fieldPath`). */
  paths: Map<GraphQLResolveInfo['path'], PathNames> | undefined

  constructor(span: Span, parent: Context, viaHooks: boolean) {
    this.span = span
    this.#parent = parent
    this.viaHooks = viaHooks
  }

  /**
   * The operation span's context: resolvers and data access run under it.
   * Made on first use (each context level copies a Map); under the execute
   * wrapper it also carries the operation for the resolvers to find.
   */
  get context(): Context {
    if (this.#context === undefined) {
      const ctx = trace.setSpan(this.#parent, this.span)
      this.#context = this.viaHooks ? ctx : ctx.setValue(OPERATION_KEY, this)
    }
    return this.#context
  }
}

/** The operation a resolver runs for: from the mercurius context, else the active context. */
function operationOf(contextValue: unknown): OperationTrace | undefined {
  const own =
    typeof contextValue === 'object' && contextValue !== null
      ? (contextValue as { [kOperation]?: OperationTrace | typeof NOT_RECORDING })[kOperation]
      : undefined
  if (own === NOT_RECORDING) return undefined
  return own ?? (context.active().getValue(OPERATION_KEY) as OperationTrace | undefined)
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  )
}

interface ErrorLike {
  readonly message?: unknown
  readonly name?: unknown
  readonly code?: unknown
  readonly extensions?: { readonly code?: unknown } | null
  readonly originalError?: ErrorLike | null
}

/**
 * The `error.type` of an error, low-cardinality by construction: its
 * `extensions.code` (our `ERR_*` codes, Apollo-style codes), else its own or
 * its original error's `code` (`ECONNREFUSED`, mercurius's `MER_ERR_*`), else
 * the class name of the original error (`TypeError`), else `_OTHER`.
 */
export function errorType(error: unknown): string {
  const e = (typeof error === 'object' && error !== null ? error : {}) as ErrorLike
  const candidates = [e.extensions?.code, e.code, e.originalError?.code]
  for (const c of candidates) if (typeof c === 'string' && ERROR_TYPE.test(c)) return c
  const name = (e.originalError ?? e).name
  if (
    typeof name === 'string' &&
    ERROR_TYPE.test(name) &&
    name !== 'Error' &&
    name !== 'GraphQLError'
  )
    return name
  return OTHER_ERROR
}

/** `error.type` of a thrown error: its own, else its first GraphQL error's. */
function outerOrFirstType(error: unknown, first: unknown): string {
  const outer = errorType(error)
  return outer === OTHER_ERROR ? errorType(first) : outer
}

function messageOf(error: unknown): string {
  const m = (error as ErrorLike | null | undefined)?.message
  return typeof m === 'string' ? m : String(error)
}

function isObjectType(type: unknown): type is GraphQLObjectType {
  // By tag, not instanceof: the schema may come from another copy of graphql-js.
  return (type as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag] === 'GraphQLObjectType'
}

/** A response path's span name (`user.posts.title`: no list indices) and attribute (`user.posts.0.title`). */
interface PathNames {
  readonly name: string
  readonly full: string
}

type ResponsePath = GraphQLResolveInfo['path']

/**
 * The names of `path`. Siblings share their parent's path object (the 50
 * fields of `item`, each item of a list), so the parent's names come from
 * `parents`, the operation's cache: a field's names cost one or two
 * concatenations, not a walk to the root.
 */
function fieldPath(path: ResponsePath, parents: Map<ResponsePath, PathNames>): PathNames {
  const key = path.key
  const prev = path.prev
  if (prev === undefined) {
    const k = String(key)
    return { name: typeof key === 'string' ? k : '', full: k }
  }
  let up = parents.get(prev)
  if (up === undefined) {
    up = fieldPath(prev, parents)
    parents.set(prev, up)
  }
  const full = `${up.full}.${key}`
  if (typeof key !== 'string') return { name: up.name, full }
  return { name: up.name === '' ? key : `${up.name}.${key}`, full }
}

/**
 * Traces GraphQL operations with OpenTelemetry. One instance serves any
 * number of servers; plug it in with {@link graphqlTracing} (Fastify +
 * mercurius), `mercuriusTracingHooks(tracer)` (mercurius hooks alone) or
 * {@link GraphQLTracer.wrapExecute} (any server that calls graphql-js
 * `execute`: graphql-yoga, graphql-http, Apollo's executor).
 *
 * @example
 * ```ts
 * import { execute } from 'graphql'
 * import { GraphQLTracer } from 'fraiseql-security/graphql'
 * const tracer = new GraphQLTracer({ includeDocument: true, traceResolvers: true })
 * const tracedExecute = tracer.wrapExecute(execute)
 * const user = await tracer.traceDataAccess('db.users.find', () => db.users.find(id))
 * ```
 */
export class GraphQLTracer {
  /** The parsed configuration (defaults applied, frozen). */
  readonly config: ResolvedTracingConfig
  #tracer: Tracer
  /** Off: no span is started (an OpenTelemetry instrumentation's `disable()`). */
  #enabled = true
  readonly #matcher: KeyMatcher
  readonly #facts = new WeakMap<DocumentNode, SensitiveFacts>()
  /** Per document, the operation each requested name selects (`null`: none, or no name asked). */
  readonly #operations = new WeakMap<DocumentNode, Map<string | null, OperationInfo | null>>()
  /** Schemas whose resolvers this tracer wrapped, and whether default resolvers were too. */
  readonly #instrumented = new WeakMap<GraphQLSchema, boolean>()
  readonly #tracedDefaults = new WeakMap<Resolver, Resolver>()
  /**
   * Documents by source text, `null` for one that does not parse: two
   * generations, the older dropped when the newer fills (an LRU's effect
   * without its bookkeeping on every hit).
   */
  #documents = new Map<string, DocumentNode | null>()
  #olderDocuments = new Map<string, DocumentNode | null>()
  #runtime: GraphqlRuntime | undefined

  /** @throws `ERR_CONFIG_INVALID` naming the bad option. */
  constructor(config?: TracingConfig) {
    const o = parseOptions('GraphQLTracer', TracingConfigSchema, config)
    this.config = Object.freeze({
      ...o,
      sensitivePatterns: Object.freeze([...o.sensitivePatterns]),
    })
    this.#matcher = matcherFor(this.config.sensitivePatterns)
    // The global provider is a proxy: an SDK registered later still receives the spans.
    this.#tracer = (o.tracerProvider ?? trace.getTracerProvider()).getTracer(TRACER_NAME)
  }

  /**
   * Sends later spans to `provider` (an OpenTelemetry SDK registering the
   * tracer as an instrumentation calls this). @internal
   */
  useTracerProvider(provider: TracerProvider): void {
    this.#tracer = provider.getTracer(TRACER_NAME)
  }

  /** Starts or stops making spans; off, every integration just runs. @internal */
  setEnabled(enabled: boolean): void {
    this.#enabled = enabled
  }

  /** graphql-js, on first need: constructing a tracer must work without it. */
  #graphql(): GraphqlRuntime {
    this.#runtime ??= graphqlRuntime('GraphQLTracer')
    return this.#runtime
  }

  /**
   * The parsed document of `source` if this tracer has seen it: `null` when
   * it does not parse, `undefined` when not seen (see {@link documentFor}).
   * A map lookup, cheap enough to run before a span is started, so that
   * samplers see the operation's real name. @internal
   */
  knownDocument(source: string): DocumentNode | null | undefined {
    const doc = this.#documents.get(source)
    if (doc !== undefined) return doc
    const older = this.#olderDocuments.get(source)
    if (older !== undefined) this.#remember(source, older)
    return older
  }

  /**
   * The parsed document of `source` (`null` if it does not parse), parsed
   * once and cached, for an integration that sees the source text before
   * the server parses it (mercurius's `app.graphql`): naming the span there
   * spares a mercurius hook per operation. Called only for a recording
   * span. @internal
   */
  documentFor(source: string): DocumentNode | null {
    const known = this.knownDocument(source)
    if (known !== undefined) return known
    let doc: DocumentNode | null
    try {
      doc = this.#graphql().parse(source, { noLocation: true })
    } catch {
      // The server refuses it too; the span keeps its generic name and gets the server's error.
      doc = null
    }
    this.#remember(source, doc)
    return doc
  }

  #remember(source: string, doc: DocumentNode | null): void {
    if (source.length > MAX_CACHED_SOURCE) return
    if (this.#documents.size >= DOCUMENTS_PER_GENERATION) {
      this.#olderDocuments = this.#documents
      this.#documents = new Map()
    }
    this.#documents.set(source, doc)
  }

  /**
   * Runs `fn` (a database query, a KMS call) in a child span of the active
   * span named `name` (keep it low-cardinality: `db.users.find`, not the
   * SQL), kind CLIENT, with `attributes` as given. The span ends when `fn`
   * returns or its promise settles; a failure sets status ERROR and
   * `error.type` but records no message (drivers echo row values in them).
   * When `traceDataAccess` is off, no span is active, or the active one
   * does not record, `fn` just runs.
   *
   * @example
   * ```ts
   * const rows = await tracer.traceDataAccess('db.orders.list', () => pool.query(sql, [userId]))
   * ```
   */
  traceDataAccess<T>(name: string, fn: () => T, attributes?: Attributes): T {
    if (typeof name !== 'string' || name === '' || typeof fn !== 'function') {
      throw new ConfigError('traceDataAccess', [
        { path: [typeof fn !== 'function' ? 'fn' : 'name'], message: 'is required' },
      ])
    }
    if (!this.config.traceDataAccess || !this.#enabled) return fn()
    const parent = context.active()
    const active = trace.getSpan(parent)
    if (active === undefined || !active.isRecording()) return fn()
    const span = this.#tracer.startSpan(
      name,
      attributes === undefined ? { kind: SpanKind.CLIENT } : { kind: SpanKind.CLIENT, attributes },
      parent,
    )
    let result: T
    try {
      result = context.with(trace.setSpan(parent, span), fn)
    } catch (err) {
      endFailed(span, errorType(err), undefined)
      throw err
    }
    if (isPromiseLike(result)) {
      return Promise.resolve(result).then(
        (value) => {
          span.end()
          return value
        },
        (err: unknown) => {
          endFailed(span, errorType(err), undefined)
          throw err
        },
      ) as T
    }
    span.end()
    return result
  }

  /**
   * graphql-js `execute`, traced: each call runs in an operation span
   * (child of the active span), with resolver spans when `traceResolvers`
   * is on. Any server that lets you replace `execute` can use it (envelop's
   * `useEngine`, graphql-http's `execute` option).
   *
   * @example
   * ```ts
   * import { execute } from 'graphql'
   * const tracedExecute = tracer.wrapExecute(execute)
   * const result = await tracedExecute({ schema, document, variableValues, operationName })
   * ```
   */
  wrapExecute<E extends (args: ExecutionArgs) => unknown>(execute: E): E {
    const tracer = this
    return function tracedExecute(this: unknown, args: ExecutionArgs) {
      const parent = context.active()
      const t = tracer.startOperation(parent, false, args.document, args.operationName)
      if (t === undefined) return execute.call(this, args)
      tracer.describeOperation(t, args.document, args.operationName, args.variableValues)
      let run = args
      if (tracer.config.traceResolvers) {
        tracer.instrument(args.schema, false)
        if (!tracer.config.ignoreTrivialResolveSpans) {
          t.fieldResolver = (args.fieldResolver ?? undefined) as Resolver | undefined
          run = { ...args, fieldResolver: tracer.#tracedDefault(args.fieldResolver) }
        }
      }
      let result: unknown
      try {
        result = context.with(t.context, execute as (args: ExecutionArgs) => unknown, this, run)
      } catch (err) {
        tracer.failOperation(t, err)
        throw err
      }
      if (isPromiseLike(result)) {
        return Promise.resolve(result).then(
          (value) => {
            tracer.endOperation(t, value as ExecutionResult)
            return value
          },
          (err: unknown) => {
            tracer.failOperation(t, err)
            throw err
          },
        )
      }
      tracer.endOperation(t, result as ExecutionResult)
      return result
    } as E
  }

  /**
   * Starts an operation span under `parent`. With a document, named and
   * described from the start (samplers see the real name); without one
   * (mercurius before parsing), `GraphQL Operation` until
   * {@link describeOperation}. `undefined` when the span does not record.
   * @internal
   */
  startOperation(
    parent: Context,
    viaHooks: boolean,
    document?: DocumentNode,
    operationName?: string | null,
  ): OperationTrace | undefined {
    if (!this.#enabled) return undefined
    let name = UNKNOWN_OPERATION
    let attributes: Attributes | undefined
    const op = document === undefined ? undefined : this.#operationOf(document, operationName)
    if (op !== undefined) {
      name = op.spanName
      // A fresh object per span: an SDK or a sampler may write to the one it is given.
      attributes =
        op.name === undefined
          ? { [ATTR_OPERATION_TYPE]: op.type }
          : { [ATTR_OPERATION_TYPE]: op.type, [ATTR_OPERATION_NAME]: op.name }
    }
    const span = this.#tracer.startSpan(
      name,
      attributes === undefined ? SERVER_SPAN : { kind: SpanKind.SERVER, attributes },
      parent,
    )
    if (!span.isRecording()) return undefined
    return new OperationTrace(span, parent, viaHooks)
  }

  /**
   * The operation `operationName` selects in `document`, named: worked out
   * once per document and name (servers reuse the node of a cached query),
   * so a span costs no walk of the definitions and no new name string.
   */
  #operationOf(
    document: DocumentNode,
    operationName: string | null | undefined,
  ): OperationInfo | undefined {
    const key = operationName ?? null
    let byName = this.#operations.get(document)
    if (byName === undefined) {
      byName = new Map()
      this.#operations.set(document, byName)
    }
    let info = byName.get(key)
    if (info === undefined) {
      const op = selectOperation(document, operationName)
      const name = op?.name?.value
      info =
        op === undefined
          ? null
          : {
              type: op.operation,
              name,
              spanName:
                name !== undefined && this.config.operationNameInSpanName
                  ? `${op.operation} ${name}`
                  : op.operation,
            }
      // Bounded: one entry per operation name the client asked for, and the document itself is bounded.
      if (byName.size < MAX_NAMES_PER_DOCUMENT) byName.set(key, info)
    }
    return info ?? undefined
  }

  /**
   * Names a span started without its document, and records the document and
   * variables when configured. Only ever called for a recording span.
   * @internal
   */
  describeOperation(
    t: OperationTrace,
    document: DocumentNode,
    operationName: string | null | undefined,
    variables: unknown,
    rename = false,
  ): void {
    t.document = document
    t.variables = variables
    const o = this.config
    if (rename) {
      const op = this.#operationOf(document, operationName)
      if (op !== undefined) {
        t.span.updateName(op.spanName)
        t.span.setAttribute(ATTR_OPERATION_TYPE, op.type)
        if (op.name !== undefined) t.span.setAttribute(ATTR_OPERATION_NAME, op.name)
      }
    }
    if (o.includeDocument) {
      t.span.setAttribute(
        ATTR_DOCUMENT,
        truncate(
          redactedDocument(this.#graphql(), document, this.#factsOf(document)),
          o.maxQueryLength,
        ),
      )
    }
    if (o.includeVariables && variables !== undefined && variables !== null) {
      t.span.setAttribute(ATTR_VARIABLES, truncate(this.#variablesText(t), o.maxQueryLength))
    }
  }

  #factsOf(document: DocumentNode): SensitiveFacts {
    let facts = this.#facts.get(document)
    if (facts === undefined) {
      facts = sensitiveFacts(this.#graphql(), document, this.#matcher)
      this.#facts.set(document, facts)
    }
    return facts
  }

  #variablesText(t: OperationTrace): string {
    let value = t.variables
    if (this.config.sanitizeVariables) {
      value = redactValue(value, this.#matcher, 0, new Set())
      // A variable bound to a sensitive argument is a secret whatever its name.
      if (t.document !== undefined && typeof value === 'object' && value !== null) {
        for (const name of this.#factsOf(t.document).variables) {
          if (Object.hasOwn(value, name)) (value as Record<string, unknown>)[name] = REDACTED
        }
      }
    }
    try {
      return JSON.stringify(value) ?? ''
    } catch {
      return '[Unserializable]'
    }
  }

  /** The texts to scrub from this operation's error messages, longest first. */
  #secretsOf(t: OperationTrace): readonly string[] {
    if (t.secrets === undefined) {
      const found = new Set<string>()
      collectSensitiveValues(t.variables, this.#matcher, found)
      if (t.document !== undefined) {
        const facts = this.#factsOf(t.document)
        for (const literal of facts.literals) found.add(literal)
        const vars = t.variables as Record<string, unknown> | null | undefined
        if (typeof vars === 'object' && vars !== null) {
          for (const name of facts.variables) {
            collectSensitiveValues(vars[name], this.#matcher, found, true)
          }
        }
      }
      t.secrets = scrubList(found)
    }
    return t.secrets
  }

  /** An error message fit for a span: secrets scrubbed, then cut. */
  #message(t: OperationTrace, error: unknown): string {
    return truncate(scrubText(messageOf(error), this.#secretsOf(t)), this.config.maxQueryLength)
  }

  /** Ends the operation span with `result`'s errors, if any. @internal */
  endOperation(t: OperationTrace, result: Pick<ExecutionResult, 'errors'> | undefined): void {
    if (t.ended) return
    const errors = result?.errors
    if (errors !== undefined && errors !== null && errors.length > 0) {
      this.#recordErrors(t, errorType(errors[0]), errors)
    }
    this.#responseHook(t, result ?? {})
    this.#end(t)
  }

  /**
   * Ends the operation span for an operation that threw (refused before
   * execution, or failed): mercurius's and our rejections carry the GraphQL
   * errors in `errors`. @internal
   */
  failOperation(
    t: OperationTrace,
    error: unknown,
    typeOf: (error: unknown, first: unknown) => string = outerOrFirstType,
  ): void {
    if (t.ended) return
    const inner = (error as { errors?: unknown } | null | undefined)?.errors
    const errors = Array.isArray(inner) && inner.length > 0 ? inner : [error]
    this.#recordErrors(t, typeOf(error, errors[0]), errors)
    this.#responseHook(t, { errors })
    this.#end(t)
  }

  /** Status ERROR, `error.type`, and one `exception` event per error (at most 10). */
  #recordErrors(t: OperationTrace, type: string, errors: readonly unknown[]): void {
    const span = t.span
    span.setAttribute(ATTR_ERROR_TYPE, type)
    span.setStatus({ code: SpanStatusCode.ERROR, message: this.#message(t, errors[0]) })
    const n = Math.min(errors.length, MAX_ERROR_EVENTS)
    for (let i = 0; i < n; i++) {
      span.addEvent('exception', {
        [ATTR_EXCEPTION_TYPE]: errorType(errors[i]),
        [ATTR_EXCEPTION_MESSAGE]: this.#message(t, errors[i]),
      })
    }
  }

  /**
   * The user's `responseHook(span, result)`, before the span ends. Its
   * failure never fails the operation it observes (tracing is not a
   * protection): the span records it as `fraiseql.graphql.response_hook.error`
   * (the error's type, never its message).
   */
  #responseHook(t: OperationTrace, result: Pick<ExecutionResult, 'errors'>): void {
    const hook = this.config.responseHook as
      | ((span: Span, result: Pick<ExecutionResult, 'errors'>) => void)
      | undefined
    if (hook === undefined) return
    try {
      hook(t.span, result)
    } catch (err) {
      t.span.setAttribute(ATTR_HOOK_ERROR, errorType(err))
    }
  }

  #end(t: OperationTrace): void {
    t.ended = true
    if (t.dropped > 0) t.span.setAttribute(ATTR_DROPPED, t.dropped)
    t.span.end()
  }

  /**
   * Wraps `schema`'s resolvers for an integration that cannot run execution
   * inside the operation's context (mercurius): they carry it for data
   * access, or make resolver spans, as configured; nothing otherwise.
   * @internal
   */
  instrumentForHooks(schema: GraphQLSchema): void {
    const o = this.config
    if (o.traceResolvers || o.traceDataAccess) {
      this.instrument(schema, o.traceResolvers && !o.ignoreTrivialResolveSpans)
    }
  }

  /**
   * Wraps the resolvers of `schema` in place, once per schema: every field
   * with its own resolver, and with `traceResolvers` under mercurius
   * (`defaults`) the fields without one too (mercurius passes no
   * `fieldResolver`; the execute wrapper passes a traced one instead).
   * Resolvers outside a traced operation run as they are, after a lookup.
   * @internal
   */
  instrument(schema: GraphQLSchema, defaults: boolean): void {
    const done = this.#instrumented.get(schema)
    if (done === true || (done === false && !defaults)) return
    this.#instrumented.set(schema, defaults)
    for (const type of Object.values(schema.getTypeMap())) {
      if (!isObjectType(type) || type.name.startsWith('__')) continue
      for (const field of Object.values(type.getFields())) {
        const own = field.resolve as Resolver | undefined
        if (own !== undefined && done === undefined) {
          field.resolve = this.#traced(own, field) as NonNullable<typeof field.resolve>
        } else if (own === undefined && defaults) {
          field.resolve = this.#traced(undefined, field) as NonNullable<typeof field.resolve>
        }
      }
    }
  }

  /** The execute wrapper's resolver for fields without one, traced; one per resolver given. */
  #tracedDefault(given: Resolver | null | undefined): Resolver {
    const key = given ?? this.#graphql().defaultFieldResolver
    let traced = this.#tracedDefaults.get(key)
    if (traced === undefined) {
      traced = this.#traced(undefined, undefined, key)
      this.#tracedDefaults.set(key, traced)
    }
    return traced
  }

  /**
   * A traced resolver. `resolve` undefined: a field without its own
   * resolver, resolved by the execute call's `fieldResolver`, else
   * `fallback`, else graphql-js's default.
   */
  #traced(
    resolve: Resolver | undefined,
    field: GraphQLField<unknown, unknown> | undefined,
    fallback?: Resolver,
  ): Resolver {
    const spans = this.config.traceResolvers
    const cap = this.config.maxResolverSpans
    const fieldType = field === undefined ? undefined : String(field.type)
    const ownResolver = resolve !== undefined
    const base = resolve ?? fallback ?? this.#graphql().defaultFieldResolver
    const self = this
    return function tracedResolver(source, args, contextValue, info) {
      const t = operationOf(contextValue)
      const run = ownResolver ? base : (t?.fieldResolver ?? base)
      if (t === undefined) return run(source, args, contextValue, info)
      if (!spans || t.resolverSpans >= cap) {
        if (spans) t.dropped++
        // Under mercurius nothing else puts the operation's context in place
        // for the resolver's own spans (data access, a database driver's).
        return ownResolver && t.viaHooks
          ? context.with(t.context, run, undefined, source, args, contextValue, info)
          : run(source, args, contextValue, info)
      }
      t.resolverSpans++
      t.paths ??= new Map()
      const path = fieldPath(info.path, t.paths)
      const span = self.#tracer.startSpan(
        path.name,
        {
          kind: SpanKind.INTERNAL,
          attributes: {
            [ATTR_FIELD_NAME]: info.fieldName,
            [ATTR_FIELD_PATH]: path.full,
            [ATTR_FIELD_TYPE]: fieldType ?? String(info.returnType),
          },
        },
        t.context,
      )
      let result: unknown
      try {
        // A resolver of ours can start spans: they belong under its span. A
        // default resolver reads a property; no context needed.
        result = ownResolver
          ? context.with(
              trace.setSpan(t.context, span),
              run,
              undefined,
              source,
              args,
              contextValue,
              info,
            )
          : run(source, args, contextValue, info)
      } catch (err) {
        self.#failResolver(t, span, err)
        throw err
      }
      if (isPromiseLike(result)) {
        result.then(
          () => span.end(),
          (err: unknown) => self.#failResolver(t, span, err),
        )
      } else {
        span.end()
      }
      return result
    }
  }

  #failResolver(t: OperationTrace, span: Span, error: unknown): void {
    endFailed(span, errorType(error), this.#message(t, error))
  }
}

function endFailed(span: Span, type: string, message: string | undefined): void {
  span.setAttribute(ATTR_ERROR_TYPE, type)
  span.setStatus(
    message === undefined
      ? { code: SpanStatusCode.ERROR }
      : { code: SpanStatusCode.ERROR, message },
  )
  span.end()
}
