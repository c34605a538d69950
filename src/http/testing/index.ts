/**
 * @module fraiseql-security/http/testing
 *
 * The contract suite every rate-limit store passes, for testing a store of
 * your own under vitest, jest or node:test. The sliding-window arithmetic a
 * store needs is exported from `fraiseql-security/http`.
 */

export { nodeTestExpect } from '../../internal/testing/node-expect.js'
export type { ContractMatchers, ContractRunner } from '../../internal/testing/runner.js'
export type {
  RateLimitStoreContractOptions,
  RateLimitStoreHarness,
} from './store-contract.js'
export { describeRateLimitStoreContract } from './store-contract.js'
