/**
 * Licenses as an SBOM carries them: an SPDX identifier, an SPDX expression,
 * or a free-text name when the declared value is neither (`SEE LICENSE IN
 * LICENSE.md`, `Public Domain`). Classification follows the SPDX License
 * Expression grammar (SPDX 2.3, Annex D) as implemented by
 * spdx-expression-parse.
 */
import parseSpdx from 'spdx-expression-parse'
import { ConfigError } from '../errors.js'

/** What a {@link License} is built from: exactly one of `id`, `expression` or `name`. */
export type LicenseInit =
  | { readonly id: string; readonly url?: string }
  | { readonly expression: string }
  | { readonly name: string; readonly url?: string }

/** How a license was declared: a single SPDX id, a compound SPDX expression, or free text. */
export type LicenseKind = 'spdx' | 'expression' | 'named'

/** `LicenseRef-…`, `DocumentRef-…:LicenseRef-…`: valid in an expression, never a listed id. */
const LICENSE_REF = /^(DocumentRef-[A-Za-z0-9.-]+:)?LicenseRef-[A-Za-z0-9.-]+$/

function parses(value: string): ReturnType<typeof parseSpdx> | undefined {
  try {
    return parseSpdx(value)
  } catch {
    return undefined
  }
}

/** Whether `value` is one identifier of the SPDX License List (no `+`, no `WITH`). */
function isSpdxId(value: string): boolean {
  const ast = parses(value)
  return (
    ast !== undefined &&
    'license' in ast &&
    ast.license === value &&
    ast.plus !== true &&
    ast.exception === undefined &&
    !LICENSE_REF.test(value)
  )
}

/**
 * One license of a component.
 *
 * @example
 * ```ts
 * import { License } from 'fraiseql-security/sbom'
 *
 * License.fromString('MIT').id // 'MIT'
 * License.fromString('(MIT OR Apache-2.0)').expression // '(MIT OR Apache-2.0)'
 * License.fromString('SEE LICENSE IN LICENSE.md').name // 'SEE LICENSE IN LICENSE.md'
 * ```
 */
export class License {
  readonly kind: LicenseKind
  /** SPDX License List identifier, for `kind: 'spdx'`. */
  readonly id: string | undefined
  /** SPDX license expression, for `kind: 'expression'`. */
  readonly expression: string | undefined
  /** Free-text name, for `kind: 'named'`. */
  readonly name: string | undefined
  /** Where the license text is, when the package said. */
  readonly url: string | undefined

  /** @throws ConfigError (`ERR_CONFIG_INVALID`) when `id` or `expression` is not valid SPDX. */
  constructor(init: LicenseInit) {
    const url = 'url' in init ? init.url : undefined
    if ('id' in init) {
      if (!isSpdxId(init.id)) {
        throw new ConfigError('License', [
          { path: ['id'], message: 'not an SPDX License List identifier' },
        ])
      }
      this.kind = 'spdx'
      this.id = init.id
      this.expression = undefined
      this.name = undefined
    } else if ('expression' in init) {
      if (parses(init.expression) === undefined) {
        throw new ConfigError('License', [
          { path: ['expression'], message: 'not a valid SPDX license expression' },
        ])
      }
      this.kind = 'expression'
      this.id = undefined
      this.expression = init.expression
      this.name = undefined
    } else {
      if (init.name.trim() === '') {
        throw new ConfigError('License', [{ path: ['name'], message: 'must not be empty' }])
      }
      this.kind = 'named'
      this.id = undefined
      this.expression = undefined
      this.name = init.name
    }
    this.url = url
    Object.freeze(this)
  }

  /**
   * Classifies a declared license string: an SPDX id, else a valid SPDX
   * expression (including `LicenseRef-…`), else a named license.
   */
  static fromString(value: string, url?: string): License {
    const trimmed = value.trim()
    if (isSpdxId(trimmed))
      return new License(url === undefined ? { id: trimmed } : { id: trimmed, url })
    if (parses(trimmed) !== undefined) return new License({ expression: trimmed })
    return new License(url === undefined ? { name: trimmed } : { name: trimmed, url })
  }

  /** The license as an SPDX expression, or `undefined` for a named license. */
  get spdxExpression(): string | undefined {
    return this.id ?? this.expression
  }

  /** The declared text: the id, the expression or the name. */
  toString(): string {
    return (this.id ?? this.expression ?? this.name) as string
  }

  toJSON(): Record<string, string> {
    const out: Record<string, string> = {}
    if (this.id !== undefined) out.id = this.id
    if (this.expression !== undefined) out.expression = this.expression
    if (this.name !== undefined) out.name = this.name
    if (this.url !== undefined) out.url = this.url
    return out
  }
}
