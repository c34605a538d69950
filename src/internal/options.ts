/**
 * What every option schema shares: parsing once, and the schemas of the
 * injected function options (clock, randomness, callbacks; the logger's
 * is `LoggerOptionSchema` in logger.ts), so each
 * one is checked and described the same way everywhere.
 */
import { z } from 'zod'
import { ConfigError } from '../errors.js'
import type { Clock } from './clock.js'
import type { RandomBytes } from './random.js'

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

/** A function option; `what` is its signature, shown when something else is given. */
export const fn = <T>(what: string) =>
  z.custom<T>((v) => typeof v === 'function', { message: `must be a function (${what})` })

/** The injected clock: milliseconds since the epoch. */
export const ClockOptionSchema = fn<Clock>('() => epoch ms')

/** Injected randomness: `size` cryptographically secure bytes. */
export const RandomBytesOptionSchema = fn<RandomBytes>('size => bytes')
