/**
 * The transport gates: is this request on TLS (at or above the profile's
 * minimum), and did the client present a certificate our CA signed? Either
 * the socket says so, or a proxy we were told to trust does.
 */
import type { TLSSocket } from 'node:tls'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { ConfigError } from '../errors.js'

/**
 * The enforcer's former proxy setting, kept for compatibility: Fastify's own
 * `trustProxy` is the one setting (see {@link checkTrustProxyAgrees}).
 */
export type TrustProxy = boolean | readonly string[] | ((ip: string) => boolean)

/** The header a TLS-terminating proxy sets after it verified a client certificate. */
export interface ClientCertHeader {
  /** e.g. `x-ssl-client-verify` (nginx). Lower-case. */
  readonly name: string
  /** The value that means verified, e.g. `SUCCESS`. */
  readonly value: string
}

export type PeerTrust = (request: FastifyRequest) => boolean

/** The `ips` getter of each Fastify request class (one per encapsulation context). */
const ipsGetters = new WeakMap<object, ((this: unknown) => unknown) | null>()

function ipsGetterOf(request: FastifyRequest): ((this: unknown) => unknown) | null {
  const proto = Object.getPrototypeOf(request) as object
  let getter = ipsGetters.get(proto)
  if (getter === undefined) {
    getter = null
    for (let o: object | null = proto; o !== null; o = Object.getPrototypeOf(o)) {
      const d = Object.getOwnPropertyDescriptor(o, 'ips')
      if (d !== undefined) {
        getter = typeof d.get === 'function' ? (d.get as (this: unknown) => unknown) : null
        break
      }
    }
    ipsGetters.set(proto, getter)
  }
  return getter
}

/** A documentation address (RFC 5737): only its presence in the chain is looked at. */
const PROBE_ADDRESS = '192.0.2.1'

/**
 * Whether Fastify's `trustProxy` trusts the socket's peer, asked of Fastify
 * itself: its `request.ips` (proxy-addr under Fastify's setting) lists a
 * forwarded address only when the hop before it is trusted, so `ips` of a
 * stand-in request from the same peer, forwarding {@link PROBE_ADDRESS},
 * has two entries exactly when the peer is trusted. Without `trustProxy`
 * Fastify has no `ips` at all: nobody is trusted.
 */
export const fastifyPeerTrust: PeerTrust = (request) => {
  const peer = request.raw.socket?.remoteAddress
  if (peer === undefined) return false
  const getter = ipsGetterOf(request)
  if (getter === null) return false
  const socket = { remoteAddress: peer }
  const raw = { socket, connection: socket, headers: { 'x-forwarded-for': PROBE_ADDRESS } }
  const ips = getter.call({ raw, headers: raw.headers, socket })
  return Array.isArray(ips) && ips.length > 1
}

/** Where Fastify keeps the options it was built with (no public getter has `trustProxy`). */
function fastifyTrustProxyOf(app: FastifyInstance): { known: boolean; value: unknown } {
  for (let o: object | null = app; o !== null; o = Object.getPrototypeOf(o)) {
    const key = Object.getOwnPropertySymbols(o).find((s) => s.description === 'fastify.options')
    if (key !== undefined) {
      const options = (o as Record<symbol, { trustProxy?: unknown } | undefined>)[key]
      return { known: true, value: options?.trustProxy }
    }
  }
  return { known: false, value: undefined }
}

function asList(value: unknown): string[] | undefined {
  if (typeof value === 'string')
    return value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return [...value]
  return undefined
}

function sameTrust(ours: TrustProxy, fastify: unknown): boolean {
  if (typeof ours === 'boolean') return ours === (fastify ?? false)
  if (typeof ours === 'function') return ours === fastify
  const theirs = asList(fastify)
  if (theirs === undefined) return false
  const a = new Set(ours.map((s) => s.trim().toLowerCase()))
  const b = new Set(theirs.map((s) => s.toLowerCase()))
  return a.size === b.size && [...a].every((s) => b.has(s))
}

/**
 * The enforcer's `trustProxy`, when given, must say what Fastify's says:
 * the gates read Fastify's `request.protocol` and peer trust, so a second,
 * different list would be a setting that does nothing, or a hole.
 */
