/**
 * @module fraiseql-security/kms/testing
 *
 * Wire-level emulators of Vault Transit (HTTP), AWS KMS (JSON 1.1 over HTTP,
 * SigV4 checked) and Google Cloud KMS (gRPC), on 127.0.0.1, with call
 * counters and fault injection, for testing code that uses the providers
 * through their real client libraries; and the contract suite every KMS
 * provider passes (`describeKmsProviderContract`), for testing a provider of
 * your own under vitest, jest or node:test.
 */

export { nodeTestExpect } from '../../internal/testing/node-expect.js'
export type { ContractMatchers, ContractRunner } from '../../internal/testing/runner.js'
export type { AwsKmsEmulatorAction } from './aws/actions.js'
export { AWS_KMS_EMULATOR_ACTIONS } from './aws/actions.js'
export type { AwsEmulatorCredentials } from './aws/sigv4.js'
export type {
  AwsKmsEmulator,
  AwsKmsEmulatorOptions,
  AwsKmsRequestRecord,
} from './aws-emulator.js'
export { startAwsKmsEmulator } from './aws-emulator.js'
export type { FaultDecision, FaultKind, FaultOptions, KmsEmulator } from './faults.js'
export { CallCounter, FaultInjector } from './faults.js'
export type {
  GcpCorruption,
  GcpEmulatorKeyOptions,
  GcpEmulatorProtectionLevel,
  GcpEmulatorRequest,
  GcpEmulatorVersionState,
  GcpKmsEmulator,
  GcpKmsEmulatorOptions,
} from './gcp-emulator.js'
export { GcpKmsEmulatorOptionsSchema, startGcpKmsEmulator } from './gcp-emulator.js'
export type {
  ContractFault,
  ContractOptions,
  KmsProviderHarness,
  OperationNames,
  ProviderKind,
} from './provider-contract.js'
export {
  describeKmsProviderContract,
  FAULT_APPLICABILITY,
  recordingSleep,
} from './provider-contract.js'
export type { VaultCapability, VaultPolicy } from './vault/policy.js'
export type {
  VaultEmulatorKeyOptions,
  VaultEmulatorKeyType,
  VaultEmulatorOptions,
  VaultEmulatorRequest,
} from './vault-emulator.js'
export { startVaultEmulator, VaultEmulator } from './vault-emulator.js'
