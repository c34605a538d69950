/**
 * Request fields read the way Vault's framework reads them (sdk/framework
 * field types, Go's base64 and duration syntax), each failure worded as
 * Vault words it.
 */
import { bad } from './wire.js'

/** Fields each endpoint knows; others are ignored with Vault's warning. */
const KNOWN_FIELDS: Record<string, readonly string[]> = {
  encrypt: [
    'plaintext',
    'context',
    'nonce',
    'key_version',
    'type',
    'convergent_encryption',
    'batch_input',
    'associated_data',
    'partial_failure_response_code',
  ],
  decrypt: [
    'ciphertext',
    'context',
    'nonce',
    'batch_input',
    'associated_data',
    'partial_failure_response_code',
  ],
  datakey: ['bits', 'context', 'nonce', 'key_version'],
  createKey: [
    'type',
    'derived',
    'convergent_encryption',
    'exportable',
    'allow_plaintext_backup',
    'context',
    'auto_rotate_period',
    'key_size',
  ],
  rewrap: ['ciphertext', 'context', 'nonce', 'key_version', 'batch_input'],
  rotate: ['managed_key_name', 'managed_key_id'],
  configKey: [
    'min_decryption_version',
    'min_encryption_version',
    'deletion_allowed',
    'exportable',
    'allow_plaintext_backup',
    'auto_rotate_period',
  ],
  readKey: [],
}

export function ignoredFields(operation: string, body: Record<string, unknown>): string[] {
  const known = KNOWN_FIELDS[operation] ?? []
  const unknown = Object.keys(body)
    .filter((f) => !known.includes(f))
    .sort()
  return unknown.length === 0
    ? []
    : [`Endpoint ignored these unrecognized parameters: [${unknown.join(' ')}]`]
}

export function stringOr(value: unknown): string {
  return typeof value === 'string' ? value : ''
}

export function normalizeNamespace(namespace: string | undefined): string {
  return (namespace ?? '').replace(/^\/+|\/+$/g, '')
}

export function stringField(body: Record<string, unknown>, field: string): string {
  const value = body[field]
  if (value === undefined || value === null) return ''
  if (typeof value !== 'string')
    throw bad(`error converting input ${JSON.stringify(value)} for field "${field}"`)
  return value
}

export function intField(body: Record<string, unknown>, field: string): number | undefined {
  const value = body[field]
  if (value === undefined || value === null) return undefined
  const n = typeof value === 'string' && /^-?[0-9]+$/.test(value) ? Number(value) : value
  if (typeof n !== 'number' || !Number.isInteger(n))
    throw bad(`error converting input ${JSON.stringify(value)} for field "${field}"`)
  return n
}

export function boolField(body: Record<string, unknown>, field: string): boolean | undefined {
  const value = body[field]
  if (value === undefined || value === null) return undefined
  if (value === true || value === 'true' || value === '1' || value === 1) return true
  if (value === false || value === 'false' || value === '0' || value === 0) return false
  throw bad(`error converting input ${JSON.stringify(value)} for field "${field}"`)
}

const GO_UNITS: Record<string, number> = {
  ns: 1e-9,
  us: 1e-6,
  µs: 1e-6,
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
}

/** Vault's `TypeDurationSecond`: an integer (seconds) or a Go duration string, in whole seconds. */
export function duration(value: unknown): number {
  const fail = () =>
    bad(`error converting input ${JSON.stringify(value)} for field "auto_rotate_period"`)
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0) throw fail()
    return value
  }
  if (typeof value !== 'string') throw fail()
  if (/^[0-9]+$/.test(value)) return Number(value)
  const parts = value.match(/([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/g)
  if (parts === null || parts.join('') !== value) throw fail()
  let seconds = 0
  for (const part of parts) {
    const m = /^([0-9.]+)(.+)$/.exec(part)!
    seconds += Number(m[1]) * GO_UNITS[m[2]!]!
  }
  return Math.floor(seconds)
}

/**
 * Go's `base64.StdEncoding.DecodeString`: the standard alphabet, padding
 * required, CR and LF skipped, anything else an error naming the offset
 * (Node's decoder silently skips bad characters, which would hide tampering).
 */
export function goBase64(text: string): Buffer {
  const s = text.replace(/[\r\n]/g, '')
  const invalid = s.search(/[^A-Za-z0-9+/=]/)
  if (invalid >= 0) throw bad(`illegal base64 data at input byte ${invalid}`)
  const pad = s.indexOf('=')
  if (pad >= 0 && (!/^=={0,1}$/.test(s.slice(pad)) || s.length % 4 !== 0))
    throw bad(`illegal base64 data at input byte ${pad}`)
  if (s.length % 4 !== 0) throw bad(`illegal base64 data at input byte ${s.length}`)
  return Buffer.from(s, 'base64')
}

/** `associated_data` as GCM additional data; every type the emulator has is AEAD, so all take it. */
export function associatedData(body: Record<string, unknown>): Buffer | undefined {
  if (body.associated_data === undefined) return undefined
  return goBase64(stringField(body, 'associated_data'))
}
