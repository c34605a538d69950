/**
 * The nesting bound on a request's variables. mercurius coerces variables
 * with graphql-js's recursive `coerceInputValue` before any hook but
 * `preParsing` sees them: a value of a recursive input type
 * (`input Node { next: Node }`) nested a few thousand levels deep overflows
 * the stack, and the error it throws is no GraphQLError. Both checks are
 * iterative and stop at the first level past the bound, so their cost is
 * bounded by the bound and the body limit, not by the nesting.
 */

/** Whether a parsed JSON value nests objects and arrays deeper than `max` levels. */
export function valueNestingOver(value: unknown, max: number): boolean {
  if (typeof value !== 'object' || value === null) return false
  const stack: [object, number][] = [[value, 1]]
  while (stack.length > 0) {
    const [v, level] = stack.pop()!
    if (level > max) return true
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === 'object' && child !== null) stack.push([child, level + 1])
    }
  }
  return false
}

/**
 * Whether a JSON text (GET's `variables` query parameter, before mercurius
 * parses it) nests `{` and `[` deeper than `max` levels, brackets inside
 * strings not counted. Lenient: the text need not be valid JSON (mercurius
 * refuses that itself), only never counted lower than `JSON.parse` nests.
 */
export function textNestingOver(text: string, max: number): boolean {
  let depth = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22 /* " */) {
      // Skip the string: a backslash escapes the next character.
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i)
        if (d === 0x5c) i++
        else if (d === 0x22) break
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > max) return true
    } else if ((c === 0x7d /* } */ || c === 0x5d) /* ] */ && depth > 0) {
      depth--
    }
  }
  return false
}
