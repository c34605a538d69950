/**
 * A component's licenses as each format can hold them. CycloneDX 1.6 takes
 * either any number of `license` entries or exactly one `expression`, never
 * both; SPDX 2.3 takes one expression per package, where a license that is
 * not on the SPDX list must be a `LicenseRef-` with its text extracted.
 */
import { License } from './license.js'

/**
 * Several declared licenses (npm's legacy `licenses` array) are alternatives
 * the user may choose from, as npm's documentation describes dual licensing:
 * one OR-expression, compound parts in parentheses.
 */
function anyOf(parts: readonly string[]): string {
  if (parts.length === 1) return parts[0]!
  return parts.map((p) => (/\s/.test(p) ? `(${p})` : p)).join(' OR ')
}

/** The licenses as one SPDX expression, or undefined when one of them is a plain name. */
function combined(licenses: readonly License[]): string | undefined {
  const parts = licenses.map((l) => l.spdxExpression)
  return parts.every((p) => p !== undefined) ? anyOf(parts as string[]) : undefined
}

/**
 * The licenses to write to CycloneDX: unchanged unless an expression sits
 * beside other licenses, which the schema forbids; then one OR-expression
 * when every part is SPDX, else every part as a named license.
 */
export function cycloneDxLicenses(licenses: readonly License[]): readonly License[] {
  if (licenses.length < 2 || licenses.every((l) => l.kind !== 'expression')) return licenses
  const expression = combined(licenses)
  if (expression !== undefined) return [new License({ expression })]
  return licenses.map((l) =>
    l.kind === 'expression'
      ? new License({ name: l.toString() })
      : l.url === undefined
        ? l
        : new License({ name: l.toString(), url: l.url }),
  )
}

/** An SPDX idstring (SPDX 2.3 §3.2, §10.1): letters, digits, `.` and `-`. */
export function idstring(text: string): string {
  return text
    .replace(/[^A-Za-z0-9.-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .replace(/-{2,}/g, '-')
}

/** The `LicenseRef-` for a license known only by its name. */
export function licenseRefFor(name: string): string {
  const id = idstring(name)
  return `LicenseRef-${id === '' ? 'unnamed' : id}`
}

/**
 * One SPDX expression for the package, with every named license turned
 * into a `LicenseRef-`; `refs` collects those for `hasExtractedLicensingInfos`.
 * `NOASSERTION` when nothing was declared.
 */
export function spdxExpression(licenses: readonly License[], refs: Map<string, string>): string {
  if (licenses.length === 0) return 'NOASSERTION'
  const parts = licenses.map((l) => {
    const spdx = l.spdxExpression
    if (spdx !== undefined) return spdx
    const text = l.toString()
    const base = licenseRefFor(text)
    let ref = base
    // Two names that sanitize alike ("Public Domain", "Public-Domain") keep distinct refs.
    for (let n = 2; refs.has(ref) && refs.get(ref) !== text; n++) ref = `${base}-${n}`
    refs.set(ref, text)
    return ref
  })
  return anyOf(parts)
}
