/**
 * `npm run bench -- graphql`: what the GraphQL guards add to validation.
 * graphql-js `validate` with `specifiedRules` alone is the baseline; ours
 * (`createValidationRules`) and graphql-armor's equivalent rules are each
 * added to it at the same limits, on three documents that pass every limit
 * (the accept path every legitimate request takes). Writes
 * bench/results/graphql.md.
 *
 * In-process, in the driver process (`taskset -c 1`). Per document, rounds
 * of calls interleaved one by one (see `interleavedRound`); each
 * contender's figure in a round is the median time of its calls, every
 * ratio is taken inside a round, then summarized by its median over rounds.
 */
import type { BenchContext, BenchDefinition } from '../lib/bench.js'
import { knob } from '../lib/options.js'
import { DRIVER_CORE } from '../lib/pin.js'
import { absoluteTable, fmt, machineBlock, ratioTable, spread, table } from '../lib/report.js'
import {
  type ComparisonResult,
  compare,
  type Measurement,
  type RoundsResult,
  williamsOrders,
} from '../lib/rounds.js'
import { median, type Summary, summarize } from '../lib/stats.js'
import {
  DESCRIPTIONS,
  DOCUMENTS,
  type DocumentName,
  describeDocument,
  LIMITS,
  setup,
  VARIANTS,
  type Variant,
} from './documents.js'
import { growthSection } from './growth.js'
import { interleavedRound } from './interleave.js'

/** Goals from the issue: ours adds less than armor on every document, and at most 15% on the large one. */
const GOAL_LARGE = 0.15
const LARGE: DocumentName = 'large'
/** Multiple of 4, as the cycle orders within a round repeat every 4 cycles. */
const DEFAULT_ROUNDS = 16
/** One round: this long of interleaved calls (a few hundred per contender on the large document). */
const DEFAULT_TIME_MS = 2000
/** The growth section: 5 contenders, so a Williams design over them repeats every 10 cycles. */
const DEFAULT_GROWTH_ROUNDS = 8
const DEFAULT_GROWTH_TIME_MS = 1500

interface DocResult {
  readonly name: DocumentName
  readonly result: RoundsResult<Variant>
  readonly comparisons: readonly ComparisonResult[]
  /** Per round: time added over `specified`, as a fraction of it. */
  readonly added: Readonly<Record<'ours' | 'armor' | 'specified-aa', readonly number[]>>
  /** Per round: armor's time ÷ ours (above 1: ours is faster). */
  readonly armorOverOurs: readonly number[]
}

async function measureDocument(
  ctx: BenchContext,
  name: DocumentName,
  calls: Record<Variant, () => unknown>,
  rounds: number,
  timeMs: number,
  pinned: boolean,
): Promise<DocResult> {
  // Unmeasured: let the JIT settle on every contender before round 1.
  interleavedRound(VARIANTS, calls, timeMs, false)
  const samples = Object.fromEntries(VARIANTS.map((v) => [v, [] as Measurement[]])) as Record<
    Variant,
    Measurement[]
  >
  for (let round = 0; round < rounds; round++) {
    const r = interleavedRound(VARIANTS, calls, timeMs, pinned)
    for (const v of VARIANTS) samples[v].push(r[v])
    ctx.log(
      `graphql: ${name} round ${round + 1}/${rounds} ${VARIANTS.map((v) => `${v} ${r[v].value.toFixed(1)} µs`).join(', ')}`,
    )
    // Yield between rounds (timers, the log line).
    await new Promise((resolve) => setImmediate(resolve))
  }
  const result: RoundsResult<Variant> = {
    variants: VARIANTS,
    samples,
    orders: williamsOrders(VARIANTS),
  }
  const comparisons = [
    compare(
      result,
      { label: 'ours / specifiedRules alone', variant: 'ours', baseline: 'specified' },
      'lower-is-better',
    ),
    compare(
      result,
      { label: 'armor / specifiedRules alone', variant: 'armor', baseline: 'specified' },
      'lower-is-better',
    ),
    compare(
      result,
      { label: 'ours / armor', variant: 'ours', baseline: 'armor', goal: 1 },
      'lower-is-better',
    ),
    compare(
      result,
      {
        label: 'A/A control: specified / specified (noise floor)',
        variant: 'specified-aa',
        baseline: 'specified',
      },
      'lower-is-better',
    ),
  ]
  const addedOf = (v: Variant) =>
    samples[v].map((m, i) => m.value / samples.specified[i]!.value - 1)
  const added = {
    ours: addedOf('ours'),
    armor: addedOf('armor'),
    'specified-aa': addedOf('specified-aa'),
  }
  const armorOverOurs = samples.armor.map((m, i) => m.value / samples.ours[i]!.value)
  ctx.log(
    `graphql: ${name}: ours adds ${pct(median(added.ours))}, armor adds ${pct(median(added.armor))}`,
  )
  return { name, result, comparisons, added, armorOverOurs }
}

