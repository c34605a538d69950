#!/usr/bin/env node
/**
 * @module fraiseql-security/cli
 *
 * The `fraiseql-security` executable: `fraiseql-security <command> [options]`.
 * See `fraiseql-security --help`.
 */
import module from 'node:module'
import type { CliIO } from './command.js'

// Node.js 22.1+: keep compiled code on disk between runs (a CLI is all
// start-up). Absent on Node.js 20, where this is a no-op. It must run before
// the rest of the CLI is imported, hence the dynamic import below.
;(module as { enableCompileCache?: () => unknown }).enableCompileCache?.()

const { runCli } = await import('./main.js')

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
