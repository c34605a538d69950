/**
 * What every option schema shares: parsing once, and the schemas of the
 * injected options (clock, randomness, logger, callbacks), defined here
 * once so each one is checked and described the same way everywhere.
 */
import { z } from 'zod'
import { ConfigError } from '../errors.js'
import type { RateLimitStore } from '../http/index.js'
import type { Clock } from './clock.js'
import type { Logger } from './logger.js'
import type { RandomBytes } from './random.js'

/** Names users bring from other libraries, mapped to ours (`timeWindow` is @fastify/rate-limit's). */
export type OptionAliases = Readonly<Record<string, string>>

/**
 * Parses user options once, at construction or registration. A bad option
 * throws `ERR_CONFIG_INVALID` naming the field; nothing is ever silently
 * replaced by a default (@fastify/rate-limit does that; we refuse). With
 * `aliases`, an unknown top-level key names the option the user most likely
 * meant: an alias, else a known key one or two edits away.
 */
export function parseOptions<S extends z.ZodType>(
  component: string,
  schema: S,
  input: unknown,
  aliases?: OptionAliases,
): z.output<S> {
  const result = schema.safeParse(input ?? {})
  if (result.success) return result.data
  const issues =
    aliases === undefined
      ? result.error.issues
      : withSuggestions(result.error.issues, schema, aliases)
  throw new ConfigError(component, issues, { cause: result.error })
}

type Issue = { path: PropertyKey[]; message: string; keys?: string[] }

function withSuggestions(
  issues: readonly z.core.$ZodIssue[],
  schema: z.ZodType,
  aliases: OptionAliases,
): Issue[] {
  const shape = (schema as { shape?: Record<string, unknown> }).shape
  const known = shape === undefined ? [] : Object.keys(shape)
  return issues.flatMap((issue): Issue[] => {
    if (issue.code !== 'unrecognized_keys' || issue.path.length > 0) return [issue as Issue]
    return issue.keys.map((key) => {
      const meant = Object.hasOwn(aliases, key) ? aliases[key] : closest(key, known)
      return meant === undefined
        ? { path: [], message: 'unknown option', keys: [key] }
        : { path: [key], message: `did you mean \`${meant}\`?` }
    })
  })
}

/** The known name within two edits of `key` (case-insensitive), if exactly one is nearest. */
function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = 3
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase())
    if (d < bestDistance) {
      best = k
      bestDistance = d
    }
  }
  return best
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + cost)
    }
    row = next
  }
  return row[b.length]!
}

/** A function option; `what` is its signature, shown when something else is given. */
export const fn = <T>(what: string) =>
  z.custom<T>((v) => typeof v === 'function', { message: `must be a function (${what})` })

/** The injected clock: milliseconds since the epoch. */
export const ClockOptionSchema = fn<Clock>('() => epoch ms')

/** Injected randomness: `size` cryptographically secure bytes. */
export const RandomBytesOptionSchema = fn<RandomBytes>('size => bytes')

/** A logger option (pino, `app.log`, `console` fit). */
export const LoggerOptionSchema = z.custom<Logger>(
  (v) => typeof (v as Partial<Logger> | null)?.warn === 'function',
  { message: 'must be a logger (warn and error)' },
)

/** A rate-limit store option: anything with the store contract's `consume` (used by http, profiles and api-keys). */
export const RateLimitStoreOptionSchema = z.custom<RateLimitStore>(
  (v) => typeof (v as Partial<RateLimitStore> | null)?.consume === 'function',
  { message: 'must implement consume(key, { policies, weight, now })' },
)
