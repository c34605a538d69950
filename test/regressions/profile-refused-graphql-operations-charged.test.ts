/**
 * Issue 14, §1: with `principalRateLimit` and `costRateLimit`, GraphQL
 * operations refused by the guards (introspection, validation and syntax
 * errors, too-large batches) consumed nothing from the principal's budget,
 * so a principal could send them without limit. Every GraphQL request now
 * costs at least one unit; an executed operation still costs its cost once.
 */
import { describe, expect, it } from 'vitest'
import { defineProfile, REGULATED, STANDARD } from '../../src/profiles/index.js'
import { harness, queryOfDepth } from '../profiles/harness.js'

const REFUSED: ReadonlyArray<readonly [string, string | object[]]> = [
  ['a syntax error', '{ hello'],
  ['a validation error', '{ nope }'],
  ['introspection', '{ __schema { queryType { name } } }'],
  ['a query over the depth limit', queryOfDepth(20)],
  ['a batch over maxBatchSize', Array.from({ length: 11 }, () => ({ query: '{ hello }' }))],
  ['a JSON document', '{"kind":"Document","definitions":[]}'],
]

describe('refused GraphQL operations are charged', () => {
  for (const base of [STANDARD, REGULATED]) {
    for (const [what, query] of REFUSED) {
      it(`${what} costs a unit of the principal's budget (${base.name} + costRateLimit)`, async () => {
        const profile = defineProfile(base, {
          costRateLimit: true,
          introspection: 'disabled',
          maxBatchSize: 10,
          rateLimit: { max: 10_000 },
          principalRateLimit: { max: 3 },
        })
        const h = await harness(profile)
        for (let i = 0; i < 3; i++) {
          const res = await h.gql(query)
          expect(res.statusCode, res.body).toBeGreaterThanOrEqual(400)
          expect(res.statusCode).not.toBe(429)
        }
        const over = await h.gql('{ hello }')
        expect(over.statusCode).toBe(429)
        expect(over.json().errors?.[0]?.extensions?.code ?? over.json().code).toBe(
          'ERR_HTTP_RATE_LIMITED',
        )
        // Another principal's budget is untouched.
        expect((await h.gql('{ hello }', { auth: 'bob' })).statusCode).toBe(200)
      })
    }
  }

  it('an executed operation is charged its cost once, not its cost plus the minimum', async () => {
    const profile = defineProfile(STANDARD, {
      costRateLimit: true,
      rateLimit: { max: 10_000 },
      principalRateLimit: { max: 10 },
    })
    const h = await harness(profile)
    // users(first: 3) { id name }: 3 × (1 + 2) = 9 units.
    expect((await h.gql('{ users(first: 3) { id name } }')).statusCode).toBe(200)
    expect((await h.gql('{ hello }')).statusCode).toBe(200)
    const over = await h.gql('{ hello }')
    expect(over.statusCode).toBe(429)
  })
})
