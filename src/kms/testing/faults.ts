/**
 * Fault injection and call counting shared by the three emulators, so a test
 * can make any back end slow, flaky, throttled or gone, and count exactly
 * which operations reached it.
 */

/** A transient failure the next requests get: a 5xx/UNAVAILABLE, or throttling. */
export type FaultKind = 'unavailable' | 'throttle'

/** What an emulator does with the request in hand. */
export interface FaultDecision {
  /** Wait this long before answering. */
  readonly delayMs: number
  /** Answer with this transient failure instead. */
  readonly fail: FaultKind | undefined
  /** Act as if the service were gone (reset the connection / UNAVAILABLE). */
  readonly outage: boolean
}

export class FaultInjector {
  #latencyMs = 0
  #outage = false
  #queue: FaultKind[] = []

  /** Every request waits `ms` before it is answered. */
  setLatency(ms: number): this {
    this.#latencyMs = Math.max(0, ms)
    return this
  }

  /** The next `count` requests fail with `kind`, then service resumes. */
  failNext(count: number, kind: FaultKind = 'unavailable'): this {
    for (let i = 0; i < count; i++) this.#queue.push(kind)
    return this
  }

  /** A full outage until turned off: connections are reset, gRPC answers UNAVAILABLE. */
  setOutage(on: boolean): this {
    this.#outage = on
    return this
  }

  reset(): this {
    this.#latencyMs = 0
    this.#outage = false
    this.#queue = []
    return this
  }

  /** Called by an emulator for each request. */
  next(): FaultDecision {
    return {
      delayMs: this.#latencyMs,
      fail: this.#outage ? undefined : this.#queue.shift(),
      outage: this.#outage,
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
