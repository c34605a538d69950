/**
 * Regression: `KeyManager.encryptField` serialized with `JSON.stringify`
 * alone, so a `Uint8Array` came back from `decryptField` as
 * `{"0":1,"1":2}`, and `NaN`, `undefined` in objects, Dates, Maps, `-0`,
 * holes in arrays and the like came back as something else without a word.
 * Now every value it accepts comes back exactly, and every other value is
 * `ERR_KEY_MANAGER_UNSUPPORTED_VALUE` before any KMS call.
 */
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  KeyManager,
  LocalKmsProvider,
  MemoryKeyringStore,
  UnsupportedFieldValueError,
} from '../../src/kms/index.js'
import { rejection } from '../helpers/rejection.js'

const quiet = { warn: () => {}, error: () => {} }

function manager() {
  const local = new LocalKmsProvider({ keys: { app: randomBytes(32) }, logger: quiet })
  let calls = 0
  const encrypt = local.encrypt.bind(local)
  local.encrypt = (...args) => {
    calls++
    return encrypt(...args)
  }
  const km = new KeyManager({
    providers: { local },
    defaultProvider: 'local',
    defaultKeyId: 'app',
    keyring: new MemoryKeyringStore(),
    logger: quiet,
  })
  return { km, kmsCalls: () => calls }
}

/** What comes back after a trip through storage (the field as JSON text). */
async function roundTrip(km: KeyManager, value: unknown): Promise<unknown> {
  const field = await km.encryptField(value as never)
  return km.decryptField(JSON.stringify(field))
}

describe('encryptField round-trips bytes', () => {
  it('a Uint8Array comes back as a Uint8Array with the same bytes, not {"0":1,"1":2}', async () => {
    const { km } = manager()
    const field = await km.encryptField(new Uint8Array([1, 2, 0, 255]))
    expect(field).toMatchObject({ valueType: 'bytes', encoding: 'binary' })
    const back = await km.decryptField(field)
    expect(back).toBeInstanceOf(Uint8Array)
    expect(back).toStrictEqual(new Uint8Array([1, 2, 0, 255]))
  })

  it('a Buffer, an empty array and a view into a larger buffer keep exactly their bytes', async () => {
    const { km } = manager()
    const big = new Uint8Array([9, 9, 1, 2, 3, 9])
    for (const [given, bytes] of [
      [Buffer.from([7, 8]), [7, 8]],
      [new Uint8Array(0), []],
      [big.subarray(2, 5), [1, 2, 3]],
    ] as const) {
      expect(await roundTrip(km, given)).toStrictEqual(new Uint8Array(bytes))
    }
  })
})

describe('values JSON would change are refused, before any KMS call', () => {
  class Account {
    owner = 'ada'
  }
  const cyclic: Record<string, unknown> = { a: 1 }
  cyclic.self = cyclic
  const sparse: unknown[] = [1]
  sparse[2] = 3
  const extra = Object.assign([1, 2], { note: 'dropped by JSON' })
  const hidden = Object.defineProperty({ a: 1 }, 'b', { value: 2, enumerable: false })
  const cases: readonly (readonly [string, unknown])[] = [
    ['undefined', undefined],
    ['undefined in an object', { a: undefined }],
    ['undefined in an array', [undefined]],
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['a BigInt', 10n],
    ['a nested BigInt', { n: 10n }],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['-Infinity in an array', [Number.NEGATIVE_INFINITY]],
    ['a Date', new Date(0)],
    ['a Map', new Map([['a', 1]])],
    ['a Set', new Set([1])],
    ['a class instance', new Account()],
    ['a boxed string', new String('s')],
    ['a cycle', cyclic],
    ['a sparse array', sparse],
    ['an array with extra properties', extra],
    ['an object with a symbol key', { [Symbol('k')]: 1, a: 1 }],
    ['an object with a non-enumerable property', hidden],
    ['bytes inside JSON', { avatar: new Uint8Array([1]) }],
    ['an Int16Array', new Int16Array([1])],
    ['an ArrayBuffer', new ArrayBuffer(2)],
    ['a RegExp', /x/],
  ]

  it.each(cases)('%s: ERR_KEY_MANAGER_UNSUPPORTED_VALUE', async (_, value) => {
    const { km, kmsCalls } = manager()
    const err = await rejection(km.encryptField(value as never))
    expect(err).toBeInstanceOf(UnsupportedFieldValueError)
    expect(err).toMatchObject({ code: 'ERR_KEY_MANAGER_UNSUPPORTED_VALUE' })
    expect(kmsCalls()).toBe(0)
  })

  it('the message names the kind and the depth, never the value or a key', async () => {
    const { km } = manager()
    const err = await rejection(
      km.encryptField({ ssn078051120: { secretValue: new Date(0) } } as never),
    )
    expect(err).toMatchObject({ found: expect.stringMatching(/^a Date/), depth: 2 })
    expect((err as Error).message).toMatch(/a Date .*\(at depth 2\)/)
    expect((err as Error).message).not.toMatch(/ssn078051120|secretValue|1970/)
  })

  it('a shared (acyclic) object is fine and comes back at each place', async () => {
    const { km } = manager()
    const shared = { a: 1 }
    expect(await roundTrip(km, { x: shared, y: [shared] })).toEqual({ x: { a: 1 }, y: [{ a: 1 }] })
  })
})

describe('edge values come back exactly', () => {
  it('-0, lone surrogates, a leading BOM, a __proto__ key, a null-prototype object', async () => {
    const { km } = manager()
    expect(Object.is(await roundTrip(km, -0), -0)).toBe(true)
    expect(Object.is(((await roundTrip(km, [-0])) as number[])[0], -0)).toBe(true)
    expect(await roundTrip(km, 'a\uD800b')).toBe('a\uD800b')
    expect(await roundTrip(km, '\uDC00')).toBe('\uDC00')
    expect(await roundTrip(km, '\uFEFFbom')).toBe('\uFEFFbom')
    const proto = JSON.parse('{"__proto__": {"x": 1}}') as object
    const back = (await roundTrip(km, proto)) as object
    expect(Object.hasOwn(back, '__proto__')).toBe(true)
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype)
    const bare = Object.assign(Object.create(null) as object, { a: 1 })
    expect(await roundTrip(km, bare)).toEqual({ a: 1 })
  })
})

/** Any value encryptField accepts: JSON (with -0 and any UTF-16 string), or top-level bytes. */
const fieldValue = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) }),
  fc.uint8Array({ maxLength: 64 }),
  fc.constantFrom(-0, Number.MAX_VALUE, Number.MIN_VALUE, -Number.MAX_SAFE_INTEGER, 1e21, 5e-324),
  fc.array(fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constant(-0))),
)

describe('property: decryptField(encryptField(v)) is v', () => {
  it('for every accepted value, same type and content, through the JSON text of the field', async () => {
    const { km } = manager()
    await fc.assert(
      fc.asyncProperty(fieldValue, async (value) => {
        const back = await roundTrip(km, value)
        if (value instanceof Uint8Array) {
          expect(back).toStrictEqual(Uint8Array.from(value))
        } else {
          // toStrictEqual tells -0 from 0 and a string from a number.
          expect(back).toStrictEqual(value)
        }
      }),
      { numRuns: 300 },
    )
  })
})
