/**
 * `AnySecurityError` narrows on `code`: each `case` of a `switch (err.code)`
 * leaves exactly the class that carries that code, and every code but
 * `ERR_INTERNAL` (the code of a masked answer only) has one.
 */
import { describe, expectTypeOf, it } from 'vitest'
import type { ApiKeyRejectedError, ApiKeyRevokedError } from '../src/api-keys/index.js'
import type { GraphqlRejectedError } from '../src/graphql/index.js'
import type { RateLimitExceededError, RateLimitInfo } from '../src/http/index.js'
import {
  type AnySecurityError,
  type ConfigError,
  type ConfigIssue,
  SecurityError,
  type SecurityErrorCode,
} from '../src/index.js'
import type { KeyNotFoundError, KmsError } from '../src/kms/index.js'
import type { BatchTooLargeError, TokenExpiredError } from '../src/profiles/index.js'

declare const err: AnySecurityError

describe('AnySecurityError', () => {
  it('narrows to the class in each case of a switch on code', () => {
    switch (err.code) {
      case 'ERR_HTTP_RATE_LIMITED':
        expectTypeOf(err).toEqualTypeOf<
          RateLimitExceededError & { readonly code: 'ERR_HTTP_RATE_LIMITED' }
        >()
        expectTypeOf(err.info).toEqualTypeOf<RateLimitInfo>()
        break
      case 'ERR_CONFIG_INVALID':
        expectTypeOf(err).toExtend<ConfigError>()
        expectTypeOf(err.issues).toEqualTypeOf<readonly ConfigIssue[]>()
        break
      case 'ERR_KMS_ERROR':
        expectTypeOf(err).toEqualTypeOf<KmsError & { readonly code: 'ERR_KMS_ERROR' }>()
        break
      case 'ERR_KMS_KEY_NOT_FOUND':
        expectTypeOf(err).toEqualTypeOf<
          KeyNotFoundError & { readonly code: 'ERR_KMS_KEY_NOT_FOUND' }
        >()
        break
      case 'ERR_AUTH_TOKEN_EXPIRED':
        expectTypeOf(err).toEqualTypeOf<
          TokenExpiredError & { readonly code: 'ERR_AUTH_TOKEN_EXPIRED' }
        >()
        expectTypeOf(err.challenge).toEqualTypeOf<string>()
        break
      case 'ERR_API_KEY_INVALID':
        expectTypeOf(err).toEqualTypeOf<
          ApiKeyRejectedError & { readonly code: 'ERR_API_KEY_INVALID' }
        >()
        break
      case 'ERR_API_KEY_REVOKED':
        expectTypeOf(err).toEqualTypeOf<
          ApiKeyRevokedError & { readonly code: 'ERR_API_KEY_REVOKED' }
        >()
        break
      case 'ERR_GRAPHQL_BATCH_TOO_LARGE':
        // The profile's batch gate and the GraphQL guards both refuse batches.
        expectTypeOf(err).toEqualTypeOf<
          | (BatchTooLargeError & { readonly code: 'ERR_GRAPHQL_BATCH_TOO_LARGE' })
          | (GraphqlRejectedError & { readonly code: 'ERR_GRAPHQL_BATCH_TOO_LARGE' })
        >()
        break
      case 'ERR_GRAPHQL_DEPTH_LIMIT':
        expectTypeOf(err).toEqualTypeOf<
          GraphqlRejectedError & { readonly code: 'ERR_GRAPHQL_DEPTH_LIMIT' }
        >()
        expectTypeOf(err.errors).toExtend<readonly unknown[]>()
        break
    }
  })

  it('has a class for every code but ERR_INTERNAL, and no code outside SecurityErrorCode', () => {
    expectTypeOf<
      Exclude<SecurityErrorCode, AnySecurityError['code']>
    >().toEqualTypeOf<'ERR_INTERNAL'>()
    expectTypeOf<AnySecurityError['code']>().toExtend<SecurityErrorCode>()
  })

  it('is a SecurityError, and a SecurityError is not narrowed without a cast', () => {
    expectTypeOf<AnySecurityError>().toExtend<SecurityError>()
    expectTypeOf(new SecurityError('x').code).toEqualTypeOf<SecurityErrorCode>()
  })

  it('leaves the other members out of a case', () => {
    if (err.code === 'ERR_HTTP_RATE_LIMITED') {
      expectTypeOf(err).not.toExtend<KmsError>()
      expectTypeOf(err).toExtend<RateLimitExceededError>()
    }
  })
})
