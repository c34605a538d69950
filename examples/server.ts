/**
 * The example hardened server `npm start` boots: Fastify with the body-size
 * limit and the rate limit, on embedded defaults (memory store), at
 * http://127.0.0.1:3000. A later issue grows it into the full GraphQL server.
 */
import Fastify from 'fastify'
import { bodyLimit, rateLimit } from 'fraiseql-security/http'

const host = process.env.HOST ?? '127.0.0.1'
const port = Number(process.env.PORT ?? 3000)

const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })
await app.register(bodyLimit, { maxSize: 1024 * 1024, inflate: true })
await app.register(rateLimit, {
  max: 100,
  windowMs: 60_000,
  policies: [{ name: 'burst', max: 20, windowMs: 1000 }],
})

app.get('/', async (request) => ({ hello: 'world', rateLimit: request.rateLimit }))
app.post('/echo', { config: { bodyLimit: { maxSize: 64 * 1024 } } }, async (request) => ({
  received: request.body,
}))
app.get('/health', { config: { rateLimit: false } }, async () => ({ ok: true }))

const address = await app.listen({ host, port })
console.log(`fraiseql-security example listening on ${address}`)
console.log(
  `  try: curl -i ${address}/   and   curl -i -X POST ${address}/echo -H 'content-type: application/json' -d '{"a":1}'`,
)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0))
  })
}
