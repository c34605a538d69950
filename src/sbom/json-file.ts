/**
 * Reading a JSON input file and saying where it is broken. V8's messages give
 * a character offset (`at position 812`); a person fixing a lockfile needs a
 * line and a column.
 */
import { readFileSync } from 'node:fs'

export type JsonRead =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly reason: 'missing' }
  | { readonly ok: false; readonly reason: 'unreadable' | 'invalid'; readonly problem: string }

/** 1-based line and column of a character offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1
  let start = 0
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++
    start = i + 1
  }
  return { line, column: offset - start + 1 }
}

/** The parse error with its position as line and column, without V8's echo of the input. */
function describeSyntaxError(text: string, err: SyntaxError): string {
  if (text.trim() === '') return 'is empty, not JSON'
  const position = /at position (\d+)/.exec(err.message)
  // V8 quotes the offending input (`"{ oops" is not valid JSON`): drop it, it
  // can be long and it may be the content of a file the user did not mean to show.
  const reason = err.message
    .replace(/^Unexpected token '?(.)'?, ".*" is not valid JSON$/s, "Unexpected token '$1'")
    .replace(/ in JSON at position \d+.*$/s, '')
    .replace(/ \(line \d+ column \d+\)$/, '')
  if (position === null) return `is not valid JSON (${reason})`
  const { line, column } = lineColumn(text, Number(position[1]))
  return `is not valid JSON at line ${line}, column ${column} (${reason})`
}

/** Reads and parses one JSON file; never throws for a missing or malformed file. */
export function readJsonFile(path: string): JsonRead {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as { code?: unknown }).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return { ok: false, reason: 'missing' }
    return { ok: false, reason: 'unreadable', problem: `cannot be read (${String(code)})` }
  }
  // A UTF-8 byte order mark is legal in a file but not in JSON.parse's input.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  try {
    return { ok: true, value: JSON.parse(text) }
  } catch (err) {
    return { ok: false, reason: 'invalid', problem: describeSyntaxError(text, err as SyntaxError) }
  }
}

/** Whether `value` is a plain JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
