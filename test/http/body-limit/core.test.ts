import { randomBytes } from 'node:crypto'
import { brotliCompressSync, gzipSync } from 'node:zlib'
import fc from 'fast-check'
import { afterEach, describe, expect, test, vi } from 'vitest'
import { SecurityError } from '../../../src/errors.js'
import {
  BodyMeter,
  declaredLength,
  decodingFor,
  type MeterSink,
  resolveBodyLimit,
} from '../../../src/http/body-limit/core.js'
import { createDecoder, createInflater } from '../../../src/http/body-limit/decoder.js'
import {
  BodySizeConfigSchema,
  BodyTimeoutError,
  bodyLimitMiddleware,
  humanReadableSize,
  InvalidCompressedBodyError,
  InvalidContentLengthError,
  RequestTooLargeError,
  toHttpAnswer,
  UnsupportedEncodingError,
} from '../../../src/http/index.js'
import { within } from '../../helpers/raw-http.js'

describe('BodySizeConfig', () => {
  test('defaults: 1 MiB, no exempt path, bodiless GET/HEAD/OPTIONS exempt, 30 s body timeout, bodies decoded, none passed encoded', () => {
    expect(BodySizeConfigSchema.parse({})).toEqual({
      maxSize: 1_048_576,
      exemptPaths: [],
      exemptMethods: ['GET', 'HEAD', 'OPTIONS'],
      bodyTimeoutMs: 30_000,
      inflate: true,
      passEncoded: false,
    })
  })

  test('exempt methods are compared upper-cased, so `post` exempts POST', () => {
    expect(resolveBodyLimit({ exemptMethods: ['post'] }).exemptMethods.has('POST')).toBe(true)
  })

  test('`bodyTimeoutMs: false` turns the body timeout off', () => {
    expect(resolveBodyLimit({ bodyTimeoutMs: false }).bodyTimeoutMs).toBe(false)
  })

  test.each([
    [{ maxSize: 0 }, 'maxSize'],
    [{ maxSize: -1 }, 'maxSize'],
    [{ maxSize: 1.5 }, 'maxSize'],
    [{ maxSize: Number.NaN }, 'maxSize'],
    [{ maxSize: '1mb' }, 'maxSize'],
    [{ maxSize: 2 ** 41 }, 'maxSize'],
    [{ exemptPaths: ['upload'] }, 'exemptPaths[0]'],
    [{ exemptPaths: ['/upload?x=1'] }, 'exemptPaths[0]'],
    [{ exemptPaths: '/upload' }, 'exemptPaths'],
    [{ exemptMethods: ['GE T'] }, 'exemptMethods[0]'],
    [{ bodyTimeoutMs: 0 }, 'bodyTimeoutMs'],
    [{ bodyTimeoutMs: true }, 'bodyTimeoutMs'],
    [{ inflate: 'yes' }, 'inflate'],
    [{ passEncoded: 1 }, 'passEncoded'],
    [{ maxsize: 10 }, 'maxsize'],
  ])('bad option %j throws ERR_CONFIG_INVALID naming `%s`', (options, field) => {
    const run = () => bodyLimitMiddleware(options as never)
    expect(run).toThrow(SecurityError)
    try {
      run()
    } catch (err) {
      expect(err).toMatchObject({ code: 'ERR_CONFIG_INVALID', name: 'ConfigError' })
      expect((err as Error).message).toContain(`\`${field}\``)
    }
  })
})

describe('humanReadableSize', () => {
  test.each([
    [0, '0 bytes'],
    [1, '1 byte'],
    [500, '500 bytes'],
    [1023, '1023 bytes'],
    [1024, '1.0 KB'],
    [1075, '1.0 KB'],
    [1076, '1.1 KB'],
    [1536, '1.5 KB'],
    [512_000, '500.0 KB'],
    [1_048_575, '1.0 MB'],
    [1_048_576, '1.0 MB'],
    [5 * 1_048_576, '5.0 MB'],
    [1_073_741_824, '1.0 GB'],
    [2 ** 40, '1.0 TB'],
  ])('%i bytes is "%s"', (bytes, human) => {
    expect(humanReadableSize(bytes)).toBe(human)
  })

  const UNIT = { byte: 0, bytes: 0, KB: 1, MB: 2, GB: 3, TB: 4, PB: 5 } as const
  /** The byte count a rendered size stands for. */
  const bytesOf = (human: string): number => {
    const [value = '', unit = ''] = human.split(' ')
    return Number(value) * 1024 ** UNIT[unit as keyof typeof UNIT]
  }
  const size = fc.integer({ min: 0, max: 2 ** 40 })

  test('every size is whole bytes under 1 KiB, else one decimal under 1024 of a 1024-based unit', () => {
    fc.assert(
      fc.property(size, (bytes) => {
        const human = humanReadableSize(bytes)
        expect(human).toMatch(/^(1 byte|\d{1,4} bytes|\d{1,4}\.\d (KB|MB|GB|TB))$/)
        if (bytes >= 1024) expect(Number(human.split(' ')[0])).toBeLessThan(1024)
      }),
    )
  })

  test('is monotone: a larger size never renders as a smaller one', () => {
    fc.assert(
      fc.property(size, size, (a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a]
        expect(bytesOf(humanReadableSize(lo))).toBeLessThanOrEqual(bytesOf(humanReadableSize(hi)))
      }),
    )
  })

  test('is off by at most half of its last digit', () => {
    fc.assert(
      fc.property(size, (bytes) => {
        const human = humanReadableSize(bytes)
        const unit = UNIT[human.split(' ')[1] as keyof typeof UNIT]
        const halfDigit = unit === 0 ? 0 : 0.05 * 1024 ** unit
        expect(Math.abs(bytesOf(human) - bytes)).toBeLessThanOrEqual(halfDigit * (1 + 1e-9))
      }),
    )
  })
})

