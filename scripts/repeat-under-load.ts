/**
 * Runs the suites that race for real (the example server end to end, the
 * multi-process ones, the shared rate-limit and API-key stores) N times in a
 * row while a CPU burner child keeps every core busy, and reports failures
 * per file and a summary. A flaky test shows up here long before CI.
 *
 * Usage:
 *   npm run test:repeat -- [--runs 20] [--node /path/to/node] [--no-burner]
 *                          [--no-build] [file ...]
 *
 * `--node` runs vitest (and, through process.execPath, every process the
 * tests spawn) on another Node.js. better-sqlite3 is built against V8's ABI:
 * when the one in node_modules does not load on that Node.js, a copy built
 * for its ABI (node-gyp against the headers next to its bin/, as .ci/run
 * does, or .ci/run's cached build when there is one) is kept in
 * .ci/cache/ and served by scripts/sqlite-abi-hook.mjs; the shared
 * node_modules is never modified. Exit code 1 when any run failed.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { availableParallelism } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const cache = join(root, '.ci', 'cache')

/** The suites where a race would show: real processes, sockets and shared services. */
const DEFAULT_FILES = [
  // End to end: the example server as a child process over HTTPS.
  'test/examples/graphql-server.e2e.test.ts',
  // Multi-process: processes released together on one SQLite file, one key
  // file, one PostgreSQL keyring; and the start barrier they share.
  'test/kms/keyring-sqlite.test.ts',
  'test/regressions/local-kms-key-file-shared.test.ts',
  'test/kms/key-manager.postgres.test.ts',
  'test/regressions/worker-exit-before-ready.test.ts',
  // Shared stores: two instances on one Redis / PostgreSQL, an outage through a proxy.
  'test/http/rate-limit/shared-stores.test.ts',
  'test/api-keys/manager.postgres.test.ts',
]

const { values, positionals } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    node: { type: 'string', default: process.execPath },
    'no-burner': { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
  },
  allowPositionals: true,
})

const runs = Number(values.runs)
if (!Number.isInteger(runs) || runs < 1 || runs > 1000) {
  fail(`--runs must be an integer from 1 to 1000, got ${values.runs}`)
}
const node = resolve(values.node)
if (!existsSync(node)) fail(`--node ${node} does not exist`)
const files = positionals.length > 0 ? positionals : DEFAULT_FILES
for (const f of files) if (!existsSync(join(root, f))) fail(`no such test file: ${f}`)

function fail(message: string): never {
  console.error(`repeat: ${message}`)
  process.exit(2)
}

