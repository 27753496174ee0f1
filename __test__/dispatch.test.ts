// How calls are carried out under concurrency: bursts of writes (SQLite commits them
// together), writes from outside an open transaction, calls queued on a transaction,
// close() with calls in flight, and the event loop staying alive exactly while a call
// is pending.
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { createAdapter } from '../index.js'
import { adapterPerTest, freshAdapter, make, onServer } from './fixtures'

const db = adapterPerTest()

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('bursts of concurrent writes', () => {
  it('each duplicate rejects with P2002 and leaves no trace; every other write is stored', async () => {
    const users = Array.from({ length: 60 }, () => make.user())
    // Every third user reuses the email of the user before it.
    users.forEach((u, i) => {
      if (i % 3 === 2) u.email = users[i - 1].email
    })
    // Made before the adapter has connected: on SQLite they still run in call order.
    const settled = await Promise.allSettled(users.map((u) => db.createUser(u)))
    const rejected = settled.flatMap((s, i) => (s.status === 'rejected' ? [{ i, error: s.reason }] : []))
    expect(rejected).toHaveLength(20)
    for (const { i, error } of rejected) {
      expect(error.code).toBe('P2002')
      expect(error.meta.target).toEqual(['email'])
      expect(await db.findUserById(users[i].id)).toBeNull()
    }
    const stored = await Promise.all(users.map((u) => db.findUserById(u.id)))
    expect(stored.filter(Boolean)).toHaveLength(40)
    for (let i = 1; i < users.length; i += 3) {
      const pair = [stored[i], stored[i + 1]].filter(Boolean)
      expect(pair.map((u) => u?.email)).toEqual([users[i].email])
      // One connection runs them in order: the first write of the email wins.
      if (!onServer) expect(stored[i]?.id).toBe(users[i].id)
    }
  })

  it('a failing update in a burst reports P2025 while the writes around it land', async () => {
    const agent = make.agent()
    await db.createAgent(agent)
    const logs = Array.from({ length: 30 }, () => make.auditLog({ agentId: agent.id }))
    const calls = [
      ...logs.slice(0, 15).map((l) => db.createAuditLog(l)),
      db.updateAgent('no-such-agent', { name: 'x' }).catch((e) => e),
      ...logs.slice(15).map((l) => db.createAuditLog(l)),
    ]
    const results = await Promise.all(calls)
    expect(results[15].code).toBe('P2025')
    expect(await db.queryAuditLogs({ agentId: agent.id, limit: 100 })).toHaveLength(30)
  })
})

describe('calls and an open transaction', () => {
  it('a write from outside is not part of the transaction: its rollback leaves that write stored', async () => {
    const inside = make.agent()
    const outside = make.agent()
    let outsideWrite: Promise<unknown> | undefined
    const failure = new Error('roll back')
    const rejected = await db
      .transaction(async (tx) => {
        await tx.createAgent(inside)
        outsideWrite = db.createAgent(outside)
        await sleep(30)
        throw failure
      })
      .catch((e) => e)
    expect(rejected).toBe(failure)
    await outsideWrite
    expect(await db.findAgentById(inside.id)).toBeNull()
    expect(await db.findAgentById(outside.id)).not.toBeNull()
  })

  it('calls fired together on a transaction all run inside it and commit with it', async () => {
    const agent = make.agent()
    const permissions = Array.from({ length: 20 }, () => make.permission({ agentId: agent.id }))
    await db.transaction(async (tx) => {
      await tx.createAgent(agent)
      await Promise.all(permissions.map((p) => tx.createPermission(p)))
    })
    expect(await db.findPermissionsByAgentId(agent.id)).toHaveLength(20)
  })

  it('calls fired together on a transaction that then rolls back leave nothing', async () => {
    const agent = make.agent()
    await db.createAgent(agent)
    const permissions = Array.from({ length: 20 }, () => make.permission({ agentId: agent.id }))
    await db
      .transaction(async (tx) => {
        await Promise.all(permissions.map((p) => tx.createPermission(p)))
        throw new Error('undo')
      })
      .catch(() => {})
    expect(await db.findPermissionsByAgentId(agent.id)).toHaveLength(0)
  })
})

describe('close() with calls in flight', () => {
  it('settles every call: each resolves or rejects with the closed-adapter error, none hangs', async () => {
    const adapter = await freshAdapter()
    await adapter.connect()
    const calls = Array.from({ length: 200 }, (_, i) =>
      i % 2 ? adapter.createAuditLog(make.auditLog()) : adapter.findAgentById(`a${i}`),
    )
    const closing = adapter.close()
    const settled = await Promise.allSettled(calls)
    await closing
    for (const s of settled) {
      if (s.status === 'rejected') expect(s.reason.message).toMatch(/closed/)
    }
    const late = await adapter.findAgentById('x').catch((e) => e)
    expect(late.message).toMatch(/closed/)
  })
})

describe.skipIf(onServer)('the event loop and pending calls', () => {
  it('a pending call keeps the process alive until it settles; an idle adapter lets it exit', () => {
    const script = `
      const { createAdapter } = require(${JSON.stringify(path.resolve(__dirname, '..'))})
      const db = createAdapter(':memory:')
      db.findAgentById('none').then((r) => console.log('settled', r))
    `
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 })
    expect(run.stderr).toBe('')
    expect(run.stdout.trim()).toBe('settled null')
    expect(run.status).toBe(0)
  })

  it('on a file, reads run beside a burst of writes and see only committed rows', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kavach-dispatch-'))
    const file = createAdapter(path.join(dir, 'db.sqlite'))
    const agent = make.agent()
    await file.createAgent(agent)
    const logs = Array.from({ length: 300 }, () => make.auditLog({ agentId: agent.id }))
    const writes = logs.map((l) => file.createAuditLog(l))
    const counts: number[] = []
    const reads = Array.from({ length: 50 }, () =>
      file.queryAuditLogs({ agentId: agent.id, limit: 1000 }).then((rows) => counts.push(rows.length)),
    )
    await Promise.all([...writes, ...reads])
    expect(counts.every((n) => n >= 0 && n <= 300)).toBe(true)
    expect(await file.queryAuditLogs({ agentId: agent.id, limit: 1000 })).toHaveLength(300)
    await file.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })
})
