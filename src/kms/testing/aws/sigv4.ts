/**
 * AWS Signature Version 4 (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html),
 * checked the way AWS KMS checks it: the `Authorization` header parsed, the
 * credential scope and the signature's age checked, the signature computed
 * over the body actually received and compared in constant time. Each
 * failure is the error AWS sends for it.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { header, headerValues, WireError } from './wire.js'

/** Credentials the emulator accepts. */
export interface AwsEmulatorCredentials {
  readonly accessKeyId: string
  readonly secretAccessKey: string
  /** When set, requests must carry it as `X-Amz-Security-Token`. */
  readonly sessionToken?: string
}

/** What a request is checked against. */
export interface SigV4Policy {
  /** Accepted credentials by access key id. */
  readonly credentials: ReadonlyMap<string, AwsEmulatorCredentials>
  /** The region requests must be scoped to. */
  readonly region: string
  /** Largest difference between `X-Amz-Date` and the service's time. */
  readonly maxSkewMs: number
}

const SIGNATURE_MISMATCH =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.'

/**
 * SigV4 as AWS checks it; returns the access key id, or throws the error AWS would send.
 *
 * @example
 * ```ts
 * const accessKeyId = verifySigV4(req, body, now(), { credentials, region: 'us-east-1', maxSkewMs: 300_000 })
 * ```
 */
export function verifySigV4(
  req: IncomingMessage,
  body: Buffer,
  serverTime: number,
  policy: SigV4Policy,
): string {
  const { credentials, region, maxSkewMs } = policy
  const authorization = header(req, 'authorization')
  if (authorization === undefined) {
    throw new WireError('MissingAuthenticationTokenException', 'Missing Authentication Token')
  }
  const parsed = parseAuthorization(authorization)
  if (parsed === undefined) {
    throw new WireError(
      'IncompleteSignatureException',
      `Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters.`,
    )
  }
  const cred = credentials.get(parsed.accessKeyId)
  const token = header(req, 'x-amz-security-token')
  if (cred === undefined || !sameToken(cred.sessionToken, token)) {
    throw new WireError(
      'UnrecognizedClientException',
      'The security token included in the request is invalid.',
    )
  }
  const amzDate = header(req, 'x-amz-date')
  if (amzDate === undefined || !/^\d{8}T\d{6}Z$/.test(amzDate)) {
    throw new WireError(
      'IncompleteSignatureException',
      "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    )
  }
  const { date, region: scopeRegion, service } = parsed.scope
  if (date !== amzDate.slice(0, 8)) {
    throw new WireError(
      'InvalidSignatureException',
      'Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.',
    )
  }
  if (scopeRegion !== region) {
    throw new WireError(
      'InvalidSignatureException',
      `Credential should be scoped to a valid region.`,
    )
  }
  if (service !== 'kms') {
    throw new WireError(
      'InvalidSignatureException',
      "Credential should be scoped to correct service: 'kms'.",
    )
  }
  if (!parsed.signedHeaders.includes('host') || !parsed.signedHeaders.includes('x-amz-date')) {
    throw new WireError('InvalidSignatureException', SIGNATURE_MISMATCH)
  }
  const at = Date.UTC(
    Number(amzDate.slice(0, 4)),
    Number(amzDate.slice(4, 6)) - 1,
    Number(amzDate.slice(6, 8)),
    Number(amzDate.slice(9, 11)),
    Number(amzDate.slice(11, 13)),
    Number(amzDate.slice(13, 15)),
  )
  // KMS's own wording; the SDK recognises "Signature expired" and corrects its clock from `Date`.
  const minutes = `${Math.round(maxSkewMs / 60_000)} min.`
  if (serverTime - at > maxSkewMs) {
    throw new WireError(
      'InvalidSignatureException',
      `Signature expired: ${amzDate} is now earlier than ${isoBasic(serverTime - maxSkewMs)} (${isoBasic(serverTime)} - ${minutes})`,
    )
  }
  if (at - serverTime > maxSkewMs) {
    throw new WireError(
      'InvalidSignatureException',
      `Signature not yet current: ${amzDate} is still later than ${isoBasic(serverTime + maxSkewMs)} (${isoBasic(serverTime)} + ${minutes})`,
    )
  }
  const [path = '/', query = ''] = (req.url ?? '/').split('?', 2)
  const expected = computeSigV4Signature({
    method: req.method ?? 'POST',
    path,
    query,
    headers: headerValues(req),
    signedHeaders: parsed.signedHeaders,
    // The hash of the body actually received, never the client's
    // x-amz-content-sha256 claim: a tampered body must not verify.
    payloadHash: createHash('sha256').update(body).digest('hex'),
    amzDate,
    region: scopeRegion,
    service,
    secretAccessKey: cred.secretAccessKey,
  })
  const given = Buffer.from(parsed.signature, 'hex')
  const want = Buffer.from(expected, 'hex')
  if (given.length !== want.length || !timingSafeEqual(given, want)) {
    throw new WireError('InvalidSignatureException', SIGNATURE_MISMATCH)
  }
  return cred.accessKeyId
}

function sameToken(expected: string | undefined, given: string | undefined): boolean {
  if (expected === undefined || given === undefined) return expected === given
  const a = Buffer.from(expected)
  const b = Buffer.from(given)
  return a.length === b.length && timingSafeEqual(a, b)
}

interface ParsedAuthorization {
  readonly accessKeyId: string
  readonly scope: { date: string; region: string; service: string }
  readonly signedHeaders: readonly string[]
  readonly signature: string
}

/** `AWS4-HMAC-SHA256 Credential=<akid>/<date>/<region>/<service>/aws4_request, SignedHeaders=a;b, Signature=<hex>`. */
function parseAuthorization(value: string): ParsedAuthorization | undefined {
  const space = value.indexOf(' ')
  if (space < 0 || value.slice(0, space) !== 'AWS4-HMAC-SHA256') return undefined
  const params = new Map<string, string>()
  for (const part of value.slice(space + 1).split(',')) {
    const eq = part.indexOf('=')
    if (eq > 0) params.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim())
  }
  const credential = params.get('Credential')?.split('/')
  const signedHeaders = params.get('SignedHeaders')
  const signature = params.get('Signature')
  if (credential?.length !== 5 || credential[4] !== 'aws4_request') return undefined
  if (signedHeaders === undefined || !/^[a-z0-9-]+(?:;[a-z0-9-]+)*$/.test(signedHeaders)) {
    return undefined
  }
  if (signature === undefined || !/^[0-9a-f]{64}$/.test(signature)) return undefined
  const [accessKeyId, date, region, service] = credential as [string, string, string, string]
  return {
    accessKeyId,
    scope: { date, region, service },
    signedHeaders: signedHeaders.split(';'),
    signature,
  }
}

