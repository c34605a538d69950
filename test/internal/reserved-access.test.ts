import { describe, expect, it, vi } from 'vitest'
import { SeamError, SecurityError } from '../../src/errors.js'
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
    expect(() => provideReservedAccess(impostor)).toThrow(SeamError)
  })

  it('refuses a caller that comes before KeyManager is loaded, with a typed error', async () => {
    vi.resetModules()
    try {
      // A fresh copy of the channel alone: its imports of kms/ are type-only.
      const fresh = await import('../../src/internal/reserved-access.js')
      const km = undefined as unknown as KeyManager
      let err: { code?: unknown } | undefined
      try {
        // Asked for the channel before any promise is made: thrown, not rejected.
        void fresh.wrapReserved(km, new Uint8Array(1), {})
      } catch (caught) {
        err = caught as { code?: unknown }
      }
      expect(err?.code).toBe('ERR_SEAM_MISWIRED')
    } finally {
      vi.resetModules()
    }
  })
})
