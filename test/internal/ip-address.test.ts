import { isIPv6 } from 'node:net'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ipKey, normalizeIp } from '../../src/http/index.js'
import { compileIpList } from '../../src/internal/ip-address.js'

describe('client keys', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2:a:b:c:d', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::', '2001:db8:1:2::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['64:ff9b::198.51.100.1', '64:ff9b:0:0::/64'],
  ])('ipKey(%s) = %s', (ip, key) => {
    expect(ipKey(ip)).toBe(key)
  })

  it('honours the prefix length, including prefixes inside a group', () => {
    expect(ipKey('2001:db8:abcd:1234::1', 48)).toBe('2001:db8:abcd::/48')
    expect(ipKey('2001:db8:abcd:1234::1', 56)).toBe('2001:db8:abcd:1200::/56')
    expect(ipKey('2001:db8:abcd:1234:5678:9abc:def0:1234', 128)).toBe(
      '2001:db8:abcd:1234:5678:9abc:def0:1234/128',
    )
  })

  it('leaves non-IP strings unchanged (custom transports, unix sockets)', () => {
    expect(ipKey('')).toBe('')
    expect(normalizeIp('::ffff:not-an-ip')).toBe('::ffff:not-an-ip')
  })

  it('property: every address in one /64 maps to the same key, and different /64s to different keys', () => {
    const group = fc.integer({ min: 0, max: 0xffff })
    const addr = fc.tuple(group, group, group, group, group, group, group, group)
    fc.assert(
      fc.property(addr, addr, (a, b) => {
        const text = (g: number[]) => g.map((x) => x.toString(16)).join(':')
        const sameNet = [...a.slice(0, 4), ...b.slice(4)]
        expect(isIPv6(text(a))).toBe(true)
        expect(ipKey(text(a))).toBe(ipKey(text(sameNet)))
        const differs = a.slice(0, 4).some((x, i) => x !== b[i])
        if (differs) expect(ipKey(text(a))).not.toBe(ipKey(text(b)))
      }),
      { numRuns: 500 },
    )
  })

  it('property: the compressed and full spellings of an address give one key', () => {
    fc.assert(
      fc.property(fc.ipV6(), (ip) => {
        const expanded = ip
        expect(ipKey(expanded)).toBe(ipKey(new URL(`http://[${ip}]/`).hostname.slice(1, -1)))
      }),
      { numRuns: 500 },
    )
  })
})

describe('compileIpList', () => {
  it('reads an IPv4-mapped CIDR as the IPv4 range it maps (::ffff:10.0.0.0/104 is 10.0.0.0/8)', () => {
    const allowed = compileIpList(['::ffff:10.0.0.0/104', '::ffff:c000:0201/128'])
    expect(allowed('10.200.3.4')).toBe(true)
    expect(allowed('0:0:0:0:0:ffff:a01:203')).toBe(true)
    expect(allowed('11.0.0.1')).toBe(false)
    expect(allowed('192.0.2.1')).toBe(true)
    expect(allowed('192.0.2.2')).toBe(false)
  })
})
