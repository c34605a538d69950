import { describe, expect, it } from 'vitest'
import { SeamError, SecurityError } from '../../src/errors.js'
import { Seam } from '../../src/internal/seam.js'

describe('a seam between two capabilities', () => {
  it('hands the consumer what the provider provided', () => {
    const seam = new Seam<{ value: number }>('the answer', 'src/answer.ts')
    const provided = { value: 42 }
    seam.provide(provided)
    expect(seam.use()).toBe(provided)
  })

  it('refuses a second provider, and keeps the first', () => {
    const seam = new Seam<{ value: number }>('the answer', 'src/answer.ts')
    const first = { value: 42 }
    seam.provide(first)
    const err = (() => {
      try {
        seam.provide({ value: 0 })
      } catch (caught) {
        return caught
      }
      return undefined
    })()
    expect(err).toBeInstanceOf(SeamError)
    expect(err).toBeInstanceOf(SecurityError)
    expect((err as SeamError).code).toBe('ERR_SEAM_MISWIRED')
    expect(seam.use()).toBe(first)
  })

  it('refuses a consumer that comes before the provider, naming the provider', () => {
    const seam = new Seam<object>('the answer', 'src/answer.ts')
    expect(() => seam.use()).toThrow(SeamError)
    expect(() => seam.use()).toThrow('the answer is not provided: src/answer.ts is not loaded')
  })
})
