// MUST NOT type-check: there is no such method.
import { createAdapter } from 'kavach-native'

export const agents = createAdapter(':memory:').findAgentsByName('bot')
