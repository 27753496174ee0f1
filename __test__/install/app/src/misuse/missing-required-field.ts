// MUST NOT type-check: createAgent needs tokenHash.
import { createAdapter } from 'kavach-native'

const db = createAdapter(':memory:')
const now = new Date()
export const agent = db.createAgent({ id: 'a', ownerId: 'u', name: 'bot', type: 'autonomous', tokenPrefix: 'kv_', createdAt: now, updatedAt: now })
