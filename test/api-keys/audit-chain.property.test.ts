/**
 * Properties of the keyed audit chain (audit-chain.ts): a chain as written
 * verifies, any one edited field of any row is found at that row, a chain
 * re-chained with SHA-256 after its keyed part does not verify, and a
 * truncated chain fails against an anchor taken before the cut.
 */
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { expect, it } from 'vitest'
import {
  type AuditEventInput,
  type AuditRecord,
  auditHash,
  chainEvents,
  verifyAuditRecords,
} from '../../src/api-keys/audit-chain.js'
import { Pepper } from '../../src/api-keys/hash.js'

const key = new Pepper(randomBytes(32))

const event: fc.Arbitrary<AuditEventInput> = fc.record({
  event: fc.constantFrom('created', 'rotated', 'revoked', 'validated', 'rejected', 'pepper'),
  keyId: fc.option(fc.string({ maxLength: 12 }), { nil: null }),
  actor: fc.option(fc.string({ maxLength: 12 }), { nil: null }),
  ip: fc.option(fc.ipV4(), { nil: null }),
  at: fc.integer({ min: 0, max: 2 ** 46 }),
  detail: fc.dictionary(
    fc.string({ minLength: 1, maxLength: 6 }),
    fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean(), fc.constant(null)),
    { maxKeys: 3 },
  ),
})
const chain = fc
  .array(event, { minLength: 1, maxLength: 12 })
  .map((es) => chainEvents(undefined, es, key))

it('a keyed chain as written verifies, with its head as the anchor', () => {
  fc.assert(
    fc.property(chain, (rows) => {
      const last = rows.at(-1)!
      const report = verifyAuditRecords(rows, {
        key,
        anchor: { sequence: last.seq, hash: last.hash },
      })
      expect(report).toEqual({
        ok: true,
        checked: rows.length,
        lastHash: last.hash,
        lastSequence: last.seq,
        keyedFrom: 1,
        anchored: true,
      })
    }),
  )
})

it('one edited field of any row is reported at that row', () => {
  fc.assert(
    fc.property(chain, fc.nat(), fc.string({ minLength: 1, maxLength: 8 }), (rows, i, junk) => {
      const at = i % rows.length
      const edited: AuditRecord[] = rows.map((r, j) =>
        j === at ? { ...r, actor: `${r.actor ?? ''}${junk}` } : r,
      )
      expect(verifyAuditRecords(edited, { key })).toMatchObject({
        ok: false,
        brokenAt: at + 1,
        reason: 'hash',
      })
    }),
  )
})

it('re-chaining from any row with SHA-256 is refused, and a cut tail fails its anchor', () => {
  fc.assert(
    fc.property(chain, fc.nat(), (rows, i) => {
      const from = i % rows.length
      let prev = from === 0 ? '0'.repeat(64) : rows[from - 1]!.hash
      const rechained = rows.map((r, j) => {
        if (j < from) return r
        const hash = auditHash(r.seq, prev, r)
        const out = { ...r, prevHash: prev, hash }
        prev = hash
        return out
      })
      const report = verifyAuditRecords(rechained, { key })
      expect(report.ok).toBe(false)
      expect(report).toMatchObject({ reason: from === 0 ? 'unkeyed' : 'hash' })

      const last = rows.at(-1)!
      const cut = rows.slice(0, from)
      expect(
        verifyAuditRecords(cut, { key, anchor: { sequence: last.seq, hash: last.hash } }),
      ).toMatchObject({ ok: false, reason: 'truncated', brokenAt: from + 1 })
    }),
  )
})
