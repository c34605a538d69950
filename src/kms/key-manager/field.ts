/**
 * What `KeyManager.encryptField` stores, and how: every value it accepts
 * comes back from `decryptField` exactly (same type, same content), and
 * every other value is refused before any KMS call with
 * {@link UnsupportedFieldValueError}, never turned into something else.
 * `JSON.stringify` alone drops `undefined`, functions and symbols, turns a
 * `Uint8Array` into `{"0":1,"1":2}`, `NaN` into `null`, a `Date` into a
 * string, a `Map` into `{}`, `-0` into `0`, and throws on a `BigInt` or a
 * cycle.
 *
 * | value                                          | stored as                                          |
 * | ---------------------------------------------- | -------------------------------------------------- |
 * | a `Uint8Array` (or `Buffer`), top level        | its bytes (`valueType: 'bytes'`, `encoding: 'binary'`) |
 * | a well-formed string                           | its UTF-8 (`'string'`, `'utf-8'`)                  |
 * | a string with a lone surrogate                 | JSON, whose `\ud800`-style escapes keep it (`'json'`)    |
 * | `null`, a boolean, a finite number (`-0` too), a string, an array, a plain object of these | JSON (`'json'`, `'utf-8'`) |
 */
import { SecurityError } from '../../errors.js'

/** A JSON value `encryptField` accepts (finite numbers; arrays without holes; plain objects). */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | JsonValue[]
  | { [key: string]: JsonValue }

/** Every value `encryptField` round-trips: a JSON value, or bytes at the top level. */
export type FieldValue = JsonValue | Uint8Array

/** How the plaintext of a field decodes. */
export type FieldValueType = 'string' | 'json' | 'bytes'

/** Deeper than this, a value is refused rather than risk the stack (JSON data is rarely past 20). */
export const MAX_FIELD_DEPTH = 256

/**
 * `encryptField` was given a value it cannot give back exactly. Thrown
 * before any KMS call. The message says what kind of value and at which
 * depth, never the value or an object key (keys are data too).
 */
export class UnsupportedFieldValueError extends SecurityError {
  static override readonly code = 'ERR_KEY_MANAGER_UNSUPPORTED_VALUE'
  /** What was found, e.g. `a Date`, `NaN`, `a cycle`. */
  readonly found: string
  /** Nesting level it was found at (0: the value itself). */
  readonly depth: number
  constructor(found: string, depth: number) {
    super(
      `encryptField cannot round-trip ${found}${depth === 0 ? '' : ` (at depth ${depth})`}: ` +
        'give a string, a Uint8Array, or JSON (null, booleans, finite numbers, strings, arrays, plain objects)',
    )
    this.found = found
    this.depth = depth
  }
}

/** A lone surrogate: UTF-8 cannot carry it (it would become U+FFFD). */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** The plaintext of a field and how to read it back. */
export interface FieldPlaintext {
  readonly plaintext: Uint8Array
  readonly valueType: FieldValueType
  readonly encoding: 'utf-8' | 'binary'
}

/** Encodes `value` for encryption, or throws {@link UnsupportedFieldValueError}. */
export function encodeField(value: unknown): FieldPlaintext {
  if (value instanceof Uint8Array && isPlainBytes(value)) {
    return { plaintext: Uint8Array.from(value), valueType: 'bytes', encoding: 'binary' }
  }
  if (typeof value === 'string' && !LONE_SURROGATE.test(value)) {
    return { plaintext: Buffer.from(value, 'utf8'), valueType: 'string', encoding: 'utf-8' }
  }
  const parts: string[] = []
  writeJson(value, 0, new Set(), parts)
  return { plaintext: Buffer.from(parts.join(''), 'utf8'), valueType: 'json', encoding: 'utf-8' }
}

/** A `Uint8Array` or `Buffer`: the two whose bytes are the value (no element type, no view offset to keep). */
function isPlainBytes(value: Uint8Array): boolean {
  const proto = Object.getPrototypeOf(value)
  return proto === Uint8Array.prototype || proto === Buffer.prototype
}

/**
 * Appends the JSON text of `value` to `out`, refusing what JSON would not
 * give back. `ancestors`: the objects above `value` (a cycle; a shared,
 * acyclic object is fine and is written at each place).
 */
