/**
 * `fraiseql-security sbom`: an SBOM of the npm project at [path] (a
 * directory or a lockfile), on stdout or in a file.
 */
import { randomBytes } from 'node:crypto'
import { rename, rm, writeFile } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { sourceDateEpochFrom } from '../../internal/source-date-epoch.js'
import type { SBOMFormat, SBOMOutputFormat } from '../../sbom/index.js'
import { type CliIO, type Command, EXIT, type ExitCode, UsageError } from '../command.js'

const HELP = `Usage: fraiseql-security sbom [options] [path]

Writes a software bill of materials of the npm project at [path] (default:
the current directory) from its lockfile (npm-shrinkwrap.json or
package-lock.json, lockfile version 2 or 3) and package.json. npm is not run
and the network is not used.

Options:
  -f, --format <cyclonedx|spdx>  SBOM standard: CycloneDX 1.6 or SPDX 2.3 (default: cyclonedx)
      --output-format <json|xml> Encoding; XML is CycloneDX only (default: json)
  -o, --output <file>            Write to <file> instead of stdout ("-" is stdout)
      --include-dev              Include packages needed only for development
  -h, --help                     Show this help

Environment:
  SOURCE_DATE_EPOCH              Seconds since 1970-01-01T00:00:00Z: fixes the
                                 timestamp and serial number, so the same
                                 lockfile gives byte-identical output

Exit codes: 0 written, 1 the input could not be used (message on stderr),
2 the command line is wrong.

Examples:
  fraiseql-security sbom > sbom.cdx.json
  fraiseql-security sbom --format spdx --output sbom.spdx.json
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) fraiseql-security sbom --output-format xml -o sbom.cdx.xml
`

function oneOf<T extends string>(
  flag: string,
  value: string | undefined,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback
  if ((allowed as readonly string[]).includes(value)) return value as T
  throw new UsageError(`${flag} must be one of ${allowed.join(', ')}`)
}

/** Same directory, then rename: a reader never sees half an SBOM. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const { SBOMError } = await import('../../sbom/index.js')
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`)
  try {
    await writeFile(tmp, text, { mode: 0o644 })
    await rename(tmp, file)
  } catch (err) {
    await rm(tmp, { force: true })
    const code = (err as { code?: unknown }).code
    throw new SBOMError(file, `${file}: cannot be written (${String(code ?? err)})`)
  }
}

const LABELS: Readonly<Record<SBOMFormat, string>> = {
  cyclonedx: 'CycloneDX 1.6',
  spdx: 'SPDX 2.3',
}

export const sbomCommand: Command = {
  name: 'sbom',
  help: HELP,
  async run(args: readonly string[], io: CliIO): Promise<ExitCode> {
    // Loaded here, not at the top: `sbom --help` needs none of it.
    const { SBOM_FORMATS, SBOM_OUTPUT_FORMATS, SBOMGenerator } = await import('../../sbom/index.js')
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      strict: true,
      options: {
        format: { type: 'string', short: 'f' },
        'output-format': { type: 'string' },
        output: { type: 'string', short: 'o' },
        'include-dev': { type: 'boolean' },
      },
    })
    if (positionals.length > 1) {
      throw new UsageError(`expected at most one path, got ${positionals.length}`)
    }
    const format = oneOf('--format', values.format, SBOM_FORMATS, 'cyclonedx')
    const outputFormat: SBOMOutputFormat = oneOf(
      '--output-format',
      values['output-format'],
      SBOM_OUTPUT_FORMATS,
      'json',
    )
    if (format === 'spdx' && outputFormat === 'xml') {
      throw new UsageError('--output-format xml is for CycloneDX only; SPDX 2.3 is written as JSON')
    }
    if (values.output === '') throw new UsageError('--output needs a file name')

    const epoch = sourceDateEpochFrom(io.env.SOURCE_DATE_EPOCH)
    const generator = new SBOMGenerator({
      includeDev: values['include-dev'] === true,
      ...(epoch === undefined ? {} : { sourceDateEpoch: epoch }),
    })
    const sbom = await generator.generate(resolve(io.cwd, positionals[0] ?? '.'))
    const text = await generator.serialize(sbom, { format, outputFormat })

    if (values.output === undefined || values.output === '-') {
      io.stdout(text)
    } else {
      const file = resolve(io.cwd, values.output)
      await writeAtomically(file, text)
      io.stderr(
        `fraiseql-security sbom: wrote ${values.output} (${LABELS[format]} ${outputFormat.toUpperCase()}, ${sbom.components.length} components)\n`,
      )
    }
    return EXIT.OK
  },
}
