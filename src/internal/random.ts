import { randomBytes } from 'node:crypto'

/** Cryptographically secure random bytes; injected where tests need determinism. */
export type RandomBytes = (size: number) => Uint8Array

export const secureRandomBytes: RandomBytes = (size) => randomBytes(size)
