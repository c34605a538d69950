import { describe, expect, expectTypeOf, it } from 'vitest'
import { RateLimitExceededError, RequestTooLargeError } from '../src/http/index.js'
import {
  ConfigError,
  SECURITY_ERROR_CODES,
  SecurityError,
  type SecurityErrorCode,
} from '../src/index.js'

describe('SecurityError', () => {
  it('carries a stable code, the class name and the cause', () => {
    const cause = { service: 'vault', status: 503 }
    const err = new SecurityError('failed', { cause })
    expect(err).toBeInstanceOf(Error)
    expect(err.code).toBe('ERR_SECURITY')
    expect(err.name).toBe('SecurityError')
    expect(err.cause).toBe(cause)
    expect(err.statusCode).toBeUndefined()
  })

  it('subclasses set code (static and instance), name and statusCode', () => {
    const err = new RequestTooLargeError(10)
    expect(err).toBeInstanceOf(SecurityError)
    expect(err.code).toBe('ERR_HTTP_BODY_TOO_LARGE')
    expect(RequestTooLargeError.code).toBe('ERR_HTTP_BODY_TOO_LARGE')
    expect(err.name).toBe('RequestTooLargeError')
    expect(err.statusCode).toBe(413)
    expect(err.stack).toContain('RequestTooLargeError')
  })

  it('every code is ERR_<AREA>_<REASON> and unique', () => {
    for (const code of SECURITY_ERROR_CODES) expect(code).toMatch(/^ERR_[A-Z0-9]+(_[A-Z0-9]+)*$/)
    expect(new Set(SECURITY_ERROR_CODES).size).toBe(SECURITY_ERROR_CODES.length)
  })

  it('codes form a union callers can switch on', () => {
    expectTypeOf<SecurityErrorCode>().toEqualTypeOf<(typeof SECURITY_ERROR_CODES)[number]>()
    expectTypeOf(
      new RateLimitExceededError({
        limit: 1,
        remaining: 0,
        resetMs: 0,
        retryAfterMs: 0,
        allowed: false,
        policies: [],
      }).code,
    ).toEqualTypeOf<SecurityErrorCode>()
  })
})

describe('ConfigError', () => {
  it('names the field and never echoes the value given', () => {
    const err = new ConfigError('rateLimit', [
      { path: ['policies', 1, 'max'], message: 'Too small: expected number to be >=1' },
    ])
    expect(err.code).toBe('ERR_CONFIG_INVALID')
    expect(err.message).toBe(
      'Invalid rateLimit option `policies[1].max`: Too small: expected number to be >=1',
    )
    expect(err.issues).toEqual([
      { field: 'policies[1].max', problem: 'Too small: expected number to be >=1' },
    ])
  })

  it('reports unknown keys at their own path, and counts further problems', () => {
    const err = new ConfigError('bodyLimit', [
      { path: [], message: 'Unrecognized key', keys: ['maxsize'] },
      { path: ['maxSize'], message: 'Invalid input' },
    ])
    expect(err.message).toBe('Invalid bodyLimit option `maxsize`: unknown option (and 1 more)')
  })
})
