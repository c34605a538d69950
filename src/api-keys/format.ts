/**
 * The API-key format, modelled on GitHub's token format:
 *
 * ```
 * <prefix>_<region>_<keyId>_<secret><checksum>
 * fraiseql_live_eu_west_1_4fTq9ZbW1xKe_Vb3…(32)…0aZ9kQ
 * ```
 *
 * - `prefix`: one of the configured prefixes (default `fraiseql_live`,
 *   `fraiseql_test`), matched longest first;
 * - `region`: `[a-z0-9]+(_[a-z0-9]+)*`, so it may itself contain underscores;
 * - `keyId`: 12 base62 characters, public, the database lookup key;
 * - `secret`: 32 base62 characters (≈ 190 bits);
 * - `checksum`: CRC-32 of everything before it, base62, left-padded with `0`
 *   to 6 characters. It lets a scanner or the server reject a typo or a
 *   random string without any lookup; it is public and proves nothing.
 *
 * Parsing is right-anchored: the last 52 characters are `_keyId_secret+checksum`
 * (base62 has no underscore), and only what is left is split into prefix
 * and region. Splitting from the left breaks on regions with underscores.
 */
import { decodeBase62, encodeBase62, isBase62, randomBase62 } from '../internal/base62.js'
import { crc32 } from '../internal/crc32.js'
import type { RandomBytes } from '../internal/random.js'
import { ApiKeyMalformedError } from './errors.js'

export const KEY_ID_LENGTH = 12
export const SECRET_LENGTH = 32
export const CHECKSUM_LENGTH = 6
/** `_` + keyId + `_` + secret + checksum. */
const TAIL_LENGTH = 1 + KEY_ID_LENGTH + 1 + SECRET_LENGTH + CHECKSUM_LENGTH

export const DEFAULT_PREFIXES: readonly string[] = Object.freeze(['fraiseql_live', 'fraiseql_test'])
export const MAX_PREFIX_LENGTH = 32
export const MAX_REGION_LENGTH = 32
/** No valid key is longer: anything longer is refused before it is scanned. */
export const MAX_API_KEY_LENGTH = MAX_PREFIX_LENGTH + 1 + MAX_REGION_LENGTH + TAIL_LENGTH

/** A configured prefix: lowercase letters and digits, `_`-separated, starting with a letter. */
export const PREFIX_PATTERN = /^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$/
/** A region: lowercase letters and digits, `_`-separated (`eu_west_1`). */
export const REGION_PATTERN = /^[a-z0-9]+(?:_[a-z0-9]+)*$/

/** The parts of a key. `secret` is the credential: never log it. */
export interface ParsedApiKey {
  readonly prefix: string
  readonly region: string
  readonly keyId: string
  readonly secret: string
}

export interface ParseApiKeyOptions {
  /**
   * Accepted prefixes, matched longest first.
   * @default ['fraiseql_live', 'fraiseql_test']
   */
  readonly prefixes?: readonly string[]
}

/** Prefixes sorted longest first, cached per list (the default list is sorted once). */
const sortedCache = new WeakMap<readonly string[], readonly string[]>()
export function sortPrefixes(prefixes: readonly string[]): readonly string[] {
  let sorted = sortedCache.get(prefixes)
  if (sorted === undefined) {
    sorted = Object.freeze([...prefixes].sort((a, b) => b.length - a.length || (a < b ? -1 : 1)))
    sortedCache.set(prefixes, sorted)
  }
  return sorted
}

/** The checksum of `body` (everything before the checksum). */
export function checksumOf(body: string): string {
  return encodeBase62(crc32(body), CHECKSUM_LENGTH)
}

/**
 * The shared, allocation-free part of parsing: returns the prefix and the
 * index where the region starts, or undefined for anything malformed. The
 * region, keyId and secret are then slices at fixed offsets from the end.
 */
export function scanApiKey(key: unknown, sortedPrefixes: readonly string[]): string | undefined {
  if (typeof key !== 'string') return undefined
  const n = key.length
  if (n > MAX_API_KEY_LENGTH || n < TAIL_LENGTH + 3) return undefined
  const tail = n - TAIL_LENGTH
  // Fixed separators of the right-anchored tail, then its alphabet.
  if (key.charCodeAt(tail) !== 95 || key.charCodeAt(tail + 1 + KEY_ID_LENGTH) !== 95)
    return undefined
  if (
    !isBase62(key, tail + 1, tail + 1 + KEY_ID_LENGTH) ||
    !isBase62(key, tail + 2 + KEY_ID_LENGTH, n)
  )
    return undefined
  // The checksum first: it rejects nearly every random or mistyped string.
  // (Compared as numbers: no string is built for the expected checksum.)
  if (crc32(key.slice(0, n - CHECKSUM_LENGTH)) !== decodeBase62(key, n - CHECKSUM_LENGTH, n))
    return undefined
  let prefix: string | undefined
  for (const p of sortedPrefixes) {
    if (p.length + 1 < tail && key.startsWith(p) && key.charCodeAt(p.length) === 95) {
      prefix = p
      break
    }
  }
  if (prefix === undefined) return undefined
  const region = key.slice(prefix.length + 1, tail)
  if (region.length > MAX_REGION_LENGTH || !REGION_PATTERN.test(region)) return undefined
  return prefix
}