describe('declaredLength (RFC 9110 §8.6: Content-Length = 1*DIGIT)', () => {
  test('no header is absent, not zero', () => {
    expect(declaredLength(undefined)).toEqual({ kind: 'absent' })
  })

  test.each([
    ['0', 0],
    ['00012', 12],
    ['1048576', 1_048_576],
    ['999999999999999', 999_999_999_999_999],
  ])('"%s" declares %i bytes', (value, bytes) => {
    expect(declaredLength(value)).toEqual({ kind: 'length', bytes })
  })

  test.each([
    '',
    ' 12',
    '12 ',
    '-1',
    '+1',
    '1e3',
    '0x10',
    '1.0',
    '12,12',
    '1 2',
    '١٢',
    '9999999999999999',
  ])('"%s" is invalid', (value) => {
    expect(declaredLength(value)).toEqual({ kind: 'invalid' })
  })

  test('a repeated header (an array) is invalid, even when the values agree', () => {
    expect(declaredLength(['12', '12'])).toEqual({ kind: 'invalid' })
  })

  test('any string of 1 to 15 digits declares exactly its number', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9]{1,15}$/), (digits) => {
        const parsed = declaredLength(digits)
        expect(parsed).toEqual({ kind: 'length', bytes: Number(digits) })
        expect(Number.isSafeInteger(Number(digits))).toBe(true)
      }),
    )
  })

  test('any string holding a non-digit is invalid', () => {
    // Any code point (fast-check's own 'binary' unit is slow to set up).
    const codePoint = fc
      .oneof(fc.integer({ min: 0, max: 0xd7ff }), fc.integer({ min: 0xe000, max: 0x10ffff }))
      .map((c) => String.fromCodePoint(c))
    const nonDigit = codePoint.filter((c) => !/[0-9]/.test(c))
    const digits = fc.stringMatching(/^[0-9]{0,7}$/)
    const withNonDigit = fc.oneof(
      fc.string({ unit: codePoint, minLength: 1, maxLength: 20 }).filter((s) => /[^0-9]/.test(s)),
      fc.tuple(digits, nonDigit, digits).map(([a, c, b]) => a + c + b),
    )
    fc.assert(
      fc.property(withNonDigit, (value) => {
        expect(declaredLength(value)).toEqual({ kind: 'invalid' })
      }),
    )
  })

  test('more than 15 digits is invalid (past what a safe integer holds exactly)', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9]{16,40}$/), (digits) => {
        expect(declaredLength(digits)).toEqual({ kind: 'invalid' })
      }),
    )
  })
})

describe('error answers', () => {
  test('RequestTooLargeError is ERR_HTTP_BODY_TOO_LARGE, 413, a SecurityError', () => {
    const err = new RequestTooLargeError(1024)
    expect(err).toBeInstanceOf(SecurityError)
    expect(err).toMatchObject({
      code: 'ERR_HTTP_BODY_TOO_LARGE',
      statusCode: 413,
      maxSize: 1024,
      name: 'RequestTooLargeError',
    })
    expect(RequestTooLargeError.code).toBe('ERR_HTTP_BODY_TOO_LARGE')
  })

  test('the 413 answer is exactly the seed body, as JSON, closing the connection', () => {
    const answer = toHttpAnswer(new RequestTooLargeError(1_048_576))
    expect(answer.statusCode).toBe(413)
    expect(answer.headers).toEqual({ 'content-type': 'application/json', connection: 'close' })
    expect(answer.body).toBe(
      '{"detail":"Request body too large","max_size":1048576,"max_size_human":"1.0 MB"}',
    )
  })

  test.each([
    [
      'InvalidContentLengthError',
      400,
      'ERR_HTTP_INVALID_CONTENT_LENGTH',
      'Invalid Content-Length',
      new InvalidContentLengthError(),
    ],
    [
      'BodyTimeoutError',
      408,
      'ERR_HTTP_BODY_TIMEOUT',
      'Request body timed out',
      new BodyTimeoutError(),
    ],
    [
      'UnsupportedEncodingError',
      415,
      'ERR_HTTP_UNSUPPORTED_ENCODING',
      'Unsupported Content-Encoding',
      new UnsupportedEncodingError(),
    ],
    [
      'InvalidCompressedBodyError',
      400,
      'ERR_HTTP_BAD_REQUEST',
      'Invalid compressed request body',
      new InvalidCompressedBodyError(),
    ],
  ] as const)('%s answers %i with code %s', (_name, status, code, detail, err) => {
    const answer = toHttpAnswer(err)
    expect(answer.statusCode).toBe(status)
    expect(answer.headers['content-type']).toBe('application/json')
    expect(JSON.parse(answer.body)).toEqual({ detail, code })
  })
})

