/**
 * The structural logger every component accepts: pino, Fastify's `app.log`
 * and `console` all fit. Messages are constant strings; data goes in the
 * object so log pipelines can redact it by key.
 */

export interface Logger {
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
  /** Routine records (audit checkpoints); loggers without it get them at `warn`. */
  info?(obj: object, msg?: string): void
}

// Defined with the other option schemas in options.ts; re-exported for the
// modules that still import it from here.
export { LoggerOptionSchema } from './options.js'

/** Writes one structured line to stderr; used when the caller gave no logger. */
export const stderrLogger: Logger = {
  info: (obj, msg) => writeLine('info', obj, msg),
  warn: (obj, msg) => writeLine('warn', obj, msg),
  error: (obj, msg) => writeLine('error', obj, msg),
}

function writeLine(level: string, obj: object, msg: string | undefined): void {
  let data: string
  try {
    data = JSON.stringify(obj)
  } catch {
    data = '{}'
  }
  process.stderr.write(`[fraiseql-security] ${level}: ${msg ?? ''} ${data}\n`)
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
