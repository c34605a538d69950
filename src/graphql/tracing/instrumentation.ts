/**
 * The tracer as an OpenTelemetry `Instrumentation`, for
 * `new NodeSDK({ instrumentations: [...] })` and `registerInstrumentations`.
 * Structural (the interface of `@opentelemetry/instrumentation`, which is
 * not imported): the SDK gives it its tracer provider and enables or
 * disables it; it patches nothing. Operations are traced where the tracer
 * is plugged in (`graphqlTracing`, `useGraphqlGuards`, `apolloGraphqlGuards`,
 * `wrapExecute`), with `instrumentation.tracer`.
 */
import type { TracerProvider } from '@opentelemetry/api'
import { ConfigError } from '../../errors.js'
import type { TracingConfig } from './config.js'
import { GraphQLTracer, TRACER_NAME } from './tracer.js'

/** The instrumentation's configuration: the tracer's options, and `enabled`. */
export type GraphQLTracerInstrumentationConfig = Omit<TracingConfig, 'tracerProvider'> & {
  /**
   * Make spans from the start; `false` waits for `enable()` (the SDK calls
   * it when it registers the instrumentation).
   * @default true
   */
  enabled?: boolean
}

/**
 * `GraphQLTracer` registered as an OpenTelemetry instrumentation: the SDK's
 * tracer provider (set by `setTracerProvider`) receives the spans, and
 * `disable()` stops them. `responseHook` and `ignoreTrivialResolveSpans`
 * behave as in `@opentelemetry/instrumentation-graphql`.
 *
 * @example
 * ```ts
 * import { NodeSDK } from '@opentelemetry/sdk-node'
 * import { GraphQLTracerInstrumentation, useGraphqlGuards } from 'fraiseql-security/graphql'
 * const graphqlInstrumentation = new GraphQLTracerInstrumentation({
 *   traceResolvers: true,
 *   ignoreTrivialResolveSpans: true,
 *   responseHook: (span, result) => span.setAttribute('app.graphql.errors', result.errors?.length ?? 0),
 * })
 * new NodeSDK({ instrumentations: [graphqlInstrumentation] }).start()
 * const plugin = useGraphqlGuards({ maxDepth: 10, tracer: graphqlInstrumentation.tracer })
 * ```
 */
export class GraphQLTracerInstrumentation {
  readonly instrumentationName = TRACER_NAME
  readonly instrumentationVersion = '2.0.0'
  /** The tracer to plug into a server; spans go to the provider the SDK sets. */
  readonly tracer: GraphQLTracer
  #config: GraphQLTracerInstrumentationConfig

  /** @throws `ERR_CONFIG_INVALID` naming the bad option. */
  constructor(config: GraphQLTracerInstrumentationConfig = {}) {
    const { enabled, ...tracing } = config
    if (enabled !== undefined && typeof enabled !== 'boolean') {
      throw new ConfigError('GraphQLTracerInstrumentation', [
        { path: ['enabled'], message: 'must be a boolean' },
      ])
    }
    if ('tracerProvider' in tracing) {
      throw new ConfigError('GraphQLTracerInstrumentation', [
        { path: ['tracerProvider'], message: 'is set by the SDK (setTracerProvider)' },
      ])
    }
    this.tracer = new GraphQLTracer(tracing)
    this.#config = { ...config, enabled: enabled ?? true }
    this.tracer.setEnabled(this.#config.enabled === true)
  }

  enable(): void {
    this.#config = { ...this.#config, enabled: true }
    this.tracer.setEnabled(true)
  }

  disable(): void {
    this.#config = { ...this.#config, enabled: false }
    this.tracer.setEnabled(false)
  }

  setTracerProvider(tracerProvider: TracerProvider): void {
    this.tracer.useTracerProvider(tracerProvider)
  }

  /** No metrics yet: the SDK's meter provider is accepted and unused. */
  setMeterProvider(_meterProvider: unknown): void {}

  getConfig(): GraphQLTracerInstrumentationConfig {
    return this.#config
  }

  /**
   * Only `enabled` can change after construction: the tracer's options are
   * parsed once and shared by every server it is plugged into. Any other
   * change throws `ERR_CONFIG_INVALID` (create a new instrumentation).
   */
  setConfig(config: GraphQLTracerInstrumentationConfig = {}): void {
    const { enabled, ...rest } = config
    const { enabled: _current, ...now } = this.#config
    const changed = [...new Set([...Object.keys(rest), ...Object.keys(now)])].find(
      (k) => (rest as Record<string, unknown>)[k] !== (now as Record<string, unknown>)[k],
    )
    if (changed !== undefined) {
      throw new ConfigError('GraphQLTracerInstrumentation', [
        { path: [changed], message: 'is fixed at construction; create a new instrumentation' },
      ])
    }
    if (enabled === false) this.disable()
    else this.enable()
  }
}
