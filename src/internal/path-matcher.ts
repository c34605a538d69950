/**
 * Path exemptions shared by the body limit, the rate limit and the profile
 * enforcer's steps. A pattern is an exact path (`/health`) or a prefix ending
 * in `/*` (`/public/*`, which also matches `/public` itself). Matching is on
 * the raw path, before decoding: a variant such as `//health` is not exempt,
 * which fails safe.
 */
import { z } from 'zod'

export const PathPatternSchema = z
  .string()
  .regex(/^\/[^?#\s]*$/, 'must be an absolute path without query, e.g. "/health" or "/public/*"')

/** Compiled matcher: a set for exact paths, a short list for prefixes. */
export type PathMatcher = (path: string) => boolean

export function compilePathMatcher(patterns: readonly string[]): PathMatcher {
  const exact = new Set<string>()
  const prefixes: string[] = []
  for (const pattern of patterns) {
    if (pattern.endsWith('/*')) {
      const base = pattern.slice(0, -2)
      prefixes.push(`${base}/`)
      exact.add(base === '' ? '/' : base)
    } else {
      exact.add(pattern)
    }
  }
  if (exact.size === 0 && prefixes.length === 0) return () => false
  return (path) => {
    if (exact.has(path)) return true
    for (const prefix of prefixes) if (path.startsWith(prefix)) return true
    return false
  }
}

/** The path part of a request target (`/a/b?x=1` → `/a/b`). */
export function pathOf(url: string | undefined): string {
  if (url === undefined) return '/'
  const q = url.indexOf('?')
  const h = url.indexOf('#')
  const end = q === -1 ? h : h === -1 ? q : Math.min(q, h)
  return end === -1 ? url : url.slice(0, end)
}
