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

/**
 * Review of issue 14: a batch paid one unit however many operations it
 * carried, so a batch of `maxBatchSize` refused operations cost a tenth of
 * the same operations sent one by one. Every item pays one unit when the
 * batch arrives, refused or not; an executed item pays the rest of its cost.
 */
describe('every operation of a batch is charged', () => {
  const refusedBatch = (n: number) => Array.from({ length: n }, () => ({ query: '{ nope }' }))

  for (const costRateLimit of [false, true]) {
    it(`a batch of refused operations costs a unit per item (costRateLimit: ${costRateLimit})`, async () => {
      const profile = defineProfile(STANDARD, {
        costRateLimit,
        maxBatchSize: 10,
        rateLimit: { max: 10_000 },
        principalRateLimit: { max: 6 },
      })
      const h = await harness(profile)
      const batch = await h.gql(refusedBatch(5))
      expect(batch.statusCode).toBe(200)
      expect(batch.body).not.toContain('ERR_HTTP_RATE_LIMITED')
      // 5 of 6 units are spent: one request more, and the budget is out.
      expect((await h.gql('{ hello }')).statusCode).toBe(200)
      const over = await h.gql('{ hello }')
      expect(over.statusCode).toBe(429)
      expect(over.json().errors?.[0]?.extensions?.code ?? over.json().code).toBe(
        'ERR_HTTP_RATE_LIMITED',
      )
    })
  }

  it('a batch its items cannot all pay for is refused whole, before any item runs', async () => {
    const profile = defineProfile(STANDARD, {
      maxBatchSize: 10,
      rateLimit: { max: 10_000 },
      principalRateLimit: { max: 3 },
    })
    const h = await harness(profile)
    const res = await h.gql(Array.from({ length: 5 }, () => ({ query: '{ hello }' })))
    expect(res.statusCode).toBe(429)
    expect(res.json().code).toBe('ERR_HTTP_RATE_LIMITED')
    expect(res.body).not.toContain('world')
  })

  it('with costRateLimit, executed items pay their cost once each', async () => {
    const profile = defineProfile(STANDARD, {
      costRateLimit: true,
      maxBatchSize: 10,
      rateLimit: { max: 10_000 },
      principalRateLimit: { max: 20 },
    })
    const h = await harness(profile)
    // Two items of 9 units each (users(first: 3) { id name }): 18, the minimum included.
    const query = '{ users(first: 3) { id name } }'
    const res = await h.gql([{ query }, { query }])
    expect(res.statusCode).toBe(200)
    expect(res.body).not.toContain('ERR_HTTP_RATE_LIMITED')
    expect((await h.gql('{ hello }')).statusCode).toBe(200)
    expect((await h.gql('{ hello }')).statusCode).toBe(200)
    expect((await h.gql('{ hello }')).statusCode).toBe(429)
  })
})
