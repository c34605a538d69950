/**
 * Cloud KMS resource names (https://cloud.google.com/kms/docs/resource-hierarchy):
 * the id syntax the options and key ids are checked against, and reading a
 * version number back out of a `CryptoKeyVersion` name.
 */

/** KeyRing and CryptoKey ids, as Cloud KMS defines them. */
export const RESOURCE_ID = /^[A-Za-z0-9_-]{1,63}$/
export const FULL_KEY_NAME =
  /^projects\/([^/]{1,100})\/locations\/([^/]{1,63})\/keyRings\/([^/]{1,63})\/cryptoKeys\/([^/]{1,63})$/
export const PROJECT_ID = /^(?:[a-z0-9.-]{1,63}:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$/
export const LOCATION_ID = /^[a-z0-9-]{1,63}$/

/** The version number in `<keyName>/cryptoKeyVersions/<n>`, or undefined for any other name. */
export function versionOf(name: string | null | undefined, keyName: string): number | undefined {
  const prefix = `${keyName}/cryptoKeyVersions/`
  if (typeof name !== 'string' || !name.startsWith(prefix)) return undefined
  const id = name.slice(prefix.length)
  return /^[1-9][0-9]{0,15}$/.test(id) ? Number(id) : undefined
}
