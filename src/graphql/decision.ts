/**
 * The per-operation decision every server integration shares (mercurius
 * hooks, the envelop plugin, the Apollo Server plugin): measure the
 * operation that runs with its variables, apply every limit, decide
 * introspection for the caller at hand, and tell `onAccept` / `onReject`.
 * One place, so three servers cannot disagree about the same request.
 */
import type { DocumentNode, GraphQLError, GraphQLSchema } from 'graphql'
import { ConfigError, SecurityError } from '../errors.js'
import { rejection } from '../internal/graphql-rejection.js'
import type { GraphqlRuntime } from '../internal/graphql-runtime.js'
import { type HttpAnswerable, kHttpAnswer } from '../internal/reply/index.js'
import {
  type CostModel,
  cachedMetrics,
  costModelFor,
  type OperationMetrics,
  withVariables,
} from './analysis.js'
import { type IntrospectionVerdict, operationRejections } from './check.js'
import type { ResolvedGuardOptions } from './options.js'

/**
 * What `onAccept` and `onReject` receive about one operation.
 *
 * @example
 * ```ts
 * const opts = {
 *   maxDepth: 10,
 *   reportOnly: true,
 *   onReject: (_ctx: unknown, d: GuardDecision) => log.warn({ codes: d.codes, op: d.operationName }, 'would refuse'),
 * }
 * ```
 */
export interface GuardDecision {
  /** The operation's name, when it has one (or the request named it). */
  readonly operationName: string | undefined
  /** `query`, `mutation` or `subscription`; `undefined` before the document parsed. */
  readonly operationType: 'query' | 'mutation' | 'subscription' | undefined
  /** The refusals, each a GraphQLError with `extensions.code`; empty for `onAccept`. */
  readonly errors: readonly GraphQLError[]
  /** Their codes, in order (`ERR_GRAPHQL_DEPTH_LIMIT`…). */
  readonly codes: readonly string[]
  /**
   * The executed operation's measurements, variables applied; `undefined`
   * for a refusal of the text before it parsed (tokens, nesting).
   */
  readonly metrics:
    | {
        readonly depth: number
        readonly complexity: number
        readonly aliases: number
        readonly directives: number
      }
    | undefined
  /** Whether the refusal is answered (`false` under `reportOnly`: the operation runs). */
  readonly enforced: boolean
}

type Observer = (context: unknown, decision: GuardDecision) => void | Promise<void>

/** `reportOnly` with nowhere to report is a misconfiguration, not a silent no-op. */
export function checkObservers(component: string, o: ResolvedGuardOptions): void {
  if (o.reportOnly && o.onReject === undefined) {
    throw new ConfigError(component, [
      { path: ['onReject'], message: 'is required with reportOnly (nothing would be reported)' },
    ])
  }
}

/** The request-side facts of one operation. */
export interface OperationInput {
  readonly schema: GraphQLSchema | undefined
  readonly document: DocumentNode
  /** The `operationName` the request gave. */
  readonly operationName: string | null | undefined
  readonly variables: Readonly<Record<string, unknown>> | null | undefined
  /** Whether the caller may introspect under `'authenticated'`; asked only when an operation introspects. */
  readonly authenticated: () => boolean | Promise<boolean>
}

/** The outcome of {@link OperationChecker.check}. */
export interface OperationVerdict {
  /** The refusals to answer (empty under `reportOnly`, or when the operation passes). */
  readonly errors: readonly GraphQLError[]
  /** The cost to charge: the executed operation's, else the costliest. */
  readonly cost: number
}

/**
 * The operation a request executes: the only one, or the one it names.
 * `undefined` when that cannot be told.
 */
export function executedOperation(
  operations: readonly OperationMetrics[],
  name: string | null | undefined,
): OperationMetrics | undefined {
  if (operations.length === 1) return operations[0]
  if (name === undefined || name === null) return undefined
  return operations.find((m) => m.operation.name?.value === name)
}

/** Every limit on one operation, and the observers, for any server. */
export class OperationChecker {
  readonly o: ResolvedGuardOptions
  readonly runtime: GraphqlRuntime
  readonly model: CostModel
  /** Whether each document's source text is in the manifest (hashing once per document). */
  readonly #persisted = new WeakMap<DocumentNode, boolean>()

  constructor(o: ResolvedGuardOptions, runtime: GraphqlRuntime) {
    this.o = o
    this.runtime = runtime
    this.model = costModelFor(o.complexity)
  }

  /** Whether the observers want to hear about accepted operations. */
  get observesAccepts(): boolean {
    return this.o.onAccept !== undefined
  }

