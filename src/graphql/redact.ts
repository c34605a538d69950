/**
 * Redaction by key: the rule the tracer applies to variables, and that
 * users can apply to their own logs with {@link redactSensitive}.
 *
 * A key is normalized (NFKC, so full-width letters count) and split into
 * words at case changes, digits and any non-alphanumeric character
 * (`apiToken`, `API-Key`, `x_auth_header`, `user.credentials[0].secret`),
 * lowercased. Patterns are split the same way, and match in one of two ways:
 *
 * - **Strong words** ({@link STRONG_SENSITIVE_WORDS}: password, passwd,
 *   passphrase, passcode, secret, token, credential, private key, privkey,
 *   api key) match anywhere in the
 *   key's words joined together: `newpassword`, `accesstoken`,
 *   `clientsecret`, `privatekeypem`. Names that merely contain one
 *   (`tokenizer`, `secretary`, `passwordless`) are redacted too: a
 *   harmless false positive, where a missed secret is not.
 * - **Other patterns**, short and ambiguous (`key`, `auth`, `pwd`, `jwt`),
 *   match when their words appear in a row, a trailing `s` allowed
 *   (`credentials` matches `credential`). So `keyboard`, `monkey` and
 *   `author` stay readable while `apiKey`, `userPwd` and `authToken` do not;
 *   the price is that such a pattern must be its own word to match
 *   (`authorization` is not `auth`).
 */

/** What a redacted value is replaced with. */
export const REDACTED = '[REDACTED]'

/**
 * The default sensitive key patterns: password, passwd, passphrase,
 * passcode, pwd, token, secret, key, private_key, privkey, auth, credential,
 * api_key, apikey, authorization, cookie, session, jwt.
 */
export const DEFAULT_SENSITIVE_PATTERNS: readonly string[] = Object.freeze([
  'password',
  'passwd',
  'passphrase',
  'passcode',
  'pwd',
  'token',
  'secret',
  'key',
  'private_key',
  'privkey',
  'auth',
  'credential',
  'api_key',
  'apikey',
  'authorization',
  'cookie',
  'session',
  'jwt',
])

/**
 * Patterns that match anywhere in a key (its words joined), not only as
 * words: nobody names a non-secret field `newpassword` or `clientsecret`.
 * A pattern is strong when its words joined are one of these
 * (`private_key`, `privateKey` and `PRIVATE-KEY` all are `privatekey`).
 */
export const STRONG_SENSITIVE_WORDS: readonly string[] = Object.freeze([
  'password',
  'passwd',
  'passphrase',
  'passcode',
  'secret',
  'token',
  'credential',
  'privatekey',
  'privkey',
  'apikey',
])
const STRONG = new Set(STRONG_SENSITIVE_WORDS)

/** Options of {@link redactSensitive}. */
export interface RedactOptions {
  /**
   * Key patterns: strong words match anywhere, others by segment (see the
   * module comment). Replaces the defaults; extend them with
   * `[...DEFAULT_SENSITIVE_PATTERNS, 'ssn']`.
   * @default DEFAULT_SENSITIVE_PATTERNS
   */
  readonly patterns?: readonly string[]
}

/** Deeper than this, a value is cut (`[Truncated]`): request variables can nest as deep as the body allows. */
export const MAX_REDACT_DEPTH = 64
const TRUNCATED = '[Truncated]'
const CIRCULAR = '[Circular]'

// Words: an uppercase run not followed by a lowercase letter (the `API` of
// `APIKey`), an optionally capitalized lowercase run, a digit run, or a run
// of letters without case. Everything else separates.
const WORD = /\p{Lu}+(?!\p{Ll})|\p{Lu}?\p{Ll}+|\p{Nd}+|[\p{Lo}\p{Lm}]+/gu

/** The lowercased words of a key or pattern (NFKC first: `ｐａｓｓｗｏｒｄ` is `password`). */
export function keySegments(key: string): string[] {
  const out: string[] = []
  for (const m of key.normalize('NFKC').matchAll(WORD)) out.push(m[0].toLowerCase())
  return out
}

/** Keys whose verdict is kept per matcher; variable names repeat from request to request. */
const KEY_CACHE_SIZE = 2048

/** Decides whether a key is sensitive under one list of patterns. */
export class KeyMatcher {
  /** Segment patterns: words that must appear in a row. */
  readonly #patterns: readonly (readonly string[])[]
  /** Strong patterns: text that may appear anywhere in the joined words. */
  readonly #strong: readonly string[]
  readonly #cache = new Map<string, boolean>()

  constructor(patterns: readonly string[]) {
    const segmented: (readonly string[])[] = []
    const strong = new Set<string>()
    for (const pattern of patterns) {
      const words = keySegments(pattern)
      if (words.length === 0) continue
      const joined = words.join('')
      if (STRONG.has(joined)) strong.add(joined)
      else segmented.push(words)
    }
    this.#patterns = segmented
    this.#strong = [...strong]
  }

