/**
 * Reading the fields of Cloud KMS answers as the client returns them:
 * protobufjs gives int64 as number, string, bigint or `Long`, bytes as
 * `Uint8Array` or base64, and enums as names or numbers (resources.proto).
 */
import type { KeyState } from '../../models.js'
import type { GcpBytes, GcpInt64, GcpSecondsAndNanos } from './client.js'

/** CryptoKeyVersionState by number (resources.proto), for clients that return numeric enums. */
const VERSION_STATES: Readonly<Record<number, string>> = {
  0: 'CRYPTO_KEY_VERSION_STATE_UNSPECIFIED',
  1: 'ENABLED',
  2: 'DISABLED',
  3: 'DESTROYED',
  4: 'DESTROY_SCHEDULED',
  5: 'PENDING_GENERATION',
  6: 'PENDING_IMPORT',
  7: 'IMPORT_FAILED',
  8: 'GENERATION_FAILED',
  9: 'PENDING_EXTERNAL_DESTRUCTION',
  10: 'EXTERNAL_DESTRUCTION_FAILED',
}

/** An int64 field as a number (the CRC32C values are below 2^32, so exact). */
export function int64(v: GcpInt64 | null | undefined): number | undefined {
  if (v === null || v === undefined) return undefined
  const n = typeof v === 'number' ? v : Number(typeof v === 'bigint' ? v : v.toString())
  return Number.isSafeInteger(n) ? n : undefined
}

/** A bytes field (protobufjs treats a string for one as base64). */
export function bytesOf(v: GcpBytes | null | undefined): Uint8Array {
  if (v === null || v === undefined) return new Uint8Array(0)
  return typeof v === 'string' ? Buffer.from(v, 'base64') : v
}

/** A `Timestamp` as a Date. */
export function dateOf(t: GcpSecondsAndNanos | null | undefined): Date | undefined {
  const seconds = int64(t?.seconds)
  if (seconds === undefined) return undefined
  return new Date(seconds * 1000 + Math.floor((t?.nanos ?? 0) / 1e6))
}

/** A `Duration` (or `Timestamp`) in seconds. */
export function secondsOf(d: GcpSecondsAndNanos | null | undefined): number | undefined {
  const seconds = int64(d?.seconds)
  return seconds === undefined ? undefined : seconds + (d?.nanos ?? 0) / 1e9
}

/** A `CryptoKeyVersionState` by name, whichever way the client sent it. */
export function stateName(state: string | number | null | undefined): string | undefined {
  return typeof state === 'number' ? VERSION_STATES[state] : (state ?? undefined)
}

/** ProtectionLevel by number (resources.proto). */
const PROTECTION_LEVELS: Readonly<Record<number, string>> = {
  0: 'PROTECTION_LEVEL_UNSPECIFIED',
  1: 'SOFTWARE',
  2: 'HSM',
  3: 'EXTERNAL',
  4: 'EXTERNAL_VPC',
}

/** A `ProtectionLevel` by name, whichever way the client sent it. */
export function protectionLevel(level: string | number | null | undefined): string | undefined {
  return typeof level === 'number' ? PROTECTION_LEVELS[level] : (level ?? undefined)
}

/** Cloud KMS version states on our four. A version not yet usable counts as disabled. */
export function keyState(state: string | undefined): KeyState {
  switch (state) {
    case 'ENABLED':
      return 'enabled'
    case 'DESTROY_SCHEDULED':
    case 'PENDING_EXTERNAL_DESTRUCTION':
      return 'pending_deletion'
    case 'DESTROYED':
    case 'EXTERNAL_DESTRUCTION_FAILED':
      return 'destroyed'
    default:
      return 'disabled'
  }
}
