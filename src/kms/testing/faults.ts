/**
 * Fault injection and call counting shared by the three emulators, so a test
 * can make any back end slow, flaky, throttled, skewed or gone, and count
 * exactly which operations reached it.
 */

/**
 * A failure the next requests get:
 * - `'unavailable'`: a 5xx / UNAVAILABLE answer, nothing done;
 * - `'throttle'`: a throttling answer (Vault 429, AWS `ThrottlingException`,
 *   Cloud KMS `RESOURCE_EXHAUSTED`), nothing done; with `retryAfterMs` the
 *   service's own hint is sent where its protocol has one (Vault's
 *   `Retry-After` header, Cloud KMS's `google.rpc.RetryInfo`);
 * - `'reset-after-commit'`: the request is carried out (a key rotated, a
 *   version created), then the connection drops before the answer (Cloud
 *   KMS: UNAVAILABLE after the change), so the client cannot tell whether it
 *   took effect;
 * - `'redirect'`: Vault only, a standby's `307 Temporary Redirect` to the
 *   active node (the emulator itself), which the client must follow once.
 */
export type FaultKind = 'unavailable' | 'throttle' | 'reset-after-commit' | 'redirect'

/** Details of a queued fault. */
export interface FaultOptions {
  /** For `'throttle'`: the wait the service asks for, where its protocol can say so. */
  readonly retryAfterMs?: number
  /**
   * Only requests of this operation (the names `calls` counts: Vault's
   * `rotate`, AWS's `RotateKeyOnDemand`, Cloud KMS's `CreateCryptoKeyVersion`)
   * get the fault; others pass.
   * @default every operation
   */
  readonly operation?: string
}

/** What an emulator does with the request in hand. */
export interface FaultDecision {
  /** Wait this long before answering. */
  readonly delayMs: number
  /** Answer with this failure instead (or, for `'reset-after-commit'`, after acting). */
  readonly fail: FaultKind | undefined
  /** For a `'throttle'` failure: the hint to send, in ms. */
  readonly retryAfterMs: number | undefined
  /** Act as if the service were gone (reset the connection / UNAVAILABLE). */
  readonly outage: boolean
  /** How far the service's clock is ahead of the emulator's own clock (negative: behind). */
  readonly clockSkewMs: number
}

interface Queued {
  readonly kind: FaultKind
  readonly retryAfterMs: number | undefined
  readonly operation: string | undefined
}

export class FaultInjector {
  #latencyMs = 0
  #outage = false
  #clockSkewMs = 0
  #decryptServerErrors = false
  #queue: Queued[] = []

  /** Every request waits `ms` before it is answered. */
  setLatency(ms: number): this {
    this.#latencyMs = Math.max(0, ms)
    return this
  }

  /** The next `count` requests fail with `kind`, then service resumes. */
  failNext(count: number, kind: FaultKind = 'unavailable', options: FaultOptions = {}): this {
    const retryAfterMs =
      options.retryAfterMs === undefined ? undefined : Math.max(0, options.retryAfterMs)
    const operation = options.operation
    for (let i = 0; i < count; i++) this.#queue.push({ kind, retryAfterMs, operation })
    return this
  }

  /** A full outage until turned off: connections are reset, gRPC answers UNAVAILABLE. */
  setOutage(on: boolean): this {
    this.#outage = on
    return this
  }

  /**
   * The service's clock runs `ms` ahead of the emulator's clock (negative:
   * behind), as when the client host's clock is off. Where requests carry a
   * signed time (AWS SigV4) the service judges them by this clock, and its
   * `Date` headers follow it.
   */
  setClockSkew(ms: number): this {
    this.#clockSkewMs = ms
    return this
  }

  /** The current skew (see {@link setClockSkew}). */
  get clockSkewMs(): number {
    return this.#clockSkewMs
  }

  /**
   * Answer decrypts whose authentication fails as a server error, as Vault
   * 1.4 to 1.6 did (500 `cipher: message authentication failed`,
   * hashicorp/vault#10842). Only the Vault emulator has such a mode: AWS KMS
   * and Cloud KMS always answer these with a client error.
   */
  setDecryptFailuresAsServerErrors(on: boolean): this {
    this.#decryptServerErrors = on
    return this
  }

  /** See {@link setDecryptFailuresAsServerErrors}. */
  get decryptFailuresAsServerErrors(): boolean {
    return this.#decryptServerErrors
  }

  reset(): this {
    this.#latencyMs = 0
    this.#outage = false
    this.#clockSkewMs = 0
    this.#decryptServerErrors = false
    this.#queue = []
    return this
  }

  /** Called by an emulator for each request, with the request's operation. */
  next(operation?: string): FaultDecision {
    const at = this.#outage
      ? -1
      : this.#queue.findIndex((q) => q.operation === undefined || q.operation === operation)
    const queued = at < 0 ? undefined : this.#queue.splice(at, 1)[0]
    return {
      delayMs: this.#latencyMs,
      fail: queued?.kind,
      retryAfterMs: queued?.retryAfterMs,
      outage: this.#outage,
      clockSkewMs: this.#clockSkewMs,
    }
  }
}

/** Counts requests per operation name (`Encrypt`, `encrypt`, ...). */
export class CallCounter {
  readonly #counts = new Map<string, number>()

  increment(operation: string): void {
    this.#counts.set(operation, (this.#counts.get(operation) ?? 0) + 1)
  }

  /** Requests seen for `operation`, or for all operations when omitted. */
  count(operation?: string): number {
    if (operation !== undefined) return this.#counts.get(operation) ?? 0
    let total = 0
    for (const n of this.#counts.values()) total += n
    return total
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries(this.#counts)
  }

  reset(): void {
    this.#counts.clear()
  }
}

/** What every emulator exposes to tests, on top of its connection details. */
export interface KmsEmulator {
  readonly calls: CallCounter
  readonly faults: FaultInjector
  close(): Promise<void>
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