/** A sink that records what the meter handed on and how it ended. */
function recordingSink() {
  const chunks: Buffer[] = []
  let resolveOutcome: (outcome: 'end' | SecurityError) => void = () => {}
  const outcome = new Promise<'end' | SecurityError>((resolve) => {
    resolveOutcome = resolve
  })
  const drained = vi.fn()
  const sink: MeterSink = {
    write: (chunk) => {
      chunks.push(chunk)
      return true
    },
    end: () => resolveOutcome('end'),
    fail: (error) => resolveOutcome(error),
    drain: drained,
  }
  return { sink, chunks, outcome, drained, bytes: () => Buffer.concat(chunks).length }
}

describe('BodyMeter', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  test('a body of exactly the limit passes; the byte past it fails with a 413', async () => {
    const ok = recordingSink()
    const atLimit = new BodyMeter(10, ok.sink, undefined, false)
    expect(atLimit.push(Buffer.alloc(4))).toBe(true)
    expect(atLimit.push(Buffer.alloc(6))).toBe(true)
    atLimit.end()
    expect(await ok.outcome).toBe('end')
    expect(ok.bytes()).toBe(10)

    const over = recordingSink()
    const pastLimit = new BodyMeter(10, over.sink, undefined, false)
    pastLimit.push(Buffer.alloc(10))
    expect(pastLimit.push(Buffer.alloc(1))).toBe(false)
    const error = await over.outcome
    expect(error).toBeInstanceOf(RequestTooLargeError)
    expect(error).toMatchObject({ code: 'ERR_HTTP_BODY_TOO_LARGE', maxSize: 10 })
    // The chunk that passed the limit is never handed on.
    expect(over.bytes()).toBe(10)
    expect(pastLimit.done).toBe(true)
  })

  test('after failing it takes nothing more, and fails only once', async () => {
    const rec = recordingSink()
    const fail = vi.spyOn(rec.sink, 'fail')
    const meter = new BodyMeter(4, rec.sink, undefined, false)
    meter.push(Buffer.alloc(5))
    expect(meter.push(Buffer.alloc(1))).toBe(false)
    meter.end()
    meter.fail(new BodyTimeoutError())
    expect(fail).toHaveBeenCalledTimes(1)
    expect(rec.bytes()).toBe(0)
  })

  test('bytes already held by the consumer count against the limit', async () => {
    const rec = recordingSink()
    const meter = new BodyMeter(10, rec.sink, undefined, false)
    expect(meter.count(8)).toBe(true)
    expect(meter.push(Buffer.alloc(3))).toBe(false)
    expect(await rec.outcome).toBeInstanceOf(RequestTooLargeError)
  })

  test('the body timeout fails with a 408 error once, after exactly bodyTimeoutMs', () => {
    vi.useFakeTimers()
    const rec = recordingSink()
    const fail = vi.spyOn(rec.sink, 'fail')
    new BodyMeter(10, rec.sink, undefined, 1000).push(Buffer.alloc(1))
    vi.advanceTimersByTime(999)
    expect(fail).not.toHaveBeenCalled()
    vi.advanceTimersByTime(1)
    expect(fail).toHaveBeenCalledTimes(1)
    expect(fail.mock.calls[0]?.[0]).toBeInstanceOf(BodyTimeoutError)
  })

  test('a body that ends in time, or is disposed of, never times out', () => {
    vi.useFakeTimers()
    const ended = recordingSink()
    const endedFail = vi.spyOn(ended.sink, 'fail')
    new BodyMeter(10, ended.sink, undefined, 1000).end()
    const disposed = recordingSink()
    const disposedFail = vi.spyOn(disposed.sink, 'fail')
    new BodyMeter(10, disposed.sink, undefined, 1000).dispose()
    vi.advanceTimersByTime(10_000)
    expect(endedFail).not.toHaveBeenCalled()
    expect(disposedFail).not.toHaveBeenCalled()
  })

  test('an inflate bomb is stopped while inflating, before much more than the limit is produced', async () => {
    const limit = 64 * 1024
    const bomb = gzipSync(Buffer.alloc(16 * 1024 * 1024))
    expect(bomb.length).toBeLessThan(limit)
    const rec = recordingSink()
    const meter = new BodyMeter(limit, rec.sink, createInflater('gzip'), false)
    meter.push(bomb)
    meter.end()
    const error = await within(rec.outcome, 5000, 'the meter to stop the bomb')
    expect(error).toBeInstanceOf(RequestTooLargeError)
    // Never more than the limit is handed on; zlib works in 16 KiB pieces.
    expect(rec.bytes()).toBeLessThanOrEqual(limit)
    expect(meter.decodedBytes).toBeLessThanOrEqual(limit + 64 * 1024)
  })

  test('a corrupt compressed body fails with a 400 error', async () => {
    const rec = recordingSink()
    const inflater = createInflater('gzip')
    const meter = new BodyMeter(1024, rec.sink, inflater, false)
    meter.push(Buffer.from('this is not gzip at all'))
    meter.end()
    const error = await within(rec.outcome, 5000, 'the meter to reject the body')
    expect(error).toBeInstanceOf(InvalidCompressedBodyError)
    expect(error).toMatchObject({ code: 'ERR_HTTP_BAD_REQUEST', statusCode: 400 })
  })

  test.each([
    ['one coding', () => createInflater('gzip'), gzipSync],
    [
      'two codings',
      () => createDecoder(['br', 'gzip'], 1024 * 1024),
      (b: Buffer) => brotliCompressSync(gzipSync(b)),
    ],
  ] as const)(
    'when the decoder (%s) is full it asks for a pause, then reports the drain so the wire resumes',
    async (_name, decoder, encode) => {
      const body = randomBytes(256 * 1024)
      const rec = recordingSink()
      const inflater = decoder()
      const meter = new BodyMeter(1024 * 1024, rec.sink, inflater, false)
      expect(meter.push(encode(body))).toBe(false)
      await within(
        new Promise<void>((resolve) => rec.drained.mockImplementation(() => resolve())),
        5000,
        'the inflater to drain',
      )
      meter.end()
      expect(await within(rec.outcome, 5000, 'the body to end')).toBe('end')
      expect(Buffer.concat(rec.chunks).equals(body)).toBe(true)
    },
  )
})