/**
 * Parses an API key strictly, right to left. Throws `ERR_API_KEY_MALFORMED`
 * for anything that is not a key of this format, a wrong checksum
 * included. The error never contains the key.
 *
 * @example
 * ```ts
 * import { parseApiKey } from 'fraiseql-security/api-keys'
 * const { prefix, region, keyId } = parseApiKey(key) // region may be 'eu_west_1'
 * ```
 */
export function parseApiKey(key: string, options: ParseApiKeyOptions = {}): ParsedApiKey {
  const prefixes = options.prefixes ?? DEFAULT_PREFIXES
  for (const p of prefixes) {
    if (typeof p !== 'string' || p.length > MAX_PREFIX_LENGTH || !PREFIX_PATTERN.test(p)) {
      throw new TypeError('prefixes must be lowercase [a-z0-9_] words of at most 32 characters')
    }
  }
  const prefix = scanApiKey(key, sortPrefixes(prefixes))
  if (prefix === undefined) throw new ApiKeyMalformedError()
  const n = key.length
  const tail = n - TAIL_LENGTH
  return {
    prefix,
    region: key.slice(prefix.length + 1, tail),
    keyId: key.slice(tail + 1, tail + 1 + KEY_ID_LENGTH),
    secret: key.slice(tail + 2 + KEY_ID_LENGTH, n - CHECKSUM_LENGTH),
  }
}

/** The key id of a key {@link scanApiKey} accepted. */
export function keyIdOf(key: string): string {
  const tail = key.length - TAIL_LENGTH
  return key.slice(tail + 1, tail + 1 + KEY_ID_LENGTH)
}

/**
 * Formats a key from its parts, appending the checksum. Validates every
 * part; `keyId` and `secret` default to fresh random values.
 *
 * @example
 * ```ts
 * const key = formatApiKey({ prefix: 'fraiseql_test', region: 'eu_west_1' })
 * ```
 */
export function formatApiKey(
  parts: { prefix: string; region: string; keyId?: string; secret?: string },
  randomBytes?: RandomBytes,
): string {
  const { prefix, region } = parts
  const keyId = parts.keyId ?? randomBase62(KEY_ID_LENGTH, randomBytes)
  const secret = parts.secret ?? randomBase62(SECRET_LENGTH, randomBytes)
  if (prefix.length > MAX_PREFIX_LENGTH || !PREFIX_PATTERN.test(prefix))
    throw new TypeError('invalid prefix')
  if (region.length > MAX_REGION_LENGTH || !REGION_PATTERN.test(region))
    throw new TypeError('invalid region')
  if (keyId.length !== KEY_ID_LENGTH || !isBase62(keyId)) throw new TypeError('invalid keyId')
  if (secret.length !== SECRET_LENGTH || !isBase62(secret)) throw new TypeError('invalid secret')
  const body = `${prefix}_${region}_${keyId}_${secret}`
  return body + checksumOf(body)
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/**
 * A regular expression that finds keys with the given prefixes in text (for
 * secret scanners: GitHub custom patterns, gitleaks, trufflehog). Not
 * anchored, not global; it checks the shape only, so confirm a hit with
 * {@link parseApiKey} (which checks the checksum).
 *
 * @example
 * ```ts
 * apiKeyPattern(['acme_live']).source
 * ```
 */
export function apiKeyPattern(prefixes: readonly string[] = DEFAULT_PREFIXES): RegExp {
  const alternatives = sortPrefixes(prefixes).map(escapeRegExp).join('|')
  const b62 = '[0-9A-Za-z]'
  return new RegExp(
    `\\b(?:${alternatives})_[a-z0-9]+(?:_[a-z0-9]+)*_${b62}{${KEY_ID_LENGTH}}_${b62}{${SECRET_LENGTH + CHECKSUM_LENGTH}}\\b`,
  )
}

/**
 * The pattern of keys with the default prefixes:
 * `\b(?:fraiseql_live|fraiseql_test)_[a-z0-9]+(?:_[a-z0-9]+)*_[0-9A-Za-z]{12}_[0-9A-Za-z]{38}\b`.
 *
 * @example
 * ```ts
 * import { API_KEY_PATTERN } from 'fraiseql-security/api-keys'
 * const leaked = text.match(new RegExp(API_KEY_PATTERN.source, 'g')) ?? []
 * ```
 */
export const API_KEY_PATTERN: RegExp = apiKeyPattern(DEFAULT_PREFIXES)
