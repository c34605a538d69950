/**
 * Regression (issue 15, item 1): behind a Vault Agent or Vault Proxy
 * listener with `require_request_header`, every request without
 * `X-Vault-Request: true` gets 412 `missing "X-Vault-Request" header`. The
 * provider did not send the header (node-vault does not), retried the 412
 * four times and reported an outage. Now every request carries it, and a 412
 * naming the header (a proxy in between dropped it) is a configuration
 * error: one request, not retried, a message that says what to fix.
 */
import { createServer, request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { VaultKmsProvider } from '../../src/kms/index.js'
import { startVaultEmulator, type VaultEmulator } from '../../src/kms/testing/vault-emulator.js'
import { rejection } from '../helpers/rejection.js'

const FAST = { timeoutMs: 1500, retryBaseDelayMs: 5, retryMaxDelayMs: 20 } as const

/** An HTTP proxy in front of Vault that drops the X-Vault-Request header. */
async function strippingProxy(
  target: string,
): Promise<{ address: string; close(): Promise<void> }> {
  const upstream = new URL(target)
  const server = createServer((req, res) => {
    const headers = { ...req.headers }
    delete headers['x-vault-request']
    const out = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      },
    )
    out.on('error', () => res.destroy())
    req.pipe(out)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    address: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

describe('Vault behind an Agent/Proxy listener with require_request_header', () => {
  let vault: VaultEmulator
  beforeAll(async () => {
    vault = await startVaultEmulator({ requireRequestHeader: true })
    vault.createKey('orders')
  })
  afterAll(async () => {
    await vault.close()
  })

  it('sends X-Vault-Request: true on every request, so every operation works', async () => {
    const kms = new VaultKmsProvider({ address: vault.address, token: vault.token, ...FAST })
    const start = vault.requests.length
    const sealed = await kms.encrypt('behind the agent', 'orders', { tenant: 'acme' })
    expect(Buffer.from(await kms.decrypt(sealed)).toString()).toBe('behind the agent')
    const pair = await kms.generateDataKey('orders')
    pair.dispose()
    await kms.getKeyInfo('orders')
    await kms.getRotationPolicy('orders')
    await kms.rotateKey('orders')
    const sent = vault.requests.slice(start)
    expect(sent.length).toBeGreaterThanOrEqual(6)
    expect(sent.every((r) => r.requestHeader)).toBe(true)
  })

  it('a 412 naming the missing header is a configuration error: one request, not retried', async () => {
    const proxy = await strippingProxy(vault.address)
    try {
      const kms = new VaultKmsProvider({ address: proxy.address, token: vault.token, ...FAST })
      vault.calls.reset()
      for (const call of [() => kms.encrypt('x', 'orders'), () => kms.getKeyInfo('orders')]) {
        const before = vault.calls.count()
        const err = await rejection(call())
        expect(err).toMatchObject({
          code: 'ERR_KMS_MISCONFIGURED',
          retryable: false,
          cause: { service: 'vault', code: 'missing_request_header', status: 412 },
        })
        expect((err as Error).message).toMatch(/X-Vault-Request/)
        expect(vault.calls.count() - before).toBe(1)
      }
    } finally {
      await proxy.close()
    }
  })
})
