/**
 * Tracing for the example, chosen by the standard OpenTelemetry variable:
 * `OTEL_TRACES_EXPORTER=console` prints each finished span; `otlp` sends them
 * to OTEL_EXPORTER_OTLP_ENDPOINT (needs @opentelemetry/exporter-trace-otlp-http);
 * unset or `none` traces nothing. The tracer itself depends on the API only.
 */
import type { TracerProvider } from '@opentelemetry/api'

interface ShutdownProvider extends TracerProvider {
  shutdown(): Promise<void>
}

export async function tracerProviderFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): Promise<ShutdownProvider | undefined> {
  const exporter = (env.OTEL_TRACES_EXPORTER ?? 'none').trim().toLowerCase()
  if (exporter === 'none' || exporter === '') return undefined
  const sdk = await import('@opentelemetry/sdk-trace-base')
  if (exporter === 'console') {
    return new sdk.BasicTracerProvider({
      spanProcessors: [new sdk.SimpleSpanProcessor(new sdk.ConsoleSpanExporter())],
    })
  }
  if (exporter === 'otlp') {
    const name = '@opentelemetry/exporter-trace-otlp-http'
    const otlp = (await import(name).catch(() => undefined)) as
      | { OTLPTraceExporter: new () => import('@opentelemetry/sdk-trace-base').SpanExporter }
      | undefined
    if (otlp === undefined) {
      console.warn(`OTEL_TRACES_EXPORTER=otlp needs ${name}: npm install ${name}`)
      return undefined
    }
    return new sdk.BasicTracerProvider({
      spanProcessors: [new sdk.BatchSpanProcessor(new otlp.OTLPTraceExporter())],
    })
  }
  console.warn(`OTEL_TRACES_EXPORTER=${exporter} is not supported here: console, otlp or none`)
  return undefined
}
