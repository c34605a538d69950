/**
 * Security profiles: one object that says how hard a server is, and that the
 * {@link ProfileEnforcer} turns into registered plugins. Three frozen presets
 * and `defineProfile` for custom ones; every field is enforced somewhere
 * (docs/profiles.md maps each field to the hook that enforces it).
 */
import { z } from 'zod'
import { ConfigError } from '../errors.js'
import { parseOptions } from '../internal/options.js'
import { UnknownProfileError } from './errors.js'

const KiB = 1024
const MiB = 1024 * KiB
const MINUTE_MS = 60_000

/** A quota over a window, as the `rateLimit` plugin takes it. */
export const QuotaSchema = z
  .object({
    /** Units per window. */
    max: z.number().int().min(1).max(10_000_000),
    /** Window, in milliseconds. */
    windowMs: z
      .number()
      .int()
      .min(1000)
      .max(7 * 24 * 60 * MINUTE_MS),
  })
  .strict()
export type Quota = z.infer<typeof QuotaSchema>

const limit = (max: number) => z.number().int().min(1).max(max)

export const SecurityProfileSchema = z
  .object({
    /** Shown in logs and audit events. */
    name: z.string().min(1).max(64),
    /** Plain HTTP is answered 426 (a trusted proxy may vouch for TLS). */
    tlsRequired: z.boolean(),
    /** Requests without an authorized client certificate are answered 403. */
    mtlsRequired: z.boolean(),
    /** Lowest TLS version the server negotiates (`serverOptions()`) and the gate accepts. */
    minTlsVersion: z.enum(['1.2', '1.3']),
    /** Longest age of a bearer token (`request.auth.kind === 'token'`), from its `issuedAt`. */
    tokenExpiryMinutes: limit(24 * 60),
    /** GraphQL introspection: for everyone, for authenticated requests, or never. */
    introspection: z.enum(['enabled', 'authenticated', 'disabled']),
    /** Deepest GraphQL selection (leaf fields count; fragments expanded). */
    maxQueryDepth: limit(1000),
    /** Highest GraphQL cost (1 per field, times list sizes from first/last/limit). */
    maxQueryComplexity: limit(10_000_000),
    /** Largest request body, in bytes. */
    maxBodySize: limit(2 ** 40),
    /** Requests per window and client IP, before authentication. */
    rateLimit: QuotaSchema,
    /**
     * Whether the IP rate limit (`rateLimit`) runs at all; `false` removes the
     * `ipRateLimit` step (the per-principal limit stays).
     * @default true
     */
    rateLimitEnabled: z.boolean().default(true),
    /**
     * What is audited: `minimal` authentication and access refusals only;
     * `standard` every security event; `enhanced` also mutations; `verbose`
     * every request.
     */
    auditLevel: z.enum(['minimal', 'standard', 'enhanced', 'verbose']),
    /**
     * The audit record of a GraphQL request lists the `Type.field`
     * coordinates its operations selected (`fields`); never an argument value.
     * @default false
     */
    auditFieldAccess: z.boolean().default(false),
    /**
     * How much of an error reaches the client: `safe` messages, `minimal` a
     * generic message and a request id; `full` every message, for development
     * only (refused where TLS is required, in profiles derived from REGULATED
     * or RESTRICTED, and by the enforcer outside development).
     */
    errorDetail: z.enum(['full', 'safe', 'minimal']),
    /** Requests without credentials are answered 401. */
    authRequired: z.boolean(),

    // Beyond TLS, auth, limits and audit: what a user of each level expects.
    /** Most aliases in one GraphQL document (`__typename` aliases count). */
    maxAliases: limit(100_000),
    /** Most directive uses in one GraphQL document. */
    maxDirectives: limit(100_000),
    /** Most lexical tokens in one GraphQL document, counted by the parser before any AST exists. */
    maxTokens: limit(10_000_000),
    /** Most operations in one batched GraphQL request (when mercurius allows batches). */
    maxBatchSize: limit(1000),
    /** Remove "Did you mean …?" from GraphQL errors (they map a hidden schema). */
    blockFieldSuggestions: z.boolean(),
    /** Only operations in the persisted-operation manifest run; registering new ones is refused. */
    persistedOperationsOnly: z.boolean(),
    /** Cost units per window and principal, after authentication; GraphQL operations are charged their cost. */
    principalRateLimit: QuotaSchema,
    /** Charge GraphQL operations their computed cost against `principalRateLimit` instead of 1. */
    costRateLimit: z.boolean(),
  })
  .strict()

