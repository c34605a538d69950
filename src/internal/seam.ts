/**
 * A seam: how one capability hands a private piece of itself to another
 * without publishing it. Capabilities meet only through their public entries
 * or `internal/` (test/architecture/boundaries.test.ts), so the consumer
 * cannot import the provider's private file; instead the provider's module
 * provides the implementation once, when it loads, and the consumer asks the
 * seam for it. The seams: `reserved-access.ts` (KeyManager → api-keys) and
 * `graphql-enforcement.ts` (graphql → profiles).
 */
import { SeamError } from '../errors.js'

/** One seam: provided once, then used any number of times. */
export class Seam<T> {
  #provided: T | undefined

  /**
   * `name` says what passes through it; `provider` names the module that
   * provides it, for the message of a consumer that comes first.
   */
  constructor(
    readonly name: string,
    readonly provider: string,
  ) {}

  /** Called once, by the provider's module as it loads; a second caller is refused. */
  provide(implementation: T): void {
    // Invariant: whoever provides first owns the seam, so nothing loaded
    // later can stand in for the provider and receive what the consumer
    // passes through it.
    if (this.#provided !== undefined) throw new SeamError(`${this.name} is already provided`)
    this.#provided = implementation
  }

  /** The implementation; refused before the provider's module has loaded. */
  use(): T {
    if (this.#provided === undefined) {
      throw new SeamError(`${this.name} is not provided: ${this.provider} is not loaded`)
    }
    return this.#provided
  }
}
