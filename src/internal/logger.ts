/**
 * The structural logger every component accepts: pino (and so Fastify's
 * `app.log` / `request.log`) and `console` fit. Messages are constant
 * strings; data goes in the object so log pipelines can redact it by key.
 */

import { systemClock } from './clock.js'

export interface Logger {
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
  /** Routine records (audit checkpoints); loggers without it get them at `warn`. */
  info?(obj: object, msg?: string): void
  debug?(obj: object, msg?: string): void
  /** pino's child logger: every line carries `bindings`. */
  child?(bindings: object): Logger
}

// Defined with the other option schemas in options.ts; re-exported for the
// modules that still import it from here.
export { LoggerOptionSchema } from './options.js'

/** pino's numeric levels, so pino's tools (pino-pretty, transports) read our lines. */
const LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const

/**
 * The default outside Fastify (the middleware, KeyManager, stores): one JSON
 * object per line on stderr, in pino's shape (`level`, `time`, `name`,
 * `msg`, then the data), so a log pipeline parses it as it parses pino's.
 */
export const stderrLogger: Logger = jsonLineLogger({})

function jsonLineLogger(bindings: object): Logger {
  const line = (level: keyof typeof LEVELS) => (obj: object, msg?: string) =>
    writeLine(LEVELS[level], bindings, obj, msg)
  return {
    debug: line('debug'),
    info: line('info'),
    warn: line('warn'),
    error: line('error'),
    child: (more) => jsonLineLogger({ ...bindings, ...more }),
  }
}

/** `Error`s have no enumerable fields: JSON.stringify would write `{}`. */
function replacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? describeError(value) : value
}

function writeLine(level: number, bindings: object, obj: object, msg: string | undefined): void {
  const head = { level, time: systemClock(), name: 'fraiseql-security' }
  let data: string
  try {
    data = JSON.stringify({ ...head, ...bindings, ...obj, msg: msg ?? '' }, replacer)
  } catch {
    // A circular or throwing object: the line still goes out, without its data.
    data = JSON.stringify({ ...head, msg: msg ?? '', unserializable: true })
  }
  process.stderr.write(`${data}\n`)
}

/** A short, credential-free description of a failure, for log objects. */
export function describeError(err: unknown): { name: string; code?: string; message: string } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return typeof code === 'string'
      ? { name: err.name, code, message: err.message }
      : { name: err.name, message: err.message }
  }
  return { name: typeof err, message: 'non-error thrown' }
}
