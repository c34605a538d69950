/**
 * Cloud KMS failures on the package's error taxonomy: gRPC status codes
 * (grpc/status.h) to typed `KmsError`s, with the wait a `google.rpc.RetryInfo`
 * asks for (https://cloud.google.com/apis/design/errors#error_details). Causes
 * keep the status only, never a message that could echo request data.
 */
import {
  KeyDisabledError,
  KeyNotFoundError,
  KmsAccessDeniedError,
  KmsError,
  ProviderConnectionError,
  type SanitizedCause,
} from '../../errors.js'
import type { GcpSecondsAndNanos } from './client.js'
import { CHECKSUM_REJECTED, INTEGRITY } from './integrity.js'
import { secondsOf } from './messages.js'

/** gRPC status codes by number (grpc/status.h). */
const STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const

/** A thrown value's gRPC status number, when it has one. */
export function grpcStatus(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'number' && Number.isInteger(code) && code >= 0 && code <= 16
    ? code
    : undefined
}

/**
 * The wait a `google.rpc.RetryInfo` in the error's status details asks for
 * (google-gax decodes `grpc-status-details-bin` into `statusDetails`), in ms.
 */
function retryDelayOf(error: unknown): number | undefined {
  const details = (error as { statusDetails?: unknown } | null)?.statusDetails
  if (!Array.isArray(details)) return undefined
  for (const d of details) {
    const delay = (d as { retryDelay?: GcpSecondsAndNanos | null } | null)?.retryDelay
    if (delay === null || delay === undefined) continue
    const seconds = secondsOf(delay)
    if (seconds !== undefined && seconds >= 0) return Math.ceil(seconds * 1000)
  }
  return undefined
}

/** A key id that cannot name a CryptoKey. Not retried, reported as is. */
export class InvalidGcpKeyIdError extends KmsError {}

/** A request over the key's size limit, refused before it is sent. Not retried, reported as is. */
export class GcpRequestTooLargeError extends KmsError {}

/** A gRPC status error as the `KmsError` the base provider classifies and retries on. */
export function grpcErrorToKmsError(error: unknown, status: number, provider: string): KmsError {
  const code = STATUS_NAMES[status]!
  const cause: SanitizedCause = { service: 'gcp', code, status }
  const retryAfterMs = retryDelayOf(error)
  const options = {
    provider,
    cause,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  }
  switch (code) {
    case 'NOT_FOUND':
      return new KeyNotFoundError(options)
    case 'FAILED_PRECONDITION':
      return new KeyDisabledError(options)
    case 'PERMISSION_DENIED':
    case 'UNAUTHENTICATED':
      return new KmsAccessDeniedError(options)
    case 'DEADLINE_EXCEEDED':
      return new ProviderConnectionError('timeout', options)
    case 'UNAVAILABLE':
    case 'ABORTED':
    case 'INTERNAL':
      return new ProviderConnectionError('unavailable', options)
    case 'RESOURCE_EXHAUSTED':
      return new ProviderConnectionError('throttled', options)
    case 'INVALID_ARGUMENT': {
      // Google's guidance for a refused request checksum: we computed it
      // ourselves, so the request was corrupted in transit; retry a few times.
      const details = (error as { details?: unknown }).details
      if (typeof details === 'string' && CHECKSUM_REJECTED.test(details))
        return new KmsError(INTEGRITY, { ...options, retryable: true })
      break
    }
  }
  return new KmsError('Cloud KMS call failed', options)
}
