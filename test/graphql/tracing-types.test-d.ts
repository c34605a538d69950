import Fastify from 'fastify'
import { type ExecutionArgs, type ExecutionResult, execute } from 'graphql'
import mercurius from 'mercurius'
import { describe, expectTypeOf, it } from 'vitest'
import {
  GraphQLTracer,
  graphqlTracing,
  mercuriusTracingHooks,
  type ResolvedTracingConfig,
  redactSensitive,
  type TracingConfig,
} from '../../src/graphql/index.js'

describe('tracing types', () => {
  it('the config is partial in, complete out', () => {
    const config: TracingConfig = { traceResolvers: true, sensitivePatterns: ['ssn'] }
    const tracer = new GraphQLTracer(config)
    expectTypeOf(tracer.config).toEqualTypeOf<ResolvedTracingConfig>()
    expectTypeOf(tracer.config.maxQueryLength).toEqualTypeOf<number>()
    expectTypeOf(tracer.config.sensitivePatterns).toEqualTypeOf<readonly string[]>()
    // @ts-expect-error not a boolean
    const bad: TracingConfig = { includeDocument: 'yes' }
    void bad
  })

  it('wrapExecute keeps execute’s signature; traceDataAccess returns what fn returns', () => {
    const tracer = new GraphQLTracer()
    const traced = tracer.wrapExecute(execute)
    expectTypeOf(traced).toEqualTypeOf<typeof execute>()
    expectTypeOf(traced).parameter(0).toEqualTypeOf<ExecutionArgs>()
    expectTypeOf(tracer.traceDataAccess('db', async () => 1)).toEqualTypeOf<Promise<number>>()
    expectTypeOf(
      tracer.traceDataAccess('db', () => 'x', { 'db.system': 'pg' }),
    ).toEqualTypeOf<string>()
    expectTypeOf<ReturnType<typeof execute>>().toMatchTypeOf<
      ExecutionResult | Promise<ExecutionResult>
    >()
  })

  it('redactSensitive keeps its input’s type', () => {
    expectTypeOf(redactSensitive({ password: 'p', n: 1 })).toEqualTypeOf<{
      password: string
      n: number
    }>()
  })

  it('the plugin takes a tracer or a configuration; the hooks fit mercurius', async () => {
    const app = Fastify()
    await app.register(mercurius, { schema: 'type Query { a: Int }' })
    await app.register(graphqlTracing, { tracer: new GraphQLTracer() })
    await app.register(graphqlTracing, { includeVariables: true })
    expectTypeOf(app.graphqlTracer).toEqualTypeOf<GraphQLTracer | undefined>()
    const hooks = mercuriusTracingHooks(new GraphQLTracer())
    app.graphql.addHook('preParsing', hooks.preParsing)
    app.graphql.addHook('preExecution', hooks.preExecution)
    app.graphql.addHook('onResolution', hooks.onResolution)
    app.graphql.addHook('preSubscriptionExecution', hooks.preSubscriptionExecution)
  })
})
