/**
 * `npm run bench -- sbom`: wall time of a whole SBOM run over this
 * repository's lockfile, as a user runs it (a fresh process, Node.js start-up
 * included): our CLI against `npm sbom` (npm's own, in its default mode that
 * reads node_modules, and with `--package-lock-only`, which reads what we
 * read) and against @cyclonedx/cyclonedx-npm. All write CycloneDX JSON with
 * dev dependencies included (every tool's default). Also reports, for each
 * output, how many components it lists and the share that carry a hash.
 * Writes bench/results/sbom.md.
 *
 * Every run is a fresh process pinned to the server core, timed from spawn
 * to exit. A round is `runs` cycles, each running every tool once in the next
 * Williams order; a tool's figure in a round is the median of its runs, and
 * every ratio is taken inside a round (see lib/rounds.ts).
 */
import { spawn } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SBOMGenerator, toCycloneDX } from 'fraiseql-security/sbom'
import type { BenchContext, BenchDefinition } from '../lib/bench.js'
import { tinybenchLatency } from '../lib/micro.js'
import { knob } from '../lib/options.js'
import { pinned, SERVER_CORE } from '../lib/pin.js'
import { absoluteTable, fmt, machineBlock, ratioTable, spread, table } from '../lib/report.js'
import {
  type Comparison,
  compare,
  type Measurement,
  type RoundsResult,
  roundOrder,
} from '../lib/rounds.js'
import { median, summarize } from '../lib/stats.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const require = createRequire(import.meta.url)

const VARIANTS = ['ours', 'ours-aa', 'npm-sbom', 'npm-sbom-lock', 'cyclonedx-npm'] as const
type Variant = (typeof VARIANTS)[number]

/** Issue 19's goal: our run takes at most 0.15× `npm sbom`'s time, i.e. npm ÷ ours ≥ 1 / 0.15. */
const GOAL_TIME_RATIO = 0.15
const GOAL_SPEEDUP = 1 / GOAL_TIME_RATIO
/** Issue 19's goal: our run's median wall time, Node.js start-up included, under half a second. */
const GOAL_MEDIAN_MS = 500
/** With five variants a Williams design repeats every 10 rounds. */
const DEFAULT_ROUNDS = 10
/** Processes per measurement; the measurement is their median. */
const DEFAULT_RUNS = 3

interface Tool {
  readonly command: string
  readonly args: readonly string[]
  readonly describe: string
}

function tools(): Record<Variant, Tool> {
  const cyclonedxNpm = join(
    dirname(require.resolve('@cyclonedx/cyclonedx-npm')),
    'bin',
    'cyclonedx-npm-cli.js',
  )
  const ours: Tool = {
    command: process.execPath,
    args: [join(ROOT, 'dist', 'cli', 'index.js'), 'sbom', '--include-dev'],
    describe:
      '`fraiseql-security sbom --include-dev` (built CLI; lockfile + installed package.json files)',
  }
  return {
    ours,
    'ours-aa': { ...ours, describe: 'the same again (A/A control)' },
    'npm-sbom': {
      command: 'npm',
      args: ['sbom', '--sbom-format', 'cyclonedx'],
      describe:
        "`npm sbom --sbom-format cyclonedx` (npm's default: the installed tree in node_modules)",
    },
    'npm-sbom-lock': {
      command: 'npm',
      args: ['sbom', '--sbom-format', 'cyclonedx', '--package-lock-only'],
      describe:
        '`npm sbom --sbom-format cyclonedx --package-lock-only` (the lockfile only, as we read it)',
    },
    'cyclonedx-npm': {
      command: process.execPath,
      args: [
        cyclonedxNpm,
        '--spec-version',
        '1.6',
        '--output-format',
        'JSON',
        '--output-file',
        '-',
      ],
      describe:
        '`cyclonedx-npm --spec-version 1.6 --output-format JSON` (@cyclonedx/cyclonedx-npm; runs `npm ls` itself)',
    },
  }
}

