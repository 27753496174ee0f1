// MUST NOT type-check: an id is a string.
import { createAdapter } from 'kavach-native'

const db = createAdapter(':memory:')
export const agent = db.findAgentById(123)