/** `node -p <expr>` on the chosen Node.js, in the repository. */
function probe(expr: string, env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync(node, ['-p', expr], {
    cwd: root,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim()
}

/**
 * The environment that makes better-sqlite3 load on the chosen Node.js: none
 * when node_modules' build already does, else the per-ABI copy and the hook.
 */
function sqliteEnv(): NodeJS.ProcessEnv {
  const loads = (env: NodeJS.ProcessEnv) => {
    try {
      return (
        probe("new (require('better-sqlite3'))(':memory:').pragma('user_version').length", env) ===
        '1'
      )
    } catch {
      return false
    }
  }
  if (loads(process.env)) return {}
  const original = join(root, 'node_modules', 'better-sqlite3')
  const version = JSON.parse(readFileSync(join(original, 'package.json'), 'utf8')).version as string
  const abi = probe('process.versions.modules')
  const copy = join(cache, `better-sqlite3-${version}-abi${abi}`)
  const binary = join(copy, 'build', 'Release', 'better_sqlite3.node')
  if (!existsSync(binary)) {
    console.log(
      `repeat: building better-sqlite3 ${version} for ABI ${abi} in ${relative(root, copy)}`,
    )
    rmSync(copy, { recursive: true, force: true })
    mkdirSync(copy, { recursive: true })
    for (const part of ['binary.gyp', 'binding.gyp', 'deps', 'lib', 'package.json', 'src']) {
      if (existsSync(join(original, part)))
        cpSync(join(original, part), join(copy, part), { recursive: true })
    }
    const ciBuild = join(cache, `better-sqlite3-${version}-abi${abi}.node`)
    if (existsSync(ciBuild)) {
      mkdirSync(dirname(binary), { recursive: true })
      copyFileSync(ciBuild, binary)
    } else {
      const nodedir = resolve(dirname(node), '..')
      if (!existsSync(join(nodedir, 'include', 'node', 'node.h'))) {
        fail(`${nodedir}/include/node has no headers to build better-sqlite3 for ${node}`)
      }
      const gyp = join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
      execFileSync(
        node,
        [gyp, 'rebuild', '--release', `--nodedir=${nodedir}`, `--jobs=${availableParallelism()}`],
        {
          cwd: copy,
          stdio: ['ignore', 'ignore', 'inherit'],
          // npm exports its own `nodedir` setting (this machine's npmrc names
          // /usr) to scripts it runs, and node-gyp prefers it to --nodedir.
          env: {
            ...process.env,
            npm_config_nodedir: nodedir,
            PATH: `${dirname(node)}:${process.env.PATH ?? ''}`,
          },
        },
      )
    }
  }
  const hook = join(root, 'scripts', 'sqlite-abi-hook.mjs')
  const env = {
    FSL_BETTER_SQLITE3_DIR: copy,
    FSL_BETTER_SQLITE3_ORIGINAL: original,
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${hook}`.trim(),
  }
  if (!loads({ ...process.env, ...env }))
    fail(`better-sqlite3 built in ${copy} does not load on ${node}`)
  return env
}

/**
 * A child spinning one worker thread per core until it is stopped; it also
 * stops itself when this process goes away (its IPC channel closes), so an
 * interrupted run never leaves a burner behind.
 */
function startBurner(): ChildProcess {
  const code = `
    const { Worker } = require('node:worker_threads')
    const n = require('node:os').availableParallelism()
    for (let i = 0; i < n; i++) new Worker('for (;;) {}', { eval: true })
    process.on('disconnect', () => process.exit(0))
  `
  const burner = spawn(process.execPath, ['-e', code], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  })
  burner.unref()
  return burner
}

interface FileReport {
  failedRuns: number[]
  failures: string[]
}

interface VitestJson {
  testResults?: {
    name: string
    status: string
    message?: string
    assertionResults?: { fullName: string; status: string; failureMessages?: string[] }[]
  }[]
}

/** The vitest run in progress, stopped with the burner when this script is interrupted. */
let current: ChildProcess | undefined

/** One vitest run of every file; the failures it reports, per file (all of them when it wrote no report). */
function runOnce(
  index: number,
  env: NodeJS.ProcessEnv,
  outDir: string,
): Promise<Map<string, string[]>> {
  const report = join(outDir, `run-${index}.json`)
  const log = join(outDir, `run-${index}.log`)
  return new Promise((resolvePromise) => {
    const child = spawn(
      node,
      [
        join(root, 'node_modules', 'vitest', 'vitest.mjs'),
        'run',
        ...files,
        '--reporter=json',
        `--outputFile=${report}`,
      ],
      {
        cwd: root,
        env: {
          ...process.env,
          ...env,
          CI: 'true',
          PATH: `${dirname(node)}:${process.env.PATH ?? ''}`,
        },
      },
    )
    current = child
    const chunks: Buffer[] = []
    child.stdout.on('data', (c: Buffer) => chunks.push(c))
    child.stderr.on('data', (c: Buffer) => chunks.push(c))
    child.on('close', (code, signal) => {
      current = undefined
      const output = Buffer.concat(chunks)
      const failures = new Map<string, string[]>()
      let parsed: VitestJson | undefined
      try {
        parsed = JSON.parse(readFileSync(report, 'utf8')) as VitestJson
      } catch {
        parsed = undefined
      }
      const seen = new Set<string>()
      for (const file of parsed?.testResults ?? []) {
        const name = relative(root, file.name)
        seen.add(name)
        const failed = (file.assertionResults ?? []).filter((a) => a.status === 'failed')
        if (file.status !== 'passed' || failed.length > 0) {
          failures.set(
            name,
            failed.length > 0 ? failed.map((a) => a.fullName) : [file.message ?? file.status],
          )
        }
      }
      for (const f of files) {
        if (!seen.has(f)) failures.set(f, [`no result (vitest exited with ${signal ?? code})`])
      }
      if (failures.size === 0 && code !== 0)
        failures.set('(vitest)', [`exited with ${signal ?? code}`])
      // The full output is kept for failed runs only, to read the failure.
      if (failures.size > 0) writeFileSync(log, output)
      resolvePromise(failures)
    })
  })
}

async function main(): Promise<void> {
  const version = probe('process.version')
  if (!values['no-build']) {
    console.log('repeat: npm run build')
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' })
  }
  const env = sqliteEnv()
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const outDir = join(cache, 'repeat', `${stamp}-node${version}`)
  mkdirSync(outDir, { recursive: true })
  const burn = !values['no-burner']
  const burner = burn ? startBurner() : undefined
  const stopBurner = () => {
    if (burner !== undefined && burner.exitCode === null) burner.kill('SIGKILL')
    if (current !== undefined && current.exitCode === null) current.kill('SIGTERM')
  }
  process.on('exit', stopBurner)
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      stopBurner()
      process.exit(130)
    })
  }
  console.log(
    `repeat: ${runs} runs of ${files.length} files on Node.js ${version}` +
      `${burn ? `, CPU burner on ${availableParallelism()} cores (pid ${burner?.pid})` : ', no burner'}`,
  )
  const perFile = new Map<string, FileReport>(
    files.map((f) => [f, { failedRuns: [], failures: [] }]),
  )
  const started = performance.now()
  let failedRuns = 0
  for (let i = 1; i <= runs; i++) {
    const t0 = performance.now()
    const failures = await runOnce(i, env, outDir)
    const seconds = ((performance.now() - t0) / 1000).toFixed(1)
    if (failures.size > 0) failedRuns++
    for (const [file, tests] of failures) {
      const entry = perFile.get(file) ?? { failedRuns: [], failures: [] }
      entry.failedRuns.push(i)
      entry.failures.push(...tests.map((t) => `run ${i}: ${t}`))
      perFile.set(file, entry)
    }
    console.log(
      `repeat: run ${i}/${runs} ${failures.size === 0 ? 'passed' : `FAILED (${[...failures.keys()].join(', ')})`} in ${seconds} s`,
    )
  }
  stopBurner()
  const wall = (performance.now() - started) / 1000
  console.log(`\nrepeat: per file (Node.js ${version}, ${runs} runs)`)
  for (const [file, r] of perFile) {
    console.log(
      `  ${r.failedRuns.length === 0 ? 'ok  ' : 'FAIL'} ${file}: ${r.failedRuns.length}/${runs} runs failed`,
    )
    for (const f of r.failures) console.log(`         ${f}`)
  }
  console.log(
    `repeat: summary: Node.js ${version}, ${runs} runs, ${failedRuns} failed, ` +
      `wall time ${Math.floor(wall / 60)} min ${Math.round(wall % 60)} s` +
      (failedRuns > 0 ? `; logs of failed runs in ${relative(root, outDir)}` : ''),
  )
  process.exitCode = failedRuns > 0 ? 1 : 0
}

await main()