/** One process, pinned, stdout to `outFile`; milliseconds from spawn to exit. */
function runOnce(tool: Tool, outFile: string): Promise<number> {
  const [cmd, args] = pinned(SERVER_CORE, tool.command, tool.args)
  const fd = openSync(outFile, 'w')
  return new Promise<number>((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(cmd, args, {
      cwd: ROOT,
      stdio: ['ignore', fd, 'pipe'],
      // No update checks, no funding or audit messages, no network.
      env: { ...process.env, npm_config_offline: 'true', npm_config_update_notifier: 'false' },
    })
    let stderr = ''
    child.stderr?.on('data', (d) => {
      stderr += d
    })
    child.on('error', reject)
    child.on('exit', (code) => {
      const ms = performance.now() - t0
      closeSync(fd)
      if (code === 0) resolve(ms)
      else
        reject(
          new Error(`${tool.command} ${tool.args.join(' ')} exited ${code}: ${stderr.slice(-500)}`),
        )
    })
  })
}

interface Coverage {
  readonly components: number
  readonly hashed: number
}

/** Every component (nested ones too: cyclonedx-npm nests bundled packages) and how many carry a hash. */
function coverage(file: string): Coverage {
  const bom = JSON.parse(readFileSync(file, 'utf8')) as { components?: unknown[] }
  let components = 0
  let hashed = 0
  const walk = (list: unknown[] | undefined) => {
    for (const c of list ?? []) {
      const comp = c as { hashes?: unknown[]; components?: unknown[] }
      components++
      if ((comp.hashes?.length ?? 0) > 0) hashed++
      walk(comp.components)
    }
  }
  walk(bom.components)
  return { components, hashed }
}

const COMPARISONS: readonly Comparison<Variant>[] = [
  {
    label: 'npm sbom ÷ ours (time; goal: ours ≤ 0.15× npm sbom)',
    variant: 'ours',
    baseline: 'npm-sbom',
    goal: GOAL_SPEEDUP,
  },
  {
    label: 'npm sbom --package-lock-only ÷ ours (time)',
    variant: 'ours',
    baseline: 'npm-sbom-lock',
  },
  { label: 'cyclonedx-npm ÷ ours (time)', variant: 'ours', baseline: 'cyclonedx-npm' },
  { label: 'A/A control: ours ÷ ours (noise floor)', variant: 'ours-aa', baseline: 'ours' },
]

