/**
 * The memory store lays a key's counters out for the policy list it was last
 * used with. A key used with another list (routes of one `groupId` with
 * different `policies` share a key) was laid out again keeping only the
 * policies of the new list, so the counters of the others were dropped:
 * alternating between two routes reset the stricter route's count on every
 * call. Counters of the policies a list lacks are now kept aside, count
 * towards idleness, and come back when the list does.
 */
import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../../src/http/index.js'

describe('memory store: another policy list never resets a key’s counts', () => {
  const strict = Object.freeze([
    { name: 'default', max: 100, windowMs: 60_000 },
    { name: 'burst', max: 2, windowMs: 60_000 },
  ])
  const loose = Object.freeze([{ name: 'default', max: 100, windowMs: 60_000 }])
  const at = (policies: typeof strict | typeof loose, now: number) => ({
    policies,
    weight: 1,
    now,
  })

  it('alternating with a list that lacks `burst` admits no more than burst.max', () => {
    const store = new MemoryStore()
    const admitted: boolean[] = []
    for (let i = 0; i < 6; i++) {
      admitted.push(store.consumeSync('k', at(strict, 1000 + i)).every((s) => s.allowed))
      store.consumeSync('k', at(loose, 1000 + i))
    }
    expect(admitted).toEqual([true, true, false, false, false, false])
  })

  it('a key whose set-aside counter is live is not evicted as idle', () => {
    const store = new MemoryStore({ maxKeys: 1 })
    store.consumeSync('k', at(strict, 1000))
    store.consumeSync('k', at(strict, 1001))
    // `default`'s window is 1 s here, so only the set-aside `burst` is live later.
    const short = Object.freeze([{ name: 'default', max: 100, windowMs: 1000 }])
    store.consumeSync('k', at(short, 1002))
    store.consumeSync('newcomer', at(loose, 5000))
    expect(store.has('k')).toBe(true)
    expect(store.consumeSync('k', at(strict, 5001)).every((s) => s.allowed)).toBe(false)
  })
})
