import type { z } from 'zod'
import { ConfigError } from '../errors.js'

/**
 * Parses user options once, at construction or registration. A bad option
 * throws `ERR_CONFIG_INVALID` naming the field; nothing is ever silently
 * replaced by a default (@fastify/rate-limit does that; we refuse).
 */
export function parseOptions<S extends z.ZodType>(
  component: string,
  schema: S,
  input: unknown,
): z.output<S> {
  const result = schema.safeParse(input ?? {})
  if (result.success) return result.data
  throw new ConfigError(component, result.error.issues, { cause: result.error })
}
