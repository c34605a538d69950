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
