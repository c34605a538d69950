/**
 * Knobs every bench shares, so a quick look and a careful run use the same
 * code. A command-line flag beats an environment variable beats the bench's
 * default:
 *
 *   --rounds=N      BENCH_ROUNDS     rounds of interleaved measurements
 *   --duration=S    BENCH_DURATION   seconds of load per HTTP measurement
 *   --warmup=S      BENCH_WARMUP     seconds of load before a server's first round
 *   --time=MS       BENCH_TIME       milliseconds per micro-benchmark measurement
 *   --quick         BENCH_QUICK=1    2 rounds, 1 s each: checks the wiring, not the figures
 *
 * Anything else on the command line that does not start with `--` names a
 * bench to run (`npm run bench -- http`).
 */

export interface Knobs {
  readonly rounds: number | undefined
  readonly durationS: number | undefined
  readonly warmupS: number | undefined
  readonly timeMs: number | undefined
  readonly quick: boolean
}

export interface ParsedArgs {
  readonly names: string[]
  readonly knobs: Knobs
}

function positive(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined
  const n = Number(raw)
  if (!Number.isFinite(n) || n <= 0)
    throw new Error(`${name} must be a positive number, got ${raw}`)
  return n
}

export function parseArgs(argv: readonly string[], env = process.env): ParsedArgs {
  const flags = new Map<string, string>()
  const names: string[] = []
  for (const arg of argv) {
    if (arg.startsWith('--')) {
      const [k, v] = arg.slice(2).split('=', 2) as [string, string | undefined]
      flags.set(k, v ?? 'true')
    } else {
      names.push(arg)
    }
  }
  const known = new Set(['rounds', 'duration', 'warmup', 'time', 'quick'])
  for (const k of flags.keys()) if (!known.has(k)) throw new Error(`unknown flag --${k}`)
  const pick = (flag: string, variable: string) =>
    positive(`--${flag}`, flags.get(flag) ?? env[variable])
  const quick = flags.has('quick') || env.BENCH_QUICK === '1'
  return {
    names,
    knobs: {
      rounds: pick('rounds', 'BENCH_ROUNDS') ?? (quick ? 2 : undefined),
      durationS: pick('duration', 'BENCH_DURATION') ?? (quick ? 1 : undefined),
      warmupS: pick('warmup', 'BENCH_WARMUP') ?? (quick ? 1 : undefined),
      timeMs: pick('time', 'BENCH_TIME') ?? (quick ? 200 : undefined),
      quick,
    },
  }
}

/** A bench's setting: the knob if given, else the bench's own default. */
export function knob(value: number | undefined, fallback: number): number {
  return value ?? fallback
}
