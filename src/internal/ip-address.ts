/**
 * IP addresses and CIDR lists, shared by the rate limit (client identity),
 * the profiles (trusted proxies, per-principal budgets) and API keys (IP
 * allow lists). IPv6 clients are grouped by prefix (/64 by default): one
 * subscriber usually holds a whole /64, so per-address limits would let them
 * rotate through 2^64 keys.
 */
import { BlockList, isIP, isIPv4 } from 'node:net'
import { z } from 'zod'

/**
 * An IPv4-mapped IPv6 address (RFC 4291 §2.5.5.2, `::ffff:0:0/96`) → its IPv4
 * address, whatever its spelling: `::ffff:192.0.2.1`, `::ffff:c000:201`,
 * `0:0:0:0:0:ffff:192.0.2.1`, `0000:…:FFFF:C000:0201`. Any other address,
 * and anything that is not an address, is returned unchanged.
 */
export function normalizeIp(ip: string): string {
  // Fast path for the spelling Node's sockets produce.
  if (ip.length > 7 && (ip.startsWith('::ffff:') || ip.startsWith('::FFFF:'))) {
    const v4 = ip.slice(7)
    if (isIPv4(v4)) return v4
  }
  if (!ip.includes(':')) return ip
  const groups = ipv6Groups(ip)
  return groups === undefined ? ip : (mappedIpv4(groups) ?? ip)
}

/** The IPv4 address of `::ffff:a.b.c.d` given as eight groups, else undefined. */
function mappedIpv4(groups: readonly number[]): string | undefined {
  for (let i = 0; i < 5; i++) if (groups[i] !== 0) return undefined
  if (groups[5] !== 0xffff) return undefined
  const hi = groups[6]!
  const lo = groups[7]!
  return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`
}

/** Expands an IPv6 address into its eight 16-bit groups, or undefined if invalid. */
function ipv6Groups(ip: string): number[] | undefined {
  let addr = ip
  const zone = addr.indexOf('%')
  if (zone !== -1) addr = addr.slice(0, zone)
  if (isIP(addr) !== 6) return undefined
  // An embedded IPv4 tail (`::ffff:1.2.3.4`, `64:ff9b::1.2.3.4`) is two groups.
  const lastColon = addr.lastIndexOf(':')
  const last = addr.slice(lastColon + 1)
  if (last.includes('.')) {
    if (!isIPv4(last)) return undefined
    const o = last.split('.').map(Number) as [number, number, number, number]
    const hi = ((o[0] << 8) | o[1]).toString(16)
    const lo = ((o[2] << 8) | o[3]).toString(16)
    addr = `${addr.slice(0, lastColon + 1)}${hi}:${lo}`
  }
  const halves = addr.split('::')
  if (halves.length > 2) return undefined
  const parse = (s: string): number[] =>
    s === ''
      ? []
      : s
          .split(':')
          .map((g) => (/^[0-9a-fA-F]{1,4}$/.test(g) ? Number.parseInt(g, 16) : Number.NaN))
  const head = parse(halves[0] ?? '')
  const tail = halves.length === 2 ? parse(halves[1] ?? '') : []
  const explicit = head.length + tail.length
  if (halves.length === 1 ? explicit !== 8 : explicit > 7) return undefined
  const groups = [...head, ...new Array<number>(8 - explicit).fill(0), ...tail]
  return groups.every((g) => !Number.isNaN(g)) ? groups : undefined
}

/**
 * The rate-limit key of an address: IPv4 as is, IPv6 truncated to `prefixBits`
 * (`2001:db8:1:2:a:b:c:d` → `2001:db8:1:2::/64`).
 */
export function ipKey(ip: string, prefixBits = 64): string {
  // IPv4 (the common case) has no colon and is its own key: skip all parsing.
  if (!ip.includes(':')) return ip
  const groups = ipv6Groups(ip)
  if (groups === undefined) return ip
  // Every spelling of an IPv4-mapped address is the IPv4 client it carries.
  const v4 = mappedIpv4(groups)
  if (v4 !== undefined) return v4
  const out: string[] = []
  let bits = prefixBits
  for (const g of groups) {
    if (bits >= 16) out.push(g.toString(16))
    else if (bits > 0) out.push((g & (0xffff << (16 - bits)) & 0xffff).toString(16))
    else break
    bits -= 16
  }
  return `${out.join(':')}${out.length < 8 ? '::' : ''}/${prefixBits}`
}

/** An IPv4/IPv6 address or CIDR range, e.g. `10.0.0.0/8`, `2001:db8::/32`, `127.0.0.1`. */
export const IpOrCidrSchema = z.string().refine(
  (s) => {
    const [addr, bits, extra] = s.split('/')
    if (extra !== undefined || addr === undefined) return false
    const family = isIP(addr)
    if (family === 0) return false
    if (bits === undefined) return true
    if (!/^\d{1,3}$/.test(bits)) return false
    return Number(bits) <= (family === 4 ? 32 : 128)
  },
  { message: 'must be an IP address or CIDR range' },
)

/** Compiles an allow list into a matcher over client IPs (IPv4-mapped IPv6 normalized). */
export function compileIpList(entries: readonly string[]): (ip: string) => boolean {
  if (entries.length === 0) return () => false
  const list = new BlockList()
  for (const entry of entries) {
    const [addr, bits] = entry.split('/') as [string, string | undefined]
    const normalized = normalizeIp(addr)
    const type = isIP(normalized) === 4 ? 'ipv4' : 'ipv6'
    if (bits === undefined) list.addAddress(normalized, type)
    else if (type === 'ipv4' && isIP(addr) === 6) {
      // `::ffff:10.0.0.0/104` is `10.0.0.0/8`; a prefix shorter than the
      // mapping's own 96 bits also covers real IPv6 space and stays IPv6.
      if (Number(bits) >= 96) list.addSubnet(normalized, Number(bits) - 96, 'ipv4')
      else list.addSubnet(addr, Number(bits), 'ipv6')
    } else list.addSubnet(normalized, Number(bits), type)
  }
  return (ip) => {
    const addr = normalizeIp(ip)
    const family = isIP(addr)
    if (family === 0) return false
    return list.check(addr, family === 4 ? 'ipv4' : 'ipv6')
  }
}
