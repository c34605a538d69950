/**
 * The example's data: customers whose tax id is sensitive. The table holds
 * the tax id only as KeyManager ciphertext (AES-256-GCM under the cached data
 * key, bound to the row by its AAD); resolvers encrypt on write and decrypt
 * on read, with no KMS call per request.
 */
import { randomUUID } from 'node:crypto'
import Database from 'better-sqlite3'
import type { KeyManager } from 'fraiseql-security/kms'

export const schema = /* GraphQL */ `
  type Customer {
    id: ID!
    name: String!
    email: String!
    "Stored encrypted; decrypted per request without a KMS call."
    taxId: String!
  }

  type Query {
    customer(id: ID!): Customer
    customers(first: Int = 10): [Customer!]!
  }

  type Mutation {
    createCustomer(name: String!, email: String!, taxId: String!): Customer!
  }
`

interface Row {
  id: string
  name: string
  email: string
  tax_id_ciphertext: string
}

/** AAD binding a ciphertext to its row: moved to another row, it no longer decrypts. */
const aadOf = (id: string) => `customer:${id}:tax_id`

export class CustomerStore {
  readonly #db: Database.Database

  constructor(filename: string) {
    this.#db = new Database(filename)
    this.#db.pragma('journal_mode = WAL')
    this.#db.exec(`CREATE TABLE IF NOT EXISTS customers (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      email TEXT NOT NULL,
      tax_id_ciphertext TEXT NOT NULL,
      created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
    )`)
  }

  insert(row: Row): void {
    this.#db
      .prepare('INSERT INTO customers (id, name, email, tax_id_ciphertext) VALUES (?, ?, ?, ?)')
      .run(row.id, row.name, row.email, row.tax_id_ciphertext)
  }

  get(id: string): Row | undefined {
    return this.#db.prepare('SELECT * FROM customers WHERE id = ?').get(id) as Row | undefined
  }

  list(first: number): Row[] {
    return this.#db
      .prepare('SELECT * FROM customers ORDER BY created_at LIMIT ?')
      .all(Math.max(0, Math.min(first, 100))) as Row[]
  }

  count(): number {
    return (this.#db.prepare('SELECT count(*) AS n FROM customers').get() as { n: number }).n
  }

  close(): void {
    this.#db.close()
  }
}

/** Resolvers over the store; `keys` must be initialized. */
export function customerResolvers(store: CustomerStore, keys: KeyManager) {
  const toCustomer = (row: Row) => ({
    id: row.id,
    name: row.name,
    email: row.email,
    taxId: () => keys.localDecrypt(row.tax_id_ciphertext, aadOf(row.id)),
  })
  return {
    Query: {
      customer: (_: unknown, { id }: { id: string }) => {
        const row = store.get(id)
        return row === undefined ? null : toCustomer(row)
      },
      customers: (_: unknown, { first }: { first: number }) => store.list(first).map(toCustomer),
    },
    Mutation: {
      createCustomer: async (_: unknown, input: { name: string; email: string; taxId: string }) => {
        const id = randomUUID()
        const row: Row = {
          id,
          name: input.name,
          email: input.email,
          tax_id_ciphertext: await keys.localEncrypt(input.taxId, aadOf(id)),
        }
        store.insert(row)
        return toCustomer(row)
      },
    },
  }
}