export const sbomBench: BenchDefinition = {
  name: 'sbom',
  description:
    'SBOM of this repository: our CLI vs npm sbom vs @cyclonedx/cyclonedx-npm (fresh processes)',
  async run(ctx: BenchContext): Promise<string> {
    const rounds = knob(ctx.knobs.rounds, DEFAULT_ROUNDS)
    const runs = ctx.knobs.quick ? 1 : DEFAULT_RUNS
    const all = tools()
    const out = mkdtempSync(join(tmpdir(), 'fsl-bench-sbom-'))
    const fileOf = (v: Variant) => join(out, `${v}.json`)

    // Checks before timing: every tool succeeds, and ours is a valid CycloneDX 1.6 document.
    const covered = {} as Record<Variant, Coverage>
    for (const v of VARIANTS) {
      await runOnce(all[v], fileOf(v))
      covered[v] = coverage(fileOf(v))
    }
    const { Spec, Validation } =
      require('@cyclonedx/cyclonedx-library') as typeof import('@cyclonedx/cyclonedx-library')
    const invalid = await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(
      readFileSync(fileOf('ours'), 'utf8'),
    )
    if (invalid !== null)
      throw new Error(`our output is not valid CycloneDX 1.6: ${JSON.stringify(invalid)}`)

    // Runs interleaved tool by tool: a round is `runs` cycles, each cycle runs
    // every tool once in the next Williams order, and a tool's figure in the
    // round is the median of its runs. Runs of different tools seconds apart
    // share the machine's slow phases; a tool's runs back to back would not.
    const samples = Object.fromEntries(VARIANTS.map((v) => [v, [] as Measurement[]])) as Record<
      Variant,
      Measurement[]
    >
    const orders: Variant[][] = []
    for (let round = 0; round < rounds; round++) {
      const times = Object.fromEntries(VARIANTS.map((v) => [v, [] as number[]])) as Record<
        Variant,
        number[]
      >
      for (let cycle = 0; cycle < runs; cycle++) {
        const order = roundOrder(VARIANTS, round * runs + cycle)
        if (cycle === 0) orders.push(order)
        for (const v of order) times[v].push(await runOnce(all[v], fileOf(v)))
      }
      for (const v of VARIANTS) {
        samples[v][round] = { value: median(times[v]), extra: { minMs: Math.min(...times[v]) } }
      }
      ctx.log(
        `  round ${round + 1}/${rounds}: ${VARIANTS.map((v) => `${v} ${samples[v][round]!.value.toFixed(0)} ms`).join(', ')}`,
      )
    }
    const result: RoundsResult<Variant> = { variants: VARIANTS, samples, orders }
    const comparisons = COMPARISONS.map((c) => compare(result, c, 'lower-is-better'))

    // Context: our generator in-process, Node.js start-up and module loading excluded.
    const generator = new SBOMGenerator({ includeDev: true })
    const inProcess = await tinybenchLatency(
      async () => toCycloneDX(await generator.generate(ROOT)),
      { timeMs: ctx.knobs.quick ? 500 : 3000, warmupMs: ctx.knobs.quick ? 200 : 1000 },
    )
    rmSync(out, { recursive: true, force: true })

    const main = comparisons[0]!
    const timeRatio = summarize(main.ratios.map((r) => 1 / r))
    const oursMs = summarize(samples.ours.map((m) => m.value))
    const lines = [
      '# SBOM benchmark',
      '',
      'Generated by `npm run bench -- sbom` (bench/sbom/); see bench/README.md for how to read it.',
      '',
      machineBlock(ctx.machine, ctx.pinning),
      '',
      `What one SBOM of this repository costs, as a user pays it: a fresh process per run, Node.js start-up and module loading included, from spawn to exit, output written to a file. Every tool writes CycloneDX JSON with dev dependencies (each tool's default). Each run is pinned to core ${SERVER_CORE}. A round is ${runs} cycles, each running every tool once in the next order of a Williams design, so runs of different tools are seconds apart and share the machine's slow phases; a tool's figure in a round is the median of its ${runs} runs, and every ratio is taken inside a round. Ratios are "baseline time ÷ our time": above 1.00× we are faster; the goal of at most ${GOAL_TIME_RATIO}× npm sbom's time is a ratio of at least ${fmt.ratio(GOAL_SPEEDUP)}.`,
      '',
      ...VARIANTS.map((v) => `- \`${v}\`: ${all[v].describe}`),
      '',
      '## Summary',
      '',
      `- Our time ÷ \`npm sbom\`'s time: **${spread(timeRatio, fmt.ratio)}** (goal ≤ ${GOAL_TIME_RATIO.toFixed(2)}×): ${timeRatio.median <= GOAL_TIME_RATIO ? 'met' : 'not met'} (${main.roundsMeetingGoal}/${main.ratios.length} rounds).`,
      `- Our time per run: **${fmt.int(oursMs.median)} ms** median over the rounds (goal < ${GOAL_MEDIAN_MS} ms): ${oursMs.median < GOAL_MEDIAN_MS ? 'met' : 'not met'}.`,
      ...comparisons.slice(1, 3).map((c) => `- ${c.label}: ${spread(c.summary, fmt.ratio)}.`),
      `- In-process (no start-up): our generate + CycloneDX JSON takes ${(inProcess.value / 1000).toFixed(0)} ms (median of ${inProcess.extra?.samples ?? '?'} calls).`,
      '',
      ratioTable(comparisons),
      '',
      '## Hashes in each output',
      '',
      'Components listed (nested ones included) and the share that carry at least one hash. The lockfile here has no `resolved` fields (`omit-lockfile-registry-resolved`); every entry still has its `integrity`, which we turn into hashes.',
      '',
      table(
        ['Output', 'Components', 'With a hash', 'Share'],
        VARIANTS.filter((v) => v !== 'ours-aa').map((v) => [
          `\`${v}\``,
          String(covered[v].components),
          String(covered[v].hashed),
          `**${fmt.percent(covered[v].components === 0 ? 0 : covered[v].hashed / covered[v].components)}**`,
        ]),
      ),
      '',
      '`npm sbom` without `--package-lock-only` and cyclonedx-npm describe what is installed in node_modules (platform-specific optional packages for other systems are absent); ours and `--package-lock-only` describe the whole lockfile.',
      '',
      '## Absolute figures',
      '',
      absoluteTable(
        result,
        { label: 'ms per run', format: fmt.int },
        { minMs: { label: 'fastest of the runs, ms', format: fmt.int } },
      ),
      '',
      '## Settings',
      '',
      `Rounds: ${rounds}; runs per measurement: ${runs}; orders: ${result.orders
        .map((o) => o.join(' → '))
        .slice(0, 2)
        .join('; ')}; …`,
    ]
    return lines.join('\n')
  },
}