export function checkTrustProxyAgrees(ours: TrustProxy | undefined, app: FastifyInstance): void {
  if (ours === undefined) return
  const fastify = fastifyTrustProxyOf(app)
  if (fastify.known && sameTrust(ours, fastify.value)) return
  throw new ConfigError('ProfileEnforcer', [
    {
      path: ['trustProxy'],
      message: fastify.known
        ? "differs from Fastify's trustProxy: Fastify's trustProxy is the one setting (Fastify({ trustProxy })); remove the enforcer's trustProxy option"
        : "cannot be compared with Fastify's trustProxy, which is the one setting (Fastify({ trustProxy })); remove the enforcer's trustProxy option",
    },
  ])
}

const TLS_RANK: Readonly<Record<string, number>> = {
  TLSv1: 10,
  'TLSv1.1': 11,
  'TLSv1.2': 12,
  'TLSv1.3': 13,
}

/** `1.2` → `TLSv1.2`, the spelling of node:tls. */
export function tlsVersionName(version: '1.2' | '1.3'): 'TLSv1.2' | 'TLSv1.3' {
  return version === '1.3' ? 'TLSv1.3' : 'TLSv1.2'
}

/**
 * Whether a negotiated TLS version (`TLSv1.2`, as node:tls spells it, or
 * `1.2`) is at least `min`. Anything unknown (`SSLv3`, `unknown`) is not.
 */
export function tlsVersionAtLeast(version: string | null | undefined, min: '1.2' | '1.3'): boolean {
  const name =
    version !== null && version !== undefined && /^1\.\d$/.test(version)
      ? `TLSv${version}`
      : version
  return (TLS_RANK[name ?? ''] ?? 0) >= (TLS_RANK[tlsVersionName(min)] ?? 99)
}

/** The last value of a comma-separated forwarded header: the one the nearest proxy wrote. */
function lastForwarded(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[value.length - 1] : value
  if (v === undefined) return undefined
  const i = v.lastIndexOf(',')
  return (i < 0 ? v : v.slice(i + 1)).trim().toLowerCase()
}

/** `proto=` of the last element of an RFC 7239 `Forwarded` header. */
function forwardedProto(value: string | string[] | undefined): string | undefined {
  const last = lastForwarded(value)
  if (last === undefined) return undefined
  for (const pair of last.split(';')) {
    const [k, v] = pair.split('=')
    if (k?.trim() === 'proto' && v !== undefined) return v.trim().replace(/^"|"$/g, '')
  }
  return undefined
}

/**
 * Whether the request arrived over TLS at or above `minVersion`. Else
 * Fastify's `request.protocol` decides (a peer Fastify's `trustProxy`
 * trusts, sending `X-Forwarded-Proto: https`), or, from such a peer, an
 * RFC 7239 `Forwarded: proto=https`; the proxy's own TLS settings are then
 * the operator's to set.
 */
export function isTlsRequest(
  request: FastifyRequest,
  minVersion: '1.2' | '1.3',
  trusted: PeerTrust,
): boolean {
  const socket = request.raw.socket as Partial<TLSSocket>
  if (socket.encrypted === true) {
    const protocol = typeof socket.getProtocol === 'function' ? socket.getProtocol() : null
    return tlsVersionAtLeast(protocol, minVersion)
  }
  const h = request.headers
  if (h['x-forwarded-proto'] !== undefined) return request.protocol.toLowerCase() === 'https'
  if (!trusted(request)) return false
  return forwardedProto(h.forwarded) === 'https'
}

/**
 * Whether the client presented a certificate the server's CA verified
 * (`requestCert: true, rejectUnauthorized: false` lets the handshake finish
 * so the gate can answer 403 instead), or a trusted proxy says it verified one.
 */
export function hasAuthorizedClientCert(
  request: FastifyRequest,
  trusted: PeerTrust,
  header: ClientCertHeader | undefined,
): boolean {
  const socket = request.raw.socket as Partial<TLSSocket>
  if (socket.encrypted === true) {
    if (socket.authorized !== true || typeof socket.getPeerCertificate !== 'function') return false
    const cert = socket.getPeerCertificate()
    return cert !== null && Object.keys(cert).length > 0
  }
  if (header === undefined || !trusted(request)) return false
  return lastForwarded(request.headers[header.name]) === header.value.toLowerCase()
}