/** A complete, validated security profile. */
export type SecurityProfile = Readonly<
  Omit<z.infer<typeof SecurityProfileSchema>, 'rateLimit' | 'principalRateLimit'> & {
    rateLimit: Readonly<Quota>
    principalRateLimit: Readonly<Quota>
  }
>

/** Fields a custom profile may change; nested quotas may be given in part. */
export type ProfileOverrides = Partial<
  Omit<SecurityProfile, 'rateLimit' | 'principalRateLimit'> & {
    rateLimit: Partial<Quota>
    principalRateLimit: Partial<Quota>
  }
>

type PresetName = 'STANDARD' | 'REGULATED' | 'RESTRICTED'

/**
 * The preset each profile was derived from (through any number of
 * `defineProfile` calls): a profile made from REGULATED keeps REGULATED's
 * promises even where an override relaxed a setting.
 */
const lineage = new WeakMap<SecurityProfile, PresetName>()

function freeze(profile: z.infer<typeof SecurityProfileSchema>): SecurityProfile {
  Object.freeze(profile.rateLimit)
  Object.freeze(profile.principalRateLimit)
  return Object.freeze(profile)
}

function preset(profile: z.infer<typeof SecurityProfileSchema>, name: PresetName): SecurityProfile {
  const frozen = freeze(profile)
  lineage.set(frozen, name)
  return frozen
}

/**
 * `errorDetail: 'full'` sends every message to the client, internals
 * included: a development setting. A profile that requires TLS, or one
 * derived from REGULATED or RESTRICTED, protects data for which that is
 * never right, so such a profile cannot have it.
 */
function checkErrorDetail(
  component: string,
  profile: SecurityProfile,
  from: PresetName | undefined,
): void {
  if (profile.errorDetail !== 'full') return
  const why =
    from === 'REGULATED' || from === 'RESTRICTED'
      ? `is derived from ${from}`
      : profile.tlsRequired || profile.mtlsRequired
        ? 'requires TLS'
        : undefined
  if (why === undefined) return
  throw new ConfigError(component, [
    {
      path: ['errorDetail'],
      message: `'full' is for development only and this profile ${why}; use 'safe' or 'minimal'`,
    },
  ])
}

function validated(
  component: string,
  value: unknown,
  from: PresetName | undefined,
): SecurityProfile {
  const profile = freeze(parseOptions(component, SecurityProfileSchema, value))
  checkErrorDetail(component, profile, from)
  if (from !== undefined) lineage.set(profile, from)
  return profile
}
/** General APIs: TLS optional, introspection for signed-in developers. */
export const STANDARD: SecurityProfile = preset(
  {
    name: 'STANDARD',
    tlsRequired: false,
    mtlsRequired: false,
    minTlsVersion: '1.2',
    tokenExpiryMinutes: 60,
    introspection: 'authenticated',
    maxQueryDepth: 15,
    maxQueryComplexity: 1000,
    maxBodySize: 1 * MiB,
    rateLimit: { max: 100, windowMs: MINUTE_MS },
    rateLimitEnabled: true,
    auditLevel: 'standard',
    auditFieldAccess: false,
    errorDetail: 'safe',
    authRequired: true,
    maxAliases: 30,
    maxDirectives: 50,
    maxTokens: 10_000,
    maxBatchSize: 10,
    blockFieldSuggestions: true,
    persistedOperationsOnly: false,
    principalRateLimit: { max: 10_000, windowMs: MINUTE_MS },
    costRateLimit: false,
  },
  'STANDARD',
)

