/**
 * Markdown results. Every file has the same shape, so a reader learns it
 * once: what ran where (machine block), with which settings, then the ratios
 * with their spread, then the absolute figures behind them. Files are written
 * to bench/results/<name>.md and printed.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { MachineInfo } from './machine.js'
import { absolutes, type ComparisonResult, type RoundsResult } from './rounds.js'
import type { Summary } from './stats.js'

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'results')

export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n')
}

export const fmt = {
  ratio: (x: number) => `${x.toFixed(2)}×`,
  int: (x: number) => Math.round(x).toLocaleString('en-US'),
  fixed: (digits: number) => (x: number) => x.toFixed(digits),
  percent: (x: number) => `${Math.round(x * 100)}%`,
}

/** `median (q1–q3, min–max)` of a summary, with one formatter. */
export function spread(s: Summary, f: (x: number) => string): string {
  return `${f(s.median)} (IQR ${f(s.q1)}–${f(s.q3)}, min–max ${f(s.min)}–${f(s.max)})`
}

export function machineBlock(info: MachineInfo, pinning: string): string {
  return table(
    ['', ''],
    [
      ['CPU', `${info.cpu} (${info.cores} cores available)`],
      ['Node.js', info.node],
      ['OS / kernel', `${info.os} / ${info.kernel}`],
      ['Date', info.date],
      ['Commit', `\`${info.commit}\``],
      ['Pinning', pinning],
    ],
  )
}

/** The headline table: one row per comparison, the median ratio with its spread. */
export function ratioTable(results: readonly ComparisonResult[]): string {
  return table(
    ['Comparison', 'Median ratio', 'IQR', 'Min–max', 'Goal', 'Rounds ≥ goal', 'Per-round ratios'],
    results.map((r) => [
      r.label,
      `**${fmt.ratio(r.summary.median)}**`,
      `${fmt.ratio(r.summary.q1)}–${fmt.ratio(r.summary.q3)}`,
      `${fmt.ratio(r.summary.min)}–${fmt.ratio(r.summary.max)}`,
      r.goal === undefined ? '—' : `≥ ${fmt.ratio(r.goal)}`,
      r.roundsMeetingGoal === undefined ? '—' : `${r.roundsMeetingGoal}/${r.ratios.length}`,
      r.ratios.map((x) => x.toFixed(2)).join(' '),
    ]),
  )
}

export interface ColumnSpec {
  readonly label: string
  readonly format: (x: number) => string
}

/** Median (min–max) of each variant's headline value and of the extras named in `extras`. */
export function absoluteTable<V extends string>(
  result: RoundsResult<V>,
  value: ColumnSpec,
  extras: Readonly<Record<string, ColumnSpec>> = {},
  describe: (variant: V) => string = (v) => v,
): string {
  const keys = Object.keys(extras)
  return table(
    [
      'Variant',
      `${value.label}: median (min–max)`,
      ...keys.map((k) => `${extras[k]!.label}: median`),
    ],
    result.variants.map((v) => {
      const a = absolutes(result, v)
      const cell = (s: Summary, f: (x: number) => string) =>
        `${f(s.median)} (${f(s.min)}–${f(s.max)})`
      return [
        describe(v),
        cell(a.value, value.format),
        ...keys.map((k) => {
          const s = a.extra[k]
          return s === undefined ? '—' : extras[k]!.format(s.median)
        }),
      ]
    }),
  )
}

/** Writes bench/results/<name>.md and returns its path. */
export function writeResults(name: string, markdown: string): string {
  mkdirSync(RESULTS_DIR, { recursive: true })
  const path = join(RESULTS_DIR, `${name}.md`)
  writeFileSync(path, markdown.endsWith('\n') ? markdown : `${markdown}\n`)
  return path
}