const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`
const med = (xs: readonly number[]): Summary => summarize(xs)

function summaryTable(docs: readonly DocResult[]): string {
  return table(
    [
      'Document',
      'ours adds (median, IQR)',
      'armor adds (median, IQR)',
      'armor added ÷ ours added',
      'armor time ÷ ours time (median, IQR)',
      'Rounds ours < armor',
      `Rounds ours ≤ +${GOAL_LARGE * 100}%`,
      'A/A: specified-aa adds',
    ],
    docs.map((d) => {
      const ours = med(d.added.ours)
      const armor = med(d.added.armor)
      const aa = med(d.added['specified-aa'])
      const faster = d.armorOverOurs.filter((r) => r > 1).length
      const within = d.added.ours.filter((x) => x <= GOAL_LARGE).length
      const n = d.added.ours.length
      return [
        `\`${d.name}\``,
        `**${pct(ours.median)}** (${pct(ours.q1)} – ${pct(ours.q3)})`,
        `**${pct(armor.median)}** (${pct(armor.q1)} – ${pct(armor.q3)})`,
        ours.median > 0 ? `${(armor.median / ours.median).toFixed(1)}×` : '—',
        spread(med(d.armorOverOurs), fmt.ratio).replace(/, min–max.*\)/, ')'),
        `${faster}/${n}`,
        d.name === LARGE ? `${within}/${n} (goal)` : `${within}/${n}`,
        pct(aa.median),
      ]
    }),
  )
}

function verdicts(docs: readonly DocResult[]): string[] {
  const lines: string[] = []
  for (const d of docs) {
    const ours = med(d.added.ours).median
    const armor = med(d.added.armor).median
    lines.push(
      `- \`${d.name}\`: ours adds ${pct(ours)}, armor ${pct(armor)}: ${ours < armor ? 'ours adds less (goal met)' : '**ours does not add less (goal missed)**'}.`,
    )
  }
  const large = docs.find((d) => d.name === LARGE)
  if (large !== undefined) {
    const o = med(large.added.ours).median
    lines.push(
      `- \`${LARGE}\`: ours adds ${pct(o)} against a goal of at most +${GOAL_LARGE * 100}%: ${o <= GOAL_LARGE ? 'met' : '**missed**'}.`,
    )
  }
  return lines
}

function docSection(d: DocResult, pinned: boolean): string {
  return [
    `## \`${d.name}\``,
    '',
    describeDocument(d.name),
    '',
    ratioTable(d.comparisons),
    '',
    absoluteTable(
      d.result,
      { label: 'validate µs (median of the round)', format: fmt.fixed(2) },
      {
        p99Us: { label: 'p99 µs', format: fmt.fixed(2) },
        samples: { label: 'calls per round', format: fmt.int },
        ...(pinned ? { steal: { label: 'steal', format: fmt.percent } } : {}),
      },
      (v) => `\`${v}\``,
    ),
  ].join('\n')
}

