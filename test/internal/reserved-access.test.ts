import { describe, expect, it } from 'vitest'
import { SecurityError } from '../../src/errors.js'
import { provideReservedAccess } from '../../src/internal/reserved-access.js'
import { KeyManager } from '../../src/kms/index.js'

describe('the reserved-context channel into KeyManager', () => {
  it('is provided by KeyManager itself and cannot be taken over by a later module', () => {
    expect(KeyManager).toBeTypeOf('function') // its module is loaded, so it provided first
    const impostor = {
      wrap: () => Promise.reject(new Error('not KeyManager')),
      unwrap: () => Promise.reject(new Error('not KeyManager')),
    }
    expect(() => provideReservedAccess(impostor)).toThrow(SecurityError)
  })
})