  isSensitive(key: string): boolean {
    let verdict = this.#cache.get(key)
    if (verdict === undefined) {
      verdict = this.#match(keySegments(key))
      // Keys come from requests: bound the memory an attacker can make us keep.
      if (this.#cache.size >= KEY_CACHE_SIZE) this.#cache.clear()
      this.#cache.set(key, verdict)
    }
    return verdict
  }

  #match(words: readonly string[]): boolean {
    if (this.#strong.length > 0) {
      const joined = words.join('')
      for (const word of this.#strong) if (joined.includes(word)) return true
    }
    for (const pattern of this.#patterns) {
      const last = words.length - pattern.length
      for (let start = 0; start <= last; start++) {
        let i = 0
        while (i < pattern.length && sameWord(words[start + i]!, pattern[i]!)) i++
        if (i === pattern.length) return true
      }
    }
    return false
  }
}

/** `word` is `p`, or its plural with an `s`. */
function sameWord(word: string, p: string): boolean {
  return word === p || (word.length === p.length + 1 && word.endsWith('s') && word.startsWith(p))
}

const DEFAULT_MATCHER = new KeyMatcher(DEFAULT_SENSITIVE_PATTERNS)
const matchers = new WeakMap<readonly string[], KeyMatcher>()

/** The matcher of a pattern list, compiled once per array. */
export function matcherFor(patterns: readonly string[] | undefined): KeyMatcher {
  if (patterns === undefined || patterns === DEFAULT_SENSITIVE_PATTERNS) return DEFAULT_MATCHER
  let m = matchers.get(patterns)
  if (m === undefined) {
    m = new KeyMatcher(patterns)
    matchers.set(patterns, m)
  }
  return m
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** A redacted copy of `value`; `ancestors` holds the objects being copied above it (cycles). */
export function redactValue(
  value: unknown,
  matcher: KeyMatcher,
  depth: number,
  ancestors: Set<object>,
): unknown {
  if (typeof value !== 'object' || value === null) return value
  if (depth >= MAX_REDACT_DEPTH) return TRUNCATED
  if (ancestors.has(value)) return CIRCULAR
  ancestors.add(value)
  try {
    if (Array.isArray(value)) {
      return value.map((item) => redactValue(item, matcher, depth + 1, ancestors))
    }
    if (value instanceof Map) {
      const out = new Map<unknown, unknown>()
      for (const [k, v] of value) {
        out.set(
          k,
          typeof k === 'string' && matcher.isSensitive(k)
            ? REDACTED
            : redactValue(v, matcher, depth + 1, ancestors),
        )
      }
      return out
    }
    if (value instanceof Set) {
      return new Set([...value].map((v) => redactValue(v, matcher, depth + 1, ancestors)))
    }
    if (!isPlainObject(value)) {
      // What a logger would serialize: toJSON's result (Date, Buffer), an
      // Error's name and message, a class instance's own fields.
      const toJSON = (value as { toJSON?: unknown }).toJSON
      if (typeof toJSON === 'function') {
        return redactValue(toJSON.call(value), matcher, depth + 1, ancestors)
      }
      if (value instanceof Error) {
        return redactObject(
          { ...value, name: value.name, message: value.message },
          matcher,
          depth,
          ancestors,
        )
      }
    }
    return redactObject(value as Record<string, unknown>, matcher, depth, ancestors)
  } finally {
    ancestors.delete(value)
  }
}

function redactObject(
  value: Record<string, unknown>,
  matcher: KeyMatcher,
  depth: number,
  ancestors: Set<object>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(value)) {
    // defineProperty, not assignment: a `__proto__` key stays a plain key.
    Object.defineProperty(out, key, {
      value: matcher.isSensitive(key)
        ? REDACTED
        : redactValue(value[key], matcher, depth + 1, ancestors),
      enumerable: true,
      writable: true,
      configurable: true,
    })
  }
  return out
}

/**
 * A deep copy of `value` in which the value of every sensitive key, at any
 * depth (objects, arrays, Maps), is replaced by `"[REDACTED]"`, whatever it
 * was (a string, a number, a whole object). Strong words match anywhere in a
 * key, other patterns by segment (see the module comment): `apiToken`,
 * `API-Key`, `newpassword`, `clientsecret`, `x_auth_header` and the `secret`
 * of `user.credentials[0].secret` are redacted; `keyboard`, `monkey` and
 * `author` are not. Class instances are copied as what a logger would print
 * (`toJSON()`, an Error's name and message, own fields); cycles become
 * `"[Circular]"` and anything nested deeper than 64 levels `"[Truncated]"`.
 * The input is never modified. The tracer records variables with the same
 * rules; apply them to logs too.
 *
 * The result has the input's type for convenience, but redacted values are
 * strings whatever the type said.
 *
 * @example
 * ```ts
 * import { DEFAULT_SENSITIVE_PATTERNS, redactSensitive } from 'fraiseql-security/graphql'
 * redactSensitive({ user: 'ada', apiToken: 't0k', profile: { keyboard: 'qwerty' } })
 * // { user: 'ada', apiToken: '[REDACTED]', profile: { keyboard: 'qwerty' } }
 * redactSensitive(body, { patterns: [...DEFAULT_SENSITIVE_PATTERNS, 'ssn'] })
 * ```
 */
export function redactSensitive<T>(value: T, options?: RedactOptions): T {
  return redactValue(value, matcherFor(options?.patterns), 0, new Set()) as T
}

/**
 * Adds to `out` the text of every scalar under a sensitive key of `value`
 * (strings, and numbers as written), for scrubbing them from free text such
 * as an error message that echoes a variable. Iterative and unbounded in
 * depth (a secret nested past the redaction depth is still scrubbed);
 * shared and cyclic objects are walked once.
 */
export function collectSensitiveValues(
  value: unknown,
  matcher: KeyMatcher,
  out: Set<string>,
  sensitive = false,
): void {
  const stack: [unknown, boolean][] = [[value, sensitive]]
  // Per flag: an object reached under a plain key is walked again under a sensitive one.
  const seen = [new Set<object>(), new Set<object>()] as const
  while (stack.length > 0) {
    const [v, secret] = stack.pop()!
    if (typeof v === 'string') {
      if (secret && v !== '') out.add(v)
    } else if (typeof v === 'number' || typeof v === 'bigint') {
      if (secret) out.add(String(v))
    } else if (typeof v === 'object' && v !== null && !seen[secret ? 1 : 0].has(v)) {
      seen[secret ? 1 : 0].add(v)
      if (Array.isArray(v)) {
        for (const item of v) stack.push([item, secret])
      } else {
        for (const key of Object.keys(v)) {
          stack.push([(v as Record<string, unknown>)[key], secret || matcher.isSensitive(key)])
        }
      }
    }
  }
}

/** Letters, digits and combining marks: what a value must not run into to stand alone. */
const WORD_CHAR = /[\p{L}\p{N}\p{M}]/u

/** Whether the code point that starts at `i` is a word character. */
function wordAt(text: string, i: number): boolean {
  if (i >= text.length) return false
  return WORD_CHAR.test(String.fromCodePoint(text.codePointAt(i)!))
}

/** Whether the code point that ends just before `i` is a word character. */
function wordBefore(text: string, i: number): boolean {
  if (i <= 0) return false
  const low = text.charCodeAt(i - 1)
  const start =
    low >= 0xdc00 && low <= 0xdfff && i >= 2 && (text.charCodeAt(i - 2) & 0xfc00) === 0xd800
      ? i - 2
      : i - 1
  return wordAt(text, start)
}

/** graphql-js's `printString` escapes, without the quotes: how it echoes a string literal. */
function graphqlEscaped(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters it escapes
  return value.replace(/[\x00-\x1f"\\\x7f-\x9f]/g, (c) => {
    switch (c) {
      case '"':
        return '\\"'
      case '\\':
        return '\\\\'
      case '\b':
        return '\\b'
      case '\t':
        return '\\t'
      case '\n':
        return '\\n'
      case '\f':
        return '\\f'
      case '\r':
        return '\\r'
      default:
        return `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`
    }
  })
}

/**
 * `text` with every occurrence of each secret that stands as a value
 * replaced by `"[REDACTED]"`: quoted, or delimited by anything but a
 * letter, digit or mark (a value that starts or ends with punctuation is
 * delimited on that side by itself). So a one-character password `a` leaves
 * `wrong password` alone while `wrong password a` loses it. `secrets` come
 * from {@link scrubList} (every form, longest first); occurrences are found
 * in the original text and never overlap, so a longer secret is removed
 * whole and `[REDACTED]` is never scrubbed again.
 */
export function scrubText(text: string, secrets: readonly string[]): string {
  const hits: [number, number][] = []
  for (const secret of secrets) {
    const opensWord = wordAt(secret, 0)
    const closesWord = wordBefore(secret, secret.length)
    for (let i = text.indexOf(secret); i !== -1; i = text.indexOf(secret, i + 1)) {
      const end = i + secret.length
      if (opensWord && wordBefore(text, i)) continue
      if (closesWord && wordAt(text, end)) continue
      if (hits.some(([a, b]) => i < b && a < end)) continue
      hits.push([i, end])
    }
  }
  if (hits.length === 0) return text
  hits.sort((x, y) => x[0] - y[0])
  let out = ''
  let at = 0
  for (const [a, b] of hits) {
    out += text.slice(at, a) + REDACTED
    at = b
  }
  return out + text.slice(at)
}

/**
 * Secrets ready for {@link scrubText}: each as written, as JSON escapes it
 * (`inspect` and most loggers) and as graphql-js prints a string literal in
 * its own errors; empty ones dropped; longest first.
 */
export function scrubList(secrets: Iterable<string>): string[] {
  const forms = new Set<string>()
  for (const secret of secrets) {
    if (secret === '') continue
    forms.add(secret)
    forms.add(JSON.stringify(secret).slice(1, -1))
    forms.add(graphqlEscaped(secret))
  }
  return [...forms].sort((a, b) => b.length - a.length)
}

/** `text` cut to `max` UTF-16 units, ending with `…` when cut, never splitting a surrogate pair. */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text
  let end = max - 1
  const code = text.charCodeAt(end - 1)
  if (code >= 0xd800 && code <= 0xdbff) end--
  return `${text.slice(0, end)}…`
}