export const graphqlBench: BenchDefinition = {
  name: 'graphql',
  description: 'GraphQL validation: specifiedRules alone, + our guards, + graphql-armor',
  async run(ctx) {
    const rounds = knob(ctx.knobs.rounds, DEFAULT_ROUNDS)
    const timeMs = knob(ctx.knobs.timeMs, DEFAULT_TIME_MS)
    const pinned = ctx.machine.driverAffinity === String(DRIVER_CORE)
    const s = setup()
    ctx.log(`graphql: sanity checks passed (${s.checks.length} documents)`)
    const docs: DocResult[] = []
    for (const name of Object.keys(DOCUMENTS) as DocumentName[]) {
      docs.push(await measureDocument(ctx, name, s.calls[name], rounds, timeMs, pinned))
    }
    // Fewer, shorter rounds than above: the question is a factor of 10 per
    // step, not a few percent, and four sizes would otherwise double the bench.
    const growthRounds = knob(ctx.knobs.rounds, DEFAULT_GROWTH_ROUNDS)
    const growthTimeMs = knob(ctx.knobs.timeMs, DEFAULT_GROWTH_TIME_MS)
    const growth = await growthSection(ctx, growthRounds, growthTimeMs, pinned)
    return [
      '# GraphQL guards benchmark',
      '',
      'Generated by `npm run bench -- graphql` (bench/graphql/); see bench/README.md for how to read it.',
      '',
      machineBlock(ctx.machine, ctx.pinning),
      '',
      'What the guards add to graphql-js validation. The baseline is `validate(schema, document, specifiedRules)`, which every GraphQL server runs anyway; ours and graphql-armor\'s rules are each added to it at the same limits. Every document passes every limit: this is the accept path, the one legitimate traffic takes. Each call validates a fresh shallow copy of the parsed document, so no contender can answer from a per-document cache. Measured in the driver process, calls interleaved one by one: each cycle calls every contender once, in the next order of a Williams design, and times each call; a round lasts the window below, and a contender\'s figure in a round is the median of its calls. This machine has slow phases lasting seconds in which everything runs up to 2× slower (a first version timing each contender in its own 400 ms window had an A/A spread of 0.48×–1.60×): calls a few milliseconds apart share the phase, separate windows do not. "Adds" is `contender ÷ specified − 1` inside each round, then the median over rounds.',
      '',
      ...VARIANTS.map((v) => `- ${DESCRIPTIONS[v]}`),
      '',
      `Limits (both guards): depth ${LIMITS.maxDepth}, aliases ${LIMITS.maxAliases}, directives ${LIMITS.maxDirectives}, cost ${LIMITS.maxComplexity.toLocaleString('en-US')} (ours; graphql-armor's cost model differs, its \`maxCost\` is set out of reach).`,
      '',
      '## Summary',
      '',
      summaryTable(docs),
      '',
      ...verdicts(docs),
      '',
      '"armor added ÷ ours added" divides the two medians: how many times more validation time graphql-armor adds than ours. "armor time ÷ ours time" is per round (above 1.00×: ours faster). The A/A column is the noise floor: a difference no larger than it is not measurable here.',
      '',
      ...docs.flatMap((d) => [docSection(d, pinned), '']),
      growth,
      '## Settings',
      '',
      table(
        ['Setting', 'Value'],
        [
          [
            'Rounds',
            `${rounds} per document (order per round from a Williams design over ${VARIANTS.length} contenders, which repeats every ${williamsOrders(VARIANTS).length} rounds)`,
          ],
          [
            'Round',
            `${timeMs} ms (\`--time\`) of calls interleaved one by one, one call in flight`,
          ],
          ['Warm-up', `one unmeasured ${timeMs} ms round before each document`],
          ['Versions', 'graphql-js, graphql-armor and mercurius as locked in package-lock.json'],
          [
            'NODE_ENV',
            process.env.NODE_ENV ??
              '(unset: graphql-js and graphql-armor run their development builds)',
          ],
          ['Quick mode', ctx.knobs.quick ? 'yes: the figures only check the wiring' : 'no'],
        ],
      ),
      '',
      '## Checks before timing',
      '',
      ...s.checks.map((c) => `- ${c}`),
      '',
    ].join('\n')
  },
}
