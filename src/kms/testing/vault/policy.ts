/**
 * Vault ACL policies as the emulator enforces them: the capability a request
 * needs (Vault's existence checks) and the most-specific-path rule that
 * decides whether a policy grants it
 * (https://developer.hashicorp.com/vault/docs/concepts/policies#priority-matching).
 */

/** A Vault ACL capability (`path "..." { capabilities = [...] }`). */
export type VaultCapability = 'create' | 'read' | 'update' | 'delete' | 'list' | 'sudo' | 'deny'

/**
 * An ACL policy: path (relative to the namespace, as in HCL) → capabilities.
 * A path ending in `*` matches every path it prefixes; `+` matches one
 * segment. The most specific matching path decides, as in Vault; `deny` wins.
 *
 * @example
 * ```ts
 * const token = vault.createToken({
 *   'transit/encrypt/orders': ['update'],
 *   'transit/decrypt/orders': ['update'],
 * })
 * ```
 */
export type VaultPolicy = Readonly<Record<string, readonly VaultCapability[]>>

/**
 * The capability a request needs (Vault's existence checks): a write to a
 * key that does not exist yet is `create` on `encrypt/` and `keys/<k>`,
 * `update` otherwise; reads are `read`.
 */
export function capabilityFor(operation: string, keyExists: boolean): VaultCapability {
  switch (operation) {
    case 'readKey':
      return 'read'
    case 'encrypt':
    case 'createKey':
      return keyExists ? 'update' : 'create'
    default:
      return 'update'
  }
}

/** Whether `policy` grants `capability` on `path`, by Vault's most-specific-path rule. */
export function permits(policy: VaultPolicy, path: string, capability: VaultCapability): boolean {
  let best:
    | { rule: readonly VaultCapability[]; exact: boolean; length: number; wild: number }
    | undefined
  for (const [pattern, rule] of Object.entries(policy)) {
    const glob = pattern.endsWith('*')
    const stem = glob ? pattern.slice(0, -1) : pattern
    const parts = stem.split('/')
    const given = path.split('/')
    if (!glob && parts.length !== given.length) continue
    if (glob && given.length < parts.length) continue
    let ok = true
    for (let i = 0; i < parts.length; i++) {
      const last = i === parts.length - 1
      if (parts[i] === '+') continue
      if (glob && last ? !given[i]!.startsWith(parts[i]!) : parts[i] !== given[i]) ok = false
    }
    if (!ok) continue
    const candidate = {
      rule,
      exact: !glob,
      length: stem.length,
      wild: parts.filter((p) => p === '+').length,
    }
    if (
      best === undefined ||
      (candidate.exact && !best.exact) ||
      (candidate.exact === best.exact &&
        (candidate.wild < best.wild ||
          (candidate.wild === best.wild && candidate.length > best.length)))
    )
      best = candidate
  }
  if (best === undefined || best.rule.includes('deny')) return false
  return best.rule.includes(capability)
}
