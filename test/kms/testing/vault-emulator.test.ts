/**
 * The Vault emulator's wire behaviour for what real deployments put in front
 * of, or around, Transit: Agent/Proxy listeners, ACL policies, standbys,
 * `sys/health`, rewrap, batches, Vault 1.4-1.6's decrypt 500 and rate-limit
 * hints. Checked with plain `fetch`, without node-vault, against the
 * behaviour in Vault's and OpenBao's sources.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startVaultEmulator, type VaultEmulator } from '../../../src/kms/testing/vault-emulator.js'

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64')

interface Answer {
  status: number
  headers: Headers
  body: {
    errors?: string[]
    data?: Record<string, unknown> & { batch_results?: Array<Record<string, unknown>> }
    warnings?: string[] | null
    [field: string]: unknown
  }
}

async function call(
  vault: VaultEmulator,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = { 'X-Vault-Token': vault.token },
): Promise<Answer> {
  const res = await fetch(`${vault.address}/v1/${path}`, {
    method,
    redirect: 'manual',
    headers: { ...headers, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await res.text()
  return { status: res.status, headers: res.headers, body: text === '' ? {} : JSON.parse(text) }
}

describe('Vault emulator: deployments around Transit', () => {
  let vault: VaultEmulator
  beforeAll(async () => {
    vault = await startVaultEmulator()
    vault.createKey('orders')
  })
  afterAll(async () => {
    await vault.close()
  })

  it('require_request_header: 412 naming the header without X-Vault-Request: true, before the token is looked at', async () => {
    vault.setRequireRequestHeader(true)
    try {
      const bare = await call(vault, 'GET', 'transit/keys/orders')
      expect(bare.status).toBe(412)
      expect(bare.body.errors).toEqual(['missing "X-Vault-Request" header'])
      const wrongValue = await call(vault, 'GET', 'transit/keys/orders', undefined, {
        'X-Vault-Token': vault.token,
        'X-Vault-Request': 'yes',
      })
      expect(wrongValue.status).toBe(412)
      const noToken = await call(vault, 'GET', 'transit/keys/orders', undefined, {})
      expect(noToken.status).toBe(412)
      const ok = await call(vault, 'GET', 'transit/keys/orders', undefined, {
        'X-Vault-Token': vault.token,
        'X-Vault-Request': 'true',
      })
      expect(ok.status).toBe(200)
      expect(vault.requests.at(-1)?.requestHeader).toBe(true)
    } finally {
      vault.setRequireRequestHeader(false)
    }
  })

  it('ACL: a token with only update on encrypt/ and decrypt/ gets 403 on keys/, and cannot upsert', async () => {
    const token = vault.createToken({
      'transit/encrypt/*': ['update'],
      'transit/decrypt/*': ['update'],
    })
    const as = { 'X-Vault-Token': token }
    const enc = await call(vault, 'POST', 'transit/encrypt/orders', { plaintext: b64('x') }, as)
    expect(enc.status).toBe(200)
    const dec = await call(
      vault,
      'POST',
      'transit/decrypt/orders',
      { ciphertext: enc.body.data?.ciphertext },
      as,
    )
    expect(dec.body.data?.plaintext).toBe(b64('x'))
    for (const [method, path] of [
      ['GET', 'transit/keys/orders'],
      ['POST', 'transit/keys/orders/rotate'],
      ['POST', 'transit/datakey/plaintext/orders'],
      ['POST', 'transit/rewrap/orders'],
    ] as const) {
      const denied = await call(vault, method, path, method === 'GET' ? undefined : {}, as)
      expect(denied.status, path).toBe(403)
      expect(denied.body.errors).toEqual(['1 error occurred:\n\t* permission denied\n\n'])
    }
    // Encrypting under a missing key is a create (Vault's existence check): not granted.
    const upsert = await call(
      vault,
      'POST',
      'transit/encrypt/brand-new',
      { plaintext: b64('x') },
      as,
    )
    expect(upsert.status).toBe(403)
    expect(vault.keyNames()).not.toContain('brand-new')
  })

  it('ACL: the most specific path decides, deny wins, + matches one segment', async () => {
    const token = vault.createToken({
      'transit/*': ['read', 'update'],
      'transit/keys/orders/rotate': ['deny'],
      'transit/keys/+': ['read'],
    })
    const as = { 'X-Vault-Token': token }
    expect((await call(vault, 'GET', 'transit/keys/orders', undefined, as)).status).toBe(200)
    expect((await call(vault, 'POST', 'transit/keys/orders/rotate', {}, as)).status).toBe(403)
    expect((await call(vault, 'POST', 'transit/keys/orders/config', {}, as)).status).toBe(200)
    expect(
      (await call(vault, 'GET', 'transit/keys/orders', undefined, { 'X-Vault-Token': 'nope' }))
        .status,
    ).toBe(403)
  })

  it('sys/health: unauthenticated, 200 active, 429 standby (200 with standbyok), 503 sealed', async () => {
    const active = await call(vault, 'GET', 'sys/health', undefined, {})
    expect(active.status).toBe(200)
    expect(active.body).toMatchObject({ initialized: true, sealed: false, standby: false })
    expect(typeof active.body.version).toBe('string')
    vault.setStandby('http://127.0.0.1:1')
    try {
      expect((await call(vault, 'GET', 'sys/health', undefined, {})).status).toBe(429)
      expect((await call(vault, 'GET', 'sys/health?standbyok=true', undefined, {})).status).toBe(
        200,
      )
    } finally {
      vault.setStandby(undefined)
    }
    vault.faults.failNext(1, 'unavailable')
    const sealed = await call(vault, 'GET', 'sys/health')
    expect(sealed.status).toBe(503)
    expect(sealed.body.sealed).toBe(true)
  })

  it('a standby answers 307 to the same path on the active node, before checking the token', async () => {
    vault.setStandby('https://active.vault.internal:8200/')
    try {
      const res = await call(
        vault,
        'POST',
        'transit/encrypt/orders?x=1',
        { plaintext: b64('x') },
        {},
      )
      expect(res.status).toBe(307)
      expect(res.headers.get('location')).toBe(
        'https://active.vault.internal:8200/v1/transit/encrypt/orders?x=1',
      )
    } finally {
      vault.setStandby(undefined)
    }
    // The fault form redirects to the emulator itself (the "active node" is this one).
    vault.faults.failNext(1, 'redirect')
    const once = await call(vault, 'GET', 'transit/keys/orders')
    expect(once.status).toBe(307)
    expect(once.headers.get('location')).toBe(`${vault.address}/v1/transit/keys/orders`)
    expect((await call(vault, 'GET', 'transit/keys/orders')).status).toBe(200)
  })

  it('rate limit: 429 with Retry-After in whole seconds when a hint is queued', async () => {
    vault.faults.failNext(1, 'throttle', { retryAfterMs: 1500 })
    const limited = await call(vault, 'GET', 'transit/keys/orders')
    expect(limited.status).toBe(429)
    expect(limited.headers.get('retry-after')).toBe('2')
    expect(limited.body.errors?.[0]).toMatch(/rate limit quota exceeded/)
    vault.faults.failNext(1, 'throttle')
    expect((await call(vault, 'GET', 'transit/keys/orders')).headers.get('retry-after')).toBeNull()
  })

  it('reset-after-commit: the rotation happens, the answer never comes', async () => {
    vault.createKey('drop')
    vault.faults.failNext(1, 'reset-after-commit')
    await expect(call(vault, 'POST', 'transit/keys/drop/rotate', {})).rejects.toThrow()
    expect(vault.describeKey('drop')?.latest_version).toBe(2)
  })
})

describe('Vault emulator: rewrap, batch_input and Vault 1.4-1.6 decrypt errors', () => {
  let vault: VaultEmulator
  beforeAll(async () => {
    vault = await startVaultEmulator()
    vault.createKey('k')
  })
  afterAll(async () => {
    await vault.close()
  })

  it('rewrap moves a ciphertext to the latest version, and cannot carry associated_data', async () => {
    const plain = await call(vault, 'POST', 'transit/encrypt/k', { plaintext: b64('old') })
    const bound = await call(vault, 'POST', 'transit/encrypt/k', {
      plaintext: b64('bound'),
      associated_data: b64('ctx'),
    })
    await call(vault, 'POST', 'transit/keys/k/rotate', {})
    const moved = await call(vault, 'POST', 'transit/rewrap/k', {
      ciphertext: plain.body.data?.ciphertext,
    })
    expect(moved.status).toBe(200)
    expect(moved.body.data).toMatchObject({ key_version: 2 })
    expect(String(moved.body.data?.ciphertext)).toMatch(/^vault:v2:/)
    const back = await call(vault, 'POST', 'transit/decrypt/k', {
      ciphertext: moved.body.data?.ciphertext,
    })
    expect(back.body.data?.plaintext).toBe(b64('old'))
    // Rewrap knows no associated_data: ignored with Vault's warning, so the tag fails.
    const refused = await call(vault, 'POST', 'transit/rewrap/k', {
      ciphertext: bound.body.data?.ciphertext,
      associated_data: b64('ctx'),
    })
    expect(refused.status).toBe(400)
    expect(refused.body.errors).toEqual(['cipher: message authentication failed'])
  })

  it('batch_input: results in input order with their references; a failed item makes it 400 unless partial_failure_response_code', async () => {
    const enc = await call(vault, 'POST', 'transit/encrypt/k', {
      batch_input: [
        { plaintext: b64('a'), reference: 'r1' },
        { plaintext: b64('b'), reference: 'r2' },
      ],
    })
    expect(enc.status).toBe(200)
    const [first, second] = enc.body.data?.batch_results ?? []
    expect(first).toMatchObject({ reference: 'r1', key_version: 2 })
    const dec = await call(vault, 'POST', 'transit/decrypt/k', {
      batch_input: [
        { ciphertext: second?.ciphertext, reference: 'b' },
        { ciphertext: 'vault:v1:AAAA', reference: 'bad' },
        { ciphertext: first?.ciphertext, reference: 'a' },
      ],
    })
    expect(dec.status).toBe(400)
    expect(dec.body.data?.batch_results?.map((r) => r.reference)).toEqual(['b', 'bad', 'a'])
    expect(dec.body.data?.batch_results?.[0]?.plaintext).toBe(b64('b'))
    expect(dec.body.data?.batch_results?.[1]?.error).toBe('invalid ciphertext length')
    const partial = await call(vault, 'POST', 'transit/decrypt/k', {
      partial_failure_response_code: 207,
      batch_input: [{ ciphertext: first?.ciphertext }, { ciphertext: 'vault:v1:AAAA' }],
    })
    expect(partial.status).toBe(207)
    const mixed = await call(vault, 'POST', 'transit/encrypt/k', {
      batch_input: [{ plaintext: b64('a'), context: b64('c') }, { plaintext: b64('b') }],
    })
    expect(mixed.status).toBe(400)
    expect(mixed.body.errors).toEqual([
      'context should be set either in all the request blocks or in none',
    ])
    expect(
      (await call(vault, 'POST', 'transit/encrypt/k', { batch_input: [] })).body.errors,
    ).toEqual(['missing batch input to process'])
  })

  it('legacy decrypt errors: a failed tag is 500 "cipher: message authentication failed" (hashicorp/vault#10842)', async () => {
    const enc = await call(vault, 'POST', 'transit/encrypt/k', {
      plaintext: b64('x'),
      associated_data: b64('right'),
    })
    const wrong = { ciphertext: enc.body.data?.ciphertext, associated_data: b64('wrong') }
    expect((await call(vault, 'POST', 'transit/decrypt/k', wrong)).status).toBe(400)
    vault.faults.setDecryptFailuresAsServerErrors(true)
    try {
      const legacy = await call(vault, 'POST', 'transit/decrypt/k', wrong)
      expect(legacy.status).toBe(500)
      expect(legacy.body.errors).toEqual([
        '1 error occurred:\n\t* cipher: message authentication failed\n\n',
      ])
      // Other invalid ciphertexts stay 400, as they did.
      expect(
        (await call(vault, 'POST', 'transit/decrypt/k', { ciphertext: 'vault:v1:AAAA' })).status,
      ).toBe(400)
    } finally {
      vault.faults.reset()
    }
    const option = await startVaultEmulator({ legacyDecryptErrors: true })
    try {
      option.createKey('k')
      const e = await call(option, 'POST', 'transit/encrypt/k', {
        plaintext: b64('x'),
        associated_data: b64('a'),
      })
      const r = await call(option, 'POST', 'transit/decrypt/k', {
        ciphertext: e.body.data?.ciphertext,
        associated_data: b64('b'),
      })
      expect(r.status).toBe(500)
    } finally {
      await option.close()
    }
  })
})
