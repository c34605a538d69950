#!/usr/bin/env node
/**
 * @module fraiseql-security/cli
 *
 * The `fraiseql-security` executable: `fraiseql-security <command> [options]`.
 * See `fraiseql-security --help`.
 */
import type { CliIO } from './command.js'
import { runCli } from './main.js'

const io: CliIO = {
  stdout: (text) => {
    process.stdout.write(text)
  },
  stderr: (text) => {
    process.stderr.write(text)
  },
  env: process.env,
  cwd: process.cwd(),
}

// A reader that stops early (`| head`) closes the pipe: that is not our failure.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err
})

// exitCode, not exit(): pending stdout writes to a pipe still drain.
process.exitCode = await runCli(process.argv.slice(2), io)
