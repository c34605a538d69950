import { describe, expect, it } from 'vitest'
import {
  RateLimitUnavailableError,
  RequestTooLargeError,
  toHttpAnswer,
} from '../../src/http/index.js'
import { SecurityError } from '../../src/index.js'

describe('toHttpAnswer (the one error-to-reply function)', () => {
  it('renders the seed 413 shape exactly', () => {
    const a = toHttpAnswer(new RequestTooLargeError(524_288))
    expect(a.statusCode).toBe(413)
    expect(a.headers).toMatchObject({ 'content-type': 'application/json', connection: 'close' })
    expect(JSON.parse(a.body)).toEqual({
      detail: 'Request body too large',
      max_size: 524_288,
      max_size_human: '512.0 KB',
    })
  })

  it('masks an unknown failure as a 500 that says nothing about the cause', () => {
    const a = toHttpAnswer(new Error('password=hunter2 at db.internal:5432'), {
      requestId: 'req-7',
    })
    expect(a.statusCode).toBe(500)
    expect(JSON.parse(a.body)).toEqual({
      detail: 'Internal Server Error',
      code: 'ERR_INTERNAL',
      requestId: 'req-7',
    })
    expect(a.body).not.toContain('hunter2')
  })

  it('keeps a foreign 4xx error’s message and code, with our shape', () => {
    const err = Object.assign(new Error('body must have required property "name"'), {
      statusCode: 400,
      code: 'FST_ERR_VALIDATION',
    })
    expect(JSON.parse(toHttpAnswer(err).body)).toEqual({
      detail: 'body must have required property "name"',
      code: 'FST_ERR_VALIDATION',
    })
  })

  it('answers our own 5xx on purpose (a 503 is an answer, not a crash)', () => {
    const a = toHttpAnswer(new RateLimitUnavailableError())
    expect(a.statusCode).toBe(503)
    expect(JSON.parse(a.body).code).toBe('ERR_HTTP_RATE_LIMIT_UNAVAILABLE')
  })

  it('in minimal mode gives only a generic message, the code and the request id', () => {
    const a = toHttpAnswer(new RequestTooLargeError(10), {
      errorDetail: 'minimal',
      requestId: 'r1',
    })
    expect(a.statusCode).toBe(413)
    expect(JSON.parse(a.body)).toEqual({
      detail: 'Request failed',
      code: 'ERR_HTTP_BODY_TOO_LARGE',
      requestId: 'r1',
    })
    expect(a.headers.connection).toBe('close')
  })

  it('treats a SecurityError without a status as an internal failure', () => {
    expect(toHttpAnswer(new SecurityError('x')).statusCode).toBe(500)
  })
})
