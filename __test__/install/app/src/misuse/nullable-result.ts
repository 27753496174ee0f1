// MUST NOT type-check (strict): findAgentById may resolve with null.
import { createAdapter } from 'kavach-native'

export async function name(): Promise<string> {
  const agent = await createAdapter(':memory:').findAgentById('a')
  return agent.name
}
