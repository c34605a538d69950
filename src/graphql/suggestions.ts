/**
 * graphql-js's "Did you mean …?" suggestions. With introspection off they
 * still let a client recover the schema one typo at a time (the technique
 * clairvoyance automates), so the guards remove them.
 */

const PHRASE = 'Did you mean'

/**
 * Removes every "Did you mean …?" suggestion from an error message: the
 * phrase and everything after it, and the spaces before it. graphql-js
 * always appends its suggestion last (` Did you mean "a"?`, `… "a" or "b"?`,
 * `… "a", "b", or "c"?`, `… to use an inline fragment on "T"?`, `… the enum
 * value "V"?`), so nothing of its own is lost. Linear in the message (which
 * can echo client text: no regular expression to backtrack), idempotent, and
 * a message without the phrase comes back unchanged.
 *
 * @example
 * ```ts
 * stripFieldSuggestions('Cannot query field "usr" on type "Query". Did you mean "user"?')
 * // 'Cannot query field "usr" on type "Query".'
 * ```
 */
export function stripFieldSuggestions(message: string): string {
  const at = message.indexOf(PHRASE)
  return at === -1 ? message : message.slice(0, at).trimEnd()
}
