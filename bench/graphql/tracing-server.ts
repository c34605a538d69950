/**
 * One variant of the GraphQL tracer bench per process, started as
 * `node --import tsx bench/graphql/tracing-server.ts <variant>` (see
 * tracing-app.ts for what each variant runs).
 */
import { serve } from '../lib/http-server.js'
import { buildApp } from './tracing-app.js'
import { isTracingVariant } from './tracing-variants.js'

const variant = process.argv[2]
if (!isTracingVariant(variant)) throw new Error(`unknown variant ${variant}`)
const { app, spans } = await buildApp(variant)
await serve(app, { spans })
