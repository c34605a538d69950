/**
 * Throughput cost of our Fastify plugins on a hello-world route, against bare
 * Fastify and against @fastify/rate-limit, all in the same run.
 *
 * A hello-world route is the harshest setting for a plugin: the handler costs
 * nearly nothing, so the plugin's per-request work is as large a share of the
 * request as it will ever be. Real routes dilute it.
 */
import type { BenchContext } from '../lib/bench.js'
import { compareServers } from './compare-servers.js'

export function runOverhead(ctx: BenchContext): Promise<string> {
  return compareServers(ctx, {
    tag: 'http/overhead',
    title: 'Plugin overhead on a hello-world route',
    intro:
      '`GET /` answering `{"hello":"world"}`. Every variant is the same app with different plugins; rate limits use the memory store with `max` = 10,000,000 per 60 s so no request is ever refused (a refused request would fail the run, which checks that every answer is 2xx). Ratios are requests/s of the variant divided by requests/s of the baseline measured in the same round: above 1.00× the variant was faster.',
    // `bare-aa` is a second bare server, an A/A control: its ratio to `bare`
    // shows how far two identical servers drift apart on this machine, i.e.
    // how large a ratio must be before it means anything.
    variants: {
      bare: 'bare',
      'bare-aa': 'bare',
      ours: 'ours',
      'ours-rate-limit': 'ours-rate-limit',
      'fastify-rate-limit': 'fastify-rate-limit',
    },
    describe: { 'bare-aa': 'a second bare server (A/A control)' },
    comparisons: [
      {
        label: 'ours (bodyLimit + rateLimit) / bare',
        variant: 'ours',
        baseline: 'bare',
        goal: 0.88,
      },
      {
        label: 'ours (rateLimit) / @fastify/rate-limit',
        variant: 'ours-rate-limit',
        baseline: 'fastify-rate-limit',
        goal: 1.1,
      },
      { label: 'ours (rateLimit only) / bare', variant: 'ours-rate-limit', baseline: 'bare' },
      {
        label: '@fastify/rate-limit / bare (context)',
        variant: 'fastify-rate-limit',
        baseline: 'bare',
      },
      { label: 'A/A control: bare / bare (noise floor)', variant: 'bare-aa', baseline: 'bare' },
    ],
    // 5 variants: the Williams design balances over 10 rounds.
    defaultRounds: 10,
  })
}