function writeJson(value: unknown, depth: number, ancestors: Set<object>, out: string[]): void {
  switch (typeof value) {
    case 'string':
      // JSON.stringify escapes lone surrogates (ES2019), so they survive.
      out.push(JSON.stringify(value))
      return
    case 'boolean':
      out.push(value ? 'true' : 'false')
      return
    case 'number':
      if (!Number.isFinite(value)) throw new UnsupportedFieldValueError(String(value), depth)
      // JSON.stringify(-0) is "0"; JSON.parse("-0") is -0.
      out.push(Object.is(value, -0) ? '-0' : JSON.stringify(value))
      return
    case 'undefined':
      throw new UnsupportedFieldValueError('undefined', depth)
    case 'bigint':
      throw new UnsupportedFieldValueError('a BigInt', depth)
    case 'symbol':
      throw new UnsupportedFieldValueError('a symbol', depth)
    case 'function':
      throw new UnsupportedFieldValueError('a function', depth)
  }
  if (value === null) {
    out.push('null')
    return
  }
  const object = value as object
  if (depth >= MAX_FIELD_DEPTH) {
    throw new UnsupportedFieldValueError(`nesting deeper than ${MAX_FIELD_DEPTH} levels`, depth)
  }
  if (ancestors.has(object)) throw new UnsupportedFieldValueError('a cycle', depth)
  ancestors.add(object)
  if (Array.isArray(object)) writeArray(object, depth, ancestors, out)
  else writeObject(object, depth, ancestors, out)
  ancestors.delete(object)
}

function writeArray(
  array: readonly unknown[],
  depth: number,
  ancestors: Set<object>,
  out: string[],
): void {
  if (Object.getPrototypeOf(array) !== Array.prototype) {
    throw new UnsupportedFieldValueError('an Array subclass', depth)
  }
  // Own keys: the indexes and `length`; anything more is a property JSON drops.
  if (Reflect.ownKeys(array).length !== array.length + 1) {
    for (let i = 0; i < array.length; i++) {
      if (!Object.hasOwn(array, i)) throw new UnsupportedFieldValueError('a sparse array', depth)
    }
    throw new UnsupportedFieldValueError('an array with extra properties', depth)
  }
  out.push('[')
  for (let i = 0; i < array.length; i++) {
    if (i > 0) out.push(',')
    writeJson(array[i], depth + 1, ancestors, out)
  }
  out.push(']')
}

function writeObject(object: object, depth: number, ancestors: Set<object>, out: string[]): void {
  const proto = Object.getPrototypeOf(object)
  if (proto !== Object.prototype && proto !== null) {
    throw new UnsupportedFieldValueError(describeInstance(object, depth), depth)
  }
  const keys = Object.keys(object)
  const own = Reflect.ownKeys(object)
  if (own.length !== keys.length) {
    throw new UnsupportedFieldValueError(
      own.some((k) => typeof k === 'symbol')
        ? 'an object with symbol keys'
        : 'an object with non-enumerable properties',
      depth,
    )
  }
  out.push('{')
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!
    if (i > 0) out.push(',')
    out.push(JSON.stringify(key), ':')
    writeJson((object as Record<string, unknown>)[key], depth + 1, ancestors, out)
  }
  out.push('}')
}

/** `a Date`, `a Map`, `a Uint8Array inside JSON`, `an instance of Account`: a kind, never content. */
function describeInstance(object: object, depth: number): string {
  if (object instanceof Date) return 'a Date (store date.toISOString() or date.getTime())'
  if (object instanceof Map) return 'a Map (store Object.fromEntries(map) or [...map])'
  if (object instanceof Set) return 'a Set (store [...set])'
  if (object instanceof Uint8Array) {
    return depth === 0
      ? 'a Uint8Array subclass (give a plain Uint8Array or Buffer)'
      : 'a Uint8Array inside a JSON value (only a top-level Uint8Array is stored as bytes)'
  }
  if (ArrayBuffer.isView(object) || object instanceof ArrayBuffer) {
    return 'an ArrayBuffer or a typed array other than Uint8Array'
  }
  if (
    object instanceof String ||
    object instanceof Number ||
    object instanceof Boolean ||
    object instanceof BigInt ||
    object instanceof Symbol
  ) {
    return 'a boxed primitive'
  }
  const name = (object as { constructor?: { name?: unknown } }).constructor?.name
  return typeof name === 'string' && /^[A-Za-z_$][\w$]{0,63}$/.test(name)
    ? `an instance of ${name}`
    : 'an object that is not a plain object'
}

/** The value of a decrypted field's plaintext; undefined when it does not decode as `valueType`. */
export function decodeField(
  plaintext: Uint8Array,
  valueType: FieldValueType,
): FieldValue | undefined {
  if (valueType === 'bytes') return new Uint8Array(plaintext)
  let text: string
  try {
    text = utf8.decode(plaintext)
  } catch {
    return undefined
  }
  if (valueType === 'string') return text
  try {
    return JSON.parse(text) as JsonValue
  } catch {
    return undefined
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
