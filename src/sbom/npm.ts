/**
 * npm facts turned into SBOM fields: `integrity` strings into hashes, names
 * and versions into purls, package.json fields into licenses, authors and
 * links.
 */
import { PackageURL } from 'packageurl-js'
import { isJsonObject } from './json-file.js'
import { License } from './license.js'
import type { ExternalReference, Hash, HashAlgorithm, SBOMContact } from './models.js'

/** Subresource Integrity algorithm tokens (W3C SRI §3.5) npm writes, to CycloneDX names. */
const SRI_ALGORITHMS: Readonly<Record<string, HashAlgorithm>> = {
  sha1: 'SHA-1',
  sha256: 'SHA-256',
  sha384: 'SHA-384',
  sha512: 'SHA-512',
}

/** Bytes each algorithm's digest has: a digest of another length is not one. */
const DIGEST_BYTES: Readonly<Record<HashAlgorithm, number>> = {
  'SHA-1': 20,
  'SHA-256': 32,
  'SHA-384': 48,
  'SHA-512': 64,
}

/**
 * Every hash in an SRI string (`sha512-<base64> sha1-<base64>`), as hex.
 * Options after `?` are ignored (SRI §3.5); unknown algorithms and digests
 * of the wrong length are skipped rather than reported as false facts.
 */
export function integrityToHashes(integrity: string | undefined): Hash[] {
  if (integrity === undefined) return []
  const out: Hash[] = []
  const seen = new Set<HashAlgorithm>()
  for (const token of integrity.trim().split(/\s+/)) {
    const dash = token.indexOf('-')
    if (dash <= 0) continue
    const algorithm = SRI_ALGORITHMS[token.slice(0, dash).toLowerCase()]
    if (algorithm === undefined || seen.has(algorithm)) continue
    const base64 = token.slice(dash + 1).split('?', 1)[0]!
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) continue
    const bytes = Buffer.from(base64, 'base64')
    if (bytes.length !== DIGEST_BYTES[algorithm]) continue
    seen.add(algorithm)
    out.push({ algorithm, value: bytes.toString('hex') })
  }
  return out
}

/** npm's own tarball URL shape, `…/<name>/-/<basename>-<version>.tgz`: no qualifier needed. */
function isRegistryTarball(url: string, name: string, version: string): boolean {
  const base = name.startsWith('@') ? name.slice(name.indexOf('/') + 1) : name
  return url.endsWith(`/${name}/-/${base}-${version}.tgz`)
}

/**
 * `pkg:npm/%40scope/name@version` (purl spec, npm type). A package that does
 * not come from a registry says where it does: `vcs_url` for git,
 * `download_url` for another tarball URL.
 */
export function npmPurl(name: string, version: string, resolved?: string): string {
  const slash = name.startsWith('@') ? name.indexOf('/') : -1
  const namespace = slash === -1 ? undefined : name.slice(0, slash)
  const base = slash === -1 ? name : name.slice(slash + 1)
  let qualifiers: Record<string, string> | undefined
  if (resolved !== undefined) {
    if (/^git(\+[a-z]+)?:|^github:|^gitlab:|^bitbucket:/.test(resolved)) {
      qualifiers = { vcs_url: resolved }
    } else if (/^https?:\/\//.test(resolved) && !isRegistryTarball(resolved, name, version)) {
      qualifiers = { download_url: resolved }
    }
  }
  return new PackageURL('npm', namespace, base, version, qualifiers, undefined).toString()
}

/**
 * Licenses are immutable and a lockfile repeats a handful of values hundreds
 * of times: parse each string once. Bounded, so a long-lived process reading
 * many lockfiles cannot grow it without limit.
 */
const parsed = new Map<string, License>()
const PARSED_MAX = 2048

function cachedLicense(value: string): License {
  let license = parsed.get(value)
  if (license === undefined) {
    license = License.fromString(value)
    if (parsed.size >= PARSED_MAX) parsed.clear()
    parsed.set(value, license)
  }
  return license
}

/** Licenses from a package.json-shaped `license` / legacy `licenses` value. */
export function licensesFrom(value: unknown): License[] {
  if (typeof value === 'string') return value.trim() === '' ? [] : [cachedLicense(value)]
  // Legacy `{ type, url }` and `[{ type, url }, …]` forms (npm still accepts them).
  const items = Array.isArray(value) ? value : isJsonObject(value) ? [value] : []
  const out: License[] = []
  for (const item of items) {
    if (typeof item === 'string' && item.trim() !== '') out.push(cachedLicense(item))
    else if (isJsonObject(item) && typeof item.type === 'string' && item.type.trim() !== '') {
      out.push(License.fromString(item.type, typeof item.url === 'string' ? item.url : undefined))
    }
  }
  return out
}

/** `"Name <email> (url)"` or `{ name, email, url }`, the package.json person forms. */
export function personFrom(value: unknown): SBOMContact | undefined {
  if (typeof value === 'string') {
    const m = /^\s*([^<(]*?)\s*(?:<([^>]*)>)?\s*(?:\(([^)]*)\))?\s*$/.exec(value)
    const name = m?.[1]?.trim() || value.trim()
    if (name === '') return undefined
    return {
      name,
      ...(m?.[2] ? { email: m[2].trim() } : {}),
      ...(m?.[3] ? { url: m[3].trim() } : {}),
    }
  }
  if (isJsonObject(value) && typeof value.name === 'string' && value.name.trim() !== '') {
    return {
      name: value.name.trim(),
      ...(typeof value.email === 'string' && value.email !== '' ? { email: value.email } : {}),
      ...(typeof value.url === 'string' && value.url !== '' ? { url: value.url } : {}),
    }
  }
  return undefined
}

/** An absolute URL with no whitespace: what CycloneDX's `iri-reference` and SPDX accept. */
function usableUrl(value: unknown): string | undefined {
  if (typeof value !== 'string' || /\s/.test(value) || !URL.canParse(value)) return undefined
  return value
}

/** `homepage`, `repository`, `bugs` of a package.json as external references. */
export function referencesFrom(manifest: Record<string, unknown>): ExternalReference[] {
  const out: ExternalReference[] = []
  const website = usableUrl(manifest.homepage)
  if (website !== undefined) out.push({ type: 'website', url: website })
  const repo = manifest.repository
  const vcs = usableUrl(isJsonObject(repo) ? repo.url : repo)
  if (vcs !== undefined) out.push({ type: 'vcs', url: vcs })
  const bugs = manifest.bugs
  const tracker = usableUrl(isJsonObject(bugs) ? bugs.url : bugs)
  if (tracker !== undefined) out.push({ type: 'issue-tracker', url: tracker })
  return out
}

/** The `resolved` URL as a distribution reference, when it is a URL (not a path). */
export function distributionFrom(resolved: string | undefined): ExternalReference[] {
  const url = /^https?:\/\//.test(resolved ?? '') ? usableUrl(resolved) : undefined
  return url === undefined ? [] : [{ type: 'distribution', url }]
}
