/**
 * Regression: `RequestTooLargeError`'s message was a bare "Request body too
 * large" (the operator reading the log could not tell the limit nor how big
 * the body was), and `humanReadableSize` printed bytes as `"500 B"` where the
 * specification's forms are `"1.0 MB"`, `"500.0 KB"`, `"500 bytes"`. The 413
 * body keeps exactly the seed's three fields.
 */
import { describe, expect, test } from 'vitest'
import { humanReadableSize, RequestTooLargeError, toHttpAnswer } from '../../src/http/index.js'

describe('humanReadableSize follows the specification', () => {
  test.each([
    [500, '500 bytes'],
    [512_000, '500.0 KB'],
    [1_048_576, '1.0 MB'],
  ])('%i is %j', (bytes, human) => {
    expect(humanReadableSize(bytes)).toBe(human)
  })

  test('a size that rounds up to 1024 of a unit is written in the next unit', () => {
    expect(humanReadableSize(1_048_575)).toBe('1.0 MB')
  })
})

describe('RequestTooLargeError', () => {
  test('names the limit in bytes and human form, and the actual size when it is known', () => {
    const err = new RequestTooLargeError(1_048_576, 5_242_880)
    expect(err.message).toContain('1048576 bytes')
    expect(err.message).toContain('1.0 MB')
    expect(err.message).toContain('5242880 bytes')
    expect(err.message).toContain('5.0 MB')
    expect(err.actualSize).toBe(5_242_880)
    expect(err.message).toBe(
      'Request body of 5242880 bytes (5.0 MB) exceeds the limit of 1048576 bytes (1.0 MB)',
    )
  })

  test('names the limit alone when the size is not known', () => {
    const err = new RequestTooLargeError(1000)
    expect(err.message).toBe('Request body exceeds the limit of 1000 bytes')
    expect(err.actualSize).toBeUndefined()
  })

  test('the 413 body is exactly {detail, max_size, max_size_human}', () => {
    const answer = toHttpAnswer(new RequestTooLargeError(512_000, 600_000))
    expect(answer.statusCode).toBe(413)
    expect(JSON.parse(answer.body)).toEqual({
      detail: 'Request body too large',
      max_size: 512_000,
      max_size_human: '500.0 KB',
    })
  })
})
