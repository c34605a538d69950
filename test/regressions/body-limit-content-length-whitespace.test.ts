/**
 * Regression: `declaredLength` trimmed the value first, so `" 12"` declared
 * 12 bytes. RFC 9110 §8.6 allows digits only, and Node's parser has already
 * removed the whitespace a real field value may carry: whitespace left in the
 * value came from elsewhere and is refused like any other non-digit.
 */
import { inject } from 'light-my-request'
import { expect, test } from 'vitest'
import { declaredLength } from '../../src/http/body-limit/core.js'
import { bodyLimitMiddleware } from '../../src/http/index.js'

test.each([' 12', '12 ', '\t12', '12\r'])('Content-Length %j is invalid', async (value) => {
  expect(declaredLength(value)).toEqual({ kind: 'invalid' })
  const mw = bodyLimitMiddleware()
  const res = await inject((req, res) => mw(req, res, () => res.end('passed')), {
    method: 'POST',
    url: '/',
    headers: { 'content-length': value },
    payload: 'a'.repeat(12),
  })
  expect(res.statusCode).toBe(400)
  expect(res.json()).toEqual({
    detail: 'Invalid Content-Length',
    code: 'ERR_HTTP_INVALID_CONTENT_LENGTH',
  })
})
