/**
 * @module fraiseql-security/kms/testing
 *
 * Wire-level emulators of Vault Transit (HTTP), AWS KMS (JSON 1.1 over HTTP,
 * SigV4 checked) and Google Cloud KMS (gRPC), on 127.0.0.1, with call
 * counters and fault injection, for testing code that uses the providers
 * through their real client libraries.
 */
export type { FaultDecision, FaultKind, KmsEmulator } from './faults.js'
export { CallCounter, FaultInjector } from './faults.js'
