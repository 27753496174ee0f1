// One of four identical files: with four workers they load the addon at the same time.
import { createAdapter } from 'kavach-native'
import { expect, it } from 'vitest'
import { runFlow } from '../src/kavach-native-swap.ts'

it('runs the flow in its own worker (3)', async () => {
  const db = createAdapter(':memory:')
  for (let round = 0; round < 5; round++) {
    const report = await runFlow(db, `p3-${round}`)
    expect(report.txResult).toBe('committed')
  }
  await db.close()
})
