/**
 * The growth section of `npm run bench -- graphql`: validation time as the
 * document grows from 10 to 10,000 fields, ours next to graphql-armor's rules
 * in the same run. Each is timed both added to `specifiedRules` (what a
 * server runs) and alone (the rule's own cost, whose growth `specifiedRules`
 * would otherwise hide). A linear rule takes 10× the time for 10× the fields.
 */
import { costLimitRule } from '@escape.tech/graphql-armor-cost-limit'
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases'
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth'
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives'
import { createValidationRules } from 'fraiseql-security/graphql'
import {
  type DocumentNode,
  parse,
  specifiedRules,
  type ValidationRule,
  validate,
  visit,
} from 'graphql'
import type { BenchContext } from '../lib/bench.js'
import { fmt, table } from '../lib/report.js'
import { summarize } from '../lib/stats.js'
import { SCHEMA } from './documents.js'
import { interleavedRound } from './interleave.js'

export const GROWTH_SIZES = [10, 100, 1_000, 10_000] as const
const VARIANTS = ['specified', 'ours', 'armor', 'ours-alone', 'armor-alone'] as const
type Variant = (typeof VARIANTS)[number]

/** Limits out of reach of every size: the accept path, whatever the size. */
const LIMITS = { maxDepth: 15, maxAliases: 10_000, maxDirectives: 50, maxComplexity: 1e9 }

/** Ten fields, two aliases: `fields / 10` of these make a document. */
const block = (i: number) =>
  `u${i}: user(id: "${i}") { id name email avatar(size: 64) p: posts(first: 2) { id title body published } }`

export function growthDocument(fields: number): DocumentNode {
  return parse(
    `query Grow {\n${Array.from({ length: fields / 10 }, (_, i) => `  ${block(i)}`).join('\n')}\n}`,
  )
}

const ARMOR: ValidationRule[] = [
  maxDepthRule({
    n: LIMITS.maxDepth,
    flattenFragments: true,
    ignoreIntrospection: false,
    propagateOnRejection: false,
  }),
  maxAliasesRule({ n: LIMITS.maxAliases, allowList: [], propagateOnRejection: false }),
  maxDirectivesRule({ n: LIMITS.maxDirectives, propagateOnRejection: false }),
  costLimitRule({ maxCost: 1e12, flattenFragments: true, propagateOnRejection: false }),
]
const OURS = createValidationRules(LIMITS)
const RULES: Record<Variant, readonly ValidationRule[]> = {
  specified: specifiedRules,
  ours: [...specifiedRules, ...OURS],
  armor: [...specifiedRules, ...ARMOR],
  'ours-alone': OURS,
  'armor-alone': ARMOR,
}

interface SizeResult {
  readonly fields: number
  /** Per contender, one median µs per round. */
  readonly us: Record<Variant, number[]>
}

export async function growthSection(
  ctx: BenchContext,
  rounds: number,
  timeMs: number,
  pinned: boolean,
): Promise<string> {
  const results: SizeResult[] = []
  for (const fields of GROWTH_SIZES) {
    const document = growthDocument(fields)
    let counted = 0
    visit(document, { Field: () => void counted++ })
    if (counted !== fields) throw new Error(`growth document has ${counted} fields, not ${fields}`)
    const calls = {} as Record<Variant, () => unknown>
    for (const v of VARIANTS) {
      // A fresh shallow copy per call, as in the main section: no per-document cache hit.
      calls[v] = () => validate(SCHEMA, { ...document } as DocumentNode, RULES[v])
      const errors = calls[v]() as readonly { message: string }[]
      if (errors.length > 0)
        throw new Error(`${v} refuses ${fields} fields: ${errors.map((e) => e.message).join('; ')}`)
    }
    interleavedRound(VARIANTS, calls, timeMs, false)
    const us = Object.fromEntries(VARIANTS.map((v) => [v, [] as number[]])) as Record<
      Variant,
      number[]
    >
    for (let round = 0; round < rounds; round++) {
      const r = interleavedRound(VARIANTS, calls, timeMs, pinned)
      for (const v of VARIANTS) us[v].push(r[v].value)
      ctx.log(
        `graphql growth: ${fields} fields round ${round + 1}/${rounds} ${VARIANTS.map((v) => `${v} ${r[v].value.toFixed(1)} µs`).join(', ')}`,
      )
      await new Promise((resolve) => setImmediate(resolve))
    }
    results.push({ fields, us })
  }
  const s = (xs: readonly number[]) => summarize(xs)
  const f2 = fmt.fixed(2)
  const f3 = fmt.fixed(3)
  const added = (r: SizeResult, v: 'ours' | 'armor') =>
    r.us[v].map((x, i) => x - r.us.specified[i]!)
  const timeRows = results.map((r) => [
    fmt.int(r.fields),
    ...VARIANTS.map((v) => {
      const m = s(r.us[v])
      return `**${f2(m.median)}** (${f2(m.q1)}–${f2(m.q3)})`
    }),
    ...(['ours', 'armor'] as const).map((v) => f2(s(added(r, v)).median)),
  ])
  const perFieldRows = results.map((r) => [
    fmt.int(r.fields),
    ...VARIANTS.map((v) => f3(s(r.us[v]).median / r.fields)),
    ...(['ours', 'armor'] as const).map((v) => f3(s(added(r, v)).median / r.fields)),
  ])
  // Growth per 10×: per round (both sizes measured in rounds of the same
  // index, seconds apart), then the median; 10.0× is linear.
  const growthRows = results.slice(1).map((r, k) => {
    const prev = results[k]!
    return [
      `${fmt.int(prev.fields)} → ${fmt.int(r.fields)}`,
      ...VARIANTS.map((v) => {
        const g = s(r.us[v].map((x, i) => x / prev.us[v][i]!))
        return `**${g.median.toFixed(1)}×** (${g.min.toFixed(1)}–${g.max.toFixed(1)})`
      }),
    ]
  })
  return [
    '## Growth: 10 to 10,000 fields',
    '',
    `Documents of ${GROWTH_SIZES.map((n) => n.toLocaleString('en-US')).join(', ')} fields, each \`fields / 10\` copies of \`${block(0)}\` (ten fields, two aliases). Limits for both guards: depth ${LIMITS.maxDepth}, aliases ${LIMITS.maxAliases.toLocaleString('en-US')}, directives ${LIMITS.maxDirectives}, cost ${LIMITS.maxComplexity.toLocaleString('en-US')} (armor's \`maxCost\` out of reach): every size passes. Contenders interleaved call by call as above; \`-alone\` validates with that guard's rules only, without \`specifiedRules\`. "added" is contender − \`specified\` inside each round. ${rounds} rounds of ${timeMs} ms per size.`,
    '',
    '### Time per document (µs, median of rounds, IQR)',
    '',
    table(['Fields', ...VARIANTS.map((v) => `\`${v}\``), 'ours added', 'armor added'], timeRows),
    '',
    '### Time per field (µs)',
    '',
    table(
      ['Fields', ...VARIANTS.map((v) => `\`${v}\``), 'ours added', 'armor added'],
      perFieldRows,
    ),
    '',
    '### Growth factor per 10× fields (10.0× is linear; median, min–max over rounds)',
    '',
    table(['Step', ...VARIANTS.map((v) => `\`${v}\``)], growthRows),
    '',
  ].join('\n')
}
