/**
 * The guards and the tracer as one envelop plugin, for graphql-yoga (and
 * any envelop-based server: the yoga-only `onParams` and `onExecutionResult`
 * hooks are then simply not called). Typed structurally: neither
 * graphql-yoga nor @envelop/core is imported, so this module loads, and its
 * declarations type-check, without them.
 *
 * Where each check sits, and why:
 * - `onParams` (yoga, async, before parsing): the token and nesting pass on
 *   the query text and the nesting bound on the variables, with the
 *   request's context for `onReject`; graphql-js's recursive parser and
 *   input coercion never meet a document or a value nested past
 *   `MAX_NESTING`.
 * - `onParse`: graphql-js's own `maxTokens`, and our code on its error.
 * - `onValidate`: the limits as validation rules when no observer needs the
 *   request (yoga caches validation per document: a rule cannot know who
 *   asks, so with observers every limit is decided in `onExecute`).
 * - `onExecute` / `onSubscribe`: every limit with the request's variables
 *   (list sizes from `$first`), introspection for the caller at hand,
 *   persisted-only, `onAccept` / `onReject`, `chargeCost`; then the tracer's
 *   execute wrapper.
 * - `onExecutionResult` (yoga): "Did you mean …?" removed from every error
 *   of the answer (validation, coercion of variables, execution).
 */
import type { DocumentNode, ExecutionArgs, ExecutionResult, GraphQLError } from 'graphql'
import { rejection } from '../internal/graphql-rejection.js'
import { type GraphqlRuntime, graphqlRuntime } from '../internal/graphql-runtime.js'
import {
  sourceNestingRejection,
  sourceRejection,
  tokenRejection,
  variablesRejection,
} from './check.js'
import { costRefusal, OperationChecker } from './decision.js'
import { LIMIT_CODES, limitMessage } from './errors.js'
import { markIntrospectionPerRequest, validationRulesFor } from './rules.js'
import { parseServerOptions, type ServerGuardOptions, traceRefusal } from './servers.js'
import { tokenLimitOf } from './source.js'
import { stripFieldSuggestions } from './suggestions.js'

/** Options of {@link useGraphqlGuards}: guard options whose callbacks take yoga's context. */
export type EnvelopGuardOptions<C = Record<string, unknown>> = ServerGuardOptions<C>

type Execute = (args: ExecutionArgs) => unknown

/** The parts of envelop's and yoga's hook payloads the plugin uses. */
interface ParamsPayload {
  readonly params: {
    readonly query?: unknown
    readonly variables?: unknown
    readonly operationName?: unknown
  }
  readonly context: unknown
  setResult(result: ExecutionResult): void
}
interface ParsePayload {
  readonly parseFn: (source: never, options?: never) => unknown
  setParseFn(fn: (source: never, options?: never) => unknown): void
}
interface AfterParsePayload {
  readonly result: unknown
  replaceParseResult(result: unknown): void
}
interface ValidatePayload {
  readonly params: { readonly schema: unknown; readonly documentAST?: unknown }
  addValidationRule(rule: never): void
}
interface AfterValidatePayload {
  readonly valid: boolean
  readonly result: readonly unknown[]
}
interface ExecutePayload {
  readonly args: ExecutionArgs
  readonly context: unknown
  readonly executeFn?: Execute
  setExecuteFn?(fn: never): void
  setResultAndStopExecution(result: never): void
}
interface ResultPayload {
  readonly result: unknown
  setResult(result: never): void
}

/**
 * The envelop plugin {@link useGraphqlGuards} returns (a graphql-yoga
 * `Plugin`). Methods, so it is assignable to yoga's and envelop's plugin
 * types without importing them.
 */
export interface EnvelopGuardsPlugin {
  onParams(payload: ParamsPayload): Promise<void>
  onParse(payload: ParsePayload): ((payload: AfterParsePayload) => void) | undefined
  onValidate(payload: ValidatePayload): ((payload: AfterValidatePayload) => void) | undefined
  onExecute(payload: ExecutePayload): Promise<void>
  onSubscribe(payload: ExecutePayload): Promise<void>
  onExecutionResult(payload: ResultPayload): void
}

