/**
 * Duration strings as users write them for @fastify/rate-limit's `timeWindow`
 * and the `ms` package: `'1 minute'`, `'30s'`, `'1.5 h'`, `'500'` (ms).
 * Strict on purpose: anything else is an error, never a silent default.
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  msec: 1,
  msecs: 1,
  millisecond: 1,
  milliseconds: 1,
  s: 1000,
  sec: 1000,
  secs: 1000,
  second: 1000,
  seconds: 1000,
  m: 60_000,
  min: 60_000,
  mins: 60_000,
  minute: 60_000,
  minutes: 60_000,
  h: 3_600_000,
  hr: 3_600_000,
  hrs: 3_600_000,
  hour: 3_600_000,
  hours: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
  days: 86_400_000,
  w: 604_800_000,
  week: 604_800_000,
  weeks: 604_800_000,
}

const DURATION = /^(\d{1,15}(?:\.\d{1,6})?) ?([a-z]*)$/

/**
 * Milliseconds in `text`, or `undefined` when it is not a duration or not a
 * whole number of milliseconds (`'0.5ms'`).
 */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text.trim().toLowerCase())
  if (match === null) return undefined
  const unit = match[2] === '' ? 1 : UNIT_MS[match[2]!]
  if (unit === undefined) return undefined
  // Scale before multiplying so '1.1 s' is 1100, not 1100.0000000000002.
  const [whole, fraction = ''] = match[1]!.split('.')
  const scaled = BigInt(whole! + fraction) * BigInt(unit)
  const divisor = 10n ** BigInt(fraction.length)
  if (scaled % divisor !== 0n) return undefined
  const ms = scaled / divisor
  return ms <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(ms) : undefined
}
