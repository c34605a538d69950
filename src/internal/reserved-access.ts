/**
 * The package's one privileged path into `KeyManager`: wrapping and unwrapping
 * its own keys (the API-key peppers) under reserved `fraiseql.` contexts,
 * which every public `KeyManager` call refuses. `KeyManager` hands over its
 * two functions once, when its class is defined; `api-keys` calls them. It
 * lives here, not in `kms/`, because capabilities meet only through their
 * public entries or `internal/`, and this must never be a public entry.
 */
import type { EncryptedData, EncryptionContext, KeyManager } from '../kms/index.js'
import { Seam } from './seam.js'

/** Implemented by `KeyManager`'s static initialisation block (src/kms/key-manager/key-manager.ts). */
export interface ReservedAccess {
  wrap(km: KeyManager, plaintext: Uint8Array, context: EncryptionContext): Promise<EncryptedData>
  unwrap(km: KeyManager, encrypted: EncryptedData, context: EncryptionContext): Promise<Uint8Array>
}

// Seam refuses a second provider: nothing loaded later can stand in for
// KeyManager and receive the peppers. A consumer before the provider is
// unreachable through the published entries: importing KeyManager's module
// (which every entry that hands out a KeyManager does) provides it.
const access = new Seam<ReservedAccess>('reserved access', 'KeyManager')

/** Called once, from `KeyManager`'s static initialisation block; a second caller is refused. */
export function provideReservedAccess(provided: ReservedAccess): void {
  access.provide(provided)
}

/** Wraps one of the package's own keys under a reserved (`fraiseql.`) context. */
export function wrapReserved(
  km: KeyManager,
  plaintext: Uint8Array,
  context: EncryptionContext,
): Promise<EncryptedData> {
  return access.use().wrap(km, plaintext, context)
}

/** Unwraps one of the package's own keys, checking its reserved context. */
export function unwrapReserved(
  km: KeyManager,
  encrypted: EncryptedData,
  context: EncryptionContext,
): Promise<Uint8Array> {
  return access.use().unwrap(km, encrypted, context)
}
