/**
 * The transport gates: is this request on TLS (at or above the profile's
 * minimum), and did the client present a certificate our CA signed? Either
 * the socket says so, or a proxy we were told to trust does.
 */
import type { TLSSocket } from 'node:tls'
import type { FastifyRequest } from 'fastify'
import { compileIpList } from '../internal/ip-address.js'

/** Which peers may vouch for TLS and client certificates through forwarded headers. */
export type TrustProxy = boolean | readonly string[] | ((ip: string) => boolean)

/** The header a TLS-terminating proxy sets after it verified a client certificate. */
export interface ClientCertHeader {
  /** e.g. `x-ssl-client-verify` (nginx). Lower-case. */
  readonly name: string
  /** The value that means verified, e.g. `SUCCESS`. */
  readonly value: string
}

export type PeerTrust = (request: FastifyRequest) => boolean

/** Compiles `trustProxy` into a test on the socket's peer (never a forwarded address). */
export function compilePeerTrust(trust: TrustProxy | undefined): PeerTrust {
  if (trust === undefined || trust === false) return () => false
  if (trust === true) return () => true
  const test = typeof trust === 'function' ? trust : compileIpList(trust)
  return (request) => {
    const peer = request.socket.remoteAddress
    return peer !== undefined && test(peer)
  }
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
 * Whether the request arrived over TLS at or above `minVersion`. A trusted
 * proxy's `X-Forwarded-Proto: https` (or `Forwarded: proto=https`) counts as
 * TLS; the proxy's own TLS settings are then the operator's to set.
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
  if (!trusted(request)) return false
  const h = request.headers
  const proto = lastForwarded(h['x-forwarded-proto']) ?? forwardedProto(h.forwarded)
  return proto === 'https'
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
