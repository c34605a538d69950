/**
 * The manifest and the persisted-query provider, without a server: hashing
 * as APQ does, a manifest that lies refused at construction, and the bounded
 * registration cache.
 */
import { describe, expect, it } from 'vitest'
import { mercuriusPersistedQueryOptions, PersistedOperations } from '../../src/graphql/index.js'
import { rejection } from '../helpers/rejection.js'

describe('PersistedOperations', () => {
  it("hashes as Apollo's automatic persisted queries do", () => {
    // The example of Apollo's APQ documentation.
    expect(PersistedOperations.hash('{__typename}')).toBe(
      'ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38',
    )
  })

  it('takes a record or a map, and answers has/get/hasQuery', () => {
    const q = 'query Me { me { id } }'
    const h = PersistedOperations.hash(q)
    for (const ops of [
      new PersistedOperations({ [h]: q }),
      new PersistedOperations(new Map([[h, q]])),
    ]) {
      expect(ops.size).toBe(1)
      expect(ops.has(h)).toBe(true)
      expect(ops.get(h)).toBe(q)
      expect(ops.hasQuery(q)).toBe(true)
      expect(ops.hasQuery(`${q} `)).toBe(false)
      expect(ops.get('__proto__')).toBeUndefined()
    }
  })

  it('refuses a manifest whose key is not the hash of its query, naming the key', () => {
    const q = 'query Me { me { id } }'
    const wrong = PersistedOperations.hash('{ other }')
    expect(() => new PersistedOperations({ [wrong]: q })).toThrow(
      expect.objectContaining({
        code: 'ERR_CONFIG_INVALID',
        message: expect.stringContaining(`manifest.${wrong}`),
      }),
    )
    expect(() => new PersistedOperations({ ABC: q })).toThrow(/lowercase hex SHA-256/)
    expect(() => new PersistedOperations({ [PersistedOperations.hash('')]: '' })).toThrow(
      /non-empty query/,
    )
  })
})

describe('the persisted-query provider', () => {
  it('keeps at most apqCacheSize registrations, least recently used dropped first', async () => {
    const { persistedQueryProvider: p } = mercuriusPersistedQueryOptions(
      PersistedOperations.fromQueries([]),
      { required: false, apqCacheSize: 2 },
    )
    const queries = ['{ a }', '{ b }', '{ c }']
    const hashes = queries.map((q) => PersistedOperations.hash(q))
    await p.saveQuery!(hashes[0]!, queries[0]!)
    await p.saveQuery!(hashes[1]!, queries[1]!)
    await p.getQueryFromHash(hashes[0]!) // a is now the most recent
    await p.saveQuery!(hashes[2]!, queries[2]!)
    expect(await p.getQueryFromHash(hashes[0]!)).toBe('{ a }')
    expect(await p.getQueryFromHash(hashes[2]!)).toBe('{ c }')
    expect(await rejection(p.getQueryFromHash(hashes[1]!))).toMatchObject({
      code: 'ERR_GRAPHQL_PERSISTED_QUERY_NOT_FOUND',
      statusCode: 400,
    })
  })

  it('refuses an APQ version it does not know', () => {
    const { persistedQueryProvider: p } = mercuriusPersistedQueryOptions(
      PersistedOperations.fromQueries(['{ a }']),
    )
    const request = { extensions: { persistedQuery: { version: 2, sha256Hash: 'x' } } }
    expect(() => p.getHash(request)).toThrow(
      expect.objectContaining({ message: 'PersistedQueryNotSupported' }),
    )
  })
})
