/**
 * Lifecycle events of `ApiKeyManager`, so owners can be told before a key
 * stops working. Listeners get ids, names and dates, never a key or hash.
 */
import { describeError, type Logger } from '../internal/logger.js'

/** What every lifecycle event carries. */
export interface ApiKeyLifecycleEvent {
  readonly keyId: string
  readonly name: string
  readonly createdAt: Date
  readonly expiresAt: Date
}

export interface ApiKeyEvents {
  /** The key passed `rotationThreshold` (80 %) of its lifetime: `shouldRotate` is now true. */
  rotationRecommended: ApiKeyLifecycleEvent
  /** The key expires within `expiringSoonDays`. */
  expiringSoon: ApiKeyLifecycleEvent
  /** The key expired (seen on a validation or by `checkLifecycle()`). */
  expired: ApiKeyLifecycleEvent
  /** A key was created (by this process). */
  created: ApiKeyLifecycleEvent
  /** A key was rotated (by this process); `replacedBy` is the new key's id. */
  rotated: ApiKeyLifecycleEvent & { readonly replacedBy: string; readonly graceUntil: Date }
  /** A key was revoked (by this process), e.g. after a leak report. */
  revoked: ApiKeyLifecycleEvent & { readonly reason: string }
}

export type ApiKeyEventName = keyof ApiKeyEvents
export type ApiKeyEventListener<E extends ApiKeyEventName> = (event: ApiKeyEvents[E]) => void

/** A small typed emitter: a throwing listener is logged and never breaks the caller. */
export class LifecycleEmitter {
  readonly #listeners = new Map<ApiKeyEventName, Set<(event: never) => void>>()
  readonly #logger: Logger

  constructor(logger: Logger) {
    this.#logger = logger
  }

  on<E extends ApiKeyEventName>(event: E, listener: ApiKeyEventListener<E>): () => void {
    let set = this.#listeners.get(event)
    if (set === undefined) {
      set = new Set()
      this.#listeners.set(event, set)
    }
    set.add(listener as (event: never) => void)
    return () => this.off(event, listener)
  }

  off<E extends ApiKeyEventName>(event: E, listener: ApiKeyEventListener<E>): void {
    this.#listeners.get(event)?.delete(listener as (event: never) => void)
  }

  has(event: ApiKeyEventName): boolean {
    return (this.#listeners.get(event)?.size ?? 0) > 0
  }

  emit<E extends ApiKeyEventName>(event: E, payload: ApiKeyEvents[E]): void {
    const set = this.#listeners.get(event)
    if (set === undefined) return
    for (const listener of set) {
      try {
        ;(listener as ApiKeyEventListener<E>)(payload)
      } catch (err) {
        this.#logger.warn({ err: describeError(err), event }, 'API-key event listener threw')
      }
    }
  }
}
