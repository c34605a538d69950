/**
 * Fails the whole run early, with one clear line, when CI=true and a service
 * the suites need is down (`.ci/run` starts them first); builds dist/ once,
 * before any file runs, when it is missing (the suites that test the
 * published package import it; `npm test` builds it in its pretest).
 */
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import {
  IN_CI,
  postgresReachable,
  REDIS_CLUSTER_PORTS,
  redisClusterReachable,
  redisReachable,
} from './services.js'

export default async function setup(): Promise<void> {
  // Never rebuilt while files run: the build empties dist/ first.
  if (!existsSync('dist/index.js')) execFileSync('npm', ['run', 'build'], { stdio: 'pipe' })
  if (!IN_CI) return
  const [redis, postgres, cluster] = await Promise.all([
    redisReachable(),
    postgresReachable(),
    redisClusterReachable(),
  ])
  const missing = [
    !redis && 'Redis (127.0.0.1:6379)',
    !postgres && 'PostgreSQL (127.0.0.1:5432/test)',
    !cluster && `Redis Cluster (127.0.0.1:${REDIS_CLUSTER_PORTS.join(',')})`,
  ].filter(Boolean)
  if (missing.length > 0) throw new Error(`CI=true but not reachable: ${missing.join(', ')}`)
}
