// transaction(fn, options): commit with fn's value, rollback with fn's very error,
// P2028 on a finished or expired transaction, maxWait, isolation of uncommitted writes.
import { describe, expect, it } from 'vitest'
import { adapterPerTest, freshAdapter, make, onServer } from './fixtures'

const db = adapterPerTest()

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('transaction', () => {
  it('commits every write and resolves with fn\'s own value', async () => {
    const value = { done: true }
    const agent = make.agent()
    const result = await db.transaction(async (tx) => {
      await tx.createAgent(agent)
      await tx.createPermission(make.permission({ agentId: agent.id }))
      await tx.createPermission(make.permission({ agentId: agent.id }))
      return value
    })
    expect(result).toBe(value)
    expect(await db.findAgentById(agent.id)).not.toBeNull()
    expect(await db.findPermissionsByAgentId(agent.id)).toHaveLength(2)
  })

  it('rolls back and rejects with the very same error object', async () => {
    const boom = new Error('boom')
    const agent = make.agent()
    const rejected = await db
      .transaction(async (tx) => {
        await tx.createAgent(agent)
        throw boom
      })
      .catch((e) => e)
    expect(rejected).toBe(boom)
    expect(await db.findAgentById(agent.id)).toBeNull()
  })

  it('rolls back when a statement fails inside and the error propagates', async () => {
    const user = await db.createUser(make.user())
    const error = await db
      .transaction(async (tx) => {
        await tx.createAgent(make.agent({ id: 'in-tx' }))
        await tx.createUser(make.user({ id: user.id }))
      })
      .catch((e) => e)
    expect(error.code).toBe('P2002')
    expect(await db.findAgentById('in-tx')).toBeNull()
  })

  it('reads its own uncommitted writes; others do not see them before the commit', async () => {
    const agent = make.agent()
    let outside: Promise<unknown> | undefined
    await db.transaction(async (tx) => {
      await tx.createAgent(agent)
      expect(await tx.findAgentById(agent.id)).toMatchObject({ id: agent.id })
      outside = db.findAgentById(agent.id)
      // Servers answer from another connection at once; SQLite's one writer waits.
      if (onServer) expect(await outside).toBeNull()
    })
    if (!onServer) expect(await outside).toMatchObject({ id: agent.id })
    expect(await db.findAgentById(agent.id)).toMatchObject({ id: agent.id })
  })

  it('a call on a finished transaction rejects with P2028 and writes nothing', async () => {
    let saved: any
    await db.transaction(async (tx) => {
      saved = tx
    })
    const error = await saved.createAgent(make.agent({ id: 'late' })).catch((e: any) => e)
    expect(error.code).toBe('P2028')
    expect(error.message).toContain('committed transaction')
    expect(await db.findAgentById('late')).toBeNull()
  })

  it('expires after timeout: rolled back, later calls and the commit reject with P2028', async () => {
    const error = await db
      .transaction(
        async (tx) => {
          await tx.createAgent(make.agent({ id: 'slow' }))
          await sleep(300)
          await tx.findAgentById('slow')
        },
        { timeout: 100 },
      )
      .catch((e) => e)
    expect(error.code).toBe('P2028')
    expect(error.message).toContain('expired transaction')
    expect(await db.findAgentById('slow')).toBeNull()
    const commitError = await db.transaction(() => sleep(300), { timeout: 100 }).catch((e) => e)
    expect(commitError.code).toBe('P2028')
  })

  it('gives up after maxWait when another transaction holds the only connection', async () => {
    const single = await freshAdapter({ connection_limit: '1' })
    await single.listAgents()
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    const first = single.transaction(() => held)
    await sleep(50)
    const error = await single.transaction(async () => 1, { maxWait: 50 }).catch((e) => e)
    expect(error.code).toBe('P2028')
    expect(error.message).toContain('Unable to start a transaction in the given time')
    release()
    await first
    expect(await single.transaction(async () => 2)).toBe(2)
    await single.close()
  })

  it('nested transaction joins the open one', async () => {
    const outer = await db.transaction(async (tx) => {
      const inner = await tx.transaction(async (tx2) => {
        await tx2.createUser(make.user({ id: 'nested' }))
        return 'inner'
      })
      return inner + '+outer'
    })
    expect(outer).toBe('inner+outer')
    expect(await db.findUserById('nested')).not.toBeNull()
  })

  it('validates its options', async () => {
    for (const options of [{ timeout: -1 }, { bogus: 1 }, { isolationLevel: 'Snapshot' }, onServer ? { maxWait: 'x' } : { isolationLevel: 'ReadCommitted' }]) {
      const error = await db.transaction(async () => 1, options as any).catch((e) => e)
      expect(error.name).toBe('PrismaClientValidationError')
    }
    expect(await db.transaction(async () => 3, { isolationLevel: 'Serializable' })).toBe(3)
    if (onServer) {
      for (const isolationLevel of ['ReadUncommitted', 'ReadCommitted', 'RepeatableRead'] as any[]) {
        expect(await db.transaction(async (tx) => (await tx.listAgents()).length, { isolationLevel })).toBe(0)
      }
    }
  })

  it.skipIf(onServer)('serialises concurrent transactions without losing writes', async () => {
    await db.upsertTrustScore(make.trustScore({ agentId: 'counter', score: 0 }))
    await Promise.all(
      Array.from({ length: 20 }, () =>
        db.transaction(
          async (tx) => {
            const current = await tx.findTrustScore('counter')
            await tx.upsertTrustScore({ ...current!, score: current!.score + 1 })
          },
          { maxWait: 10_000 },
        ),
      ),
    )
    expect((await db.findTrustScore('counter'))!.score).toBe(20)
  })
})
