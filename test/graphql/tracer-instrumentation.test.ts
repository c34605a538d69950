/**
 * GraphQLTracerInstrumentation registered the way an OpenTelemetry SDK
 * registers instrumentations (`registerInstrumentations`, what NodeSDK
 * calls): the SDK's provider receives the spans, disable() stops them,
 * responseHook and ignoreTrivialResolveSpans as instrumentation-graphql
 * users expect.
 */
import { registerInstrumentations } from '@opentelemetry/instrumentation'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import { execute, parse } from 'graphql'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SecurityError } from '../../src/errors.js'
import { GraphQLTracerInstrumentation } from '../../src/graphql/index.js'
import { dropContextManager, tracingSchema, useContextManager } from './tracing-fixtures.js'

function sdk() {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  return { exporter, provider }
}

describe('GraphQLTracerInstrumentation', () => {
  beforeEach(useContextManager)
  afterEach(dropContextManager)

  it('sends spans to the tracer provider the SDK registers, and stops on disable()', async () => {
    const { exporter, provider } = sdk()
    const instrumentation = new GraphQLTracerInstrumentation({ enabled: false })
    const unregister = registerInstrumentations({
      tracerProvider: provider,
      instrumentations: [instrumentation],
    })
    expect(instrumentation.getConfig().enabled).toBe(true)
    const schema = tracingSchema(() => instrumentation.tracer)
    const run = instrumentation.tracer.wrapExecute(execute)
    await run({ schema, document: parse('query Me { me { id } }') })
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['query Me'])
    unregister()
    await run({ schema, document: parse('query Me { me { id } }') })
    expect(exporter.getFinishedSpans()).toHaveLength(1)
    instrumentation.enable()
    await run({ schema, document: parse('query Again { me { id } }') })
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual(['query Me', 'query Again'])
  })

  it('calls responseHook with the operation span and result, and survives its throw', async () => {
    const { exporter, provider } = sdk()
    const seen: number[] = []
    const instrumentation = new GraphQLTracerInstrumentation({
      responseHook: (span, result) => {
        seen.push(result.errors?.length ?? 0)
        span.setAttribute('app.errors', result.errors?.length ?? 0)
        if (seen.length === 2) throw new TypeError('hook bug')
      },
    })
    instrumentation.setTracerProvider(provider)
    const schema = tracingSchema(() => instrumentation.tracer)
    const run = instrumentation.tracer.wrapExecute(execute)
    await run({ schema, document: parse('{ me { id } }') })
    const failed = (await run({ schema, document: parse('{ boom }') })) as { errors?: unknown[] }
    expect(failed.errors).toHaveLength(1)
    expect(seen).toEqual([0, 1])
    const [ok, boom] = exporter.getFinishedSpans()
    expect(ok?.attributes['app.errors']).toBe(0)
    expect(boom?.attributes['app.errors']).toBe(1)
    expect(boom?.attributes['fraiseql.graphql.response_hook.error']).toBe('TypeError')
  })

  it('ignoreTrivialResolveSpans leaves out fields resolved by the default resolver', async () => {
    const names = async (ignore: boolean) => {
      const { exporter, provider } = sdk()
      const instrumentation = new GraphQLTracerInstrumentation({
        traceResolvers: true,
        ignoreTrivialResolveSpans: ignore,
      })
      instrumentation.setTracerProvider(provider)
      const schema = tracingSchema(() => instrumentation.tracer)
      await instrumentation.tracer.wrapExecute(execute)({
        schema,
        document: parse('{ me { id name } }'),
      })
      return exporter.getFinishedSpans().map((s) => s.name)
    }
    expect((await names(false)).sort()).toEqual(['me', 'me.id', 'me.name', 'query'])
    expect((await names(true)).sort()).toEqual(['me', 'query'])
  })

  it('refuses a provider in its options and changes after construction', () => {
    const codeOf = (fn: () => unknown) => {
      try {
        fn()
      } catch (err) {
        return err instanceof SecurityError ? err.code : 'other'
      }
      return 'none'
    }
    expect(codeOf(() => new GraphQLTracerInstrumentation({ tracerProvider: {} } as never))).toBe(
      'ERR_CONFIG_INVALID',
    )
    const i = new GraphQLTracerInstrumentation({ traceResolvers: true })
    expect(codeOf(() => i.setConfig({ traceResolvers: false }))).toBe('ERR_CONFIG_INVALID')
    expect(codeOf(() => i.setConfig({ traceResolvers: true, enabled: false }))).toBe('none')
    expect(i.getConfig().enabled).toBe(false)
  })
})