  /**
   * Applies every limit to the operation `input` runs and tells the
   * observers (`onReject`, or `onAccept` when `accept` and nothing was
   * refused). Under `reportOnly` refusals are reported and not returned.
   */
  async check(input: OperationInput, context: unknown, accept = true): Promise<OperationVerdict> {
    const o = this.o
    const { document, schema, variables } = input
    const operations = cachedMetrics(document, this.model, schema).operations
    const executed = executedOperation(operations, input.operationName)
    const errors: GraphQLError[] = []
    if (o.persistedOperations !== undefined && o.persistedOperationsOnly) {
      if (!this.#isPersisted(document)) {
        errors.push(
          rejection(
            this.runtime,
            'ERR_GRAPHQL_PERSISTED_QUERY_REQUIRED',
            'Only persisted operations are allowed.',
          ),
        )
      }
    }
    const verdict = await this.#introspection(operations, input.authenticated)
    let cost = 0
    let measuredExecuted: OperationMetrics | undefined
    for (const m of operations) {
      // List sizes given by variables are known now: measure the executed
      // operation with their values (the others cannot run in this request).
      const measured =
        m === executed ? withVariables(document, m, this.model, schema, variables) : m
      if (m === executed) measuredExecuted = measured
      operationRejections(this.runtime, o, measured, verdict, errors)
      if (executed === undefined ? measured.complexity > cost : m === executed) {
        cost = measured.complexity
      }
    }
    const op = (measuredExecuted ?? executed)?.operation
    const describe = (errs: readonly GraphQLError[], enforced: boolean): GuardDecision => ({
      operationName: op?.name?.value ?? input.operationName ?? undefined,
      operationType: op?.operation,
      errors: errs,
      codes: errs.map((e) => String(e.extensions.code)),
      metrics:
        measuredExecuted === undefined
          ? undefined
          : {
              depth: measuredExecuted.depth,
              complexity: measuredExecuted.complexity,
              aliases: measuredExecuted.aliases,
              directives: measuredExecuted.directives,
            },
      enforced,
    })
    if (errors.length > 0) {
      await this.#tell(o.onReject as Observer | undefined, context, describe(errors, !o.reportOnly))
      return { errors: o.reportOnly ? [] : errors, cost }
    }
    if (accept) await this.#tell(o.onAccept as Observer | undefined, context, describe([], true))
    return { errors, cost }
  }

  /**
   * A refusal of the text itself (tokens, nesting, a JSON document), before
   * any operation parsed: reported to `onReject`; the returned error is the
   * one to answer, `undefined` when `reportOnly` lets it through
   * (`alwaysEnforced` for the bounds that protect the parser).
   */
  async refuseSource(
    error: GraphQLError,
    context: unknown,
    alwaysEnforced: boolean,
    operationName?: string | null,
  ): Promise<GraphQLError | undefined> {
    const enforced = alwaysEnforced || !this.o.reportOnly
    await this.#tell(this.o.onReject as Observer | undefined, context, {
      operationName: operationName ?? undefined,
      operationType: undefined,
      errors: [error],
      codes: [String(error.extensions.code)],
      metrics: undefined,
      enforced,
    })
    return enforced ? error : undefined
  }

  /** Calls an observer; its throw or rejection fails the operation (awaited, never left unsettled). */
  async #tell(
    observer: Observer | undefined,
    context: unknown,
    decision: GuardDecision,
  ): Promise<void> {
    if (observer === undefined) return
    const out = observer(context, decision)
    if (out !== undefined && typeof (out as { then?: unknown }).then === 'function') await out
  }

  /** What introspection may do; asks `authenticated` only when an operation introspects. */
  async #introspection(
    operations: readonly OperationMetrics[],
    authenticated: () => boolean | Promise<boolean>,
  ): Promise<IntrospectionVerdict> {
    const mode = this.o.introspection
    if (mode !== 'authenticated') return mode === 'enabled' ? 'allow' : 'disabled'
    if (!operations.some((m) => m.introspection !== 0)) return 'allow'
    return (await authenticated()) === true ? 'allow' : 'unauthenticated'
  }

  #isPersisted(document: DocumentNode): boolean {
    let ok = this.#persisted.get(document)
    if (ok === undefined) {
      // The text graphql-js parsed: what the client sent, or what the
      // manifest lookup substituted. No text, no proof it is in the manifest.
      const body = document.loc?.source.body
      ok = typeof body === 'string' && this.o.persistedOperations!.hasQuery(body)
      this.#persisted.set(document, ok)
    }
    return ok
  }
}

/** A `chargeCost` refusal, as any server answers it. */
export interface CostRefusal {
  /** The GraphQL rejection, with the refusal's code. */
  readonly error: GraphQLError
  /** Its HTTP status (429 from the rate limiter, 503 when its store is down). */
  readonly status: number
  /** Headers to send with it (`Retry-After`, `RateLimit`), lower-case names. */
  readonly headers: Readonly<Record<string, string>>
  readonly cause: SecurityError
}

/**
 * What a `chargeCost` throw means: a SecurityError with a status is a
 * refusal to answer with that status, code and headers; `undefined` for
 * anything else, a failure to pass through as it is.
 */
export function costRefusal(runtime: GraphqlRuntime, err: unknown): CostRefusal | undefined {
  if (!(err instanceof SecurityError) || err.statusCode === undefined) return undefined
  const answer = (err as Partial<HttpAnswerable>)[kHttpAnswer]
  const headers: Record<string, string> = {}
  if (typeof answer === 'function') {
    for (const [name, value] of Object.entries(answer.call(err).headers)) {
      if (name !== 'content-type') headers[name.toLowerCase()] = String(value)
    }
  }
  return {
    error: rejection(runtime, err.code, err.message),
    status: err.statusCode,
    headers,
    cause: err,
  }
}