/**
 * A refusal as yoga answers it: `extensions.http.status` sets the response
 * status (and is never sent), `extensions.code` stays ours.
 */
function answered(
  runtime: GraphqlRuntime,
  errors: readonly GraphQLError[],
  status = 400,
  headers?: Readonly<Record<string, string>>,
): GraphQLError[] {
  return errors.map(
    (e) =>
      new runtime.GraphQLError(e.message, {
        nodes: e.nodes ?? null,
        extensions: {
          ...e.extensions,
          http: headers === undefined ? { status } : { status, headers: { ...headers } },
        },
      }),
  )
}

/** A copy of `e` without its "Did you mean …?" suggestion, everything else kept. */
function withoutSuggestion(runtime: GraphqlRuntime, e: GraphQLError): GraphQLError {
  const message = stripFieldSuggestions(e.message)
  if (message === e.message) return e
  return new runtime.GraphQLError(message, {
    nodes: e.nodes ?? null,
    source: e.source ?? null,
    positions: e.positions ?? null,
    path: e.path ?? null,
    originalError: e.originalError ?? null,
    extensions: e.extensions,
  })
}

const name = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined)

/**
 * The GraphQL guards, and optionally the tracer, as an envelop plugin for
 * graphql-yoga: depth, complexity (list sizes from the request's variables),
 * aliases, directives, tokens, introspection (`'authenticated'` decided per
 * request with `isAuthenticated(context)`), persisted-only, cost charged
 * through `chargeCost(context, cost)`, `onAccept` / `onReject` and
 * `reportOnly`, "Did you mean …?" removed from every error, and, with
 * `tracer`, a span per operation (refused ones included). Refusals carry our
 * `ERR_GRAPHQL_*` code in `extensions.code` and answer HTTP 400 (a
 * `chargeCost` refusal its own status and `Retry-After` / `RateLimit`
 * headers). Options are parsed here: a bad one throws `ERR_CONFIG_INVALID`.
 *
 * @example
 * ```ts
 * import { createYoga } from 'graphql-yoga'
 * import { GraphQLTracer, useGraphqlGuards } from 'fraiseql-security/graphql'
 * const yoga = createYoga({
 *   schema,
 *   plugins: [useGraphqlGuards({ maxDepth: 10, maxComplexity: 1000, maxTokens: 2000, introspection: 'disabled', tracer: new GraphQLTracer() })],
 * })
 * ```
 */
