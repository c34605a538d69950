/**
 * What `ApiKeyManager` takes besides its options and what it answers: the
 * request context, a validation's grant, and the records administrators see
 * (never the key, never its hash).
 */

/** Who asked, for the audit log. */
export interface ApiKeyActionContext {
  /** The admin principal (API key id, user id). */
  readonly actor?: string
  /** The client address. */
  readonly ip?: string
}

/** Facts about the request a key arrives with. */
export interface ValidateContext {
  /** The client address (`request.ip`): per-key allowlists and failed-attempt counting. */
  readonly ip?: string
}

/** What a valid key grants. */
export interface ApiKeyValidation {
  readonly keyId: string
  readonly tier: string
  readonly permissions: readonly string[]
  readonly expiresAt: Date
  /** True past `rotationThreshold` (80 %) of the key's lifetime. */
  readonly shouldRotate: boolean
}

export type ApiKeyStatus = 'active' | 'grace' | 'rotated' | 'expired' | 'revoked'

/** A key as administrators see it: never the key, never its hash. */
export interface ApiKeyRecord {
  readonly keyId: string
  readonly name: string
  readonly prefix: string
  readonly region: string
  /** The key's first characters, to recognise it (`fraiseql_live_eu_Ab12Cd34Ef56_x9Qz`). */
  readonly start: string
  readonly tier: string
  readonly permissions: readonly string[]
  readonly allowedIps: readonly string[] | null
  readonly status: ApiKeyStatus
  readonly createdAt: Date
  readonly expiresAt: Date
  readonly rotatedAt: Date | null
  readonly graceUntil: Date | null
  readonly replacedBy: string | null
  readonly revokedAt: Date | null
  readonly revokedReason: string | null
  readonly lastUsedAt: Date | null
  readonly createdBy: string | null
  readonly shouldRotate: boolean
}

/** A new key: `key` is shown this once and cannot be read back. */
export interface CreatedApiKey {
  readonly key: string
  readonly keyId: string
  readonly record: ApiKeyRecord
}

export interface RotatedApiKey extends CreatedApiKey {
  /** The old key, now in its grace period. */
  readonly previous: ApiKeyRecord
}

/** What `checkLifecycle()` found (and emitted). */
export interface LifecycleReport {
  readonly rotationRecommended: string[]
  readonly expiringSoon: string[]
  readonly expired: string[]
}
