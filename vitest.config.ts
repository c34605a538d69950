import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Forks, not threads: several suites open real sockets and child processes.
    pool: 'forks',
    // Two files at a time: vitest's default is one worker per core but one
    // (a single worker on a 2-core CI machine), and most suites here wait on
    // sockets, child processes and the databases rather than on the CPU.
    // Files share no state: each makes its own PostgreSQL schema and Redis
    // key prefix, and every server listens on port 0.
    maxWorkers: Number(process.env.VITEST_MAX_WORKERS ?? 2),
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    typecheck: { enabled: true, include: ['test/**/*.test-d.ts'] },
  },
})
