/**
 * The contract between the CLI driver and each subcommand. A subcommand is
 * one file in `commands/` plus one line in `commands/index.ts`; the driver
 * owns help, exit codes and how errors are printed.
 */

/** Exit codes: 0 done, 1 the work failed (bad input, I/O), 2 the command line was wrong. */
export const EXIT = { OK: 0, FAILURE: 1, USAGE: 2 } as const
export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

/** What a command may touch: injected so tests run commands in-process. */
export interface CliIO {
  readonly stdout: (text: string) => void
  readonly stderr: (text: string) => void
  readonly env: Readonly<Record<string, string | undefined>>
  /** Directory relative paths are resolved against. */
  readonly cwd: string
}

export interface Command {
  readonly name: string
  /** The whole `--help` text. */
  readonly help: string
  /** Runs with the arguments after the command name; throws {@link UsageError} for a bad command line. */
  run(args: readonly string[], io: CliIO): Promise<ExitCode>
}

/** The command line is wrong: printed with a pointer to `--help`, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}
