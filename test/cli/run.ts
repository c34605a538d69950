/** Runs the CLI in-process with captured output. */
import { runCli } from '../../src/cli/main.js'

export interface CliRun {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

export async function cli(
  args: string[],
  env: Record<string, string | undefined> = {},
  cwd: string = process.cwd(),
): Promise<CliRun> {
  let stdout = ''
  let stderr = ''
  const code = await runCli(args, {
    stdout: (t) => {
      stdout += t
    },
    stderr: (t) => {
      stderr += t
    },
    env: { ...env },
    cwd,
  })
  return { code, stdout, stderr }
}