/** Personal, financial or health data (GDPR, PCI DSS, HIPAA scopes). */
export const REGULATED: SecurityProfile = preset(
  {
    name: 'REGULATED',
    tlsRequired: true,
    mtlsRequired: false,
    minTlsVersion: '1.2',
    tokenExpiryMinutes: 15,
    introspection: 'disabled',
    maxQueryDepth: 10,
    maxQueryComplexity: 1000,
    maxBodySize: 1 * MiB,
    rateLimit: { max: 100, windowMs: MINUTE_MS },
    rateLimitEnabled: true,
    auditLevel: 'enhanced',
    auditFieldAccess: false,
    errorDetail: 'safe',
    authRequired: true,
    maxAliases: 15,
    maxDirectives: 20,
    maxTokens: 5000,
    maxBatchSize: 5,
    blockFieldSuggestions: true,
    persistedOperationsOnly: false,
    principalRateLimit: { max: 5000, windowMs: MINUTE_MS },
    costRateLimit: true,
  },
  'REGULATED',
)

/** Service-to-service only, client certificates, the least said on failure. */
export const RESTRICTED: SecurityProfile = preset(
  {
    name: 'RESTRICTED',
    tlsRequired: true,
    mtlsRequired: true,
    minTlsVersion: '1.2',
    tokenExpiryMinutes: 5,
    introspection: 'disabled',
    maxQueryDepth: 5,
    maxQueryComplexity: 1000,
    maxBodySize: 512 * KiB,
    rateLimit: { max: 100, windowMs: MINUTE_MS },
    rateLimitEnabled: true,
    auditLevel: 'verbose',
    auditFieldAccess: false,
    errorDetail: 'minimal',
    authRequired: true,
    maxAliases: 10,
    maxDirectives: 10,
    maxTokens: 2000,
    maxBatchSize: 1,
    blockFieldSuggestions: true,
    persistedOperationsOnly: false,
    principalRateLimit: { max: 2000, windowMs: MINUTE_MS },
    costRateLimit: true,
  },
  'RESTRICTED',
)

/** The presets by name. */
export const PROFILES: Readonly<Record<'STANDARD' | 'REGULATED' | 'RESTRICTED', SecurityProfile>> =
  Object.freeze({ STANDARD, REGULATED, RESTRICTED })

/**
 * A custom profile: `base` with `overrides` applied, validated whole.
 * Throws `ERR_CONFIG_INVALID` naming the field on any bad value, including a
 * field no profile has (a typo must not leave a setting at its default).
 *
 * @example
 * ```ts
 * const internal = defineProfile(REGULATED, { name: 'INTERNAL', maxQueryDepth: 12, persistedOperationsOnly: true })
 * ```
 */
export function defineProfile(
  base: SecurityProfile,
  overrides: ProfileOverrides = {},
): SecurityProfile {
  const o = overrides as Record<string, unknown>
  const merged = {
    ...base,
    ...o,
    name: o.name ?? `${base.name}+custom`,
    rateLimit: mergeQuota(base.rateLimit, o.rateLimit),
    principalRateLimit: mergeQuota(base.principalRateLimit, o.principalRateLimit),
  }
  return validated('defineProfile', merged, lineage.get(base))
}

/**
 * Validates a whole profile (e.g. one read from configuration). A preset, or
 * a profile `defineProfile` made, is returned as it is.
 */
export function parseProfile(value: unknown): SecurityProfile {
  if (typeof value === 'object' && value !== null && lineage.has(value as SecurityProfile)) {
    return value as SecurityProfile
  }
  return validated('profile', value, undefined)
}

/**
 * A preset by name, whatever the ASCII case (`'regulated'`, `'REGULATED'`), e.g.
 * from an environment variable. An unknown name throws
 * `ERR_PROFILE_UNKNOWN`, listing the known ones: a typo must never fall back
 * to a weaker profile.
 *
 * @example
 * ```ts
 * const profile = getProfile(process.env.SECURITY_PROFILE ?? 'regulated')
 * ```
 */
export function getProfile(name: string): SecurityProfile {
  // ASCII letters only: toUpperCase() maps `ſ` to `S` and `ı` to `I`, and a
  // value that is not a preset's name must be refused, not reinterpreted.
  const key = typeof name === 'string' ? name.trim().replace(/[a-z]/g, (c) => c.toUpperCase()) : ''
  if (Object.hasOwn(PROFILES, key)) return PROFILES[key as PresetName]
  throw new UnknownProfileError(name, Object.keys(PROFILES))
}

function mergeQuota(base: Quota, override: unknown): unknown {
  if (override === undefined) return { ...base }
  if (typeof override !== 'object' || override === null) return override
  return { ...base, ...override }
}
