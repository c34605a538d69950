/**
 * Checks on the query text itself, before or instead of graphql-js's parser.
 */
import type { DocumentNode, Token } from 'graphql'

/**
 * Lexical tokens of a parsed document, as graphql-js's `maxTokens` counts
 * them (no comments, no start or end marker), stopping once past `max`.
 * `undefined` when the document carries no token list (parsed with
 * `noLocation`, or not parsed at all). O(min(tokens, max)): the parser
 * already linked every token, nothing is lexed again.
 */
export function countTokens(document: DocumentNode, max: number): number | undefined {
  let token: Token | null | undefined = document.loc?.startToken
  if (token === undefined || token === null) return undefined
  let n = 0
  while (token !== null && n <= max) {
    const kind = token.kind
    if (kind !== '<SOF>' && kind !== '<EOF>' && kind !== 'Comment') n++
    token = token.next
  }
  return n
}

/** graphql-js's message when `parse(source, { maxTokens })` gives up. */
const TOKEN_LIMIT_MESSAGE =
  /^Syntax Error: Document contains more tha[nt] (\d+) tokens\. Parsing aborted\.$/

/** The limit in graphql-js's token-limit syntax error, or `undefined` for any other message. */
export function tokenLimitOf(message: string): number | undefined {
  const m = TOKEN_LIMIT_MESSAGE.exec(message)
  return m === null ? undefined : Number(m[1])
}

const isJsonSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d

/**
 * Whether `JSON.parse` could accept `source`. mercurius, when a query fails
 * to parse as GraphQL, tries `JSON.parse(query)` and executes the result as a
 * document AST: no `maxTokens` on that path, and no size bound but the body
 * limit. No GraphQL executable document starts like a JSON value (`{` then
 * `"` or `}`, `[`, `"`, a number, `true`/`false`/`null`), so refusing these
 * never refuses a query graphql-js would have parsed.
 */
export function looksLikeJson(source: string): boolean {
  const len = source.length
  let i = 0
  while (i < len && isJsonSpace(source.charCodeAt(i))) i++
  if (i === len) return false
  const c = source.charCodeAt(i)
  if (c === 0x7b /* { */) {
    let j = i + 1
    while (j < len && isJsonSpace(source.charCodeAt(j))) j++
    const d = source.charCodeAt(j)
    return d === 0x22 /* " */ || d === 0x7d /* } */
  }
  if (c === 0x5b /* [ */ || c === 0x22 /* " */ || c === 0x2d /* - */) return true
  if (c >= 0x30 && c <= 0x39) return true
  const word = source.trim()
  return word === 'true' || word === 'false' || word === 'null'
}

/** What {@link scanSource} found over a limit, if anything. */
export type SourceVerdict =
  | { readonly over: undefined }
  | { readonly over: 'tokens'; readonly tokens: number }
  | { readonly over: 'nesting' }

const PASS: SourceVerdict = { over: undefined }
const NESTED: SourceVerdict = { over: 'nesting' }

const isNameStart = (c: number) =>
  (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f /* _ */
const isNameContinue = (c: number) => isNameStart(c) || (c >= 0x30 && c <= 0x39)
const isDigit = (c: number) => c >= 0x30 && c <= 0x39

/**
 * One lexical pass over a query text before graphql-js parses it: counts
 * tokens as graphql-js's `maxTokens` does (no comments, commas or white
 * space; `...` is one token, a string or a number one) and tracks how deep
 * `{`, `[` and `(` nest. graphql-js's parser is recursive: a document nested
 * a few thousand levels deep overflows the stack well under any token limit,
 * and the error it then throws is no GraphQLError. Stops at the first limit
 * passed, so its cost is bounded by the limits, not by the text.
 *
 * Lenient where graphql-js is strict: a character graphql-js would refuse
 * counts as one token, an unterminated string runs to the end. The text is
 * parsed next anyway; this pass only has to never count a valid document
 * lower than graphql-js does (property-tested against it).
 */
export function scanSource(
  source: string,
  maxTokens: number | undefined,
  maxNesting: number,
): SourceVerdict {
  const len = source.length
  const tokenLimit = maxTokens ?? Number.POSITIVE_INFINITY
  let tokens = 0
  let depth = 0
  let i = 0
  while (i < len) {
    const c = source.charCodeAt(i)
    // Ignored tokens (GraphQL specification §2.1.7): BOM, white space, line
    // terminators, commas, comments.
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x2c || c === 0xfeff) {
      i++
      continue
    }
    if (c === 0x23 /* # */) {
      while (i < len && source.charCodeAt(i) !== 0x0a && source.charCodeAt(i) !== 0x0d) i++
      continue
    }
    if (++tokens > tokenLimit) return { over: 'tokens', tokens }
    if (c === 0x7b /* { */ || c === 0x5b /* [ */ || c === 0x28 /* ( */) {
      if (++depth > maxNesting) return NESTED
      i++
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */ || c === 0x29 /* ) */) {
      if (depth > 0) depth--
      i++
    } else if (c === 0x22 /* " */) {
      i = skipString(source, i)
    } else if (c === 0x2e /* . */ && source.startsWith('...', i)) {
      i += 3
    } else if (isNameStart(c)) {
      i++
      while (i < len && isNameContinue(source.charCodeAt(i))) i++
    } else if (c === 0x2d /* - */ || isDigit(c)) {
      i++
      // Digits, a fraction and an exponent: one token (GraphQL specification
      // §2.1.9 IntValue, FloatValue).
      while (i < len) {
        const d = source.charCodeAt(i)
        if (isDigit(d) || d === 0x2e || d === 0x65 || d === 0x45) i++
        else if ((d === 0x2b || d === 0x2d) && (source.charCodeAt(i - 1) | 0x20) === 0x65) i++
        else break
      }
    } else {
      // Any other punctuator (! $ & : = @ |), or a character graphql-js refuses.
      i++
    }
  }
  return PASS
}

/** The index just past the string (or block string) that starts at `start`. */
function skipString(source: string, start: number): number {
  const len = source.length
  if (source.startsWith('"""', start)) {
    // Block string: ends at the first `"""` not escaped as `\"""`.
    let i = start + 3
    while (i < len) {
      if (source.charCodeAt(i) === 0x5c && source.startsWith('"""', i + 1)) i += 4
      else if (source.startsWith('"""', i)) return i + 3
      else i++
    }
    return len
  }
  let i = start + 1
  while (i < len) {
    const c = source.charCodeAt(i)
    if (c === 0x5c /* \ */) i += 2
    else if (c === 0x22) return i + 1
    else if (c === 0x0a || c === 0x0d)
      return i // unterminated: graphql-js refuses it
    else i++
  }
  return len
}