export function useGraphqlGuards<C = Record<string, unknown>>(
  options?: EnvelopGuardOptions<C>,
): EnvelopGuardsPlugin {
  const { o, tracer } = parseServerOptions('useGraphqlGuards', options as never)
  const runtime = graphqlRuntime('useGraphqlGuards')
  const checker = new OperationChecker(o, runtime)
  const observed = o.onAccept !== undefined || o.onReject !== undefined
  // Static rules only where nothing needs the request (see the module comment).
  const rules = observed || o.reportOnly ? [] : validationRulesFor(o)
  const parserTokens = o.reportOnly ? undefined : o.maxTokens
  const isAuthenticated = o.isAuthenticated as
    | ((context: unknown) => boolean | Promise<boolean>)
    | undefined
  const charge = o.chargeCost as ((context: unknown, cost: number) => unknown) | undefined

  /** The text-level refusal, reported; `true` when answered. */
  async function refuseText(
    payload: ParamsPayload,
    error: GraphQLError | undefined,
    alwaysEnforced: boolean,
  ): Promise<boolean> {
    if (error === undefined) return false
    const operationName = name(payload.params.operationName)
    const kept = await checker.refuseSource(error, payload.context, alwaysEnforced, operationName)
    if (kept === undefined) return false
    traceRefusal(tracer, undefined, operationName, undefined, [kept])
    payload.setResult({ errors: answered(runtime, [kept]) })
    return true
  }

  /** Every limit and the observers at execution; `false` when the operation was answered. */
  async function decide(payload: ExecutePayload): Promise<boolean> {
    const { args, context } = payload
    const { errors, cost } = await checker.check(
      {
        schema: args.schema,
        document: args.document,
        operationName: args.operationName,
        variables: args.variableValues as Readonly<Record<string, unknown>> | null | undefined,
        authenticated: async () => (await isAuthenticated?.(context)) === true,
      },
      context,
    )
    let answer: GraphQLError[] | undefined
    if (errors.length > 0) {
      answer = answered(runtime, errors)
    } else if (charge !== undefined) {
      try {
        await charge(context, cost)
      } catch (err) {
        const refusal = costRefusal(runtime, err)
        if (refusal === undefined) throw err
        answer = answered(runtime, [refusal.error], refusal.status, refusal.headers)
      }
    }
    if (answer === undefined) return true
    traceRefusal(tracer, args.document, args.operationName, args.variableValues, answer)
    payload.setResultAndStopExecution({ errors: answer } as never)
    return false
  }

  return {
    async onParams(payload) {
      const { query, variables } = payload.params
      if (typeof query === 'string') {
        const error = sourceRejection(runtime, o, query)
        const nesting = error?.extensions.code === LIMIT_CODES.depth
        if (await refuseText(payload, error, nesting)) return
        // A token breach let through (reportOnly) still meets the nesting bound.
        if (error !== undefined && !nesting) {
          if (await refuseText(payload, sourceNestingRejection(runtime, o, query), true)) return
        }
      }
      await refuseText(payload, variablesRejection(runtime, o, variables), true)
    },

    onParse({ parseFn, setParseFn }) {
      if (parserTokens !== undefined) {
        const parse = parseFn as (source: unknown, options?: object) => unknown
        setParseFn(((source: unknown, opts?: object) =>
          parse(source, { ...opts, maxTokens: parserTokens })) as never)
      }
      return ({ result, replaceParseResult }) => {
        if (!(result instanceof Error)) {
          // A document parsed without yoga's onParams (bare envelop): count it here.
          const doc = result as DocumentNode | null
          const over = doc === null || o.reportOnly ? undefined : tokenRejection(runtime, o, doc)
          if (over !== undefined) replaceParseResult(answered(runtime, [over])[0])
          return
        }
        const max = tokenLimitOf(result.message)
        if (max === undefined) {
          traceRefusal(
            tracer,
            undefined,
            undefined,
            undefined,
            [result as GraphQLError],
            'GRAPHQL_PARSE_FAILED',
          )
          return
        }
        // graphql-js's own token-limit error: our code, the limit hidden unless revealed.
        const ours = rejection(
          runtime,
          LIMIT_CODES.tokens,
          limitMessage('tokens', max + 1, max, o.revealLimits),
        )
        traceRefusal(tracer, undefined, undefined, undefined, [ours])
        replaceParseResult(answered(runtime, [ours])[0])
      }
    },

    onValidate({ addValidationRule, params }) {
      if (o.introspection === 'authenticated' && typeof params.schema === 'object') {
        // The rules run on this schema: introspection is decided per request in onExecute.
        markIntrospectionPerRequest(params.schema as never)
      }
      for (const rule of rules) addValidationRule(rule as never)
      if (tracer === undefined) return undefined
      return ({ valid, result }) => {
        if (valid) return
        const document = params.documentAST as DocumentNode | undefined
        traceRefusal(tracer, document, undefined, undefined, result as GraphQLError[])
      }
    },

    async onExecute(payload) {
      if (!(await decide(payload))) return
      if (tracer !== undefined && payload.executeFn !== undefined && payload.setExecuteFn) {
        payload.setExecuteFn(tracer.wrapExecute(payload.executeFn) as never)
      }
    },

    async onSubscribe(payload) {
      await decide(payload)
    },

    onExecutionResult({ result, setResult }) {
      if (!o.blockFieldSuggestions) return
      const errors = (result as { errors?: unknown } | null | undefined)?.errors
      if (!Array.isArray(errors)) return
      const stripped = (errors as GraphQLError[]).map((e) => withoutSuggestion(runtime, e))
      if (stripped.some((e, i) => e !== errors[i])) {
        setResult({ ...(result as ExecutionResult), errors: stripped } as never)
      }
    },
  }
}