describe('decodingFor', () => {
  const inflating = resolveBodyLimit({})

  test('by default gzip, deflate and br are decoded, stacked codings in reverse order', () => {
    expect(decodingFor(inflating, 'gzip')).toEqual(['gzip'])
    expect(decodingFor(inflating, 'gzip, br')).toEqual(['br', 'gzip'])
    expect(decodingFor(inflating, ['gzip', 'deflate'])).toEqual(['deflate', 'gzip'])
  })

  test.each([undefined, '', 'identity', 'IDENTITY', ' , identity'])(
    '%j is an identity body',
    (header) => {
      expect(decodingFor(inflating, header)).toEqual([])
    },
  )

  test.each([['zstd'], ['compress'], ['gzip, zstd'], [['gzip', 'gzip', 'gzip', 'gzip', 'br']]])(
    '%j is refused with a 415 by default',
    (header) => {
      const result = decodingFor(inflating, header)
      expect(result).toBeInstanceOf(UnsupportedEncodingError)
      expect(result).toMatchObject({ code: 'ERR_HTTP_UNSUPPORTED_ENCODING', statusCode: 415 })
    },
  )

  test('with inflate off, every coding is refused; an identity body is not', () => {
    const off = resolveBodyLimit({ inflate: false })
    expect(decodingFor(off, 'gzip')).toBeInstanceOf(UnsupportedEncodingError)
    expect(decodingFor(off, 'zstd')).toBeInstanceOf(UnsupportedEncodingError)
    expect(decodingFor(off, 'identity')).toEqual([])
  })

  test('with inflate off and passEncoded, every coding is handed on as is, unknown ones too', () => {
    const pass = resolveBodyLimit({ inflate: false, passEncoded: true })
    expect(decodingFor(pass, 'gzip')).toEqual([])
    expect(decodingFor(pass, 'zstd')).toEqual([])
  })

  test('passEncoded without inflate: false is ERR_CONFIG_INVALID naming it', () => {
    expect(() => resolveBodyLimit({ passEncoded: true })).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG_INVALID',
        message: expect.stringContaining('`passEncoded`'),
      }),
    )
  })
})
