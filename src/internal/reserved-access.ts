/**
 * The package's one privileged path into `KeyManager`: wrapping and unwrapping
 * its own keys (the API-key peppers) under reserved `fraiseql.` contexts,
 * which every public `KeyManager` call refuses. `KeyManager` hands over its
 * two functions once, when its class is defined; `api-keys` calls them. It
 * lives here, not in `kms/`, because capabilities meet only through their
 * public entries or `internal/`, and this must never be a public entry.
 */
import { SecurityError } from '../errors.js'
import type { EncryptedData, EncryptionContext, KeyManager } from '../kms/index.js'

export interface ReservedAccess {
  wrap(km: KeyManager, plaintext: Uint8Array, context: EncryptionContext): Promise<EncryptedData>
  unwrap(km: KeyManager, encrypted: EncryptedData, context: EncryptionContext): Promise<Uint8Array>
}

let access: ReservedAccess | undefined

/** Called once, from `KeyManager`'s static initialisation block; a second caller is refused. */
export function provideReservedAccess(provided: ReservedAccess): void {
  // Invariant: whoever provides first owns the channel, so nothing loaded
  // later can stand in for KeyManager and receive the peppers.
  if (access !== undefined) throw new SecurityError('reserved access is already provided')
  access = provided
}

function channel(): ReservedAccess {
  // Unreachable through the published entries: importing KeyManager's module
  // (which every entry that hands out a KeyManager does) provides it.
  if (access === undefined) throw new SecurityError('KeyManager is not loaded')
  return access
}

/** Wraps one of the package's own keys under a reserved (`fraiseql.`) context. */
export function wrapReserved(
  km: KeyManager,
  plaintext: Uint8Array,
  context: EncryptionContext,
): Promise<EncryptedData> {
  return channel().wrap(km, plaintext, context)
}

/** Unwraps one of the package's own keys, checking its reserved context. */
export function unwrapReserved(
  km: KeyManager,
  encrypted: EncryptedData,
  context: EncryptionContext,
): Promise<Uint8Array> {
  return channel().unwrap(km, encrypted, context)
}
