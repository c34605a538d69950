/**
 * Names the documentation's snippets use without defining: the parts of a
 * user's own application a snippet stands in front of. Typed as loosely as
 * a user's code would be, and no looser than the API needs.
 */
import type { FastifyInstance } from 'fastify'

declare global {
  /** The user's GraphQL schema (SDL) and resolvers. */
  const schema: string
  const resolvers: Record<string, Record<string, (...args: never[]) => unknown>>
  /** A Fastify app the user already has. */
  const app: FastifyInstance
  /** TLS material the user loads. */
  const key: string
  const cert: string
  const ca: string
}
