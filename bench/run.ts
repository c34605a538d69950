/**
 * Benchmark driver: `npm run bench` runs every bench, `npm run bench -- http`
 * one of them. Knobs (rounds, durations) are described in lib/options.ts and
 * bench/README.md. Each bench writes bench/results/<name>.md and the driver
 * prints it.
 */
import type { BenchContext, BenchDefinition } from './lib/bench.js'
import { machineInfo } from './lib/machine.js'
import { parseArgs } from './lib/options.js'
import { DRIVER_CORE, ensureDriverPinned, SERVER_CORE } from './lib/pin.js'
import { writeResults } from './lib/report.js'

const BENCHES: Record<string, () => Promise<BenchDefinition>> = {
  http: async () => (await import('./http/index.js')).httpBench,
  'http-breakdown': async () => (await import('./http/breakdown.js')).httpBreakdownBench,
  kms: async () => (await import('./kms/index.js')).kmsBench,
  graphql: async () => (await import('./graphql/index.js')).graphqlBench,
  sbom: async () => (await import('./sbom/index.js')).sbomBench,
  'api-keys': async () => (await import('./api-keys/index.js')).apiKeysBench,
  'graphql-tracing': async () => (await import('./graphql/tracing.js')).graphqlTracingBench,
  'memory-growth': async () => (await import('./http/memory-growth.js')).memoryGrowthBench,
}

const { names, knobs } = parseArgs(process.argv.slice(2))
const unknown = names.filter((n) => !Object.hasOwn(BENCHES, n))
if (unknown.length > 0) {
  console.error(`unknown bench ${unknown.join(', ')}; known: ${Object.keys(BENCHES).join(', ')}`)
  process.exit(2)
}

const pinning = ensureDriverPinned()
const context: BenchContext = {
  knobs,
  machine: machineInfo(),
  pinning:
    pinning === 'pinned'
      ? `servers \`taskset -c ${SERVER_CORE}\`, driver and load generator \`taskset -c ${DRIVER_CORE}\``
      : 'none (taskset missing, a single core, or BENCH_NO_PIN=1): expect more noise',
  cpuProfileDir: process.env.BENCH_CPU_PROF || undefined,
  log: (line) => console.error(line),
}

const started = Date.now()
for (const name of names.length > 0 ? names : Object.keys(BENCHES)) {
  const bench = await BENCHES[name]!()
  if (names.length === 0 && bench.optional === true) {
    context.log(`bench ${name}: optional, run it by name (npm run bench -- ${name})`)
    continue
  }
  context.log(`bench ${name}: ${bench.description}`)
  const markdown = await bench.run(context)
  // The definition's name, not the command-line one: `kms` writes key-manager.md.
  const path = writeResults(bench.name, markdown)
  console.log(markdown)
  context.log(`bench ${name}: wrote ${path}`)
}
context.log(`done in ${Math.round((Date.now() - started) / 1000)} s`)
// Every bench closes what it opened; exiting here anyway means one that leaks
// a handle (a client library's timer) cannot hang the whole run.
process.exit(0)
