/**
 * The collaborators an `ApiKeyManager` is composed of, and how they are
 * built, started and released together. Each gets its dependencies
 * explicitly here, so what reaches the hot path (and what does not: the
 * KMS, the randomness) is visible in one place.
 */
import { describeError } from '../internal/logger.js'
import type { AuditCheckpoint } from './audit-chain.js'
import { AuditLog } from './audit-log.js'
import { AuditQueue } from './audit-queue.js'
import { LifecycleEmitter } from './events.js'
import { FailedAttemptGate } from './failed-attempts.js'
import { sortPrefixes } from './format.js'
import { KeyFingerprints } from './hash.js'
import { KeyIssuer } from './key-issuer.js'
import { KeyMaintenance } from './key-maintenance.js'
import type { ApiKeyManagerSetup } from './manager-options.js'
import type { ApiKeyActionContext } from './manager-types.js'
import { PepperRing } from './pepper-ring.js'
import { toApiKeyRecord } from './records.js'
import type { ApiKeyChange, ApiKeyRow } from './store.js'
import { ValidationCache } from './validation-cache.js'
import { KeyValidator } from './validator.js'

export interface ApiKeyManagerParts {
  readonly setup: ApiKeyManagerSetup
  readonly events: LifecycleEmitter
  /** undefined with `failedAttempts: false`. */
  readonly failures: FailedAttemptGate | undefined
  readonly fingerprints: KeyFingerprints
  readonly peppers: PepperRing
  readonly cache: ValidationCache
  readonly queue: AuditQueue
  readonly audit: AuditLog
  readonly validator: KeyValidator
  readonly issuer: KeyIssuer
  readonly maintenance: KeyMaintenance
}

/** The manager's public methods some parts go through, so they behave as a caller's call would. */
export interface ManagerCallbacks {
  /** A leaked key is revoked as any other (and refused during `close()` as any other). */
  revoke(keyId: string, reason: string, context: ApiKeyActionContext): Promise<unknown>
  /** The timer's checkpoint is the public one: logged and passed to `onCheckpoint`. */
  checkpoint(): Promise<AuditCheckpoint | undefined>
  flush(): Promise<void>
}

/** What runs between `initialize()` and `close()`. */
export interface RunningParts {
  readonly timers: readonly NodeJS.Timeout[]
  readonly unsubscribe: () => Promise<void>
}

export function buildApiKeyManagerParts(
  setup: ApiKeyManagerSetup,
  callbacks: Pick<ManagerCallbacks, 'revoke'>,
): ApiKeyManagerParts {
  const { options: o, store, keyManager, clock, random, logger } = setup
  const events = new LifecycleEmitter(logger)
  const failures =
    setup.failedAttempts === undefined
      ? undefined
      : new FailedAttemptGate(setup.failedAttempts, clock, logger)
  const fingerprints = new KeyFingerprints()
  const prefixes = sortPrefixes(o.prefixes)
  const peppers = new PepperRing({ store, keyManager, random, clock })
  const cache = new ValidationCache({ store, peppers, clock, options: setup.cache, policy: o })
  const queue = new AuditQueue({ store, clock, logger, limits: o })
  const audit = new AuditLog({ store, peppers, clock, logger, onCheckpoint: o.onCheckpoint })
  const validator = new KeyValidator({
    prefixes,
    cache,
    peppers,
    fingerprints,
    queue,
    gate: failures,
    events,
    clock,
  })
  // A record shows the last use still queued, not the stored one the flush overwrites.
  const record = (row: ApiKeyRow) =>
    toApiKeyRecord(row, clock(), queue.lastUsedOf(row.keyId), o.rotationThreshold)
  const shared = { store, peppers, cache, events, keyManager, clock, record }
  const issuer = new KeyIssuer({ ...shared, validator, random, options: o })
  const maintenance = new KeyMaintenance({ ...shared, prefixes, revoke: callbacks.revoke })
  return {
    setup,
    events,
    failures,
    fingerprints,
    peppers,
    cache,
    queue,
    audit,
    validator,
    issuer,
    maintenance,
  }
}

let warnedDefaultKms = false

/**
 * Migrates the store, unwraps the pepper (creating it on first start: one
 * KMS call either way, per pepper version), keys the audit chain,
 * subscribes to other processes' changes and starts the flush and
 * checkpoint timers.
 */
export async function startApiKeyManagerParts(
  parts: ApiKeyManagerParts,
  callbacks: Pick<ManagerCallbacks, 'checkpoint' | 'flush'>,
): Promise<RunningParts> {
  const { setup, peppers, cache, audit } = parts
  const { options: o, store, logger } = setup
  if (setup.defaultKms && !warnedDefaultKms) {
    warnedDefaultKms = true
    logger.warn(
      { component: 'ApiKeyManager' },
      'no keyManager given: the pepper is wrapped by an in-memory development KMS key, so stored keys will not validate after a restart',
    )
  }
  await store.migrate()
  await peppers.load()
  if (peppers.size === 0) await peppers.add(1, 'system')
  peppers.installAuditKeys()
  await audit.keyLegacyChain()
  if (o.retainEncryptedKey) await setup.keyManager.initialize()
  const onChange = (change: ApiKeyChange) => {
    if (change.event !== 'pepper') return cache.onChange(change)
    void peppers
      .load()
      .catch((err: unknown) =>
        logger.warn({ err: describeError(err) }, 'could not load a new API-key pepper'),
      )
  }
  const unsubscribe = await store.subscribe(onChange, () => cache.invalidateAll())
  const timers: NodeJS.Timeout[] = []
  timers.push(
    setInterval(() => {
      void callbacks.flush().catch(() => {})
    }, o.flushIntervalMs),
  )
  const every = o.auditCheckpointIntervalMs
  if (every !== false) {
    timers.push(
      setInterval(() => void audit.checkpointIfGrown(() => callbacks.checkpoint()), every),
    )
  }
  for (const timer of timers) timer.unref?.()
  return { timers, unsubscribe }
}

/**
 * Stops listening and wipes what can be wiped (peppers, subkeys, the
 * fingerprint salt, the cache); closes the store only if the manager
 * created it. The caller has stopped the timers and flushed.
 */
export async function releaseApiKeyManagerParts(
  parts: ApiKeyManagerParts,
  running: RunningParts | undefined,
): Promise<void> {
  await running?.unsubscribe().catch(() => {})
  await parts.failures?.close()
  parts.peppers.dispose()
  parts.fingerprints.dispose()
  parts.cache.clear()
  if (parts.setup.ownsStore) await parts.setup.store.close()
}
