/**
 * Whether the package runs in production: an explicit `environment` option
 * wins, else `NODE_ENV`; read the way frameworks do but forgiving of case
 * and spaces (`' Production '` counts), since a protection that switches on
 * a misspelled variable would fail open.
 */
export function inProduction(environment?: string): boolean {
  return (environment ?? process.env.NODE_ENV)?.trim().toLowerCase() === 'production'
}
