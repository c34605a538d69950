/**
 * The HTTP guards as Express-style `(req, res, next)` middleware on plain
 * `node:http`: no framework. Starts a server on 127.0.0.1, sends it a few
 * requests to show each guard answer, and exits.
 *
 *   npx tsx examples/http-middleware.ts
 */
import { createServer, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { bodyLimitMiddleware, rateLimitMiddleware } from 'fraiseql-security/http'

const limitBody = bodyLimitMiddleware({ maxSize: 1024 })
const limitRate = rateLimitMiddleware({ max: 3, windowMs: 60_000 })

const server = createServer((req, res) => {
  limitRate(req, res, () =>
    limitBody(req, res, () => {
      let size = 0
      req.on('data', (chunk: Buffer) => {
        size += chunk.length
      })
      req.on('end', () => {
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ received: size }))
      })
    }),
  )
})
// `100-continue` clients are answered 413 before they send an oversized body.
server.on('checkContinue', limitBody.checkContinue)

await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
const { port } = server.address() as AddressInfo

function send(bytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: 'POST', path: '/', agent: false },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          body += c
        })
        res.on('end', () => resolve(`${res.statusCode} ${body}`))
      },
    )
    req.on('error', reject)
    req.end(Buffer.alloc(bytes, 'a'))
  })
}

console.log('small body      →', await send(100)) // 200
console.log('oversized body  →', await send(4096)) // 413, before the body is read
console.log('third request   →', await send(10)) // 200: the last one the quota allows
console.log('over the quota  →', await send(10)) // 429 problem+json, Retry-After

await limitRate.limiter.close()
server.close()
