/**
 * One entry point for every output: CycloneDX 1.6 (JSON or XML) and SPDX
 * 2.3 (JSON). SPDX 2.3 defines no XML serialization, so asking for one is a
 * configuration error rather than a silent switch to JSON.
 */
import { z } from 'zod'
import { parseOptions } from '../internal/options.js'
import { toCycloneDXJson, toCycloneDXXml } from './cyclonedx.js'
import type { SBOM } from './models.js'
import { toSPDXJson } from './spdx.js'

/** The SBOM standards the generator writes. */
export const SBOM_FORMATS = ['cyclonedx', 'spdx'] as const
export type SBOMFormat = (typeof SBOM_FORMATS)[number]

/** Encodings of a document. */
export const SBOM_OUTPUT_FORMATS = ['json', 'xml'] as const
export type SBOMOutputFormat = (typeof SBOM_OUTPUT_FORMATS)[number]

/**
 * Which document to write.
 *
 * @example
 * ```ts
 * import { SBOMOutputOptionsSchema } from 'fraiseql-security/sbom'
 *
 * SBOMOutputOptionsSchema.parse({ format: 'spdx' }) // { format: 'spdx', outputFormat: 'json' }
 * ```
 */
export const SBOMOutputOptionsSchema = z
  .object({
    /**
     * The standard: CycloneDX 1.6 or SPDX 2.3.
     * @default 'cyclonedx'
     */
    format: z.enum(SBOM_FORMATS).default('cyclonedx'),
    /**
     * The encoding. XML exists for CycloneDX only.
     * @default 'json'
     */
    outputFormat: z.enum(SBOM_OUTPUT_FORMATS).default('json'),
  })
  .strict()
  .refine((o) => !(o.format === 'spdx' && o.outputFormat === 'xml'), {
    message: 'SPDX 2.3 is written as JSON only',
    path: ['outputFormat'],
  })

export type SBOMOutputOptions = z.input<typeof SBOMOutputOptionsSchema>

/**
 * The SBOM as a CycloneDX 1.6 document.
 *
 * @example
 * ```ts
 * import { SBOMGenerator, toCycloneDX } from 'fraiseql-security/sbom'
 *
 * const sbom = await new SBOMGenerator().generate('.')
 * const xml = await toCycloneDX(sbom, 'xml')
 * ```
 */
export async function toCycloneDX(
  sbom: SBOM,
  outputFormat: SBOMOutputFormat = 'json',
): Promise<string> {
  const o = parseOptions('toCycloneDX', SBOMOutputOptionsSchema, { outputFormat })
  return o.outputFormat === 'xml' ? toCycloneDXXml(sbom) : toCycloneDXJson(sbom)
}

/**
 * The SBOM as an SPDX 2.3 JSON document.
 *
 * @example
 * ```ts
 * import { SBOMGenerator, toSPDX } from 'fraiseql-security/sbom'
 *
 * const sbom = await new SBOMGenerator().generate('.')
 * const json = toSPDX(sbom)
 * ```
 */
export function toSPDX(sbom: SBOM): string {
  return toSPDXJson(sbom)
}

/** `toCycloneDX` or `toSPDX`, as the options say. */
export async function serializeSBOM(sbom: SBOM, output?: SBOMOutputOptions): Promise<string> {
  const o = parseOptions('SBOM output', SBOMOutputOptionsSchema, output)
  return o.format === 'spdx' ? toSPDXJson(sbom) : toCycloneDX(sbom, o.outputFormat)
}