/** What {@link computeSigV4Signature} signs. */
export interface SigV4Input {
  readonly method: string
  /** The request path as received (percent-encoded). */
  readonly path: string
  /** The raw query string, without `?`. */
  readonly query: string
  /** Header values by lowercased name. */
  readonly headers: Readonly<Record<string, string>>
  /** Lowercased names of the signed headers, sorted. */
  readonly signedHeaders: readonly string[]
  /** Lowercase hex SHA-256 of the body. */
  readonly payloadHash: string
  /** `YYYYMMDDTHHMMSSZ`. */
  readonly amzDate: string
  readonly region: string
  readonly service: string
  readonly secretAccessKey: string
}

/**
 * The SigV4 signature (lowercase hex) of a request, per AWS's "Create a
 * signed AWS API request": canonical request → string to sign → HMAC chain
 * `AWS4<secret>` → date → region → service → `aws4_request`. Exported for the
 * test vectors; not part of the public API.
 *
 * @example
 * ```ts
 * computeSigV4Signature({ method: 'GET', path: '/', query: '', headers, signedHeaders: ['host', 'x-amz-date'], ... })
 * ```
 */
export function computeSigV4Signature(input: SigV4Input): string {
  const canonicalHeaders = input.signedHeaders
    .map((name) => `${name}:${(input.headers[name] ?? '').trim().replace(/\s+/g, ' ')}\n`)
    .join('')
  const canonicalRequest = [
    input.method.toUpperCase(),
    canonicalPath(input.path),
    canonicalQuery(input.query),
    canonicalHeaders,
    input.signedHeaders.join(';'),
    input.payloadHash,
  ].join('\n')
  const date = input.amzDate.slice(0, 8)
  const scope = `${date}/${input.region}/${input.service}/aws4_request`
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    input.amzDate,
    scope,
    createHash('sha256').update(canonicalRequest, 'utf8').digest('hex'),
  ].join('\n')
  let key: Buffer = hmac(`AWS4${input.secretAccessKey}`, date)
  for (const part of [input.region, input.service, 'aws4_request']) key = hmac(key, part)
  return createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex')
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest()
}

/** RFC 3986 unreserved characters stay, everything else is %XX (uppercase). */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  )
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value)
  } catch {
    return value
  }
}

/**
 * Non-S3 services sign the normalized path with each segment URI-encoded:
 * decode what came over the wire, then encode it the canonical way.
 */
function canonicalPath(path: string): string {
  const segments: string[] = []
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue
    if (segment === '..') segments.pop()
    else segments.push(segment)
  }
  const trailing = path.endsWith('/') && segments.length > 0 ? '/' : ''
  return `/${segments.map((s) => uriEncode(safeDecode(s))).join('/')}${trailing}`
}

/** Parameters sorted by encoded name, then value; each re-encoded the canonical way. */
function canonicalQuery(query: string): string {
  if (query === '') return ''
  return query
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const eq = p.indexOf('=')
      const name = eq < 0 ? p : p.slice(0, eq)
      const value = eq < 0 ? '' : p.slice(eq + 1)
      return [uriEncode(safeDecode(name)), uriEncode(safeDecode(value))] as const
    })
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&')
}

/** `YYYYMMDDTHHMMSSZ`, SigV4's date format. */
function isoBasic(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '')
}
