/**
 * The CLI driver: picks the command, prints help, and turns every outcome
 * into an exit code (0 done, 1 failed, 2 wrong command line) with errors on
 * stderr. Commands never call `process.exit` or write to the console directly.
 */
import { SecurityError } from '../errors.js'
import { type CliIO, EXIT, type ExitCode, UsageError } from './command.js'
import { COMMANDS } from './commands/index.js'

const BIN = 'fraiseql-security'

function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length))
  const list = Object.entries(COMMANDS)
    .map(([name, entry]) => `  ${name.padEnd(width)}  ${entry.summary}`)
    .join('\n')
  return `Usage: ${BIN} <command> [options]

Commands:
${list}

Options:
  -h, --help     Show this help, or a command's with \`${BIN} <command> --help\`
  -v, --version  Show the version

Exit codes: 0 done, 1 the command failed, 2 the command line is wrong.
`
}

/** Node's parseArgs errors are usage errors; everything else is the command's failure. */
function isArgError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')
}

/** The message without Node's hint, which names flags our help already lists. */
function argMessage(err: unknown): string {
  return String((err as Error).message)
    .split('. To specify a positional argument')[0]!
    .trim()
}

/**
 * Runs `fraiseql-security <argv…>` and returns the exit code.
 *
 * @example
 * ```ts nocheck
 * const code = await runCli(['sbom', '--format', 'spdx'], io)
 * ```
 */
export async function runCli(argv: readonly string[], io: CliIO): Promise<ExitCode> {
  const [first, ...rest] = argv
  if (first === undefined) {
    io.stderr(mainHelp())
    return EXIT.USAGE
  }
  if (first === '-h' || first === '--help' || first === 'help') {
    const topic = first === 'help' ? rest[0] : undefined
    if (topic !== undefined && Object.hasOwn(COMMANDS, topic)) {
      io.stdout((await COMMANDS[topic]!.load()).help)
    } else {
      io.stdout(mainHelp())
    }
    return EXIT.OK
  }
  if (first === '-v' || first === '--version') {
    const { ownManifest } = await import('../internal/own-manifest.js')
    io.stdout(`${ownManifest().version}\n`)
    return EXIT.OK
  }
  if (!Object.hasOwn(COMMANDS, first)) {
    io.stderr(
      `${BIN}: unknown command "${first}"; commands: ${Object.keys(COMMANDS).join(', ')}. See \`${BIN} --help\`.\n`,
    )
    return EXIT.USAGE
  }
  const command = await COMMANDS[first]!.load()
  const prefix = `${BIN} ${command.name}`
  // Every command's help, here once: `-h`/`--help` anywhere before a `--`.
  const end = rest.indexOf('--')
  const flags = end === -1 ? rest : rest.slice(0, end)
  if (flags.includes('--help') || flags.includes('-h')) {
    io.stdout(command.help)
    return EXIT.OK
  }
  try {
    return await command.run(rest, io)
  } catch (err) {
    if (err instanceof UsageError || isArgError(err)) {
      io.stderr(`${prefix}: ${argMessage(err)}\nSee \`${prefix} --help\`.\n`)
      return EXIT.USAGE
    }
    if (err instanceof SecurityError) {
      io.stderr(`${prefix}: ${err.message} [${err.code}]\n`)
      return EXIT.FAILURE
    }
    // One line with the cause (refused, TLS, 401...), never a stack trace.
    io.stderr(`${prefix}: ${oneLine(err)}\n`)
    return EXIT.FAILURE
  }
}

/**
 * An error and its causes as one line: `fetch failed` alone says nothing,
 * its cause says `connect ECONNREFUSED 127.0.0.1:3000` or names the TLS
 * failure. Messages only (ours never carry a secret); no stack.
 */
function oneLine(err: unknown): string {
  const parts: string[] = []
  let e: unknown = err
  for (let depth = 0; e !== undefined && e !== null && depth < 4; depth++) {
    const message = e instanceof Error ? e.message : String(e)
    const code = (e as { code?: unknown }).code
    const text =
      typeof code === 'string' && !message.includes(code) ? `${message} (${code})` : message
    if (text !== '' && !parts.includes(text)) parts.push(text.replace(/\s*\n\s*/g, ' '))
    // Happy eyeballs reports each address tried in an AggregateError.
    e = e instanceof AggregateError && e.cause === undefined ? e.errors[0] : (e as Error).cause
  }
  return parts.length === 0 ? 'failed' : parts.join(': ')
}
