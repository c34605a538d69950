import { MemoryKeyringStore } from '../../src/kms/index.js'
import { describeKeyringStoreContract } from './keyring.contract.js'

describeKeyringStoreContract('MemoryKeyringStore', async () => {
  const store = new MemoryKeyringStore()
  return { store, other: async () => store }
})
