// Through PgBouncer (the postgresql-pgbouncer-* projects; scripts/servers.sh starts it): many
// adapters at once, each on its own fresh schema created through the pooler, every answer
// checked; and without `pgbouncer=true`, an error that says to add it, never a wrong answer.
import { describe, expect, it } from 'vitest'
import { createAdapter } from '../index.js'
import { dropFreshDatabases, freshUrl, make, withParams } from './fixtures'

const bouncer = process.env.KAVACH_TEST_PGBOUNCER_URL
const transactionPooling = bouncer !== undefined && bouncer === process.env.KAVACH_TEST_PGBOUNCER_TX_URL

describe.skipIf(!bouncer)('through PgBouncer', () => {
  it('adapters on their own schemas, created at once, each see only their own rows', async () => {
    const urls = await Promise.all(Array.from({ length: 4 }, () => freshUrl()))
    const adapters = urls.map((url) => createAdapter(url))
    try {
      let wrong = 0
      await Promise.all(
        adapters.flatMap((db, n) =>
          Array.from({ length: 40 }, async (_, i) => {
            const user = make.user({ id: `u${n}-${i}` })
            await db.createUser(user)
            const [mine, other, missing] = await Promise.all([
              db.findUserById(user.id),
              db.findUserById(`u${(n + 1) % 4}-${i}`),
              db.findUserByEmail(`nobody-${i}@example.com`),
            ])
            if (mine?.email !== user.email || other !== null || missing !== null) wrong++
          }),
        ),
      )
      expect(wrong).toBe(0)
      await adapters[0].transaction(async (tx) => {
        await tx.createUser(make.user({ id: 'in-tx' }))
        expect(await tx.findUserById('in-tx')).not.toBeNull()
      })
      expect(await adapters[1].findUserById('in-tx')).toBeNull()
    } finally {
      for (const db of adapters) await db.close()
      await dropFreshDatabases()
    }
  })

  it.skipIf(!transactionPooling)('without pgbouncer=true in transaction pooling: an error naming the fix, no wrong answer', async () => {
    const url = new URL(await freshUrl())
    url.searchParams.delete('pgbouncer')
    const adapters = Array.from({ length: 4 }, () => createAdapter(withParams(url.toString(), {})))
    const failures: string[] = []
    let wrong = 0
    try {
      await Promise.all(
        adapters.flatMap((db, n) =>
          Array.from({ length: 30 }, async (_, i) => {
            const user = make.user({ id: `v${n}-${i}` })
            try {
              await db.createUser(user)
              const [mine, missing] = await Promise.all([db.findUserById(user.id), db.findUserByEmail(`nobody-${i}@example.com`)])
              if (mine?.email !== user.email || missing !== null) wrong++
            } catch (e: any) {
              failures.push(e.message)
            }
          }),
        ),
      )
      expect(wrong).toBe(0)
      expect(failures.length).toBeGreaterThan(0)
      expect(failures.some((m) => m.includes('add `pgbouncer=true` to the URL'))).toBe(true)
    } finally {
      for (const db of adapters) await db.close()
      await dropFreshDatabases()
    }
  })
})
